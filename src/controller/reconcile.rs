//! One reconcile of one object, written as the `finalizer()` helper's Apply and Cleanup.
//!
//! Apply gathers what the engine needs from the cluster (credentials, the referenced Secrets,
//! a webhook's app), runs the same validate -> observe -> plan -> execute as `apply` on an input
//! of this one object, and reports the outcome as status, events and when to look again. No
//! rule of the engine is repeated here: the controller only chooses the input and reads the
//! plan.

use super::Context;
use super::cleanup::cleanup;
use super::connections::{self, Access};
use super::ledger::{self, Held};
use super::observation::View;
use super::report::{self, Written};
use super::report::{ids, is_drift, observe_only, publish, refused, warning, was_drifted};
use super::status::{self, Cond, Fields, Managed, Reason, Report};
use crate::engine::execute::{Status, execute};
use crate::engine::plan::{self, Action, Options, Plan};
use crate::engine::{self, Recorded, Scope, observe};
use crate::input::{Input, Secrets};
use crate::load::Document;
use crate::model::{AppOf, ManagementPolicy, Object, Webhook, WebhookApp};
use crate::render;
use crate::sinch::client::{self, Credentials};
use crate::sinch::error::Class;
use crate::validate;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Event;
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const FINALIZER: &str = "conversation.sinch.com/cleanup";

/// Per object: how often to re-read Sinch when nothing changes (`30s`, `5m`, `1h`).
pub const POLL_INTERVAL_ANNOTATION: &str = "conversation.sinch.com/poll-interval";

/// Bytes of a drift report in a condition or an event (an event's note holds at most 1 KiB).
const DRIFT_REPORT_LIMIT: usize = 800;

/// When to look at the object again after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// At the poll interval: all is well (or a wait that nothing will announce).
    Poll,
    /// With exponential backoff: a failure that may pass on its own.
    Backoff,
    /// Only when the object, or what it refers to, changes: retrying cannot help.
    OnChange,
    /// Soon after a write, to read back what Sinch made of it (an app's channel states, a
    /// template's new version) instead of showing the old for a whole poll interval.
    ReadBack,
    /// Soon, while waiting for another object (a webhook's app): its change also triggers a
    /// reconcile, but that trigger can arrive before the store shows the change, so look again
    /// (cheap: waiting reads no Sinch).
    Wait,
}

/// Why a reconcile cannot go on, as a person reads it in `Synced`.
#[derive(Debug)]
pub struct Blocked {
    pub reason: Reason,
    pub message: String,
    pub retry: Retry,
}

impl Blocked {
    pub fn new(reason: Reason, message: impl Into<String>, retry: Retry) -> Blocked {
        Blocked {
            reason,
            message: message.into(),
            retry,
        }
    }
}

/// The engine's input for one object, read from the cluster.
pub(super) struct Prepared {
    pub(super) input: Input,
    /// The object as planned: a webhook's `appRef` replaced by its app's id and placement.
    pub(super) resolved: Object,
    pub(super) access: Access,
}

pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> crate::Result<Requeue> {
    let started = std::time::Instant::now();
    let api: Api<K> = Api::namespaced(ctx.kube.clone(), &obj.namespace().unwrap_or_default());
    let label = obj.object().label();
    let uid = obj.meta().uid.clone().unwrap_or_default();
    // Every line logged meanwhile (each Sinch request) names the object it was for.
    let span = tracing::info_span!("reconcile", object = %label);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalize::Apply(obj) => apply(&api, &obj, &ctx).await,
            Finalize::Cleanup(obj) => {
                ctx.metrics.set_drifted(&uid, K::KIND, false);
                cleanup(&*obj, &ctx).await
            }
        }
    })
    .instrument(span)
    .await;
    ctx.metrics.reconciled(K::KIND, started.elapsed());
    use kube::runtime::finalizer::Error as F;
    match result {
        Ok(requeue) => Ok(requeue),
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
        Err(F::AddFinalizer(e) | F::RemoveFinalizer(e)) => Err(crate::Error::kube("updating the finalizer", &e)),
        Err(other) => Err(crate::Error::Kubernetes {
            context: "updating the finalizer".into(),
            message: other.to_string(),
        }),
    }
}

/// About a second: long enough for the watch to bring the object's latest version.
fn jitter_stale() -> Duration {
    Duration::from_millis(800 + fastrand::u64(..400))
}

async fn apply<K: Managed>(api: &Api<K>, obj: &K, ctx: &Context) -> crate::Result<Requeue> {
    let object = obj.object();
    let mut events = Vec::new();
    let (report, retry, observed) = match prepare(&object, ctx).await {
        Err(blocked) => {
            let (report, retry) = refused(obj, blocked, ctx, &mut events);
            (report, retry, None)
        }
        Ok(prepared) => converge(obj, &object, prepared, ctx, &mut events).await,
    };
    let drifted = report.drifted.as_ref().map_or_else(|| was_drifted(obj), |c| c.status);
    ctx.metrics
        .set_drifted(&obj.meta().uid.clone().unwrap_or_default(), K::KIND, drifted);
    status::write(api, obj, &report)
        .await
        .map_err(|e| crate::Error::kube(format!("writing the status of {}", object.label()), &e))?;
    publish(ctx, obj, events).await;
    Ok(ctx.requeue(obj, retry, observed))
}

/// Credentials, defaults, the app of a webhook and the referenced Secrets, then the offline
/// rules on the object as the CLI would read it.
pub(super) async fn prepare(object: &Object, ctx: &Context) -> Result<Prepared, Blocked> {
    let ns = object.namespace().to_string();
    let mut object = object.clone();
    if let Object::Webhook(w) = &mut object {
        resolve_app(w, ctx)?;
        check_claim(w, ctx)?;
    }
    let access = connections::access(&object, ctx).await?;

    let mut docs = Vec::new();
    let manifest = json!({
        "apiVersion": crate::model::API_VERSION,
        "kind": object.kind().name(),
        "metadata": {"name": object.name(), "namespace": ns},
        "spec": object.spec_value(),
    });
    docs.push(Document::from_value(&object.label(), manifest));
    // Secret name -> (the first field naming it, the keys the object uses).
    let mut names: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for (path, r) in object.secret_refs() {
        names
            .entry(r.name)
            .or_insert_with(|| (path, BTreeSet::new()))
            .1
            .insert(r.key);
    }
    let mut missing = Vec::new();
    for (name, (path, keys)) in names {
        match connections::get_secret(ctx, &ns, &name).await? {
            Some(secret) => {
                // Only the keys this object uses: one Secret may hold the tokens of a thousand
                // apps, and loading all of them for each app made every reconcile O(apps). All
                // of them when one is missing, so that the error can list what is there.
                let data = secret.data.unwrap_or_default();
                let data: BTreeMap<_, _> = match keys.iter().all(|k| data.contains_key(k)) {
                    true => data.into_iter().filter(|(k, _)| keys.contains(k)).collect(),
                    false => data,
                };
                let doc = json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": ns},
                    "data": data,
                });
                docs.push(Document::from_value(&format!("Secret {ns}/{name}"), doc));
            }
            None => missing.push(format!("Secret {ns}/{name} ({path})")),
        }
    }
    if !missing.is_empty() {
        return Err(Blocked::new(
            Reason::SecretNotFound,
            format!("waiting for {}: not found", missing.join(", ")),
            // Secrets are not watched (the operator may only get them): look again each poll.
            Retry::Poll,
        ));
    }
    let input = validate::validate(docs, Vec::new()).map_err(|report| {
        let lines: Vec<String> = report
            .0
            .into_iter()
            .map(|mut d| {
                d.file = None; // the object names itself; there is no file
                d.to_string()
            })
            .collect();
        Blocked::new(Reason::InvalidSpec, lines.join("; "), Retry::OnChange)
    })?;
    Ok(Prepared {
        input,
        resolved: object,
        access,
    })
}

/// A webhook with `appRef` is planned as one with the id, project and region of its app, once
/// the app is Ready; it uses the app's credentials unless it names its own.
fn resolve_app(w: &mut Webhook, ctx: &Context) -> Result<(), Blocked> {
    let AppOf::Object { namespace: ns, name } = w.app_of() else {
        return Ok(());
    };
    let (ns, name) = (ns.to_string(), name.to_string());
    let app = ctx.apps.get(&ObjectRef::new(&name).within(&ns)).ok_or_else(|| {
        Blocked::new(
            Reason::AppNotFound,
            format!("waiting for ConversationApp {ns}/{name} (spec.appRef): it does not exist"),
            Retry::Wait,
        )
    })?;
    let status = app.status.clone().unwrap_or_default();
    let ready = status.sync.conditions.iter().find(|c| c.type_ == "Ready");
    let (Some(id), Some(project), Some(region), Some("True")) = (
        status.app_id.clone(),
        status.sync.project_id.clone(),
        status.sync.region,
        ready.map(|c| c.status.as_str()),
    ) else {
        let why = ready.map_or("it has not been reconciled yet".to_string(), |c| c.message.clone());
        return Err(Blocked::new(
            Reason::AppNotReady,
            format!("waiting for ConversationApp {ns}/{name} to be Ready: {why}"),
            Retry::Wait,
        ));
    };
    w.spec.placement.credentials_ref = connections::credentials_ref(&Object::Webhook(w.clone()), ctx);
    if w.spec.placement.connection_ref.is_none() {
        w.spec.placement.connection_ref = app.spec.placement.connection_ref.clone();
    }
    w.spec.app = WebhookApp::AppId(id);
    w.spec.placement.project_id = Some(project);
    w.spec.placement.region = Some(region);
    Ok(())
}

/// Two Webhook objects claiming one (app, target): the oldest wins.
fn check_claim(w: &Webhook, ctx: &Context) -> Result<(), Blocked> {
    let WebhookApp::AppId(app) = &w.spec.app else {
        return Ok(());
    };
    let app_of = |other: &Webhook| match other.app_of() {
        AppOf::Id(id) => Some(id.to_string()),
        AppOf::Object { namespace, name } => ctx
            .apps
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|a| a.status.as_ref().and_then(|s| s.app_id.clone())),
    };
    let age = |o: &Webhook| (o.metadata.creation_timestamp.clone(), o.namespace(), o.name_any());
    let older = ctx
        .webhooks
        .state()
        .into_iter()
        .filter(|o| o.metadata.uid != w.metadata.uid && o.metadata.deletion_timestamp.is_none())
        .filter(|o| o.spec.target == w.spec.target && app_of(o).as_deref() == Some(app.as_str()))
        .filter(|o| age(o) < age(w))
        .min_by_key(|o| age(o));
    match older {
        None => Ok(()),
        Some(o) => Err(Blocked::new(
            Reason::Conflict,
            format!(
                "Webhook {}/{} already manages the webhook of app {app} with target {}; delete one of the two objects",
                o.namespace().unwrap_or_default(),
                o.name_any(),
                w.spec.target
            ),
            Retry::Poll,
        )),
    }
}

/// Plans this one object against the shared observation of its scope and, unless
/// `ObserveOnly`, carries the plan out; also when the lists it used were read.
async fn converge<K: Managed>(
    obj: &K,
    object: &Object,
    prepared: Prepared,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> (Report, Retry, Option<Instant>) {
    let view = ctx.observations.view(&prepared.access.credentials, ctx.fresh_for(obj));
    let (report, retry) = plan_and_execute(obj, object, &prepared, &view, ctx, events).await;
    (report, retry, view.observed_at())
}

async fn plan_and_execute<K: Managed>(
    obj: &K,
    object: &Object,
    prepared: &Prepared,
    view: &View<'_>,
    ctx: &Context,
    events: &mut Vec<Event>,
) -> (Report, Retry) {
    let Prepared {
        input,
        resolved,
        access,
    } = prepared;
    let credentials = &access.credentials;
    let (plan, live, scope) = match plan_one(obj, object, prepared, view, ctx, events).await {
        Ok(planned) => planned,
        Err(stopped) => return *stopped,
    };
    let Some(change) = plan.changes.first() else {
        return failed::<K>(ctx, Reason::CannotPlan, "the plan is empty".into(), Retry::OnChange);
    };
    let fields = Fields::of_scope(&scope);
    let policy = object.placement().management_policy.unwrap_or_default();
    let paused = is_paused(obj);
    // The claim first: nothing is written for an object that another one manages, and a
    // create is recorded in the ledger before it is sent.
    let me = owner(obj);
    let subject = subject(resolved, &scope);
    let held = match ledger::claim(
        &ctx.ledger,
        &me,
        &subject,
        change.id.as_deref(),
        policy == ManagementPolicy::Full && !paused,
        obj.recorded_id().as_deref(),
        obj.annotations().get(ledger::ADOPT_ANNOTATION).map(String::as_str),
    )
    .await
    {
        Ok(held) => held,
        Err(blocked) => return refused(obj, blocked, ctx, events),
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
        fields,
        ..Report::default()
    };
    if observing {
        observe_only(object, change, paused, drift.as_deref(), &mut report, events);
        if drift.is_none() && was_drifted(obj) {
            report.drifted = Some(Cond::no(Reason::InSync, "Sinch matches the spec again"));
        }
        return (report, Retry::Poll);
    }
    let status = write(&plan, credentials, &input.secrets, ctx).await;
    let id = match &status {
        Status::Done { id, .. } => id.clone().or_else(|| change.id.clone()),
        _ => change.id.clone(),
    };
    if let (Held::Creating, Status::Done { .. }, Some(id)) = (&held, &status, &id)
        && let Err(e) = ledger::created(&ctx.ledger, &me, &subject, id).await
    {
        // The key claim stays ours; the next reconcile claims the id from it.
        tracing::warn!(object = %object.label(), error = %crate::kube_message(&e), "cannot record the claim of a created object");
    }
    ids(object, &scope, id.as_deref(), &live, &mut report.fields);
    let written = Written {
        object,
        change,
        id: id.as_deref(),
        drift: drift.as_deref(),
        live: &live,
        scope: &scope,
    };
    report::outcome(obj, written, status, report, ctx, events)
}

/// The report of a reconcile that stops before writing: `reason`, counted.
fn failed<K: Managed>(ctx: &Context, reason: Reason, message: String, retry: Retry) -> (Report, Retry) {
    ctx.metrics.failed(K::KIND, reason.as_str());
    (
        Report {
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
    let fail = |reason: Reason, message: String, retry: Retry| Err(Box::new(failed::<K>(ctx, reason, message, retry)));
    let mut targets = match engine::targets(input, defaults) {
        Ok(t) => t,
        Err(e) => return fail(Reason::ProjectMissing, e.to_string(), Retry::OnChange),
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
        && let Err(blocked) = ledger::may_attach(ctx, object.namespace(), &scope, app).await
    {
        return Err(Box::new(refused(obj, blocked, ctx, events)));
    }
    if ctx.take_read_back(obj)
        && let Some(id) = obj.recorded_id()
    {
        ctx.observations.read_back(credentials, &scope, K::KIND, &id).await;
    }
    let live = observe::observe(view, &targets, false).await;
    let plan = plan::build(
        input,
        &targets,
        &live,
        &Options {
            salt: salt.clone(),
            ..Options::default()
        },
    );
    if let Some(e) = plan.errors.first() {
        // A failed read is retried as its class says; anything else needs a change of the spec.
        let (reason, retry) = match e.class {
            Some(Class::Retryable) => (Reason::SinchUnavailable, Retry::Backoff),
            Some(Class::Auth) => (Reason::CredentialsRefused, Retry::Poll),
            Some(Class::NotFound) => (Reason::ProjectNotFound, Retry::Poll),
            Some(Class::Terminal) => (Reason::ReadRefused, Retry::Poll),
            None => (Reason::CannotPlan, Retry::OnChange),
        };
        events.push(warning(reason, &e.message, "Plan"));
        let (mut report, retry) = failed::<K>(ctx, reason, e.message.clone(), retry);
        report.fields = Fields::of_scope(&scope);
        return Err(Box::new((report, retry)));
    }
    Ok((plan, live, scope))
}

/// The object as the ledger names owners.
pub(super) fn owner<K: Managed>(obj: &K) -> ledger::Owner {
    ledger::Owner {
        kind: K::KIND,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.meta().uid.clone().unwrap_or_default(),
    }
}

/// The Sinch object `resolved` stands for, by its natural key.
pub(super) fn subject(resolved: &Object, scope: &Scope) -> ledger::Subject {
    let key = match resolved {
        Object::ConversationApp(a) => a.spec.display_name.clone(),
        Object::Webhook(w) => match &w.spec.app {
            WebhookApp::AppId(app) => format!("{app}/{}", w.spec.target),
            WebhookApp::AppRef(r) => format!("{}/{}", r.name, w.spec.target), // resolved before
        },
        Object::Template(t) => t.spec.id(resolved.name()),
        Object::ProjectSettings(_) => scope.project.clone(),
    };
    ledger::Subject {
        scope: scope.clone(),
        kind: resolved.kind(),
        key,
    }
}

/// Carries out a one-change plan and lays what was written over the shared observation.
pub(super) async fn write(plan: &Plan, credentials: &Credentials, secrets: &Secrets, ctx: &Context) -> Status {
    let client = ctx.observations.client();
    let outcome = client::Reason::Write
        .scope(execute(plan, client, credentials, secrets, &|_, _| {}))
        .await;
    let status = outcome
        .into_iter()
        .next()
        .map(|o| o.status)
        .unwrap_or(Status::Unchanged);
    if let Some(change) = plan.changes.first() {
        ctx.observations.written(credentials, change, &status).await;
    }
    status
}

pub(super) fn is_paused<K: Managed>(obj: &K) -> bool {
    crate::model::is_paused(obj.meta())
}

/// The error policy: a reconcile that could not even write its status (the API server failed)
/// tries again with backoff.
pub fn error_policy<K: Managed>(obj: Arc<K>, error: &crate::Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(object = %obj.object().label(), %error, "reconcile failed");
    let reason = match error {
        crate::Error::Cleanup { reason, .. } => reason,
        _ => "KubernetesError",
    };
    ctx.metrics.failed(K::KIND, reason);
    ctx.requeue(&*obj, Retry::Backoff, None)
}

/// Polling interval of an object: its annotation, else the operator's. The annotation is
/// written by namespace users: it is raised to `floor`, so that no object makes the operator
/// read a whole project every second.
pub fn poll_interval<K: Managed>(obj: &K, default: Duration, floor: Duration) -> Duration {
    obj.annotations()
        .get(POLL_INTERVAL_ANNOTATION)
        .and_then(|v| humantime::parse_duration(v).ok())
        .map_or(default, |d| d.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConversationApp;

    #[test]
    fn the_poll_interval_annotation_wins_when_it_parses_but_never_goes_under_the_floor() {
        let mut app: ConversationApp = serde_json::from_value(json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
            "metadata": {"name": "a", "annotations": {POLL_INTERVAL_ANNOTATION: "30s"}},
            "spec": {"displayName": "A"}
        }))
        .unwrap();
        let floor = Duration::from_secs(10);
        assert_eq!(
            poll_interval(&app, Duration::from_secs(600), floor),
            Duration::from_secs(30)
        );
        app.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(POLL_INTERVAL_ANNOTATION.into(), "soon".into());
        assert_eq!(
            poll_interval(&app, Duration::from_secs(600), floor),
            Duration::from_secs(600)
        );
        for short in ["1s", "0s", "100ms"] {
            app.metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert(POLL_INTERVAL_ANNOTATION.into(), short.into());
            assert_eq!(poll_interval(&app, Duration::from_secs(600), floor), floor, "{short}");
        }
    }
}
