//! What the CLI reads of the cluster of the current kubeconfig: for `plan --from-cluster` the
//! objects of the four kinds, handed to the validator as if read from files (each named
//! `cluster: Kind ns/name` in errors), so that the plan is the one the controller's engine would
//! make; for `--secrets-from-cluster` the Secrets the input refers to.

use crate::input::Input;
use crate::model::{API_VERSION, Kind};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Map, Value, json};

/// The objects of `namespace` (every namespace: `None`), validated as one input.
pub async fn objects(namespace: Option<&str>) -> crate::Result<Input> {
    let kube = kube::Client::try_default()
        .await
        .map_err(|e| crate::Error::kube("--from-cluster: cannot reach the Kubernetes API server (KUBECONFIG)", e))?;
    let mut docs = Vec::new();
    for kind in Kind::ALL {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(kube.clone(), ns, &resource),
            None => Api::all_with(kube.clone(), &resource),
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| crate::Error::kube(format!("--from-cluster: cannot list {}", resource.plural), e))?;
        for object in list {
            let (label, doc) = document(kind, object);
            docs.push(crate::load::Document::from_value(&label, doc));
        }
    }
    crate::validate::validate(docs, Vec::new()).map_err(crate::Error::Invalid)
}

/// The object as a person would have written it: name, namespace, labels, annotations (not
/// kubectl's copy of the last apply) and spec; no status.
fn document(kind: Kind, object: DynamicObject) -> (String, Value) {
    let meta = object.metadata;
    let namespace = meta.namespace.unwrap_or_default();
    let name = meta.name.unwrap_or_default();
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("namespace".into(), json!(namespace));
    if let Some(labels) = meta.labels.filter(|l| !l.is_empty()) {
        metadata.insert("labels".into(), json!(labels));
    }
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), json!(annotations));
    }
    let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
    let label = format!("cluster: {kind} {namespace}/{name}");
    (
        label,
        json!({"apiVersion": API_VERSION, "kind": kind.name(), "metadata": metadata, "spec": spec}),
    )
}

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
