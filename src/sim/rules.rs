//! What the API refuses in a request body, one function per request type, each returning every
//! violation it finds (the 400 lists them all as `google.rpc.BadRequest` field violations).
//!
//! Bodies are checked against small schemas written from the fact sheet and the OpenAPI specs
//! (`required`, enums, ranges, lengths, types; unknown fields are refused at every level, as a
//! gRPC gateway does), then against the rules a schema cannot say (exactly one credential object,
//! a credential for its channel, unique ordinals, the default translation among the
//! translations). Rules that need other objects (the app of a webhook, unique targets, five
//! webhooks per app, template ids and versions) are the store's.

use serde_json::{Map, Value};
use std::fmt;

type Object = Map<String, Value>;

/// One refused field: `field` is its path in the body (`channel_credentials[0].channel`).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

const UNKNOWN: &str = "unknown field";

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description == UNKNOWN {
            true => write!(f, "{UNKNOWN} {:?}", self.field),
            false => write!(f, "{}: {}", self.field, self.description),
        }
    }
}

/// The type of a field's value.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// A string of at most this many characters.
    Len(usize),
    Bool,
    Num,
    /// An integer (or, as proto JSON allows, a string holding one) from min to max.
    Int(i64, i64),
    /// As `Int`, but 0 (what GET shows when it is not set) is accepted too.
    IntOr0(i64, i64),
    Enum(&'static [&'static str]),
    /// An object with exactly these fields.
    Obj(&'static [Field]),
    /// An object with these fields and possibly others (message bodies, kept free-form).
    Open(&'static [Field]),
    List(&'static Ty),
    /// An object whose keys are data.
    Dict(&'static Ty),
    Any,
    /// Output-only: accepted back from a client and ignored.
    Output,
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

use Ty::*;

// Apps (fact sheet §1.2, §1.3).

const CHANNELS: &[&str] = &[
    "SMS",
    "RCS",
    "WHATSAPP",
    "MMS",
    "KAKAOTALK",
    "KAKAOTALKCHAT",
    "VIBERBM",
    "LINE",
    "INSTAGRAM",
    "MESSENGER",
    "WECHAT",
    "TELEGRAM",
    "APPLEBC",
];
const RETENTION_TYPES: &[&str] = &[
    "MESSAGE_EXPIRE_POLICY",
    "CONVERSATION_EXPIRE_POLICY",
    "PERSIST_RETENTION_POLICY",
];
const TOKEN: &[Field] = &[req("token", Str)];
const LINE_ACCOUNT: &[Field] = &[req("token", Str), req("secret", Str)];
/// Each credential object, the channels it serves and its fields.
const CREDENTIALS: &[(&str, &[&str], &[Field])] = &[
    (
        "static_bearer",
        &["SMS", "RCS", "WHATSAPP", "VIBERBM"],
        &[req("claimed_identity", Str), req("token", Str)],
    ),
    ("static_token", &["MESSENGER"], TOKEN),
    (
        "mms_credentials",
        &["MMS"],
        &[
            req("account_id", Str),
            req("api_key", Str),
            opt("basic_auth", Obj(&[req("username", Str), req("password", Str)])),
            opt("default_sender", Str),
        ],
    ),
    (
        "kakaotalk_credentials",
        &["KAKAOTALK"],
        &[req("kakaotalk_plus_friend_id", Str), req("kakaotalk_sender_key", Str)],
    ),
    (
        "kakaotalkchat_credentials",
        &["KAKAOTALKCHAT"],
        &[req("kakaotalk_plus_friend_id", Str), opt("api_key", Str)],
    ),
    ("telegram_credentials", &["TELEGRAM"], TOKEN),
    (
        "line_credentials",
        &["LINE"],
        &[req("token", Str), req("secret", Str), opt("is_default", Bool)],
    ),
    (
        "line_enterprise_credentials",
        &["LINE"],
        &[
            opt("line_japan", Obj(LINE_ACCOUNT)),
            opt("line_thailand", Obj(LINE_ACCOUNT)),
            opt("is_default", Bool),
        ],
    ),
    (
        "wechat_credentials",
        &["WECHAT"],
        &[
            req("app_id", Str),
            req("app_secret", Str),
            req("token", Str),
            req("aes_key", Str),
        ],
    ),
    (
        "instagram_credentials",
        &["INSTAGRAM"],
        &[req("token", Str), opt("business_account_id", Str)],
    ),
    (
        "applebc_credentials",
        &["APPLEBC"],
        &[
            req("business_chat_account_id", Str),
            opt("merchant_id", Str),
            opt("apple_pay_certificate_reference", Str),
            opt("apple_pay_certificate_password", Str),
        ],
    ),
];
const ENTRY: &[Field] = &[
    req("channel", Enum(CHANNELS)),
    opt("callback_secret", Len(256)),
    opt("credential_ordinal_number", Int(0, 255)),
    opt("state", Output),
    opt("channel_known_id", Output),
    opt("static_bearer", Obj(CREDENTIALS[0].2)),
    opt("static_token", Obj(CREDENTIALS[1].2)),
    opt("mms_credentials", Obj(CREDENTIALS[2].2)),
    opt("kakaotalk_credentials", Obj(CREDENTIALS[3].2)),
    opt("kakaotalkchat_credentials", Obj(CREDENTIALS[4].2)),
    opt("telegram_credentials", Obj(CREDENTIALS[5].2)),
    opt("line_credentials", Obj(CREDENTIALS[6].2)),
    opt("line_enterprise_credentials", Obj(CREDENTIALS[7].2)),
    opt("wechat_credentials", Obj(CREDENTIALS[8].2)),
    opt("instagram_credentials", Obj(CREDENTIALS[9].2)),
    opt("applebc_credentials", Obj(CREDENTIALS[10].2)),
];
/// AppUpdateRequest; AppCreateRequest also requires `display_name` and `channel_credentials`.
const APP: &[Field] = &[
    opt("display_name", Str),
    opt("channel_credentials", List(&Obj(ENTRY))),
    opt("conversation_metadata_report_view", Enum(&["NONE", "FULL"])),
    opt(
        "retention_policy",
        Obj(&[
            opt("retention_type", Enum(RETENTION_TYPES)),
            opt("ttl_days", Int(1, 3650)),
        ]),
    ),
    opt(
        "dispatch_retention_policy",
        Obj(&[
            opt("retention_type", Enum(&["MESSAGE_EXPIRE_POLICY"])),
            opt("ttl_days", Int(0, 7)),
        ]),
    ),
    opt("processing_mode", Enum(&["CONVERSATION", "DISPATCH"])),
    opt("smart_conversation", Obj(&[opt("enabled", Bool)])),
    opt(
        "callback_settings",
        Obj(&[opt("secret_for_overridden_callback_urls", Str)]),
    ),
    opt("message_retry_settings", Obj(&[opt("retry_duration", Int(30, 3600))])),
    opt(
        "delivery_report_based_fallback",
        Obj(&[
            opt("enabled", Bool),
            opt("delivery_report_waiting_time", IntOr0(10, 259_200)),
        ]),
    ),
    opt("id", Output),
    opt("rate_limits", Output),
    opt("queue_stats", Output),
    opt("persist_message_status", Output),
    opt("message_search", Output),
];

// Webhooks (§2.2, §2.3).

const TRIGGERS: &[&str] = &[
    "MESSAGE_DELIVERY",
    "EVENT_DELIVERY",
    "MESSAGE_INBOUND",
    "EVENT_INBOUND",
    "CONVERSATION_START",
    "CONVERSATION_STOP",
    "CONTACT_CREATE",
    "CONTACT_DELETE",
    "CONTACT_MERGE",
    "CONTACT_UPDATE",
    "UNSUPPORTED",
    "OPT_IN",
    "OPT_OUT",
    "CAPABILITY",
    "CONVERSATION_DELETE",
    "CONTACT_IDENTITIES_DUPLICATION",
    "CHANNEL_EVENT",
    "SMART_CONVERSATION",
    "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
    "RECORD_NOTIFICATION",
    "MESSAGE_SUBMIT",
];
const MAX_TARGET_LEN: usize = 742;
/// `Webhook`: `target` is required on create and in every PATCH, `app_id` on create only.
const WEBHOOK: &[Field] = &[
    opt("app_id", Str),
    req("target", Len(MAX_TARGET_LEN)),
    opt("target_type", Enum(&["DISMISS", "HTTP"])),
    opt("secret", Str),
    opt("triggers", List(&Enum(TRIGGERS))),
    opt(
        "client_credentials",
        Obj(&[
            req("client_id", Str),
            req("client_secret", Str),
            req("endpoint", Str),
            opt("scope", Len(1024)),
            opt("response_type", Len(64)),
            opt("token_request_type", Enum(&["BASIC", "FORM"])),
        ]),
    ),
    opt("id", Output),
];

// Project settings (§3.2).

const SETTINGS: &[Field] = &[opt("contact_settings", Obj(&[opt("unified_contact_id_enabled", Bool)]))];

// Templates v2 (§4.2; the message schemas' own required fields from the TMPL spec).

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
    opt("card_message", Open(&[])),
    opt("carousel_message", Open(&[req("cards", List(&Any))])),
    opt("choice_message", Open(&[req("choices", List(&Any))])),
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
/// `v2Template` as PUT takes it (`id` and `version` required); POST requires instead
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

/// Collects violations while walking a body.
#[derive(Default)]
struct Check(Vec<Violation>);

impl Check {
    fn bad(&mut self, field: &str, description: impl fmt::Display) {
        self.0.push(Violation {
            field: field.to_string(),
            description: description.to_string(),
        });
    }

    /// `obj` against `fields`; `also` names fields required here though optional in the schema.
    fn object(&mut self, path: &str, obj: &Object, fields: &[Field], open: bool, also: &[&str]) {
        for key in obj
            .keys()
            .filter(|k| !open && !fields.iter().any(|f| f.name == k.as_str()))
        {
            self.bad(&join(path, key), UNKNOWN);
        }
        for f in fields {
            let at = join(path, f.name);
            match obj.get(f.name) {
                None | Some(Value::Null) if f.required || also.contains(&f.name) => self.bad(&at, "required"),
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() && (f.required || also.contains(&f.name)) => {
                    self.bad(&at, "required")
                }
                Some(v) => self.value(&at, v, f.ty),
            }
        }
    }

    fn value(&mut self, at: &str, v: &Value, ty: Ty) {
        match ty {
            Str if !v.is_string() => self.bad(at, format!("{v} must be a string")),
            Len(_) if !v.is_string() => self.bad(at, format!("{v} must be a string")),
            Len(n) if v.as_str().is_some_and(|s| s.chars().count() > n) => {
                self.bad(at, format!("longer than {n} characters"))
            }
            Bool if !v.is_boolean() => self.bad(at, format!("{v} must be true or false")),
            Num if !v.is_number() => self.bad(at, format!("{v} must be a number")),
            Int(min, max) | IntOr0(min, max) => match integer(v) {
                Some(0) if matches!(ty, IntOr0(..)) => {}
                Some(n) if (min..=max).contains(&n) => {}
                _ => self.bad(at, format!("{v} is out of range {min} to {max}")),
            },
            Enum(allowed) if !v.as_str().is_some_and(|s| allowed.contains(&s)) => {
                self.bad(at, format!("{v} is not one of {}", allowed.join(", ")))
            }
            Obj(fields) | Open(fields) => match v.as_object() {
                Some(o) => self.object(at, o, fields, matches!(ty, Open(_)), &[]),
                None => self.bad(at, "must be an object"),
            },
            List(item) => match v.as_array() {
                Some(items) => {
                    for (i, v) in items.iter().enumerate() {
                        self.value(&format!("{at}[{i}]"), v, *item);
                    }
                }
                None => self.bad(at, "must be a list"),
            },
            Dict(item) => match v.as_object() {
                Some(o) => o.iter().for_each(|(k, v)| self.value(&join(at, k), v, *item)),
                None => self.bad(at, "must be an object"),
            },
            _ => {}
        }
    }

    fn done(self) -> Vec<Violation> {
        self.0
    }
}

fn join(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_string(),
        false => format!("{path}.{key}"),
    }
}

fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn items<'a>(obj: &'a Object, field: &str) -> impl Iterator<Item = (usize, &'a Object)> {
    let list = obj
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().enumerate().filter_map(|(i, v)| Some((i, v.as_object()?)))
}

/// `POST /v1/projects/{project_id}/apps` (AppCreateRequest).
pub fn create_app(body: &Object) -> Vec<Violation> {
    app(body, &["display_name", "channel_credentials"])
}

/// `PATCH /v1/projects/{project_id}/apps/{app_id}` (AppUpdateRequest): every field optional.
pub fn update_app(body: &Object) -> Vec<Violation> {
    app(body, &[])
}

fn app(body: &Object, required: &[&str]) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, APP, false, required);
    if let Some(f) = body.get("delivery_report_based_fallback").and_then(Value::as_object)
        && f.get("enabled") == Some(&Value::Bool(true))
        && f.get("delivery_report_waiting_time").and_then(integer) == Some(0)
    {
        // 0 is what GET shows while the fallback is off; in use, the range holds. Leaving it
        // out is not refused: the fact sheet does not say Sinch requires it.
        check.bad(
            "delivery_report_based_fallback.delivery_report_waiting_time",
            "must be 10 to 259200 when enabled",
        );
    }
    let mut seen: Vec<(&str, i64, usize)> = Vec::new();
    for (i, entry) in items(body, "channel_credentials") {
        let path = format!("channel_credentials[{i}]");
        let present: Vec<_> = CREDENTIALS
            .iter()
            .filter(|(k, ..)| entry.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let channel = entry.get("channel").and_then(Value::as_str).unwrap_or_default();
        match present.as_slice() {
            [(kind, channels, _)] if CHANNELS.contains(&channel) && !channels.contains(&channel) => check.bad(
                &join(&path, kind),
                format!("is for {}, not {channel}", channels.join(", ")),
            ),
            [("line_enterprise_credentials", ..)] => {
                let accounts = ["line_japan", "line_thailand"]
                    .into_iter()
                    .filter(|a| !entry["line_enterprise_credentials"].get(a).is_none_or(Value::is_null))
                    .count();
                if accounts != 1 {
                    check.bad(
                        &join(&path, "line_enterprise_credentials"),
                        "exactly one of line_japan and line_thailand is required",
                    );
                }
            }
            [_] => {}
            _ => check.bad(
                &path,
                format!("exactly one credential object is required, found {}", present.len()),
            ),
        }
        let ordinal = entry.get("credential_ordinal_number").and_then(integer).unwrap_or(0);
        if channel.is_empty() {
            continue;
        }
        match seen.iter().find(|(c, o, _)| *c == channel && *o == ordinal) {
            Some((_, _, first)) => check.bad(
                &join(&path, "credential_ordinal_number"),
                format!(
                    "channel {channel} has two credentials with ordinal number {ordinal} (channel_credentials[{first}] too)"
                ),
            ),
            None => seen.push((channel, ordinal, i)),
        }
    }
    check.done()
}

/// `POST /v1/projects/{project_id}/webhooks`: `app_id` and `target` required.
pub fn create_webhook(body: &Object) -> Vec<Violation> {
    webhook(body, &["app_id"])
}

/// `PATCH /v1/projects/{project_id}/webhooks/{webhook_id}`: the schema still requires `target`.
pub fn update_webhook(body: &Object) -> Vec<Violation> {
    webhook(body, &[])
}

fn webhook(body: &Object, required: &[&str]) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, WEBHOOK, false, required);
    if let Some(target) = body.get("target").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        match url::Url::parse(target) {
            Err(e) => check.bad("target", format!("{target:?} is not a URL ({e})")),
            Ok(url) if forbidden_host(url.host_str().unwrap_or_default()) => {
                check.bad("target", "the conversation-api.*.sinch.com subdomains are forbidden")
            }
            Ok(_) => {}
        }
    }
    check.done()
}

/// `conversation-api.<anything>.sinch.com`, and any name under one.
fn forbidden_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    host.ends_with(".sinch.com") && (host.starts_with("conversation-api.") || host.contains(".conversation-api."))
}

/// `POST` and `PATCH /v1/projects/{project_id}/settings` (ProjectSettingsRequest).
pub fn settings(body: &Object) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, SETTINGS, false, &[]);
    check.done()
}

/// `POST /v2/projects/{project_id}/templates`.
pub fn create_template(body: &Object) -> Vec<Violation> {
    template(body, &[])
}

/// `PUT /v2/projects/{project_id}/templates/{template_id}`: `id` and `version` required.
pub fn replace_template(body: &Object) -> Vec<Violation> {
    template(body, &["id", "version"])
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
    use serde_json::json;

    fn fields(v: Vec<Violation>) -> Vec<String> {
        v.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn every_violation_is_reported_not_only_the_first() {
        let body = json!({
            "channel_credentials": [{"channel": "FAX", "static_bearer": {"token": 1}, "extra": true}],
            "processing_mode": "BATCH",
        });
        assert_eq!(
            fields(create_app(body.as_object().unwrap())),
            [
                "display_name",
                "channel_credentials[0].extra",
                "channel_credentials[0].channel",
                "channel_credentials[0].static_bearer.claimed_identity",
                "channel_credentials[0].static_bearer.token",
                "processing_mode",
            ]
        );
    }

    #[test]
    fn language_codes_and_forbidden_hosts() {
        for ok in ["en", "en-US", "sr-Latn", "zh-Hant-TW", "en_US", "es-419"] {
            assert!(is_language_code(ok), "{ok}");
        }
        for bad in ["", "e", "en-", "en US", "1en", "en-abcdefghi"] {
            assert!(!is_language_code(bad), "{bad}");
        }
        assert!(forbidden_host("conversation-api.eu.sinch.com"));
        assert!(forbidden_host("a.conversation-api.us.sinch.com"));
        assert!(!forbidden_host("hooks.sinch.com"));
        assert!(!forbidden_host("conversation-api.example.com"));
    }
}
