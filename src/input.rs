//! What was read, as validate hands it to the engine and the controller: the manifests with
//! where each was written, and the Secret values they may refer to (from `kind: Secret`
//! documents of the input, or the cluster: `crate::cluster`, the controller's connections).
//! Nothing here reads or checks anything.
//!
//! Secret values are kept as bytes and never printed: nothing here implements `Display` for a
//! value, and `Debug` shows key names only.

use crate::load::Source;
use crate::model::Object;
use std::collections::BTreeMap;

/// One object of the input, with where it was written.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub source: Source,
    pub object: Object,
}

/// The validated input: our objects and the Secrets they may refer to.
#[derive(Debug, Default)]
pub struct Input {
    pub manifests: Vec<Manifest>,
    pub secrets: Secrets,
}

#[derive(Default, Clone)]
pub struct Secrets {
    /// (namespace, name) -> key -> value.
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: BTreeMap<_, Vec<_>> = self
            .secrets
            .iter()
            .map(|((ns, name), data)| (format!("{ns}/{name}"), data.keys().collect()))
            .collect();
        f.debug_struct("Secrets").field("keys", &keys).finish()
    }
}

impl Secrets {
    /// Adds a Secret's decoded values.
    pub fn insert(&mut self, namespace: &str, name: &str, data: BTreeMap<String, Vec<u8>>) {
        self.secrets.insert((namespace.to_string(), name.to_string()), data);
    }

    /// The keys of a Secret, when the input holds it.
    pub fn keys(&self, namespace: &str, name: &str) -> Option<Vec<&str>> {
        self.secrets
            .get(&(namespace.to_string(), name.to_string()))
            .map(|data| data.keys().map(String::as_str).collect())
    }

    pub fn get(&self, namespace: &str, name: &str, key: &str) -> Option<&[u8]> {
        self.secrets
            .get(&(namespace.to_string(), name.to_string()))
            .and_then(|data| data.get(key))
            .map(Vec::as_slice)
    }

    /// `text` with every secret value held here, and each of `also`, shown as `(sensitive)`:
    /// an API's error may quote what it was sent, and must not carry it into output, status or
    /// events. Values under 4 characters are left (they would mangle the text, and guard
    /// nothing).
    pub fn scrub(&self, text: &str, also: &[&str]) -> String {
        let mut out = text.to_string();
        let held = self
            .secrets
            .values()
            .flat_map(|data| data.values())
            .filter_map(|v| std::str::from_utf8(v).ok());
        for value in held.chain(also.iter().copied()) {
            let value = value.trim();
            if value.chars().count() >= 4 && out.contains(value) {
                out = out.replace(value, crate::sinch::SENSITIVE);
            }
        }
        out
    }
}
