//! `Webhook`: where the Conversation API sends an app's events.

use super::{LocalRef, Placement, SecretKeyRef, SyncStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A webhook of a Conversation API app. Identity: `status.webhookId`, else the live webhook of
/// the app with the same `target`. At most 5 per app; `target` unique per app.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "Webhook",
    namespaced,
    doc = "A webhook of a Sinch Conversation API app.",
    status = "WebhookStatus",
    shortname = "cwh",
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
    printcolumn(name = "Webhook ID", type_ = "string", json_path = ".status.webhookId"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct WebhookSpec {
    /// Project and region come from the app; declaring different ones is an error.
    #[serde(flatten)]
    pub placement: Placement,
    /// The app: `appRef` (a ConversationApp in this namespace) or `appId`, exactly one.
    #[serde(flatten)]
    pub app: WebhookApp,
    /// The URL events are sent to: absolute http(s), at most 742 characters, not a
    /// `conversation-api.*.sinch.com` host.
    #[schemars(length(min = 1, max = 742))]
    pub target: String,
    /// `HTTP` (default here: always sent) or `DISMISS`.
    pub target_type: Option<TargetType>,
    /// The events to send. When declared this is the whole list.
    pub triggers: Option<Vec<Trigger>>,
    /// Secret used to sign the callbacks (HMAC).
    pub secret_ref: Option<SecretKeyRef>,
    /// OAuth2 client credentials Sinch uses to call the target.
    pub client_credentials: Option<ClientCredentials>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WebhookApp {
    /// A ConversationApp in the same namespace.
    AppRef(LocalRef),
    /// The id of an app not managed here.
    AppId(#[schemars(length(min = 1, max = 64))] String),
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetType {
    #[default]
    Http,
    Dismiss,
}

/// The events a webhook can subscribe to (`UNSPECIFIED_TRIGGER` is left out: the API rejects it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Trigger {
    MessageDelivery,
    EventDelivery,
    MessageInbound,
    EventInbound,
    ConversationStart,
    ConversationStop,
    ContactCreate,
    ContactDelete,
    ContactMerge,
    ContactUpdate,
    Unsupported,
    OptIn,
    OptOut,
    Capability,
    ConversationDelete,
    ContactIdentitiesDuplication,
    ChannelEvent,
    SmartConversation,
    MessageInboundSmartConversationRedaction,
    RecordNotification,
    MessageSubmit,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentials {
    #[schemars(length(min = 1))]
    pub client_id: String,
    pub client_secret_ref: SecretKeyRef,
    /// The token endpoint Sinch calls; it must answer an access token with `expires_in` 30 to 3600 s.
    #[schemars(length(min = 1))]
    pub endpoint: String,
    /// Space-separated scopes.
    #[schemars(length(max = 1024))]
    pub scope: Option<String>,
    #[schemars(length(max = 64))]
    pub response_type: Option<String>,
    /// `BASIC` (the API's default) or `FORM`.
    pub token_request_type: Option<TokenRequestType>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenRequestType {
    Basic,
    Form,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
    pub webhook_id: Option<String>,
    pub app_id: Option<String>,
}

/// The app a webhook belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppOf<'a> {
    /// A live app by its id (`appId`), managed here or not.
    Id(&'a str),
    /// A ConversationApp object (`appRef`), always in the webhook's own namespace: no reference
    /// crosses namespaces.
    Object { namespace: &'a str, name: &'a str },
}

impl Webhook {
    /// The one place that says which app a webhook belongs to; every layer asks it.
    pub fn app_of(&self) -> AppOf<'_> {
        match &self.spec.app {
            WebhookApp::AppId(id) => AppOf::Id(id),
            WebhookApp::AppRef(r) => AppOf::Object {
                namespace: self.metadata.namespace.as_deref().unwrap_or(super::DEFAULT_NAMESPACE),
                name: &r.name,
            },
        }
    }

    /// Whether its `appRef` names `app`.
    pub fn refers_to(&self, app: &super::ConversationApp) -> bool {
        self.app_of() == AppOf::object(app)
    }
}

impl<'a> AppOf<'a> {
    /// `app`, as a webhook's `appRef` names it.
    pub fn object(app: &'a super::ConversationApp) -> AppOf<'a> {
        AppOf::Object {
            namespace: app.metadata.namespace.as_deref().unwrap_or(super::DEFAULT_NAMESPACE),
            name: app.metadata.name.as_deref().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_webhook_belongs_to_the_app_of_its_own_namespace_only() {
        let hook: Webhook = object(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
            "metadata": {"name": "in", "namespace": "shop"},
            "spec": {"appRef": {"name": "web"}, "target": "https://example.com/in"}
        }));
        assert_eq!(
            hook.app_of(),
            AppOf::Object {
                namespace: "shop",
                name: "web"
            }
        );
        let app = |ns: Option<&str>| -> super::super::ConversationApp {
            object(serde_json::json!({
                "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"displayName": "Web"}
            }))
        };
        assert!(hook.refers_to(&app(Some("shop"))));
        assert!(!hook.refers_to(&app(Some("other"))), "no reference crosses namespaces");
        assert!(!hook.refers_to(&app(None)), "no namespace is `default`");
        let raw: Webhook = object(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
            "metadata": {"name": "raw"},
            "spec": {"appId": "01APP", "target": "https://example.com/in"}
        }));
        assert_eq!(raw.app_of(), AppOf::Id("01APP"));
        assert!(!raw.refers_to(&app(None)));
    }
}
