//! `sinch-operator run`: the Kubernetes controller.

use super::connection::{ConnectionArgs, connect_optional};
use super::exit;
use crate::controller::{self, Settings};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Re-read each object from Sinch this often when nothing changes (jittered by 10%); an
    /// object's annotation conversation.sinch.com/poll-interval overrides it.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub resync: Duration,
    /// The shortest conversation.sinch.com/poll-interval annotation honoured; shorter ones are
    /// raised to it, so that no namespace makes the operator read a whole project every second.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub min_poll_interval: Duration,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,
    /// The Lease that elects the one replica that acts.
    #[arg(long, value_name = "NAME", default_value = "sinch-operator")]
    pub lease_name: String,
    /// The namespace of the Lease (default: --operator-namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease (default: the host name and process id).
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a Lease stays held without renewal.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,
    /// Objects of one kind reconciled at once.
    #[arg(long = "workers", value_name = "N", default_value_t = 8)]
    pub workers: u16,
    #[command(flatten)]
    pub operator: super::OperatorArgs,
    /// The deletionPolicy of objects that name none, when their namespace's label
    /// conversation.sinch.com/deletion-policy names none either: Delete or Orphan.
    #[arg(long, value_name = "POLICY", default_value = "Delete")]
    pub default_deletion_policy: crate::model::DeletionPolicy,
    /// What deleting a whole namespace does to the Sinch side of its objects: Orphan (the
    /// default: they stay, whatever their deletionPolicy) or Delete (each as its policy says).
    #[arg(long, value_name = "POLICY", default_value = "Orphan")]
    pub namespace_deletion_policy: crate::model::DeletionPolicy,
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and a long-running
/// controller fragments them all: at 1,000 apps its peak RSS was 154 MiB. One arena serves the
/// few threads there are (each keeps its own small cache of freed blocks). And glibc raises its
/// mmap threshold after each large block freed (up to 32 MiB), so that list bodies of megabytes
/// then come from the arena and pin it; a fixed threshold returns them to the system when freed.
/// What is freed inside the arena stays resident until `malloc_trim` gives its whole pages
/// back: once a second (a few milliseconds of one core), so that the free pages between live
/// objects never add up (BENCHMARKS.md, the controller's memory). Called before any thread
/// starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only tunes the allocator; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
        }
        let trim = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                // SAFETY: malloc_trim takes the arena's lock like any allocation.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
        if let Err(e) = trim {
            tracing::warn!(error = %e, "cannot start the thread that returns freed memory");
        }
    }
}

/// Requests to the API server in flight at once from the reconciles. Each request in flight
/// holds a connection, and each connection its buffers (about 100 KiB once it has read a list
/// page): 4 kinds x 64 workers kept about 200 connections open (20 MiB at 1,000 apps), where
/// the API server on a few cores takes no more writes at once from 256 than from 32.
const KUBE_REQUESTS: usize = 32;

/// The reconciles' client, with at most [`KUBE_REQUESTS`] requests in flight, the watches'
/// (their list pages must not wait behind the writes, see [`controller::Clients`]), and the
/// configuration the leader Lease makes its own client from, on its own thread.
async fn kube_clients() -> Result<controller::Clients, kube::Error> {
    let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    let direct = crate::cluster::client(config.clone(), None)?;
    let kube = crate::cluster::client(config.clone(), Some(KUBE_REQUESTS))?;
    Ok(controller::Clients {
        kube,
        direct,
        lease: config,
    })
}

/// The reconciles' runtime: one thread. They wait on the network, not the CPU (a fifth of a
/// core at 1,000 apps), and on two worker threads a fifth of the controller's CPU went to
/// waking the other thread and to the allocator's lock between them (BENCHMARKS.md). What must
/// keep time whatever the reconciles do runs on a thread of its own (`controller::run`).
fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    super::build_runtime(&mut tokio::runtime::Builder::new_current_thread())
}

fn duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d < Duration::from_secs(1) => Err("must be at least 1s".into()),
        Ok(d) if d > controller::MAX_POLL_INTERVAL => Err("must be at most 24h".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 30s, 10m, 1h)")),
    }
}

pub fn exec(args: Args) -> crate::Result<u8> {
    tune_malloc();
    runtime()?.block_on(async {
        let (sinch, credentials, defaults, sim) = connect_optional(&args.connection, |v| std::env::var(v).ok()).await?;
        let clients = kube_clients().await.map_err(|e| {
            crate::Error::kube(
                "cannot reach the Kubernetes API server (KUBECONFIG, or the pod's service account)",
                e,
            )
        })?;
        let identity = args.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let settings = Settings {
            resync: args.resync,
            min_poll_interval: args.min_poll_interval,
            namespace: args.namespace,
            listen: args.metrics_listen,
            lease_name: args.lease_name,
            lease_namespace: args
                .lease_namespace
                .unwrap_or_else(|| args.operator.operator_namespace.clone()),
            operator_namespace: args.operator.operator_namespace,
            identity,
            lease_duration: args.lease_duration,
            concurrency: args.workers,
            operator_key: args.operator.operator_key_namespaces,
            deletion: controller::Deletion {
                default_policy: args.default_deletion_policy,
                on_namespace_deletion: args.namespace_deletion_policy,
            },
        };
        let result = controller::run(
            settings,
            clients,
            sinch,
            credentials,
            defaults,
            super::sim::shutdown_signal(),
        )
        .await;
        if let Some(sim) = sim {
            sim.stop().await;
        }
        result.map(|()| exit::OK)
    })
}
