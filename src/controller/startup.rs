//! `run`'s steps, in the order it takes them: the metrics server, the leader Lease, then (once
//! leading) the key of secret fingerprints and the shared context; the controllers themselves
//! are started in `watches`. Only the leader reconciles, so two replicas never act at once.

use super::metrics::{self, Metrics};
use super::observation::Observations;
use super::watches::controllers;
use super::{Context, Settings};
use crate::engine::Defaults;
use crate::sinch::client::{Client as SinchClient, Credentials};
use kube::api::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The API server's clients of `run`: the reconciles' (and the fingerprint key's), whose
/// requests in flight are bounded, and the watches', whose requests never wait behind theirs: a
/// kind's reconciles start once its watch has listed it whole, and the list's pages queued
/// behind the other kinds' writes held every webhook back for 2.9 s at 200 apps (20 pages of
/// 50). The leader Lease makes its own client from `lease`, on its thread ([`Timekeeper`]).
pub struct Clients {
    pub kube: kube::Client,
    pub direct: kube::Client,
    pub lease: kube::Config,
}

/// A thread of its own for what must keep time whatever the reconciles do: the leader Lease's
/// renewals and `/healthz`. The reconciles run on one thread (`cli::run`); a burst of them could
/// otherwise delay a renewal until the Lease expired, and another replica would act beside this
/// one. The thread's runtime ends when this is dropped.
struct Timekeeper {
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Timekeeper {
    fn start() -> crate::Result<Timekeeper> {
        let io = |source| crate::Error::Io {
            context: "cannot start the thread of the leader Lease".into(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("lease-and-health".into())
            .spawn(move || runtime.block_on(async move { stopped.await.unwrap_or_default() }))
            .map_err(io)?;
        Ok(Timekeeper {
            runtime: handle,
            _stop: stop,
        })
    }

    /// `future`'s output, the future run on the keeper's thread (what it spawns stays there).
    async fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> crate::Result<T> {
        match self.runtime.spawn(future).await {
            Ok(output) => Ok(output),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(crate::Error::LeaderElection(
                "the thread of the leader Lease ended".into(),
            )),
        }
    }
}

/// Runs until `shutdown` resolves (or this replica loses the Lease, an error: a restart then
/// waits for it again, so two replicas never act at once).
pub async fn run(
    settings: Settings,
    clients: Clients,
    sinch: SinchClient,
    credentials: Option<Credentials>,
    defaults: Defaults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    // An observation nobody asked for in a few intervals is dropped (its objects are gone).
    let observations = Arc::new(Observations::new(sinch, settings.resync.saturating_mul(4)));
    let metrics = Arc::new(Metrics::new(Some(observations.clone())));
    observations.client().count_requests(metrics.sinch_requests.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || until_stopped(stop_rx.clone());
    let keeper = Timekeeper::start()?;
    let server = keeper
        .run(serve_metrics(settings.listen, metrics.clone(), stopped()))
        .await??;
    let mut shutdown = Box::pin(shutdown);
    let Clients { kube, direct, lease } = clients;
    let lease_settings = settings.clone();
    let (mut leader, lease_task) = keeper
        .run(async move {
            let client = crate::cluster::client(lease, None)
                .map_err(|e| crate::Error::kube("cannot make the client of the leader Lease", e))?;
            let lease = lease_manager(&client, &lease_settings).await?;
            crate::Result::Ok(lease.watch().await)
        })
        .await??;
    metrics.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(identity = %settings.identity, lease = %settings.lease_name, "waiting to hold the leader Lease");
    if !lead(&mut leader, &mut shutdown).await? {
        let _ = stop_tx.send(true);
        release(leader, lease_task, server).await;
        return Ok(());
    }
    tracing::info!(identity = %settings.identity, "holding the leader Lease: reconciling");
    metrics.leader.set(1);

    let key = fingerprint_key(&kube, &settings.operator_namespace).await?;
    let (ctx, writers) = Context::new(
        &settings,
        kube.clone(),
        observations,
        metrics.clone(),
        credentials,
        defaults,
        key,
    );
    let controllers = controllers(&settings, direct, Arc::new(ctx), writers, stopped);
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
    release(leader, lease_task, server).await;
    if lost {
        return Err(crate::Error::LostLease);
    }
    Ok(())
}

/// Resolves once `run` stops (or its sender is gone): each task that must end with it waits on
/// its own copy.
async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// `/metrics`, `/healthz` and `/readyz` on `listen`, served until `stopped` resolves.
async fn serve_metrics(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| crate::Error::Io {
            context: format!("cannot listen on {listen}"),
            source,
        })?;
    tracing::info!(listen = %listen, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(
        axum::serve(listener, metrics::router(metrics))
            .with_graceful_shutdown(stopped)
            .into_future(),
    ))
}

/// The leader Lease of `settings`, not yet watched.
async fn lease_manager(kube: &kube::Client, settings: &Settings) -> crate::Result<LeaseManager> {
    let context = format!(
        "cannot use the Lease {}/{}",
        settings.lease_namespace, settings.lease_name
    );
    LeaseManagerBuilder::new(kube.clone(), &settings.lease_name)
        .with_namespace(&settings.lease_namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.lease_duration.as_secs().max(3))
        .with_grace((settings.lease_duration.as_secs() / 3).max(1))
        .build()
        .await
        .map_err(|e| match e {
            LeaseManagerError::KubeError(e) => crate::Error::kube(context, e),
            other => crate::Error::LeaderElection(format!("{context}: {other}")),
        })
}

/// Waits until this replica holds the Lease: `true` then, `false` if `shutdown` came first.
async fn lead<S: Future<Output = ()>>(
    leader: &mut watch::Receiver<bool>,
    shutdown: &mut Pin<Box<S>>,
) -> crate::Result<bool> {
    loop {
        if *leader.borrow_and_update() {
            return Ok(true);
        }
        tokio::select! {
            changed = leader.changed() => if changed.is_err() {
                return Err(crate::Error::LeaderElection("leader election: the Lease task ended".into()));
            },
            () = &mut *shutdown => return Ok(false),
        }
    }
}

/// Gives the Lease up (dropping the watch releases it) and waits for its task and the metrics
/// server to end; the server ends once `run` sent stop.
async fn release(
    leader: watch::Receiver<bool>,
    lease_task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    server: JoinHandle<std::io::Result<()>>,
) {
    drop(leader);
    let _ = lease_task.await;
    let _ = server.await;
}

/// The Secret in the operator's namespace holding the key of secret fingerprints.
pub const FINGERPRINT_SECRET: &str = "sinch-operator-fingerprint-key";

/// 32 random bytes: a new key of secret fingerprints.
pub(super) fn new_fingerprint_key() -> crate::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| crate::Error::OperatorState("the system gave no random bytes for the fingerprint key".into()))?;
    Ok(bytes)
}

/// The key of secret fingerprints [`FINGERPRINT_SECRET`] holds, if it holds one.
pub(super) async fn stored_fingerprint_key(
    kube: &kube::Client,
    namespace: &str,
) -> Result<Option<ring::hmac::Key>, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(kube.clone(), namespace);
    let secret = api.get_opt(FINGERPRINT_SECRET).await?;
    Ok(secret
        .as_ref()
        .and_then(key_of)
        .map(|key| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key)))
}

fn key_of(secret: &k8s_openapi::api::core::v1::Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("key"))
        .map(|b| b.0.clone())
        .filter(|k| k.len() >= 32)
}

/// The key of secret fingerprints: read from [`FINGERPRINT_SECRET`], made (32 random bytes) the
/// first time. It must outlive restarts: a new key would make every recorded hash look rotated.
async fn fingerprint_key(kube: &kube::Client, namespace: &str) -> crate::Result<ring::hmac::Key> {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let failed = |e: kube::Error| {
        crate::Error::kube(
            format!("reading the Secret {namespace}/{FINGERPRINT_SECRET} (the key of secret fingerprints)"),
            e,
        )
    };
    if let Some(key) = stored_fingerprint_key(kube, namespace).await.map_err(failed)? {
        return Ok(key);
    }
    let bytes = new_fingerprint_key()?;
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
            let key = key_of(&made).ok_or_else(|| {
                crate::Error::OperatorState(format!(
                    "Secret {namespace}/{FINGERPRINT_SECRET} has no 32-byte key \"key\": delete it and restart"
                ))
            })?;
            Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key))
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::Timekeeper;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// The Lease's renewals go on while the reconciles' thread is busy: a task of the keeper
    /// ticks while this test's thread (a runtime of one thread, as `run`'s) is blocked.
    #[tokio::test]
    async fn the_keepers_tasks_run_while_the_reconciles_thread_is_blocked() {
        let keeper = Timekeeper::start().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let thread = keeper
            .run(async move {
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                });
                std::thread::current().name().map(String::from)
            })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("lease-and-health"));
        let before = ticks.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            ticks.load(Ordering::Relaxed) > before,
            "no tick while this thread was blocked"
        );
    }

    /// A panic on the keeper's thread is the caller's panic, not a lost Lease.
    #[tokio::test]
    #[should_panic(expected = "the keeper's panic")]
    async fn a_panic_on_the_keepers_thread_reaches_the_caller() {
        let keeper = Timekeeper::start().unwrap();
        let _ = keeper.run(async { panic!("the keeper's panic") }).await;
    }
}
