//! `ProjectSettings`: the per-project singleton of the Conversation API.

use super::{Placement, SyncStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A project's Conversation API settings. At most one per project.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "ProjectSettings",
    plural = "projectsettings",
    namespaced,
    doc = "The Sinch Conversation API settings of a project.",
    status = "ProjectSettingsStatus",
    shortname = "cps",
    category = "sinch",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(name = "Project", type_ = "string", json_path = ".status.projectId"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct ProjectSettingsSpec {
    #[serde(flatten)]
    pub placement: Placement,
    pub contact_settings: Option<ContactSettings>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactSettings {
    /// Group SMS, MMS and RCS identities with the same number into one contact. Enabling it
    /// fails while identity conflicts exist; the plan reports them.
    pub unified_contact_id_enabled: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSettingsStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
}
