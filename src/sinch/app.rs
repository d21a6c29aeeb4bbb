//! Apps: `/v1/projects/{project_id}/apps`.

use super::{Enabled, Extra, Sensitive};
use serde::{Deserialize, Serialize};

/// An app as created, updated (the fields present) and read. Output-only fields (`id`,
/// `rate_limits`, `queue_stats`, a channel's `state`) are never sent.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct App {
    pub id: Option<String>,
    pub display_name: Option<String>,
    /// The app's channels in priority order; a PATCH replaces the whole list.
    pub channel_credentials: Option<Vec<ChannelCredentials>>,
    /// `NONE` or `FULL`.
    pub conversation_metadata_report_view: Option<String>,
    pub retention_policy: Option<RetentionPolicy>,
    pub dispatch_retention_policy: Option<RetentionPolicy>,
    /// `CONVERSATION` or `DISPATCH`.
    pub processing_mode: Option<String>,
    pub smart_conversation: Option<Enabled>,
    pub callback_settings: Option<CallbackSettings>,
    pub message_retry_settings: Option<MessageRetrySettings>,
    pub delivery_report_based_fallback: Option<DeliveryReportBasedFallback>,
    pub rate_limits: Option<RateLimits>,
    pub queue_stats: Option<QueueStats>,
    pub persist_message_status: Option<Enabled>,
    pub message_search: Option<Enabled>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ListAppsResponse {
    #[serde(default)]
    pub apps: Vec<App>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RetentionPolicy {
    pub retention_type: Option<String>,
    pub ttl_days: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CallbackSettings {
    pub secret_for_overridden_callback_urls: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MessageRetrySettings {
    pub retry_duration: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DeliveryReportBasedFallback {
    pub enabled: Option<bool>,
    pub delivery_report_waiting_time: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RateLimits {
    pub inbound: Option<i64>,
    pub outbound: Option<i64>,
    pub webhooks: Option<i64>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub outbound_size: Option<i64>,
    pub outbound_limit: Option<i64>,
}

/// One entry of `channel_credentials`: common fields and exactly one credential object.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ChannelCredentials {
    pub channel: String,
    pub credential_ordinal_number: Option<i64>,
    pub callback_secret: Option<Sensitive>,
    /// Output only.
    pub state: Option<ChannelIntegrationState>,
    /// Output only.
    pub channel_known_id: Option<String>,
    pub static_bearer: Option<StaticBearer>,
    pub static_token: Option<Token>,
    pub mms_credentials: Option<MmsCredentials>,
    pub kakaotalk_credentials: Option<KakaotalkCredentials>,
    pub kakaotalkchat_credentials: Option<KakaotalkchatCredentials>,
    pub telegram_credentials: Option<Token>,
    pub line_credentials: Option<LineCredentials>,
    pub line_enterprise_credentials: Option<LineEnterpriseCredentials>,
    pub wechat_credentials: Option<WechatCredentials>,
    pub instagram_credentials: Option<InstagramCredentials>,
    pub applebc_credentials: Option<ApplebcCredentials>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ChannelIntegrationState {
    /// [`Self::PENDING`], [`Self::ACTIVE`] or [`Self::FAILING`] (kept as text: a state the API
    /// adds later must not break reading an app).
    pub status: Option<String>,
    pub description: Option<String>,
}

impl ChannelIntegrationState {
    /// Sinch is still checking the credential.
    pub const PENDING: &'static str = "PENDING";
    pub const ACTIVE: &'static str = "ACTIVE";
    /// The credential does not work; `description` says why.
    pub const FAILING: &'static str = "FAILING";

    pub fn is(&self, state: &str) -> bool {
        self.status.as_deref() == Some(state)
    }
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StaticBearer {
    pub claimed_identity: Option<String>,
    pub token: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `static_token` and `telegram_credentials`: a token alone.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Token {
    pub token: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MmsCredentials {
    pub account_id: Option<String>,
    pub api_key: Option<Sensitive>,
    pub basic_auth: Option<BasicAuth>,
    pub default_sender: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BasicAuth {
    pub username: Option<String>,
    pub password: Option<Sensitive>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct KakaotalkCredentials {
    pub kakaotalk_plus_friend_id: Option<String>,
    pub kakaotalk_sender_key: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct KakaotalkchatCredentials {
    pub kakaotalk_plus_friend_id: Option<String>,
    pub api_key: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LineCredentials {
    pub token: Option<Sensitive>,
    pub secret: Option<Sensitive>,
    pub is_default: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LineEnterpriseCredentials {
    pub line_japan: Option<LineCredentials>,
    pub line_thailand: Option<LineCredentials>,
    pub is_default: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WechatCredentials {
    pub app_id: Option<String>,
    pub app_secret: Option<Sensitive>,
    pub token: Option<Sensitive>,
    pub aes_key: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct InstagramCredentials {
    pub token: Option<Sensitive>,
    pub business_account_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ApplebcCredentials {
    pub business_chat_account_id: Option<String>,
    pub merchant_id: Option<String>,
    pub apple_pay_certificate_reference: Option<String>,
    pub apple_pay_certificate_password: Option<Sensitive>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl super::Wire for App {
    const FIELDS: &'static super::Descriptor = &super::Descriptor {
        output_only: &["id", "state", "channel_known_id", "rate_limits", "queue_stats"],
        identity: &["id"],
        secrets: &[
            "token",
            "secret",
            "callback_secret",
            "api_key",
            "password",
            "kakaotalk_sender_key",
            "app_secret",
            "aes_key",
            "apple_pay_certificate_password",
            "secret_for_overridden_callback_urls",
        ],
        // "The order of the credentials defines the app channel priority" (Conversation API,
        // App): matched by channel (and LINE's ordinal), and a reorder is a change.
        keyed: &[super::KeyedList {
            field: "channel_credentials",
            key: channel_key,
            ordered: true,
        }],
        sets: &[],
        // May come back `null` (the Java SDK's own fixture; the Node SDK types them `| null`):
        // a manifest declaring the defaults is then in sync, not a PATCH on every run.
        defaults: &[
            ("message_retry_settings", || serde_json::json!({"retry_duration": 3600})),
            (
                "delivery_report_based_fallback",
                || serde_json::json!({"enabled": false, "delivery_report_waiting_time": 0}),
            ),
        ],
    };
}

/// A channel credential's natural key: its channel, and its ordinal when not 0 (LINE's).
fn channel_key(item: &serde_json::Value) -> String {
    let channel = item
        .get("channel")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match item
        .get("credential_ordinal_number")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
    {
        0 => channel.to_string(),
        n => format!("{channel}#{n}"),
    }
}
