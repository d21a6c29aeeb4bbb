//! Webhooks: their operations, the rules that need the other objects (an app in the project,
//! a target of its own, five per app) and the defaults GET shows.

use super::apps::app_not_found;
use super::fields::{apply_update, new_object, overlay, still_required};
use super::{Object, Project, Result, SimError, Store, View, field_error, refuse};
use crate::model::Region;
use crate::sim::rules;
use serde_json::{Value, json};

pub const MAX_WEBHOOKS_PER_APP: usize = 5;

/// Writable top-level fields: what a PATCH may write and a create keeps.
const WEBHOOK_FIELDS: &[&str] = &[
    "app_id",
    "target",
    "target_type",
    "secret",
    "triggers",
    "client_credentials",
];

impl Store {
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
}

fn webhook_not_found(id: &str) -> SimError {
    SimError::not_found(format!("webhook {id} not found"))
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
