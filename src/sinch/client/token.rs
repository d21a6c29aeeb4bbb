//! OAuth2 access tokens: one cache slot per token URL and key, fetched once for all callers
//! waiting on it, renewed before it expires, dropped when the API says it has.

use super::Project;
use super::send::{excerpt, read_body, transport_message};
use crate::sinch::Sensitive;
use crate::sinch::error::{ApiError, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An access token is never kept longer than this, whatever `expires_in` says.
const MAX_TOKEN_LIFETIME_S: u64 = 24 * 3600;

pub(super) type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;
/// (token URL, key id, digest of the key secret).
pub(super) type TokenKey = (String, String, Vec<u8>);

/// How long a refused key is answered from the cache: thousands of objects naming a wrong
/// key would otherwise each ask the token endpoint, and get the operator throttled there for
/// every tenant.
pub const REFUSAL_CACHED_FOR: Duration = Duration::from_secs(60);

/// Keys (and their slots) kept at most while idle; beyond, slots holding nothing current go.
const MAX_IDLE_KEYS: usize = 256;

#[derive(Clone)]
pub(super) struct Token {
    /// The token, or why the endpoint refused the key.
    value: Result<Sensitive, ErrorKind>,
    renew_at: Instant,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Sensitive,
    expires_in: u64,
}

/// Held in memory only, to tell keys apart.
fn secret_digest(secret: &Sensitive) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.0.as_bytes())
        .as_ref()
        .to_vec()
}

impl Project {
    fn token_slot(&self) -> TokenSlot {
        let url = self.client.inner.config.endpoints.auth(self.region).to_string();
        let mut tokens = self.client.inner.tokens.lock().expect("never poisoned");
        // Each key a tenant tries takes a slot: those nobody waits on and whose token is over
        // (or was never had) go, so the map does not grow with every key ever named.
        let key = (
            url,
            self.credentials.key_id.clone(),
            secret_digest(&self.credentials.key_secret),
        );
        // Swept only when a new key comes: a request with a known key looks up its slot alone.
        if tokens.len() >= MAX_IDLE_KEYS && !tokens.contains_key(&key) {
            let now = Instant::now();
            tokens.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .map_or(true, |t| t.as_ref().is_some_and(|t| t.renew_at > now))
            });
        }
        tokens.entry(key).or_default().clone()
    }

    /// The cached token, or a new one when it is missing or about to expire.
    pub(super) async fn token(&self) -> Result<Sensitive, ErrorKind> {
        let slot = self.token_slot();
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return token.value.clone();
        }
        match self.fetch_token().await {
            Ok(token) => {
                let value = token.value.clone();
                *cached = Some(token);
                value
            }
            Err(
                refused @ ErrorKind::Token {
                    status: Some(400..=403),
                    ..
                },
            ) => {
                *cached = Some(Token {
                    value: Err(refused.clone()),
                    renew_at: Instant::now()
                        .checked_add(REFUSAL_CACHED_FOR)
                        .unwrap_or_else(Instant::now),
                });
                Err(refused)
            }
            Err(other) => Err(other),
        }
    }

    /// The token in the cache now, if any (without waiting for one being fetched).
    pub(super) fn cached_token(&self) -> Option<Sensitive> {
        let slot = self.token_slot();
        let cached = slot.try_lock().ok()?;
        cached.as_ref().and_then(|t| t.value.clone().ok())
    }

    /// Drops `failed` from the cache, unless another call has already replaced it.
    pub(super) async fn forget_token(&self, failed: &Sensitive) {
        let slot = self.token_slot();
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.value.as_ref().is_ok_and(|v| v == failed))
        {
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
        let early = lifetime.div_f64(10.0).min(Duration::from_secs(60));
        let renew_at = Instant::now()
            .checked_add(lifetime.saturating_sub(early))
            .unwrap_or_else(Instant::now);
        tracing::debug!(expires_in = token.expires_in, "new access token");
        Ok(Token {
            value: Ok(token.access_token),
            renew_at,
        })
    }
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
    use super::*;

    #[test]
    fn an_oauth_error_is_quoted_by_its_description() {
        assert_eq!(
            oauth_error(br#"{"error":"invalid_client","error_description":"bad key"}"#),
            ": bad key"
        );
        assert_eq!(oauth_error(br#"{"error":"invalid_client"}"#), ": invalid_client");
        assert_eq!(oauth_error(b""), "");
    }
}
