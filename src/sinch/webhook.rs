//! Webhooks: listed under an app (`/v1/projects/{p}/apps/{app_id}/webhooks`), otherwise
//! project-scoped by id (`/v1/projects/{p}/webhooks/{webhook_id}`).

use super::{Extra, Sensitive};
use serde::{Deserialize, Serialize};

/// At most this many webhooks per app: the API refuses a sixth.
pub const MAX_PER_APP: usize = 5;

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Webhook {
    /// Output only.
    pub id: Option<String>,
    pub app_id: Option<String>,
    pub target: Option<String>,
    /// `HTTP` or `DISMISS`.
    pub target_type: Option<String>,
    pub secret: Option<Sensitive>,
    pub triggers: Option<Vec<String>>,
    pub client_credentials: Option<ClientCredentials>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ListWebhooksResponse {
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<Sensitive>,
    pub endpoint: Option<String>,
    pub scope: Option<String>,
    pub response_type: Option<String>,
    /// `BASIC` or `FORM`.
    pub token_request_type: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
