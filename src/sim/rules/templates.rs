//! What a v2 template body may hold (§4.2; the message schemas' own required fields from the TMPL
//! spec), and the rules beyond the table: a template id's shape, one message per translation,
//! BCP-47 language codes, `latest` reserved, override channels, one translation per language and
//! version, the default translation among them; the bounded lists of rich messages are in the table.

use super::Ty::*;
use super::{Check, Field, Object, Violation, items, join, opt, req};
use serde_json::{Map, Value};

const MESSAGES: &[&str] = &[
    "text_message",
    "card_message",
    "carousel_message",
    "choice_message",
    "location_message",
    "media_message",
    "template_message",
    "list_message",
    "contact_info_message",
];
/// "The number of choices is limited to 10" ([CONV] `Choices`, of card and choice messages); a
/// carousel holds "A list of up to 10 cards" and at most 3 choices of its own ([CONV]
/// `CarouselMessageField`).
const CHOICES: usize = 10;
const CARD: &[Field] = &[opt("choices", Most(CHOICES, &Any))];
const TRANSLATION: &[Field] = &[
    req("language_code", Str),
    opt("version", Str),
    opt(
        "channel_template_overrides",
        Dict(&Obj(&[
            req(
                "template_reference",
                Obj(&[
                    req("template_id", Str),
                    opt("version", Str),
                    opt("language_code", Str),
                    opt("parameters", Dict(&Str)),
                ]),
            ),
            opt("parameter_mappings", Dict(&Str)),
        ])),
    ),
    opt("variables", List(&Obj(&[opt("key", Str), opt("preview_value", Str)]))),
    opt("create_time", Output),
    opt("update_time", Output),
    opt("text_message", Obj(&[req("text", Str)])),
    opt("card_message", Open(CARD)),
    opt(
        "carousel_message",
        Open(&[req("cards", Most(10, &Open(CARD))), opt("choices", Most(3, &Any))]),
    ),
    opt("choice_message", Open(&[req("choices", Most(CHOICES, &Any))])),
    opt(
        "location_message",
        Open(&[
            req("coordinates", Obj(&[req("latitude", Num), req("longitude", Num)])),
            req("title", Str),
        ]),
    ),
    opt("media_message", Open(&[req("url", Str)])),
    opt("template_message", Open(&[])),
    opt(
        "list_message",
        Open(&[
            req("title", Str),
            req("sections", List(&Open(&[req("items", List(&Any))]))),
        ]),
    ),
    opt(
        "contact_info_message",
        Open(&[
            req("name", Open(&[req("full_name", Str)])),
            req("phone_numbers", List(&Open(&[req("phone_number", Str)]))),
        ]),
    ),
];
/// `v2Template` as PUT takes it (`version` required); POST requires instead
/// `default_translation` and `translations`, which a full replace needs too.
const TEMPLATE: &[Field] = &[
    opt("id", Str),
    opt("description", Str),
    opt("version", Int(1, i64::MAX)),
    req("default_translation", Str),
    req("translations", List(&Obj(TRANSLATION))),
    opt("create_time", Output),
    opt("update_time", Output),
];
const OVERRIDE_CHANNELS: &[&str] = &["WHATSAPP", "KAKAOTALK"];

/// `POST /v2/projects/{project_id}/templates`.
pub fn create_template(body: &Object) -> Vec<Violation> {
    template(body, &[])
}

/// `PUT /v2/projects/{project_id}/templates/{template_id}`: `version` required. The spec also
/// marks `id` required, but Sinch's own Node SDK (`templatesV2.update`, whose body type omits
/// it) and the curl of Sinch's skills (`references/templates.md`) send none: the path names it.
pub fn replace_template(body: &Object) -> Vec<Violation> {
    template(body, &["version"])
}

fn template(body: &Object, required: &[&str]) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, TEMPLATE, false, required);
    if let Some(id) = body.get("id").and_then(Value::as_str)
        && !id.is_empty()
        && !is_template_id(id)
    {
        check.bad(
            "id",
            format!("{id:?} is not a template id (1 to 256 letters, digits, '.', '_' or '-')"),
        );
    }
    if body
        .get("translations")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        check.bad("translations", "at least one translation is required");
    }
    let mut seen: Vec<(&str, &str, usize)> = Vec::new();
    for (i, t) in items(body, "translations") {
        let path = format!("translations[{i}]");
        let messages = MESSAGES
            .iter()
            .filter(|m| t.get(**m).is_some_and(|v| !v.is_null()))
            .count();
        if messages != 1 {
            check.bad(&path, format!("exactly one message is required, found {messages}"));
        }
        if let Some(code) = t.get("language_code").and_then(Value::as_str)
            && !code.is_empty()
            && !is_language_code(code)
        {
            check.bad(
                &join(&path, "language_code"),
                format!("{code:?} is not a BCP-47 language code"),
            );
        }
        if t.get("version").and_then(Value::as_str) == Some("latest") {
            check.bad(&join(&path, "version"), "\"latest\" is reserved");
        }
        let overrides = t.get("channel_template_overrides").and_then(Value::as_object);
        for channel in overrides.into_iter().flat_map(Map::keys) {
            if !OVERRIDE_CHANNELS.contains(&channel.as_str()) {
                check.bad(
                    &join(&path, "channel_template_overrides"),
                    format!("{channel} is not supported: only WHATSAPP and KAKAOTALK are"),
                );
            }
        }
        // What the translations endpoint looks one up by; an unset version is "1".
        let language = t.get("language_code").and_then(Value::as_str).unwrap_or_default();
        let version = t.get("version").and_then(Value::as_str).unwrap_or("1");
        match seen.iter().find(|(l, v, _)| (*l, *v) == (language, version)) {
            Some((_, _, first)) => check.bad(
                &path,
                format!("language {language:?} version {version:?} is already translations[{first}]"),
            ),
            None => seen.push((language, version, i)),
        }
    }
    if let Some(default) = body
        .get("default_translation")
        .filter(|d| d.as_str().is_some_and(|d| !d.is_empty()))
        && items(body, "translations").next().is_some()
        && !items(body, "translations").any(|(_, t)| t.get("language_code") == Some(default))
    {
        check.bad(
            "default_translation",
            format!("{default} is not the language of any translation"),
        );
    }
    check.done()
}

fn is_template_id(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// BCP-47 in shape: a language of 2 to 3 (or 4 to 8) letters, then subtags of 1 to 8 letters or
/// digits, joined by `-` (or `_`, which the template APIs also take).
fn is_language_code(code: &str) -> bool {
    let mut parts = code.split(['-', '_']);
    let language = parts.next().unwrap_or_default();
    (2..=8).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes() {
        for ok in ["en", "en-US", "sr-Latn", "zh-Hant-TW", "en_US", "es-419"] {
            assert!(is_language_code(ok), "{ok}");
        }
        for bad in ["", "e", "en-", "en US", "1en", "en-abcdefghi"] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }
}
