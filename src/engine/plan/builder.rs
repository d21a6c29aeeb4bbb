//! What every kind's planner shares: the change of a target, errors per object, reads that
//! failed, secret values turned into placeholders, the fields of a new object.

use super::saved::{fingerprint, legacy_fingerprint, observed_map};
use super::{Action, Builder, Change, PlanError, SecretSlot};
use crate::engine::desired::{Desired, SecretUse};
use crate::engine::diff::{FieldChange, SENSITIVE, SecretPointers};
use crate::engine::observe::Read;
use crate::engine::{Scope, Target, diff};
use crate::model::Kind;
use crate::sinch::error::Class;
use crate::sinch::{Descriptor, Wire};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The secret pointers of a desired body; with hashes recorded at the last write, whether each
/// value differs from what was written.
pub(super) fn pointers(
    uses: &[SecretUse],
    recorded: &crate::engine::Recorded,
    salt: &str,
    body: &Map<String, Value>,
) -> SecretPointers {
    let mut rekeyed = BTreeMap::new();
    SecretPointers {
        written: uses
            .iter()
            .filter(|u| u.unresolved.is_none())
            .filter_map(|u| {
                let hash = recorded.secret_hashes.get(&u.pointer)?;
                let value = diff::value_at(body, &u.pointer)?.as_str()?.as_bytes();
                let keyed = fingerprint(salt, value);
                let legacy = recorded
                    .legacy_salt
                    .as_deref()
                    .is_some_and(|legacy| legacy_fingerprint(legacy, value) == *hash);
                if legacy && keyed != *hash {
                    rekeyed.insert(u.pointer.clone(), keyed.clone());
                }
                Some((u.pointer.clone(), keyed != *hash && !legacy))
            })
            .collect(),
        rekeyed,
        resolved: uses
            .iter()
            .filter(|u| u.unresolved.is_none())
            .map(|u| u.pointer.clone())
            .collect(),
        unresolved: uses
            .iter()
            .filter(|u| u.unresolved.is_some() && !u.pointer.is_empty())
            .map(|u| u.pointer.clone())
            .collect(),
    }
}

pub(super) fn unresolved_notes(uses: &[SecretUse]) -> Vec<String> {
    uses.iter()
        .filter_map(|u| {
            u.unresolved
                .as_ref()
                .map(|why| format!("{}: {why}; not compared", u.field))
        })
        .collect()
}

pub(super) fn to_map(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value).expect("wire types always serialise") {
        Value::Object(map) => map,
        _ => unreachable!("wire objects serialise as objects"),
    }
}

/// What the fields of a kind's wire resource mean.
fn fields_of(kind: Kind) -> &'static Descriptor {
    use crate::sinch::{app::App, settings::ProjectSettingsRequest, template::Template, webhook::Webhook};
    match kind {
        Kind::ConversationApp => App::FIELDS,
        Kind::Webhook => Webhook::FIELDS,
        Kind::Template => Template::FIELDS,
        Kind::ProjectSettings => ProjectSettingsRequest::FIELDS,
    }
}

/// The places of `body` that hold a secret in clear: a field its resource calls a secret whose
/// value is not the placeholder, or any string equal to a value of `uses` (whatever the field:
/// the net under a descriptor that missed one).
fn leaks(fields: &Descriptor, body: &Value, uses: &[SecretUse]) -> Vec<String> {
    let mut secret_fields = Vec::new();
    diff::secret_leaves(fields, body, "", &mut secret_fields);
    let mut out: Vec<String> = secret_fields
        .into_iter()
        .filter(|p| body.pointer(p).and_then(Value::as_str) != Some(SENSITIVE))
        .collect();
    let values: Vec<&str> = uses
        .iter()
        .filter_map(|u| u.value.as_ref())
        .map(|v| v.0.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    if !values.is_empty() {
        holding(body, &values, &mut String::new(), &mut out);
    }
    out
}

/// The pointers (under `pointer`) of the strings of `value` equal to one of `values`, not yet
/// in `out`. A pointer is built only for a match: this runs on every request a plan holds.
fn holding(value: &Value, values: &[&str], pointer: &mut String, out: &mut Vec<String>) {
    match value {
        Value::String(s) if values.contains(&s.as_str()) && !out.contains(pointer) => out.push(pointer.clone()),
        Value::Object(map) => {
            for (k, v) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(k);
                holding(v, values, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                holding(v, values, pointer, out);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// A desired object in wire form with the secrets it uses: their places and, for those Sinch
/// hides, whether each differs from what was last written.
pub(super) struct Wanted<'d> {
    /// What the resource's fields mean.
    pub fields: &'static Descriptor,
    pub wire: Map<String, Value>,
    pub uses: &'d [SecretUse],
    pub secrets: SecretPointers,
}

impl Builder<'_> {
    /// Whether `--prune` deletes undeclared objects of `kind` in `scope`.
    pub(super) fn prunes(&self, scope: &Scope, kind: Kind) -> bool {
        self.options.prune && !self.no_prune.contains(scope) && self.declared.contains(&(scope.clone(), kind))
    }

    pub(super) fn error(&mut self, t: &Target, message: impl Into<String>) {
        self.error_of(t, message, None);
    }

    /// An error with the class of the read that failed, when one did.
    pub(super) fn error_of(&mut self, t: &Target, message: impl Into<String>, class: Option<Class>) {
        self.failed.insert(t.scope.clone());
        self.plan.errors.push(PlanError {
            kind: Some(t.kind()),
            name: Some(t.name()),
            message: message.into(),
            class,
        });
    }

    /// A create sends every secret whole: one that is unresolved is the object's error (the first
    /// is named). Whether there was one.
    pub(super) fn cannot_create<T>(&mut self, t: &Target, what: &str, desired: &Desired<T>) -> bool {
        let Some(u) = desired.unresolved().next() else {
            return false;
        };
        let why = u.unresolved.as_deref().unwrap_or_default();
        self.error(t, format!("cannot create the {what}: {}: {why}", u.field));
        true
    }

    /// What was read for `t`; when it could not be, the error is recorded, and its class
    /// returned (none: it was not read at all).
    pub(super) fn read<'l, T>(
        &mut self,
        t: &Target,
        what: &str,
        read: Option<&'l Read<T>>,
    ) -> Result<&'l T, Option<Class>> {
        match read {
            Some(Ok(value)) => Ok(&**value),
            Some(Err(e)) => {
                let message = format!("cannot read the {what} of {}: {e}", t.scope);
                self.error_of(t, message, Some(e.class));
                Err(Some(e.class))
            }
            None => {
                let message = format!("the {what} of {} were not read", t.scope);
                self.error(t, message);
                Err(None)
            }
        }
    }

    /// Adds a change; secret values in its body become placeholders first. Placement fails
    /// closed: a body that still holds a secret afterwards (a field the API calls a secret, or
    /// any value of the object's Secrets) is not planned but an error of its object, so that no
    /// plan, rendering or saved file ever carries one. Its index, unless it failed.
    pub(super) fn push(&mut self, mut change: Change, uses: &[SecretUse]) -> Option<usize> {
        if let Some(body) = change.request.as_mut().and_then(|r| r.body.as_mut()) {
            for u in uses.iter().filter(|u| u.value.is_some()) {
                if let Some(slot) = body.pointer_mut(&u.pointer) {
                    let value = std::mem::replace(slot, Value::String(SENSITIVE.into()));
                    change.secrets.push(SecretSlot {
                        pointer: u.pointer.clone(),
                        namespace: u.namespace.clone(),
                        name: u.name.clone(),
                        key: u.key.clone(),
                        fingerprint: fingerprint(&self.options.salt, value.as_str().unwrap_or_default().as_bytes()),
                    });
                }
            }
            let leaks = leaks(fields_of(change.kind), body, uses);
            if !leaks.is_empty() {
                self.failed.insert(Scope {
                    project: change.project.clone(),
                    region: change.region,
                });
                self.plan.errors.push(PlanError {
                    kind: Some(change.kind),
                    name: Some(change.name.clone()),
                    message: format!(
                        "not planned: a secret would stay in the request at {} (a bug of sinch-operator; nothing is sent)",
                        leaks.join(", ")
                    ),
                    class: None,
                });
                return None;
            }
        }
        let index = self.plan.changes.len();
        self.plan.changes.push(change);
        Some(index)
    }

    pub(super) fn change(&self, t: &Target, action: Action, id: Option<String>, observed: String) -> Change {
        Change::new(t.kind(), t.name(), action, id, &t.scope, observed)
    }

    /// The change of an object found in Sinch and its merge-all update, compared on every field
    /// but its identity (the request is left to the caller); `None`, with the error recorded,
    /// when the update cannot be sent.
    pub(super) fn found<T: Wire>(
        &mut self,
        t: &Target,
        id: &str,
        live: &T,
        wanted: &Wanted,
    ) -> Option<(Change, diff::Update)> {
        let live_map = to_map(live);
        let mut update = diff::update(wanted.fields, &wanted.wire, &live_map, &wanted.secrets);
        if !update.blocked.is_empty() {
            self.error(t, format!("cannot update: {}", update.blocked.join("; ")));
            return None;
        }
        let action = if update.mask.is_empty() {
            Action::Noop
        } else {
            Action::Update
        };
        let mut c = self.change(
            t,
            action,
            Some(id.to_string()),
            observed_map(&self.options.salt, T::FIELDS, &live_map),
        );
        c.fields = std::mem::take(&mut update.fields);
        c.rekeyed = wanted.secrets.rekeyed.clone();
        c.notes = unresolved_notes(wanted.uses);
        let hidden = diff::hidden_secrets(wanted.fields, &wanted.wire, &live_map, &wanted.secrets);
        if hidden > 0 {
            c.notes.push(format!(
                "{hidden} secret{} not compared: Sinch does not return {} in clear",
                if hidden == 1 { "" } else { "s" },
                if hidden == 1 { "it" } else { "them" }
            ));
        }
        Some((c, update))
    }

    /// A desired object as the planners compare it with the live one.
    pub(super) fn wanted<'d, T: Wire>(&self, t: &Target, wire: &T, uses: &'d [SecretUse]) -> Wanted<'d> {
        let wire = to_map(wire);
        let secrets = pointers(uses, &t.recorded, &self.options.salt, &wire);
        Wanted {
            fields: T::FIELDS,
            wire,
            uses,
            secrets,
        }
    }
}

/// The fields of a new object, leaf by leaf (list elements whole), secrets redacted.
pub(super) fn created_fields(fields: &Descriptor, body: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in body.iter().filter(|(k, _)| !fields.is_output_only(k)) {
        let none = SecretPointers::default();
        let r = diff::Rules { fields, secrets: &none };
        diff::field_changes(r, v, &Value::Null, k, k, &format!("/{k}"), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Recorded;
    use crate::engine::desired::SecretUse;
    use serde_json::json;

    fn token_use() -> SecretUse {
        SecretUse {
            field: "spec.channelCredentials[0].staticBearer.tokenRef".into(),
            pointer: "/channel_credentials/0/static_bearer/token".into(),
            namespace: "ns".into(),
            name: "s".into(),
            key: "token".into(),
            value: Some(crate::sinch::Sensitive("canary-token-5151".into())),
            unresolved: None,
        }
    }

    #[test]
    fn fingerprints_are_keyed_and_hashes_of_older_versions_still_match() {
        let value = b"canary-token-5151";
        // Keyed: without the salt, the hash of a guessed value tells nothing.
        assert_ne!(fingerprint("secret-salt", value), fingerprint("other-salt", value));
        assert_eq!(fingerprint("secret-salt", value), fingerprint("secret-salt", value));
        assert_eq!(fingerprint("secret-salt", value).len(), 32);
        let body = json!({"channel_credentials": [{"static_bearer": {"token": "canary-token-5151"}}]});
        let recorded = |hash: String| Recorded {
            id: None,
            secret_hashes: [("/channel_credentials/0/static_bearer/token".to_string(), hash)].into(),
            legacy_salt: Some("uid-1".into()),
        };
        let body = body.as_object().unwrap();
        let changed = |r: &Recorded| pointers(&[token_use()], r, "secret-salt", body).written;
        let pointer = "/channel_credentials/0/static_bearer/token";
        // A hash recorded by an older version (sha256 with the uid) matches: no rewrite.
        assert!(!changed(&recorded(legacy_fingerprint("uid-1", value)))[pointer]);
        assert!(!changed(&recorded(fingerprint("secret-salt", value)))[pointer]);
        // A rotated value differs under either.
        assert!(changed(&recorded(legacy_fingerprint("uid-1", b"old")))[pointer]);
        assert!(changed(&recorded(fingerprint("secret-salt", b"old")))[pointer]);
        // A matching legacy hash is keyed anew (the status then holds no hash salted with the
        // public uid); a keyed or rotated one is not.
        let rekeyed = |r: &Recorded| pointers(&[token_use()], r, "secret-salt", body).rekeyed;
        assert_eq!(
            rekeyed(&recorded(legacy_fingerprint("uid-1", value))),
            [(pointer.to_string(), fingerprint("secret-salt", value))].into()
        );
        assert!(rekeyed(&recorded(fingerprint("secret-salt", value))).is_empty());
        assert!(rekeyed(&recorded(legacy_fingerprint("uid-1", b"old"))).is_empty());
    }
}

#[cfg(test)]
mod fail_closed {
    use super::*;
    use crate::engine::observe::Live;
    use crate::engine::plan::{Options, Plan};
    use crate::input::Input;
    use crate::model::Region;
    use crate::sinch::Sensitive;
    use crate::sinch::request::Request;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn push(body: Value, uses: &[SecretUse]) -> Plan {
        let body: crate::sinch::app::App = serde_json::from_value(body).unwrap();
        push_change(Kind::ConversationApp, Request::create_app("p", &body), uses)
    }

    fn push_change(kind: Kind, request: Request, uses: &[SecretUse]) -> Plan {
        let (input, live, options, none) = (Input::default(), Live::default(), Options::default(), BTreeSet::new());
        let mut b = Builder {
            input: &input,
            live: &live,
            options: &options,
            no_prune: &none,
            declared: BTreeSet::new(),
            failed: BTreeSet::new(),
            plan: Plan::of(Vec::new()),
        };
        let scope = Scope {
            project: "p".into(),
            region: Region::Us,
        };
        let mut change = Change::new(kind, "ns/shop".into(), Action::Create, None, &scope, String::new());
        change.request = Some(request);
        b.push(change, uses);
        b.plan
    }

    fn used(pointer: &str, value: &str) -> SecretUse {
        SecretUse {
            field: "spec.x".into(),
            pointer: pointer.into(),
            namespace: "ns".into(),
            name: "s".into(),
            key: "k".into(),
            value: Some(Sensitive(value.into())),
            unresolved: None,
        }
    }

    #[test]
    fn a_secret_that_placement_missed_is_an_error_never_a_plan() {
        let body = json!({"display_name": "Shop", "channel_credentials": [
            {"channel": "SMS", "static_bearer": {"claimed_identity": "i", "token": "canary-bearer"}},
            {"channel": "TELEGRAM", "telegram_credentials": {"token": "canary-telegram"}}
        ]});
        let bearer = used("/channel_credentials/0/static_bearer/token", "canary-bearer");
        let telegram = used("/channel_credentials/1/telegram_credentials/token", "canary-telegram");
        // Both placed: one change, placeholders only.
        let plan = push(body.clone(), &[bearer.clone(), telegram.clone()]);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert!(!serde_json::to_string(&plan).unwrap().contains("canary"));
        // A use placed at a wrong pointer (what a naming rule got wrong once): the token stays
        // under a field the API calls a secret, and its value is the object's Secret's.
        let wrong = used("/channel_credentials/1/telegram/token", "canary-telegram");
        let plan = push(body.clone(), &[bearer.clone(), wrong]);
        assert!(plan.changes.is_empty());
        assert_eq!(
            plan.errors[0].to_string(),
            "ConversationApp ns/shop: not planned: a secret would stay in the request at /channel_credentials/1/telegram_credentials/token (a bug of sinch-operator; nothing is sent)"
        );
        assert!(!serde_json::to_string(&plan).unwrap().contains("canary"));
        // A Secret's value under a field no list calls secret is caught by its value.
        let body = json!({"display_name": "canary-bearer"});
        let plan = push(body, &[bearer]);
        assert_eq!(plan.changes.len(), 0);
        assert!(plan.errors[0].message.contains("at /display_name"), "{:?}", plan.errors);
    }

    /// A template's free-form message may name a parameter `token` or `secret`: only a
    /// resource's own secret fields are its secrets.
    #[test]
    fn a_template_parameter_named_like_a_secret_is_no_secret() {
        let template: crate::sinch::template::Template = serde_json::from_value(json!({
            "id": "otp", "default_translation": "en",
            "translations": [{"language_code": "en", "version": "1", "template_message": {
                "omni_template": {"template_id": "otp", "version": "1", "language_code": "en",
                                  "parameters": {"token": "${code}", "secret": "x"}}}}]
        }))
        .unwrap();
        let plan = push_change(Kind::Template, Request::create_template("p", &template), &[]);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        assert_eq!(plan.changes.len(), 1);
    }
}
