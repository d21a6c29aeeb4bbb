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

/// What the fields of one wire resource mean, said once next to its type: the diff, the plan's
/// placeholders and fingerprints, and import ask it instead of knowing field names. Names are
/// the wire's (snake_case); a test per resource checks that each names a field its type has.
#[derive(Debug)]
pub struct Descriptor {
    /// Fields the API fills in and never takes, at any depth: not drift, not part of a saved
    /// plan's fingerprint, never sent back.
    pub output_only: &'static [&'static str],
    /// Top-level fields that name the object rather than describe it (its path or identity
    /// holds them): never part of an update.
    pub identity: &'static [&'static str],
    /// Fields that hold secrets, at any depth.
    pub secrets: &'static [&'static str],
    /// Lists matched element by element by a natural key.
    pub keyed: &'static [KeyedList],
    /// Lists of plain values whose order means nothing.
    pub sets: &'static [&'static str],
    /// Objects the API may answer as `null` (or leave out), with what that means: its
    /// documented defaults.
    pub defaults: &'static [ServerDefault],
}

/// A field, and what Sinch holds for it when it answers `null`.
pub type ServerDefault = (&'static str, fn() -> serde_json::Value);

/// A list whose elements are told apart by a natural key rather than their place.
#[derive(Debug)]
pub struct KeyedList {
    pub field: &'static str,
    /// The element's natural key.
    pub key: fn(&serde_json::Value) -> String,
    /// Whether the order is meaning too (a reorder is a change, the list sent whole in the
    /// declared order).
    pub ordered: bool,
}

impl Descriptor {
    /// The natural key of an element of the list `field`, when it is a keyed list.
    pub fn list_key(&self, field: &str, item: &serde_json::Value) -> Option<String> {
        self.keyed.iter().find(|l| l.field == field).map(|l| (l.key)(item))
    }

    pub fn is_ordered(&self, field: &str) -> bool {
        self.keyed.iter().any(|l| l.field == field && l.ordered)
    }

    pub fn is_set(&self, field: &str) -> bool {
        self.sets.contains(&field)
    }

    pub fn is_output_only(&self, field: &str) -> bool {
        self.output_only.contains(&field)
    }

    pub fn is_secret(&self, field: &str) -> bool {
        self.secrets.contains(&field)
    }

    /// What Sinch holds for an object it answers as `null`.
    pub fn server_default(&self, field: &str) -> Option<serde_json::Value> {
        self.defaults.iter().find(|(f, _)| *f == field).map(|(_, d)| d())
    }
}

/// Every resource's descriptor, for what reads a body whatever it is (the simulator's journal,
/// which hides every resource's secrets).
pub fn resources() -> [&'static Descriptor; 4] {
    [
        <app::App as Wire>::FIELDS,
        <webhook::Webhook as Wire>::FIELDS,
        <template::Template as Wire>::FIELDS,
        <settings::ProjectSettings as Wire>::FIELDS,
    ]
}

/// A wire resource and what its fields mean.
pub trait Wire: Serialize {
    const FIELDS: &'static Descriptor;
}

/// Fields of a response this client does not model, kept for the round trip.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    /// Every key at any depth of `value`.
    fn keys(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    out.insert(k.clone());
                    keys(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    /// A value of `T` with every field filled, read through the type and written back: a name
    /// the descriptor says and the type has not (a rename of the wire field) fails here.
    fn check<T: Wire + serde::de::DeserializeOwned>(filled: Value) {
        let typed: T = serde_json::from_value(filled).unwrap();
        let mut have = BTreeSet::new();
        keys(&serde_json::to_value(&typed).unwrap(), &mut have);
        let d = T::FIELDS;
        let named = d.output_only.iter().chain(d.identity).chain(d.secrets).chain(d.sets);
        let named = named.copied().chain(d.keyed.iter().map(|l| l.field));
        for name in named.chain(d.defaults.iter().map(|(f, _)| *f)) {
            assert!(
                have.contains(name),
                "{name} is not a field of {}",
                std::any::type_name::<T>()
            );
        }
    }

    #[test]
    fn every_field_a_descriptor_names_is_a_field_of_its_type() {
        let secret = "s";
        let line = json!({"token": secret, "secret": secret});
        check::<app::App>(json!({
            "id": "a", "display_name": "d", "rate_limits": {"inbound": 1}, "queue_stats": {"outbound_size": 1},
            "callback_settings": {"secret_for_overridden_callback_urls": secret},
            "message_retry_settings": {"retry_duration": 1},
            "delivery_report_based_fallback": {"enabled": true},
            "channel_credentials": [
                {"channel": "SMS", "callback_secret": secret, "state": {"status": "ACTIVE"}, "channel_known_id": "k",
                 "static_bearer": {"claimed_identity": "i", "token": secret}},
                {"channel": "MMS", "mms_credentials": {"api_key": secret, "basic_auth": {"username": "u", "password": secret}}},
                {"channel": "KAKAOTALK", "kakaotalk_credentials": {"kakaotalk_sender_key": secret}},
                {"channel": "WECHAT", "wechat_credentials": {"app_secret": secret, "token": secret, "aes_key": secret}},
                {"channel": "LINE", "line_enterprise_credentials": {"line_japan": line}},
                {"channel": "APPLEBC", "applebc_credentials": {"apple_pay_certificate_password": secret}}
            ]
        }));
        check::<webhook::Webhook>(json!({
            "id": "w", "app_id": "a", "target": "https://t", "secret": secret, "triggers": ["MESSAGE_INBOUND"],
            "client_credentials": {"client_id": "c", "client_secret": secret}
        }));
        check::<template::Template>(json!({
            "id": "t", "create_time": "x", "update_time": "x",
            "translations": [{"language_code": "en", "version": "1", "create_time": "x"}]
        }));
        check::<settings::ProjectSettingsRequest>(json!({"contact_settings": {"unified_contact_id_enabled": true}}));
    }
}
