//! A faithful in-memory Sinch API: the OAuth token endpoint at its root and the Conversation and
//! Template Management APIs under `/{region}`. It implements what the API documents (see
//! `store`, and `rules` for what it refuses) and the behaviours design.md fixes where the
//! documents are silent, plus what tests and benchmarks need: token lifetime, rate limit,
//! latency, failures, request counts.
//!
//! It shares the wire types' field names with `sinch` but none of its logic: it must behave like
//! the API, not like our client expects.

pub mod rules;
mod server;
pub mod store;

use crate::model::Region;
use crate::sinch::Sensitive;
use crate::sinch::client::{self, Client, Credentials, Project, RetryPolicy};
use crate::sinch::endpoints::{AUTH_URL_VAR, CONVERSATION_URL_VAR, Endpoints, TEMPLATE_URL_VAR};
use crate::sinch::settings::IdentityConflict;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Store;

/// Requests per second a project may make across its apps (fact sheet §5.5).
pub const PROJECT_RATE_LIMIT: u32 = 800;

/// Requests per second a project may make with HTTP Basic (the key on every call), within
/// [`PROJECT_RATE_LIMIT`]. Sinch says only that Basic is "heavily rate limited" and meant for
/// testing ([CONV] info; fact sheet §5.1) and gives no figure: 10 is the simulator's, low enough
/// that a client using Basic meets its 429s at once.
pub const BASIC_RATE_LIMIT: u32 = 10;

/// How many API requests the journal keeps, the latest: more than any test or benchmark run
/// asks about, and a bound for a simulator that serves for days.
pub const JOURNAL_LENGTH: usize = 10_000;

/// An answer Sinch does not document, played instead of the simulator's default one (each
/// with the sources that leave it open in docs/sinch-api.md). The engine and controller tests
/// run against each, so the product works with every plausible answer, not one picked here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Variant {
    /// A template PUT with a stale version is answered 400 `FAILED_PRECONDITION` (default: 409
    /// `ABORTED`).
    StalePut400,
    /// A project that never had settings answers GET with 200 and their defaults, and PATCH with
    /// 404 until a POST made them (default: GET answers 404).
    SettingsDefaults,
    /// Secrets are answered masked but for their last four characters, `****1234` (default: in
    /// clear; `--mask-secrets`: all stars).
    PartialMask,
    /// `message_retry_settings` and `delivery_report_based_fallback` are answered `null` while
    /// they hold their defaults (default: the defaults).
    NullDefaults,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// What the token endpoint gives as `expires_in`, and when the token stops working.
    pub token_lifetime: Duration,
    /// Requests per second per project before 429; none: unlimited. The default is the API's
    /// documented 800.
    pub rate_limit: Option<NonZeroU32>,
    /// Requests per second per project with HTTP Basic before 429, within `rate_limit`; none:
    /// only `rate_limit`. The default is [`BASIC_RATE_LIMIT`].
    pub basic_rate_limit: Option<NonZeroU32>,
    /// Added to every API request.
    pub latency: Duration,
    /// The share of API requests (0 to 1) answered 500 or 503 without being carried out.
    pub failure_rate: f64,
    /// The share of API requests (0 to 1) answered 502 by "a buggy proxy": a plain-text body
    /// that quotes the request's headers, `Authorization` first, for tests that no output of
    /// the product ever shows a credential.
    pub echo_headers_rate: f64,
    /// The share of API requests (0 to 1) delayed by `spike_latency` on top of `latency`.
    pub spike_rate: f64,
    pub spike_latency: Duration,
    /// The share of API requests (0 to 1) whose connection is closed without an answer: half of
    /// them before the request is carried out, half after (a write whose answer was lost).
    pub drop_rate: f64,
    /// Bursts of throttling: every API request in one is answered 429 with `Retry-After`.
    pub throttle: Option<Throttle>,
    /// Answer secrets as `********` instead of in clear.
    pub mask_secrets: bool,
    /// Where the state is read from at start and written after every change.
    pub state_file: Option<PathBuf>,
    /// Access keys (id, secret) accepted; empty: any key is.
    pub keys: Vec<(String, String)>,
    /// The undocumented answers played instead of the defaults.
    pub variants: Vec<Variant>,
    /// Top-level app fields (`processing_mode`...) whose updates are accepted and not kept: a
    /// PATCH that writes one answers 200 and the app keeps its own value, as a service that
    /// ignores or normalises a field might. A create still stores them.
    pub ignore_updates_of: Vec<String>,
    /// The projects a key id may use; a key not named here may use any. Another project is
    /// answered 403, as Sinch answers when "the provided client_id and client_secret are not
    /// associated with the project_id" ([CONV] info, common error responses).
    pub key_projects: HashMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token_lifetime: Duration::from_secs(3600),
            rate_limit: NonZeroU32::new(PROJECT_RATE_LIMIT),
            basic_rate_limit: NonZeroU32::new(BASIC_RATE_LIMIT),
            latency: Duration::ZERO,
            failure_rate: 0.0,
            echo_headers_rate: 0.0,
            spike_rate: 0.0,
            spike_latency: Duration::ZERO,
            drop_rate: 0.0,
            throttle: None,
            mask_secrets: false,
            state_file: None,
            keys: Vec::new(),
            variants: Vec::new(),
            ignore_updates_of: Vec::new(),
            key_projects: HashMap::new(),
        }
    }
}

/// A burst of `length` at the start of every `every`, counted from the simulator's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub every: Duration,
    pub length: Duration,
}

impl Throttle {
    /// Inside a burst: how long it still lasts.
    fn remaining(&self, since_start: Duration) -> Option<Duration> {
        let every = self.every.as_nanos().max(1);
        let phase = Duration::from_nanos((since_start.as_nanos() % every) as u64);
        (phase < self.length).then(|| self.length - phase)
    }
}

/// Requests served, by `METHOD route`: how tests and benchmarks count calls.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct Stats {
    pub total: u64,
    /// Requests other than GET to the APIs (the token endpoint not included).
    pub writes: u64,
    pub requests: BTreeMap<String, u64>,
    /// Bytes of the API's answers (bodies only; the token endpoint not included).
    #[serde(default)]
    pub bytes: u64,
    /// Faults dealt, by kind: `500`, `503`, `429` (rate limit or injected), `502` (headers
    /// echoed), `dropped`, `spike`.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
}

impl Stats {
    /// The count of one `METHOD route`, e.g. `GET /{region}/v1/projects/{project_id}/apps`.
    pub fn count(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }
}

/// A failure to answer the next matching requests with (`POST /_sim/faults` takes the same).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Fault {
    pub status: u16,
    /// How many requests get it.
    #[serde(default = "one")]
    pub times: u32,
    /// Seconds, sent as `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Carry the request out first, then answer the failure: a write whose answer was lost.
    #[serde(default)]
    pub after_write: bool,
    /// Only requests whose `METHOD /path` contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<String>,
    /// The error message in the body; a generic one for the status without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One API request as received, for tests that assert exactly what a client sent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Call {
    pub method: String,
    /// With the region: `/us/v1/projects/p/apps`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

fn one() -> u32 {
    1
}

/// What the handlers share.
struct Shared {
    config: Config,
    started: Instant,
    store: Mutex<Store>,
    /// Token -> when it stops working, and the id of the key it was given to.
    tokens: Mutex<HashMap<String, (Instant, String)>>,
    stats: Mutex<Stats>,
    /// The last [`JOURNAL_LENGTH`] API requests, secrets in clear.
    journal: Mutex<VecDeque<Call>>,
    faults: Mutex<VecDeque<Fault>>,
    limiters: Mutex<HashMap<String, Arc<governor::DefaultDirectRateLimiter>>>,
    /// Held across a whole save, so that files are written in the order their states were taken
    /// (two concurrent saves must not let the older state land last).
    saving: Mutex<()>,
    /// Writes numbered above this wait until it is lifted (tests that crash a client mid-run).
    hold: tokio::sync::watch::Sender<Option<u64>>,
}

impl Shared {
    fn new(config: Config) -> crate::Result<Shared> {
        let store = match &config.state_file {
            Some(path) if path.exists() => {
                let io = |source| crate::Error::Io {
                    context: format!("cannot read {}", path.display()),
                    source,
                };
                let text = std::fs::read(path).map_err(io)?;
                serde_json::from_slice(&text).map_err(|e| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not a simulator state: {e}"),
                    ))
                })?
            }
            _ => Store::default(),
        };
        let mut store = store;
        store.variants = config.variants.iter().copied().collect();
        Ok(Shared {
            config,
            started: Instant::now(),
            store: Mutex::new(store),
            tokens: Mutex::default(),
            stats: Mutex::default(),
            journal: Mutex::default(),
            faults: Mutex::default(),
            limiters: Mutex::default(),
            saving: Mutex::default(),
            hold: tokio::sync::watch::Sender::new(None),
        })
    }

    /// Returns the number of this write (1 for the first), 0 for a read.
    fn count(&self, request: String, is_write: bool) -> u64 {
        let mut stats = self.stats.lock().expect("never poisoned");
        stats.total += 1;
        stats.writes += u64::from(is_write);
        *stats.requests.entry(request).or_default() += 1;
        if is_write { stats.writes } else { 0 }
    }

    /// Waits while write number `n` is held.
    async fn held(&self, n: u64) {
        let mut hold = self.hold.subscribe();
        // Only fails when the sender is gone, and `self` holds it.
        let _ = hold.wait_for(|h| h.is_none_or(|after| n <= after)).await;
    }

    fn record(&self, request: Call) {
        let mut journal = self.journal.lock().expect("never poisoned");
        if journal.len() == JOURNAL_LENGTH {
            journal.pop_front();
        }
        journal.push_back(request);
    }

    fn journal(&self) -> Vec<Call> {
        self.journal.lock().expect("never poisoned").iter().cloned().collect()
    }

    fn count_bytes(&self, n: usize) {
        self.stats.lock().expect("never poisoned").bytes += n as u64;
    }

    fn count_fault(&self, kind: &str) {
        *self
            .stats
            .lock()
            .expect("never poisoned")
            .faults
            .entry(kind.to_string())
            .or_default() += 1;
    }

    fn reset_stats(&self) {
        *self.stats.lock().expect("never poisoned") = Stats::default();
        self.journal.lock().expect("never poisoned").clear();
    }

    fn expire_tokens(&self) {
        let past = Instant::now() - Duration::from_millis(1);
        self.tokens
            .lock()
            .expect("never poisoned")
            .values_mut()
            .for_each(|(until, _)| *until = past);
    }

    fn inject(&self, fault: Fault) {
        self.faults.lock().expect("never poisoned").push_back(fault);
    }

    fn seed_identity_conflicts(&self, region: Region, project: &str, conflicts: Vec<IdentityConflict>) {
        self.store().seed_identity_conflicts(region, project, conflicts);
        self.save();
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("never poisoned")
    }

    /// Writes the state file, whole, by rename: a crash never leaves half of it. Mode 0600: it
    /// holds every secret the clients sent.
    fn save(&self) {
        let Some(path) = &self.config.state_file else { return };
        let _saving = self.saving.lock().expect("never poisoned");
        let json = serde_json::to_vec_pretty(&self.store().sealed()).expect("JSON values always serialise");
        let tmp = path.with_extension("tmp");
        if let Err(e) = crate::write_private(&tmp, &json).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the simulator state");
        }
    }
}

/// A running simulator: for tests in-process, and behind `sinch-operator sim`.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Binds `addr` (port 0: any free port) and serves in the background.
    pub async fn start(config: Config, addr: SocketAddr) -> crate::Result<Sim> {
        let shared = Arc::new(Shared::new(config)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| crate::Error::Io {
                context: format!("cannot listen on {addr}"),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| crate::Error::Io {
            context: "listen".into(),
            source,
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "the simulator stopped");
            }
        });
        Ok(Sim {
            shared,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Binds 127.0.0.1 on a free port: a simulator only this machine reaches (a test's, `--sim`'s).
    pub async fn start_local(config: Config) -> crate::Result<Sim> {
        Sim::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The endpoints that point a client here.
    pub fn endpoints(&self) -> Endpoints {
        let vars = self.env();
        Endpoints::from_lookup(|k| vars.iter().find(|(v, _)| *v == k).map(|(_, url)| url.clone()))
            .expect("loopback URLs are accepted")
    }

    /// A client pointed here, with the client's defaults but for `retry`.
    pub fn client(&self, retry: RetryPolicy) -> crate::Result<Client> {
        Client::new(client::Config {
            endpoints: self.endpoints(),
            retry,
            ..client::Config::default()
        })
    }

    /// Project `project` in `region` here, as the holder of `key` sees it (default retries).
    pub fn project_as(&self, project: &str, region: Region, key: Credentials) -> crate::Result<Project> {
        Ok(self.client(RetryPolicy::default())?.project(project, region, key))
    }

    /// Project `project` in `region` here, as a throwaway key sees it (accepted while `keys` is empty).
    pub fn project(&self, project: &str, region: Region) -> crate::Result<Project> {
        let key = Credentials {
            key_id: "someone-else".into(),
            key_secret: Sensitive("x".into()),
        };
        self.project_as(project, region, key)
    }

    /// The environment variables that point `sinch-operator` here.
    pub fn env(&self) -> [(&'static str, String); 3] {
        let url = self.url();
        [
            (AUTH_URL_VAR, format!("{url}/oauth2/token")),
            (CONVERSATION_URL_VAR, format!("{url}/{{region}}")),
            (TEMPLATE_URL_VAR, format!("{url}/{{region}}")),
        ]
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().expect("never poisoned").clone()
    }

    /// Clears the counts and the journal.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// The API requests received since the start (or the last reset), in order, the last
    /// [`JOURNAL_LENGTH`] of them, with the secrets they carried in clear: for tests in this
    /// process only (`GET /_sim/requests` redacts them).
    pub fn journal(&self) -> Vec<Call> {
        self.shared.journal()
    }

    /// Every access token the token endpoint handed out (expired ones too), for tests in this
    /// process that assert no output shows one.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared
            .tokens
            .lock()
            .expect("never poisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// Ends the life of every token handed out so far.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// Writes after the first `after` (counted since the start or the last reset) are received
    /// and counted, then wait, not carried out, until [`Sim::release_writes`]: a client can be
    /// stopped at an exact point of its run.
    pub fn hold_writes_after(&self, after: u64) {
        self.shared.hold.send_replace(Some(after));
    }

    /// Lets held writes go on.
    pub fn release_writes(&self) {
        self.shared.hold.send_replace(None);
    }

    pub fn seed_identity_conflicts(&self, region: Region, project: &str, conflicts: Vec<IdentityConflict>) {
        self.shared.store().seed_identity_conflicts(region, project, conflicts);
        self.shared.save();
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> Store {
        self.shared.store().clone()
    }

    /// Stops serving and waits until the server has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal keeps the last `JOURNAL_LENGTH` requests, the oldest dropped first.
    #[test]
    fn the_journal_keeps_the_latest_requests_and_no_more() {
        let shared = Shared::new(Config::default()).unwrap();
        for i in 0..JOURNAL_LENGTH + 3 {
            shared.record(Call {
                method: "GET".into(),
                path: format!("/{i}"),
                query: None,
                body: None,
            });
        }
        let journal = shared.journal();
        assert_eq!(journal.len(), JOURNAL_LENGTH);
        assert_eq!(journal[0].path, "/3");
        assert_eq!(journal[JOURNAL_LENGTH - 1].path, format!("/{}", JOURNAL_LENGTH + 2));
    }
}
