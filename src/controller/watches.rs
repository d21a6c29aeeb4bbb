//! The controllers, one per kind, and the watches that feed them: what triggers a reconcile
//! (spec and finalizer changes; for a webhook, its app's readiness) and what the stores keep.
//! Tenancy's stores (connections, claims, namespaces) are filled before any reconcile starts.

use super::raw::{self, Raw};
use super::status::Managed;
use super::{Context, Settings, Writers, reconcile};
use crate::model::{ConversationApp, ProjectSettings, SinchClaim, SinchConnection, Webhook};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use std::sync::Arc;

/// The kind's objects as raw JSON, parsed one by one (see [`raw`]).
fn api<K: Managed>(kube: &kube::Client, namespace: &Option<String>) -> Api<Raw<K>> {
    match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// The four controllers, until `stopped` resolves.
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
        claims = ctx.ledger.store.state().len(),
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
    claims_writer: reflector::store::Writer<SinchClaim>,
    namespaces_writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
) {
    let connections = watcher(Api::<SinchConnection>::all(kube.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(connections_writer)
        .for_each(|_| async {});
    let claims = watcher(Api::<SinchClaim>::all(kube.clone()), watcher::Config::default())
        .default_backoff()
        .modify(slim_claim)
        .reflect(claims_writer)
        .for_each(|_| async {});
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
    let _ = ctx.ledger.store.wait_until_ready().await;
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
    writer: reflector::store::Writer<Webhook>,
    ctx: &Context,
    config: &ControllerConfig,
) -> Controller<Webhook> {
    let webhooks_store = ctx.webhooks.clone();
    let app_changes = raw::watch(api::<ConversationApp>(kube, ns), raw::config())
        .applied_objects()
        .predicate_filter(app_readiness, Default::default());
    controller(kube, ns, writer, ctx.webhooks.clone(), config).watches_stream(app_changes, move |app| {
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
    writer: reflector::store::Writer<K>,
    store: Store<K>,
    config: &ControllerConfig,
) -> Controller<K> {
    Controller::for_stream(trigger(api::<K>(kube, ns), writer), store).with_config(config.clone())
}

/// The watch of a kind that triggers its reconciles: only spec (generation) and finalizer
/// changes, so that our own status writes do not trigger another reconcile; the store still
/// sees every change (a webhook reads its app's status from it).
fn trigger<K: Managed>(
    api: Api<Raw<K>>,
    writer: reflector::store::Writer<K>,
) -> impl futures_util::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    raw::watch(api, raw::config())
        .modify(slim)
        .reflect(writer)
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

/// A claim as the ledger reads it from the store: its name, spec and uid. Its owner label is
/// only for listing by label at the API server (a `BTreeMap` node of about 600 bytes per claim,
/// and there are two claims for most objects).
fn slim_claim(claim: &mut SinchClaim) {
    slim(claim);
    claim.metadata.labels = None;
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
