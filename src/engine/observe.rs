//! Reading live state with list calls (rule 9): per scope the apps, the templates and the
//! settings, then the webhooks of each app the input manages. A project with A apps costs A + 3
//! reads, all in flight at once within the client's rate limit and in-flight bound. A failed read
//! is kept as an error for the objects that needed it; the other objects plan on.

use super::{Scope, Target, identity};
use crate::model::{Object, WebhookApp};
use crate::sinch::app::App;
use crate::sinch::client::{Client, Credentials};
use crate::sinch::settings::{IdentityConflict, ProjectSettings};
use crate::sinch::template::Template;
use crate::sinch::webhook::Webhook;
use futures_util::future::join_all;
use std::collections::{BTreeMap, BTreeSet};

/// A read's result; the error is the client's message, for every object that depended on it.
pub type Read<T> = Result<T, String>;

#[derive(Debug, Default)]
pub struct Live {
    pub scopes: BTreeMap<Scope, ScopeLive>,
    /// (scope, app id) -> the app's webhooks.
    pub webhooks: BTreeMap<(Scope, String), Read<Vec<Webhook>>>,
}

/// What was read in one scope; `None`: not needed, not read.
#[derive(Debug, Default)]
pub struct ScopeLive {
    pub apps: Option<Read<Vec<App>>>,
    pub templates: Option<Read<Vec<Template>>>,
    pub settings: Option<Read<Option<ProjectSettings>>>,
    /// Read only when the input enables unified contact id and the live settings do not have it.
    pub conflicts: Option<Read<Vec<IdentityConflict>>>,
}

impl Live {
    pub fn apps(&self, scope: &Scope) -> Option<&Read<Vec<App>>> {
        self.scopes.get(scope).and_then(|s| s.apps.as_ref())
    }
}

#[derive(Default)]
struct Needs {
    apps: bool,
    templates: bool,
    settings: bool,
}

/// Reads what planning `targets` needs; with `prune`, also what could be deleted in their scopes.
pub async fn observe(client: &Client, credentials: &Credentials, targets: &[Target<'_>], prune: bool) -> Live {
    let mut needs: BTreeMap<Scope, Needs> = BTreeMap::new();
    for t in targets {
        let n = needs.entry(t.scope.clone()).or_default();
        match t.object() {
            Object::ConversationApp(_) | Object::Webhook(_) => n.apps = true,
            Object::Template(_) => n.templates = true,
            Object::ProjectSettings(_) => n.settings = true,
        }
        if prune {
            n.apps = true;
            n.templates = true;
        }
    }
    let project = |scope: &Scope| client.project(&scope.project, scope.region, credentials.clone());
    let reads = needs.iter().map(|(scope, n)| async move {
        let p = project(scope);
        let (apps, templates, settings) = tokio::join!(
            async {
                if n.apps {
                    Some(p.list_apps().await.map_err(|e| e.to_string()))
                } else {
                    None
                }
            },
            async {
                if n.templates {
                    Some(p.list_templates().await.map_err(|e| e.to_string()))
                } else {
                    None
                }
            },
            async {
                if n.settings {
                    Some(p.get_settings().await.map_err(|e| e.to_string()))
                } else {
                    None
                }
            },
        );
        (
            scope.clone(),
            ScopeLive {
                apps,
                templates,
                settings,
                conflicts: None,
            },
        )
    });
    let mut live = Live {
        scopes: join_all(reads).await.into_iter().collect(),
        webhooks: BTreeMap::new(),
    };

    // Second round: the webhooks of the apps the input manages, and identity conflicts where
    // the input is about to enable unified contact id.
    let mut apps: BTreeSet<(Scope, String)> = BTreeSet::new();
    let mut conflicts: BTreeSet<Scope> = BTreeSet::new();
    for t in targets {
        match t.object() {
            Object::ConversationApp(a) => {
                let declares_webhooks = targets.iter().any(|w| match w.object() {
                    Object::Webhook(w) => {
                        matches!(&w.spec.app, WebhookApp::AppRef(r) if r.name == t.object().name())
                            && w.metadata.namespace == a.metadata.namespace
                    }
                    _ => false,
                });
                if let Some(Ok(list)) = live.apps(&t.scope)
                    && let Ok(Some(app)) = identity::app(t.recorded.id.as_deref(), &a.spec, list)
                    && (declares_webhooks || prune)
                {
                    apps.insert((t.scope.clone(), app.id.clone().unwrap_or_default()));
                }
            }
            Object::Webhook(w) => {
                if let WebhookApp::AppId(id) = &w.spec.app {
                    apps.insert((t.scope.clone(), id.clone()));
                }
            }
            Object::ProjectSettings(s) => {
                let wants = s
                    .spec
                    .contact_settings
                    .as_ref()
                    .and_then(|c| c.unified_contact_id_enabled)
                    == Some(true);
                let has = match live.scopes.get(&t.scope).and_then(|l| l.settings.as_ref()) {
                    Some(Ok(Some(settings))) => unified_contact_id(settings),
                    _ => false,
                };
                if wants && !has {
                    conflicts.insert(t.scope.clone());
                }
            }
            Object::Template(_) => {}
        }
    }
    let webhook_reads = apps.into_iter().map(|(scope, app)| async move {
        let result = project(&scope).list_webhooks(&app).await.map_err(|e| e.to_string());
        ((scope, app), result)
    });
    let conflict_reads = conflicts.into_iter().map(|scope| async move {
        let result = project(&scope)
            .list_identity_conflicts()
            .await
            .map_err(|e| e.to_string());
        (scope, result)
    });
    let (webhooks, conflicts) = tokio::join!(join_all(webhook_reads), join_all(conflict_reads));
    live.webhooks = webhooks.into_iter().collect();
    for (scope, result) in conflicts {
        live.scopes.entry(scope).or_default().conflicts = Some(result);
    }
    live
}

pub fn unified_contact_id(settings: &ProjectSettings) -> bool {
    settings
        .settings
        .as_ref()
        .and_then(|s| s.contact_settings.as_ref())
        .and_then(|c| c.unified_contact_id_enabled)
        == Some(true)
}
