//! `Template`: an omnichannel message template of the Template Management API v2.

use super::{Placement, SyncStatus};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A v2 template. Identity: its template id (`spec.templateId`, default `metadata.name`).
#[serde_with::skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "conversation.sinch.com",
    version = "v1alpha1",
    kind = "Template",
    namespaced,
    doc = "A Sinch Template Management API v2 template.",
    status = "TemplateStatus",
    shortname = "ctpl",
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
    printcolumn(name = "Template ID", type_ = "string", json_path = ".status.templateId"),
    printcolumn(name = "Version", type_ = "integer", json_path = ".status.version", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::structural)]
pub struct TemplateSpec {
    #[serde(flatten)]
    pub placement: Placement,
    /// The template id in Sinch; default `metadata.name`.
    #[schemars(length(min = 1, max = 128))]
    pub template_id: Option<String>,
    /// At most 65,536 characters (Sinch documents no limit; this is the bound of a whole message).
    #[schemars(length(max = MAX_MESSAGE_BYTES))]
    pub description: Option<String>,
    /// The language used when a requested one has no translation; must be one of `translations`.
    #[schemars(length(min = 1))]
    pub default_translation: String,
    /// The whole set of translations: one missing here is removed from the template.
    #[schemars(length(min = 1))]
    pub translations: Vec<Translation>,
}

/// One language (and version) of the template, with exactly one message.
#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Translation {
    /// BCP-47 language code, e.g. `en-US`.
    #[schemars(length(min = 1, max = 35))]
    pub language_code: String,
    /// The translation's version, a string such as `"1"`.
    #[schemars(length(min = 1, max = 32))]
    pub version: String,
    /// Variables the message uses as `${key}`.
    pub variables: Option<Vec<Variable>>,
    /// Channel-specific templates used instead of this one, keyed by channel
    /// (`WHATSAPP`, `KAKAOTALK`).
    pub channel_template_overrides: Option<BTreeMap<String, ChannelTemplateOverride>>,
    #[serde(flatten)]
    pub message: TemplateMessage,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    #[schemars(length(min = 1))]
    pub key: String,
    /// At most 65,536 characters (Sinch documents no limit; this is the bound of a whole message).
    #[schemars(length(max = MAX_MESSAGE_BYTES))]
    pub preview_value: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTemplateOverride {
    pub template_reference: TemplateReference,
    /// Channel template parameter -> this translation's variable (a key of `variables`): for
    /// WhatsApp, `"body[1]text": name` fills the first body parameter with `${name}`, as in the
    /// v2 spec's own example. Keys in WhatsApp's form: `body[N]text`, `header[N]text`,
    /// `button[I]url[N]text`, `carousel[C]body[N]text`, ...
    pub parameter_mappings: Option<BTreeMap<String, String>>,
}

impl TemplateSpec {
    /// The template's id in Sinch: `templateId`, else the object's name.
    pub fn id(&self, name: &str) -> String {
        self.template_id.clone().unwrap_or_else(|| name.to_string())
    }
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateReference {
    /// For WhatsApp, the name of the WhatsApp template.
    #[schemars(length(min = 1))]
    pub template_id: String,
    pub version: Option<String>,
    /// WhatsApp templates need the underscored form, e.g. `en_US`.
    pub language_code: Option<String>,
    /// Default values of the channel template's parameters, keyed as in `parameterMappings`.
    pub parameters: Option<BTreeMap<String, String>>,
}

/// How deep a free-form message body may nest, counting the message object as level 1. The CRD
/// cannot bound these bodies (they preserve unknown fields) and the API server accepts 10,000
/// levels, but the controller's watch parses each list page of Templates whole with serde_json,
/// which refuses anything nested over 128 deep: one deeper Template would fail every Template
/// list (security review 2026-12, finding 2). 32 is several times what the richest message
/// needs and leaves the page's own 7 levels (list, items, spec, translations...) far from 128.
pub const MAX_MESSAGE_DEPTH: usize = 32;

/// How large one message may be, as JSON. The controller holds every Template in memory, in a
/// pod limited to 256 MiB (`manifests/deployment.yaml`; review finding 9), and sends each whole
/// on every update; 64 KiB is many times a real message. Also the CRD's `maxLength`, in
/// characters, of the typed messages' strings and of a Template's other free text (its
/// description, a variable's preview value): Sinch documents no limit for any of them, and
/// none needs more than a whole message may hold.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The message of a translation; exactly one is set (the CRD schema enforces it). Text, media
/// and location are typed; the richer kinds are kept as the API's own JSON (snake_case keys),
/// passed through unchanged, bounded by [`MAX_MESSAGE_DEPTH`] and [`MAX_MESSAGE_BYTES`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TemplateMessage {
    TextMessage(TextMessage),
    MediaMessage(MediaMessage),
    LocationMessage(LocationMessage),
    CardMessage(JsonObject),
    CarouselMessage(JsonObject),
    ChoiceMessage(JsonObject),
    ListMessage(JsonObject),
    TemplateMessage(JsonObject),
    ContactInfoMessage(JsonObject),
}

impl TemplateMessage {
    pub fn field(&self) -> &'static str {
        match self {
            TemplateMessage::TextMessage(_) => "textMessage",
            TemplateMessage::MediaMessage(_) => "mediaMessage",
            TemplateMessage::LocationMessage(_) => "locationMessage",
            TemplateMessage::CardMessage(_) => "cardMessage",
            TemplateMessage::CarouselMessage(_) => "carouselMessage",
            TemplateMessage::ChoiceMessage(_) => "choiceMessage",
            TemplateMessage::ListMessage(_) => "listMessage",
            TemplateMessage::TemplateMessage(_) => "templateMessage",
            TemplateMessage::ContactInfoMessage(_) => "contactInfoMessage",
        }
    }

    /// The body of a free-form message (the API's own JSON); `None` for the typed kinds.
    pub fn free_form(&self) -> Option<&JsonObject> {
        match self {
            TemplateMessage::TextMessage(_)
            | TemplateMessage::MediaMessage(_)
            | TemplateMessage::LocationMessage(_) => None,
            TemplateMessage::CardMessage(body)
            | TemplateMessage::CarouselMessage(body)
            | TemplateMessage::ChoiceMessage(body)
            | TemplateMessage::ListMessage(body)
            | TemplateMessage::TemplateMessage(body)
            | TemplateMessage::ContactInfoMessage(body) => Some(body),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct TextMessage {
    /// At most 65,536 characters (Sinch documents no limit; this is the bound of a whole message).
    #[schemars(length(min = 1, max = MAX_MESSAGE_BYTES))]
    pub text: String,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaMessage {
    #[schemars(length(min = 1, max = MAX_MESSAGE_BYTES))]
    pub url: String,
    #[schemars(length(max = MAX_MESSAGE_BYTES))]
    pub thumbnail_url: Option<String>,
    #[schemars(length(max = MAX_MESSAGE_BYTES))]
    pub filename_override: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LocationMessage {
    pub coordinates: Coordinates,
    #[schemars(length(min = 1, max = MAX_MESSAGE_BYTES))]
    pub title: String,
    #[schemars(length(max = MAX_MESSAGE_BYTES))]
    pub label: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Coordinates {
    #[schemars(range(min = -90.0, max = 90.0))]
    pub latitude: f64,
    #[schemars(range(min = -180.0, max = 180.0))]
    pub longitude: f64,
}

/// A JSON object kept as written: the API's own message JSON.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for JsonObject {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonObject".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    #[serde(flatten)]
    pub sync: SyncStatus,
    pub template_id: Option<String>,
    /// The template's version in Sinch, which the next update must carry.
    pub version: Option<i64>,
}
