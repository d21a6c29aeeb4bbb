//! `sinch-operator plan`: what `apply` would change, as text, markdown or JSON; `--out` saves it
//! for `apply PLANFILE`.

use super::{InputArgs, SecretArgs, connection, exit};
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
    /// controller would do now. Read-only; their Secrets are read from the cluster too.
    #[arg(long, conflicts_with_all = ["out", "prune"])]
    pub from_cluster: bool,
    /// With --from-cluster: only the objects of this namespace (default: every namespace).
    #[arg(long, value_name = "NAMESPACE", requires = "from_cluster")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
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

/// Observes and plans the validated `manifests`.
pub async fn make(manifests: &Input, connection: &connection::Connection, options: &Options) -> crate::Result<Plan> {
    let targets = crate::engine::targets(manifests, &connection.defaults)?;
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
    // Bad input is reported before anything else, even before a missing connection.
    let mut manifests = match args.from_cluster {
        true => runtime.block_on(crate::cluster::objects(args.namespace.as_deref()))?,
        false => crate::validate::load(&args.input.filename).map_err(crate::Error::Invalid)?,
    };
    let secrets = SecretArgs {
        secrets_from_cluster: args.secrets.secrets_from_cluster || args.from_cluster,
    };
    let (plan, known) = runtime.block_on(async {
        cluster_secrets(&mut manifests, &secrets).await?;
        let connection = connection::connect(&args.connection, |v| std::env::var(v).ok()).await?;
        let options = options(&args.input, &secrets, args.prune, None, &connection.credentials);
        let plan = make(&manifests, &connection, &options).await;
        let known = known(&manifests, &connection);
        connection.close().await;
        Ok::<_, crate::Error>((plan?, known))
    })?;
    let plan = match args.from_cluster {
        true => held_back(plan, &manifests),
        false => plan,
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

/// Notes on the changes the controller would not send: objects paused or only observed.
fn held_back(mut plan: Plan, manifests: &Input) -> Plan {
    use crate::model::{ManagementPolicy, PAUSED_ANNOTATION};
    // Object label -> why; usually few of the objects, so found by label once each.
    let held: std::collections::HashMap<String, String> = manifests
        .manifests
        .iter()
        .filter_map(|m| {
            let why = if crate::model::is_paused(m.object.metadata()) {
                format!("paused ({PAUSED_ANNOTATION})")
            } else if m.object.placement().management_policy == Some(ManagementPolicy::ObserveOnly) {
                "managementPolicy ObserveOnly".to_string()
            } else {
                return None;
            };
            Some((m.object.label(), why))
        })
        .collect();
    for change in &mut plan.changes {
        if change.action != crate::engine::plan::Action::Noop
            && let Some(why) = held.get(&change.label())
        {
            change.notes.push(format!("the controller sends nothing for it: {why}"));
        }
    }
    plan
}

fn save(plan: &Plan, path: &std::path::Path) -> crate::Result<()> {
    let io = |source| crate::Error::Io {
        context: format!("cannot write the plan to {}", path.display()),
        source,
    };
    crate::write_private(path, render::saved(plan).as_bytes()).map_err(io)
}
