//! Webhooks: their operations, the rules that need the other objects (an app in the project,
//! a target of its own, five per app) and the defaults GET shows.

use super::apps::app_not_found;
use super::fields::{apply_update, new_object, overlay, still_required};
use super::{Object, Project, Result, SimError, Store, View, field_error, refuse};
use crate::model::Region;
use crate::sim::rules;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

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

/// A project's webhooks by id, and each app's webhook ids beside them: an app's list and the
/// rules among its webhooks (a target of its own, five at most) read its own few, not every
/// webhook of the project (25,000 at platform scale, under the store's one lock). The state
/// file holds the map alone; the index is rebuilt when it is read.
#[derive(Default, Debug, Clone, Deserialize)]
#[serde(from = "BTreeMap<String, Object>")]
pub struct Webhooks {
    by_id: BTreeMap<String, Object>,
    by_app: BTreeMap<String, BTreeSet<String>>,
}

impl Webhooks {
    /// The app's webhooks in id order, which is creation order.
    fn of_app<'a>(&'a self, app: &str) -> impl Iterator<Item = (&'a String, &'a Object)> + 'a {
        let ids = self.by_app.get(app).into_iter().flatten();
        ids.filter_map(|id| self.by_id.get_key_value(id))
    }

    fn insert(&mut self, id: String, webhook: Object) {
        self.unindex(&id);
        if let Some(app) = app_of(&webhook) {
            self.by_app.entry(app.to_string()).or_default().insert(id.clone());
        }
        self.by_id.insert(id, webhook);
    }

    fn remove(&mut self, id: &str) -> Option<Object> {
        self.unindex(id);
        self.by_id.remove(id)
    }

    /// Removes the app's webhooks (the app is deleted).
    pub(super) fn remove_app(&mut self, app: &str) {
        for id in self.by_app.remove(app).into_iter().flatten() {
            self.by_id.remove(&id);
        }
    }

    fn unindex(&mut self, id: &str) {
        let Some(app) = self.by_id.get(id).and_then(app_of) else {
            return;
        };
        if let Some(ids) = self.by_app.get_mut(app) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_app.remove(app);
            }
        }
    }
}

fn app_of(webhook: &Object) -> Option<&str> {
    webhook.get("app_id").and_then(Value::as_str)
}

/// Read access is the map's.
impl std::ops::Deref for Webhooks {
    type Target = BTreeMap<String, Object>;
    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

/// The map as the state file holds it, indexed.
impl From<BTreeMap<String, Object>> for Webhooks {
    fn from(webhooks: BTreeMap<String, Object>) -> Webhooks {
        let mut all = Webhooks::default();
        webhooks.into_iter().for_each(|(id, w)| all.insert(id, w));
        all
    }
}

/// The index follows from the map.
impl PartialEq for Webhooks {
    fn eq(&self, other: &Webhooks) -> bool {
        self.by_id == other.by_id
    }
}

impl Serialize for Webhooks {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.by_id.serialize(serializer)
    }
}

impl Store {
    pub fn list_webhooks(&mut self, region: Region, project: &str, app: &str, view: View) -> Result<Value> {
        let p = self.project(region, project);
        if !p.apps.contains_key(app) {
            return Err(app_not_found(app));
        }
        let webhooks: Vec<Value> = p
            .webhooks
            .of_app(app)
            .map(|(_, w)| view.show(webhook_view(w)))
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
        .of_app(app)
        .filter(|(other, _)| other.as_str() != id)
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

#[cfg(test)]
mod tests {
    use super::*;

    const US: Region = Region::Us;

    fn object(value: Value) -> Object {
        value.as_object().expect("an object").clone()
    }

    fn app(store: &mut Store) -> String {
        let created = store.create_app(
            US,
            "p",
            object(json!({ "display_name": "a", "channel_credentials": [] })),
            View::default(),
        );
        created.expect("app created")["id"].as_str().expect("an id").to_string()
    }

    fn webhook(store: &mut Store, app: &str, target: &str) -> Result<String> {
        let body = object(json!({ "app_id": app, "target": target, "triggers": ["MESSAGE_INBOUND"] }));
        let created = store.create_webhook(US, "p", body, View::default())?;
        Ok(created["id"].as_str().expect("an id").to_string())
    }

    fn targets(store: &mut Store, app: &str) -> Vec<String> {
        let listed = store.list_webhooks(US, "p", app, View::default()).expect("listed");
        let webhooks = listed["webhooks"].as_array().expect("a list").iter();
        webhooks
            .map(|w| w["target"].as_str().expect("a target").to_string())
            .collect()
    }

    fn url(n: usize) -> String {
        format!("https://hooks.example.com/{n}")
    }

    #[test]
    fn a_webhook_moved_to_another_app_leaves_its_target_and_its_room_behind() {
        let mut store = Store::default();
        let (a, b) = (app(&mut store), app(&mut store));
        let ids: Vec<String> = (0..5).map(|n| webhook(&mut store, &a, &url(n)).unwrap()).collect();
        assert_eq!(webhook(&mut store, &a, &url(5)).unwrap_err().status, 400);

        let moved = object(json!({ "app_id": b, "target": url(1) }));
        store
            .update_webhook(US, "p", &ids[1], moved, None, View::default())
            .unwrap();

        assert_eq!(targets(&mut store, &a), [url(0), url(2), url(3), url(4)]);
        assert_eq!(targets(&mut store, &b), [url(1)]);
        // Its target is free on `a` again, and taken on `b`.
        webhook(&mut store, &a, &url(1)).unwrap();
        let taken = webhook(&mut store, &b, &url(1)).unwrap_err();
        assert_eq!(taken.violations[0].field, "target", "{taken:?}");
    }

    #[test]
    fn deleting_an_app_or_a_webhook_removes_it_from_its_app_alone() {
        let mut store = Store::default();
        let (a, b) = (app(&mut store), app(&mut store));
        let first = webhook(&mut store, &a, &url(0)).unwrap();
        webhook(&mut store, &a, &url(1)).unwrap();
        webhook(&mut store, &b, &url(0)).unwrap();

        store.delete_webhook(US, "p", &first).unwrap();
        assert_eq!(targets(&mut store, &a), [url(1)]);
        store.delete_app(US, "p", &a).unwrap();
        assert_eq!(targets(&mut store, &b), [url(0)]);
        let left: Vec<&Object> = store.regions[&US]["p"].webhooks.values().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["app_id"], json!(b));
    }

    /// The state file holds the map; the rules and lists read the index rebuilt from it.
    #[test]
    fn a_store_read_back_from_its_state_keeps_each_apps_webhooks_and_limits() {
        let mut store = Store::default();
        let (a, b) = (app(&mut store), app(&mut store));
        (0..5).for_each(|n| drop(webhook(&mut store, &a, &url(n)).unwrap()));
        webhook(&mut store, &b, &url(0)).unwrap();

        let saved = serde_json::to_value(&store).unwrap();
        assert!(
            saved["regions"]["us"]["p"]["webhooks"]
                .as_object()
                .is_some_and(|w| w.len() == 6)
        );
        let mut read: Store = serde_json::from_value(saved).unwrap();
        assert_eq!(read, store);
        assert_eq!(targets(&mut read, &a), (0..5).map(url).collect::<Vec<_>>());
        assert_eq!(webhook(&mut read, &a, &url(5)).unwrap_err().status, 400);
        assert_eq!(
            webhook(&mut read, &b, &url(0)).unwrap_err().violations[0].field,
            "target"
        );
        webhook(&mut read, &b, &url(1)).unwrap();
    }
}
