//! Deletes: of the objects no manifest declares (`--prune`), and the delete the controller sends
//! for a deleted object.

use super::saved::observed;
use super::{Action, Builder, Change};
use crate::engine::{Scope, Target, identity};
use crate::model::{Kind, Object, WebhookApp};
use crate::sinch::request::Request;
use std::collections::BTreeSet;

impl Builder<'_> {
    /// Deletes of the templates and apps that no manifest declares, in the scopes the input
    /// touches (the undeclared webhooks of declared apps are handled with their app).
    pub(super) fn prune(&mut self, targets: &[Target]) {
        let salt = self.options.salt.clone();
        let scopes: BTreeSet<&Scope> = targets.iter().map(|t| &t.scope).collect();
        let mut deletes = Vec::new();
        for scope in scopes {
            let Some(live) = self.live.scopes.get(scope) else {
                continue;
            };
            let in_scope = || targets.iter().filter(|t| &t.scope == scope);
            if let Some(Ok(templates)) = &live.templates
                && self.prunes(scope, Kind::Template)
            {
                let declared: BTreeSet<String> = in_scope()
                    .filter_map(|t| match t.object() {
                        Object::Template(d) => Some(d.spec.id(t.object().name())),
                        _ => None,
                    })
                    .collect();
                for tpl in templates.iter() {
                    let id = tpl.id.clone().unwrap_or_default();
                    if !declared.contains(&id) {
                        let observed = observed(&salt, Some(&**tpl));
                        deletes.push((Kind::Template, id.clone(), id, scope.clone(), observed));
                    }
                }
            }
            if let Some(Ok(apps)) = &live.apps
                && self.prunes(scope, Kind::ConversationApp)
            {
                // The apps the input's apps match, and those its webhooks name by id.
                let declared: BTreeSet<&str> = in_scope()
                    .filter_map(|t| match t.object() {
                        Object::ConversationApp(a) => identity::app(t.recorded.id.as_deref(), &a.spec, apps)
                            .ok()
                            .flatten()
                            .and_then(|m| m.id.as_deref()),
                        Object::Webhook(w) => match &w.spec.app {
                            WebhookApp::AppId(id) => Some(id.as_str()),
                            WebhookApp::AppRef(_) => None,
                        },
                        _ => None,
                    })
                    .collect();
                for app in apps.iter() {
                    let id = app.id.clone().unwrap_or_default();
                    if !declared.contains(id.as_str()) {
                        let name = app.display_name.clone().unwrap_or_default();
                        let observed = observed(&salt, Some(&**app));
                        deletes.push((Kind::ConversationApp, name, id, scope.clone(), observed));
                    }
                }
            }
        }
        for (kind, name, id, scope, observed) in deletes {
            let change = pruned(kind, name, id, &scope, String::new(), observed);
            self.push(change, &[]);
        }
    }
}

/// The delete of a Sinch object (`None` for project settings, which cannot be deleted): with
/// `--prune`, of one no manifest declares; in the controller, of a deleted object's.
pub fn delete(kind: Kind, name: String, id: String, scope: &Scope, note: String) -> Option<Change> {
    let request = match kind {
        Kind::ConversationApp => Request::delete_app(&scope.project, &id),
        Kind::Webhook => Request::delete_webhook(&scope.project, &id),
        Kind::Template => Request::delete_template(&scope.project, &id),
        Kind::ProjectSettings => return None,
    };
    let mut change = Change::new(kind, name, Action::Delete, Some(id), scope, "absent".into());
    change.request = Some(request);
    change.notes.push(note);
    Some(change)
}

/// The delete of an object no manifest declares (only with `--prune`).
pub(super) fn pruned(kind: Kind, name: String, id: String, scope: &Scope, context: String, observed: String) -> Change {
    let note = format!("not declared by any manifest; deleted because of --prune{context}");
    Change {
        observed,
        ..delete(kind, name, id, scope, note).expect("apps, webhooks and templates can be deleted")
    }
}
