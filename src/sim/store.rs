//! The simulator's data and the API's rules, without HTTP: what Sinch stores per region and
//! project, what it refuses, and what it fills in. Objects are kept as the JSON the API speaks,
//! since update masks, defaults and masking are all about JSON fields.

use crate::model::Region;
use crate::sinch::settings::IdentityConflict;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub type Object = Map<String, Value>;

/// An answer the API gives instead of the object: an HTTP status and a google.rpc-style name.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl SimError {
    pub fn invalid(message: impl Into<String>) -> SimError {
        SimError {
            status: 400,
            code: "INVALID_ARGUMENT",
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> SimError {
        SimError {
            status: 404,
            code: "NOT_FOUND",
            message: message.into(),
        }
    }
    fn already_exists(message: impl Into<String>) -> SimError {
        SimError {
            status: 409,
            code: "ALREADY_EXISTS",
            message: message.into(),
        }
    }
    fn aborted(message: impl Into<String>) -> SimError {
        SimError {
            status: 409,
            code: "ABORTED",
            message: message.into(),
        }
    }
    fn failed_precondition(message: impl Into<String>) -> SimError {
        SimError {
            status: 400,
            code: "FAILED_PRECONDITION",
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, SimError>;

pub const MAX_WEBHOOKS_PER_APP: usize = 5;
const MAX_TARGET_LEN: usize = 742;
const CONFLICTS_DEFAULT_PAGE: usize = 10;
const CONFLICTS_MAX_PAGE: usize = 20;
/// What `--mask-secrets` shows instead of a secret.
pub const MASK: &str = "********";

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
    "VIBER",
];
/// Each credential object and the fields it requires.
const CREDENTIALS: &[(&str, &[&str])] = &[
    ("static_bearer", &["claimed_identity", "token"]),
    ("static_token", &["token"]),
    ("mms_credentials", &["account_id", "api_key"]),
    (
        "kakaotalk_credentials",
        &["kakaotalk_plus_friend_id", "kakaotalk_sender_key"],
    ),
    ("kakaotalkchat_credentials", &["kakaotalk_plus_friend_id"]),
    ("telegram_credentials", &["token"]),
    ("line_credentials", &["token", "secret"]),
    ("line_enterprise_credentials", &[]),
    ("wechat_credentials", &["app_id", "app_secret", "token", "aes_key"]),
    ("instagram_credentials", &["token"]),
    ("applebc_credentials", &["business_chat_account_id"]),
];
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
/// Fields the spec marks `format: password`: masked with `--mask-secrets`.
const SECRET_FIELDS: &[&str] = &[
    "token",
    "secret",
    "callback_secret",
    "password",
    "app_secret",
    "apple_pay_certificate_password",
    "secret_for_overridden_callback_urls",
    "client_secret",
];

/// Writable top-level fields, and the output-only ones a body may carry back (ignored).
const APP_FIELDS: &[&str] = &[
    "display_name",
    "channel_credentials",
    "conversation_metadata_report_view",
    "retention_policy",
    "dispatch_retention_policy",
    "processing_mode",
    "smart_conversation",
    "callback_settings",
    "message_retry_settings",
    "delivery_report_based_fallback",
];
const APP_OUTPUT: &[&str] = &[
    "id",
    "rate_limits",
    "queue_stats",
    "persist_message_status",
    "message_search",
];
const WEBHOOK_FIELDS: &[&str] = &[
    "app_id",
    "target",
    "target_type",
    "secret",
    "triggers",
    "client_credentials",
];
const WEBHOOK_OUTPUT: &[&str] = &["id"];
const TEMPLATE_FIELDS: &[&str] = &["id", "description", "version", "default_translation", "translations"];
const TEMPLATE_OUTPUT: &[&str] = &["create_time", "update_time"];

/// Everything the simulator holds; also the state file's format.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Store {
    /// region -> project id -> its objects.
    #[serde(default)]
    pub regions: BTreeMap<Region, BTreeMap<String, Project>>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct Project {
    /// By id; ULIDs sort in creation order, which is the order lists answer in.
    #[serde(default)]
    pub apps: BTreeMap<String, Object>,
    #[serde(default)]
    pub webhooks: BTreeMap<String, Object>,
    #[serde(default)]
    pub templates: BTreeMap<String, Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_conflicts: Vec<IdentityConflict>,
}

/// How an answer is shown: secrets in clear (the default) or masked.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub mask_secrets: bool,
}

impl View {
    fn show(self, mut value: Value) -> Value {
        if self.mask_secrets {
            mask(&mut value);
        }
        value
    }
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) && !s.is_empty() => *s = MASK.into(),
                    _ => mask(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Ids grow in creation order, even within one millisecond: lists sorted by id come out in the
/// order the objects were created.
fn new_id() -> String {
    static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut ids = IDS.lock().expect("never poisoned");
    ids.generate()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| ulid::Ulid::generate().to_string())
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// A request body: a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Object> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SimError::invalid("the request body must be a JSON object")),
        Err(e) => Err(SimError::invalid(format!("the request body is not valid JSON: {e}"))),
    }
}

impl Store {
    fn project(&mut self, region: Region, project: &str) -> &mut Project {
        self.regions
            .entry(region)
            .or_default()
            .entry(project.to_string())
            .or_default()
    }

    // Apps.

    pub fn list_apps(&mut self, region: Region, project: &str, view: View) -> Value {
        let p = self.project(region, project);
        let apps: Vec<Value> = p.apps.values_mut().map(|a| view.show(app_view(activate(a)))).collect();
        json!({ "apps": apps })
    }

    pub fn get_app(&mut self, region: Region, project: &str, id: &str, view: View) -> Result<Value> {
        let app = self
            .project(region, project)
            .apps
            .get_mut(id)
            .ok_or_else(|| app_not_found(id))?;
        Ok(view.show(app_view(activate(app))))
    }

    pub fn create_app(&mut self, region: Region, project: &str, body: Object, view: View) -> Result<Value> {
        let (id, mut app) = new_object(body, APP_FIELDS, APP_OUTPUT, &["display_name", "channel_credentials"])?;
        check_app(&app)?;
        track_channel_states(&mut app, None);
        let shown = view.show(app_view(&app));
        self.project(region, project).apps.insert(id, app);
        Ok(shown)
    }

    pub fn update_app(
        &mut self,
        region: Region,
        project: &str,
        id: &str,
        body: Object,
        mask: Option<Vec<String>>,
        view: View,
    ) -> Result<Value> {
        check_fields(&body, APP_FIELDS, APP_OUTPUT)?;
        let apps = &mut self.project(region, project).apps;
        let stored = apps.get(id).ok_or_else(|| app_not_found(id))?;
        let mut app = stored.clone();
        apply_update(&mut app, &body, mask, APP_FIELDS)?;
        check_app(&app)?;
        track_channel_states(&mut app, Some(stored));
        let shown = view.show(app_view(&app));
        apps.insert(id.to_string(), app);
        Ok(shown)
    }

    /// Deletes the app and its webhooks.
    pub fn delete_app(&mut self, region: Region, project: &str, id: &str) -> Result<Value> {
        let p = self.project(region, project);
        p.apps.remove(id).ok_or_else(|| app_not_found(id))?;
        p.webhooks
            .retain(|_, w| w.get("app_id").and_then(Value::as_str) != Some(id));
        Ok(json!({}))
    }

    // Webhooks.

    pub fn list_webhooks(&mut self, region: Region, project: &str, app: &str, view: View) -> Result<Value> {
        let p = self.project(region, project);
        if !p.apps.contains_key(app) {
            return Err(app_not_found(app));
        }
        let webhooks: Vec<Value> = p
            .webhooks
            .values()
            .filter(|w| w.get("app_id").and_then(Value::as_str) == Some(app))
            .map(|w| view.show(webhook_view(w)))
            .collect();
        Ok(json!({ "webhooks": webhooks }))
    }

    pub fn get_webhook(&mut self, region: Region, project: &str, id: &str, view: View) -> Result<Value> {
        let w = self
            .project(region, project)
            .webhooks
            .get(id)
            .ok_or_else(|| webhook_not_found(id))?;
        Ok(view.show(webhook_view(w)))
    }

    pub fn create_webhook(&mut self, region: Region, project: &str, body: Object, view: View) -> Result<Value> {
        let (id, webhook) = new_object(body, WEBHOOK_FIELDS, WEBHOOK_OUTPUT, &["app_id", "target"])?;
        let p = self.project(region, project);
        check_webhook(p, &id, &webhook)?;
        let shown = view.show(webhook_view(&webhook));
        p.webhooks.insert(id, webhook);
        Ok(shown)
    }

    pub fn update_webhook(
        &mut self,
        region: Region,
        project: &str,
        id: &str,
        body: Object,
        mask: Option<Vec<String>>,
        view: View,
    ) -> Result<Value> {
        check_fields(&body, WEBHOOK_FIELDS, WEBHOOK_OUTPUT)?;
        let p = self.project(region, project);
        let mut webhook = p.webhooks.get(id).ok_or_else(|| webhook_not_found(id))?.clone();
        apply_update(&mut webhook, &body, mask, WEBHOOK_FIELDS)?;
        check_webhook(p, id, &webhook)?;
        let shown = view.show(webhook_view(&webhook));
        p.webhooks.insert(id.to_string(), webhook);
        Ok(shown)
    }

    pub fn delete_webhook(&mut self, region: Region, project: &str, id: &str) -> Result<Value> {
        self.project(region, project)
            .webhooks
            .remove(id)
            .ok_or_else(|| webhook_not_found(id))?;
        Ok(json!({}))
    }

    // Templates v2.

    pub fn list_templates(&mut self, region: Region, project: &str) -> Value {
        let templates: Vec<Value> = self
            .project(region, project)
            .templates
            .values()
            .map(template_view)
            .collect();
        json!({ "templates": templates })
    }

    pub fn get_template(&mut self, region: Region, project: &str, id: &str) -> Result<Value> {
        let t = self
            .project(region, project)
            .templates
            .get(id)
            .ok_or_else(|| template_not_found(id))?;
        Ok(template_view(t))
    }

    pub fn create_template(&mut self, region: Region, project: &str, body: Object) -> Result<Value> {
        check_fields(&body, TEMPLATE_FIELDS, TEMPLATE_OUTPUT)?;
        let p = self.project(region, project);
        let id = match body.get("id") {
            None | Some(Value::Null) => new_id(),
            Some(Value::String(id)) if is_template_id(id) => id.clone(),
            Some(other) => {
                return Err(SimError::invalid(format!(
                    "id: {other} is not a template id (1 to 256 letters, digits, '.', '_' or '-')"
                )));
            }
        };
        if p.templates.contains_key(&id) {
            return Err(SimError::already_exists(format!(
                "template {id} already exists in project {project}"
            )));
        }
        let time = now();
        let mut template = Object::new();
        template.insert("id".into(), json!(id));
        template.insert("version".into(), json!(1));
        template.insert("create_time".into(), json!(time));
        template.insert("update_time".into(), json!(time));
        set_template_content(&mut template, &body, None, &time)?;
        let shown = Value::Object(template.clone());
        p.templates.insert(id, template);
        Ok(shown)
    }

    /// PUT: a full replace, accepted only against the current version.
    pub fn replace_template(&mut self, region: Region, project: &str, id: &str, body: Object) -> Result<Value> {
        check_fields(&body, TEMPLATE_FIELDS, TEMPLATE_OUTPUT)?;
        let p = self.project(region, project);
        let stored = p.templates.get(id).ok_or_else(|| template_not_found(id))?;
        if let Some(body_id) = body.get("id").filter(|v| !v.is_null())
            && body_id.as_str() != Some(id)
        {
            return Err(SimError::invalid(format!(
                "id: {body_id} differs from the template id {id:?} in the path"
            )));
        }
        let current = stored.get("version").and_then(Value::as_i64).unwrap_or(1);
        let sent = match body.get("version") {
            None | Some(Value::Null) => {
                return Err(SimError::invalid(
                    "version: required: send the current version of the template",
                ));
            }
            Some(v) => v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())),
        };
        if sent != Some(current) {
            return Err(SimError::aborted(format!(
                "template {id} is at version {current}; the update was made against version {}: read it again",
                body["version"]
            )));
        }
        let time = now();
        let mut template = stored.clone();
        template.insert("version".into(), json!(current + 1));
        template.insert("update_time".into(), json!(time));
        set_template_content(&mut template, &body, Some(stored), &time)?;
        let shown = Value::Object(template.clone());
        p.templates.insert(id.to_string(), template);
        Ok(shown)
    }

    pub fn delete_template(&mut self, region: Region, project: &str, id: &str) -> Result<Value> {
        self.project(region, project)
            .templates
            .remove(id)
            .ok_or_else(|| template_not_found(id))?;
        Ok(json!({}))
    }

    /// The stored translations, or with `translation_version=latest` the current ones.
    pub fn list_translations(
        &mut self,
        region: Region,
        project: &str,
        id: &str,
        language_code: Option<&str>,
        translation_version: Option<&str>,
    ) -> Result<Value> {
        let t = self
            .project(region, project)
            .templates
            .get(id)
            .ok_or_else(|| template_not_found(id))?;
        let stored = t
            .get("translations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let candidates = match translation_version {
            Some("latest") => latest_copies(&stored),
            _ => stored,
        };
        let translations: Vec<Value> = candidates
            .into_iter()
            .filter(|tr| language_code.is_none_or(|l| tr["language_code"] == l))
            .filter(|tr| translation_version.is_none_or(|v| v == "latest" || tr["version"] == v))
            .collect();
        Ok(json!({ "translations": translations }))
    }

    // Project settings.

    pub fn get_settings(&mut self, region: Region, project: &str) -> Result<Value> {
        let p = self.project(region, project);
        let settings = p.settings.as_ref().ok_or_else(|| settings_not_found(project))?;
        Ok(settings_view(project, settings))
    }

    pub fn create_settings(&mut self, region: Region, project: &str, body: Object) -> Result<Value> {
        check_fields(&body, &["contact_settings"], &[])?;
        let p = self.project(region, project);
        if p.settings.is_some() {
            return Err(SimError::already_exists(format!(
                "project {project} already has settings: update them with PATCH"
            )));
        }
        check_unified_contact_id(p, false, &body)?;
        p.settings = Some(body.clone());
        Ok(settings_view(project, &body))
    }

    pub fn update_settings(&mut self, region: Region, project: &str, body: Object) -> Result<Value> {
        check_fields(&body, &["contact_settings"], &[])?;
        let p = self.project(region, project);
        let stored = p.settings.as_ref().ok_or_else(|| settings_not_found(project))?;
        let was_enabled = unified_contact_id(stored);
        let mut settings = stored.clone();
        settings.extend(body);
        check_unified_contact_id(p, was_enabled, &settings)?;
        p.settings = Some(settings.clone());
        Ok(settings_view(project, &settings))
    }

    pub fn delete_settings(&mut self, region: Region, project: &str) -> Result<Value> {
        self.project(region, project)
            .settings
            .take()
            .ok_or_else(|| settings_not_found(project))?;
        Ok(json!({}))
    }

    /// A page of conflicts; the page token is the offset of the next page.
    pub fn list_identity_conflicts(
        &mut self,
        region: Region,
        project: &str,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Value> {
        let size = match page_size.filter(|s| !s.is_empty()) {
            None => CONFLICTS_DEFAULT_PAGE,
            Some(s) => match s.parse::<usize>() {
                Ok(0) => CONFLICTS_DEFAULT_PAGE,
                Ok(n) => n.min(CONFLICTS_MAX_PAGE),
                Err(_) => return Err(SimError::invalid(format!("page_size: {s:?} is not a number"))),
            },
        };
        let start = match page_token.filter(|s| !s.is_empty()) {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| SimError::invalid(format!("page_token: {t:?} is not a page token")))?,
        };
        let all = &self.project(region, project).identity_conflicts;
        let end = (start + size).min(all.len());
        let page = all.get(start..end).unwrap_or_default();
        let next = if end < all.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(json!({ "conflicts": page, "next_page_token": next }))
    }

    pub fn seed_identity_conflicts(&mut self, region: Region, project: &str, conflicts: Vec<IdentityConflict>) {
        self.project(region, project).identity_conflicts = conflicts;
    }
}

fn app_not_found(id: &str) -> SimError {
    SimError::not_found(format!("app {id} not found"))
}

fn webhook_not_found(id: &str) -> SimError {
    SimError::not_found(format!("webhook {id} not found"))
}

fn template_not_found(id: &str) -> SimError {
    SimError::not_found(format!("template {id} not found"))
}

fn settings_not_found(project: &str) -> SimError {
    SimError::not_found(format!("project {project} has no settings"))
}

/// A created object: the writable fields of `body` and a new id.
fn new_object(body: Object, writable: &[&str], output: &[&str], required: &[&str]) -> Result<(String, Object)> {
    check_fields(&body, writable, output)?;
    if let Some(missing) = required.iter().find(|r| !body.contains_key(**r)) {
        return Err(SimError::invalid(format!("{missing}: required")));
    }
    let id = new_id();
    let mut object: Object = body
        .into_iter()
        .filter(|(k, _)| writable.contains(&k.as_str()))
        .collect();
    object.insert("id".into(), json!(id));
    Ok((id, object))
}

/// Unknown top-level fields are refused (as a gRPC gateway does); output-only ones are ignored.
fn check_fields(body: &Object, writable: &[&str], output: &[&str]) -> Result<()> {
    match body
        .keys()
        .find(|k| !writable.contains(&k.as_str()) && !output.contains(&k.as_str()))
    {
        Some(k) => Err(SimError::invalid(format!("unknown field {k:?}"))),
        None => Ok(()),
    }
}

/// PATCH. With a mask only the listed fields are written, and a listed field absent from the
/// body is cleared; without one, every field in the body is written. A field written is
/// replaced whole, lists included.
fn apply_update(stored: &mut Object, body: &Object, mask: Option<Vec<String>>, writable: &[&str]) -> Result<()> {
    let Some(paths) = mask.filter(|m| !m.is_empty()) else {
        for (k, v) in body.iter().filter(|(k, _)| writable.contains(&k.as_str())) {
            stored.insert(k.clone(), v.clone());
        }
        return Ok(());
    };
    for path in paths {
        let mut parts = path.split('.');
        let top = parts.next().unwrap_or_default();
        if !writable.contains(&top) {
            return Err(SimError::invalid(format!(
                "update_mask: {path:?} is not a field that can be updated"
            )));
        }
        let rest: Vec<&str> = parts.collect();
        set_path(stored, top, &rest, lookup(body, top, &rest));
    }
    Ok(())
}

fn lookup<'a>(body: &'a Object, top: &str, rest: &[&str]) -> Option<&'a Value> {
    rest.iter().try_fold(body.get(top)?, |v, k| v.get(k))
}

fn set_path(stored: &mut Object, top: &str, rest: &[&str], value: Option<&Value>) {
    match rest.split_first() {
        None => match value {
            Some(v) => {
                stored.insert(top.to_string(), v.clone());
            }
            None => {
                stored.remove(top);
            }
        },
        Some((next, rest)) => {
            let child = stored.entry(top).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            set_path(child.as_object_mut().expect("made an object above"), next, rest, value);
        }
    }
}

fn field_error(path: &str, message: impl std::fmt::Display) -> SimError {
    SimError::invalid(format!("{path}: {message}"))
}

fn check_enum(obj: &Object, path: &str, field: &str, allowed: &[&str]) -> Result<()> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(v) => Err(field_error(
            &format!("{path}{field}"),
            format!("{v} is not one of {}", allowed.join(", ")),
        )),
    }
}

fn check_range(obj: &Object, path: &str, field: &str, min: i64, max: i64) -> Result<()> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(field_error(
                &format!("{path}{field}"),
                format!("{v} is out of range {min} to {max}"),
            )),
        },
    }
}

fn check_required_strings(obj: &Object, path: &str, fields: &[&str]) -> Result<()> {
    for field in fields {
        match obj.get(*field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(field_error(&format!("{path}{field}"), "required")),
        }
    }
    Ok(())
}

fn sub_object<'a>(obj: &'a Object, field: &str) -> Result<Option<&'a Object>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(field_error(field, "must be an object")),
    }
}

fn check_app(app: &Object) -> Result<()> {
    check_required_strings(app, "", &["display_name"])?;
    check_enum(app, "", "conversation_metadata_report_view", &["NONE", "FULL"])?;
    check_enum(app, "", "processing_mode", &["CONVERSATION", "DISPATCH"])?;
    if let Some(p) = sub_object(app, "retention_policy")? {
        let types = [
            "MESSAGE_EXPIRE_POLICY",
            "CONVERSATION_EXPIRE_POLICY",
            "PERSIST_RETENTION_POLICY",
        ];
        check_enum(p, "retention_policy.", "retention_type", &types)?;
        check_range(p, "retention_policy.", "ttl_days", 1, 3650)?;
    }
    if let Some(p) = sub_object(app, "dispatch_retention_policy")? {
        check_enum(
            p,
            "dispatch_retention_policy.",
            "retention_type",
            &["MESSAGE_EXPIRE_POLICY"],
        )?;
        check_range(p, "dispatch_retention_policy.", "ttl_days", 0, 7)?;
    }
    if let Some(s) = sub_object(app, "message_retry_settings")? {
        check_range(s, "message_retry_settings.", "retry_duration", 30, 3600)?;
    }
    if let Some(f) = sub_object(app, "delivery_report_based_fallback")?
        && f.get("enabled") == Some(&Value::Bool(true))
    {
        check_range(
            f,
            "delivery_report_based_fallback.",
            "delivery_report_waiting_time",
            10,
            259_200,
        )?;
    }
    let entries = match app.get("channel_credentials") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(field_error("channel_credentials", "must be a list")),
    };
    let mut seen = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("channel_credentials[{i}].");
        let entry = entry
            .as_object()
            .ok_or_else(|| field_error(&path, "must be an object"))?;
        check_required_strings(entry, &path, &["channel"])?;
        check_enum(entry, &path, "channel", CHANNELS)?;
        check_range(entry, &path, "credential_ordinal_number", 0, 255)?;
        if entry
            .get("callback_secret")
            .and_then(Value::as_str)
            .is_some_and(|s| s.chars().count() > 256)
        {
            return Err(field_error(
                &format!("{path}callback_secret"),
                "longer than 256 characters",
            ));
        }
        let present: Vec<&(&str, &[&str])> = CREDENTIALS
            .iter()
            .filter(|(k, _)| entry.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let [(kind, required)] = present.as_slice() else {
            return Err(field_error(
                &path,
                format!("exactly one credential object is required, found {}", present.len()),
            ));
        };
        let credential = entry[*kind]
            .as_object()
            .ok_or_else(|| field_error(&format!("{path}{kind}"), "must be an object"))?;
        check_required_strings(credential, &format!("{path}{kind}."), required)?;
        if *kind == "line_enterprise_credentials" {
            let accounts: Vec<&str> = ["line_japan", "line_thailand"]
                .into_iter()
                .filter(|a| credential.contains_key(*a))
                .collect();
            let [account] = accounts.as_slice() else {
                return Err(field_error(
                    &format!("{path}{kind}"),
                    "exactly one of line_japan and line_thailand is required",
                ));
            };
            let inner = credential[*account]
                .as_object()
                .ok_or_else(|| field_error(account, "must be an object"))?;
            check_required_strings(inner, &format!("{path}{kind}.{account}."), &["token", "secret"])?;
        }
        let key = (
            entry["channel"].clone(),
            entry
                .get("credential_ordinal_number")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        );
        if seen.contains(&key) {
            return Err(field_error(
                &format!("{path}credential_ordinal_number"),
                format!("channel {} has two credentials with ordinal number {}", key.0, key.1),
            ));
        }
        seen.push(key);
    }
    Ok(())
}

/// A channel is PENDING while the channel checks a new or changed credential; an unchanged
/// one keeps its state.
fn track_channel_states(app: &mut Object, before: Option<&Object>) {
    let old: Vec<Value> = before
        .and_then(|b| b.get("channel_credentials"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(Value::Array(entries)) = app.get_mut("channel_credentials") else {
        return;
    };
    for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
        // Output-only fields a client sent back are not part of the credential.
        entry.remove("channel_known_id");
        entry.remove("state");
        let unchanged = old.iter().filter_map(Value::as_object).find_map(|o| {
            let mut o = o.clone();
            let state = o.remove("state");
            (o == *entry).then_some(state).flatten()
        });
        let state = unchanged.unwrap_or_else(|| json!({ "status": "PENDING", "description": "" }));
        entry.insert("state".into(), state);
    }
}

/// The channel has accepted the credential by the time anyone reads the app again.
fn activate(app: &mut Object) -> &Object {
    if let Some(Value::Array(entries)) = app.get_mut("channel_credentials") {
        for entry in entries {
            if entry["state"]["status"] == "PENDING" {
                entry["state"] = json!({ "status": "ACTIVE", "description": "" });
            }
        }
    }
    app
}

/// Merges `over` into `under`, objects field by field, anything else replaced.
fn overlay(under: &mut Value, over: &Value) {
    match (under, over) {
        (Value::Object(u), Value::Object(o)) => {
            for (k, v) in o {
                match u.get_mut(k) {
                    Some(slot) if !v.is_null() => overlay(slot, v),
                    Some(_) => {}
                    None => {
                        u.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (u, o) => *u = o.clone(),
    }
}

/// An app as GET shows it: the server's defaults under what was stored.
fn app_view(app: &Object) -> Value {
    let mut view = json!({
        "conversation_metadata_report_view": "NONE",
        "retention_policy": { "retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 180 },
        "dispatch_retention_policy": { "retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 0 },
        "processing_mode": "DISPATCH",
        "smart_conversation": { "enabled": false },
        "callback_settings": { "secret_for_overridden_callback_urls": "" },
        "message_retry_settings": { "retry_duration": 3600 },
        "delivery_report_based_fallback": { "enabled": false, "delivery_report_waiting_time": 0 },
        "rate_limits": { "inbound": 25, "outbound": 25, "webhooks": 25 },
        "queue_stats": { "outbound_size": 0, "outbound_limit": 500000 },
        "persist_message_status": { "enabled": false },
        "message_search": { "enabled": false },
    });
    let mut app = Value::Object(app.clone());
    if let Some(Value::Array(entries)) = app.get_mut("channel_credentials") {
        for entry in entries.iter_mut() {
            let mut full = json!({ "callback_secret": "", "credential_ordinal_number": 0, "channel_known_id": "" });
            overlay(&mut full, entry);
            *entry = full;
        }
    }
    overlay(&mut view, &app);
    view
}

fn check_webhook(p: &Project, id: &str, webhook: &Object) -> Result<()> {
    check_required_strings(webhook, "", &["app_id", "target"])?;
    let app = webhook["app_id"].as_str().unwrap_or_default();
    if !p.apps.contains_key(app) {
        return Err(field_error(
            "app_id",
            format!("app {app} not found in this project and region"),
        ));
    }
    let target = webhook["target"].as_str().unwrap_or_default();
    if target.chars().count() > MAX_TARGET_LEN {
        return Err(field_error(
            "target",
            format!("longer than {MAX_TARGET_LEN} characters"),
        ));
    }
    let url = url::Url::parse(target).map_err(|e| field_error("target", format!("{target:?} is not a URL ({e})")))?;
    let host = url.host_str().unwrap_or_default();
    if host.starts_with("conversation-api.") && host.ends_with(".sinch.com") {
        return Err(field_error(
            "target",
            "the conversation-api.*.sinch.com subdomains are forbidden",
        ));
    }
    check_enum(webhook, "", "target_type", &["DISMISS", "HTTP"])?;
    match webhook.get("triggers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(triggers)) => {
            for (i, t) in triggers.iter().enumerate() {
                if !t.as_str().is_some_and(|t| TRIGGERS.contains(&t)) {
                    return Err(field_error(
                        &format!("triggers[{i}]"),
                        format!("{t} is not a webhook trigger"),
                    ));
                }
            }
        }
        Some(_) => return Err(field_error("triggers", "must be a list")),
    }
    if let Some(c) = sub_object(webhook, "client_credentials")? {
        check_required_strings(c, "client_credentials.", &["client_id", "client_secret", "endpoint"])?;
        check_enum(c, "client_credentials.", "token_request_type", &["BASIC", "FORM"])?;
    }
    let siblings: Vec<&Object> = p
        .webhooks
        .iter()
        .filter(|(other, w)| other.as_str() != id && w.get("app_id").and_then(Value::as_str) == Some(app))
        .map(|(_, w)| w)
        .collect();
    if siblings
        .iter()
        .any(|w| w.get("target").and_then(Value::as_str) == Some(target))
    {
        return Err(field_error(
            "target",
            format!("app {app} already has a webhook with target {target}"),
        ));
    }
    if siblings.len() >= MAX_WEBHOOKS_PER_APP {
        return Err(SimError::invalid(format!(
            "app {app} already has {} webhooks, the most an app can have",
            siblings.len()
        )));
    }
    Ok(())
}

fn webhook_view(webhook: &Object) -> Value {
    let mut view = json!({ "target_type": "DISMISS", "secret": "", "triggers": [] });
    overlay(&mut view, &Value::Object(webhook.clone()));
    if let Some(c) = view.get_mut("client_credentials").filter(|c| c.is_object()) {
        let mut full = json!({ "token_request_type": "BASIC", "scope": "", "response_type": "" });
        overlay(&mut full, c);
        *c = full;
    }
    view
}

fn is_template_id(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Writes description, default translation and translations from `body` (a full replace),
/// checking them and filling the server's defaults.
fn set_template_content(template: &mut Object, body: &Object, before: Option<&Object>, time: &str) -> Result<()> {
    match body.get("description") {
        Some(Value::String(d)) => template.insert("description".into(), json!(d)),
        None | Some(Value::Null) => template.remove("description"),
        Some(_) => return Err(field_error("description", "must be a string")),
    };
    check_required_strings(body, "", &["default_translation"])?;
    let translations = match body.get("translations") {
        Some(Value::Array(t)) if !t.is_empty() => t,
        _ => return Err(field_error("translations", "at least one translation is required")),
    };
    let old: Vec<Value> = before
        .and_then(|b| b.get("translations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut stored = Vec::new();
    for (i, t) in translations.iter().enumerate() {
        let path = format!("translations[{i}].");
        let t = t.as_object().ok_or_else(|| field_error(&path, "must be an object"))?;
        check_required_strings(t, &path, &["language_code"])?;
        let messages: Vec<&str> = MESSAGES
            .iter()
            .copied()
            .filter(|m| t.get(*m).is_some_and(|v| !v.is_null()))
            .collect();
        if messages.len() != 1 {
            return Err(field_error(
                &path,
                format!("exactly one message is required, found {}", messages.len()),
            ));
        }
        if let Some(text) = t.get("text_message")
            && !text.get("text").is_some_and(Value::is_string)
        {
            return Err(field_error(&format!("{path}text_message.text"), "required"));
        }
        let mut t = t.clone();
        let version = match t.get("version") {
            None | Some(Value::Null) => "1".to_string(),
            Some(Value::String(v)) if v == "latest" => {
                return Err(field_error(&format!("{path}version"), "\"latest\" is reserved"));
            }
            Some(Value::String(v)) => v.clone(),
            Some(v) => return Err(field_error(&format!("{path}version"), format!("{v} must be a string"))),
        };
        t.insert("version".into(), json!(version));
        t.entry("variables").or_insert_with(|| json!([]));
        t.entry("channel_template_overrides").or_insert_with(|| json!({}));
        if let Some(overrides) = t["channel_template_overrides"].as_object() {
            for (channel, o) in overrides {
                if !["WHATSAPP", "KAKAOTALK"].contains(&channel.as_str()) {
                    return Err(field_error(
                        &format!("{path}channel_template_overrides"),
                        format!("{channel} is not supported: only WHATSAPP and KAKAOTALK are"),
                    ));
                }
                if !o["template_reference"]["template_id"].is_string() {
                    return Err(field_error(
                        &format!("{path}channel_template_overrides.{channel}.template_reference.template_id"),
                        "required",
                    ));
                }
            }
        }
        // A translation unchanged since the last write keeps its times.
        let same = old.iter().find(|o| {
            let mut o = o.as_object().cloned().unwrap_or_default();
            o.remove("create_time");
            o.remove("update_time");
            let mut mine = t.clone();
            mine.remove("create_time");
            mine.remove("update_time");
            o == mine
        });
        let (created, updated) = match same {
            Some(o) => (o["create_time"].clone(), o["update_time"].clone()),
            None => (json!(time), json!(time)),
        };
        t.insert("create_time".into(), created);
        t.insert("update_time".into(), updated);
        stored.push(Value::Object(t));
    }
    let default = &body["default_translation"];
    if !stored.iter().any(|t| &t["language_code"] == default) {
        return Err(field_error(
            "default_translation",
            format!("{default} is not the language of any translation"),
        ));
    }
    template.insert("default_translation".into(), default.clone());
    template.insert("translations".into(), Value::Array(stored));
    Ok(())
}

/// Per language, a copy of its newest translation with `version: "latest"`.
fn latest_copies(translations: &[Value]) -> Vec<Value> {
    let mut newest: Vec<Value> = Vec::new();
    for t in translations {
        match newest.iter_mut().find(|n| n["language_code"] == t["language_code"]) {
            Some(n) if version_number(t) >= version_number(n) => *n = t.clone(),
            Some(_) => {}
            None => newest.push(t.clone()),
        }
    }
    for n in &mut newest {
        n["version"] = json!("latest");
    }
    newest
}

fn version_number(t: &Value) -> i64 {
    t["version"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A template as GET and LIST show it: the stored translations and a `latest` copy of each.
fn template_view(template: &Object) -> Value {
    let mut view = template.clone();
    if let Some(Value::Array(translations)) = view.get_mut("translations") {
        let copies = latest_copies(translations);
        translations.extend(copies);
    }
    Value::Object(view)
}

fn unified_contact_id(settings: &Object) -> bool {
    let enabled = settings
        .get("contact_settings")
        .and_then(|c| c.get("unified_contact_id_enabled"));
    enabled == Some(&Value::Bool(true))
}

fn check_unified_contact_id(p: &Project, was_enabled: bool, settings: &Object) -> Result<()> {
    if unified_contact_id(settings) && !was_enabled && !p.identity_conflicts.is_empty() {
        return Err(SimError::failed_precondition(format!(
            "the project has {} identity conflicts: resolve them before enabling unified contact id",
            p.identity_conflicts.len()
        )));
    }
    Ok(())
}

fn settings_view(project: &str, settings: &Object) -> Value {
    json!({ "project_id": project, "settings": settings })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_made_within_one_millisecond_still_sort_in_creation_order() {
        let ids: Vec<String> = (0..2000).map(|_| super::new_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}
