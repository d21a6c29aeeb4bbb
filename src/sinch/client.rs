//! The HTTP client of the real API: OAuth2 tokens, one rate limiter per project, a bound on
//! requests in flight, and retries with backoff. It sends [`Request`]s, so what `plan` shows is
//! what goes on the wire.

use super::Sensitive;
use super::app::{App, ListAppsResponse};
use super::endpoints::Endpoints;
use super::error::{ApiError, Class, ErrorKind, RequestError};
use super::request::{Api, Method, Request};
use super::settings::{IdentityConflict, ListIdentityConflictsResponse, ProjectSettings, ProjectSettingsRequest};
use super::template::{ListTemplatesResponse, ListTranslationsResponse, Template, Translation};
use super::webhook::{ListWebhooksResponse, Webhook};
use crate::model::Region;
use backon::BackoffBuilder;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;

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
/// An access token is never kept longer than this, whatever `expires_in` says.
const MAX_TOKEN_LIFETIME_S: u64 = 24 * 3600;
/// The largest answer read: a list of thousands of apps is a few MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential delays with full jitter, one per retry.
    fn backoff(&self) -> impl Iterator<Item = Duration> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_jitter()
            .build()
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
/// [`Reason::scope`]; unset, a GET is a poll and anything else a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Observing a scope: the lists that planning reads.
    Poll,
    /// Reading one object again after writing it (an app's channel states, a template's version).
    ReadBack,
    /// A change of a plan, and what carrying it out needs.
    Write,
}

tokio::task_local! {
    static REASON: Reason;
}

impl Reason {
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        REASON.scope(self, f).await
    }

    /// The reason set around the current task, if any.
    pub fn current() -> Option<Reason> {
        REASON.try_with(|r| *r).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Poll => "poll",
            Reason::ReadBack => "read-back",
            Reason::Write => "write",
        }
    }

    fn of(method: Method) -> Reason {
        Reason::current().unwrap_or(if method == Method::Get {
            Reason::Poll
        } else {
            Reason::Write
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

type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;
/// (token URL, key id, digest of the key secret).
type TokenKey = (String, String, Vec<u8>);

#[derive(Clone)]
struct Token {
    value: Sensitive,
    renew_at: Instant,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Sensitive,
    expires_in: u64,
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
        let limiter = self
            .inner
            .limiters
            .lock()
            .expect("never poisoned")
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

/// Held in memory only, to tell keys apart.
fn secret_digest(secret: &Sensitive) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.0.as_bytes())
        .as_ref()
        .to_vec()
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

/// Why one attempt failed.
enum Failure {
    /// A 401 that says the bearer token expired: renew it and try again at once.
    TokenExpired(Sensitive),
    Other(ErrorKind),
}

impl Project {
    /// Sends `request`, retrying what is worth retrying; the body of the 2xx answer.
    pub async fn send(&self, request: &Request) -> Result<Vec<u8>, RequestError> {
        let config = &self.client.inner.config;
        let mut backoff = config.retry.backoff();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.client.inner.sent.retries.fetch_add(1, Relaxed);
            }
            let span = tracing::debug_span!(
                "sinch_request",
                method = request.method.as_str(),
                route = %request.route,
                project = %self.id,
                region = %self.region,
                attempt,
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            );
            let kind = match self.attempt(request).instrument(span).await {
                Ok(body) => return Ok(body),
                // Renewed at once, without backoff; bounded by the attempts like any retry, so a
                // server that refuses every fresh token (a skewed clock) is not asked forever.
                Err(Failure::TokenExpired(token)) if (attempt as usize) < config.retry.max_attempts => {
                    self.forget_token(&token).await;
                    continue;
                }
                Err(Failure::TokenExpired(_)) => ErrorKind::Status {
                    status: 401,
                    api: Some(ApiError {
                        message: Some("the access token had expired on every attempt, fresh ones included".into()),
                        ..ApiError::default()
                    }),
                    body: String::new(),
                    retry_after: None,
                },
                Err(Failure::Other(kind)) => kind,
            };
            let retry_after = match &kind {
                ErrorKind::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let error = RequestError {
                request: request.describe(),
                project: self.id.clone(),
                region: self.region,
                attempts: attempt,
                kind,
            };
            if !worth_retrying(request.method, &error) {
                return Err(error);
            }
            let Some(delay) = backoff.next() else { return Err(error) };
            let delay = retry_after.map_or(delay, |d| d.min(config.retry.max_retry_after));
            tracing::info!(request = %error.request, status = ?error.status(), ?delay, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends `request` and reads the answer as `T`.
    pub async fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, RequestError> {
        let body = self.send(request).await?;
        // DELETE answers `{}` or nothing at all.
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(body).map_err(|e| RequestError {
            request: request.describe(),
            project: self.id.clone(),
            region: self.region,
            attempts: 1,
            kind: ErrorKind::Decode(e.to_string()),
        })
    }

    async fn attempt(&self, request: &Request) -> Result<Vec<u8>, Failure> {
        let inner = &self.client.inner;
        self.limiter.until_ready().await;
        let _permit = inner.in_flight.acquire().await.expect("the semaphore is never closed");
        // Taken once the request may go: a token taken before the wait for a slot can expire
        // in the queue.
        let auth = match inner.config.auth {
            AuthMode::OAuth => Some(self.token().await.map_err(Failure::Other)?),
            AuthMode::Basic => None,
        };

        let mut http = inner.http.request(reqwest_method(request.method), self.url(request));
        http = match &auth {
            Some(token) => http.bearer_auth(&token.0),
            None => http.basic_auth(&self.credentials.key_id, Some(&self.credentials.key_secret.0)),
        };
        if let Some(body) = &request.body {
            http = http.json(body);
        }
        let started = Instant::now();
        let result = http.send().await;
        self.client.inner.sent.requests.fetch_add(1, Relaxed);
        let span = tracing::Span::current();
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Some(counter) = inner.requests.get() {
            let status = result
                .as_ref()
                .map_or("error".into(), |r| r.status().as_u16().to_string());
            counter
                .get_or_create(&RequestLabels {
                    method: request.method.as_str().into(),
                    route: request.route.to_string(),
                    status,
                    reason: Reason::of(request.method).as_str().into(),
                })
                .inc();
        }
        let response = result.map_err(|e| Failure::Other(transport(e)))?;
        let status = response.status().as_u16();
        span.record("status", status);
        let expired = status == 401
            && response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("expired"));
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            // Any size: a hostile 1e20 waits the longest we ever wait (max_retry_after).
            .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX));
        let body = read_body(response, inner.config.max_body_bytes)
            .await
            .map_err(|e| Failure::Other(e.into()))?;
        tracing::debug!("answered");
        if (200..300).contains(&status) {
            return Ok(body.to_vec());
        }
        if let (true, Some(token)) = (expired, auth) {
            return Err(Failure::TokenExpired(token));
        }
        Err(Failure::Other(ErrorKind::Status {
            status,
            api: ApiError::parse(&body),
            body: excerpt(&body),
            retry_after,
        }))
    }

    fn url(&self, request: &Request) -> String {
        let endpoints = &self.client.inner.config.endpoints;
        let base = match request.api {
            Api::Conversation => endpoints.conversation(self.region),
            Api::Template => endpoints.template(self.region),
        };
        let mut url = format!("{}{}", base.as_str().trim_end_matches('/'), request.path);
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &request.query {
            query.append_pair(k, v);
        }
        let mut query = query.finish();
        if let Some(mask) = &request.update_mask {
            // Field names are [a-z_]: the comma is sent as it is, as the Node SDK does.
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("update_mask=");
            query.push_str(&mask.join(","));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        url
    }

    fn token_slot(&self) -> TokenSlot {
        let url = self.client.inner.config.endpoints.auth(self.region).to_string();
        self.client
            .inner
            .tokens
            .lock()
            .expect("never poisoned")
            .entry((
                url,
                self.credentials.key_id.clone(),
                secret_digest(&self.credentials.key_secret),
            ))
            .or_default()
            .clone()
    }

    /// The cached token, or a new one when it is missing or about to expire.
    async fn token(&self) -> Result<Sensitive, ErrorKind> {
        let slot = self.token_slot();
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops `failed` from the cache, unless another call has already replaced it.
    async fn forget_token(&self, failed: &Sensitive) {
        let slot = self.token_slot();
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == failed) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, ErrorKind> {
        let url = self.client.inner.config.endpoints.auth(self.region);
        let token_error = |status: Option<u16>, message: String| ErrorKind::Token {
            url: url.to_string(),
            status,
            message,
        };
        let response = self
            .client
            .inner
            .http
            .post(url.clone())
            .basic_auth(&self.credentials.key_id, Some(&self.credentials.key_secret.0))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| token_error(None, transport_message(e)))?;
        let status = response.status().as_u16();
        let body = read_body(response, self.client.inner.config.max_body_bytes)
            .await
            .map_err(|e| token_error(Some(status), ErrorKind::from(e).to_string()))?;
        if !(200..300).contains(&status) {
            return Err(token_error(
                Some(status),
                format!("HTTP {status}{}", oauth_error(&body)),
            ));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| token_error(Some(status), format!("the answer could not be read: {e}")))?;
        // Renew a tenth of the lifetime (at most a minute) early, so no call goes out with a
        // token that expires on its way.
        // A lifetime of any size is taken, but never trusted for more than a day.
        let lifetime = Duration::from_secs(token.expires_in.min(MAX_TOKEN_LIFETIME_S));
        let renew_at = Instant::now() + lifetime - (lifetime / 10).min(Duration::from_secs(60));
        tracing::debug!(expires_in = token.expires_in, "new access token");
        Ok(Token {
            value: token.access_token,
            renew_at,
        })
    }

    // The typed calls, one per operation of the API.

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
            let Some(next) = page.next_page_token.filter(|t| !t.is_empty()) else {
                return Ok(conflicts);
            };
            // A server whose tokens come round again would be read forever.
            if !seen.insert(next.clone()) || seen.len() > MAX_PAGES {
                return Err(RequestError {
                    request: request.describe(),
                    project: self.id.clone(),
                    region: self.region,
                    attempts: 1,
                    kind: ErrorKind::Decode(format!(
                        "the pages do not end: page token {next:?} came back or more than {MAX_PAGES} pages"
                    )),
                });
            }
            token = next;
        }
    }
}

/// Rule 8, with one exception: a POST that may have reached the server is not sent again, since
/// a create whose answer was lost would then create a second object. The next run adopts the
/// first by its natural key instead.
fn worth_retrying(method: Method, error: &RequestError) -> bool {
    if error.class() != Class::Retryable {
        return false;
    }
    match (&error.kind, method) {
        (_, Method::Get | Method::Put | Method::Patch | Method::Delete) => true,
        (ErrorKind::Status { status: 429, .. }, Method::Post) => true,
        (ErrorKind::Transport { unsent, .. }, Method::Post) => *unsent,
        (ErrorKind::Token { .. }, Method::Post) => true,
        (_, Method::Post) => false,
    }
}

fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge(usize),
}

impl From<BodyError> for ErrorKind {
    fn from(e: BodyError) -> ErrorKind {
        match e {
            BodyError::Transport(e) => transport(e),
            BodyError::TooLarge(limit) => ErrorKind::Decode(format!("the answer is larger than {limit} bytes")),
        }
    }
}

/// The body, refused once it outgrows `limit`: a hostile server cannot make us buffer without end.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(e: reqwest::Error) -> ErrorKind {
    let unsent = e.is_connect();
    ErrorKind::Transport {
        message: transport_message(e),
        unsent,
    }
}

/// reqwest's error with its causes, without the URL (which the request error already names).
fn transport_message(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The start of a body that is not the API's error shape.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `: description` from an OAuth error (`{"error": "invalid_client", "error_description": ...}`),
/// or from the API's own error shape.
fn oauth_error(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        error_description: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<OAuthError>(body) {
        return format!(": {}", e.error_description.unwrap_or(e.error));
    }
    match ApiError::parse(body).and_then(|e| e.message) {
        Some(message) => format!(": {message}"),
        None if body.is_empty() => String::new(),
        None => format!(": {}", excerpt(body)),
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

    #[test]
    fn a_body_that_is_not_the_api_error_shape_is_quoted_briefly() {
        assert_eq!(
            excerpt(b"<html>\n  <body>502 Bad Gateway</body>\n</html>"),
            "<html> <body>502 Bad Gateway</body> </html>"
        );
        assert_eq!(excerpt("é".repeat(150).as_bytes()).chars().count(), 100);
        assert_eq!(
            oauth_error(br#"{"error":"invalid_client","error_description":"bad key"}"#),
            ": bad key"
        );
        assert_eq!(oauth_error(br#"{"error":"invalid_client"}"#), ": invalid_client");
        assert_eq!(oauth_error(b""), "");
    }
}
