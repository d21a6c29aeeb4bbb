//! `ConversationApp`: a Conversation API app with its channel credentials.

use super::{Placement, SecretKeyRef, SyncStatus};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Sinch Conversation API app. Identity: `status.appId`, else `spec.appId`, else the one live
/// app in the project and region with the same `displayName`.
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "ConversationApp",
    namespaced,
    doc = "A Sinch Conversation API app and its channels.",
    status = "ConversationAppStatus",
    shortname = "capp",
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
    printcolumn(name = "App ID", type_ = "string", json_path = ".status.appId"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct ConversationAppSpec {
    #[serde(flatten)]
    pub placement: Placement,
    /// The app's name in the Sinch dashboard; also its identity when no `appId` is known.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// Adopt this existing app instead of finding or creating one.
    #[schemars(length(min = 1, max = 64))]
    pub app_id: Option<String>,
    /// `DISPATCH` (the API's default) or `CONVERSATION`.
    pub processing_mode: Option<ProcessingMode>,
    /// `NONE` (the API's default) or `FULL`.
    pub conversation_metadata_report_view: Option<MetadataReportView>,
    pub retention_policy: Option<RetentionPolicy>,
    pub dispatch_retention_policy: Option<DispatchRetentionPolicy>,
    pub smart_conversation: Option<SmartConversation>,
    pub callback_settings: Option<CallbackSettings>,
    pub message_retry_settings: Option<MessageRetrySettings>,
    pub delivery_report_based_fallback: Option<DeliveryReportBasedFallback>,
    /// The app's channels, in priority order. When declared, this is the whole list: a channel
    /// missing here is removed from the app. One entry per channel but LINE, which may hold
    /// several (one per ordinal), exactly one of them `isDefault`.
    #[schemars(length(max = MAX_CHANNEL_CREDENTIALS), extend("x-kubernetes-validations" = [{
        "rule": "self.filter(c, has(c.lineCredentials) || has(c.lineEnterpriseCredentials)).size() <= 1 || self.filter(c, (has(c.lineCredentials) && has(c.lineCredentials.isDefault) && c.lineCredentials.isDefault) || (has(c.lineEnterpriseCredentials) && has(c.lineEnterpriseCredentials.isDefault) && c.lineEnterpriseCredentials.isDefault)).size() == 1",
        "message": "with several LINE credentials, exactly one must have isDefault: true",
    }]))]
    pub channel_credentials: Option<Vec<ChannelCredential>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessingMode {
    Conversation,
    Dispatch,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetadataReportView {
    None,
    Full,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// `MESSAGE_EXPIRE_POLICY` (the API's default), `CONVERSATION_EXPIRE_POLICY` or
    /// `PERSIST_RETENTION_POLICY`.
    pub retention_type: Option<RetentionType>,
    /// Days to keep messages (1 to 3650; the API's default 180). Ignored for `PERSIST_RETENTION_POLICY`.
    #[schemars(range(min = 1, max = 3650))]
    pub ttl_days: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetentionType {
    MessageExpirePolicy,
    ConversationExpirePolicy,
    PersistRetentionPolicy,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DispatchRetentionPolicy {
    /// Only `MESSAGE_EXPIRE_POLICY` exists for dispatch mode.
    pub retention_type: Option<DispatchRetentionType>,
    /// Days to keep dispatched messages (0 to 7; 0 means not stored).
    #[schemars(range(min = 0, max = 7))]
    pub ttl_days: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DispatchRetentionType {
    MessageExpirePolicy,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SmartConversation {
    pub enabled: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackSettings {
    /// Secret used to sign callbacks sent to per-message overridden callback URLs.
    pub secret_for_overridden_callback_urls_ref: Option<SecretKeyRef>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageRetrySettings {
    /// Seconds to retry a message before giving up (30 to 3600; the API's default 3600).
    #[schemars(range(min = 30, max = 3600))]
    pub retry_duration: Option<i32>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReportBasedFallback {
    pub enabled: Option<bool>,
    /// Seconds to wait for a delivery report before falling back (10 to 259200).
    #[schemars(range(min = 10, max = 259200))]
    pub delivery_report_waiting_time: Option<i32>,
}

/// The most entries `channelCredentials` can hold: the 12 channels other than LINE once each,
/// and LINE once per ordinal number (0 to 255). Bounding the list also lets the API server
/// afford its validation rules.
pub const MAX_CHANNEL_CREDENTIALS: usize = 12 + 256;

/// One channel of an app: the channel, its credential object (exactly one), and how callbacks
/// from it are verified.
// The rule tells LINE by its credential objects (only LINE takes them; validate checks that):
// comparing `channel`, a string of no bounded length, would cost the API server far more.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.credentialOrdinalNumber) || self.credentialOrdinalNumber == 0 || has(self.lineCredentials) || has(self.lineEnterpriseCredentials)",
    "message": "only LINE credentials take a credentialOrdinalNumber other than 0",
}]))]
pub struct ChannelCredential {
    pub channel: Channel,
    /// Distinguishes the credentials of LINE, the only channel that holds several ("Currently,
    /// this is only applicable to the LINE channel. For other channels, this value will always
    /// be set to 0"); 0 to 255, the API's default 0.
    #[schemars(range(min = 0, max = 255))]
    pub credential_ordinal_number: Option<i32>,
    /// Secret that verifies callbacks from the channel (at most 256 characters).
    pub callback_secret_ref: Option<SecretKeyRef>,
    #[serde(flatten)]
    pub credential: Credential,
}

/// The Conversation API's channels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Sms,
    Rcs,
    Whatsapp,
    Mms,
    Kakaotalk,
    Kakaotalkchat,
    Viberbm,
    Line,
    Instagram,
    Messenger,
    Wechat,
    Telegram,
    Applebc,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Rcs => "RCS",
            Channel::Whatsapp => "WHATSAPP",
            Channel::Mms => "MMS",
            Channel::Kakaotalk => "KAKAOTALK",
            Channel::Kakaotalkchat => "KAKAOTALKCHAT",
            Channel::Viberbm => "VIBERBM",
            Channel::Line => "LINE",
            Channel::Instagram => "INSTAGRAM",
            Channel::Messenger => "MESSENGER",
            Channel::Wechat => "WECHAT",
            Channel::Telegram => "TELEGRAM",
            Channel::Applebc => "APPLEBC",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credential object of a channel entry; exactly one is set (the CRD schema enforces it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Credential {
    /// SMS, RCS, WHATSAPP, VIBERBM.
    StaticBearer(StaticBearer),
    /// MESSENGER.
    StaticToken(StaticToken),
    MmsCredentials(MmsCredentials),
    KakaotalkCredentials(KakaotalkCredentials),
    KakaotalkchatCredentials(KakaotalkchatCredentials),
    TelegramCredentials(TelegramCredentials),
    LineCredentials(LineCredentials),
    LineEnterpriseCredentials(LineEnterpriseCredentials),
    WechatCredentials(WechatCredentials),
    InstagramCredentials(InstagramCredentials),
    ApplebcCredentials(ApplebcCredentials),
}

impl Credential {
    /// The camelCase field name, as a person writes it.
    pub fn field(&self) -> &'static str {
        match self {
            Credential::StaticBearer(_) => "staticBearer",
            Credential::StaticToken(_) => "staticToken",
            Credential::MmsCredentials(_) => "mmsCredentials",
            Credential::KakaotalkCredentials(_) => "kakaotalkCredentials",
            Credential::KakaotalkchatCredentials(_) => "kakaotalkchatCredentials",
            Credential::TelegramCredentials(_) => "telegramCredentials",
            Credential::LineCredentials(_) => "lineCredentials",
            Credential::LineEnterpriseCredentials(_) => "lineEnterpriseCredentials",
            Credential::WechatCredentials(_) => "wechatCredentials",
            Credential::InstagramCredentials(_) => "instagramCredentials",
            Credential::ApplebcCredentials(_) => "applebcCredentials",
        }
    }

    /// The channels this credential object serves (from the Conversation API's channel docs).
    pub fn channels(&self) -> &'static [Channel] {
        use Channel::*;
        match self {
            Credential::StaticBearer(_) => &[Sms, Rcs, Whatsapp, Viberbm],
            Credential::StaticToken(_) => &[Messenger],
            Credential::MmsCredentials(_) => &[Mms],
            Credential::KakaotalkCredentials(_) => &[Kakaotalk],
            Credential::KakaotalkchatCredentials(_) => &[Kakaotalkchat],
            Credential::TelegramCredentials(_) => &[Telegram],
            Credential::LineCredentials(_) | Credential::LineEnterpriseCredentials(_) => &[Line],
            Credential::WechatCredentials(_) => &[Wechat],
            Credential::InstagramCredentials(_) => &[Instagram],
            Credential::ApplebcCredentials(_) => &[Applebc],
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticBearer {
    /// The sender identity (e.g. the SMS service plan id or the WhatsApp sender id).
    #[schemars(length(min = 1))]
    pub claimed_identity: String,
    pub token_ref: SecretKeyRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticToken {
    pub token_ref: SecretKeyRef,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MmsCredentials {
    #[schemars(length(min = 1))]
    pub account_id: String,
    pub api_key_ref: SecretKeyRef,
    pub basic_auth: Option<MmsBasicAuth>,
    pub default_sender: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MmsBasicAuth {
    #[schemars(length(min = 1))]
    pub username: String,
    pub password_ref: SecretKeyRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KakaotalkCredentials {
    #[schemars(length(min = 1))]
    pub kakaotalk_plus_friend_id: String,
    pub kakaotalk_sender_key_ref: SecretKeyRef,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KakaotalkchatCredentials {
    #[schemars(length(min = 1))]
    pub kakaotalk_plus_friend_id: String,
    pub api_key_ref: Option<SecretKeyRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramCredentials {
    pub token_ref: SecretKeyRef,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineCredentials {
    pub token_ref: SecretKeyRef,
    pub secret_ref: SecretKeyRef,
    /// Whether this is the default LINE credential of the app (the API's default false).
    pub is_default: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineEnterpriseCredentials {
    #[serde(flatten)]
    pub account: LineEnterpriseAccount,
    pub is_default: Option<bool>,
}

/// A LINE Official Account of one market; exactly one is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LineEnterpriseAccount {
    LineJapan(LineTokenSecret),
    LineThailand(LineTokenSecret),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineTokenSecret {
    pub token_ref: SecretKeyRef,
    pub secret_ref: SecretKeyRef,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WechatCredentials {
    #[schemars(length(min = 1))]
    pub app_id: String,
    pub app_secret_ref: SecretKeyRef,
    pub token_ref: SecretKeyRef,
    pub aes_key_ref: SecretKeyRef,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstagramCredentials {
    pub token_ref: SecretKeyRef,
    pub business_account_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplebcCredentials {
    #[schemars(length(min = 1))]
    pub business_chat_account_id: String,
    pub merchant_id: Option<String>,
    pub apple_pay_certificate_reference: Option<String>,
    pub apple_pay_certificate_password_ref: Option<SecretKeyRef>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAppStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
    /// The Sinch app id this object manages.
    pub app_id: Option<String>,
    /// Each channel's integration state as the API reports it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelStatus>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel: Channel,
    pub credential_ordinal_number: Option<i32>,
    /// `PENDING`, `ACTIVE` or `FAILING`.
    pub state: String,
    pub description: Option<String>,
}
