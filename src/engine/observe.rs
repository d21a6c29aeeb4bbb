//! Reading live state with list calls (rule 9): per scope the apps, the templates and the
//! settings, then the webhooks of each app the input manages. A project with A apps costs A + 3
//! reads, all in flight at once within the client's rate limit and in-flight bound. A failed read
//! is kept as an error for the objects that needed it; the other objects plan on.
//!
//! What to read is decided here, once; where a read comes from is the [`Source`]'s business:
//! the CLI asks Sinch ([`Direct`]), the controller its shared observation of each scope (rule 13).

use super::{Scope, Target, identity};
use crate::model::{AppOf, Kind, Object, WebhookApp};
use crate::sinch::app::App;
use crate::sinch::client::{Client, Credentials};
use crate::sinch::error::{Class, RequestError};
use crate::sinch::settings::{IdentityConflict, ProjectSettings};
use crate::sinch::template::Template;
use crate::sinch::webhook::Webhook;
use futures_util::future::join_all;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// A read's result, shared (not copied) by every object that needed it.
pub type Read<T> = Result<Arc<T>, ReadError>;

/// A list as read, each element shared: the controller's observation lays its own writes over
/// a list that reconciles still hold, and a copy of the list then copies pointers, not objects
/// (copying 1,000 apps per app written was most of its memory and much of its CPU).
pub type List<T> = Vec<Arc<T>>;

/// A read that failed: the request's message and its class (rule 8), so that each object that
/// needed it reports the same failure and retries only what is worth retrying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReadError {
    pub message: String,
    pub class: Class,
    /// The wait the server asked for (`Retry-After`): no read of this list is worth sending
    /// before it passed.
    pub retry_after: Option<std::time::Duration>,
}

impl From<RequestError> for ReadError {
    fn from(e: RequestError) -> ReadError {
        ReadError {
            class: e.class(),
            message: e.to_string(),
            retry_after: e.retry_after(),
        }
    }
}

/// Where live state comes from. Every read is of one scope (and, for webhooks, one app).
pub trait Source: Sync {
    fn apps(&self, scope: &Scope) -> impl Future<Output = Read<List<App>>> + Send;
    fn templates(&self, scope: &Scope) -> impl Future<Output = Read<List<Template>>> + Send;
    fn settings(&self, scope: &Scope) -> impl Future<Output = Read<Option<ProjectSettings>>> + Send;
    fn webhooks(&self, scope: &Scope, app: &str) -> impl Future<Output = Read<List<Webhook>>> + Send;
    fn identity_conflicts(&self, scope: &Scope) -> impl Future<Output = Read<Vec<IdentityConflict>>> + Send;
}

/// Sinch itself, with one access key: every call is a request.
pub struct Direct<'a> {
    pub client: &'a Client,
    pub credentials: &'a Credentials,
}

impl Direct<'_> {
    fn project(&self, scope: &Scope) -> crate::sinch::client::Project {
        self.client
            .project(&scope.project, scope.region, self.credentials.clone())
    }
}

impl Source for Direct<'_> {
    async fn apps(&self, scope: &Scope) -> Read<List<App>> {
        Ok(Arc::new(shared(self.project(scope).list_apps().await?)))
    }
    async fn templates(&self, scope: &Scope) -> Read<List<Template>> {
        Ok(Arc::new(shared(self.project(scope).list_templates().await?)))
    }
    async fn settings(&self, scope: &Scope) -> Read<Option<ProjectSettings>> {
        Ok(Arc::new(self.project(scope).get_settings().await?))
    }
    async fn webhooks(&self, scope: &Scope, app: &str) -> Read<List<Webhook>> {
        Ok(Arc::new(shared(self.project(scope).list_webhooks(app).await?)))
    }
    async fn identity_conflicts(&self, scope: &Scope) -> Read<Vec<IdentityConflict>> {
        Ok(Arc::new(self.project(scope).list_identity_conflicts().await?))
    }
}

/// A list as the client reads it, its elements made shareable.
pub fn shared<T>(list: Vec<T>) -> List<T> {
    list.into_iter().map(Arc::new).collect()
}

#[derive(Debug, Default)]
pub struct Live {
    pub scopes: BTreeMap<Scope, ScopeLive>,
    /// (scope, app id) -> the app's webhooks.
    pub webhooks: BTreeMap<(Scope, String), Read<List<Webhook>>>,
}

/// What was read in one scope; `None`: not needed, not read.
#[derive(Debug, Default)]
pub struct ScopeLive {
    pub apps: Option<Read<List<App>>>,
    pub templates: Option<Read<List<Template>>>,
    pub settings: Option<Read<Option<ProjectSettings>>>,
    /// Read only when the input enables unified contact id and the live settings do not have it.
    pub conflicts: Option<Read<Vec<IdentityConflict>>>,
}

impl Live {
    pub fn apps(&self, scope: &Scope) -> Option<&Read<List<App>>> {
        self.scopes.get(scope).and_then(|s| s.apps.as_ref())
    }

    /// The first read that failed, if any.
    pub fn failure(&self) -> Option<&ReadError> {
        let scopes = self.scopes.values().flat_map(|s| {
            [
                s.apps.as_ref().and_then(|r| r.as_ref().err()),
                s.templates.as_ref().and_then(|r| r.as_ref().err()),
                s.settings.as_ref().and_then(|r| r.as_ref().err()),
                s.conflicts.as_ref().and_then(|r| r.as_ref().err()),
            ]
        });
        scopes
            .chain(self.webhooks.values().map(|r| r.as_ref().err()))
            .flatten()
            .next()
    }
}

#[derive(Default)]
struct Needs {
    apps: bool,
    templates: bool,
    settings: bool,
}

/// Reads what planning `targets` needs; with `prune`, also the webhooks of declared apps that
/// declare none (the lists prune deletes from are the ones planning reads: it deletes only kinds
/// the input declares). Two rounds: the lists of each scope, then what depends on them (the
/// webhooks of the apps found, identity conflicts).
pub async fn observe(source: &impl Source, targets: &[Target<'_>], prune: bool) -> Live {
    let mut live = Live {
        scopes: read_scopes(source, needs(targets)).await,
        webhooks: BTreeMap::new(),
    };
    let webhook_reads = webhook_apps(targets, &live, prune)
        .into_iter()
        .map(|(scope, app)| async move {
            let result = source.webhooks(&scope, &app).await;
            ((scope, app), result)
        });
    let conflict_reads = conflict_scopes(targets, &live).into_iter().map(|scope| async move {
        let result = source.identity_conflicts(&scope).await;
        (scope, result)
    });
    let (webhooks, conflicts) = tokio::join!(join_all(webhook_reads), join_all(conflict_reads));
    live.webhooks = webhooks.into_iter().collect();
    for (scope, result) in conflicts {
        live.scopes.entry(scope).or_default().conflicts = Some(result);
    }
    live
}

/// The lists each scope's targets need.
fn needs(targets: &[Target<'_>]) -> BTreeMap<Scope, Needs> {
    let mut needs: BTreeMap<Scope, Needs> = BTreeMap::new();
    for t in targets {
        let n = needs.entry(t.scope.clone()).or_default();
        match t.object() {
            Object::ConversationApp(_) => n.apps = true,
            // Its app's webhooks only: the app is found by the app's own manifest, or named by id.
            Object::Webhook(_) => {}
            Object::Template(_) => n.templates = true,
            Object::ProjectSettings(_) => n.settings = true,
        }
    }
    needs
}

/// The first round: every scope's lists at once, each only when needed.
async fn read_scopes(source: &impl Source, needs: BTreeMap<Scope, Needs>) -> BTreeMap<Scope, ScopeLive> {
    let reads = needs.into_iter().map(|(scope, n)| async move {
        let (apps, templates, settings) = tokio::join!(
            when(n.apps, || source.apps(&scope)),
            when(n.templates, || source.templates(&scope)),
            when(n.settings, || source.settings(&scope)),
        );
        let live = ScopeLive {
            apps,
            templates,
            settings,
            conflicts: None,
        };
        (scope, live)
    });
    join_all(reads).await.into_iter().collect()
}

/// A read made only when needed.
async fn when<F: Future>(needed: bool, read: impl FnOnce() -> F) -> Option<F::Output> {
    match needed {
        true => Some(read().await),
        false => None,
    }
}

/// The apps whose webhooks planning needs: those named by id, and those the input manages that
/// have declared webhooks (with `prune`, any in a scope that declares webhooks).
fn webhook_apps(targets: &[Target<'_>], live: &Live, prune: bool) -> BTreeSet<(Scope, String)> {
    // The apps webhooks name, and the scopes that declare webhooks: once, not per app.
    let named: HashSet<AppOf<'_>> = targets
        .iter()
        .filter_map(|t| match t.object() {
            Object::Webhook(w) => Some(w.app_of()),
            _ => None,
        })
        .collect();
    let with_webhooks: HashSet<&Scope> = targets
        .iter()
        .filter(|t| t.kind() == Kind::Webhook)
        .map(|t| &t.scope)
        .collect();
    let mut apps = BTreeSet::new();
    for t in targets {
        match t.object() {
            Object::ConversationApp(a) => {
                if let Some(Ok(list)) = live.apps(&t.scope)
                    && let Ok(Some(app)) = identity::app(t.recorded.id.as_deref(), &a.spec, list)
                    && (named.contains(&AppOf::object(a)) || prune && with_webhooks.contains(&t.scope))
                {
                    apps.insert((t.scope.clone(), app.id.clone().unwrap_or_default()));
                }
            }
            Object::Webhook(w) => {
                if let WebhookApp::AppId(id) = &w.spec.app {
                    apps.insert((t.scope.clone(), id.clone()));
                }
            }
            Object::Template(_) | Object::ProjectSettings(_) => {}
        }
    }
    apps
}

/// The scopes where the input is about to enable unified contact id (rule 5): their identity
/// conflicts would make the PATCH fail.
fn conflict_scopes(targets: &[Target<'_>], live: &Live) -> BTreeSet<Scope> {
    let mut scopes = BTreeSet::new();
    for t in targets {
        let Object::ProjectSettings(s) = t.object() else {
            continue;
        };
        let wants = s
            .spec
            .contact_settings
            .as_ref()
            .and_then(|c| c.unified_contact_id_enabled)
            == Some(true);
        let has = match live.scopes.get(&t.scope).and_then(|l| l.settings.as_ref()) {
            Some(Ok(settings)) => settings.as_ref().as_ref().is_some_and(unified_contact_id),
            _ => false,
        };
        if wants && !has {
            scopes.insert(t.scope.clone());
        }
    }
    scopes
}

pub fn unified_contact_id(settings: &ProjectSettings) -> bool {
    settings
        .settings
        .as_ref()
        .and_then(|s| s.contact_settings.as_ref())
        .and_then(|c| c.unified_contact_id_enabled)
        == Some(true)
}
