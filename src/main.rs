//! `flatscape` command line (SPEC §5): a thin layer that parses arguments and maps errors to
//! exit codes — 0 success, 2 invalid input, 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flatscape::run::{self, RunError, RunOptions};
use flatscape::scenario::Scenario;

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
        /// The scenario file (TOML, see scenarios/).
        scenario: PathBuf,
        /// Output folder [default: output/<scenario name>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Hide progress bars and the closing summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Validate a scenario file without running it (exit 0 if valid, 2 if not).
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Regenerate every publication figure from the scenarios in scenarios/.
    Figures {
        /// Output folder [default: output/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Shrink every run for a smoke test.
        #[arg(long)]
        quick: bool,
        /// Folder with the scenario files.
        #[arg(long, default_value = "scenarios")]
        scenarios: PathBuf,
        /// Worker threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario,
            out,
            threads,
            quiet,
        } => run::run_file(
            &scenario,
            &RunOptions {
                out,
                threads,
                quiet,
                quick: false,
            },
        )
        .map(|_| ()),
        Command::Check { scenario } => match Scenario::load(&scenario) {
            Ok(sc) => {
                println!("{}: valid scenario `{}`", scenario.display(), sc.name);
                Ok(())
            }
            Err(e) => Err(RunError::Scenario(e)),
        },
        Command::Figures {
            out,
            quick,
            scenarios,
            threads,
            quiet,
        } => run::figures(
            &scenarios,
            &RunOptions {
                out,
                threads,
                quiet,
                quick,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
