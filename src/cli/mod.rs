//! The command line: one file per subcommand, each a small `Args` and an `exec`. Flags shared by
//! several subcommands are defined once here.

pub mod crds;
pub mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "sinch-operator",
    version,
    about = "Sinch Conversation API configuration (apps, webhooks, templates, project settings) as code",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check manifests offline (schema, references, limits, uniqueness); no network.
    Validate(validate::Args),
    /// Print the CustomResourceDefinitions of the four kinds as one YAML stream.
    Crds(crds::Args),
}

/// Where manifests come from.
#[derive(clap::Args, Debug)]
pub struct InputArgs {
    /// A manifest file, or a directory read recursively for *.yaml and *.yml (paths matched by a
    /// .sinchignore file below it are skipped); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
}

/// Exit codes of every subcommand.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
}

pub fn exec(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Validate(args) => validate::exec(args),
        Command::Crds(args) => crds::exec(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(crate::Error::Invalid(report)) => {
            eprintln!("{report}");
            ExitCode::from(exit::ERROR)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::ERROR)
        }
    }
}
