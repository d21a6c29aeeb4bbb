use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SINCH_OPERATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match sinch_operator::cli::Cli::try_parse() {
        Ok(cli) => sinch_operator::cli::exec(cli),
        // Exit code 2 means "changes pending" (`plan --detailed-exitcode`): a usage error is a 1.
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() {
                sinch_operator::cli::exit::ERROR
            } else {
                sinch_operator::cli::exit::OK
            })
        }
    }
}
