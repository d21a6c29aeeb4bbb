//! `sinch-operator sim`: serves the simulator until interrupted.

use super::exit;
use crate::sim::{Config, Sim, Throttle};
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The address to serve on; port 0 picks a free port (the line printed at start names it).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep the state in FILE: read at start, written after every change.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Answer secrets as ******** instead of in clear.
    #[arg(long)]
    pub mask_secrets: bool,
    /// Seconds an access token lives.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub token_lifetime: u64,
    /// Answer 429 beyond this many requests per second per project (Sinch's limit by default).
    #[arg(long, value_name = "RPS", default_value_t = NonZeroU32::new(crate::sim::PROJECT_RATE_LIMIT).expect("not 0"))]
    pub rate_limit: NonZeroU32,
    /// Milliseconds added to every API request.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// The share of API requests, 0 to 1, answered 500 or 503 without being carried out.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = share)]
    pub failure_rate: f64,
    /// The share of API requests, 0 to 1, answered 502 with a plain-text body that quotes the
    /// request's headers, Authorization first, as a buggy proxy might: for testing that no
    /// output shows a credential.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = share)]
    pub echo_headers_rate: f64,
    /// The share of API requests, 0 to 1, delayed by --spike-latency on top of --latency.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = share, requires = "spike_latency")]
    pub spike_rate: f64,
    /// Milliseconds a latency spike adds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub spike_latency: u64,
    /// The share of API requests, 0 to 1, whose connection is closed without an answer, half of
    /// them before and half after the request is carried out.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = share)]
    pub drop_rate: f64,
    /// Every EVERY milliseconds, answer all API requests 429 (with Retry-After) for LENGTH.
    #[arg(long, value_name = "EVERY:LENGTH", value_parser = throttle)]
    pub throttle_bursts: Option<Throttle>,
    /// Play this answer Sinch leaves undocumented instead of the default one (repeatable; see
    /// docs/sinch-api.md).
    #[arg(long = "variant", value_name = "VARIANT", value_enum)]
    pub variants: Vec<crate::sim::Variant>,
    /// Accept a PATCH of this top-level app field (repeatable, e.g. processing_mode) and keep
    /// the app's own value, as Sinch may where its documentation is silent: for testing that
    /// an update that does not stick is reported, not resent in a loop.
    #[arg(long = "ignore-updates-of", value_name = "FIELD", value_parser = app_field)]
    pub ignore_updates_of: Vec<String>,
    /// Answer 429 beyond this many requests per second per project made with HTTP Basic (the
    /// key on every call), which Sinch rate-limits heavily without saying how much.
    #[arg(long, value_name = "RPS", default_value_t = NonZeroU32::new(crate::sim::BASIC_RATE_LIMIT).expect("not 0"))]
    pub basic_rate_limit: NonZeroU32,
    /// Accept only this access key (repeatable), for the projects after @ (any project without
    /// them; another one is answered 403); without --key any key id and secret are accepted.
    #[arg(long = "key", value_name = "KEY_ID:KEY_SECRET[@PROJECT[,PROJECT...]]", value_parser = key)]
    pub keys: Vec<Key>,
}

/// One `--key`: the key, and the projects it may use (empty: any).
#[derive(Clone, Debug)]
pub struct Key {
    id: String,
    secret: String,
    projects: Vec<String>,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

fn throttle(s: &str) -> Result<Throttle, String> {
    let parsed = s
        .split_once(':')
        .and_then(|(every, length)| Some((every.parse::<u64>().ok()?, length.parse::<u64>().ok()?)));
    match parsed {
        Some((every, length)) if length < every => Ok(Throttle {
            every: Duration::from_millis(every),
            length: Duration::from_millis(length),
        }),
        _ => Err("expected EVERY:LENGTH in milliseconds, LENGTH less than EVERY".to_string()),
    }
}

fn app_field(s: &str) -> Result<String, String> {
    match crate::sim::store::APP_FIELDS.contains(&s) {
        true => Ok(s.to_string()),
        false => Err(format!(
            "{s:?} is not a writable app field: one of {}",
            crate::sim::store::APP_FIELDS.join(", ")
        )),
    }
}

/// `ID:SECRET`, or `ID:SECRET@P1,P2` (project ids hold no `@`: the last one starts them).
fn key(s: &str) -> Result<Key, String> {
    let (key, projects) = match s.rsplit_once('@') {
        Some((key, projects)) => (key, projects.split(',').map(str::to_string).collect()),
        None => (s, Vec::new()),
    };
    match key.split_once(':') {
        Some((id, secret))
            if !id.is_empty() && !secret.is_empty() && projects.iter().all(|p: &String| !p.is_empty()) =>
        {
            Ok(Key {
                id: id.to_string(),
                secret: secret.to_string(),
                projects,
            })
        }
        _ => Err("expected KEY_ID:KEY_SECRET, or KEY_ID:KEY_SECRET@PROJECT[,PROJECT...]".to_string()),
    }
}

pub fn exec(args: Args) -> crate::Result<u8> {
    let config = Config {
        token_lifetime: Duration::from_secs(args.token_lifetime),
        rate_limit: Some(args.rate_limit),
        basic_rate_limit: Some(args.basic_rate_limit),
        latency: Duration::from_millis(args.latency),
        failure_rate: args.failure_rate,
        echo_headers_rate: args.echo_headers_rate,
        spike_rate: args.spike_rate,
        spike_latency: Duration::from_millis(args.spike_latency),
        drop_rate: args.drop_rate,
        throttle: args.throttle_bursts,
        mask_secrets: args.mask_secrets,
        state_file: args.state,
        keys: args.keys.iter().map(|k| (k.id.clone(), k.secret.clone())).collect(),
        key_projects: args
            .keys
            .into_iter()
            .filter(|k| !k.projects.is_empty())
            .map(|k| (k.id, k.projects))
            .collect(),
        variants: args.variants,
        ignore_updates_of: args.ignore_updates_of,
    };
    if !args.listen.ip().is_loopback() && config.keys.is_empty() {
        // Its state holds every secret sent to it, and without --key it answers anyone.
        eprintln!(
            "warning: listening on {}, beyond this machine, and accepting any access key: whoever reaches it can read and change what it holds; give --key KEY_ID:KEY_SECRET, or listen on 127.0.0.1",
            args.listen
        );
    }
    super::runtime()?.block_on(async {
        let sim = Sim::start(config, args.listen).await?;
        // Scripts wait for this line and read the port from it.
        let mut out = std::io::stdout();
        writeln!(out, "sinch-operator sim listening on {}", sim.url()).map_err(crate::Error::Output)?;
        out.flush().map_err(crate::Error::Output)?;
        sim.run_until(shutdown_signal()).await;
        Ok(exit::OK)
    })
}

/// Ctrl-C, or SIGTERM from a process manager.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
