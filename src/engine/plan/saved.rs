//! What makes a saved plan safe to apply later: a fingerprint of each live object it was planned
//! from and of each secret value (keyed, so that a plan file tells nothing about the values), and
//! the check that they still hold.

use super::builder::to_map;
use super::{Action, Change, Plan};
use crate::sinch::{Descriptor, Wire};
use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::{Map, Value};

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

/// The first 16 bytes of a digest in lower-case hex.
pub(crate) fn hex16(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        out.push(HEX[usize::from(b >> 4)].into());
        out.push(HEX[usize::from(b & 15)].into());
    }
    out
}

/// The fingerprint of a live object, without the fields Sinch changes on its own.
pub fn observed<T: Wire>(salt: &str, live: Option<&T>) -> String {
    match live {
        None => "absent".into(),
        Some(live) => observed_map(salt, T::FIELDS, &to_map(live)),
    }
}

/// [`observed`] of a live object the planner already holds as JSON. The stripped object is
/// written straight into the HMAC, byte for byte what `to_string` of a stripped copy gives (so
/// the fingerprints in saved plans and statuses stay valid), without building that copy.
pub fn observed_map(salt: &str, fields: &Descriptor, live: &Map<String, Value>) -> String {
    struct Stripped<'a>(&'a Descriptor, &'a Value);
    struct StrippedMap<'a>(&'a Descriptor, &'a Map<String, Value>);
    impl Serialize for StrippedMap<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let StrippedMap(fields, map) = *self;
            let mut m = s.serialize_map(None)?;
            for (k, v) in map.iter().filter(|(k, _)| *k == "id" || !fields.is_output_only(k)) {
                m.serialize_entry(k, &Stripped(fields, v))?;
            }
            m.end()
        }
    }
    impl Serialize for Stripped<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.1 {
                Value::Object(map) => StrippedMap(self.0, map).serialize(s),
                Value::Array(items) => s.collect_seq(items.iter().map(|v| Stripped(self.0, v))),
                other => other.serialize(s),
            }
        }
    }
    struct Mac(ring::hmac::Context);
    impl std::io::Write for Mac {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt.as_bytes());
    let mut mac = Mac(ring::hmac::Context::with_key(&key));
    serde_json::to_writer(&mut mac, &StrippedMap(fields, live)).expect("writing to a MAC cannot fail");
    hex16(mac.0.sign().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Saved plans and statuses hold fingerprints made by stripping a copy and hashing its
    /// text: the streamed form must give the very same bytes, at every depth.
    #[test]
    fn a_live_object_fingerprints_as_its_stripped_copy_did() {
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
        let fields = crate::sinch::app::App::FIELDS;
        let live = json!({
            "id": "01APP", "display_name": "Ünïcode \"quoted\"\n", "create_time": "2026-01-01T00:00:00Z",
            "rate_limits": {"inbound": 20, "outbound": 20},
            "channel_credentials": [
                {"channel": "SMS", "state": {"status": "ACTIVE"}, "static_bearer": {"claimed_identity": "x", "token": ""}},
                {}, [], 1.5, null, true
            ],
            "empty": {}, "list": []
        });
        let mut stripped = live.clone();
        strip(fields, &mut stripped);
        assert_ne!(stripped, live, "the example has output-only fields to strip");
        let Value::Object(map) = &live else { unreachable!() };
        assert_eq!(
            observed_map("salt", fields, map),
            fingerprint("salt", stripped.to_string().as_bytes())
        );
        // The HMAC's first 16 bytes in lower-case hex, as `format!("{b:02x}")` wrote them.
        assert_eq!(
            fingerprint("salt", b"abc"),
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"salt"), b"abc").as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
}
