//! One request's life: the project's rate limiter, the in-flight bound, the attempt (auth,
//! counting, the answer read within its limit), and retries with backoff and `Retry-After`
//! (rule 8) until the answer is a success or an error worth reporting.

use super::{AuthMode, Project, Purpose, RequestLabels, RetryPolicy};
use crate::scrub;
use crate::sinch::Sensitive;
use crate::sinch::error::{ApiError, Class, ErrorKind, RequestError};
use crate::sinch::request::{Api, Method, Request};
use backon::BackoffBuilder;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tracing::Instrument;

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

/// Why one attempt failed.
enum Failure {
    /// A 401 that says the bearer token expired: renew it and try again at once.
    TokenExpired(Sensitive),
    Other(ErrorKind),
}

impl Project {
    /// Sends `request`, retrying what is worth retrying; the body of the 2xx answer.
    pub async fn send(&self, request: &Request) -> Result<Vec<u8>, RequestError> {
        if let Some(problem) = request.unsendable() {
            return Err(self.error(request, 0, ErrorKind::Unsendable(problem)));
        }
        let config = &self.client.inner.config;
        let mut backoff = config.retry.backoff();
        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt = attempt.saturating_add(1);
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
                Err(Failure::TokenExpired(_)) => expired_on_every_attempt(),
                Err(Failure::Other(kind)) => kind,
            };
            let retry_after = match &kind {
                ErrorKind::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let error = self.error(request, attempt, kind);
            if !worth_retrying(request.method, &error) {
                return Err(error);
            }
            let Some(delay) = backoff.next() else { return Err(error) };
            let delay = retry_after.map_or(delay, |d| d.min(config.retry.max_retry_after));
            waited = waited.saturating_add(delay);
            if waited > config.retry.max_total_wait {
                return Err(error);
            }
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
        serde_json::from_slice(body).map_err(|e| self.error(request, 1, ErrorKind::Decode(e.to_string())))
    }

    /// A failed request. The one place a [`RequestError`] is made: what the answer said is
    /// scrubbed here (rule 14), so no error carries a credential into any output.
    pub(super) fn error(&self, request: &Request, attempts: u32, kind: ErrorKind) -> RequestError {
        let mut known = scrub::Known::default();
        known.add_key(&self.credentials);
        if let Some(token) = self.cached_token() {
            known.add(&token.0);
        }
        RequestError {
            request: request.describe(),
            project: self.id.clone(),
            region: self.region,
            attempts,
            kind: kind.scrubbed(&known),
        }
    }

    /// One attempt: wait for the project's budget and a slot in flight, then send and read.
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
        let http = self.http_request(request, auth.as_ref());
        let started = Instant::now();
        let result = http.send().await;
        inner.sent.requests.fetch_add(1, Relaxed);
        let span = tracing::Span::current();
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        self.count(request, &result);
        let response = result.map_err(|e| Failure::Other(transport(e)))?;
        span.record("status", response.status().as_u16());
        self.answer(response, auth).await
    }

    /// The HTTP request, authenticated by the bearer `token`, or else by the key itself.
    fn http_request(&self, request: &Request, token: Option<&Sensitive>) -> reqwest::RequestBuilder {
        let http = self
            .client
            .inner
            .http
            .request(reqwest_method(request.method), self.url(request));
        let http = match token {
            Some(token) => http.bearer_auth(&token.0),
            None => http.basic_auth(&self.credentials.key_id, Some(&self.credentials.key_secret.0)),
        };
        match &request.body {
            Some(body) => http.json(body),
            None => http,
        }
    }

    /// Counts the attempt, once someone reads the counts (the controller's `/metrics`).
    fn count(&self, request: &Request, result: &reqwest::Result<reqwest::Response>) {
        let Some(counter) = self.client.inner.requests.get() else {
            return;
        };
        let status = result
            .as_ref()
            .map_or("error".into(), |r| r.status().as_u16().to_string());
        counter
            .get_or_create(&RequestLabels {
                method: request.method.as_str().into(),
                route: request.route.to_string(),
                status,
                reason: Purpose::of(request.method).as_str().into(),
            })
            .inc();
    }

    /// What an answer means: its body on a 2xx, else why the attempt failed (an expired
    /// `token`, or the status with the API's error and any `Retry-After`).
    async fn answer(&self, response: reqwest::Response, token: Option<Sensitive>) -> Result<Vec<u8>, Failure> {
        let status = response.status().as_u16();
        let expired = status == 401 && says_token_expired(response.headers());
        let retry_after = retry_after(response.headers());
        let body = read_body(response, self.client.inner.config.max_body_bytes)
            .await
            .map_err(|e| Failure::Other(e.into()))?;
        tracing::debug!("answered");
        if (200..300).contains(&status) {
            return Ok(body.to_vec());
        }
        if let (true, Some(token)) = (expired, token) {
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

/// A 401's `WWW-Authenticate` saying the bearer token expired.
fn says_token_expired(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("expired"))
}

/// `Retry-After` in seconds; the HTTP-date form is not read.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        // Any size: a hostile 1e20 waits the longest we ever wait (max_retry_after).
        .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

/// The 401 reported when every attempt found its token expired, fresh ones included.
fn expired_on_every_attempt() -> ErrorKind {
    ErrorKind::Status {
        status: 401,
        api: Some(ApiError {
            message: Some("the access token had expired on every attempt, fresh ones included".into()),
            ..ApiError::default()
        }),
        body: String::new(),
        retry_after: None,
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

pub(super) enum BodyError {
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
pub(super) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len().saturating_add(chunk.len()) > limit {
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
pub(super) fn transport_message(e: reqwest::Error) -> String {
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
pub(super) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_the_api_error_shape_is_quoted_briefly() {
        assert_eq!(
            excerpt(b"<html>\n  <body>502 Bad Gateway</body>\n</html>"),
            "<html> <body>502 Bad Gateway</body> </html>"
        );
        assert_eq!(excerpt("é".repeat(150).as_bytes()).chars().count(), 100);
    }
}
