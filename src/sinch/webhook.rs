//! Webhooks: listed under an app (`/v1/projects/{p}/apps/{app_id}/webhooks`), otherwise
//! project-scoped by id (`/v1/projects/{p}/webhooks/{webhook_id}`).

use super::{Extra, Sensitive};
use serde::{Deserialize, Serialize};

/// At most this many webhooks per app: the API refuses a sixth.
pub const MAX_PER_APP: usize = 5;

/// Rule 3 over one app's webhooks, given their targets in order (none for a live webhook that
/// has none: it still counts): the one place that counts them and finds a target used twice.
/// `validate` asks it of the declared webhooks (offline), the plan of the declared and the live
/// ones kept beside them; each words its own message.
#[derive(Debug, PartialEq, Eq)]
pub struct Limits {
    /// More than [`MAX_PER_APP`].
    pub too_many: bool,
    /// Each target used again: (its index, the index of its previous use).
    pub repeats: Vec<(usize, usize)>,
}

impl Limits {
    pub fn of<'a>(targets: impl IntoIterator<Item = Option<&'a str>>) -> Limits {
        let mut previous: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut repeats = Vec::new();
        let mut count = 0usize;
        for (i, target) in targets.into_iter().enumerate() {
            count = count.saturating_add(1);
            if let Some(before) = target.and_then(|t| previous.insert(t, i)) {
                repeats.push((i, before));
            }
        }
        Limits {
            too_many: count > MAX_PER_APP,
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

impl super::Wire for Webhook {
    const FIELDS: &'static super::Descriptor = &super::Descriptor {
        output_only: &["id"],
        // The app and the target are the webhook's identity (rule 3: a target once per app).
        identity: &["id", "app_id", "target"],
        secrets: &["secret", "client_secret"],
        keyed: &[],
        sets: &["triggers"],
        defaults: &[],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_to_five_and_name_each_repeat_with_its_previous_use() {
        let some = |ts: &[&'static str]| ts.iter().map(|t| Some(*t)).collect::<Vec<_>>();
        assert_eq!(
            Limits::of(some(&["a", "b", "c", "d", "e"])),
            Limits {
                too_many: false,
                repeats: vec![]
            }
        );
        assert!(Limits::of(some(&["a", "b", "c", "d", "e", "f"])).too_many);
        // A live webhook without a target counts, and is nobody's repeat.
        let mut six = some(&["a", "b", "c", "d", "e"]);
        six.push(None);
        assert_eq!(Limits::of(six.clone()).repeats, []);
        assert!(Limits::of(six).too_many);
        assert_eq!(Limits::of(some(&["a", "b", "a", "a"])).repeats, [(2, 0), (3, 2)]);
    }
}
