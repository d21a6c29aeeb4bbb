//! `sinch-operator plan`: what `apply` would change, as text, markdown or JSON; `--out` saves it
//! for `apply PLANFILE`.

use super::{InputArgs, OperatorArgs, SecretArgs, connection, exit};
use crate::engine::plan::{Options, Plan};
use crate::input::Input;
use crate::render::{self, Format};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(mut_arg("filename", |a| a.required(false).required_unless_present("from_cluster").conflicts_with("from_cluster")))]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Plan the objects in the cluster of the current kubeconfig instead of files: what the
    /// controller would do now, through its connections, claims, pauses and policies (tell it
    /// how the operator runs with --operator-namespace and --operator-key-namespaces).
    /// Read-only; their Secrets are read from the cluster too.
    #[arg(long, conflicts_with_all = ["out", "prune", "secrets_from_cluster"])]
    pub from_cluster: bool,
    /// With --from-cluster: only the objects of this namespace (default: every namespace).
    #[arg(long, value_name = "NAMESPACE", requires = "from_cluster")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// With --from-cluster: how the operator runs (`run`'s flags of the same names).
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
    /// How to show the plan.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Exit 2 when changes are pending (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan (JSON, no secret values) for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also plan deletes of what no manifest declares, in the (project, region) scopes the
    /// input touches: webhooks of declared apps, templates, apps.
    #[arg(long)]
    pub prune: bool,
}

/// The validated input and the connection, the access token fetched while the input is read and
/// checked. Bad input is reported before anything else, even before a missing connection.
async fn load_and_connect(
    input: &InputArgs,
    args: &connection::ConnectionArgs,
) -> crate::Result<(Input, connection::Connection)> {
    let connected = connection::connect(args, |v| std::env::var(v).ok()).await;
    if let Ok(connection) = &connected {
        connection.warm_up();
    }
    let files = input.filename.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::validate::load(&files))
        .await
        .expect("reading the input does not panic");
    let manifests = loaded.map_err(crate::Error::Invalid)?;
    Ok((manifests, connected?))
}

/// Observes and plans the validated `manifests`.
pub async fn make(manifests: &Input, connection: &connection::Connection, options: &Options) -> crate::Result<Plan> {
    let targets = crate::engine::targets(manifests, &connection.defaults).map_err(|none| crate::Error::Config {
        var: connection::PROJECT_VAR,
        message: format!(
            "not set, and these objects name no spec.projectId: {}",
            none.0.join(", ")
        ),
    })?;
    let source = crate::engine::observe::Direct {
        client: &connection.client,
        credentials: &connection.credentials,
    };
    let live = crate::engine::observe::observe(&source, &targets, options.prune).await;
    Ok(crate::engine::plan::build(manifests, &targets, &live, options))
}

/// What a plan records of how it was made; `nonce`: a saved plan's, else a new one. The
/// fingerprints are keyed with the key secret: whoever holds a saved plan but not the key
/// cannot test guesses of the secret values against them.
pub fn options(
    input: &InputArgs,
    secrets: &SecretArgs,
    prune: bool,
    nonce: Option<String>,
    credentials: &crate::sinch::client::Credentials,
) -> Options {
    let nonce = nonce.unwrap_or_else(|| format!("{:032x}", fastrand::u128(..)));
    Options {
        prune,
        inputs: input.filename.iter().map(|p| p.display().to_string()).collect(),
        salt: crate::engine::plan::fingerprint(credentials.key_secret.0.as_str(), nonce.as_bytes()),
        nonce,
        secrets_from_cluster: secrets.secrets_from_cluster,
        // The CLI runs with an admin's key: its errors name every id they concern.
        tenant: false,
    }
}

/// The secret values the command holds (the input's and the key), which no output may show:
/// a plan holds placeholders, but an error quoting what Sinch was sent may not.
pub fn known(manifests: &Input, connection: &connection::Connection) -> crate::scrub::Known {
    let mut known = manifests.secrets.known();
    known.add_key(&connection.credentials);
    known
}

/// Adds the cluster's Secrets to the validated input when asked to.
pub async fn cluster_secrets(manifests: &mut Input, secrets: &SecretArgs) -> crate::Result<()> {
    if secrets.secrets_from_cluster {
        crate::cluster::add_secrets(manifests).await?;
    }
    Ok(())
}

/// Whether stdout gets colours: a terminal, and `NO_COLOR` not set.
pub fn colour() -> render::text::Paint {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    render::text::Paint(!no_color && std::io::stdout().is_terminal())
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let runtime = super::runtime()?;
    let (plan, known) = match args.from_cluster {
        true => runtime.block_on(from_cluster(&args))?,
        false => runtime.block_on(async {
            let (mut manifests, connection) = load_and_connect(&args.input, &args.connection).await?;
            cluster_secrets(&mut manifests, &args.secrets).await?;
            let options = options(&args.input, &args.secrets, args.prune, None, &connection.credentials);
            let plan = make(&manifests, &connection, &options).await;
            let known = known(&manifests, &connection);
            connection.close().await;
            Ok::<_, crate::Error>((plan?, known))
        })?,
    };
    let shown = match args.output {
        Format::Text => render::text::render(&plan, colour()),
        Format::Markdown => render::markdown::render(&plan),
        Format::Json => render::json(&plan),
    };
    std::io::stdout()
        .write_all(known.scrub(&shown).as_bytes())
        .map_err(crate::Error::Output)?;
    if let Some(path) = &args.out {
        save(&plan, path)?;
    }
    Ok(if !plan.errors.is_empty() {
        exit::ERROR
    } else if args.detailed_exitcode && plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// The objects in the cluster, planned as the controller would plan them now: with the
/// operator's key and settings (this command's environment and flags stand for `run`'s).
async fn from_cluster(args: &Args) -> crate::Result<(Plan, crate::scrub::Known)> {
    let kube = crate::cluster::default_client()
        .await
        .map_err(|e| crate::Error::kube("--from-cluster: cannot reach the Kubernetes API server (KUBECONFIG)", e))?;
    let (sinch, credentials, defaults, sim) =
        connection::connect_optional(&args.connection, |v| std::env::var(v).ok()).await?;
    let operator = crate::controller::preview::Operator {
        namespace: args.operator.operator_namespace.clone(),
        key: args.operator.operator_key_namespaces.clone(),
    };
    let preview =
        crate::controller::preview::preview(kube, args.namespace.as_deref(), operator, sinch, credentials, defaults)
            .await;
    if let Some(sim) = sim {
        sim.stop().await;
    }
    let preview = preview?;
    Ok((preview.plan, preview.known))
}

fn save(plan: &Plan, path: &std::path::Path) -> crate::Result<()> {
    let io = |source| crate::Error::Io {
        context: format!("cannot write the plan to {}", path.display()),
        source,
    };
    crate::write_private(path, render::saved(plan).as_bytes()).map_err(io)
}
