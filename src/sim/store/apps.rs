//! Apps: their operations, the channel state of each credential (PENDING until read again, then
//! ACTIVE, or FAILING for a credential marked to fail) and the defaults GET shows.

use super::fields::{apply_update, new_object, overlay, still_required};
use super::{Object, Result, SimError, Store, View, refuse};
use crate::model::Region;
use crate::sim::rules;
use serde_json::{Value, json};

/// Writable top-level fields: what a PATCH may write and a create keeps.
pub const APP_FIELDS: &[&str] = &[
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

impl Store {
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

    /// `ignored`: top-level fields whose update is accepted and not kept (the app keeps its
    /// own value, and the answer shows it).
    #[allow(clippy::too_many_arguments)]
    pub fn update_app(
        &mut self,
        region: Region,
        project: &str,
        id: &str,
        body: Object,
        mask: Option<Vec<String>>,
        ignored: &[String],
        view: View,
    ) -> Result<Value> {
        refuse(rules::update_app(&body))?;
        let apps = &mut self.project(region, project).apps;
        let stored = apps.get(id).ok_or_else(|| app_not_found(id))?;
        let mut app = stored.clone();
        apply_update(&mut app, &body, mask, APP_FIELDS)?;
        for field in ignored {
            match stored.get(field) {
                Some(kept) => app.insert(field.clone(), kept.clone()),
                None => app.remove(field),
            };
        }
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
        p.webhooks.remove_app(id);
        Ok(json!({}))
    }
}

pub(super) fn app_not_found(id: &str) -> SimError {
    SimError::not_found(format!("app {id} not found"))
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
        // "For other channels, this value will always be set to 0" ([CONV] CredentialOrdinalNumber).
        if entry.get("channel").and_then(Value::as_str) != Some("LINE") {
            entry.remove("credential_ordinal_number");
        }
        let unchanged = old.iter().filter_map(Value::as_object).find_map(|o| {
            let mut o = o.clone();
            let state = o.remove("state");
            (o == *entry).then_some(state).flatten()
        });
        let state = unchanged.unwrap_or_else(|| json!({ "status": "PENDING", "description": "" }));
        entry.insert("state".into(), state);
    }
}

/// How a test asks for a credential the channel refuses: a value of the entry's credential
/// object (a token, a secret, a claimed identity) that starts with this.
pub const FAILING_PREFIX: &str = "fail-";

/// The channel has decided on the credential by the time anyone reads the app again: ACTIVE, or
/// FAILING with a description (as Sinch's own mock answers) when a value starts with
/// [`FAILING_PREFIX`]. Either lasts until the credential changes.
fn activate(app: &mut Object) -> &Object {
    if let Some(Value::Array(entries)) = app.get_mut("channel_credentials") {
        for entry in entries {
            if entry["state"]["status"] == "PENDING" {
                entry["state"] = match refused(entry) {
                    true => json!({
                        "status": "FAILING",
                        "description": format!("the channel refused the credential (a value starts with {FAILING_PREFIX:?})"),
                    }),
                    false => json!({ "status": "ACTIVE", "description": "" }),
                };
            }
        }
    }
    app
}

/// Whether a string of the entry's credential object starts with [`FAILING_PREFIX`].
fn refused(entry: &Value) -> bool {
    fn any(v: &Value) -> bool {
        match v {
            Value::String(s) => s.starts_with(FAILING_PREFIX),
            Value::Object(map) => map.values().any(any),
            _ => false,
        }
    }
    const COMMON: &[&str] = &[
        "channel",
        "callback_secret",
        "credential_ordinal_number",
        "state",
        "channel_known_id",
    ];
    entry.as_object().is_some_and(|e| {
        e.iter()
            .any(|(k, v)| !COMMON.contains(&k.as_str()) && v.is_object() && any(v))
    })
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
