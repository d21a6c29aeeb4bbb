//! The command line: one file per subcommand, each a small `Args` and an `exec`. Flags shared by
//! several subcommands are defined once here.

pub mod apply;
pub mod connection;
pub mod crds;
pub mod import;
pub mod plan;
pub mod probe;
pub mod run;
pub mod schemas;
pub mod sim;
pub mod validate;

use clap::{Parser, Subcommand};
use std::io::Write;
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
    /// Show what apply would change in Sinch: read live state, compare it with the manifests.
    Plan(plan::Args),
    /// Converge Sinch to the manifests (or carry out a plan saved with `plan --out`).
    Apply(apply::Args),
    /// Write manifests for what a project already has in Sinch (secret values never written).
    Import(import::Args),
    /// Check manifests offline (schema, references, limits, uniqueness); no network.
    Validate(validate::Args),
    /// Print the CustomResourceDefinitions of the four kinds as one YAML stream.
    Crds(crds::Args),
    /// Write one JSON Schema per kind (for editors and kubeconform) into a directory.
    Schemas(schemas::Args),
    /// Serve the in-memory Sinch API simulator (token endpoint at /oauth2/token, the APIs under
    /// /{region}), for trying the tool, tests and benchmarks without a Sinch account.
    Sim(sim::Args),
    /// Run the Kubernetes controller: reconcile the custom resources in the cluster continuously
    /// and revert drift (kubeconfig from KUBECONFIG or the pod's service account).
    Run(run::Args),
    /// Settle the open questions of docs/sinch-api.md against a project: create throwaway
    /// objects (named sinch-operator-probe-*), delete them, print which simulator variant Sinch
    /// follows. Changes no existing object.
    Probe(probe::Args),
}

/// Where manifests come from.
#[derive(clap::Args, Debug)]
pub struct InputArgs {
    /// A manifest file, or a directory read recursively for *.yaml and *.yml (paths matched by a
    /// .sinchignore file below it are skipped); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filename: Vec<PathBuf>,
}

/// Where Secret values come from besides the `kind: Secret` documents of the input.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecretArgs {
    /// Also read the Secrets the manifests refer to from the cluster of the current kubeconfig
    /// (KUBECONFIG), each in its object's namespace; a Secret in the input wins.
    #[arg(long)]
    pub secrets_from_cluster: bool,
}

/// How the operator runs, which `plan --from-cluster` needs to plan as the controller does.
#[derive(clap::Args, Debug, Clone)]
pub struct OperatorArgs {
    /// The operator's namespace: the Secrets SinchConnections name and the key of secret
    /// fingerprints live there.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "POD_NAMESPACE",
        default_value = "sinch-operator-system"
    )]
    pub operator_namespace: String,
    /// Namespaces whose objects may use the operator's own key (SINCH_KEY_ID, SINCH_KEY_SECRET)
    /// when no SinchConnection allows them: names separated by commas, or `*` for every
    /// namespace (a single-tenant install). Default: none; such objects are refused
    /// (NoConnection), so connections that disappear never let a namespace write with the
    /// operator's key.
    #[arg(
        long,
        value_name = "NAMESPACES",
        env = "SINCH_OPERATOR_KEY_NAMESPACES",
        default_value = "",
        hide_default_value = true
    )]
    pub operator_key_namespaces: crate::controller::connections::OperatorKey,
}

/// Exit codes of every subcommand.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` with changes pending.
    pub const CHANGES: u8 = 2;
}

/// The async runtime of the subcommands that talk HTTP (`run`'s has one thread: `run::runtime`).
pub fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    build_runtime(&mut tokio::runtime::Builder::new_multi_thread())
}

/// `builder`'s runtime, with I/O and timers.
fn build_runtime(builder: &mut tokio::runtime::Builder) -> crate::Result<tokio::runtime::Runtime> {
    builder.enable_all().build().map_err(|source| crate::Error::Io {
        context: "cannot start the async runtime".into(),
        source,
    })
}

pub fn exec(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Plan(args) => plan::exec(args),
        Command::Apply(args) => apply::exec(args),
        Command::Import(args) => import::exec(args),
        Command::Validate(args) => validate::exec(args),
        Command::Crds(args) => crds::exec(args),
        Command::Schemas(args) => schemas::exec(args),
        Command::Sim(args) => sim::exec(args),
        Command::Run(args) => run::exec(args),
        Command::Probe(args) => probe::exec(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // Written, not `eprintln!`ed: a closed stderr (`2>&1 | head`) must not turn into a panic.
        Err(crate::Error::Invalid(report)) => {
            let _ = writeln!(std::io::stderr(), "{report}");
            ExitCode::from(exit::ERROR)
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(exit::ERROR)
        }
    }
}
