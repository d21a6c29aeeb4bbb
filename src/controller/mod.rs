//! `run`: the Kubernetes controller. One kube-runtime `Controller` per kind, all sharing one
//! Sinch client (so one rate limit per project), started only while this replica holds the
//! leader Lease; `/metrics`, `/healthz` and `/readyz` on their own port.
//!
//! What a reconcile does lives in `reconcile`; what it writes back in `status`.

mod cleanup;
pub mod connections;
pub mod ledger;
pub mod metrics;
pub mod observation;
mod prepare;
pub mod reconcile;
mod report;
pub mod status;

use crate::engine::Defaults;
use crate::model::{ConversationApp, ProjectSettings, SinchClaim, SinchConnection, Template, Webhook};
use crate::sinch::client::{Client as SinchClient, Credentials};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube_lease_manager::LeaseManagerBuilder;
use metrics::Metrics;
use observation::Observations;
use status::Managed;
use status::Retry;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the controller runs (the flags of `run`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Re-read each object from Sinch this often when nothing changes (jittered).
    pub resync: Duration,
    /// The shortest poll-interval annotation honoured.
    pub min_poll_interval: Duration,
    /// Watch one namespace only; `None`: all.
    pub namespace: Option<String>,
    pub listen: SocketAddr,
    pub lease_name: String,
    pub lease_namespace: String,
    /// Where the operator runs: the Secrets of SinchConnections live here.
    pub operator_namespace: String,
    /// This replica's name in the Lease (the pod name in a cluster).
    pub identity: String,
    pub lease_duration: Duration,
    /// Objects of one kind reconciled at once.
    pub concurrency: u16,
}

/// What every reconcile shares.
pub struct Context {
    pub kube: kube::Client,
    /// What Sinch holds, read once per scope and poll interval for every object (rule 13).
    pub observations: Arc<Observations>,
    /// The operator's own access key, for objects without `credentialsRef`.
    pub credentials: Option<Credentials>,
    pub defaults: Defaults,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// What the webhooks' apps say (their ids, project, region, readiness).
    pub apps: Store<ConversationApp>,
    /// For the one-claim-per-(app, target) rule.
    pub webhooks: Store<Webhook>,
    /// The admin's SinchConnections (tenancy: which namespace reaches which project).
    pub connections: Store<SinchConnection>,
    /// Namespaces' labels, for connections that select namespaces by label.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Who manages which Sinch object.
    pub ledger: ledger::Ledger,
    pub operator_namespace: String,
    resync: Duration,
    min_poll_interval: Duration,
    /// Consecutive retryable failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Objects whose next reconcile reads their Sinch object back first.
    read_back: Mutex<HashSet<String>>,
    /// Keys the fingerprints of secret values recorded in statuses (see [`fingerprint_key`]).
    pub fingerprint_key: ring::hmac::Key,
}

impl Context {
    /// When to reconcile `obj` again. `observed`: when the oldest list its plan used was read;
    /// a poll is then due one interval after it, so that the objects of a scope come due
    /// together and one read serves them all.
    pub fn requeue<K: Managed>(&self, obj: &K, retry: Retry, observed: Option<Instant>) -> Action {
        let every = self.poll_interval(obj);
        match retry {
            Retry::Poll => {
                let due = observed.map_or(every, |at| (at + every).saturating_duration_since(Instant::now()));
                Action::requeue(due.max(Duration::from_secs(1)) + spread(every))
            }
            Retry::OnChange => Action::await_change(),
            Retry::ReadBack => {
                self.read_back.lock().expect("never poisoned").insert(key(obj));
                Action::requeue(jitter(SOON.min(every)))
            }
            Retry::Wait => Action::requeue(jitter(SOON.min(every))),
            Retry::Backoff => {
                let mut failures = self.failures.lock().expect("never poisoned");
                let n = failures.entry(key(obj)).or_default();
                *n = n.saturating_add(1);
                Action::requeue(jitter(backoff(*n)))
            }
        }
    }

    /// The salt of an object's secret fingerprints: its uid, keyed with the operator's secret,
    /// so that whoever reads a status cannot test guesses against its `secretHashes`.
    pub fn salt(&self, uid: &str) -> String {
        let tag = ring::hmac::sign(&self.fingerprint_key, uid.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn clear_failures<K: Managed>(&self, obj: &K) {
        self.failures.lock().expect("never poisoned").remove(&key(obj));
    }

    /// Whether this reconcile should read the object back (and forgets that it should).
    pub fn take_read_back<K: Managed>(&self, obj: &K) -> bool {
        self.read_back.lock().expect("never poisoned").remove(&key(obj))
    }

    /// How old a shared list may be for `obj`'s plan: three quarters of its poll interval.
    /// More than half, so that two groups of objects of one scope polling half an interval
    /// apart merge into one (each takes the other's read) instead of each reading the list
    /// just after the other's copy went stale: at one half, 200 apps read their list twice
    /// per interval.
    pub fn fresh_for<K: Managed>(&self, obj: &K) -> Duration {
        self.poll_interval(obj) * 3 / 4
    }

    fn poll_interval<K: Managed>(&self, obj: &K) -> Duration {
        reconcile::poll_interval(obj, self.resync, self.min_poll_interval)
    }
}

fn key<K: Managed>(obj: &K) -> String {
    format!("{}/{}/{}", K::KIND, obj.namespace().unwrap_or_default(), obj.name_any())
}

/// How soon an object is looked at again after a write, or while it waits for another.
const SOON: Duration = Duration::from_secs(5);

/// 2 s doubling per consecutive failure, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(failures.min(9))).min(Duration::from_secs(300))
}

/// ±10 %, so that objects waiting together do not look again together.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// Up to a twentieth of the interval (at most 5 s) after a poll is due: the objects of a scope
/// come due together, the first reads, the others take its read.
fn spread(every: Duration) -> Duration {
    (every / 20).min(Duration::from_secs(5)).mul_f64(fastrand::f64())
}

/// Runs until `shutdown` resolves (or this replica loses the Lease, an error: a restart then
/// waits for it again, so two replicas never act at once).
pub async fn run(
    settings: Settings,
    kube: kube::Client,
    sinch: SinchClient,
    credentials: Option<Credentials>,
    defaults: Defaults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    // An observation nobody asked for in a few intervals is dropped (its objects are gone).
    let observations = Arc::new(Observations::new(sinch, settings.resync * 4));
    let metrics = Arc::new(Metrics::new(Some(observations.clone())));
    observations.client().count_requests(metrics.sinch_requests.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = {
        let rx = stop_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        }
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| crate::Error::Io {
            context: format!("cannot listen on {}", settings.listen),
            source,
        })?;
    tracing::info!(listen = %settings.listen, "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(
        axum::serve(listener, metrics::router(metrics.clone()))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    let mut shutdown = Box::pin(shutdown);
    let kube_error = |context: &str| {
        let context = context.to_string();
        move |e: kube_lease_manager::LeaseManagerError| match e {
            kube_lease_manager::LeaseManagerError::KubeError(e) => crate::Error::kube(context, &e),
            other => crate::Error::Kubernetes {
                context,
                message: other.to_string(),
            },
        }
    };
    let lease = LeaseManagerBuilder::new(kube.clone(), &settings.lease_name)
        .with_namespace(&settings.lease_namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.lease_duration.as_secs().max(3))
        .with_grace((settings.lease_duration.as_secs() / 3).max(1))
        .build()
        .await
        .map_err(kube_error(&format!(
            "cannot use the Lease {}/{}",
            settings.lease_namespace, settings.lease_name
        )))?;
    metrics.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(identity = %settings.identity, lease = %settings.lease_name, "waiting to hold the leader Lease");
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leader.changed() => if changed.is_err() {
                return Err(crate::Error::Kubernetes { context: "leader election".into(), message: "the Lease task ended".into() });
            },
            () = &mut shutdown => {
                let _ = stop_tx.send(true);
                drop(leader);
                let _ = lease_task.await;
                let _ = server.await;
                return Ok(());
            }
        }
    }
    tracing::info!(identity = %settings.identity, "holding the leader Lease: reconciling");
    metrics.leader.set(1);

    let key = fingerprint_key(&kube, &settings.operator_namespace).await?;
    let ctx = context(
        &settings,
        key,
        kube.clone(),
        observations,
        credentials,
        defaults,
        metrics.clone(),
    );
    let controllers = controllers(&settings, kube, ctx, stopped);
    tokio::pin!(controllers);
    let lost = tokio::select! {
        () = &mut shutdown => false,
        _ = leader.wait_for(|l| !*l) => true,
        () = &mut controllers => false,
    };
    tracing::info!(lost, "stopping the controllers");
    let _ = stop_tx.send(true);
    controllers.await;
    metrics.leader.set(0);
    drop(leader); // releases the Lease
    let _ = lease_task.await;
    let _ = server.await;
    if lost {
        return Err(crate::Error::LostLease);
    }
    Ok(())
}

/// The Secret in the operator's namespace holding the key of secret fingerprints.
pub const FINGERPRINT_SECRET: &str = "sinch-operator-fingerprint-key";

/// The key of secret fingerprints: read from [`FINGERPRINT_SECRET`], made (32 random bytes) the
/// first time. It must outlive restarts: a new key would make every recorded hash look rotated.
async fn fingerprint_key(kube: &kube::Client, namespace: &str) -> crate::Result<ring::hmac::Key> {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let failed = |e: kube::Error| {
        crate::Error::kube(
            format!("reading the Secret {namespace}/{FINGERPRINT_SECRET} (the key of secret fingerprints)"),
            &e,
        )
    };
    let stored = |s: &Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get("key"))
            .map(|b| b.0.clone())
            .filter(|k| k.len() >= 32)
    };
    if let Some(key) = api
        .get_opt(FINGERPRINT_SECRET)
        .await
        .map_err(failed)?
        .as_ref()
        .and_then(stored)
    {
        return Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| crate::Error::OperatorState("the system gave no random bytes for the fingerprint key".into()))?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": FINGERPRINT_SECRET, "namespace": namespace},
        "data": {"key": ByteString(bytes.to_vec())},
    }))
    .expect("a Secret");
    match api.create(&kube::api::PostParams::default(), &secret).await {
        Ok(_) => Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)),
        // Another replica made it first: use its key.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let made = api.get(FINGERPRINT_SECRET).await.map_err(failed)?;
            let key = stored(&made).ok_or_else(|| {
                crate::Error::OperatorState(format!(
                    "Secret {namespace}/{FINGERPRINT_SECRET} has no 32-byte key \"key\": delete it and restart"
                ))
            })?;
            Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key))
        }
        Err(e) => Err(failed(e)),
    }
}

fn context(
    settings: &Settings,
    fingerprint_key: ring::hmac::Key,
    kube: kube::Client,
    observations: Arc<Observations>,
    credentials: Option<Credentials>,
    defaults: Defaults,
    metrics: Arc<Metrics>,
) -> Stores {
    let (apps, apps_writer) = reflector::store();
    let (webhooks, webhooks_writer) = reflector::store();
    let (connections, connections_writer) = reflector::store();
    let (claims, claims_writer) = reflector::store();
    let (namespaces, namespaces_writer) = reflector::store();
    let reporter = Reporter {
        controller: "sinch-operator".into(),
        instance: Some(settings.identity.clone()),
    };
    Stores {
        ctx: Arc::new(Context {
            recorder: Recorder::new(kube.clone(), reporter),
            observations,
            credentials,
            defaults,
            metrics,
            ledger: ledger::Ledger {
                api: Api::all(kube.clone()),
                store: claims,
            },
            kube,
            apps,
            webhooks,
            connections,
            namespaces,
            operator_namespace: settings.operator_namespace.clone(),
            resync: settings.resync,
            min_poll_interval: settings.min_poll_interval,
            failures: Mutex::default(),
            read_back: Mutex::default(),
            fingerprint_key,
        }),
        apps_writer,
        webhooks_writer,
        connections_writer,
        claims_writer,
        namespaces_writer,
    }
}

/// The context, and the writers of the stores it reads (fed by the app and webhook watches).
struct Stores {
    ctx: Arc<Context>,
    apps_writer: reflector::store::Writer<ConversationApp>,
    webhooks_writer: reflector::store::Writer<Webhook>,
    connections_writer: reflector::store::Writer<SinchConnection>,
    claims_writer: reflector::store::Writer<SinchClaim>,
    namespaces_writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
}

fn api<K: Managed>(kube: &kube::Client, namespace: &Option<String>) -> Api<K> {
    match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    }
}

/// The four controllers, until `stopped` resolves.
async fn controllers<F, S>(settings: &Settings, kube: kube::Client, stores: Stores, stopped: S)
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let Stores {
        ctx,
        apps_writer,
        webhooks_writer,
        connections_writer,
        claims_writer,
        namespaces_writer,
    } = stores;
    let ns = &settings.namespace;
    // Tenancy is decided from these three: no reconcile starts before each was listed once
    // (an empty store would read as "no connection exists", the single-tenant mode).
    let tenancy = {
        let kube = kube.clone();
        async move {
            let connections = watcher(Api::<SinchConnection>::all(kube.clone()), watcher::Config::default())
                .default_backoff()
                .reflect(connections_writer)
                .for_each(|_| async {});
            let claims = watcher(Api::<SinchClaim>::all(kube.clone()), watcher::Config::default())
                .default_backoff()
                .modify(slim)
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
    };
    let tenancy = tokio::spawn(tenancy);
    let ready = async {
        let _ = ctx.connections.wait_until_ready().await;
        let _ = ctx.ledger.store.wait_until_ready().await;
        let _ = ctx.namespaces.wait_until_ready().await;
    };
    tokio::select! {
        () = ready => {}
        () = stopped() => { tenancy.abort(); return; }
    }
    tracing::info!(
        connections = ctx.connections.state().len(),
        claims = ctx.ledger.store.state().len(),
        "tenancy known"
    );
    let config = ControllerConfig::default().concurrency(settings.concurrency);
    let apps = controller(&kube, ns, apps_writer, ctx.apps.clone(), &config)
        .graceful_shutdown_on(stopped())
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(log);

    // A webhook goes on when its app becomes Ready or gets another id; the app's other status
    // writes (each poll) do not trigger its webhooks.
    let webhooks_store = ctx.webhooks.clone();
    let app_changes = watcher(api::<ConversationApp>(&kube, ns), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .predicate_filter(app_readiness, Default::default());
    let webhooks = controller(&kube, ns, webhooks_writer, ctx.webhooks.clone(), &config)
        .watches_stream(app_changes, move |app| {
            webhooks_store
                .state()
                .into_iter()
                .filter(|w| w.refers_to(&app))
                .map(|w| ObjectRef::from_obj(&*w))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stopped())
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(log);

    let (templates_store, templates_writer) = reflector::store::<Template>();
    let templates = controller(&kube, ns, templates_writer, templates_store, &config)
        .graceful_shutdown_on(stopped())
        .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
        .for_each(log);

    let (settings_store, settings_writer) = reflector::store::<ProjectSettings>();
    let project_settings = controller(&kube, ns, settings_writer, settings_store, &config)
        .graceful_shutdown_on(stopped())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(log);

    tokio::join!(apps, webhooks, templates, project_settings);
    tenancy.abort();
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
    api: Api<K>,
    writer: reflector::store::Writer<K>,
) -> impl futures_util::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
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

/// What a webhook needs of its app: its id, where it lives, whether it is Ready.
fn app_readiness(app: &ConversationApp) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let status = app.status.as_ref();
    status.and_then(|s| s.app_id.as_deref()).hash(&mut h);
    status.and_then(|s| s.sync.project_id.as_deref()).hash(&mut h);
    status.and_then(|s| s.sync.region).map(|r| r.as_str()).hash(&mut h);
    status
        .and_then(|s| s.sync.conditions.iter().find(|c| c.type_ == "Ready"))
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

#[cfg(test)]
mod tests;
