//! The user-facing schema: the four custom resources of group `conversation.sinch.com`.
//!
//! Field names are the API's own in camelCase; a secret field `x` becomes `xRef` pointing at a
//! Kubernetes Secret. The conversion to the wire types lives with each kind's engine code, never
//! here: this module is only the shape a person writes and the cluster stores.

// `#[kube(printcolumn(...))]` repeats `type_ = ...` once per column, which this lint misreads.
#[allow(clippy::duplicated_attributes)]
mod app;
#[allow(clippy::duplicated_attributes)]
mod settings;
#[allow(clippy::duplicated_attributes)]
mod template;
#[allow(clippy::duplicated_attributes)]
mod tenancy;
#[allow(clippy::duplicated_attributes)]
mod webhook;

pub use app::*;
pub use settings::*;
pub use template::*;
pub use tenancy::*;
pub use webhook::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "conversation.sinch.com";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "conversation.sinch.com/v1alpha1";

/// The four kinds, in the order `crds` prints them and the engine applies them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ConversationApp,
    Webhook,
    Template,
    ProjectSettings,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ConversationApp,
        Kind::Webhook,
        Kind::Template,
        Kind::ProjectSettings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ConversationApp => "ConversationApp",
            Kind::Webhook => "Webhook",
            Kind::Template => "Template",
            Kind::ProjectSettings => "ProjectSettings",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What the Sinch object of this kind is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ConversationApp => "app",
            Kind::Webhook => "webhook",
            Kind::Template => "template",
            Kind::ProjectSettings => "project settings",
        }
    }

    /// Whether its Sinch id is known before it exists (a template's id, the settings' project):
    /// the id is claimed before the create, no natural key stands in for it.
    pub fn id_known_before_create(self) -> bool {
        matches!(self, Kind::Template | Kind::ProjectSettings)
    }

    /// Whether Sinch deletes it: the settings belong to the project and stay.
    pub fn deletable(self) -> bool {
        self != Kind::ProjectSettings
    }

    /// Whether a write's answer leaves something Sinch sets after it (channel states, a
    /// template's version), read back soon after; a webhook's and the settings' answer says it
    /// all.
    pub fn reads_back(self) -> bool {
        matches!(self, Kind::ConversationApp | Kind::Template)
    }

    /// Group, version, kind and plural, for dynamic API calls (no schema derived).
    pub fn api_resource(self) -> kube::api::ApiResource {
        match self {
            Kind::ConversationApp => kube::api::ApiResource::erase::<ConversationApp>(&()),
            Kind::Webhook => kube::api::ApiResource::erase::<Webhook>(&()),
            Kind::Template => kube::api::ApiResource::erase::<Template>(&()),
            Kind::ProjectSettings => kube::api::ApiResource::erase::<ProjectSettings>(&()),
        }
    }

    pub fn crd(self) -> CustomResourceDefinition {
        match self {
            Kind::ConversationApp => ConversationApp::crd(),
            Kind::Webhook => Webhook::crd(),
            Kind::Template => Template::crd(),
            Kind::ProjectSettings => ProjectSettings::crd(),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An object of any of the four kinds.
#[derive(Clone, Debug)]
pub enum Object {
    ConversationApp(ConversationApp),
    Webhook(Webhook),
    Template(Template),
    ProjectSettings(ProjectSettings),
}

impl Object {
    /// What tells its Sinch object apart before an id is known, within a project: an app's
    /// display name, a webhook's app and target, a template's id; the settings are the
    /// project's own (`None`: the project is the key).
    pub fn natural_key(&self) -> Option<String> {
        match self {
            Object::ConversationApp(a) => Some(a.spec.display_name.clone()),
            Object::Webhook(w) => Some(match &w.spec.app {
                WebhookApp::AppId(app) => format!("{app}/{}", w.spec.target),
                WebhookApp::AppRef(r) => format!("{}/{}", r.name, w.spec.target),
            }),
            Object::Template(t) => Some(t.spec.id(self.name())),
            Object::ProjectSettings(_) => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Object::ConversationApp(_) => Kind::ConversationApp,
            Object::Webhook(_) => Kind::Webhook,
            Object::Template(_) => Kind::Template,
            Object::ProjectSettings(_) => Kind::ProjectSettings,
        }
    }

    pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::ConversationApp(o) => &o.metadata,
            Object::Webhook(o) => &o.metadata,
            Object::Template(o) => &o.metadata,
            Object::ProjectSettings(o) => &o.metadata,
        }
    }

    pub fn placement(&self) -> &Placement {
        match self {
            Object::ConversationApp(o) => &o.spec.placement,
            Object::Webhook(o) => &o.spec.placement,
            Object::Template(o) => &o.spec.placement,
            Object::ProjectSettings(o) => &o.spec.placement,
        }
    }

    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `Kind namespace/name`, as every message names an object.
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.kind(), self.namespace(), self.name())
    }

    /// The spec as the user wrote it (camelCase).
    pub fn spec_value(&self) -> serde_json::Value {
        match self {
            Object::ConversationApp(o) => serde_json::to_value(&o.spec),
            Object::Webhook(o) => serde_json::to_value(&o.spec),
            Object::Template(o) => serde_json::to_value(&o.spec),
            Object::ProjectSettings(o) => serde_json::to_value(&o.spec),
        }
        .expect("a spec serialises")
    }

    /// Every secret field's reference, with its path (`spec.webhookSecretRef`...): each
    /// `...Ref: {name, key}` of the spec.
    pub fn secret_refs(&self) -> Vec<(String, SecretKeyRef)> {
        fn walk(value: &serde_json::Value, path: String, out: &mut Vec<(String, SecretKeyRef)>) {
            use crate::diagnostic::{child, item};
            match value {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        let p = child(&path, k);
                        if k.ends_with("Ref")
                            && let (Some(name), Some(key)) = (
                                v.get("name").and_then(serde_json::Value::as_str),
                                v.get("key").and_then(serde_json::Value::as_str),
                            )
                        {
                            out.push((
                                p,
                                SecretKeyRef {
                                    name: name.into(),
                                    key: key.into(),
                                },
                            ));
                        } else {
                            walk(v, p, out);
                        }
                    }
                }
                serde_json::Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(v, item(&path, i), out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.spec_value(), "spec".into(), &mut out);
        out
    }
}

/// `"true"` on an object: the controller writes nothing to Sinch for it (reads and status go
/// on); `plan --from-cluster` says so on its changes.
pub const PAUSED_ANNOTATION: &str = "conversation.sinch.com/paused";

pub fn is_paused(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Any new value on an object: reconcile it now, reading its scope from Sinch afresh (after a
/// Secret was rotated, or a project fixed by hand). The value handled last is recorded in
/// `status.lastHandledReconcileAt` (as Flux's `reconcile.fluxcd.io/requestedAt`).
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "conversation.sinch.com/reconcile-requested-at";

/// The value of [`RECONCILE_REQUESTED_ANNOTATION`], if set.
pub fn reconcile_requested(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_ANNOTATION))
        .map(String::as_str)
}

/// The namespace of an object that names none, as with kubectl.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Every CRD: the four kinds, then the admin's connections and the operator's ledger.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut all: Vec<_> = Kind::ALL.into_iter().map(Kind::crd).collect();
    all.push(SinchConnection::crd());
    all.push(SinchClaim::crd());
    all
}

/// All CRDs as one multi-document YAML stream: what `sinch-operator crds` prints and `crds/`
/// holds.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd).expect("a CRD always serialises"));
    }
    out
}

/// One JSON Schema per kind, from its CRD, for editors (yaml-language-server) and kubeconform:
/// `(path, schema)` with the path in their layout, `conversation.sinch.com/<kind>_v1alpha1.json`.
/// OpenAPI's `nullable` becomes a `null` type, and objects the CRD prunes reject unknown
/// fields (the API server would silently drop a misspelt one).
pub fn json_schemas() -> Vec<(String, serde_json::Value)> {
    use serde_json::{Value, json};
    fn convert(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.remove("nullable") == Some(Value::Bool(true))
                    && let Some(Value::String(t)) = map.get("type").cloned()
                {
                    map.insert("type".into(), json!([t, "null"]));
                }
                let prunes = !map.contains_key("x-kubernetes-preserve-unknown-fields");
                if prunes && map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(convert);
            }
            Value::Array(items) => items.iter_mut().for_each(convert),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for crd in crds() {
        let kind = crd.spec.names.kind.clone();
        for version in &crd.spec.versions {
            let Some(schema) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else {
                continue;
            };
            let mut schema = serde_json::to_value(schema).expect("a schema always serialises");
            convert(&mut schema);
            let api_version = format!("{}/{}", crd.spec.group, version.name);
            let properties = schema["properties"]
                .as_object_mut()
                .expect("a CRD schema has properties");
            properties.insert("apiVersion".into(), json!({"type": "string", "enum": [api_version]}));
            properties.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
            properties.insert("metadata".into(), json!({"type": "object"}));
            let required = schema
                .as_object_mut()
                .expect("an object")
                .entry("required")
                .or_insert(json!([]));
            let required = required.as_array_mut().expect("a list");
            for key in ["kind", "apiVersion"] {
                if !required.iter().any(|r| r == key) {
                    required.insert(0, json!(key));
                }
            }
            schema["$schema"] = json!("http://json-schema.org/draft-07/schema#");
            let path = format!("{}/{}_{}.json", crd.spec.group, kind.to_lowercase(), version.name);
            out.push((path, schema));
        }
    }
    out
}

// On the command line a `clap::ValueEnum` (its help lists the three); in the environment and in
// Secrets, `FromStr` below.
/// A Sinch region. Every object talks to the hosts of its own region.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us,
    Eu,
    Br,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Us, Region::Eu, Region::Br];

    pub fn from_name(name: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
            Region::Br => "br",
        }
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A region as a person writes it (flags, environment, Secrets): the one place of its message.
impl std::str::FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Region, String> {
        Region::from_name(s).ok_or_else(|| format!("{s:?} is not a region: use us, eu or br"))
    }
}

/// Whether the operator may write to Sinch for this object.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create, update and (per `deletionPolicy`) delete.
    #[default]
    Full,
    /// Never write; report drift only.
    ObserveOnly,
}

/// What happens on the Sinch side when the object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    /// Leave the Sinch object in place.
    Orphan,
}

impl std::str::FromStr for DeletionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<DeletionPolicy, String> {
        match s {
            "Delete" => Ok(DeletionPolicy::Delete),
            "Orphan" => Ok(DeletionPolicy::Orphan),
            other => Err(format!("{other:?} is not a deletion policy: Delete or Orphan")),
        }
    }
}

/// On a Namespace: the `deletionPolicy` of its objects that name none (`Delete` or `Orphan`),
/// over the operator's `--default-deletion-policy`.
pub const DELETION_POLICY_LABEL: &str = "conversation.sinch.com/deletion-policy";

/// Where an object lives in Sinch and how it is managed; flattened into every kind's spec.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Sinch project id. Default: the connection's (`SINCH_PROJECT_ID` or the credentials Secret).
    #[schemars(length(min = 1, max = 64))]
    pub project_id: Option<String>,
    /// Sinch region. Default: the connection's (`SINCH_REGION`, else `us`).
    pub region: Option<Region>,
    /// Secret in this namespace with keys `keyId`, `keySecret` (optional `projectId`, `region`).
    /// Used by the controller; the CLI uses its environment.
    pub credentials_ref: Option<LocalRef>,
    /// The `SinchConnection` to use (controller only). Default: the one the admin made the
    /// default of this namespace.
    pub connection_ref: Option<LocalRef>,
    /// `Full` (default) or `ObserveOnly`.
    pub management_policy: Option<ManagementPolicy>,
    /// `Delete` (default) or `Orphan`.
    pub deletion_policy: Option<DeletionPolicy>,
}

/// A reference to another object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct LocalRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Kubernetes Secret in the same namespace. Secret values are never written inline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Status fields every kind reports; flattened into each kind's status.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = structural)]
pub struct SyncStatus {
    /// The `metadata.generation` this status describes.
    pub observed_generation: Option<i64>,
    /// `Ready` (the Sinch object exists and matches) and `Synced` (the last reconcile succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When Sinch was seen to match the spec, as of the status's last change (not refreshed while
    /// nothing else changes).
    pub last_synced_time: Option<Time>,
    /// The Sinch project the object lives in.
    pub project_id: Option<String>,
    /// The Sinch region the object lives in.
    pub region: Option<Region>,
    /// The id of the Sinch object an object observes without managing it (`ObserveOnly` or
    /// paused, and no object of the cluster claims it). Only a managed object's id is recorded
    /// as its own (`appId`, `webhookId`, `templateId`): a recorded id is never a claim.
    pub observed_id: Option<String>,
    /// The last value of the `conversation.sinch.com/reconcile-requested-at` annotation handled.
    pub last_handled_reconcile_at: Option<String>,
    /// Salted hashes of the secret values last written, by field: compared when Sinch does
    /// not return a secret in clear (rule 7).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secret_hashes: std::collections::BTreeMap<String, String>,
}

/// The condition types the operator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondType {
    /// The Sinch object exists (and, managed, matches the spec).
    Ready,
    /// The last reconcile did what the spec asks.
    Synced,
    /// Sinch changed under a spec it matched.
    Drifted,
}

impl CondType {
    pub const ALL: [CondType; 3] = [CondType::Ready, CondType::Synced, CondType::Drifted];

    pub fn as_str(self) -> &'static str {
        match self {
            CondType::Ready => "Ready",
            CondType::Synced => "Synced",
            CondType::Drifted => "Drifted",
        }
    }
}

impl SyncStatus {
    /// The condition of type `t`, if written.
    pub fn condition(&self, t: CondType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == t.as_str())
    }

    /// Whether the condition of type `t` is written and `True`.
    pub fn is_true(&self, t: CondType) -> bool {
        self.condition(t).is_some_and(|c| c.status == "True")
    }
}

/// Kubernetes stores only what a structural schema declares, and old API servers (1.20) reject
/// `null` inside an `enum` list, which schemars writes for `Option<Enum>`: strip it everywhere.
/// On a Secret of a tenant's namespace: sinch-operator may use it (the controller, and the CLI's
/// `--secrets-from-cluster`). Without it a Secret is never read into a request: a user who may
/// write a Webhook but not read Secrets could otherwise have any Secret of the namespace sent
/// to an endpoint of theirs (`clientCredentials`). Labelling a Secret needs the right to
/// update it, which such a user lacks.
pub const SECRET_LABEL: &str = "conversation.sinch.com/operator-secret";

/// Whether a Secret's labels let sinch-operator use it ([`SECRET_LABEL`] is `"true"`).
pub fn secret_usable(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels.and_then(|l| l.get(SECRET_LABEL)).is_some_and(|v| v == "true")
}

pub(crate) fn structural(schema: &mut schemars::Schema) {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(map) = schema.as_object_mut() {
        map.values_mut().for_each(walk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec_schema(kind: Kind) -> Value {
        let crd = serde_json::to_value(kind.crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    }

    #[test]
    fn the_api_server_can_enforce_enums_ranges_and_required_fields() {
        let app = spec_schema(Kind::ConversationApp);
        assert_eq!(app["required"], json!(["displayName"]));
        assert_eq!(
            app["properties"]["processingMode"]["enum"],
            json!(["CONVERSATION", "DISPATCH"])
        );
        assert_eq!(app["properties"]["region"]["enum"], json!(["us", "eu", "br"]));
        let ttl = &app["properties"]["retentionPolicy"]["properties"]["ttlDays"];
        assert_eq!(
            (ttl["minimum"].as_f64(), ttl["maximum"].as_f64()),
            (Some(1.0), Some(3650.0))
        );
        let retry = &app["properties"]["messageRetrySettings"]["properties"]["retryDuration"];
        assert_eq!(
            (retry["minimum"].as_f64(), retry["maximum"].as_f64()),
            (Some(30.0), Some(3600.0))
        );
        let entry = &app["properties"]["channelCredentials"]["items"];
        let ordinal = &entry["properties"]["credentialOrdinalNumber"];
        assert_eq!(
            (ordinal["minimum"].as_f64(), ordinal["maximum"].as_f64()),
            (Some(0.0), Some(255.0))
        );
        // Exactly one credential object: one `oneOf` branch per kind of credential.
        let branches: Vec<&str> = entry["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["required"][0].as_str().unwrap())
            .collect();
        assert_eq!(branches.len(), 11);
        assert!(branches.contains(&"staticBearer") && branches.contains(&"applebcCredentials"));

        let hook = spec_schema(Kind::Webhook);
        assert_eq!(hook["properties"]["target"]["maxLength"], json!(742));
        assert_eq!(
            hook["oneOf"],
            json!([{"required": ["appRef"]}, {"required": ["appId"]}])
        );
        assert!(
            !hook["properties"]["triggers"]["items"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("UNSPECIFIED_TRIGGER"))
        );

        let template = spec_schema(Kind::Template);
        assert_eq!(template["required"], json!(["defaultTranslation", "translations"]));
        assert_eq!(
            template["properties"]["translations"]["items"]["oneOf"]
                .as_array()
                .unwrap()
                .len(),
            9
        );
    }

    /// A 1.20 API server rejects a whole CRD whose enum lists carry `null` (see toolchain facts).
    #[test]
    fn no_enum_list_contains_null() {
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::Array(values)) = m.get("enum") {
                        assert!(!values.contains(&Value::Null), "null in enum at {path}");
                    }
                    m.iter().for_each(|(k, v)| walk(v, &format!("{path}.{k}")));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, path)),
                _ => {}
            }
        }
        for kind in Kind::ALL {
            walk(&serde_json::to_value(kind.crd()).unwrap(), kind.name());
        }
    }

    #[test]
    fn kubectl_shows_ready_synced_id_and_age() {
        for (kind, id) in [
            (Kind::ConversationApp, "App ID"),
            (Kind::Webhook, "Webhook ID"),
            (Kind::Template, "Template ID"),
            (Kind::ProjectSettings, "Project"),
        ] {
            let crd = kind.crd();
            let version = &crd.spec.versions[0];
            let columns: Vec<&str> = version
                .additional_printer_columns
                .iter()
                .flatten()
                .filter(|c| c.priority.is_none())
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(columns, ["Ready", "Synced", id, "Age"], "{kind}");
            assert!(
                version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
                "{kind}"
            );
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(crd.spec.names.categories.as_deref(), Some(&["sinch".to_string()][..]));
            assert_eq!(crd.spec.names.short_names.as_ref().map(Vec::len), Some(1), "{kind}");
        }
    }

    #[test]
    fn manifests_round_trip_through_the_types() {
        let yaml = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: a}
spec:
  displayName: A
  channelCredentials:
    - channel: LINE
      credentialOrdinalNumber: 1
      lineEnterpriseCredentials:
        lineJapan:
          tokenRef: {name: s, key: t}
          secretRef: {name: s, key: u}
        isDefault: true
"#;
        let app: ConversationApp = serde_yaml::from_str(yaml).unwrap();
        let entry = &app.spec.channel_credentials.as_ref().unwrap()[0];
        let Credential::LineEnterpriseCredentials(c) = &entry.credential else {
            panic!("{entry:?}")
        };
        assert!(matches!(c.account, LineEnterpriseAccount::LineJapan(_)));
        assert_eq!(c.is_default, Some(true));
        let back = serde_json::to_value(&app.spec).unwrap();
        assert_eq!(
            back["channelCredentials"][0]["lineEnterpriseCredentials"]["lineJapan"]["secretRef"]["key"],
            "u"
        );
        // Undeclared fields stay undeclared: nothing the user did not write is sent back.
        assert_eq!(
            back.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["channelCredentials", "displayName"]
        );
    }
}
