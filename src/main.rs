//! `flatscape` command line: parses arguments and maps errors to exit codes — 0 success,
//! 2 invalid input, 1 runtime failure, 130 interrupted. The work lives in `flatscape::app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flatscape::app::{self, RunOptions, figures::QUICK_OUT, sweep as sweep_cmd};

/// Fokker–Planck, adiabatic-elimination theory and Monte-Carlo SGD on degenerate loss valleys
/// (Yang, Tang & Tu, PRL 130, 237101, 2023).
#[derive(Parser)]
#[command(name = "flatscape", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: FP solver, theory and sampler (whichever sections are present),
    /// then write summary.json, CSV, .npy and figures into the output folder.
    Run {
        /// The scenario file (TOML, see scenarios/ and docs/reference.md).
        scenario: PathBuf,
        /// Output folder [default: output/<scenario name>/]. It is replaced as a whole when the
        /// run finishes; an interrupted run leaves the previous result untouched.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads [default: all cores; 0 also means all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Hide progress bars and the closing summary.
        #[arg(long)]
        quiet: bool,
        /// Also write the assembled FP generator A (dP/dt = A P) as operator.mtx (Matrix
        /// Market, `scipy.io.mmread`); needs a [fokker_planck] table.
        #[arg(long)]
        export_operator: bool,
    },
    /// Validate scenario files without running them (one line per file; exit 2 if any is
    /// invalid).
    Check {
        /// The scenario files (TOML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Regenerate every publication figure from the scenarios in scenarios/.
    Figures {
        /// Output folder [default: output/, or output/quick/ with --quick].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Shrink every run for a smoke test (figures say "quick mode" in their titles).
        #[arg(long)]
        quick: bool,
        /// Folder with the scenario files.
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Worker threads [default: all cores; 0 also means all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// A sweep as independent point files, for clusters: plan, run shards, merge.
    Sweep {
        #[command(subcommand)]
        action: SweepAction,
    },
}

#[derive(Subcommand)]
enum SweepAction {
    /// Write DIR/manifest.json: every point's id, (σ, η), Δ_S and seed, and the scenario hash.
    Plan {
        /// The scenario file (with a [sweep] table).
        scenario: PathBuf,
        /// The sweep folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compute the points of one shard that have no valid file in DIR/points/ yet.
    Run {
        /// The scenario file (with a [sweep] table).
        scenario: PathBuf,
        /// The sweep folder (its manifest must belong to this scenario; written if absent).
        #[arg(long)]
        out: PathBuf,
        /// Shard K of N: the points with id % N == K - 1 [default: 1/1, every point].
        #[arg(long, value_parser = sweep_cmd::parse_shard)]
        shard: Option<sweep_cmd::Shard>,
        /// Worker threads, each computing whole points [default: all cores; 0 also].
        #[arg(long)]
        threads: Option<usize>,
        /// Hide the progress bar and the closing line.
        #[arg(long)]
        quiet: bool,
    },
    /// Check that every point is present, write DIR/sweep.csv and the sweep figures, and
    /// report the per-point wall and CPU times.
    Merge {
        /// The sweep folder.
        dir: PathBuf,
        /// Print nothing on success.
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    app::install_interrupt_handler();
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            threads,
            quiet,
            export_operator,
        } => app::run_file(
            &scenario,
            &RunOptions {
                out,
                threads,
                quiet,
                quick: false,
                export_operator,
            },
        )
        .map(|_| ()),
        Command::Check { scenarios } => app::check_files(&scenarios),
        Command::Figures {
            out,
            quick,
            scenarios,
            threads,
            quiet,
        } => {
            let opts = RunOptions {
                out,
                threads,
                quiet,
                quick,
                export_operator: false,
            };
            let clock = std::time::Instant::now();
            app::with_threads(threads, || app::figures::figures(&scenarios, &opts)).map(|report| {
                if !quiet {
                    for (name, secs) in &report.runs {
                        println!("  ran {name} in {secs:.1} s");
                    }
                    println!(
                        "{} figures (PNG + SVG) in {:.1} s{}:",
                        report.figures.len(),
                        clock.elapsed().as_secs_f64(),
                        if quick {
                            format!(" (quick mode; default folder {QUICK_OUT})")
                        } else {
                            String::new()
                        }
                    );
                    for f in &report.figures {
                        println!("  {}", f.with_extension("png").display());
                    }
                }
            })
        }
        Command::Sweep { action } => match action {
            SweepAction::Plan { scenario, out } => sweep_cmd::plan(&scenario, &out).map(|n| {
                println!(
                    "planned {n} points in {}",
                    out.join("manifest.json").display()
                );
            }),
            SweepAction::Run {
                scenario,
                out,
                shard,
                threads,
                quiet,
            } => sweep_cmd::run(
                &scenario,
                &out,
                shard.unwrap_or(sweep_cmd::Shard::ALL),
                threads,
                quiet,
            )
            .map(|_| ()),
            SweepAction::Merge { dir, quiet } => sweep_cmd::merge(&dir, quiet).map(|_| ()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
