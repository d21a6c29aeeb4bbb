//! Project settings and identity conflicts: settings are created once, then patched; unified
//! contact id cannot be turned on while the project has identity conflicts.

use super::{Object, Project, Result, SimError, Store, field_error, refuse};
use crate::model::Region;
use crate::sim::rules;
use crate::sinch::settings::IdentityConflict;
use serde_json::{Value, json};

const CONFLICTS_DEFAULT_PAGE: usize = 10;
const CONFLICTS_MAX_PAGE: usize = 20;

impl Store {
    pub fn get_settings(&mut self, region: Region, project: &str) -> Result<Value> {
        let defaults = self.variants.contains(&crate::sim::Variant::SettingsDefaults);
        let p = self.project(region, project);
        match &p.settings {
            Some(settings) => Ok(settings_view(project, settings)),
            // Shown, but not held: a PATCH still answers 404 until a POST.
            None if defaults => {
                let shown = json!({"contact_settings": {"unified_contact_id_enabled": false}});
                Ok(settings_view(project, shown.as_object().expect("an object")))
            }
            None => Err(settings_not_found(project)),
        }
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

fn settings_not_found(project: &str) -> SimError {
    SimError::not_found(format!("project {project} has no settings"))
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
