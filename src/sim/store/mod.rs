//! The simulator's data and the API's rules, without HTTP: what Sinch stores per region and
//! project, what it refuses (a body on its own: `rules`; against what is stored: here), and what
//! it fills in. Objects are kept as the JSON the API speaks,
//! since update masks, defaults and masking are all about JSON fields.
//!
//! This module holds what is stored (`Store`, `Project`), the answers it gives instead
//! (`SimError`) and how answers are shown (`View`); each resource's operations and the rules that
//! need other objects live in the submodule named for it, and `fields` writes JSON fields.

mod apps;
mod fields;
mod settings;
mod templates;
mod webhooks;

pub use apps::{APP_FIELDS, FAILING_PREFIX};
pub use webhooks::{MAX_WEBHOOKS_PER_APP, Webhooks};

use super::rules::Violation;
use crate::model::Region;
use crate::sinch::settings::IdentityConflict;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub type Object = Map<String, Value>;

/// An answer the API gives instead of the object: an HTTP status, a google.rpc-style name, and
/// for a refused body every field violation (sent as `google.rpc.BadRequest` details).
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub violations: Vec<Violation>,
}

impl SimError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            status,
            code,
            message: message.into(),
            violations: Vec::new(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> SimError {
        SimError::new(400, "INVALID_ARGUMENT", message)
    }
    pub fn not_found(message: impl Into<String>) -> SimError {
        SimError::new(404, "NOT_FOUND", message)
    }
    fn already_exists(message: impl Into<String>) -> SimError {
        SimError::new(409, "ALREADY_EXISTS", message)
    }
    fn aborted(message: impl Into<String>) -> SimError {
        SimError::new(409, "ABORTED", message)
    }
    fn failed_precondition(message: impl Into<String>) -> SimError {
        SimError::new(400, "FAILED_PRECONDITION", message)
    }
}

/// A 400 naming every violation, or nothing to refuse.
fn refuse(violations: Vec<Violation>) -> Result<()> {
    if violations.is_empty() {
        return Ok(());
    }
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(SimError {
        violations,
        ..SimError::invalid(message)
    })
}

type Result<T> = std::result::Result<T, SimError>;

/// A 400 naming one field.
fn field_error(field: &str, description: impl std::fmt::Display) -> SimError {
    let violation = Violation {
        field: field.to_string(),
        description: description.to_string(),
    };
    refuse(vec![violation]).expect_err("one violation")
}

/// What `--mask-secrets` shows instead of a secret.
pub const MASK: &str = "********";

/// Fields the spec marks `format: password`: masked with `--mask-secrets`.
const SECRET_FIELDS: &[&str] = &[
    "token",
    "secret",
    "callback_secret",
    "password",
    "app_secret",
    "apple_pay_certificate_password",
    "secret_for_overridden_callback_urls",
    "client_secret",
];

/// Everything the simulator holds; also the state file's format.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Store {
    /// region -> project id -> its objects.
    #[serde(default)]
    pub regions: BTreeMap<Region, BTreeMap<String, Project>>,
    /// The undocumented answers played (a setting, not state).
    #[serde(skip)]
    pub variants: std::collections::BTreeSet<crate::sim::Variant>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Project {
    /// By id; ULIDs sort in creation order, which is the order lists answer in.
    #[serde(default)]
    pub apps: BTreeMap<String, Object>,
    #[serde(default)]
    pub webhooks: Webhooks,
    #[serde(default)]
    pub templates: BTreeMap<String, Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_conflicts: Vec<IdentityConflict>,
}

/// How an answer is shown: secrets in clear (the default) or masked, and the variants that
/// change what an answer shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub mask_secrets: bool,
    /// [`Variant::PartialMask`](crate::sim::Variant::PartialMask).
    pub partial_mask: bool,
    /// [`Variant::NullDefaults`](crate::sim::Variant::NullDefaults).
    pub null_defaults: bool,
}

impl View {
    fn show(self, mut value: Value) -> Value {
        if self.mask_secrets {
            hide(&mut value, SECRET_FIELDS, MASK);
        } else if self.partial_mask {
            mask_partly(&mut value);
        }
        if self.null_defaults {
            null_defaults(&mut value);
        }
        value
    }
}

/// Every secret as `****` and its last four characters.
fn mask_partly(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) && !s.is_empty() => {
                        let tail: String = s.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
                        *s = format!("****{tail}");
                    }
                    _ => mask_partly(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_partly),
        _ => {}
    }
}

/// An app's retry settings and fallback as `null` while they hold their defaults.
fn null_defaults(value: &mut Value) {
    if let Some(apps) = value.get_mut("apps").and_then(Value::as_array_mut) {
        apps.iter_mut().for_each(null_defaults);
        return;
    }
    let defaults = [
        ("message_retry_settings", serde_json::json!({"retry_duration": 3600})),
        (
            "delivery_report_based_fallback",
            serde_json::json!({"enabled": false, "delivery_report_waiting_time": 0}),
        ),
    ];
    for (field, default) in defaults {
        if let Some(v) = value.get_mut(field)
            && *v == default
        {
            *v = Value::Null;
        }
    }
}

impl Store {
    /// What the state file holds: the store with every secret as [`MASK`]. A reloaded
    /// simulator answers them masked, as Sinch may (the product then compares them by hash or
    /// not at all); no file on disk holds a token sent to it (rule 14).
    pub fn sealed(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("the store always serialises");
        hide(&mut value, SECRET_FIELDS, MASK);
        value
    }
}

/// Every non-empty string under one of `fields`, at any depth, replaced by `shown_as`.
pub(super) fn hide(value: &mut Value, fields: &[&str], shown_as: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if fields.contains(&k.as_str()) && !s.is_empty() => *s = shown_as.into(),
                    _ => hide(v, fields, shown_as),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| hide(v, fields, shown_as)),
        _ => {}
    }
}

/// Ids grow in creation order, even within one millisecond: lists sorted by id come out in the
/// order the objects were created.
fn new_id() -> String {
    static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut ids = IDS.lock().expect("never poisoned");
    ids.generate()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| ulid::Ulid::generate().to_string())
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// A request body: a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Object> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SimError::invalid("the request body must be a JSON object")),
        Err(e) => Err(SimError::invalid(format!("the request body is not valid JSON: {e}"))),
    }
}

impl Store {
    fn project(&mut self, region: Region, project: &str) -> &mut Project {
        self.regions
            .entry(region)
            .or_default()
            .entry(project.to_string())
            .or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_made_within_one_millisecond_still_sort_in_creation_order() {
        let ids: Vec<String> = (0..2000).map(|_| super::new_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}
