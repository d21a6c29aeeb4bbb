//! `run`: the Kubernetes controller. One kube-runtime `Controller` per kind, all sharing one
//! Sinch client (so one rate limit per project), started only while this replica holds the
//! leader Lease; `/metrics`, `/healthz` and `/readyz` on their own port.
//!
//! This file holds what every reconcile shares (the [`Context`]) and when an object is looked
//! at again. How `run` starts lives in `startup`, the controllers and their watches in
//! `watches`; what a reconcile does in `reconcile`; what it writes back in `status`.

mod cleanup;
pub mod connections;
pub mod ledger;
pub mod metrics;
pub mod observation;
mod prepare;
pub mod preview;
mod raw;
pub mod reconcile;
mod report;
mod startup;
pub mod status;
mod watches;

pub use startup::{Clients, FINGERPRINT_SECRET, run};

use crate::engine::Defaults;
use crate::engine::plan::Change;
use crate::model::{SinchConnection, Template};
use crate::sinch::client::Credentials;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use metrics::Metrics;
use observation::Observations;
use status::Managed;
use status::Retry;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What stops one reconcile: the error policy looks again (with backoff, or at the poll
/// interval for a deletion that waits). What stops `run` as a whole is the library's
/// [`crate::Error`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API server failed.
    #[error("{context}: {}", crate::kube_message(.source))]
    Kubernetes {
        context: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// An object's deletion cannot finish yet; the finalizer stays. `reason` is the metric's.
    #[error("{message}")]
    Cleanup { reason: status::Reason, message: String },
    /// kube-runtime's finalizer helper refused the object (no name, an invalid finalizer name):
    /// a bug of ours, not a state of the cluster.
    #[error("updating the finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A failed call to the Kubernetes API server: `context`, then [`crate::kube_message`].
    pub fn kube(context: impl Into<String>, e: kube::Error) -> Error {
        Error::Kubernetes {
            context: context.into(),
            source: Box::new(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// Where the operator's own key serves objects that no connection serves.
    pub operator_key: connections::OperatorKey,
    /// What deleting objects does in Sinch when nothing more specific says.
    pub deletion: Deletion,
}

/// The operator's deletion defaults (see `cleanup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// The policy of objects that name none and whose namespace names none.
    pub default_policy: crate::model::DeletionPolicy,
    /// What the deletion of a whole namespace does to its objects' Sinch side: by default they
    /// stay (a namespace deleted by mistake must not take production channels with it).
    pub on_namespace_deletion: crate::model::DeletionPolicy,
}

impl Default for Deletion {
    fn default() -> Deletion {
        Deletion {
            default_policy: crate::model::DeletionPolicy::Delete,
            on_namespace_deletion: crate::model::DeletionPolicy::Orphan,
        }
    }
}

/// The writers of the stores a [`Context`] reads.
pub struct Writers {
    pub apps: watches::AppWriter,
    pub templates: Writer<Template>,
    pub webhooks: watches::WebhookWriter,
    pub connections: Writer<SinchConnection>,
    pub claims: ledger::ClaimWriter,
    pub namespaces: Writer<PartialObjectMeta<Namespace>>,
}

/// What every reconcile shares.
pub struct Context {
    pub kube: kube::Client,
    /// What Sinch holds, read once per scope and poll interval for every object (rule 13).
    pub observations: Arc<Observations>,
    /// Which key and project each object reaches Sinch with (rule 12).
    pub tenancy: connections::Tenancy,
    pub deletion: Deletion,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// For the one-claim-per-(app, target) rule.
    pub webhooks: watches::WebhookStore,
    /// Who manages which Sinch object.
    pub ledger: ledger::Ledger,
    resync: Duration,
    min_poll_interval: Duration,
    /// Consecutive retryable failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Objects whose next reconcile reads their Sinch object back first.
    read_back: Mutex<HashSet<String>>,
    /// The last update sent for each object whose result is read back (a digest of its
    /// request) and when: the same update wanted again by the read-back is one Sinch did not
    /// keep (rule 14: no write loop).
    updates: Mutex<HashMap<String, (u64, Instant)>>,
    /// Keys the fingerprints of secret values recorded in statuses (see [`Context::salt`]).
    pub fingerprint_key: ring::hmac::Key,
    /// The uids of objects whose finalizer this process added and whose copy with it the watch
    /// has not brought yet.
    finalizing: Mutex<HashSet<String>>,
}

impl Context {
    /// The context of `run`, of the controller's tests and of `plan --from-cluster`, with the
    /// writers of the stores it reads (the watches fill them; the plan, from one list each).
    /// `credentials`: the operator's own key, `defaults` its project and region.
    pub fn new(
        settings: &Settings,
        kube: kube::Client,
        observations: Arc<Observations>,
        metrics: Arc<Metrics>,
        credentials: Option<Credentials>,
        defaults: Defaults,
        fingerprint_key: ring::hmac::Key,
    ) -> (Context, Writers) {
        let (apps, apps_writer) = watches::app_store();
        let (webhooks, webhooks_writer) = watches::webhook_store();
        let (connections, connections_writer) = reflector::store();
        let (claims, claims_writer) = ledger::claim_store();
        let (templates, templates_writer) = reflector::store();
        let (namespaces, namespaces_writer) = reflector::store();
        let reporter = Reporter {
            controller: "sinch-operator".into(),
            instance: Some(settings.identity.clone()),
        };
        let ctx = Context {
            recorder: Recorder::new(kube.clone(), reporter),
            observations,
            tenancy: connections::Tenancy {
                kube: kube.clone(),
                credentials,
                operator_key: settings.operator_key.clone(),
                defaults,
                operator_namespace: settings.operator_namespace.clone(),
                apps: apps.clone(),
                connections,
                namespaces,
                read: None,
                shared: Default::default(),
            },
            deletion: settings.deletion,
            metrics,
            ledger: ledger::Ledger::new(kube::Api::all(kube.clone()), claims, apps, templates),
            kube,
            webhooks,
            resync: settings.resync,
            min_poll_interval: settings.min_poll_interval,
            failures: Mutex::default(),
            read_back: Mutex::default(),
            updates: Mutex::default(),
            fingerprint_key,
            finalizing: Mutex::default(),
        };
        let writers = Writers {
            apps: apps_writer,
            templates: templates_writer,
            webhooks: webhooks_writer,
            connections: connections_writer,
            claims: claims_writer,
            namespaces: namespaces_writer,
        };
        (ctx, writers)
    }

    /// When to reconcile `obj` again. `observed`: when the oldest list its plan used was read;
    /// a poll is then due one interval after it, so that the objects of a scope come due
    /// together and one read serves them all.
    pub fn requeue<K: Managed>(&self, obj: &K, retry: Retry, observed: Option<Instant>) -> Action {
        let every = self.poll_interval(obj);
        match retry {
            Retry::Poll => {
                let due = observed
                    .and_then(|at| at.checked_add(every))
                    .map_or(every, |next| next.saturating_duration_since(Instant::now()));
                Action::requeue(due.max(Duration::from_secs(1)).saturating_add(spread(every)))
            }
            Retry::OnChange => Action::await_change(),
            Retry::ReadBack => {
                self.read_back.lock().expect("never poisoned").insert(key(obj));
                Action::requeue(jitter(SOON.min(every)))
            }
            // 1 s doubling up to the poll interval: the app's readiness also triggers the
            // webhook, but may come before the store shows it (then the next look, a second
            // later, finds it); a thousand webhooks waiting for an app that never becomes Ready
            // do not each look every second (a look that finds the same wait writes nothing).
            Retry::Wait => {
                let n = self.failed_again(obj);
                let wait = WAIT.saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)));
                Action::requeue(jitter(wait.min(every)))
            }
            Retry::Backoff => Action::requeue(jitter(backoff(self.failed_again(obj)))),
        }
    }

    /// The salt of an object's secret fingerprints: its uid, keyed with the operator's secret,
    /// so that whoever reads a status cannot test guesses against its `secretHashes`.
    pub fn salt(&self, uid: &str) -> String {
        let tag = ring::hmac::sign(&self.fingerprint_key, uid.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Counts one more consecutive failure (or wait) of `obj`; how many there were.
    fn failed_again<K: Managed>(&self, obj: &K) -> u32 {
        let mut failures = self.failures.lock().expect("never poisoned");
        let n = failures.entry(key(obj)).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// Whether this copy of the object `uid` (`finalized`: it has our finalizer) is as new as
    /// our last finalizer patch of it: false while the watch has not brought that patch.
    pub fn finalizer_known(&self, uid: &str, finalized: bool) -> bool {
        let mut finalizing = self.finalizing.lock().expect("never poisoned");
        match finalized {
            true => {
                finalizing.remove(uid);
                true
            }
            false => !finalizing.contains(uid),
        }
    }

    /// Records that the finalizer of the object `uid` was added (see [`Context::finalizer_known`]).
    pub fn finalizer_added(&self, uid: &str) {
        let mut finalizing = self.finalizing.lock().expect("never poisoned");
        // Objects deleted before the watch brought them leave an entry: bounded.
        if finalizing.len() >= 65_536 {
            finalizing.clear();
        }
        finalizing.insert(uid.to_string());
    }

    /// Whether `obj` has neither failed nor waited since its last success: a wait now is its
    /// first look.
    pub fn first_wait<K: Managed>(&self, obj: &K) -> bool {
        !self.failures.lock().expect("never poisoned").contains_key(&key(obj))
    }

    pub fn clear_failures<K: Managed>(&self, obj: &K) {
        self.failures.lock().expect("never poisoned").remove(&key(obj));
    }

    /// Whether `change` is the update last sent for `obj` less than a poll interval ago, wanted
    /// again by a plan since (the read-back's, or any before the interval passed): Sinch did not
    /// keep it, and it is not sent again before the interval passed. Asked of every plan: any
    /// other plan, or the interval's end, forgets the update.
    pub fn unkept<K: Managed>(&self, obj: &K, change: &Change) -> bool {
        let mut updates = self.updates.lock().expect("never poisoned");
        let key = key(obj);
        let unkept = updates
            .get(&key)
            .is_some_and(|(digest, at)| *digest == update_digest(change) && at.elapsed() < self.poll_interval(obj));
        if !unkept {
            updates.remove(&key);
        }
        unkept
    }

    /// Records `change`, an update of `obj` Sinch accepted, for the read-back to compare.
    pub fn updated<K: Managed>(&self, obj: &K, change: &Change) {
        let mut updates = self.updates.lock().expect("never poisoned");
        // Objects deleted before their next plan leave an entry: bounded, the stale ones go
        // (none older than the longest interval can match).
        if updates.len() >= 1024 {
            updates.retain(|_, (_, at)| at.elapsed() < MAX_POLL_INTERVAL);
        }
        updates.insert(key(obj), (update_digest(change), Instant::now()));
    }

    /// Whether this reconcile should read the object back (and forgets that it should).
    pub fn take_read_back<K: Managed>(&self, obj: &K) -> bool {
        self.read_back.lock().expect("never poisoned").remove(&key(obj))
    }

    /// A reconcile request of `obj` not handled yet (its annotation's new value): this
    /// reconcile reads the scope afresh and records it as handled.
    pub fn requested<K: Managed>(&self, obj: &K) -> Option<String> {
        let requested = crate::model::reconcile_requested(obj.meta())?;
        let handled = obj.sync_status().and_then(|s| s.last_handled_reconcile_at.as_deref());
        (handled != Some(requested)).then(|| requested.to_string())
    }

    /// How old a shared list may be for `obj`'s plan: three quarters of its poll interval.
    /// More than half, so that two groups of objects of one scope polling half an interval
    /// apart merge into one (each takes the other's read) instead of each reading the list
    /// just after the other's copy went stale: at one half, 200 apps read their list twice
    /// per interval.
    pub fn fresh_for<K: Managed>(&self, obj: &K) -> Duration {
        self.poll_interval(obj).mul_f64(0.75)
    }

    fn poll_interval<K: Managed>(&self, obj: &K) -> Duration {
        poll_interval(obj, self.resync, self.min_poll_interval)
    }
}

/// Per object: how often to re-read Sinch when nothing changes (`30s`, `5m`, `1h`).
pub const POLL_INTERVAL_ANNOTATION: &str = "conversation.sinch.com/poll-interval";

/// The longest poll interval, of the annotation and of the operator's flags. An object is
/// read at least daily, and every sum of an interval with an instant or a jitter stays far
/// from overflowing (a tenant's `10000000000000000000s` once panicked the reconcile).
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Polling interval of an object: its annotation, else the operator's. The annotation is
/// written by namespace users: it is raised to `floor`, so that no object makes the operator
/// read a whole project every second, and lowered to [`MAX_POLL_INTERVAL`].
pub fn poll_interval<K: Managed>(obj: &K, default: Duration, floor: Duration) -> Duration {
    obj.annotations()
        .get(POLL_INTERVAL_ANNOTATION)
        .and_then(|v| humantime::parse_duration(v).ok())
        .map_or(default, |d| d.max(floor))
        .min(MAX_POLL_INTERVAL)
}

/// What tells two updates apart: the request (secrets as placeholders) and the secrets' values.
fn update_digest(change: &Change) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&change.request).unwrap_or_default().hash(&mut h);
    change.secrets.iter().for_each(|s| s.fingerprint.hash(&mut h));
    h.finish()
}

fn key<K: Managed>(obj: &K) -> String {
    format!("{}/{}/{}", K::KIND, obj.namespace().unwrap_or_default(), obj.name_any())
}

/// How soon an object is looked at again after a write.
const SOON: Duration = Duration::from_secs(5);

/// The first look again of an object waiting for another (doubling at each look).
const WAIT: Duration = Duration::from_secs(1);

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
    every.div_f64(20.0).min(Duration::from_secs(5)).mul_f64(fastrand::f64())
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;
