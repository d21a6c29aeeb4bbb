//! The two cluster-scoped kinds of tenancy, written by the platform admin and the operator, never
//! by a namespace user: `SinchConnection` (which namespaces may use which project, with which
//! key) and `SinchClaim` (the ownership ledger: which object manages which Sinch object).

use super::{Kind, LocalRef, Region};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Sinch project the admin lets some namespaces use.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "SinchConnection",
    plural = "sinchconnections",
    doc = "A Sinch project, its access key and the namespaces that may use it.",
    shortname = "sconn",
    category = "sinch",
    printcolumn(name = "Project", type_ = "string", json_path = ".spec.projectId"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(name = "Default", type_ = "boolean", json_path = ".spec.default"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct SinchConnectionSpec {
    /// Sinch project id; objects using this connection live in it and may name no other.
    #[schemars(length(min = 1, max = 64))]
    pub project_id: String,
    /// Region of objects that name none. Default `us`.
    pub region: Option<Region>,
    /// Secret in the operator's namespace with keys `keyId` and `keySecret`.
    pub credentials_secret_ref: LocalRef,
    /// The namespaces that may use this connection.
    pub namespaces: NamespaceSelector,
    /// Namespaces that may manage the project's ProjectSettings (default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_namespaces: Vec<String>,
    /// Objects of the allowed namespaces that name no `connectionRef` use this one.
    pub default: Option<bool>,
}

/// Namespaces by name or by label; a namespace either lists is allowed.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub selector: Option<LabelSelector>,
}

/// One Sinch object and the object that manages it. The operator writes a claim before it
/// creates or first writes the Sinch object, and refuses to act for any other owner.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "SinchClaim",
    plural = "sinchclaims",
    doc = "Which object manages a Sinch object (written by the operator).",
    shortname = "sclaim",
    category = "sinch",
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(name = "ID", type_ = "string", json_path = ".spec.id"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".spec.owner.namespace"),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner.name"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct SinchClaimSpec {
    pub project_id: String,
    pub region: Region,
    pub kind: Kind,
    /// The natural key: an app's display name, a webhook's `appId/target`, a template's id.
    pub key: String,
    /// The Sinch id; absent while the object is being created (the claim then holds the key).
    pub id: Option<String>,
    pub owner: ClaimOwner,
    /// Taken over from outside the operator (the adopt annotation): deleting the owner leaves
    /// the Sinch object unless its `deletionPolicy` says `Delete`.
    pub adopted: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ClaimOwner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl JsonSchema for Kind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Kind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        })
    }
}
