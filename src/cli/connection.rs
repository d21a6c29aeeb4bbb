//! How the commands that call Sinch reach it: the environment of design.md (`SINCH_PROJECT_ID`,
//! `SINCH_KEY_ID`, `SINCH_KEY_SECRET`, `SINCH_REGION`, the endpoint overrides), the rate and
//! in-flight flags, or `--sim`: an in-process simulator, so everything works without an account.

use crate::engine::Defaults;
use crate::model::Region;
use crate::sim::Sim;
use crate::sinch::Sensitive;
use crate::sinch::client::{self, Client, Credentials};
use std::io::Write;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;

pub const PROJECT_VAR: &str = "SINCH_PROJECT_ID";
pub const KEY_ID_VAR: &str = "SINCH_KEY_ID";
pub const KEY_SECRET_VAR: &str = "SINCH_KEY_SECRET";
pub const REGION_VAR: &str = "SINCH_REGION";
/// The project of `--sim` when `SINCH_PROJECT_ID` names none.
pub const SIM_PROJECT: &str = "sim-project";

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Requests per second to each project, all calls included (Sinch allows 800 per project,
    /// production messages included).
    #[arg(long, value_name = "RPS", default_value_t = NonZeroU32::new(client::DEFAULT_RATE_LIMIT).expect("not zero"))]
    pub rate_limit: NonZeroU32,
    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = NonZeroUsize::new(client::DEFAULT_CONCURRENCY).expect("not zero"))]
    pub concurrency: NonZeroUsize,
    /// Talk to an in-process simulator of the Sinch API instead of Sinch (no account needed).
    #[arg(long)]
    pub sim: bool,
    /// With --sim: keep the simulator's state in FILE between runs.
    #[arg(long, value_name = "FILE", requires = "sim")]
    pub sim_state: Option<PathBuf>,
}

/// A client ready to call Sinch (or the simulator, which lives as long as this does).
pub struct Connection {
    pub client: Client,
    pub credentials: Credentials,
    pub defaults: Defaults,
    pub sim: Option<Sim>,
}

/// Reads the connection from `lookup` (the environment). Must run inside the async runtime.
pub async fn connect(args: &ConnectionArgs, lookup: impl Fn(&str) -> Option<String>) -> crate::Result<Connection> {
    connect_with(args, lookup, client::RetryPolicy::default()).await
}

async fn connect_with(
    args: &ConnectionArgs,
    lookup: impl Fn(&str) -> Option<String>,
    retry: client::RetryPolicy,
) -> crate::Result<Connection> {
    let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
    let region = region(&get)?;
    let mut config = client::Config::from_lookup(&lookup)?;
    config.retry = retry;
    config.rate_limit = args.rate_limit;
    config.concurrency = args.concurrency;
    if args.sim {
        let sim = Sim::start_local(crate::sim::Config {
            state_file: args.sim_state.clone(),
            ..Default::default()
        })
        .await?;
        config.endpoints = sim.endpoints();
        config.auth = client::AuthMode::OAuth;
        return Ok(Connection {
            client: Client::new(config)?,
            credentials: Credentials {
                key_id: "sim".into(),
                key_secret: Sensitive("sim".into()),
            },
            defaults: Defaults {
                project: Some(get(PROJECT_VAR).unwrap_or_else(|| SIM_PROJECT.into())),
                region,
            },
            sim: Some(sim),
        });
    }
    let required = |var: &'static str| {
        get(var).ok_or(crate::Error::Config {
            var,
            message: "not set: the access key of the project (or use --sim to try against a simulator)".into(),
        })
    };
    let credentials = Credentials {
        key_id: required(KEY_ID_VAR)?,
        key_secret: Sensitive(required(KEY_SECRET_VAR)?),
    };
    Ok(Connection {
        client: Client::new(config)?,
        credentials,
        defaults: Defaults {
            project: get(PROJECT_VAR),
            region,
        },
        sim: None,
    })
}

/// The controller's connection: as [`connect`], but the access key may be missing (objects
/// then name theirs with `credentialsRef`), and a request waits at most
/// [`client::RetryPolicy::controller`] between attempts (the reconcile requeues instead).
pub async fn connect_optional(
    args: &ConnectionArgs,
    lookup: impl Fn(&str) -> Option<String>,
) -> crate::Result<(Client, Option<Credentials>, Defaults, Option<Sim>)> {
    let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
    if args.sim || get(KEY_ID_VAR).is_some() || get(KEY_SECRET_VAR).is_some() {
        let c = connect_with(args, lookup, client::RetryPolicy::controller()).await?;
        return Ok((c.client, Some(c.credentials), c.defaults, c.sim));
    }
    let mut config = client::Config::from_lookup(&lookup)?;
    config.retry = client::RetryPolicy::controller();
    config.rate_limit = args.rate_limit;
    config.concurrency = args.concurrency;
    let defaults = Defaults {
        project: get(PROJECT_VAR),
        region: region(&get)?,
    };
    Ok((Client::new(config)?, None, defaults, None))
}

fn region(get: &impl Fn(&str) -> Option<String>) -> crate::Result<Region> {
    match get(REGION_VAR) {
        None => Ok(Region::Us),
        Some(r) => r.parse().map_err(|message| crate::Error::Config {
            var: REGION_VAR,
            message,
        }),
    }
}

impl Connection {
    /// Asks for the access token now, in the background: it arrives while the input is read
    /// and checked, and the first list does not wait for it. Nothing is sent to a project.
    pub fn warm_up(&self) {
        let project = self.defaults.project.as_deref().unwrap_or_default();
        let project = self
            .client
            .project(project, self.defaults.region, self.credentials.clone());
        tokio::spawn(async move { project.warm_up().await });
    }

    /// Notes the retries, if any: a run that succeeded under faults should say so. Then stops
    /// the in-process simulator, if any, once its state file is written.
    pub async fn close(self) {
        let sent = self.client.sent();
        if sent.retries > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "note: {} of the {} requests sent to Sinch were retries (after server errors, rate limits, \
                 expired tokens or dropped connections)",
                sent.retries,
                sent.requests
            );
        }
        if let Some(sim) = self.sim {
            sim.stop().await;
        }
    }
}
