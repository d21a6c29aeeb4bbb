//! The controllers, one per kind, and the watches that feed them: what triggers a reconcile
//! (spec and finalizer changes; for a webhook, its app's readiness) and what the stores keep.
//! Tenancy's stores (connections, claims, namespaces) are filled before any reconcile starts.

use super::raw::{self, Raw};
use super::status::Managed;
use super::{Context, Settings, Writers, reconcile};
use crate::model::{AppOf, ConversationApp, ProjectSettings, SinchClaim, SinchConnection, Webhook};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// The kind's objects as raw JSON, parsed one by one (see [`raw`]).
fn api<K: Managed>(kube: &kube::Client, namespace: &Option<String>) -> Api<Raw<K>> {
    match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// The four controllers, until `stopped` resolves; `kube`: the client of the watches (the
/// reconciles use the context's).
pub(super) async fn controllers<F, S>(
    settings: &Settings,
    kube: kube::Client,
    ctx: Arc<Context>,
    writers: Writers,
    stopped: S,
) where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let ns = &settings.namespace;
    let tenancy = tokio::spawn(tenancy(
        kube.clone(),
        writers.connections,
        writers.claims,
        writers.namespaces,
    ));
    tokio::select! {
        () = tenancy_known(&ctx) => {}
        () = stopped() => { tenancy.abort(); return; }
    }
    tracing::info!(
        connections = ctx.tenancy.connections.state().len(),
        claims = ctx.ledger.store.count(),
        "tenancy known"
    );
    let config = ControllerConfig::default().concurrency(settings.concurrency);
    let mut apps_writer = writers.apps;
    let ready = apps_writer.send_readiness();
    let apps = controller(&kube, ns, apps_writer, ctx.tenancy.apps.clone(), &config);
    let apps = start(apps, stopped(), ctx.clone());
    let webhooks = webhooks(&kube, ns, writers.webhooks, ready, &ctx, &config);
    let webhooks = start(webhooks, stopped(), ctx.clone());
    let templates = controller(&kube, ns, writers.templates, ctx.ledger.templates.clone(), &config);
    let templates = start(templates, stopped(), ctx.clone());
    let (settings_store, settings_writer) = reflector::store::<ProjectSettings>();
    let project_settings = controller(&kube, ns, settings_writer, settings_store, &config);
    let project_settings = start(project_settings, stopped(), ctx);
    tokio::join!(apps, webhooks, templates, project_settings);
    tenancy.abort();
}

/// The watches of what tenancy is decided from, each feeding its store (forever: aborted when
/// the controllers stop).
async fn tenancy(
    kube: kube::Client,
    connections_writer: reflector::store::Writer<SinchConnection>,
    mut claims_writer: super::ledger::ClaimWriter,
    namespaces_writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
) {
    let connections = watcher(Api::<SinchConnection>::all(kube.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(connections_writer)
        .for_each(|_| async {});
    let claims = watcher(Api::<SinchClaim>::all(kube.clone()), watcher::Config::default())
        .default_backoff()
        .for_each(move |event| {
            if let Ok(event) = event {
                claims_writer.apply_watcher_event(event);
            }
            async {}
        });
    let namespaces = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(kube.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(namespaces_writer)
    .for_each(|_| async {});
    tokio::join!(connections, claims, namespaces);
}

/// Resolves once each of tenancy's stores was listed once: an empty store would read as "no
/// connection exists", the single-tenant mode, so no reconcile starts before.
async fn tenancy_known(ctx: &Context) {
    let _ = ctx.tenancy.connections.wait_until_ready().await;
    ctx.ledger.store.wait_until_listed().await;
    let _ = ctx.tenancy.namespaces.wait_until_ready().await;
}

/// One kind's controller, reconciling until `stopped` resolves (in-flight reconciles finish).
fn start<K: Managed>(
    controller: Controller<K>,
    stopped: impl Future<Output = ()> + Send + Sync + 'static,
    ctx: Arc<Context>,
) -> impl Future<Output = ()> {
    controller
        .graceful_shutdown_on(stopped)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(log)
}

/// The webhooks' controller. A webhook goes on when its app becomes Ready or gets another id
/// (`ready`: those apps, from the apps' own watch); the app's other status writes (each poll) do
/// not trigger its webhooks.
fn webhooks(
    kube: &kube::Client,
    ns: &Option<String>,
    writer: WebhookWriter,
    mut ready: mpsc::UnboundedReceiver<ConversationApp>,
    ctx: &Context,
    config: &ControllerConfig,
) -> Controller<Webhook> {
    let store = ctx.webhooks.clone();
    let ready = futures_util::stream::poll_fn(move |cx| ready.poll_recv(cx));
    let webhooks_of = ready.flat_map(move |app| futures_util::stream::iter(store.of_app(&app)));
    controller(kube, ns, writer, ctx.webhooks.store.clone(), config).reconcile_on(webhooks_of)
}

/// The controller of one kind, triggered by its own filtered watch. Secrets are not watched:
/// the operator may only `get` those its objects name, so a changed Secret is seen at the next
/// poll.
fn controller<K: Managed>(
    kube: &kube::Client,
    ns: &Option<String>,
    writer: impl Keeps<K>,
    store: Store<K>,
    config: &ControllerConfig,
) -> Controller<K> {
    Controller::for_stream(trigger(api::<K>(kube, ns), writer), store).with_config(config.clone())
}

/// What keeps a kind's store from its watch's events: kube's writer, or the webhooks' (which
/// keeps their index beside the store).
trait Keeps<K>: Send + 'static {
    fn keep(&mut self, event: &watcher::Event<K>);
}

impl<K: Managed> Keeps<K> for reflector::store::Writer<K> {
    fn keep(&mut self, event: &watcher::Event<K>) {
        self.apply_watcher_event(event);
    }
}

impl Keeps<ConversationApp> for AppWriter {
    fn keep(&mut self, event: &watcher::Event<ConversationApp>) {
        self.apply_watcher_event(event);
    }
}

impl Keeps<Webhook> for WebhookWriter {
    fn keep(&mut self, event: &watcher::Event<Webhook>) {
        self.apply_watcher_event(event);
    }
}

/// The watch of a kind that triggers its reconciles: only spec (generation) and finalizer
/// changes, so that our own status writes do not trigger another reconcile; the store still
/// sees every change (a webhook reads its app's status from it).
fn trigger<K: Managed>(
    api: Api<Raw<K>>,
    mut writer: impl Keeps<K>,
) -> impl futures_util::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    raw::watch(api, raw::config())
        .modify(slim)
        .map_ok(move |event| {
            writer.keep(&event);
            event
        })
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(reconcile_requested),
            Default::default(),
        )
}

/// What the stores need not hold: `managedFields` and kubectl's copy of the last applied
/// object are most of an object's size, and nothing here reads them (at 1,000 apps with 5
/// webhooks each they were most of the controller's memory).
fn slim<K: kube::Resource>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// A new value of the reconcile-requested annotation triggers a reconcile too.
fn reconcile_requested<K: Managed>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let requested = crate::model::reconcile_requested(obj.meta())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    requested.hash(&mut h);
    Some(h.finish())
}

/// What a webhook needs of its app: its id, where it lives, whether it is Ready.
fn app_readiness(app: &ConversationApp) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let status = app.status.as_ref();
    status.and_then(|s| s.app_id.as_deref()).hash(&mut h);
    status.and_then(|s| s.sync.project_id.as_deref()).hash(&mut h);
    status.and_then(|s| s.sync.region).map(|r| r.as_str()).hash(&mut h);
    status
        .and_then(|s| s.sync.condition(crate::model::CondType::Ready))
        .map(|c| c.status.as_str())
        .hash(&mut h);
    h.finish()
}

async fn log<K: std::fmt::Debug, E: std::fmt::Display>(result: Result<K, E>) {
    match result {
        Ok(o) => tracing::debug!(object = ?o, "reconciled"),
        Err(e) => tracing::debug!(error = %e, "reconcile failed"),
    }
}

/// Feeds the apps' store, and once the webhooks' controller asks for them
/// ([`AppWriter::send_readiness`]), tells it each app whose readiness changed: one watch serves
/// both (a second watch of the apps cost the API server an event per app write).
pub struct AppWriter {
    store: reflector::store::Writer<ConversationApp>,
    ready: Option<Readiness>,
}

/// Each app's [`app_readiness`] as last seen (during a relist, also the one that will replace
/// it), and where to send the apps whose readiness changed.
struct Readiness {
    seen: HashMap<(String, String), u64>,
    relisted: Option<HashMap<(String, String), u64>>,
    changed: mpsc::UnboundedSender<ConversationApp>,
}

pub fn app_store() -> (Store<ConversationApp>, AppWriter) {
    let (store, writer) = reflector::store();
    (
        store,
        AppWriter {
            store: writer,
            ready: None,
        },
    )
}

impl AppWriter {
    /// From now on, also sends each app whose readiness changed (or that is new) to the
    /// receiver. The channel holds one copy per change until the webhooks' controller takes it,
    /// which it does as they come.
    pub fn send_readiness(&mut self) -> mpsc::UnboundedReceiver<ConversationApp> {
        let (changed, receiver) = mpsc::unbounded_channel();
        self.ready = Some(Readiness {
            seen: HashMap::new(),
            relisted: None,
            changed,
        });
        receiver
    }

    pub fn apply_watcher_event(&mut self, event: &watcher::Event<ConversationApp>) {
        self.store.apply_watcher_event(event);
        if let Some(ready) = &mut self.ready {
            ready.apply(event);
        }
    }
}

impl Readiness {
    fn apply(&mut self, event: &watcher::Event<ConversationApp>) {
        let key = |app: &ConversationApp| (app.namespace().unwrap_or_default(), app.name_any());
        match event {
            watcher::Event::Apply(app) => {
                let now = app_readiness(app);
                if self.seen.insert(key(app), now) != Some(now) {
                    let _ = self.changed.send(app.clone());
                }
            }
            watcher::Event::Delete(app) => {
                self.seen.remove(&key(app));
            }
            watcher::Event::Init => self.relisted = Some(HashMap::new()),
            watcher::Event::InitApply(app) => {
                let (key, now) = (key(app), app_readiness(app));
                if self.seen.get(&key) != Some(&now) {
                    let _ = self.changed.send(app.clone());
                }
                self.relisted.get_or_insert_default().insert(key, now);
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.seen = relisted;
                }
            }
        }
    }
}

/// The webhooks' store, and beside it which Webhook objects declare each target in a namespace
/// (the one-claim-per-(app, target) rule asks it) and which name each app (its readiness
/// triggers them). Scanning the whole store on every webhook's reconcile instead was 42% of the
/// controller's CPU at 5,000 webhooks.
#[derive(Clone)]
pub struct WebhookStore {
    pub store: Store<Webhook>,
    index: Arc<RwLock<Index>>,
}

/// Feeds a [`WebhookStore`]: the store and the index from the same watch events.
pub struct WebhookWriter {
    store: reflector::store::Writer<Webhook>,
    index: Arc<RwLock<Index>>,
}

pub fn webhook_store() -> (WebhookStore, WebhookWriter) {
    let (store, writer) = reflector::store();
    let index = Arc::new(RwLock::new(Index::default()));
    let reader = WebhookStore {
        store,
        index: index.clone(),
    };
    (reader, WebhookWriter { store: writer, index })
}

impl WebhookStore {
    /// The Webhook objects of `namespace` that declare `target`, as the store holds them.
    pub fn declaring(&self, namespace: &str, target: &str) -> Vec<Arc<Webhook>> {
        self.filed(namespace, Key::Target(namespace, target))
            .filter(|w| w.spec.target == target)
            .collect()
    }

    /// The Webhook objects whose `appRef` names `app`.
    pub fn of_app(&self, app: &ConversationApp) -> Vec<ObjectRef<Webhook>> {
        let AppOf::Object { namespace, name } = AppOf::object(app) else {
            return Vec::new();
        };
        self.filed(namespace, Key::App(namespace, name))
            .filter(|w| w.refers_to(app))
            .map(|w| ObjectRef::from_obj(&*w))
            .collect()
    }

    /// The objects of `namespace` filed under `key`. Two keys can share a hash: the caller
    /// checks what the store's copy declares.
    fn filed(&self, namespace: &str, key: Key) -> impl Iterator<Item = Arc<Webhook>> {
        let index = self.index.read().expect("never poisoned");
        let names = index
            .live
            .objects
            .get(&index.hash.hash_one(key))
            .cloned()
            .unwrap_or_default();
        let namespace = namespace.to_string();
        let store = self.store.clone();
        names
            .into_iter()
            .filter_map(move |name| store.get(&ObjectRef::new(&name).within(&namespace)))
    }
}

impl WebhookWriter {
    pub fn apply_watcher_event(&mut self, event: &watcher::Event<Webhook>) {
        self.index.write().expect("never poisoned").apply(event);
        self.store.apply_watcher_event(event);
    }
}

/// What a Webhook object is filed under in its namespace.
#[derive(Hash)]
enum Key<'a> {
    /// (namespace, target): its target.
    Target(&'a str, &'a str),
    /// (namespace, name): the app its `appRef` names.
    App(&'a str, &'a str),
}

/// The names of the Webhook objects by the hash of each [`Key`] they are filed under, as the
/// watch last showed them; and during a relist (`Init` to `InitDone`), the index that will
/// replace it.
#[derive(Default)]
struct Index {
    hash: std::hash::RandomState,
    live: Filing,
    relisted: Option<Filing>,
}

#[derive(Default)]
struct Filing {
    objects: HashMap<u64, Vec<String>>,
    /// (namespace, name) -> the hashes its object is filed under, to move it when it changes.
    filed: HashMap<(String, String), Filed>,
}

/// The hashes of a Webhook object's [`Key`]s: its target's, and its app's when an `appRef`
/// names one.
#[derive(Clone, Copy, PartialEq)]
struct Filed {
    target: u64,
    app: Option<u64>,
}

impl Filed {
    fn keys(self) -> impl Iterator<Item = u64> {
        std::iter::once(self.target).chain(self.app)
    }
}

impl Index {
    fn apply(&mut self, event: &watcher::Event<Webhook>) {
        let hash = &self.hash;
        match event {
            watcher::Event::Apply(w) => self.live.file(hash, w),
            watcher::Event::Delete(w) => self.live.remove(&(w.namespace().unwrap_or_default(), w.name_any())),
            watcher::Event::Init => self.relisted = Some(Filing::default()),
            watcher::Event::InitApply(w) => self.relisted.get_or_insert_default().file(hash, w),
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.live = relisted;
                }
            }
        }
    }
}

impl Filing {
    fn file(&mut self, hash: &impl BuildHasher, w: &Webhook) {
        let (namespace, name) = (w.namespace().unwrap_or_default(), w.name_any());
        let keys = Filed {
            target: hash.hash_one(Key::Target(&namespace, &w.spec.target)),
            app: match w.app_of() {
                AppOf::Object { name: app, .. } => Some(hash.hash_one(Key::App(&namespace, app))),
                AppOf::Id(_) => None,
            },
        };
        let object = (namespace, name);
        if self.filed.get(&object) == Some(&keys) {
            return;
        }
        self.remove(&object);
        for key in keys.keys() {
            self.objects.entry(key).or_default().push(object.1.clone());
        }
        self.filed.insert(object, keys);
    }

    fn remove(&mut self, object: &(String, String)) {
        let Some(keys) = self.filed.remove(object) else {
            return;
        };
        for key in keys.keys() {
            if let Some(names) = self.objects.get_mut(&key) {
                names.retain(|n| *n != object.1);
                if names.is_empty() {
                    self.objects.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watcher::Event;

    fn hook(namespace: &str, name: &str, target: &str) -> Webhook {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
            "metadata": {"name": name, "namespace": namespace, "uid": name},
            "spec": {"appId": "APP", "target": target, "triggers": ["MESSAGE_INBOUND"]}
        }))
        .unwrap()
    }

    fn app(namespace: &str, name: &str, status: serde_json::Value) -> ConversationApp {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
            "metadata": {"name": name, "namespace": namespace, "uid": name},
            "spec": {"displayName": name},
            "status": status
        }))
        .unwrap()
    }

    fn hook_of(namespace: &str, name: &str, app: &str) -> Webhook {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
            "metadata": {"name": name, "namespace": namespace, "uid": name},
            "spec": {"appRef": {"name": app}, "target": format!("https://x/{name}"), "triggers": ["MESSAGE_INBOUND"]}
        }))
        .unwrap()
    }

    /// The apps' watch tells the webhooks' controller of an app when it is new, becomes Ready or
    /// gets another id, and only then: its other status writes (each poll) trigger nothing.
    #[test]
    fn an_app_is_sent_to_its_webhooks_when_its_readiness_changes() {
        let (_, mut writer) = app_store();
        let mut changed = writer.send_readiness();
        let mut sent = || {
            let mut names = Vec::new();
            while let Ok(app) = changed.try_recv() {
                names.push(format!("{}/{}", app.namespace().unwrap(), app.name_any()));
            }
            names
        };
        let pending = serde_json::json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Pending", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        let ready = |id: &str, polled: &str| {
            serde_json::json!({
                "appId": id, "projectId": "p", "region": "us", "lastPolled": polled,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            })
        };
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(app("a", "one", pending.clone())));
        writer.apply_watcher_event(&Event::InitDone);
        assert_eq!(sent(), ["a/one"], "new");
        writer.apply_watcher_event(&Event::Apply(app("a", "one", pending.clone())));
        assert!(sent().is_empty(), "unchanged");
        writer.apply_watcher_event(&Event::Apply(app("a", "one", ready("APP1", "2026-01-01T00:00:01Z"))));
        assert_eq!(sent(), ["a/one"], "Ready");
        writer.apply_watcher_event(&Event::Apply(app("a", "one", ready("APP1", "2026-01-01T00:05:00Z"))));
        assert!(sent().is_empty(), "polled again, still Ready with the same id");
        writer.apply_watcher_event(&Event::Apply(app("a", "one", ready("APP2", "2026-01-01T00:05:00Z"))));
        assert_eq!(sent(), ["a/one"], "another id");
        // A relist sends what changed while the watch was away, and forgets apps deleted then.
        writer.apply_watcher_event(&Event::Apply(app("b", "two", pending.clone())));
        assert_eq!(sent(), ["b/two"]);
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(app(
            "a",
            "one",
            ready("APP2", "2026-01-01T00:09:00Z"),
        )));
        writer.apply_watcher_event(&Event::InitDone);
        assert!(sent().is_empty());
        writer.apply_watcher_event(&Event::Apply(app("b", "two", pending)));
        assert_eq!(sent(), ["b/two"], "deleted during the relist: new again");
    }

    #[test]
    fn the_apps_index_follows_the_watch_events() {
        let (store, mut writer) = webhook_store();
        let of_app = |namespace: &str, name: &str| {
            let mut names: Vec<String> = store
                .of_app(&app(namespace, name, serde_json::json!({})))
                .into_iter()
                .map(|w| w.name)
                .collect();
            names.sort();
            names
        };
        for (namespace, name, app) in [
            ("a", "h1", "one"),
            ("a", "h2", "one"),
            ("a", "h3", "two"),
            ("b", "h4", "one"),
        ] {
            writer.apply_watcher_event(&Event::Apply(hook_of(namespace, name, app)));
        }
        writer.apply_watcher_event(&Event::Apply(hook("a", "by-id", "https://x/id")));
        assert_eq!(of_app("a", "one"), ["h1", "h2"]);
        assert_eq!(of_app("a", "two"), ["h3"]);
        assert_eq!(of_app("b", "one"), ["h4"]);
        assert!(of_app("b", "two").is_empty());
        writer.apply_watcher_event(&Event::Apply(hook_of("a", "h2", "two")));
        assert_eq!(of_app("a", "one"), ["h1"]);
        assert_eq!(of_app("a", "two"), ["h2", "h3"]);
        writer.apply_watcher_event(&Event::Delete(hook_of("a", "h3", "two")));
        assert_eq!(of_app("a", "two"), ["h2"]);
        assert_eq!(
            store.declaring("a", "https://x/h2").len(),
            1,
            "still filed under its target"
        );
    }

    #[test]
    fn the_target_index_follows_the_watch_events() {
        let (store, mut writer) = webhook_store();
        let declaring = |namespace: &str, target: &str| {
            let mut names: Vec<String> = store
                .declaring(namespace, target)
                .iter()
                .map(|w| w.name_any())
                .collect();
            names.sort();
            names
        };
        for (namespace, name) in [("a", "one"), ("a", "two"), ("b", "three")] {
            writer.apply_watcher_event(&Event::Apply(hook(namespace, name, "https://x/1")));
        }
        assert_eq!(declaring("a", "https://x/1"), ["one", "two"]);
        assert_eq!(declaring("b", "https://x/1"), ["three"]);
        assert!(declaring("a", "https://x/2").is_empty());
        // A changed target moves its object; the same copy twice changes nothing.
        writer.apply_watcher_event(&Event::Apply(hook("a", "two", "https://x/2")));
        writer.apply_watcher_event(&Event::Apply(hook("a", "two", "https://x/2")));
        assert_eq!(declaring("a", "https://x/1"), ["one"]);
        assert_eq!(declaring("a", "https://x/2"), ["two"]);
        writer.apply_watcher_event(&Event::Delete(hook("a", "one", "https://x/1")));
        assert!(declaring("a", "https://x/1").is_empty());
        // A relist replaces the whole index once it is done, as it replaces the store.
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(hook("a", "four", "https://x/2")));
        assert_eq!(declaring("a", "https://x/2"), ["two"]);
        writer.apply_watcher_event(&Event::InitDone);
        assert_eq!(declaring("a", "https://x/2"), ["four"]);
        assert!(declaring("b", "https://x/1").is_empty());
    }
}
