//! What `plan` and `apply` read of the cluster of the current kubeconfig for
//! `--secrets-from-cluster`: the Secrets the input refers to. (`plan --from-cluster` is the
//! controller's own decision, run dry: `controller::preview`.)

use crate::input::Input;

/// Adds the Secrets that `input`'s objects refer to and the input does not hold, read from the
/// cluster of the current kubeconfig (each in its object's namespace). A Secret the cluster does
/// not have stays unresolved, as one missing from the input does; one not labelled for the
/// operator ([`crate::model::SECRET_LABEL`]) is an error, as in the controller: a manifest of a
/// shared repository must not send whatever Secret it names to an endpoint of its author's.
pub async fn add_secrets(input: &mut Input) -> crate::Result<()> {
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
            e,
        )
    })?;
    for (ns, name) in wanted {
        let api: kube::Api<Secret> = kube::Api::namespaced(kube.clone(), &ns);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|e| crate::Error::kube(format!("--secrets-from-cluster: cannot read Secret {ns}/{name}"), e))?;
        if let Some(secret) = secret {
            if !crate::model::secret_usable(secret.metadata.labels.as_ref()) {
                return Err(crate::Error::Config {
                    var: "--secrets-from-cluster",
                    message: format!(
                        "Secret {ns}/{name} is not labelled {label}=true: sinch-operator uses only Secrets labelled for it (kubectl -n {ns} label secret {name} {label}=true); nothing was sent",
                        label = crate::model::SECRET_LABEL
                    ),
                });
            }
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
