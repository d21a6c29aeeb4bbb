//! Webhooks: listed under an app (`/v1/projects/{p}/apps/{app_id}/webhooks`), otherwise
//! project-scoped by id (`/v1/projects/{p}/webhooks/{webhook_id}`).

use super::{Extra, Sensitive};
use serde::{Deserialize, Serialize};

/// At most this many webhooks per app: the API refuses a sixth.
pub const MAX_PER_APP: usize = 5;

/// Rule 3 over one app's webhooks, given their targets in order: the one place that counts
/// them and finds a target used twice. `validate` asks it of the declared webhooks (offline),
/// the plan of the declared and the live ones kept beside them; each words its own message.
#[derive(Debug, PartialEq, Eq)]
pub struct Limits {
    /// More than [`MAX_PER_APP`].
    pub too_many: bool,
    /// Each target used again: (its index, the index of its first use).
    pub repeats: Vec<(usize, usize)>,
}

impl Limits {
    pub fn of<'a>(targets: impl IntoIterator<Item = &'a str>) -> Limits {
        let targets: Vec<&str> = targets.into_iter().collect();
        let repeats = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| targets[..i].iter().position(|f| f == t).map(|first| (i, first)))
            .collect();
        Limits {
            too_many: targets.len() > MAX_PER_APP,
            repeats,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_to_five_and_name_each_repeat_with_its_first_use() {
        let five = ["a", "b", "c", "d", "e"];
        assert_eq!(
            Limits::of(five),
            Limits {
                too_many: false,
                repeats: vec![]
            }
        );
        assert!(Limits::of(["a", "b", "c", "d", "e", "f"]).too_many);
        assert_eq!(Limits::of(["a", "b", "a", "a"]).repeats, [(2, 0), (3, 0)]);
    }
}
