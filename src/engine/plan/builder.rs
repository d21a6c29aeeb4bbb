//! What every kind's planner shares: the change of a target, errors per object, reads that
//! failed, secret values turned into placeholders, the fields of a new object.

use super::saved::{fingerprint, legacy_fingerprint, observed};
use super::{Action, Builder, Change, PlanError, SecretSlot};
use crate::engine::desired::{Desired, SecretUse};
use crate::engine::diff::{FieldChange, SENSITIVE, SecretPointers};
use crate::engine::observe::Read;
use crate::engine::{Scope, Target, diff};
use crate::model::Kind;
use crate::sinch::error::Class;
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
            .filter(|u| u.unresolved.is_some())
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

/// A desired object in wire form with the secrets it uses: their places and, for those Sinch
/// hides, whether each differs from what was last written.
pub(super) struct Wanted<'d> {
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

    /// Adds a change; secret values in its body become placeholders first.
    pub(super) fn push(&mut self, mut change: Change, uses: &[SecretUse]) -> usize {
        if let Some(body) = change.request.as_mut().and_then(|r| r.body.as_mut()) {
            for u in uses.iter().filter(|u| u.unresolved.is_none()) {
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
        }
        let index = self.plan.changes.len();
        self.plan.changes.push(change);
        index
    }

    pub(super) fn change(&self, t: &Target, action: Action, id: Option<String>, observed: String) -> Change {
        Change {
            kind: t.kind(),
            name: t.name(),
            action,
            id,
            project: t.scope.project.clone(),
            region: t.scope.region,
            fields: Vec::new(),
            request: None,
            notes: Vec::new(),
            secrets: Vec::new(),
            after: Vec::new(),
            app_from: None,
            observed,
            rekeyed: BTreeMap::new(),
        }
    }

    /// The change of an object found in Sinch and its merge-all update, compared on every field
    /// but `skip` (the request is left to the caller); `None`, with the error recorded, when the
    /// update cannot be sent.
    pub(super) fn found(
        &mut self,
        t: &Target,
        id: &str,
        live: &impl Serialize,
        wanted: &Wanted,
        skip: &[&str],
    ) -> Option<(Change, diff::Update)> {
        let live_map = to_map(live);
        let mut update = diff::update(&wanted.wire, &live_map, skip, &wanted.secrets);
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
            observed(&self.options.salt, Some(live)),
        );
        c.fields = std::mem::take(&mut update.fields);
        c.rekeyed = wanted.secrets.rekeyed.clone();
        c.notes = unresolved_notes(wanted.uses);
        let hidden = diff::hidden_secrets(&wanted.wire, &live_map, &wanted.secrets);
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
    pub(super) fn wanted<'d>(&self, t: &Target, wire: &impl Serialize, uses: &'d [SecretUse]) -> Wanted<'d> {
        let wire = to_map(wire);
        let secrets = pointers(uses, &t.recorded, &self.options.salt, &wire);
        Wanted { wire, uses, secrets }
    }
}

/// The fields of a new object, leaf by leaf (list elements whole), secrets redacted.
pub(super) fn created_fields(body: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in body.iter().filter(|(k, _)| k.as_str() != "id") {
        diff::field_changes(
            v,
            &Value::Null,
            k,
            k,
            &format!("/{k}"),
            &SecretPointers::default(),
            &mut out,
        );
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
