//! What the watches read: each object of a kind as the API server sent it, converted to its
//! type one at a time, so that one object that cannot be read never stops the others (rule 14).
//!
//! A list page parsed as `ObjectList<K>` fails whole when one object fails: a Template whose
//! free-form message nests past serde_json's recursion limit (the API server accepts 10,000
//! levels) stopped every Template of every namespace at the next re-list. Here a page is parsed
//! with each `spec` and `status` kept as raw text (skipped over without recursion), and each
//! object is then parsed alone. One that fails is left out of the stream and its status says
//! why (`InvalidSpec`); its finalizer stays until the spec is fixed (or a person removes it),
//! since what it owns in Sinch cannot be known from a spec that cannot be read.

use super::status::{Managed, STATUS_MANAGER};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::marker::PhantomData;

/// An object of kind `K` with its spec and status not yet parsed.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Raw<K> {
    #[serde(deserialize_with = "without_managed_fields")]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Box<RawValue>>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

/// The metadata but `managedFields`, which is skipped unparsed: it mirrors the object's own
/// field paths, so it may nest as deep as a free-form map of the spec (nothing reads it here).
fn without_managed_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use std::collections::BTreeMap;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        annotations: Option<BTreeMap<String, String>>,
        creation_timestamp: Option<Time>,
        deletion_grace_period_seconds: Option<i64>,
        deletion_timestamp: Option<Time>,
        finalizers: Option<Vec<String>>,
        generate_name: Option<String>,
        generation: Option<i64>,
        labels: Option<BTreeMap<String, String>>,
        name: Option<String>,
        namespace: Option<String>,
        owner_references: Option<Vec<OwnerReference>>,
        resource_version: Option<String>,
        self_link: Option<String>,
        uid: Option<String>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: m.self_link,
        uid: m.uid,
    })
}

impl<K: Managed> Resource for Raw<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        K::kind(&()).into_owned().into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        K::group(&()).into_owned().into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        K::version(&()).into_owned().into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        K::plural(&()).into_owned().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The largest spec the controller holds: each object is kept in a watch cache for as long as it
/// exists, and the API server takes up to 1.5 MiB an object. Validate allows 64 KiB a message;
/// a spec over this size is refused whole (memory bounded by design, rule 14).
pub const MAX_SPEC_BYTES: usize = 512 * 1024;

impl<K: Managed> Raw<K> {
    /// The object as its type, or why it cannot be read (its size, serde_json's own limits).
    pub fn parse(&self) -> Result<K, String> {
        if let Some(spec) = &self.spec
            && spec.get().len() > MAX_SPEC_BYTES
        {
            return Err(format!(
                "its spec is {} bytes; at most {MAX_SPEC_BYTES} are read",
                spec.get().len()
            ));
        }
        let object = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": self.metadata,
        });
        let mut text = object.to_string();
        // `{...}` -> `{..., "spec": <raw>, "status": <raw>}`: the raw parts are not parsed twice.
        text.pop();
        for (name, part) in [("spec", &self.spec), ("status", &self.status)] {
            if let Some(part) = part {
                text.push_str(&format!(",\"{name}\":{}", part.get()));
            }
        }
        text.push('}');
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// How the kinds are listed: pages of 50 objects (kube's default is 500). A page is held as text
/// and as raw parts while it is read; 50 objects of the largest a tenant can write stay well
/// under the pod's memory, where 500 would not.
pub fn config() -> watcher::Config {
    watcher::Config::default().page_size(50)
}

/// The watch of kind `K`: every object that parses, as `K`; each one that does not is reported
/// on its own status and left out.
pub fn watch<K: Managed>(
    api: Api<Raw<K>>,
    config: watcher::Config,
) -> impl futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    use futures_util::StreamExt;
    use kube::runtime::WatchStreamExt;
    watcher(api.clone(), config).default_backoff().filter_map(move |event| {
        let api = api.clone();
        async move {
            let event = match event {
                Ok(event) => event,
                Err(e) => return Some(Err(e)),
            };
            let parsed = |raw: Raw<K>| {
                let api = api.clone();
                async move {
                    match raw.parse() {
                        Ok(obj) => Some(obj),
                        Err(e) => {
                            unreadable(&api, &raw, &e).await;
                            None
                        }
                    }
                }
            };
            use watcher::Event as E;
            Some(Ok(match event {
                E::Apply(raw) => E::Apply(parsed(raw).await?),
                E::InitApply(raw) => E::InitApply(parsed(raw).await?),
                // A deleted object is gone from the store whether it parses or not; one that
                // never parsed was never in it.
                E::Delete(raw) => E::Delete(raw.parse().ok()?),
                E::Init => E::Init,
                E::InitDone => E::InitDone,
            }))
        }
    })
}

/// Tells the owner of an object that cannot be read why, on its status (once per generation:
/// nothing is written when the status already says so).
async fn unreadable<K: Managed>(api: &Api<Raw<K>>, raw: &Raw<K>, error: &str) {
    let name = raw.metadata.name.clone().unwrap_or_default();
    let namespace = raw.metadata.namespace.clone().unwrap_or_default();
    let message = format!(
        "the object cannot be read: {error}; nothing is done for it until its spec is fixed (its finalizer stays: \
         what it manages in Sinch is kept)"
    );
    tracing::warn!(kind = %K::kind(&()), %namespace, %name, %error, "an object cannot be read");
    let generation = raw.metadata.generation;
    let said = raw
        .status
        .as_ref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s.get()).ok())
        .is_some_and(|s| {
            s["observedGeneration"].as_i64() == generation
                && s["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["reason"] == "InvalidSpec" && c["message"] == message)
                })
        });
    if said {
        return;
    }
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let condition = |type_: &str| {
        json!({"type": type_, "status": "False", "reason": "InvalidSpec", "message": message,
               "lastTransitionTime": now, "observedGeneration": generation})
    };
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": {"observedGeneration": generation, "conditions": [condition("Ready"), condition("Synced")]},
    });
    let api: Api<Raw<K>> = Api::namespaced(api.clone().into_client(), &namespace);
    if let Err(e) = api
        .patch_status(
            &name,
            &PatchParams::apply(STATUS_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        tracing::warn!(%namespace, %name, error = %crate::kube_message(&e), "cannot write the status of an object that cannot be read");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Template;

    /// A page holding one Template nested 10,000 deep and one ordinary: the page parses, the
    /// ordinary one converts, the deep one is an error of its own.
    #[test]
    fn a_page_with_an_object_nested_past_the_recursion_limit_still_parses() {
        let deep = format!("{}{}", "{\"a\":".repeat(10_000), "1".to_string() + &"}".repeat(10_000));
        let template = |name: &str, body: &str| {
            format!(
                r#"{{"apiVersion":"conversation.sinch.com/v1alpha1","kind":"Template","metadata":{{"name":"{name}","namespace":"t"}},
                "spec":{{"defaultTranslation":"en","translations":[{{"languageCode":"en","version":"1","cardMessage":{body}}}]}}}}"#
            )
        };
        // Fields paths nested as deep in `managedFields` are skipped, not parsed.
        let fine = template("fine", r#"{"title":"Hi"}"#).replace(
            r#""namespace":"t"}"#,
            &format!(r#""namespace":"t","managedFields":[{{"manager":"x","fieldsV1":{deep}}}]}}"#),
        );
        let page = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{},{fine}]}}"#,
            template("deep", &deep),
        );
        assert!(
            serde_json::from_str::<kube::core::ObjectList<Template>>(&page).is_err(),
            "the typed page fails"
        );
        let raw: kube::core::ObjectList<Raw<Template>> = serde_json::from_str(&page).expect("the raw page parses");
        assert!(raw.items[0].parse().unwrap_err().contains("recursion limit exceeded"));
        // A spec over the size a watch cache holds is refused whole, before it is parsed.
        let mut huge = raw.items[1].clone();
        let big = format!(
            r#"{{"defaultTranslation":"en","description":"{}"}}"#,
            "x".repeat(MAX_SPEC_BYTES)
        );
        let size = big.len();
        huge.spec = Some(RawValue::from_string(big).unwrap());
        assert_eq!(
            huge.parse().unwrap_err(),
            format!("its spec is {size} bytes; at most 524288 are read")
        );
        let fine = raw.items[1].parse().unwrap();
        assert_eq!(fine.metadata.name.as_deref(), Some("fine"));
        assert_eq!(fine.spec.translations.len(), 1);
    }
}
