//! What makes a saved plan safe to apply later: a fingerprint of each live object it was planned
//! from and of each secret value (keyed, so that a plan file tells nothing about the values), and
//! the check that they still hold.

use super::{Action, Change, Plan};
use crate::sinch::{Descriptor, Wire};
use serde_json::Value;

/// Why a saved plan can no longer be applied as it is: an object it was planned from changed in
/// Sinch, or the input now asks for something else. Empty when it still holds.
pub fn stale(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let key = |c: &Change| (c.kind, c.name.clone(), c.project.clone(), c.region);
    let mut out = Vec::new();
    for s in &saved.changes {
        match fresh.changes.iter().find(|f| key(f) == key(s)) {
            Some(f) if f.observed != s.observed => {
                out.push(format!("{}: changed in Sinch since the plan was made", s.label()))
            }
            Some(f) if f != s => out.push(format!("{}: the input asks for something else now", s.label())),
            Some(_) => {}
            None => out.push(format!("{}: no longer planned", s.label())),
        }
    }
    for f in fresh.changes.iter().filter(|f| f.action != Action::Noop) {
        if !saved.changes.iter().any(|s| key(s) == key(f)) {
            out.push(format!("{}: a change the saved plan does not have", f.label()));
        }
    }
    out
}

/// HMAC-SHA256 of `bytes` keyed with `salt`, shortened: ties a value to a plan without revealing
/// it. The salt is secret (a saved plan's is in the file, mode 0600; the controller's is derived
/// from a key it keeps), so a hash shown in a status cannot be tested against guessed values.
pub fn fingerprint(salt: &str, bytes: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt.as_bytes());
    hex16(ring::hmac::sign(&key, bytes).as_ref())
}

/// The fingerprint of versions before 0.2: `sha256(salt, 0, bytes)` with the public uid as salt.
pub(crate) fn legacy_fingerprint(salt: &str, bytes: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(&[0]);
    ctx.update(bytes);
    hex16(ctx.finish().as_ref())
}

fn hex16(digest: &[u8]) -> String {
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of a live object, without the fields Sinch changes on its own.
pub fn observed<T: Wire>(salt: &str, live: Option<&T>) -> String {
    fn strip(fields: &Descriptor, v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| k == "id" || !fields.is_output_only(k));
                map.values_mut().for_each(|v| strip(fields, v));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| strip(fields, v)),
            _ => {}
        }
    }
    match live {
        None => "absent".into(),
        Some(live) => {
            let mut v = serde_json::to_value(live).expect("wire types always serialise");
            strip(T::FIELDS, &mut v);
            fingerprint(salt, v.to_string().as_bytes())
        }
    }
}
