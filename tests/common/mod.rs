//! What the integration suites share: where the crate's files are, the example manifests, and
//! the binary run as a user runs it. Each suite uses some of it (`mod common;`).

#![allow(dead_code)]

use sinch_operator::sim::{self, Sim};
use sinch_operator::sinch::client::RetryPolicy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The crate's root: the examples, manifests and schemas are read from here.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file below `dir`, in no particular order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Every example manifest, one stream of YAML documents: the Secrets, then the apps, webhooks,
/// templates and project settings (each folder's files in name order).
pub fn examples() -> String {
    let mut files = Vec::new();
    for path in [
        "examples/secrets.yaml",
        "examples/apps",
        "examples/webhooks",
        "examples/templates",
        "examples/project-settings.yaml",
    ] {
        let p = root().join(path);
        if p.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect();
            f.sort();
            files.extend(f);
        } else {
            files.push(p);
        }
    }
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// A simulator of the test's own, on a free local port.
pub async fn start(config: sim::Config) -> Sim {
    Sim::start_local(config).await.expect("the simulator starts")
}

/// Bytes the binary printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary with `args`, run from the crate's root, with none of the caller's settings that
/// change what it prints.
pub fn binary(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sinch-operator"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("SINCH_REGION")
        .env_remove("SINCH_OPERATOR_LOG");
    cmd
}

/// Who the binary connects to Sinch as: a project and an access key.
#[derive(Clone, Copy, Debug)]
pub struct Connection<'a> {
    pub project: &'a str,
    pub key_id: &'a str,
    pub key_secret: &'a str,
}

/// [`binary`] with `args`, connected as `connection` to `sim`.
pub fn command(sim: &Sim, connection: &Connection, args: &[&str]) -> Command {
    let mut cmd = binary(args);
    cmd.env("SINCH_PROJECT_ID", connection.project)
        .env("SINCH_KEY_ID", connection.key_id)
        .env("SINCH_KEY_SECRET", connection.key_secret);
    for (k, v) in sim.env() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs [`command`] with `env` set on top of its environment.
pub async fn run(sim: &Sim, connection: &Connection<'_>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command(sim, connection, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(cmd).await
}

/// Runs `cmd` off the async runtime, so that the in-process simulator keeps serving it.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .unwrap()
}

/// Fast retries, so tests of backoff do not wait for production delays.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}
