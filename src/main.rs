//! `flatscape` command line: parses arguments and maps errors to exit codes — 0 success,
//! 2 invalid input, 1 runtime failure, 130 interrupted. The work lives in `flatscape::app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flatscape::app::{self, RunOptions, figures::QUICK_OUT};

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
        } => app::run_file(
            &scenario,
            &RunOptions {
                out,
                threads,
                quiet,
                quick: false,
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
