//! Comparing what a manifest declares with what Sinch holds: pure functions over the wire JSON,
//! no I/O. The rules they keep:
//! - drift is a difference in a declared field (rule 6): only the desired value's keys are looked
//!   at, and a declared `false`, `0`, `""`, `[]` or `{}` matches an absent one (proto3 JSON leaves
//!   defaults out);
//! - a nested object declared in part is laid over the live one (rule 2), and lists are whole
//!   values, matched element by element by their natural key where they have one;
//! - a secret is compared only when the API returns it in clear (rule 7), and every value shown
//!   has its secrets replaced by `(sensitive)`.

use crate::sinch::SECRET_FIELDS;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod secrets;

pub use secrets::{SecretPointers, hidden_secrets, is_masked, secret_leaves, value_at};

pub use crate::sinch::SENSITIVE;

/// Fields the API fills in and never takes: not drift, not part of an object's fingerprint.
pub const OUTPUT_ONLY: &[&str] = &[
    "id",
    "state",
    "channel_known_id",
    "rate_limits",
    "queue_stats",
    "create_time",
    "update_time",
];

/// One changed field as a plan shows it; values already have their secrets redacted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// The wire path: `retention_policy.ttl_days`, `channel_credentials[WHATSAPP].static_bearer.token`.
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// proto3's default values, which the API leaves out or sends interchangeably with absence.
pub fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_default),
    }
}

/// The natural key of a list element, for the lists whose order does not carry meaning.
fn list_key(field: &str, item: &Value) -> Option<String> {
    let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    match field {
        "channel_credentials" => {
            let ordinal = item
                .get("credential_ordinal_number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            Some(match ordinal {
                0 => text("channel"),
                n => format!("{}#{n}", text("channel")),
            })
        }
        "translations" => Some(format!("{}@{}", text("language_code"), text("version"))),
        _ => None,
    }
}

/// Lists of plain values whose order means nothing.
fn is_set(field: &str) -> bool {
    field == "triggers"
}

/// What Sinch holds for an object it answers as `null` (or leaves out): its documented defaults.
/// `message_retry_settings` and `delivery_report_based_fallback` may come back `null` (the Java
/// SDK's own fixture; the Node SDK types them `| null`): a manifest declaring the defaults is
/// then in sync, not a PATCH on every run.
pub fn server_default(field: &str) -> Option<Value> {
    match field {
        "message_retry_settings" => Some(serde_json::json!({"retry_duration": 3600})),
        "delivery_report_based_fallback" => {
            Some(serde_json::json!({"enabled": false, "delivery_report_waiting_time": 0}))
        }
        _ => None,
    }
}

/// Keyed lists whose order is meaning too: "The order of the credentials defines the app channel
/// priority" (the app's fallback order; Conversation API, App). A reorder is a change, sent as
/// the whole list in the declared order.
fn is_ordered(field: &str) -> bool {
    field == "channel_credentials"
}

/// The keys of a keyed list, in its order.
fn keys_of(field: &str, items: &[Value]) -> Vec<String> {
    items.iter().map(|v| list_key(field, v).unwrap_or_default()).collect()
}

fn scalar_eq(d: &Value, l: &Value) -> bool {
    match (d, l) {
        _ if is_default(d) && is_default(l) => true,
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => n.to_string() == *s,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => d == l,
    }
}

/// Whether `live` already has everything `desired` declares. `field` is the key `desired` sits
/// under (it picks how lists are matched); `pointer` its place in the whole desired value.
pub fn covers(desired: &Value, live: &Value, field: &str, pointer: &str, secrets: &SecretPointers) -> bool {
    if secrets.is_resolved(pointer) {
        return match live {
            Value::String(l) if !l.is_empty() && !is_masked(l) => desired.as_str() == Some(l.as_str()),
            // Not returned, or masked: only a hash of the last write can tell.
            _ => !secrets.written.get(pointer).copied().unwrap_or(false),
        };
    }
    match desired {
        Value::Object(d) => {
            let empty = Map::new();
            let default = live.is_null().then(|| server_default(field)).flatten();
            let l = live
                .as_object()
                .or(default.as_ref().and_then(Value::as_object))
                .unwrap_or(&empty);
            d.iter().all(|(k, dv)| {
                covers(
                    dv,
                    l.get(k).unwrap_or(&Value::Null),
                    k,
                    &format!("{pointer}/{k}"),
                    secrets,
                )
            })
        }
        Value::Array(d) => {
            let empty = Vec::new();
            let l = live.as_array().unwrap_or(&empty);
            if is_set(field) {
                let mut a: Vec<String> = d.iter().map(Value::to_string).collect();
                let mut b: Vec<String> = l.iter().map(Value::to_string).collect();
                a.sort();
                b.sort();
                return a == b;
            }
            if d.len() != l.len() {
                return false;
            }
            if is_ordered(field) && keys_of(field, d) != keys_of(field, l) {
                return false;
            }
            d.iter().enumerate().all(|(i, dv)| {
                let lv = match list_key(field, dv) {
                    Some(key) => l.iter().find(|lv| list_key(field, lv).as_deref() == Some(&key)),
                    None => l.get(i),
                };
                lv.is_some_and(|lv| covers(dv, lv, field, &format!("{pointer}/{i}"), secrets))
            })
        }
        _ => scalar_eq(desired, live),
    }
}

/// `live` with the declared parts of `desired` laid over it: what a merge-all PATCH of the field
/// must send so that undeclared sub-fields keep their live values.
pub fn overlay(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            for key in OUTPUT_ONLY {
                out.remove(*key);
            }
            for (k, dv) in d {
                let merged = overlay(l.get(k).unwrap_or(&Value::Null), dv);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => desired.clone(),
    }
}

/// A value as a plan may show it: secrets replaced, output-only fields left out.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !OUTPUT_ONLY.contains(&k.as_str()))
                .map(|(k, v)| match v {
                    Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) && !s.is_empty() => {
                        (k.clone(), Value::String(SENSITIVE.into()))
                    }
                    v => (k.clone(), redact(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        v => v.clone(),
    }
}

fn shown(v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| redact(v))
}

/// The declared leaves of `desired` that `live` does not have, as a person reads them.
pub fn field_changes(
    desired: &Value,
    live: &Value,
    field: &str,
    path: &str,
    pointer: &str,
    secrets: &SecretPointers,
    out: &mut Vec<FieldChange>,
) {
    if covers(desired, live, field, pointer, secrets) {
        return;
    }
    if secrets.is_resolved(pointer) {
        out.push(FieldChange {
            path: path.to_string(),
            before: Some(SENSITIVE.into()),
            after: Some(SENSITIVE.into()),
        });
        return;
    }
    match desired {
        Value::Object(d) if live.is_object() || live.is_null() => {
            for (k, dv) in d {
                let lv = live.get(k).unwrap_or(&Value::Null);
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                field_changes(dv, lv, k, &sub, &format!("{pointer}/{k}"), secrets, out);
            }
        }
        Value::Array(d) if d.first().is_some_and(|first| list_key(field, first).is_some()) => {
            let empty = Vec::new();
            let l = live.as_array().unwrap_or(&empty);
            for (i, dv) in d.iter().enumerate() {
                let key = list_key(field, dv).unwrap_or_default();
                let sub = format!("{path}[{key}]");
                match l.iter().find(|lv| list_key(field, lv).as_deref() == Some(&key)) {
                    Some(lv) => {
                        let p = format!("{pointer}/{i}");
                        match dv.as_object() {
                            Some(fields) => {
                                for (k, v) in fields {
                                    let lvk = lv.get(k).unwrap_or(&Value::Null);
                                    field_changes(v, lvk, k, &format!("{sub}.{k}"), &format!("{p}/{k}"), secrets, out);
                                }
                            }
                            None => field_changes(dv, lv, field, &sub, &p, secrets, out),
                        }
                    }
                    None => out.push(FieldChange {
                        path: sub,
                        before: None,
                        after: shown(dv),
                    }),
                }
            }
            for lv in l {
                let key = list_key(field, lv).unwrap_or_default();
                if !d.iter().any(|dv| list_key(field, dv).as_deref() == Some(&key)) {
                    out.push(FieldChange {
                        path: format!("{path}[{key}]"),
                        before: shown(lv),
                        after: None,
                    });
                }
            }
            // The elements both hold, in another order: the priority changes.
            if is_ordered(field) {
                let (dk, lk) = (keys_of(field, d), keys_of(field, l));
                let common = |keys: &[String], other: &[String]| -> Vec<String> {
                    keys.iter().filter(|k| other.contains(k)).cloned().collect()
                };
                if common(&dk, &lk) != common(&lk, &dk) {
                    out.push(FieldChange {
                        path: format!("{path} (priority)"),
                        before: Some(Value::from(lk)),
                        after: Some(Value::from(dk)),
                    });
                }
            }
        }
        _ if SECRET_FIELDS.contains(&field) => out.push(FieldChange {
            path: path.to_string(),
            before: (!is_default(live)).then(|| SENSITIVE.into()),
            after: (!is_default(desired)).then(|| SENSITIVE.into()),
        }),
        _ => out.push(FieldChange {
            path: path.to_string(),
            before: shown(live),
            after: shown(desired),
        }),
    }
}

/// The top-level fields a write must carry to make `live` hold what `desired` declares.
#[derive(Debug, Default)]
pub struct Update {
    /// Field names, in name order: the `update_mask` of a PATCH.
    pub mask: Vec<String>,
    /// Each field complete: nested objects laid over the live value, lists whole.
    pub body: Map<String, Value>,
    pub fields: Vec<FieldChange>,
    /// Why the update cannot be sent (a secret it needs is unresolved, or it would carry a
    /// secret read from Sinch back).
    pub blocked: Vec<String>,
}

/// Compares each declared top-level field (except `skip`) and builds the merge-all update.
pub fn update(
    desired: &Map<String, Value>,
    live: &Map<String, Value>,
    skip: &[&str],
    secrets: &SecretPointers,
) -> Update {
    let mut out = Update::default();
    for (k, dv) in desired {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let lv = live.get(k).unwrap_or(&Value::Null);
        let pointer = format!("/{k}");
        if covers(dv, lv, k, &pointer, secrets) {
            continue;
        }
        let value = match (dv, lv) {
            (Value::Object(_), Value::Object(_)) => overlay(lv, dv),
            _ => dv.clone(),
        };
        for p in &secrets.unresolved {
            if p == &pointer || p.starts_with(&format!("{pointer}/")) {
                out.blocked.push(format!(
                    "{k} must be sent whole, but the secret for {} is unresolved",
                    &p[1..].replace('/', ".")
                ));
            }
        }
        let mut carried = Vec::new();
        secret_leaves(&value, &pointer, &mut carried);
        for p in carried.into_iter().filter(|p| !secrets.is_resolved(p)) {
            out.blocked.push(format!(
                "{k} must be sent whole, and {} holds a secret that only Sinch knows: declare it with a Secret reference",
                &p[1..].replace('/', ".")
            ));
        }
        field_changes(dv, lv, k, k, &pointer, secrets, &mut out.fields);
        out.mask.push(k.clone());
        out.body.insert(k.clone(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    pub(super) fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    pub(super) fn secrets(resolved: &[&str], unresolved: &[&str]) -> SecretPointers {
        SecretPointers {
            resolved: resolved.iter().map(|s| s.to_string()).collect(),
            unresolved: unresolved.iter().map(|s| s.to_string()).collect(),
            written: BTreeMap::new(),
            rekeyed: BTreeMap::new(),
        }
    }

    #[test]
    fn server_defaults_and_output_only_fields_are_not_drift() {
        let desired = json!({"display_name": "A", "smart_conversation": {"enabled": false}, "triggers": ["B", "A"]});
        let live = json!({"id": "01", "display_name": "A", "rate_limits": {"outbound": 20},
                          "smart_conversation": {}, "triggers": ["A", "B"], "processing_mode": "CONVERSATION"});
        let u = update(&obj(desired), &obj(live), &[], &SecretPointers::default());
        assert_eq!(u.mask, Vec::<String>::new());
        assert_eq!(u.fields, []);
    }

    #[test]
    fn a_partly_declared_object_is_laid_over_the_live_one_and_sent_whole() {
        let desired = json!({"retention_policy": {"ttl_days": 30}});
        let live = json!({"retention_policy": {"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 180}});
        let u = update(&obj(desired), &obj(live), &[], &SecretPointers::default());
        assert_eq!(u.mask, ["retention_policy"]);
        assert_eq!(
            Value::Object(u.body),
            json!({"retention_policy": {"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 30}})
        );
        assert_eq!(
            u.fields,
            [FieldChange {
                path: "retention_policy.ttl_days".into(),
                before: Some(json!(180)),
                after: Some(json!(30))
            }]
        );
    }

    /// Settings Sinch answers as `null` hold their documented defaults: declaring them is no change.
    #[test]
    fn a_null_object_sinch_answers_holds_its_documented_defaults() {
        let live = obj(json!({"message_retry_settings": null, "delivery_report_based_fallback": null}));
        let defaults = obj(json!({"message_retry_settings": {"retry_duration": 3600},
                                  "delivery_report_based_fallback": {"enabled": false}}));
        assert!(
            update(&defaults, &live, &[], &SecretPointers::default())
                .mask
                .is_empty()
        );
        let other = obj(json!({"message_retry_settings": {"retry_duration": 60}}));
        assert_eq!(
            update(&other, &live, &[], &SecretPointers::default()).mask,
            ["message_retry_settings"]
        );
    }

    /// The order of the credentials is the app's channel priority: a reorder alone is a change,
    /// shown as one, and sent as the whole list in the declared order.
    #[test]
    fn a_reorder_of_channels_is_a_priority_change_sent_in_the_declared_order() {
        let wa = json!({"channel": "WHATSAPP", "static_bearer": {"claimed_identity": "1"}});
        let sms = json!({"channel": "SMS", "static_bearer": {"claimed_identity": "2"}});
        let live = obj(json!({"channel_credentials": [
            {"channel": "WHATSAPP", "state": {"status": "ACTIVE"}, "static_bearer": {"claimed_identity": "1"}},
            {"channel": "SMS", "state": {"status": "ACTIVE"}, "static_bearer": {"claimed_identity": "2"}}]}));
        let swapped = obj(json!({"channel_credentials": [sms.clone(), wa.clone()]}));
        let u = update(&swapped, &live, &[], &SecretPointers::default());
        assert_eq!(u.mask, ["channel_credentials"]);
        assert_eq!(Value::Object(u.body), json!({"channel_credentials": [sms, wa]}));
        assert_eq!(
            u.fields,
            [FieldChange {
                path: "channel_credentials (priority)".into(),
                before: Some(json!(["WHATSAPP", "SMS"])),
                after: Some(json!(["SMS", "WHATSAPP"]))
            }]
        );
        // In the live order: nothing to do.
        let same = obj(
            json!({"channel_credentials": [wa, json!({"channel": "SMS", "static_bearer": {"claimed_identity": "2"}})]}),
        );
        assert!(update(&same, &live, &[], &SecretPointers::default()).mask.is_empty());
    }

    #[test]
    fn channels_are_matched_by_channel_and_ordinal_and_the_list_is_sent_whole() {
        let wa = json!({"channel": "WHATSAPP", "static_bearer": {"claimed_identity": "1", "token": "t1"}});
        let sms = json!({"channel": "SMS", "static_bearer": {"claimed_identity": "2", "token": "t2"}});
        let live_wa = json!({"channel": "WHATSAPP", "state": {"status": "ACTIVE"},
                             "static_bearer": {"claimed_identity": "1", "token": "********"}});
        let s = secrets(
            &[
                "/channel_credentials/0/static_bearer/token",
                "/channel_credentials/1/static_bearer/token",
            ],
            &[],
        );
        let desired = obj(json!({"channel_credentials": [wa.clone(), sms.clone()]}));
        let live = obj(json!({"channel_credentials": [live_wa]}));
        let u = update(&desired, &live, &[], &s);
        assert_eq!(u.mask, ["channel_credentials"]);
        assert_eq!(Value::Object(u.body), json!({"channel_credentials": [wa, sms]}));
        assert_eq!(
            u.fields,
            [FieldChange {
                path: "channel_credentials[SMS]".into(),
                before: None,
                after: Some(json!({"channel": "SMS", "static_bearer": {"claimed_identity": "2", "token": SENSITIVE}}))
            }]
        );
        assert!(u.blocked.is_empty());
    }

    #[test]
    fn numbers_match_their_string_form_and_removed_list_elements_are_shown() {
        assert!(covers(
            &json!(1800),
            &json!("1800"),
            "x",
            "/x",
            &SecretPointers::default()
        ));
        let mut out = Vec::new();
        let d = json!([{"language_code": "en", "version": "2", "text_message": {"text": "Hi"}}]);
        let l = json!([{"language_code": "en", "version": "1", "text_message": {"text": "Hi"}, "create_time": "t"}]);
        field_changes(
            &d,
            &l,
            "translations",
            "translations",
            "/translations",
            &SecretPointers::default(),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["translations[en@2]", "translations[en@1]"]
        );
        assert_eq!(
            out[1].before,
            Some(json!({"language_code": "en", "version": "1", "text_message": {"text": "Hi"}}))
        );
    }
}
