//! `/metrics` (Prometheus text format), `/healthz` and `/readyz`.

use super::observation::Observations;
use super::status::Reason;
use crate::model::Kind;
use crate::sinch::client::RequestCounter;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeletionLabels {
    pub kind: String,
    /// `deleted` (in Sinch) or `kept` (the Sinch side stays: orphaned).
    pub outcome: String,
}

type DurationFamily = Family<KindLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: DurationFamily,
    drift: Family<KindLabel, Counter>,
    drifted: Family<KindLabel, Gauge>,
    deletions: Family<DeletionLabels, Counter>,
    /// The objects (by uid) counted in `drifted`.
    drifted_objects: Mutex<HashMap<String, Kind>>,
    /// Each object's conditions as last reconciled (by uid), counted at each scrape.
    objects: Arc<Mutex<HashMap<String, ObjectState>>>,
    /// Counted by the Sinch client.
    pub sinch_requests: RequestCounter,
    /// 1 while this replica holds the Lease and reconciles.
    pub leader: Gauge,
    /// Set once the controllers may start (the API server answered).
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(None)
    }
}

/// `observation_age_seconds{project, region, list}`, computed at each scrape.
#[derive(Debug)]
struct Ages(Arc<Observations>);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgeLabels {
    project: String,
    region: String,
    list: String,
}

impl Collector for Ages {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "observation_age_seconds",
            "Age of the oldest list held of each scope's shared observation of Sinch, by list (apps, templates, settings, webhooks)",
            None,
            MetricType::Gauge,
        )?;
        for (scope, list, age) in self.0.ages() {
            let labels = AgeLabels {
                project: scope.project,
                region: scope.region.as_str().into(),
                list: list.into(),
            };
            ConstGauge::new(age.as_secs_f64()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// What `objects{kind, ready, synced, reason}` counts of one object: its `Ready` and `Synced`
/// status (`True`, `False`, `Unknown` when it has none yet) and the `Synced` reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectState {
    pub kind: String,
    pub ready: String,
    pub synced: String,
    pub reason: String,
}

/// `objects{kind, ready, synced, reason}`, counted from the map at each scrape: a series exists
/// only while an object is in that state, so an alert reads "objects stuck by reason" directly.
#[derive(Debug)]
struct Objects(Arc<Mutex<HashMap<String, ObjectState>>>);

impl Collector for Objects {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut counts: BTreeMap<(&str, &str, &str, &str), i64> = BTreeMap::new();
        let objects = self.0.lock().expect("never poisoned");
        for o in objects.values() {
            let n = counts.entry((&o.kind, &o.ready, &o.synced, &o.reason)).or_default();
            *n = n.saturating_add(1);
        }
        let mut family = encoder.encode_descriptor(
            "objects",
            "Objects by kind, their Ready and Synced status (True, False, Unknown) and Synced reason",
            None,
            MetricType::Gauge,
        )?;
        for ((kind, ready, synced, reason), n) in counts {
            let labels = ObjectState {
                kind: kind.into(),
                ready: ready.into(),
                synced: synced.into(),
                reason: reason.into(),
            };
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// With `observations`, `/metrics` also shows the age of each scope's observation.
    pub fn new(observations: Option<Arc<Observations>>) -> Self {
        let mut registry = Registry::with_prefix("sinch_operator");
        let reconciles = Family::<KindLabel, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations: DurationFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        let drift = Family::<KindLabel, Counter>::default();
        let drifted = Family::<KindLabel, Gauge>::default();
        let deletions = Family::<DeletionLabels, Counter>::default();
        let sinch_requests = RequestCounter::default();
        let leader = Gauge::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that did not converge, by kind and the reason their Synced condition gives",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            durations.clone(),
        );
        registry.register(
            "drift_detected",
            "Drift found: an object's Sinch side changed while its spec did not (or, observed only, began to differ from it), by kind",
            drift.clone(),
        );
        registry.register(
            "drifted_objects",
            "Objects whose Sinch side differs from their spec and was not set back (ObserveOnly, paused, or the revert failed), by kind",
            drifted.clone(),
        );
        registry.register(
            "deletions",
            "Objects deleted, by kind and what became of their Sinch side (deleted, or kept: orphaned)",
            deletions.clone(),
        );
        registry.register(
            "sinch_requests",
            "Requests sent to Sinch, by method, route, HTTP status (error: no answer) and reason (poll, read-back, write)",
            sinch_requests.clone(),
        );
        registry.register("leader", "1 while this replica holds the leader Lease", leader.clone());
        // At 0 from the start: a family with no series is not exposed at all, and `increase()`
        // misses the first count of a series that appears with it.
        for k in Kind::ALL {
            let _ = drift.get_or_create(&kind(k));
            for outcome in ["deleted", "kept"] {
                let _ = deletions.get_or_create(&DeletionLabels {
                    kind: k.name().into(),
                    outcome: outcome.into(),
                });
            }
        }
        let objects = Arc::<Mutex<HashMap<String, ObjectState>>>::default();
        registry.register_collector(Box::new(Objects(objects.clone())));
        if let Some(o) = observations {
            registry.register_collector(Box::new(Ages(o)));
        }
        Metrics {
            registry,
            reconciles,
            errors,
            durations,
            drift,
            drifted,
            deletions,
            drifted_objects: Mutex::default(),
            objects,
            sinch_requests,
            leader,
            ready: AtomicBool::new(false),
        }
    }
}

fn kind(k: Kind) -> KindLabel {
    KindLabel { kind: k.name().into() }
}

impl Metrics {
    pub fn reconciled(&self, k: Kind, took: Duration) {
        self.reconciles.get_or_create(&kind(k)).inc();
        self.durations.get_or_create(&kind(k)).observe(took.as_secs_f64());
    }

    pub fn failed(&self, k: Kind, reason: Reason) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: k.name().into(),
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// An object deleted: its Sinch side `deleted` too, or `kept`.
    pub fn deletion(&self, k: Kind, deleted: bool) {
        let outcome = if deleted { "deleted" } else { "kept" };
        self.deletions
            .get_or_create(&DeletionLabels {
                kind: k.name().into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn drift(&self, k: Kind) {
        self.drift.get_or_create(&kind(k)).inc();
    }

    /// Whether the object with `uid` is drifted now (its `Drifted` condition).
    pub fn set_drifted(&self, uid: &str, k: Kind, drifted: bool) {
        let mut objects = self.drifted_objects.lock().expect("never poisoned");
        let changed = match drifted {
            true => objects.insert(uid.to_string(), k).is_none(),
            false => objects.remove(uid).is_some(),
        };
        // Created at the first object of a kind, so that the series shows 0 rather than nothing.
        let gauge = self.drifted.get_or_create(&kind(k));
        if changed {
            if drifted {
                gauge.inc()
            } else {
                gauge.dec()
            };
        }
    }

    /// The object with `uid` in `state` now (its conditions as just reconciled); `None`: it is
    /// gone (deleted), no longer counted.
    pub fn set_object(&self, uid: &str, state: Option<ObjectState>) {
        let mut objects = self.objects.lock().expect("never poisoned");
        match state {
            Some(s) => objects.insert(uid.to_string(), s),
            None => objects.remove(uid),
        };
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The HTTP routes of the operator's own port.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(metrics)
}

async fn serve_metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

async fn ready(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_series() {
        let m = Metrics::default();
        m.reconciled(Kind::Webhook, Duration::from_millis(20));
        m.failed(Kind::Webhook, Reason::AppNotReady);
        m.drift(Kind::ConversationApp);
        m.set_drifted("uid-1", Kind::Template, true);
        m.set_drifted("uid-2", Kind::Template, true);
        m.set_drifted("uid-1", Kind::Template, true);
        m.set_drifted("uid-2", Kind::Template, false);
        let state = |synced: &str, reason: &str| ObjectState {
            kind: "Template".into(),
            ready: "True".into(),
            synced: synced.into(),
            reason: reason.into(),
        };
        m.set_object("uid-1", Some(state("False", "Paused")));
        m.set_object("uid-2", Some(state("False", "Paused")));
        m.set_object("uid-3", Some(state("True", "ReconcileSuccess")));
        m.set_object("uid-3", None);
        m.sinch_requests
            .get_or_create(&crate::sinch::client::RequestLabels {
                method: "PATCH".into(),
                route: "/v1/projects/{project_id}/apps/{app_id}".into(),
                status: "200".into(),
                reason: "write".into(),
            })
            .inc();
        let text = m.render();
        for line in [
            "sinch_operator_reconciles_total{kind=\"Webhook\"} 1",
            "sinch_operator_reconcile_errors_total{kind=\"Webhook\",reason=\"AppNotReady\"} 1",
            "sinch_operator_drift_detected_total{kind=\"ConversationApp\"} 1",
            "sinch_operator_drifted_objects{kind=\"Template\"} 1",
            "sinch_operator_sinch_requests_total{method=\"PATCH\",route=\"/v1/projects/{project_id}/apps/{app_id}\",status=\"200\",reason=\"write\"} 1",
            "sinch_operator_reconcile_duration_seconds_count{kind=\"Webhook\"} 1",
            "sinch_operator_leader 0",
            "sinch_operator_objects{kind=\"Template\",ready=\"True\",synced=\"False\",reason=\"Paused\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("ReconcileSuccess"),
            "a deleted object's series is gone:\n{text}"
        );
    }
}
