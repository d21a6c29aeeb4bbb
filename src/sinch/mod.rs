//! The Sinch Conversation API and Template Management API v2 as they are on the wire.
//!
//! Wire types are snake_case exactly as the API, tolerant where the model is strict: enum-like
//! values stay strings (a new channel or trigger must not break reading an app), and fields this
//! client does not know are kept in `extra` so that a PATCH of a whole field sends them back.

pub mod app;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod request;
pub mod settings;
pub mod template;
pub mod webhook;

use serde::{Deserialize, Serialize};

/// Fields of a response this client does not model, kept for the round trip.
/// Wire fields that hold secrets (`format: password` in the API's schema, and the credential
/// keys and tokens beside them): never shown, never sent back from a read.
pub const SECRET_FIELDS: &[&str] = &[
    "token",
    "secret",
    "callback_secret",
    "api_key",
    "password",
    "kakaotalk_sender_key",
    "app_secret",
    "aes_key",
    "apple_pay_certificate_password",
    "client_secret",
    "secret_for_overridden_callback_urls",
];

pub type Extra = serde_json::Map<String, serde_json::Value>;

/// What a secret value is shown as, wherever it would leave the process.
pub const SENSITIVE: &str = "(sensitive)";

/// A secret value (a token, a signing secret, a password). It serialises as itself, since
/// requests must carry it, but `Debug` never shows it, so no log line can leak it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SENSITIVE)
    }
}

/// `{"enabled": bool}`, the shape of several app settings.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Enabled {
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}
