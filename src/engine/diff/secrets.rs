//! Secrets in the comparison (rule 7): which places of a desired value hold them, whether each
//! can be compared (only when Sinch returns it in clear, or against the hash of the last write),
//! and how many Sinch hides.

use crate::sinch::Descriptor;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The JSON pointers of a desired value that hold secrets, resolved or not.
#[derive(Clone, Debug, Default)]
pub struct SecretPointers {
    pub resolved: Vec<String>,
    pub unresolved: Vec<String>,
    /// Resolved secrets with a hash recorded at the last write (the controller's status), and
    /// whether the value differs from it: how a secret that Sinch does not return in clear is
    /// compared (rule 7).
    pub written: BTreeMap<String, bool>,
    /// Of those, the ones whose hash matched only the legacy fingerprint, with the keyed one.
    pub rekeyed: BTreeMap<String, String>,
}

impl SecretPointers {
    pub(super) fn is_resolved(&self, pointer: &str) -> bool {
        self.resolved.iter().any(|p| p == pointer)
    }
}

/// A value the API hides. Sinch does not document how it masks (docs/sinch-api.md): all stars
/// (`********`), stars or bullets before or after a visible part (`****1234`, `ab••••`), or an
/// ellipsis (`abc…`, `abc...`) are all taken as masked, so that no converged apply rewrites a
/// credential (which resets the channel's state) because a masked value differs from the
/// Secret. A real token holds none of these runs.
pub fn is_masked(s: &str) -> bool {
    !s.is_empty()
        && (s.chars().all(|c| c == '*')
            || s.contains("***")
            || s.contains("•••")
            || s.ends_with('…')
            || s.ends_with("..."))
}

/// The pointers of the non-empty secret strings in `value`.
pub fn secret_leaves(fields: &Descriptor, value: &Value, pointer: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{pointer}/{k}");
                match v {
                    Value::String(s) if fields.is_secret(k) && !s.is_empty() => out.push(p),
                    v => secret_leaves(fields, v, &p, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                secret_leaves(fields, v, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// How many resolved secrets of `desired` could not be compared because the live value hides
/// them (masked, empty or left out, with what holds them). A secret of a list element Sinch
/// does not have (a new channel) is part of a change of the list, not hidden.
pub fn hidden_secrets(
    fields: &Descriptor,
    desired: &Map<String, Value>,
    live: &Map<String, Value>,
    secrets: &SecretPointers,
) -> usize {
    secrets
        .resolved
        .iter()
        .filter(|p| !secrets.written.contains_key(*p))
        .filter(|p| match counterpart(fields, desired, live, p) {
            Some(Some(Value::String(s))) => s.is_empty() || is_masked(s),
            Some(_) => true,
            None => false,
        })
        .count()
}

/// The value at `pointer` (`/field/...`) of an object.
pub fn value_at<'v>(object: &'v Map<String, Value>, pointer: &str) -> Option<&'v Value> {
    let rest = pointer.strip_prefix('/')?;
    let (field, rest) = rest.split_once('/').map_or((rest, ""), |(f, _)| (f, &rest[f.len()..]));
    object.get(field)?.pointer(rest)
}

/// The live value at the place of `pointer` in `desired`, list elements matched by their
/// natural key as [`covers`] matches them: `Some(None)` when Sinch left it (or an object
/// holding it) out, `None` when a list element holding it is not in Sinch.
fn counterpart<'v>(
    fields: &Descriptor,
    desired: &Map<String, Value>,
    live: &'v Map<String, Value>,
    pointer: &str,
) -> Option<Option<&'v Value>> {
    let mut segments = pointer.split('/').skip(1);
    let first = segments.next()?;
    let (mut field, mut d, mut l) = (first, desired.get(first)?, live.get(first));
    for seg in segments {
        l = match d {
            Value::Array(items) => {
                let i = seg.parse::<usize>().ok()?;
                d = items.get(i)?;
                let ls = l.and_then(Value::as_array);
                let found = match fields.list_key(field, d) {
                    Some(key) => {
                        ls.and_then(|ls| ls.iter().find(|x| fields.list_key(field, x).as_deref() == Some(&key)))
                    }
                    None => ls.and_then(|ls| ls.get(i)),
                };
                Some(found?)
            }
            _ => {
                field = seg;
                d = d.get(seg)?;
                l.and_then(|lv| lv.get(seg))
            }
        };
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::diff::tests::{APP, WEBHOOK, obj, secrets};
    use crate::engine::diff::{FieldChange, SENSITIVE, update};
    use serde_json::json;

    #[test]
    fn a_clear_secret_is_compared_and_shown_as_sensitive_a_masked_one_is_not_compared() {
        let s = secrets(&["/secret"], &[]);
        let desired = obj(json!({"target": "https://a", "secret": "new-canary"}));
        let clear = obj(json!({"target": "https://a", "secret": "old-canary"}));
        let u = update(WEBHOOK, &desired, &clear, &s);
        assert_eq!(u.mask, ["secret"]);
        assert_eq!(
            u.fields,
            [FieldChange {
                path: "secret".into(),
                before: Some(SENSITIVE.into()),
                after: Some(SENSITIVE.into())
            }]
        );
        let masked = obj(json!({"target": "https://a", "secret": "********"}));
        assert!(update(WEBHOOK, &desired, &masked, &s).mask.is_empty());
        assert_eq!(hidden_secrets(WEBHOOK, &desired, &masked, &s), 1);
    }

    /// Only what Sinch holds can hide a secret: a channel it does not have yet is a change (its
    /// token is sent and shown), and channels are matched by their channel, not their place.
    #[test]
    fn a_secret_is_hidden_only_where_sinch_holds_its_object() {
        let token = |i: usize| format!("/channel_credentials/{i}/static_bearer/token");
        let s = secrets(&[&token(0), &token(1)], &[]);
        let desired = obj(json!({"channel_credentials": [
            {"channel": "RCS", "static_bearer": {"claimed_identity": "a", "token": "canary-rcs"}},
            {"channel": "SMS", "static_bearer": {"claimed_identity": "b", "token": "canary-sms"}},
        ]}));
        let live = |sms_token: Value| {
            obj(json!({"channel_credentials": [
                {"channel": "SMS", "static_bearer": {"claimed_identity": "b", "token": sms_token}},
            ]}))
        };
        assert_eq!(
            hidden_secrets(APP, &desired, &live(json!("********")), &s),
            1,
            "SMS masked, RCS new"
        );
        assert_eq!(
            hidden_secrets(APP, &desired, &live(json!("canary-sms")), &s),
            0,
            "SMS in clear, RCS new"
        );
        let omitted =
            obj(json!({"channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "b"}}]}));
        assert_eq!(
            hidden_secrets(APP, &desired, &omitted, &s),
            1,
            "a token Sinch leaves out is hidden"
        );
        // An object that holds only a secret may be left out whole: not compared either.
        let pointer = "/callback_settings/secret_for_overridden_callback_urls";
        let s = secrets(&[pointer], &[]);
        let desired = obj(json!({"callback_settings": {"secret_for_overridden_callback_urls": "canary-cb"}}));
        let live = obj(json!({"display_name": "x"}));
        assert!(update(APP, &desired, &live, &s).mask.is_empty());
        assert_eq!(
            hidden_secrets(APP, &desired, &live, &s),
            1,
            "noted, not silently skipped"
        );
    }

    /// Rule 7: a masked secret is compared with the hash recorded at the last write.
    #[test]
    fn a_masked_secret_with_a_recorded_hash_is_compared_by_it() {
        let masked = obj(json!({"target": "https://a", "secret": "********"}));
        let desired = obj(json!({"target": "https://a", "secret": "rotated-canary"}));
        let mut s = secrets(&["/secret"], &[]);
        s.written.insert("/secret".into(), true);
        let u = update(WEBHOOK, &desired, &masked, &s);
        assert_eq!(u.mask, ["secret"]);
        assert_eq!(u.body["secret"], "rotated-canary");
        assert_eq!(
            hidden_secrets(WEBHOOK, &desired, &masked, &s),
            0,
            "compared, not hidden"
        );
        s.written.insert("/secret".into(), false);
        assert!(update(WEBHOOK, &desired, &masked, &s).mask.is_empty());
    }

    #[test]
    fn an_update_that_needs_an_unresolved_secret_is_blocked() {
        let s = secrets(&[], &["/channel_credentials/0/static_bearer/token"]);
        let desired =
            obj(json!({"channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "2"}}]}));
        let live = obj(json!({"channel_credentials": []}));
        let u = update(APP, &desired, &live, &s);
        assert_eq!(
            u.blocked,
            [
                "channel_credentials must be sent whole, but the secret for channel_credentials.0.static_bearer.token is unresolved"
            ]
        );
        // Nothing to send, nothing blocked: an unresolved secret alone is not compared.
        let live = obj(
            json!({"channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "2", "token": "x"}}]}),
        );
        let u = update(APP, &desired, &live, &s);
        assert!(u.mask.is_empty() && u.blocked.is_empty());
    }

    #[test]
    fn every_plausible_mask_is_taken_as_masked_and_no_token_is() {
        for masked in ["********", "****1234", "ab****", "••••5678", "abc…", "sk-abc..."] {
            assert!(super::is_masked(masked), "{masked}");
        }
        for token in [
            "canary-sms-token-1f3c",
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
            "a*b",
            "x.y",
            "",
        ] {
            assert!(!super::is_masked(token), "{token}");
        }
    }
}
