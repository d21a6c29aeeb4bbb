//! The API's error body: `{"error": {code, message, status, details}}`, or the same fields flat
//! (the spec's own examples, and the 2021 API).

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
