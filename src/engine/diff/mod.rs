//! Comparing what a manifest declares with what Sinch holds: pure functions over the wire JSON,
//! no I/O. The rules they keep:
//! - drift is a difference in a declared field (rule 6): only the desired value's keys are looked
//!   at, and a declared `false`, `0`, `""`, `[]` or `{}` matches an absent one (proto3 JSON leaves
//!   defaults out);
//! - a nested object declared in part is laid over the live one (rule 2), and lists are whole
//!   values, matched element by element by their natural key where they have one;
//! - a secret is compared only when the API returns it in clear (rule 7), and every value shown
//!   has its secrets replaced by `(sensitive)`.

use crate::sinch::Descriptor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod secrets;

pub use secrets::{SecretPointers, hidden_secrets, is_masked, secret_leaves, value_at};

pub use crate::sinch::SENSITIVE;

/// What a comparison knows besides the values: what the resource's fields mean, and which
/// places hold secrets.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub fields: &'a Descriptor,
    pub secrets: &'a SecretPointers,
}

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

/// The keys of a keyed list, in its order.
fn keys_of(fields: &Descriptor, field: &str, items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| fields.list_key(field, v).unwrap_or_default())
        .collect()
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
pub fn covers(r: Rules, desired: &Value, live: &Value, field: &str, pointer: &str) -> bool {
    let Rules { fields, secrets } = r;
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
            let default = live.is_null().then(|| fields.server_default(field)).flatten();
            let l = live
                .as_object()
                .or(default.as_ref().and_then(Value::as_object))
                .unwrap_or(&empty);
            d.iter()
                .all(|(k, dv)| covers(r, dv, l.get(k).unwrap_or(&Value::Null), k, &format!("{pointer}/{k}")))
        }
        Value::Array(d) => {
            let empty = Vec::new();
            let l = live.as_array().unwrap_or(&empty);
            if fields.is_set(field) {
                let mut a: Vec<String> = d.iter().map(Value::to_string).collect();
                let mut b: Vec<String> = l.iter().map(Value::to_string).collect();
                a.sort();
                b.sort();
                return a == b;
            }
            if d.len() != l.len() {
                return false;
            }
            if fields.is_ordered(field) && keys_of(fields, field, d) != keys_of(fields, field, l) {
                return false;
            }
            d.iter().enumerate().all(|(i, dv)| {
                let lv = match fields.list_key(field, dv) {
                    Some(key) => l.iter().find(|lv| fields.list_key(field, lv).as_deref() == Some(&key)),
                    None => l.get(i),
                };
                lv.is_some_and(|lv| covers(r, dv, lv, field, &format!("{pointer}/{i}")))
            })
        }
        _ => scalar_eq(desired, live),
    }
}

/// `live` with the declared parts of `desired` laid over it: what a merge-all PATCH of the field
/// must send so that undeclared sub-fields keep their live values.
pub fn overlay(fields: &Descriptor, live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            let mut out = l.clone();
            out.retain(|k, _| !fields.is_output_only(k));
            for (k, dv) in d {
                let merged = overlay(fields, l.get(k).unwrap_or(&Value::Null), dv);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => desired.clone(),
    }
}

/// A value as a plan may show it: secrets replaced, output-only fields left out.
pub fn redact(fields: &Descriptor, value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !fields.is_output_only(k))
                .map(|(k, v)| match v {
                    Value::String(s) if fields.is_secret(k) && !s.is_empty() => {
                        (k.clone(), Value::String(SENSITIVE.into()))
                    }
                    v => (k.clone(), redact(fields, v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(fields, v)).collect()),
        v => v.clone(),
    }
}

fn shown(fields: &Descriptor, v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| redact(fields, v))
}

/// The declared leaves of `desired` that `live` does not have, as a person reads them.
pub fn field_changes(
    r: Rules,
    desired: &Value,
    live: &Value,
    field: &str,
    path: &str,
    pointer: &str,
    out: &mut Vec<FieldChange>,
) {
    let Rules { fields, secrets } = r;
    if covers(r, desired, live, field, pointer) {
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
                field_changes(r, dv, lv, k, &sub, &format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(d) if d.first().is_some_and(|first| fields.list_key(field, first).is_some()) => {
            let empty = Vec::new();
            let l = live.as_array().unwrap_or(&empty);
            for (i, dv) in d.iter().enumerate() {
                let key = fields.list_key(field, dv).unwrap_or_default();
                let sub = format!("{path}[{key}]");
                match l.iter().find(|lv| fields.list_key(field, lv).as_deref() == Some(&key)) {
                    Some(lv) => {
                        let p = format!("{pointer}/{i}");
                        match dv.as_object() {
                            Some(members) => {
                                for (k, v) in members {
                                    let lvk = lv.get(k).unwrap_or(&Value::Null);
                                    let (sub, p) = (format!("{sub}.{k}"), format!("{p}/{k}"));
                                    field_changes(r, v, lvk, k, &sub, &p, out);
                                }
                            }
                            None => field_changes(r, dv, lv, field, &sub, &p, out),
                        }
                    }
                    None => out.push(FieldChange {
                        path: sub,
                        before: None,
                        after: shown(fields, dv),
                    }),
                }
            }
            for lv in l {
                let key = fields.list_key(field, lv).unwrap_or_default();
                if !d.iter().any(|dv| fields.list_key(field, dv).as_deref() == Some(&key)) {
                    out.push(FieldChange {
                        path: format!("{path}[{key}]"),
                        before: shown(fields, lv),
                        after: None,
                    });
                }
            }
            // The elements both hold, in another order: the priority changes.
            if fields.is_ordered(field) {
                let (dk, lk) = (keys_of(fields, field, d), keys_of(fields, field, l));
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
        _ if fields.is_secret(field) => out.push(FieldChange {
            path: path.to_string(),
            before: (!is_default(live)).then(|| SENSITIVE.into()),
            after: (!is_default(desired)).then(|| SENSITIVE.into()),
        }),
        _ => out.push(FieldChange {
            path: path.to_string(),
            before: shown(fields, live),
            after: shown(fields, desired),
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

/// Compares each declared top-level field (but the resource's identity) and builds the
/// merge-all update.
pub fn update(
    fields: &Descriptor,
    desired: &Map<String, Value>,
    live: &Map<String, Value>,
    secrets: &SecretPointers,
) -> Update {
    let mut out = Update::default();
    for (k, dv) in desired {
        if fields.identity.contains(&k.as_str()) {
            continue;
        }
        let lv = live.get(k).unwrap_or(&Value::Null);
        let pointer = format!("/{k}");
        let r = Rules { fields, secrets };
        if covers(r, dv, lv, k, &pointer) {
            continue;
        }
        let value = match (dv, lv) {
            (Value::Object(_), Value::Object(_)) => overlay(fields, lv, dv),
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
        secret_leaves(fields, &value, &pointer, &mut carried);
        for p in carried.into_iter().filter(|p| !secrets.is_resolved(p)) {
            out.blocked.push(format!(
                "{k} must be sent whole, and {} holds a secret that only Sinch knows: declare it with a Secret reference",
                &p[1..].replace('/', ".")
            ));
        }
        field_changes(r, dv, lv, k, k, &pointer, &mut out.fields);
        out.mask.push(k.clone());
        out.body.insert(k.clone(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinch::Wire;
    use serde_json::json;
    use std::collections::BTreeMap;

    pub(super) const APP: &Descriptor = crate::sinch::app::App::FIELDS;
    pub(super) const WEBHOOK: &Descriptor = crate::sinch::webhook::Webhook::FIELDS;
    const TEMPLATE: &Descriptor = crate::sinch::template::Template::FIELDS;

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
        let desired = json!({"display_name": "A", "smart_conversation": {"enabled": false}});
        let live = json!({"id": "01", "display_name": "A", "rate_limits": {"outbound": 20},
                          "smart_conversation": {}, "processing_mode": "CONVERSATION"});
        let u = update(APP, &obj(desired), &obj(live), &SecretPointers::default());
        assert_eq!(u.mask, Vec::<String>::new());
        assert_eq!(u.fields, []);
        // A webhook's triggers are a set: another order is no change.
        let (desired, live) = (
            json!({"triggers": ["B", "A"]}),
            json!({"id": "w", "triggers": ["A", "B"]}),
        );
        let u = update(WEBHOOK, &obj(desired), &obj(live), &SecretPointers::default());
        assert_eq!(u.mask, Vec::<String>::new());
    }

    #[test]
    fn a_partly_declared_object_is_laid_over_the_live_one_and_sent_whole() {
        let desired = json!({"retention_policy": {"ttl_days": 30}});
        let live = json!({"retention_policy": {"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 180}});
        let u = update(APP, &obj(desired), &obj(live), &SecretPointers::default());
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
            update(APP, &defaults, &live, &SecretPointers::default())
                .mask
                .is_empty()
        );
        let other = obj(json!({"message_retry_settings": {"retry_duration": 60}}));
        assert_eq!(
            update(APP, &other, &live, &SecretPointers::default()).mask,
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
        let u = update(APP, &swapped, &live, &SecretPointers::default());
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
        assert!(update(APP, &same, &live, &SecretPointers::default()).mask.is_empty());
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
        let u = update(APP, &desired, &live, &s);
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
        let none = SecretPointers::default();
        let r = Rules {
            fields: APP,
            secrets: &none,
        };
        assert!(covers(r, &json!(1800), &json!("1800"), "x", "/x"));
        let mut out = Vec::new();
        let d = json!([{"language_code": "en", "version": "2", "text_message": {"text": "Hi"}}]);
        let l = json!([{"language_code": "en", "version": "1", "text_message": {"text": "Hi"}, "create_time": "t"}]);
        let r = Rules {
            fields: TEMPLATE,
            secrets: &none,
        };
        field_changes(r, &d, &l, "translations", "translations", "/translations", &mut out);
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
