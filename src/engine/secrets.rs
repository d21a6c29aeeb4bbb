//! Secret values, from `kind: Secret` documents of the input or, with `--secrets-from-cluster`,
//! from the cluster of the current kubeconfig.
//!
//! Values are kept as bytes and never printed: nothing here implements `Display` for a value,
//! and `Debug` shows key names only.

use std::collections::BTreeMap;

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
                out = out.replace(value, "(sensitive)");
            }
        }
        out
    }
}

/// Adds the Secrets that `input`'s objects refer to and the input does not hold, read from the
/// cluster of the current kubeconfig (each in its object's namespace). A Secret the cluster does
/// not have stays unresolved, as one missing from the input does.
pub async fn add_from_cluster(input: &mut crate::validate::Input) -> crate::Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let mut wanted = std::collections::BTreeSet::new();
    for m in &input.manifests {
        let ns = m.object.namespace();
        let own = m.object.placement().credentials_ref.iter().map(|r| r.name.clone());
        for name in m.object.secret_refs().into_iter().map(|(_, r)| r.name).chain(own) {
            if input.secrets.keys(ns, &name).is_none() {
                wanted.insert((ns.to_string(), name));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let kube = kube::Client::try_default().await.map_err(|e| {
        crate::Error::kube(
            "--secrets-from-cluster: cannot reach the Kubernetes API server (KUBECONFIG)",
            &e,
        )
    })?;
    for (ns, name) in wanted {
        let api: kube::Api<Secret> = kube::Api::namespaced(kube.clone(), &ns);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|e| crate::Error::kube(format!("--secrets-from-cluster: cannot read Secret {ns}/{name}"), &e))?;
        if let Some(secret) = secret {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            input.secrets.insert(&ns, &name, data);
        }
    }
    Ok(())
}
