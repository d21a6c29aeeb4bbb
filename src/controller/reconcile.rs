//! One reconcile of one object, written as the `finalizer()` helper's Apply and Cleanup.
//!
//! Apply is two halves. [`decide`] writes nothing: it gathers what the engine needs from the
//! cluster (credentials, the referenced Secrets, a webhook's app), runs the same validate ->
//! observe -> plan as `apply` on an input of this one object and takes the claim; its
//! [`Decision`] is also what `plan --from-cluster` shows. [`write`] then sends the change and
//! reports the outcome; status, events and when to look again are applied in `apply` alone. No
//! rule of the engine is repeated here: the controller only chooses the input and reads the
//! plan.

use super::Context;
use super::cleanup::cleanup;
use super::ledger::{self, Held, owner, subject};
use super::observation::View;
use super::prepare::{Prepared, prepare};
use super::report::{self, Written};
use super::report::{ids, is_drift, observe_only, publish, refused, warning, was_drifted};
use super::status::{self, Cond, Fields, Managed, Reason, Report, Retry};
use crate::engine::execute::Fate;
use crate::engine::plan::{self, Action, Options, Plan};
use crate::engine::{self, Recorded, Scope, observe};
use crate::model::{Kind, ManagementPolicy, Object, WebhookApp};
use crate::render;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Event;
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const FINALIZER: &str = "conversation.sinch.com/cleanup";

/// Why an object has no project, as the controller says it.
pub const NO_PROJECT: &str = "no project: spec.projectId is not set, and neither its SinchConnection, its credentialsRef Secret nor the operator's SINCH_PROJECT_ID names one";

/// Bytes of a drift report in a condition or an event (an event's note holds at most 1 KiB).
const DRIFT_REPORT_LIMIT: usize = 800;

pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> super::Result<Requeue> {
    let started = std::time::Instant::now();
    let api: Api<K> = Api::namespaced(ctx.kube.clone(), &obj.namespace().unwrap_or_default());
    let label = obj.object().label();
    let uid = obj.meta().uid.clone().unwrap_or_default();
    // Our finalizer patch is not in this copy of the object yet (another trigger, such as a
    // webhook's app becoming Ready, came before the watch brought it): the patch would be
    // refused as stale, one more write for the API server. The watch brings the object, and a
    // reconcile with it.
    let finalized = obj.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = obj.meta().deletion_timestamp.is_some();
    if !ctx.finalizer_known(&uid, finalized) && !deleting {
        tracing::debug!(object = %label, "waiting for the watch to bring our finalizer");
        return Ok(Requeue::requeue(jitter_stale()));
    }
    // Every line logged meanwhile (each Sinch request) names the object it was for.
    let span = tracing::info_span!("reconcile", object = %label);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalize::Apply(obj) => apply(&api, &obj, &ctx).await,
            Finalize::Cleanup(obj) => {
                ctx.metrics.set_drifted(&uid, K::KIND, false);
                ctx.metrics.set_object(&uid, None);
                cleanup(&*obj, &ctx).await
            }
        }
    })
    .instrument(span)
    .await;
    ctx.metrics.reconciled(K::KIND, started.elapsed());
    use kube::runtime::finalizer::Error as F;
    match result {
        Ok(requeue) => {
            if !finalized && !deleting {
                ctx.finalizer_added(&uid);
            }
            Ok(requeue)
        }
        // The finalizer patch tests the list it changes: refused, our copy of the object is
        // older than the server's (the watch has not yet brought our own write). Not a failure:
        // look again once the watch has caught up.
        Err(F::AddFinalizer(kube::Error::Api(e)) | F::RemoveFinalizer(kube::Error::Api(e)))
            if e.code == 409 || e.code == 422 =>
        {
            tracing::debug!(object = %label, code = e.code, "the finalizer patch met a newer object");
            Ok(Requeue::requeue(jitter_stale()))
        }
        Err(F::ApplyFailed(e) | F::CleanupFailed(e)) => Err(e),
        Err(F::AddFinalizer(e) | F::RemoveFinalizer(e)) => Err(super::Error::kube("updating the finalizer", e)),
        Err(other) => Err(super::Error::Finalizer(other.to_string())),
    }
}

/// About a second: long enough for the watch to bring the object's latest version.
fn jitter_stale() -> Duration {
    Duration::from_millis(fastrand::u64(800..1200))
}

async fn apply<K: Managed>(api: &Api<K>, obj: &K, ctx: &Context) -> super::Result<Requeue> {
    let object = obj.object();
    let mut events = Vec::new();
    // Asked for by the annotation: what Sinch holds now, not the shared list of a while ago.
    let requested = ctx.requested(obj);
    let max_age = match requested {
        Some(_) => Duration::ZERO,
        None => ctx.fresh_for(obj),
    };
    let Decided {
        decision,
        known,
        observed,
    } = decide(obj, &object, max_age, ctx, &mut events).await;
    let (mut report, retry) = match decision {
        Decision::Stop(report, retry) => (*report, retry),
        Decision::Observe(planned) => (planned.report, Retry::Poll),
        Decision::Write(planned) => write(obj, &object, *planned, ctx, &mut events).await,
    };
    // The report's effects, applied here alone: the failure metric and the backoff.
    if let Some(reason) = report.failure {
        ctx.metrics.failed(K::KIND, reason);
    }
    if report.settled {
        ctx.clear_failures(obj);
    }
    // Handled, whatever came of it (as Flux records `lastHandledReconcileAt`).
    report.fields.handled_request = requested;
    report.scrub(&known);
    for event in &mut events {
        event.note = event.note.as_deref().map(|n| known.scrub(n));
    }
    let drifted = report.drifted.as_ref().map_or_else(|| was_drifted(obj), |c| c.status);
    let uid = obj.meta().uid.clone().unwrap_or_default();
    ctx.metrics.set_drifted(&uid, K::KIND, drifted);
    let state = match quiet_wait(obj, &report, retry, ctx) {
        true => status::state_after(obj, &report),
        false => status::write(api, obj, &report)
            .await
            .map_err(|e| super::Error::kube(format!("writing the status of {}", object.label()), e))?,
    };
    ctx.metrics.set_object(&uid, Some(state));
    publish(ctx, obj, events).await;
    Ok(ctx.requeue(obj, retry, observed))
}

/// Whether a webhook waiting for its app leaves its status as it is. While the app is being
/// created (no `Synced=False`) the wait is not written at all: the app's status shows its
/// progress, and its readiness brings the webhook back at once (each wait written was one more
/// write per webhook for the API server). An app that does not exist, or failed, is written
/// once the wait has lasted one look, and once per reason: a look that finds the same wait
/// again writes nothing, even if the app's own message changed (the app's conditions say
/// that). A reconcile request is always answered.
fn quiet_wait<K: Managed>(obj: &K, report: &Report, retry: Retry, ctx: &Context) -> bool {
    let Some(reason) = report.synced.as_ref().map(|c| c.reason).filter(|r| report::is_wait(*r)) else {
        return false;
    };
    retry == Retry::Wait
        && report.fields.handled_request.is_none()
        && (report.quiet || report::has_synced_reason(obj, reason) || ctx.first_wait(obj))
}

/// What a reconcile decided before writing anything to Sinch, and what it must scrub.
pub struct Decided {
    pub decision: Decision,
    /// What must not reach the status, an event or output: the keys and the object's Secret
    /// values.
    pub known: crate::scrub::Known,
    /// When the oldest list its plan used was read.
    pub observed: Option<Instant>,
}

pub enum Decision {
    /// Refused or not plannable: the report, and when to look again.
    Stop(Box<Report>, Retry),
    /// Paused or ObserveOnly: what was found, reported (`report`); nothing is written.
    Observe(Box<Planned>),
    /// The change to carry out.
    Write(Box<Planned>),
}

/// The object's plan, claimed.
pub struct Planned {
    pub prepared: Prepared,
    /// One change: the object's.
    pub plan: Plan,
    pub live: observe::Live,
    pub scope: Scope,
    pub held: Held,
    /// Drift found (the report of the fields), when the change sets Sinch back.
    pub drift: Option<String>,
    /// The report so far: the scope's fields (and, observed only, what was found).
    pub report: Report,
}

impl Planned {
    pub fn change(&self) -> &plan::Change {
        self.plan.changes.first().expect("planned: one change")
    }
}

/// Prepares, plans against the shared observation of the object's scope (lists at most
/// `max_age` old) and claims: everything of a reconcile but the writes (to Sinch, the status,
/// events). `plan --from-cluster` asks it too, with a ledger that runs dry.
pub async fn decide<K: Managed>(
    obj: &K,
    object: &Object,
    max_age: Duration,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> Decided {
    let mut known = crate::scrub::Known::default();
    if let Some(c) = &ctx.tenancy.credentials {
        known.add_key(c);
    }
    let prepared = match prepare(object, ctx).await {
        Ok(prepared) => prepared,
        Err(blocked) => {
            let (report, retry) = refused(obj, blocked, events);
            return Decided {
                decision: Decision::Stop(Box::new(report), retry),
                known,
                observed: None,
            };
        }
    };
    known.extend(&prepared.input.secrets.known());
    known.add_key(&prepared.access.credentials);
    // The view borrows the key while the plan takes the prepared input.
    let credentials = prepared.access.credentials.clone();
    let view = ctx.observations.view(&credentials, max_age);
    let decision = plan_and_claim(obj, object, prepared, &view, ctx, events).await;
    Decided {
        decision,
        known,
        observed: view.observed_at(),
    }
}

async fn plan_and_claim<K: Managed>(
    obj: &K,
    object: &Object,
    prepared: Prepared,
    view: &View<'_>,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> Decision {
    let (plan, live, scope) = match plan_one(obj, object, &prepared, view, ctx, events).await {
        Ok(planned) => planned,
        Err(stopped) => return Decision::Stop(Box::new(stopped.0), stopped.1),
    };
    let Some(change) = plan.changes.first() else {
        let (report, retry) = failed(Reason::CannotPlan, "the plan is empty".into(), Retry::OnChange);
        return Decision::Stop(Box::new(report), retry);
    };
    let policy = object.placement().management_policy.unwrap_or_default();
    let paused = crate::model::is_paused(obj.meta());
    // The claim first: nothing is written for an object that another one manages, and a
    // create is recorded in the ledger before it is sent.
    let held = match ledger::claim(
        &ctx.ledger,
        &owner(obj),
        &subject(&prepared.resolved, &scope),
        change.id.as_deref(),
        policy == ManagementPolicy::Full && !paused,
        obj.recorded_id().as_deref(),
        obj.annotations().get(ledger::ADOPT_ANNOTATION).map(String::as_str),
    )
    .await
    {
        Ok(held) => held,
        Err(blocked) => {
            let (report, retry) = refused(obj, blocked, events);
            return Decision::Stop(Box::new(report), retry);
        }
    };
    // A Secret rotated in the cluster is a change of ours, not drift in Sinch.
    let recorded = obj.sync_status().map(|s| &s.secret_hashes);
    let rotated = change.secrets.iter().any(|slot| {
        recorded
            .and_then(|r| r.get(&slot.pointer))
            .is_some_and(|h| *h != slot.fingerprint)
    });
    let observing = policy == ManagementPolicy::ObserveOnly || paused;
    // Drift: Sinch changed under a spec it matched. An object only observed drifts whenever
    // Sinch differs from its spec (nothing of ours will make them meet).
    let drift = (change.action == Action::Update && !rotated && (observing || is_drift(obj)))
        .then(|| render::text::drift_report(change, DRIFT_REPORT_LIMIT));
    if drift.is_some() && !was_drifted(obj) {
        ctx.metrics.drift(K::KIND);
    }
    let mut report = Report {
        fields: Fields::of_scope(&scope),
        ..Report::default()
    };
    if observing {
        observe_only(object, change, paused, drift.as_deref(), &mut report, events);
        match held {
            Held::Unclaimed => {
                report.fields.id = Some(None);
                report.fields.observed_id = Some(change.id.clone());
            }
            _ => report.fields.observed_id = Some(None),
        }
        if drift.is_none() && was_drifted(obj) {
            report.drifted = Some(Cond::no(Reason::InSync, "Sinch matches the spec again"));
        }
    }
    let planned = Box::new(Planned {
        prepared,
        plan,
        live,
        scope,
        held,
        drift,
        report,
    });
    match observing {
        true => Decision::Observe(planned),
        false => Decision::Write(planned),
    }
}

/// Carries out the planned change (unless Sinch did not keep the same update a moment ago) and
/// reports the outcome.
async fn write<K: Managed>(
    obj: &K,
    object: &Object,
    planned: Planned,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> (Report, Retry) {
    let change = planned.change();
    let (prepared, scope, live) = (&planned.prepared, &planned.scope, &planned.live);
    let mut report = planned.report.clone();
    // Asked of every plan, so that what the last write left is compared once.
    let unkept = ctx.unkept(obj, change);
    if change.action == Action::Update && unkept {
        return report::not_converging(obj, &change.fields, report, events);
    }
    let salt = ctx.salt(&obj.meta().uid.clone().unwrap_or_default());
    let credentials = &prepared.access.credentials;
    let status = ctx
        .observations
        .write(&planned.plan, &salt, credentials, &prepared.input.secrets)
        .await;
    // Only a create learns its id from Sinch's answer (execute keeps an update's own).
    let id = match &status {
        Fate::Done { id, .. } if change.id.is_none() => id.clone(),
        _ => change.id.clone(),
    };
    if let (Held::Creating, Fate::Done { .. }, Some(id)) = (&planned.held, &status, &id) {
        let subject = subject(&prepared.resolved, scope);
        if let Err(e) = ledger::created(&ctx.ledger, &owner(obj), &subject, id).await {
            // The key claim stays ours; the next reconcile claims the id from it.
            tracing::warn!(object = %object.label(), error = %crate::kube_message(&e), "cannot record the claim of a created object");
        }
    }
    // A create's answer is the whole new object, with what Sinch set (a template's version,
    // the channels' states) that no read before it could know.
    let created = matches!(status, Fate::Done { .. }) && change.action == Action::Create;
    let answer = match &status {
        Fate::Done { answer, .. } if created => answer.as_ref(),
        _ => None,
    };
    let mut app = report::app_after(live, scope, id.as_deref(), answer);
    // A new app's channels are PENDING while Sinch checks their credentials: read it back at
    // once, so that the one status write of the create shows what Sinch decided when it has
    // (the read-back of a few seconds later, and its second status write, only if not).
    let mut settled = false;
    if created
        && object.kind() == Kind::ConversationApp
        && let Some(id) = &id
        && app.as_ref().is_some_and(|a| report::pending(&report::channels(a)))
        && let Some(read) = ctx.observations.read_back(credentials, scope, K::KIND, id, true).await
    {
        settled = !report::pending(&report::channels(&read));
        app = Some(read);
    }
    ids(
        object,
        scope,
        id.as_deref(),
        live,
        answer,
        app.as_ref(),
        &mut report.fields,
    );
    let written = Written {
        object,
        change,
        id: id.as_deref(),
        drift: planned.drift.as_deref(),
        app: app.as_ref(),
    };
    let (report, mut retry) = report::outcome(obj, written, status, report, events);
    if settled && retry == Retry::ReadBack {
        retry = Retry::Poll;
    }
    if retry == Retry::ReadBack && change.action == Action::Update {
        ctx.updated(obj, change);
    }
    (report, retry)
}

/// The report of a reconcile that stops before writing: `reason`, counted.
fn failed(reason: Reason, message: String, retry: Retry) -> (Report, Retry) {
    (
        Report {
            failure: Some(reason),
            synced: Some(Cond::no(reason, message)),
            ..Report::default()
        },
        retry,
    )
}

/// The object's plan against the shared observation: its one change, what was read, its scope;
/// or the report of why there is none.
async fn plan_one<K: Managed>(
    obj: &K,
    object: &Object,
    prepared: &Prepared,
    view: &View<'_>,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> Result<(Plan, observe::Live, Scope), Box<(Report, Retry)>> {
    let Prepared {
        input,
        resolved,
        access,
    } = prepared;
    let (defaults, credentials) = (&access.defaults, &access.credentials);
    let fail = |reason: Reason, message: String, retry: Retry| Err(Box::new(failed(reason, message, retry)));
    let mut targets = match engine::targets(input, defaults) {
        Ok(t) => t,
        Err(_) => return fail(Reason::ProjectMissing, NO_PROJECT.into(), Retry::OnChange),
    };
    let uid = obj.meta().uid.clone().unwrap_or_default();
    let salt = ctx.salt(&uid);
    for t in &mut targets {
        t.recorded = Recorded {
            id: obj.recorded_id(),
            secret_hashes: obj.sync_status().map(|s| s.secret_hashes.clone()).unwrap_or_default(),
            legacy_salt: Some(uid.clone()),
        };
    }
    let Some(scope) = targets.first().map(|t| t.scope.clone()) else {
        return fail(Reason::InvalidSpec, "nothing to reconcile".into(), Retry::OnChange);
    };
    // A webhook reads and writes within its app only if its namespace manages that app.
    if let Object::Webhook(w) = resolved
        && let WebhookApp::AppId(app) = &w.spec.app
        && let Err(blocked) = ledger::may_attach(&ctx.ledger, object.namespace(), &scope, app).await
    {
        return Err(Box::new(refused(obj, blocked, events)));
    }
    if ctx.take_read_back(obj)
        && let Some(id) = obj.recorded_id()
    {
        ctx.observations
            .read_back(credentials, &scope, K::KIND, &id, false)
            .await;
    }
    let live = observe::observe(view, &targets, false).await;
    let plan = plan::build(
        input,
        &targets,
        &live,
        &Options {
            salt: salt.clone(),
            tenant: true,
            ..Options::default()
        },
    );
    if let Some(e) = plan.errors.first() {
        // A failed read is retried as its class says; anything else needs a change of the spec.
        let (reason, retry) = e.class.map_or((Reason::CannotPlan, Retry::OnChange), Reason::of_read);
        events.push(warning(reason, &e.message, "Plan"));
        let (mut report, retry) = failed(reason, e.message.clone(), retry);
        report.fields = Fields::of_scope(&scope);
        return Err(Box::new((report, retry)));
    }
    Ok((plan, live, scope))
}

/// The error policy: a reconcile that could not even write its status (the API server failed)
/// tries again with backoff.
pub fn error_policy<K: Managed>(obj: Arc<K>, error: &super::Error, ctx: Arc<Context>) -> Requeue {
    // A paused deletion waits, as asked: no failure, no backoff; looked at each poll interval.
    if let super::Error::Cleanup {
        reason: Reason::Paused, ..
    } = error
    {
        tracing::info!(object = %obj.object().label(), "the deletion waits while the object is paused");
        return ctx.requeue(&*obj, Retry::Poll, None);
    }
    tracing::warn!(object = %obj.object().label(), %error, "reconcile failed");
    let reason = match error {
        super::Error::Cleanup { reason, .. } => *reason,
        _ => Reason::KubernetesError,
    };
    ctx.metrics.failed(K::KIND, reason);
    ctx.requeue(&*obj, Retry::Backoff, None)
}
