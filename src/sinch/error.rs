//! The API's error body: `{"error": {code, message, status, details}}`, or the same fields flat
//! (the spec's own examples, and the 2021 API).

use crate::scrub;
use serde::{Deserialize, Serialize};

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ApiError {
    /// The HTTP status again.
    pub code: Option<i64>,
    pub message: Option<String>,
    /// A google.rpc-style name such as `INVALID_ARGUMENT`; match on the HTTP status, not on this.
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Wrapped {
    error: ApiError,
}

impl ApiError {
    /// Reads either form; `None` when the body is neither (a proxy's HTML page, say).
    pub fn parse(body: &[u8]) -> Option<ApiError> {
        if let Ok(w) = serde_json::from_slice::<Wrapped>(body) {
            return Some(w.error);
        }
        serde_json::from_slice::<ApiError>(body)
            .ok()
            .filter(|e| e.message.is_some() || e.status.is_some())
    }
}

/// What a failed call means for the caller (rule 8 of the design).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The request itself is wrong (4xx other than 401, 404, 429): retrying cannot help.
    Terminal,
    /// The object (or its region) does not exist: a caller may read this as "absent".
    NotFound,
    /// The credentials were refused.
    Auth,
    /// Rate limited, the API failed, or the connection did: retried with backoff, then given up.
    Retryable,
}

/// A call that failed, after any retries, with what a person needs to act on it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{request}: {kind}{hint}", hint = self.hint())]
pub struct RequestError {
    /// `METHOD /path?query`, as sent.
    pub request: String,
    pub project: String,
    pub region: crate::model::Region,
    /// 0 when it was refused before it was sent.
    pub attempts: u32,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ErrorKind {
    #[error("HTTP {status}{}", api_text(.api.as_ref(), .body))]
    Status {
        status: u16,
        api: Option<ApiError>,
        /// The start of a body that is not the API's error shape (a proxy's page, say).
        body: String,
        /// The wait the server asked for (`Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    #[error("could not get an access token from {url}: {message}")]
    Token {
        url: String,
        status: Option<u16>,
        message: String,
    },
    /// No HTTP answer. `unsent`: the connection failed, so the server cannot have acted on it.
    #[error("{message}")]
    Transport { message: String, unsent: bool },
    #[error("the answer could not be read: {0}")]
    Decode(String),
    /// Not sent: the path would not reach the object it names ([`Request::unsendable`]).
    ///
    /// [`Request::unsendable`]: super::request::Request::unsendable
    #[error("not sent: the path holds {0}")]
    Unsendable(String),
}

fn api_text(api: Option<&ApiError>, body: &str) -> String {
    match api {
        Some(e) => {
            let mut s = String::new();
            if let Some(status) = &e.status {
                s.push(' ');
                s.push_str(status);
            }
            if let Some(message) = &e.message {
                s.push_str(": ");
                s.push_str(message);
            }
            s
        }
        None if body.trim().is_empty() => String::new(),
        None => format!(": {}", body.trim()),
    }
}

impl ErrorKind {
    /// The kind with every text an answer (or a decoder quoting one) supplied passed through
    /// [`scrub::upstream`] and the `known` values: an upstream or proxy that quotes the
    /// request's `Authorization` header, or the key, gets neither into any output. Details are
    /// dropped: nothing reads them, and they are free-form.
    pub fn scrubbed(self, known: &scrub::Known) -> ErrorKind {
        let clean = |text: &str| known.scrub(&scrub::upstream(text));
        match self {
            ErrorKind::Status {
                status,
                api,
                body,
                retry_after,
            } => ErrorKind::Status {
                status,
                api: api.map(|e| ApiError {
                    code: e.code,
                    message: e.message.as_deref().map(clean),
                    status: e.status.as_deref().map(|s| scrub::cut(&clean(s), 64)),
                    details: Vec::new(),
                }),
                body: clean(&body),
                retry_after,
            },
            ErrorKind::Token { url, status, message } => ErrorKind::Token {
                url,
                status,
                message: clean(&message),
            },
            ErrorKind::Transport { message, unsent } => ErrorKind::Transport {
                message: clean(&message),
                unsent,
            },
            ErrorKind::Decode(message) => ErrorKind::Decode(clean(&message)),
            // Our own words about our own request: nothing an answer said.
            unsendable @ ErrorKind::Unsendable(_) => unsendable,
        }
    }
}

impl RequestError {
    /// The wait the server asked for with its last answer (`Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match &self.kind {
            ErrorKind::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Status { status, .. } => Some(*status),
            ErrorKind::Token { status, .. } => *status,
            _ => None,
        }
    }

    pub fn class(&self) -> Class {
        match &self.kind {
            ErrorKind::Status { status, .. } => classify(*status),
            ErrorKind::Token { status: Some(s), .. } if *s == 429 || *s >= 500 => Class::Retryable,
            ErrorKind::Token { .. } => Class::Auth,
            ErrorKind::Transport { .. } => Class::Retryable,
            ErrorKind::Decode(_) | ErrorKind::Unsendable(_) => Class::Terminal,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.class() == Class::NotFound
    }

    /// What to do about it, in a sentence, when the status alone does not say.
    fn hint(&self) -> String {
        let tries = match self.attempts {
            0 | 1 => String::new(),
            n => format!(" (gave up after {n} attempts)"),
        };
        let advice = match (&self.kind, self.status()) {
            (ErrorKind::Token { .. }, Some(400 | 401 | 403)) => {
                " (check SINCH_KEY_ID and SINCH_KEY_SECRET: an access key of the project)".to_string()
            }
            (_, Some(401)) => " (the credentials were refused: check SINCH_KEY_ID and SINCH_KEY_SECRET)".into(),
            (_, Some(403)) => format!(
                " (the access key has no access to project {}, or the account's credit limit is reached)",
                self.project
            ),
            (_, Some(404)) => format!(
                " (not found in project {} in region {}: objects live in the region they were created in)",
                self.project, self.region
            ),
            (_, Some(429)) => " (rate limited by Sinch: lower --rate-limit, or run again later)".into(),
            (_, Some(s)) if s >= 500 => " (Sinch failed to answer: run again later)".into(),
            (ErrorKind::Transport { .. }, _) => {
                " (Sinch could not be reached: check the network and the endpoint URLs)".into()
            }
            _ => String::new(),
        };
        format!("{advice}{tries}")
    }
}

/// Rule 8: which statuses are worth another try.
pub fn classify(status: u16) -> Class {
    match status {
        401 => Class::Auth,
        404 => Class::NotFound,
        429 | 500..=599 => Class::Retryable,
        _ => Class::Terminal,
    }
}
