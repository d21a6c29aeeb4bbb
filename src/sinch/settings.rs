//! Project settings (`/v1/projects/{project_id}/settings`, a singleton) and the identity
//! conflicts that block enabling unified contact id.

use super::Extra;
use serde::{Deserialize, Serialize};

/// The body of POST and PATCH: settings at the top level.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ProjectSettingsRequest {
    pub contact_settings: Option<ContactSettings>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What GET, POST and PATCH answer: the settings nested under `settings`.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ProjectSettings {
    pub project_id: Option<String>,
    pub settings: Option<ProjectSettingsRequest>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ContactSettings {
    pub unified_contact_id_enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One page of `GET /v1/projects/{p}/contacts:identityConflicts`; an empty or absent
/// `next_page_token` ends the list.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ListIdentityConflictsResponse {
    #[serde(default)]
    pub conflicts: Vec<IdentityConflict>,
    pub next_page_token: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IdentityConflict {
    pub identity: String,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub contact_ids: Vec<String>,
}

/// The settings, asked or answered: nothing output-only, no secret, no list.
const SETTINGS: &super::Descriptor = &super::Descriptor {
    output_only: &[],
    identity: &[],
    secrets: &[],
    keyed: &[],
    sets: &[],
    defaults: &[],
};

impl super::Wire for ProjectSettingsRequest {
    const FIELDS: &'static super::Descriptor = SETTINGS;
}

impl super::Wire for ProjectSettings {
    const FIELDS: &'static super::Descriptor = SETTINGS;
}
