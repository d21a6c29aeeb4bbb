//! The simulator's data and the API's rules, without HTTP: what Sinch stores per region and
//! project, what it refuses (a body on its own: `rules`; against what is stored: here), and what
//! it fills in. Objects are kept as the JSON the API speaks,
//! since update masks, defaults and masking are all about JSON fields.

use super::rules::{self, Violation};
use crate::model::Region;
use crate::sinch::settings::IdentityConflict;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub type Object = Map<String, Value>;

/// An answer the API gives instead of the object: an HTTP status, a google.rpc-style name, and
/// for a refused body every field violation (sent as `google.rpc.BadRequest` details).
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub violations: Vec<Violation>,
}

impl SimError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> SimError {
        SimError {
            status,
            code,
            message: message.into(),
            violations: Vec::new(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> SimError {
        SimError::new(400, "INVALID_ARGUMENT", message)
    }
    pub fn not_found(message: impl Into<String>) -> SimError {
        SimError::new(404, "NOT_FOUND", message)
    }
    fn already_exists(message: impl Into<String>) -> SimError {
        SimError::new(409, "ALREADY_EXISTS", message)
    }
    fn aborted(message: impl Into<String>) -> SimError {
        SimError::new(409, "ABORTED", message)
    }
    fn failed_precondition(message: impl Into<String>) -> SimError {
        SimError::new(400, "FAILED_PRECONDITION", message)
    }
}

/// A 400 naming every violation, or nothing to refuse.
fn refuse(violations: Vec<Violation>) -> Result<()> {
    if violations.is_empty() {
        return Ok(());
    }
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(SimError {
        violations,
        ..SimError::invalid(message)
    })
}

type Result<T> = std::result::Result<T, SimError>;

pub const MAX_WEBHOOKS_PER_APP: usize = 5;
const CONFLICTS_DEFAULT_PAGE: usize = 10;
const CONFLICTS_MAX_PAGE: usize = 20;
/// What `--mask-secrets` shows instead of a secret.
pub const MASK: &str = "********";

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

/// Writable top-level fields: what a PATCH may write and a create keeps.
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
const WEBHOOK_FIELDS: &[&str] = &[
    "app_id",
    "target",
    "target_type",
    "secret",
    "triggers",
    "client_credentials",
];
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
        refuse(rules::create_app(&body))?;
        let (id, mut app) = new_object(body, APP_FIELDS);
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
        refuse(rules::update_app(&body))?;
        let apps = &mut self.project(region, project).apps;
        let stored = apps.get(id).ok_or_else(|| app_not_found(id))?;
        let mut app = stored.clone();
        apply_update(&mut app, &body, mask, APP_FIELDS)?;
        refuse(still_required(&app, &["display_name"]))?;
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
        refuse(rules::create_webhook(&body))?;
        let (id, webhook) = new_object(body, WEBHOOK_FIELDS);
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
        refuse(rules::update_webhook(&body))?;
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
        refuse(rules::create_template(&body))?;
        let p = self.project(region, project);
        let id = match body.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
            Some(id) => id.to_string(),
            None => new_id(),
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
        set_template_content(&mut template, &body, None, &time);
        let shown = Value::Object(template.clone());
        p.templates.insert(id, template);
        Ok(shown)
    }

    /// PUT: a full replace, accepted only against the current version.
    pub fn replace_template(&mut self, region: Region, project: &str, id: &str, body: Object) -> Result<Value> {
        refuse(rules::replace_template(&body))?;
        let p = self.project(region, project);
        let stored = p.templates.get(id).ok_or_else(|| template_not_found(id))?;
        if body["id"].as_str() != Some(id) {
            return Err(field_error(
                "id",
                format!("{} differs from the template id {id:?} in the path", body["id"]),
            ));
        }
        let current = stored.get("version").and_then(Value::as_i64).unwrap_or(1);
        let sent = body["version"]
            .as_i64()
            .or_else(|| body["version"].as_str().and_then(|s| s.parse().ok()));
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
        set_template_content(&mut template, &body, Some(stored), &time);
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
        refuse(rules::settings(&body))?;
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
        refuse(rules::settings(&body))?;
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
                Ok(n) if n <= CONFLICTS_MAX_PAGE => n,
                Ok(_) => {
                    return Err(field_error(
                        "page_size",
                        format!("{s} is more than {CONFLICTS_MAX_PAGE}"),
                    ));
                }
                Err(_) => return Err(field_error("page_size", format!("{s:?} is not a number"))),
            },
        };
        let start = match page_token.filter(|s| !s.is_empty()) {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| field_error("page_token", format!("{t:?} is not a page token")))?,
        };
        let all = &self.project(region, project).identity_conflicts;
        if start > all.len() {
            return Err(field_error("page_token", format!("{start} is not a page token")));
        }
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
fn new_object(body: Object, writable: &[&str]) -> (String, Object) {
    let id = new_id();
    let mut object: Object = body
        .into_iter()
        .filter(|(k, v)| writable.contains(&k.as_str()) && !v.is_null())
        .collect();
    object.insert("id".into(), json!(id));
    (id, object)
}

/// Required top-level fields still set after a PATCH (a mask naming one absent from the body
/// clears it).
fn still_required(object: &Object, fields: &[&str]) -> Vec<Violation> {
    fields
        .iter()
        .filter(|f| object.get(**f).is_none_or(|v| v.is_null() || v == ""))
        .map(|f| Violation {
            field: f.to_string(),
            description: "required".into(),
        })
        .collect()
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

fn field_error(field: &str, description: impl std::fmt::Display) -> SimError {
    let violation = Violation {
        field: field.to_string(),
        description: description.to_string(),
    };
    refuse(vec![violation]).expect_err("one violation")
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

/// What a webhook needs beyond its own body: its required fields still set after a PATCH, an
/// app in this project and region, a target of its own among the app's webhooks, and room.
fn check_webhook(p: &Project, id: &str, webhook: &Object) -> Result<()> {
    refuse(still_required(webhook, &["app_id", "target"]))?;
    let app = webhook["app_id"].as_str().unwrap_or_default();
    if !p.apps.contains_key(app) {
        return Err(field_error(
            "app_id",
            format!("app {app} not found in this project and region"),
        ));
    }
    let target = webhook["target"].as_str().unwrap_or_default();
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

/// Writes description, default translation and translations from `body` (a full replace, checked
/// by `rules`), filling the server's defaults.
fn set_template_content(template: &mut Object, body: &Object, before: Option<&Object>, time: &str) {
    match body.get("description").filter(|d| d.is_string()) {
        Some(d) => template.insert("description".into(), d.clone()),
        None => template.remove("description"),
    };
    let old: Vec<Value> = before
        .and_then(|b| b.get("translations"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let without_times = |t: &Value| {
        let mut t = t.as_object().cloned().unwrap_or_default();
        t.remove("create_time");
        t.remove("update_time");
        t
    };
    let mut stored = Vec::new();
    for t in body["translations"].as_array().into_iter().flatten() {
        let mut t = without_times(t);
        if t.get("version").is_none_or(Value::is_null) {
            t.insert("version".into(), json!("1"));
        }
        t.entry("variables").or_insert_with(|| json!([]));
        t.entry("channel_template_overrides").or_insert_with(|| json!({}));
        // A translation unchanged since the last write keeps its times.
        let (created, updated) = match old.iter().find(|o| without_times(o) == t) {
            Some(o) => (o["create_time"].clone(), o["update_time"].clone()),
            None => (json!(time), json!(time)),
        };
        t.insert("create_time".into(), created);
        t.insert("update_time".into(), updated);
        stored.push(Value::Object(t));
    }
    template.insert("default_translation".into(), body["default_translation"].clone());
    template.insert("translations".into(), Value::Array(stored));
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
