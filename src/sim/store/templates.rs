//! Templates v2: their operations, ids and versions (a replace only against the current one), and
//! the `latest` copy of each language's newest translation that reads show.

use super::{Object, Result, SimError, Store, field_error, new_id, now, refuse};
use crate::model::Region;
use crate::sim::rules;
use serde_json::{Value, json};

impl Store {
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
        // Without one, the path names the template (see `rules::replace_template`).
        if body
            .get("id")
            .is_some_and(|sent| !sent.is_null() && sent.as_str() != Some(id))
        {
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
            let message = format!(
                "template {id} is at version {current}; the update was made against version {}: read it again",
                body["version"]
            );
            return Err(match self.variants.contains(&crate::sim::Variant::StalePut400) {
                true => SimError::failed_precondition(message),
                false => SimError::aborted(message),
            });
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
}

fn template_not_found(id: &str) -> SimError {
    SimError::not_found(format!("template {id} not found"))
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
