//! Templates v2: `/v2/projects/{project_id}/templates` on the template hosts.

use super::Extra;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `version` GET and LIST give the synthetic copy of each current translation.
pub const LATEST: &str = "latest";

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Template {
    pub id: Option<String>,
    pub description: Option<String>,
    /// Starts at 1; an update must carry the current one and the reply has it plus one.
    pub version: Option<i64>,
    pub default_translation: Option<String>,
    pub translations: Option<Vec<Translation>>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Template {
    /// The translations without the `latest` copies that reads add.
    pub fn stored_translations(&self) -> impl Iterator<Item = &Translation> {
        self.translations
            .iter()
            .flatten()
            .filter(|t| t.version.as_deref() != Some(LATEST))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ListTemplatesResponse {
    #[serde(default)]
    pub templates: Vec<Template>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ListTranslationsResponse {
    #[serde(default)]
    pub translations: Vec<Translation>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Translation {
    pub language_code: Option<String>,
    pub version: Option<String>,
    pub channel_template_overrides: Option<BTreeMap<String, ChannelTemplateOverride>>,
    pub variables: Option<Vec<Variable>>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
    /// The message (`text_message`, `card_message`, ...: the API's own JSON, compared and sent
    /// as it is) and any field this client does not know.
    #[serde(flatten)]
    pub message: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Variable {
    pub key: Option<String>,
    pub preview_value: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ChannelTemplateOverride {
    pub template_reference: Option<TemplateReference>,
    pub parameter_mappings: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TemplateReference {
    pub template_id: Option<String>,
    pub version: Option<String>,
    pub language_code: Option<String>,
    pub parameters: Option<BTreeMap<String, String>>,
}

impl super::Wire for Template {
    const FIELDS: &'static super::Descriptor = &super::Descriptor {
        output_only: &["id", "create_time", "update_time"],
        identity: &["id"],
        secrets: &[],
        keyed: &[super::KeyedList {
            field: "translations",
            key: translation_key,
            ordered: false,
        }],
        sets: &[],
        defaults: &[],
    };
}

/// A translation's natural key: its language and version.
fn translation_key(item: &serde_json::Value) -> String {
    let text = |k: &str| item.get(k).and_then(serde_json::Value::as_str).unwrap_or_default();
    format!("{}@{}", text("language_code"), text("version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_copies_that_reads_add_are_not_stored_translations() {
        let t: Template = serde_json::from_value(serde_json::json!({
            "id": "t", "version": 3, "default_translation": "en-US",
            "translations": [
                {"language_code": "en-US", "version": "2", "text_message": {"text": "Hi"}},
                {"language_code": "en-US", "version": "latest", "text_message": {"text": "Hi"}},
                {"language_code": "sv-SE", "version": "1", "text_message": {"text": "Hej"}}
            ]
        }))
        .unwrap();
        let stored: Vec<(&str, &str)> = t
            .stored_translations()
            .map(|tr| (tr.language_code.as_deref().unwrap(), tr.version.as_deref().unwrap()))
            .collect();
        assert_eq!(stored, [("en-US", "2"), ("sv-SE", "1")]);
    }
}
