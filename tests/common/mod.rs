//! What the tests that run the binary share.

use sinch_operator::sim::Sim;
use std::process::{Command, Output};

/// The binary with `args`, its connection (project `project`, key `key-id` with `key_secret`)
/// pointed at `sim`, and none of the caller's settings that change what it prints.
pub fn command(sim: &Sim, project: &str, key_secret: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sinch-operator"));
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("SINCH_REGION")
        .env_remove("SINCH_OPERATOR_LOG")
        .env("SINCH_PROJECT_ID", project)
        .env("SINCH_KEY_ID", "key-id")
        .env("SINCH_KEY_SECRET", key_secret);
    for (k, v) in sim.env() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` off the async runtime, so that the in-process simulator keeps serving it.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .unwrap()
}
