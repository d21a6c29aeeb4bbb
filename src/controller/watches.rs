//! The controllers, one per kind, and the watches that feed them: what triggers a reconcile
//! (spec and finalizer changes; for a webhook, its app's readiness) and what the stores keep.
//! Tenancy's stores (connections, claims, namespaces) are filled before any reconcile starts.

use super::raw::{self, Raw};
use super::status::Managed;
use super::{Context, Settings, Writers, reconcile};
use crate::model::{ConversationApp, ProjectSettings, SinchClaim, SinchConnection, Webhook};
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
    let apps = controller(&kube, ns, writers.apps, ctx.tenancy.apps.clone(), &config);
    let apps = start(apps, stopped(), ctx.clone());
    let webhooks = webhooks(&kube, ns, writers.webhooks, &ctx, &config);
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

/// The webhooks' controller. A webhook goes on when its app becomes Ready or gets another id;
/// the app's other status writes (each poll) do not trigger its webhooks.
fn webhooks(
    kube: &kube::Client,
    ns: &Option<String>,
    writer: WebhookWriter,
    ctx: &Context,
    config: &ControllerConfig,
) -> Controller<Webhook> {
    let webhooks_store = ctx.webhooks.store.clone();
    let app_changes = raw::watch(api::<ConversationApp>(kube, ns), raw::config())
        .applied_objects()
        .predicate_filter(app_readiness, Default::default());
    controller(kube, ns, writer, ctx.webhooks.store.clone(), config).watches_stream(app_changes, move |app| {
        webhooks_store
            .state()
            .into_iter()
            .filter(|w| w.refers_to(&app))
            .map(|w| ObjectRef::from_obj(&*w))
            .collect::<Vec<_>>()
    })
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
fn app_readiness(app: &ConversationApp) -> Option<u64> {
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
    Some(h.finish())
}

async fn log<K: std::fmt::Debug, E: std::fmt::Display>(result: Result<K, E>) {
    match result {
        Ok(o) => tracing::debug!(object = ?o, "reconciled"),
        Err(e) => tracing::debug!(error = %e, "reconcile failed"),
    }
}

/// The webhooks' store, and beside it which Webhook objects declare each target in a
/// namespace (the one-claim-per-(app, target) rule asks it). Scanning the whole store on every
/// webhook's reconcile instead was 42% of the controller's CPU at 5,000 webhooks.
#[derive(Clone)]
pub struct WebhookStore {
    pub store: Store<Webhook>,
    targets: Arc<RwLock<Targets>>,
}

/// Feeds a [`WebhookStore`]: the store and the index from the same watch events.
pub struct WebhookWriter {
    store: reflector::store::Writer<Webhook>,
    targets: Arc<RwLock<Targets>>,
}

pub fn webhook_store() -> (WebhookStore, WebhookWriter) {
    let (store, writer) = reflector::store();
    let targets = Arc::new(RwLock::new(Targets::default()));
    let reader = WebhookStore {
        store,
        targets: targets.clone(),
    };
    (reader, WebhookWriter { store: writer, targets })
}

impl WebhookStore {
    /// The Webhook objects of `namespace` that declare `target`, as the store holds them.
    pub fn declaring(&self, namespace: &str, target: &str) -> Vec<Arc<Webhook>> {
        let targets = self.targets.read().expect("never poisoned");
        let key = targets.hash.hash_one((namespace, target));
        let Some(names) = targets.live.objects.get(&key) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|name| self.store.get(&ObjectRef::new(name).within(namespace)))
            // Two keys can share a hash: the store's copy says what it declares.
            .filter(|w| w.spec.target == target && w.namespace().as_deref() == Some(namespace))
            .collect()
    }
}

impl WebhookWriter {
    pub fn apply_watcher_event(&mut self, event: &watcher::Event<Webhook>) {
        self.targets.write().expect("never poisoned").apply(event);
        self.store.apply_watcher_event(event);
    }
}

/// The names of the Webhook objects by the hash of (namespace, target), as the watch last
/// showed them; and during a relist (`Init` to `InitDone`), the index that will replace it.
#[derive(Default)]
struct Targets {
    hash: std::hash::RandomState,
    live: TargetIndex,
    relisted: Option<TargetIndex>,
}

#[derive(Default)]
struct TargetIndex {
    objects: HashMap<u64, Vec<String>>,
    /// (namespace, name) -> the hash its object is filed under, to move it when it changes.
    filed: HashMap<(String, String), u64>,
}

impl Targets {
    fn apply(&mut self, event: &watcher::Event<Webhook>) {
        let hash = &self.hash;
        match event {
            watcher::Event::Apply(w) => self.live.file(hash, w),
            watcher::Event::Delete(w) => self.live.remove(&(w.namespace().unwrap_or_default(), w.name_any())),
            watcher::Event::Init => self.relisted = Some(TargetIndex::default()),
            watcher::Event::InitApply(w) => self.relisted.get_or_insert_default().file(hash, w),
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.live = relisted;
                }
            }
        }
    }
}

impl TargetIndex {
    fn file(&mut self, hash: &impl BuildHasher, w: &Webhook) {
        let (namespace, name) = (w.namespace().unwrap_or_default(), w.name_any());
        let key = hash.hash_one((namespace.as_str(), w.spec.target.as_str()));
        let object = (namespace, name);
        if self.filed.get(&object) == Some(&key) {
            return;
        }
        self.remove(&object);
        self.objects.entry(key).or_default().push(object.1.clone());
        self.filed.insert(object, key);
    }

    fn remove(&mut self, object: &(String, String)) {
        let Some(key) = self.filed.remove(object) else {
            return;
        };
        if let Some(names) = self.objects.get_mut(&key) {
            names.retain(|n| *n != object.1);
            if names.is_empty() {
                self.objects.remove(&key);
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
