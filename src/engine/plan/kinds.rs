//! The planners of apps, templates (rule 4) and project settings (rule 5), each from its
//! already-matched object; webhooks, with the limits of rule 3, are in `webhooks.rs`.

use super::builder::{created_fields, to_map};
use super::saved::observed;
use super::{Action, AppSlot, Builder};
use crate::engine::diff::{FieldChange, SecretPointers};
use crate::engine::{Target, desired, diff, identity};
use crate::model::{ConversationApp, ProjectSettings, Template as TemplateObject};
use crate::sinch::Wire;
use crate::sinch::app::App;
use crate::sinch::request::Request;
use crate::sinch::settings::{ProjectSettings as LiveSettings, ProjectSettingsRequest};
use crate::sinch::template::{LATEST, Template};

impl Builder<'_> {
    pub(super) fn app(&mut self, t: &Target, a: &ConversationApp) -> AppSlot {
        let apps = match self.read(t, "apps", self.live.apps(&t.scope)) {
            Ok(apps) => apps,
            Err(class) => return AppSlot::Failed(class),
        };
        let found = match identity::app(t.recorded.id.as_deref(), &a.spec, apps) {
            Ok(found) => found,
            Err(e) => {
                self.error(t, e.message(!self.options.tenant));
                return AppSlot::Failed(None);
            }
        };
        let desired = desired::app(&a.spec, t.object().namespace(), &self.input.secrets);
        let wanted = self.wanted(t, &desired.wire, &desired.secrets);
        let project = &t.scope.project;
        let salt = self.options.salt.clone();
        match found {
            None => {
                if self.cannot_create(t, "app", &desired) {
                    return AppSlot::Failed(None);
                }
                let mut c = self.change(t, Action::Create, None, observed::<App>(&salt, None));
                c.fields = created_fields(wanted.fields, &wanted.wire);
                c.request = Some(Request::create_app(project, &desired.wire));
                match self.push(c, &desired.secrets) {
                    Some(index) => AppSlot::Created(index),
                    None => AppSlot::Failed(None),
                }
            }
            Some(live) => {
                let id = live.id.clone().unwrap_or_default();
                let Some((mut c, update)) = self.found(t, &id, live, &wanted) else {
                    return AppSlot::Failed(None);
                };
                if c.action == Action::Update {
                    c.request = Some(Request::update_app(project, &id, &update.body, update.mask));
                }
                match self.push(c, &desired.secrets) {
                    Some(_) => AppSlot::Live(id),
                    None => AppSlot::Failed(None),
                }
            }
        }
    }

    pub(super) fn template(&mut self, t: &Target, tpl: &TemplateObject) {
        let reads = self.live.scopes.get(&t.scope).and_then(|s| s.templates.as_ref());
        let Ok(templates) = self.read(t, "templates", reads) else {
            return;
        };
        let desired = desired::template(&tpl.spec, t.object().name());
        let id = desired.id.clone().unwrap_or_default();
        let salt = self.options.salt.clone();
        match identity::template(&id, templates) {
            None => {
                let mut c = self.change(t, Action::Create, None, observed::<Template>(&salt, None));
                c.fields = created_fields(Template::FIELDS, &to_map(&desired));
                c.request = Some(Request::create_template(&t.scope.project, &desired));
                self.push(c, &[]);
            }
            Some(live) => {
                let mut c = self.change(t, Action::Noop, Some(id.clone()), observed(&salt, Some(live)));
                if let Some((fields, body)) = template_update(&desired, live) {
                    c.action = Action::Update;
                    c.fields = fields;
                    c.request = Some(Request::update_template(&t.scope.project, &id, &body));
                }
                self.push(c, &[]);
            }
        }
    }

    pub(super) fn settings(&mut self, t: &Target, s: &ProjectSettings) {
        let scope = self.live.scopes.get(&t.scope);
        let Ok(live) = self.read(t, "settings", scope.and_then(|s| s.settings.as_ref())) else {
            return;
        };
        let desired = desired::settings(&s.spec);
        let salt = self.options.salt.clone();
        if let Some(conflicts) = scope.and_then(|s| s.conflicts.as_ref()) {
            match conflicts {
                Ok(list) if list.is_empty() => {}
                Ok(list) => {
                    let first = &list[0];
                    let message = format!(
                        "contactSettings.unifiedContactIdEnabled: {} identity conflict{} in {} block enabling unified contact id (first: {} on {}, contacts {}); resolve them, then plan again",
                        match list.len() {
                            crate::sinch::client::MAX_CONFLICTS => format!("{} or more", list.len()),
                            n => n.to_string(),
                        },
                        if list.len() == 1 { "" } else { "s" },
                        t.scope,
                        first.identity,
                        first.channels.join(", "),
                        first.contact_ids.join(", ")
                    );
                    return self.error(t, message);
                }
                Err(e) => {
                    let message = format!("cannot read the identity conflicts of {}: {e}", t.scope);
                    return self.error_of(t, message, Some(e.class));
                }
            }
        }
        match live {
            None => {
                let mut c = self.change(
                    t,
                    Action::Create,
                    Some(t.scope.project.clone()),
                    observed::<LiveSettings>(&salt, None),
                );
                c.fields = created_fields(ProjectSettingsRequest::FIELDS, &to_map(&desired));
                c.request = Some(Request::create_settings(&t.scope.project, &desired));
                self.push(c, &[]);
            }
            Some(live) => {
                let current = live.settings.clone().unwrap_or_default();
                let update = diff::update(
                    ProjectSettingsRequest::FIELDS,
                    &to_map(&desired),
                    &to_map(&current),
                    &SecretPointers::default(),
                );
                let action = if update.mask.is_empty() {
                    Action::Noop
                } else {
                    Action::Update
                };
                let mut c = self.change(t, action, Some(t.scope.project.clone()), observed(&salt, Some(live)));
                if action == Action::Update {
                    c.fields = update.fields;
                    c.request = Some(Request::update_settings(&t.scope.project, &update.body));
                }
                self.push(c, &[]);
            }
        }
    }
}

/// Rule 4: a template update is a PUT of the whole template with the live version. Compared on
/// the stored translations (the `latest` copies dropped); a description the manifest leaves out
/// keeps its live value. `None` when nothing declared differs.
pub fn template_update(desired: &Template, live: &Template) -> Option<(Vec<FieldChange>, Template)> {
    let mut stored = live.clone();
    stored.translations = Some(live.stored_translations().cloned().collect());
    let update = diff::update(
        Template::FIELDS,
        &to_map(desired),
        &to_map(&stored),
        &SecretPointers::default(),
    );
    if update.mask.is_empty() {
        return None;
    }
    let mut body = desired.clone();
    body.version = live.version;
    if body.description.is_none() {
        body.description = live.description.clone();
    }
    body.translations = body.translations.map(|ts| {
        ts.into_iter()
            .filter(|t| t.version.as_deref() != Some(LATEST))
            .collect()
    });
    Some((update.fields, body))
}
