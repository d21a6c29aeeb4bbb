//! The HTTP client of the real API: OAuth2 tokens, one rate limiter per project, a bound on
//! requests in flight, and retries with backoff. It sends [`Request`]s, so what `plan` shows is
//! what goes on the wire.
//!
//! Here: the configuration, the shared [`Client`] and the typed calls of a [`Project`]; one
//! request's life (limits, attempts, retries, answers) is in `send.rs`, tokens in `token.rs`.

mod send;
mod token;

use super::Sensitive;
use super::app::{App, ListAppsResponse};
use super::endpoints::Endpoints;
use super::error::{ErrorKind, RequestError};
use super::request::{Method, Request};
use super::settings::{IdentityConflict, ListIdentityConflictsResponse, ProjectSettings, ProjectSettingsRequest};
use super::template::{ListTemplatesResponse, ListTranslationsResponse, Template, Translation};
use super::webhook::{ListWebhooksResponse, Webhook};
use crate::model::Region;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use token::{TokenKey, TokenSlot};
use tokio::sync::Semaphore;

/// Requests per second per project: an eighth of the 800/s that Sinch allows a project for
/// everything, production message traffic included.
pub const DEFAULT_RATE_LIMIT: u32 = 100;
/// Enough requests in flight to reach the rate limit at 300 ms a request.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// `oauth` (the default) or `basic`: HTTP Basic with the key on every call, for tests only
/// (Sinch rate-limits it heavily).
pub const AUTH_VAR: &str = "SINCH_AUTH";
/// The largest page of identity conflicts the API serves.
const CONFLICTS_PAGE_SIZE: u32 = 20;
/// More pages than any project holds (200,000 conflicts): a list that goes on is refused.
const MAX_PAGES: usize = 10_000;
/// Rate limiters kept while no handle uses them.
const MAX_IDLE_PROJECTS: usize = 256;
/// The largest answer read. A list of 1,000 apps is well under 1 MiB; parsed, a hostile body
/// of tiny values (`[],[],...`) grows about tenfold, so 8 MiB stays far below the controller's
/// 256 MiB pod limit even with several read at once.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// Identity conflicts read at most: planning only needs to know there are some, and the first.
pub const MAX_CONFLICTS: usize = 1_000;

/// An access key of a project.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub key_id: String,
    pub key_secret: Sensitive,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    #[default]
    OAuth,
    Basic,
}

/// How hard to try before a retryable failure is reported.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` obeyed as given; longer ones are cut to this.
    pub max_retry_after: Duration,
    /// The longest time one request may spend waiting between its attempts; a retry that would
    /// wait longer is not made and the failure is reported. The controller keeps this short:
    /// a reconcile waiting minutes on a throttled project holds one of the workers every
    /// tenant shares; it requeues instead.
    pub max_total_wait: Duration,
}

impl RetryPolicy {
    /// The controller's: retries within 10 s in all. A longer wait (a 429 with a long
    /// `Retry-After`, an API down) ends the reconcile, which requeues with backoff and frees its
    /// worker for other tenants' objects.
    pub fn controller() -> RetryPolicy {
        RetryPolicy {
            max_total_wait: Duration::from_secs(10),
            ..RetryPolicy::default()
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            max_total_wait: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub endpoints: Endpoints,
    pub auth: AuthMode,
    pub rate_limit: NonZeroU32,
    pub concurrency: NonZeroUsize,
    pub retry: RetryPolicy,
    /// For one HTTP exchange.
    pub timeout: Duration,
    /// The largest answer read; a longer one is an error, not buffered.
    pub max_body_bytes: usize,
}

/// Requests sent to Sinch, by method, route, HTTP status (`error` when no answer came) and why
/// they were sent.
pub type RequestCounter = Family<RequestLabels, Counter>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template, e.g. `/v1/projects/{project_id}/apps`: ids stay out of the labels.
    pub route: String,
    pub status: String,
    /// `poll`, `read-back` or `write`.
    pub reason: String,
}

/// Why a request is sent, as the controller counts them: set around a call with
/// [`Purpose::scope`]; unset, a GET is a poll and anything else a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Observing a scope: the lists that planning reads.
    Poll,
    /// Reading one object again after writing it (an app's channel states, a template's version).
    ReadBack,
    /// A change of a plan, and what carrying it out needs.
    Write,
}

tokio::task_local! {
    static PURPOSE: Purpose;
}

impl Purpose {
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        PURPOSE.scope(self, f).await
    }

    /// The reason set around the current task, if any.
    pub fn current() -> Option<Purpose> {
        PURPOSE.try_with(|r| *r).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Poll => "poll",
            Purpose::ReadBack => "read-back",
            Purpose::Write => "write",
        }
    }

    fn of(method: Method) -> Purpose {
        Purpose::current().unwrap_or(if method == Method::Get {
            Purpose::Poll
        } else {
            Purpose::Write
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: Endpoints::default(),
            auth: AuthMode::OAuth,
            rate_limit: NonZeroU32::new(DEFAULT_RATE_LIMIT).expect("not zero"),
            concurrency: NonZeroUsize::new(DEFAULT_CONCURRENCY).expect("not zero"),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl Config {
    /// Endpoints and auth mode from `lookup` (the environment, in the CLI); rate and
    /// concurrency stay at their defaults for the caller's flags to set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> crate::Result<Config> {
        let auth = match lookup(AUTH_VAR).as_deref() {
            None | Some("") | Some("oauth") => AuthMode::OAuth,
            Some("basic") => AuthMode::Basic,
            Some(other) => {
                return Err(crate::Error::Config {
                    var: AUTH_VAR,
                    message: format!("{other:?} is not an auth mode; use oauth or basic"),
                });
            }
        };
        Ok(Config {
            endpoints: Endpoints::from_lookup(&lookup)?,
            auth,
            ..Config::default()
        })
    }
}

/// Shared by every call of a command: connections, tokens, rate limiters, the in-flight bound.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: Config,
    /// (token URL, key id, digest of the key secret) -> the cached token; the async lock makes
    /// concurrent callers wait for one fetch instead of each fetching. The secret is part of the
    /// key: a caller who knows only a key id never gets that key's token.
    tokens: Mutex<HashMap<TokenKey, TokenSlot>>,
    /// Project id -> its limiter: all calls to one project share one budget, whatever region.
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    in_flight: Semaphore,
    /// Where each attempt is counted, once someone reads the counts (the controller's `/metrics`).
    requests: std::sync::OnceLock<RequestCounter>,
    sent: SentCounts,
}

/// What a command sent, for the note a run under faults ends with.
#[derive(Default)]
struct SentCounts {
    requests: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
}

/// API requests sent so far (token requests not included), and how many of them were retries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub requests: u64,
    pub retries: u64,
}

impl Client {
    pub fn new(config: Config) -> crate::Result<Client> {
        let http = reqwest::Client::builder()
            // A redirect would carry the key or token to wherever the answer points.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("sinch-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Config {
                var: "TLS",
                message: e.to_string(),
            })?;
        let in_flight = Semaphore::new(config.concurrency.get());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                tokens: Mutex::default(),
                limiters: Mutex::default(),
                in_flight,
                requests: std::sync::OnceLock::new(),
                sent: SentCounts::default(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Counts every attempt from now on in `counter`.
    pub fn count_requests(&self, counter: RequestCounter) {
        let _ = self.inner.requests.set(counter);
    }

    pub fn sent(&self) -> Sent {
        let sent = &self.inner.sent;
        Sent {
            requests: sent.requests.load(Relaxed),
            retries: sent.retries.load(Relaxed),
        }
    }

    /// A handle for the calls to one project in one region.
    pub fn project(&self, id: &str, region: Region, credentials: Credentials) -> Project {
        let mut limiters = self.inner.limiters.lock().expect("never poisoned");
        // Every project id a tenant names takes a limiter: those no handle uses go once there
        // are many (an idle limiter holds no budget worth keeping).
        if limiters.len() >= MAX_IDLE_PROJECTS && !limiters.contains_key(id) {
            limiters.retain(|_, limiter| Arc::strong_count(limiter) > 1);
        }
        let limiter = limiters
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::direct(quota(self.inner.config.rate_limit))))
            .clone();
        Project {
            client: self.clone(),
            id: id.to_string(),
            region,
            credentials: Arc::new(credentials),
            limiter,
        }
    }
}

/// `rate` requests a second, in bursts of at most a twentieth of it (50 ms worth): a burst of a
/// whole second's worth on top of the steady rate would send up to twice the rate in the first
/// second of a run, over what the user configured and what Sinch allows.
fn quota(rate: NonZeroU32) -> Quota {
    let burst = NonZeroU32::new(rate.get().div_ceil(20)).expect("at least 1");
    Quota::per_second(rate).allow_burst(burst)
}

/// The calls to one project in one region.
#[derive(Clone)]
pub struct Project {
    client: Client,
    pub id: String,
    pub region: Region,
    credentials: Arc<Credentials>,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl Project {
    // The typed calls, one per operation of the API.

    /// Fetches the access token ahead of the first call (OAuth; the token slot is per key and
    /// region, whatever the project), so that it arrives while the caller does other work. A
    /// failure is left for the first call to report.
    pub async fn warm_up(&self) {
        if self.client.inner.config.auth == AuthMode::OAuth {
            let _ = self.token().await;
        }
    }

    pub async fn list_apps(&self) -> Result<Vec<App>, RequestError> {
        Ok(self.call::<ListAppsResponse>(&Request::list_apps(&self.id)).await?.apps)
    }

    pub async fn get_app(&self, app: &str) -> Result<App, RequestError> {
        self.call(&Request::get_app(&self.id, app)).await
    }

    pub async fn create_app(&self, body: &App) -> Result<App, RequestError> {
        self.call(&Request::create_app(&self.id, body)).await
    }

    pub async fn update_app(&self, app: &str, body: &App, mask: Vec<String>) -> Result<App, RequestError> {
        self.call(&Request::update_app(&self.id, app, body, mask)).await
    }

    pub async fn delete_app(&self, app: &str) -> Result<(), RequestError> {
        self.call::<serde::de::IgnoredAny>(&Request::delete_app(&self.id, app))
            .await
            .map(drop)
    }

    pub async fn list_webhooks(&self, app: &str) -> Result<Vec<Webhook>, RequestError> {
        Ok(self
            .call::<ListWebhooksResponse>(&Request::list_webhooks(&self.id, app))
            .await?
            .webhooks)
    }

    pub async fn get_webhook(&self, webhook: &str) -> Result<Webhook, RequestError> {
        self.call(&Request::get_webhook(&self.id, webhook)).await
    }

    pub async fn create_webhook(&self, body: &Webhook) -> Result<Webhook, RequestError> {
        self.call(&Request::create_webhook(&self.id, body)).await
    }

    pub async fn update_webhook(
        &self,
        webhook: &str,
        body: &Webhook,
        mask: Vec<String>,
    ) -> Result<Webhook, RequestError> {
        self.call(&Request::update_webhook(&self.id, webhook, body, mask)).await
    }

    pub async fn delete_webhook(&self, webhook: &str) -> Result<(), RequestError> {
        self.call::<serde::de::IgnoredAny>(&Request::delete_webhook(&self.id, webhook))
            .await
            .map(drop)
    }

    pub async fn list_templates(&self) -> Result<Vec<Template>, RequestError> {
        Ok(self
            .call::<ListTemplatesResponse>(&Request::list_templates(&self.id))
            .await?
            .templates)
    }

    pub async fn get_template(&self, template: &str) -> Result<Template, RequestError> {
        self.call(&Request::get_template(&self.id, template)).await
    }

    pub async fn create_template(&self, body: &Template) -> Result<Template, RequestError> {
        self.call(&Request::create_template(&self.id, body)).await
    }

    pub async fn update_template(&self, template: &str, body: &Template) -> Result<Template, RequestError> {
        self.call(&Request::update_template(&self.id, template, body)).await
    }

    pub async fn delete_template(&self, template: &str) -> Result<(), RequestError> {
        self.call::<serde::de::IgnoredAny>(&Request::delete_template(&self.id, template))
            .await
            .map(drop)
    }

    pub async fn list_translations(
        &self,
        template: &str,
        language_code: Option<&str>,
        translation_version: Option<&str>,
    ) -> Result<Vec<Translation>, RequestError> {
        let request = Request::list_translations(&self.id, template, language_code, translation_version);
        Ok(self.call::<ListTranslationsResponse>(&request).await?.translations)
    }

    /// The project's settings; `None` when it has none yet.
    pub async fn get_settings(&self) -> Result<Option<ProjectSettings>, RequestError> {
        match self.call(&Request::get_settings(&self.id)).await {
            Ok(settings) => Ok(Some(settings)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_settings(&self, body: &ProjectSettingsRequest) -> Result<ProjectSettings, RequestError> {
        self.call(&Request::create_settings(&self.id, body)).await
    }

    pub async fn update_settings(&self, body: &ProjectSettingsRequest) -> Result<ProjectSettings, RequestError> {
        self.call(&Request::update_settings(&self.id, body)).await
    }

    pub async fn delete_settings(&self) -> Result<(), RequestError> {
        self.call::<serde::de::IgnoredAny>(&Request::delete_settings(&self.id))
            .await
            .map(drop)
    }

    /// Every identity conflict of the project, all pages read.
    pub async fn list_identity_conflicts(&self) -> Result<Vec<IdentityConflict>, RequestError> {
        let mut conflicts = Vec::new();
        let mut token = String::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let request = Request::list_identity_conflicts(&self.id, CONFLICTS_PAGE_SIZE, &token);
            let page: ListIdentityConflictsResponse = self.call(&request).await?;
            conflicts.extend(page.conflicts);
            if conflicts.len() >= MAX_CONFLICTS {
                conflicts.truncate(MAX_CONFLICTS);
                return Ok(conflicts);
            }
            let Some(next) = page.next_page_token.filter(|t| !t.is_empty()) else {
                return Ok(conflicts);
            };
            // A server whose tokens come round again would be read forever.
            if !seen.insert(next.clone()) || seen.len() > MAX_PAGES {
                let message =
                    format!("the pages do not end: page token {next:?} came back or more than {MAX_PAGES} pages");
                return Err(self.error(&request, 1, ErrorKind::Decode(message)));
            }
            token = next;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_burst_is_a_twentieth_of_the_rate() {
        let q = super::quota(std::num::NonZeroU32::new(700).unwrap());
        assert_eq!(q.burst_size().get(), 35);
        assert_eq!(q.replenish_interval(), std::time::Duration::from_secs(1) / 700);
        assert_eq!(
            super::quota(std::num::NonZeroU32::new(1).unwrap()).burst_size().get(),
            1
        );
    }

    use super::*;

    #[test]
    fn sinch_auth_selects_oauth_or_basic() {
        let config = |v: Option<&str>| Config::from_lookup(|k| (k == AUTH_VAR).then(|| v.map(String::from)).flatten());
        assert_eq!(config(None).unwrap().auth, AuthMode::OAuth);
        assert_eq!(config(Some("oauth")).unwrap().auth, AuthMode::OAuth);
        assert_eq!(config(Some("basic")).unwrap().auth, AuthMode::Basic);
        assert_eq!(
            config(Some("Basic")).unwrap_err().to_string(),
            "SINCH_AUTH: \"Basic\" is not an auth mode; use oauth or basic"
        );
    }
}
