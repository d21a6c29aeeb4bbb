//! What a reconcile reports on the object: the `Ready` and `Synced` conditions, the Sinch ids,
//! written with server-side apply under the status field manager.
//!
//! `Ready`: the object exists in Sinch (and, for an app, no channel is failing). `Synced`: the
//! last reconcile succeeded and Sinch matches the spec. `Drifted` (once drift was first found):
//! True while Sinch differs from a spec it matched before and nothing set it back, False after;
//! its message is the field-by-field report of the last drift. A condition's `lastTransitionTime` moves
//! only when its status does: a time written on every reconcile would trigger the next one.

use super::metrics::ObjectState;
use crate::model::{
    ChannelStatus, CondType, ConversationApp, ConversationAppStatus, Kind, Object, ProjectSettings,
    ProjectSettingsStatus, Region, SyncStatus, Template, TemplateStatus, Webhook, WebhookStatus,
};
use crate::sinch::error::Class;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Field manager of the status (1.20 records no subresource in managedFields, so spec and
/// status writes need distinct managers).
pub const STATUS_MANAGER: &str = "sinch-operator-status";

macro_rules! reasons {
    ($($name:ident),* $(,)?) => {
        /// Every reason a condition can give (README's table): one name per outcome, compared as
        /// values, written as its name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason { $($name),* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name)),* }
            }
        }
    };
}

reasons!(
    // Ready
    Available,
    ChannelFailing,
    NotFound,
    Creating,
    // Synced: in sync, observed, paused
    ReconcileSuccess,
    Observed,
    Drifted,
    Paused,
    Skipped,
    // Synced: fix the spec
    Rejected,
    InvalidSpec,
    CannotPlan,
    ProjectMissing,
    // Synced: retried with backoff
    SinchError,
    SinchUnavailable,
    SecretUnreadable,
    ClaimUnavailable,
    // Synced: Sinch refused to list the scope
    CredentialsRefused,
    ReadRefused,
    ProjectNotFound,
    // Synced: a Secret to create or fix
    CredentialsMissing,
    CredentialsNotFound,
    InvalidCredentials,
    SecretNotFound,
    SecretForbidden,
    SecretNotLabelled,
    // Synced: Sinch did not keep what was written; written again at the poll interval
    NotConverging,
    // Synced: a webhook waiting for its app, or losing a claim
    AppNotFound,
    AppNotReady,
    Conflict,
    // Synced: tenancy and ownership
    NoConnection,
    ConnectionNotFound,
    ConnectionRefused,
    ConnectionAmbiguous,
    ProjectNotAllowed,
    SettingsNotAllowed,
    OwnedElsewhere,
    AdoptionRequired,
    AppNotOwned,
    // Drifted
    Reverted,
    InSync,
    ObserveOnly,
    // Events only
    DriftReverted,
    DriftDetected,
    Deleted,
    DeleteFailed,
    Orphaned,
    // The error policy's metric only: the API server failed
    KubernetesError,
);

impl Reason {
    /// A read of Sinch that failed, by its class (rule 8), and when to try again: a failure that
    /// may pass with backoff, a refusal at the poll interval (no hot loop on a refused key).
    pub fn of_read(class: Class) -> (Reason, Retry) {
        match class {
            Class::Retryable => (Reason::SinchUnavailable, Retry::Backoff),
            Class::Auth => (Reason::CredentialsRefused, Retry::Poll),
            Class::NotFound => (Reason::ProjectNotFound, Retry::Poll),
            Class::Terminal => (Reason::ReadRefused, Retry::Poll),
        }
    }

    /// A write Sinch refused, by its class (rule 8): a refused key is fixed by its owner and a
    /// vanished object by the next poll's plan, not by a change of the spec; a rejected body is.
    pub fn of_write(class: Class) -> (Reason, Retry) {
        match class {
            Class::Retryable => (Reason::SinchError, Retry::Backoff),
            Class::Auth => (Reason::CredentialsRefused, Retry::Poll),
            Class::NotFound => (Reason::NotFound, Retry::Poll),
            Class::Terminal => (Reason::Rejected, Retry::OnChange),
        }
    }

    /// A `Synced=False` with this reason stays until a person acts (no retry fixes it): what
    /// Argo CD's health script (manifests/argocd/health.lua) shows as Degraded.
    pub fn needs_a_person(self) -> bool {
        use Reason::*;
        matches!(
            self,
            Rejected
                | InvalidSpec
                | CannotPlan
                | ProjectMissing
                | CredentialsRefused
                | ReadRefused
                | ProjectNotFound
                | CredentialsMissing
                | CredentialsNotFound
                | InvalidCredentials
                | SecretNotFound
                | SecretForbidden
                | SecretNotLabelled
                | NotConverging
                | Conflict
                | NoConnection
                | ConnectionNotFound
                | ConnectionRefused
                | ConnectionAmbiguous
                | ProjectNotAllowed
                | SettingsNotAllowed
                | OwnedElsewhere
                | AdoptionRequired
                | AppNotOwned
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition as a reconcile decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

impl Cond {
    pub fn yes(reason: Reason, message: impl Into<String>) -> Cond {
        Cond {
            status: true,
            reason,
            message: message.into(),
        }
    }

    pub fn no(reason: Reason, message: impl Into<String>) -> Cond {
        Cond {
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// The status a reconcile writes.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `None`: keep what the status says.
    pub ready: Option<Cond>,
    pub synced: Option<Cond>,
    pub drifted: Option<Cond>,
    pub fields: Fields,
    /// Sinch matched the spec: `lastSyncedTime` becomes now.
    pub in_sync: bool,
    /// Nothing a person needs to read: the status is left as it is (a webhook waiting while its
    /// app is being created; the app's status shows the progress).
    pub quiet: bool,
    /// The reconcile failed for this reason: counted by the failure metric.
    pub failure: Option<Reason>,
    /// The object converged: its backoff starts over.
    pub settled: bool,
}

/// The longest condition message: a person reads it in `kubectl describe`; an object's status
/// is not a place for a megabyte of an upstream's page.
pub const MESSAGE_LIMIT: usize = 2000;

impl Report {
    /// Every message with the `known` secrets taken out and cut to [`MESSAGE_LIMIT`]: the last
    /// step before the status is written (rule 14).
    pub fn scrub(&mut self, known: &crate::scrub::Known) {
        for cond in [&mut self.ready, &mut self.synced, &mut self.drifted]
            .into_iter()
            .flatten()
        {
            cond.message = crate::scrub::cut(&known.scrub(&cond.message), MESSAGE_LIMIT);
        }
        for channel in self.fields.channels.iter_mut().flatten() {
            channel.description = channel.description.as_deref().map(|d| known.scrub(d));
        }
    }
}

impl Fields {
    /// The scope the object lives in, and nothing else yet.
    pub fn of_scope(scope: &crate::engine::Scope) -> Fields {
        Fields {
            project_id: Some(scope.project.clone()),
            region: Some(scope.region),
            ..Fields::default()
        }
    }
}

/// The fields of the status a reconcile sets besides the conditions; `None` keeps what the
/// status holds. Each kind lays the ones it has over its own status type ([`Managed::lay`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields {
    pub project_id: Option<String>,
    pub region: Option<Region>,
    /// The Sinch object's id (`appId`, `webhookId` or `templateId`); `Some(None)` clears it.
    pub id: Option<Option<String>>,
    /// What an object observes without managing it; `Some(None)` clears it.
    pub observed_id: Option<Option<String>>,
    /// The reconcile request this reconcile handled.
    pub handled_request: Option<String>,
    /// A webhook's app.
    pub app_id: Option<String>,
    /// An app's channel states.
    pub channels: Option<Vec<ChannelStatus>>,
    /// A template's version.
    pub version: Option<i64>,
    pub secret_hashes: Option<BTreeMap<String, String>>,
}

/// The conditions after this reconcile, keeping transition times of unchanged statuses.
pub fn conditions(previous: &[Condition], report: &Report, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let mut out = Vec::new();
    for (kind, cond) in [
        (CondType::Ready, &report.ready),
        (CondType::Synced, &report.synced),
        (CondType::Drifted, &report.drifted),
    ] {
        let kind = kind.as_str();
        let old = previous.iter().find(|c| c.type_ == kind);
        let Some(cond) = cond else {
            out.extend(old.cloned());
            continue;
        };
        let status = if cond.status { "True" } else { "False" };
        let since = match old {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: kind.into(),
            status: status.into(),
            reason: cond.reason.as_str().into(),
            // A 1.20 test server rejects "" in non-nullable strings; a message is always useful.
            message: if cond.message.is_empty() {
                cond.reason.as_str().into()
            } else {
                cond.message.clone()
            },
            observed_generation: generation,
            last_transition_time: since,
        });
    }
    out
}

/// The kind's status: the previous one with this report laid over it.
pub fn next_status<K: Managed>(
    previous: Option<&K::Status>,
    report: &Report,
    generation: Option<i64>,
    now: &Time,
) -> K::Status {
    let mut status = previous.cloned().unwrap_or_default();
    K::lay(&mut status, &report.fields);
    let sync = K::sync(&mut status);
    sync.conditions = conditions(&sync.conditions, report, generation, now);
    sync.observed_generation = generation;
    if report.in_sync {
        sync.last_synced_time = Some(now.clone());
    }
    let f = &report.fields;
    if let Some(project) = &f.project_id {
        sync.project_id = Some(project.clone());
    }
    if let Some(region) = f.region {
        sync.region = Some(region);
    }
    if let Some(hashes) = &f.secret_hashes {
        sync.secret_hashes = hashes.clone();
    }
    if let Some(observed) = &f.observed_id {
        sync.observed_id = observed.clone();
    }
    if let Some(handled) = &f.handled_request {
        sync.last_handled_reconcile_at = Some(handled.clone());
    }
    status
}

/// Whether `status` is worth a write over `previous`: something other than `lastSyncedTime`
/// changed, or the object has its first sync time. The time alone is never a reason: a steady
/// fleet writes nothing (Kubernetes moved node heartbeats out of status for the same write load
/// on etcd; how fresh each reading is shows in `sinch_operator_observation_age_seconds`). A
/// failing object therefore writes once, not on every retry.
pub fn needs_write(status: &Value, previous: &Value) -> bool {
    let without_time = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(map) = &mut v {
            map.remove("lastSyncedTime");
        }
        v
    };
    without_time(status) != without_time(previous)
        || previous.get("lastSyncedTime").is_none() && status.get("lastSyncedTime").is_some()
}

/// Writes the status with server-side apply; nothing is sent when it would not change. Returns
/// what the object's conditions say now, for `sinch_operator_objects`.
pub async fn write<K: Managed>(api: &Api<K>, obj: &K, report: &Report) -> Result<ObjectState, kube::Error> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = obj.meta().generation;
    let mut next = next_status::<K>(obj.status(), report, generation, &now);
    let state = state(K::KIND, &K::sync(&mut next).conditions);
    let status = serde_json::to_value(&next).expect("a status always serialises");
    let previous = serde_json::to_value(obj.status()).expect("a status always serialises");
    if !needs_write(&status, &previous) {
        return Ok(state);
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| state)
}

/// What the object's conditions would say after `report`, with nothing written.
pub fn state_after<K: Managed>(obj: &K, report: &Report) -> ObjectState {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut next = next_status::<K>(obj.status(), report, obj.meta().generation, &now);
    state(K::KIND, &K::sync(&mut next).conditions)
}

/// The `Ready` and `Synced` status of `conditions` (`Unknown` when absent) and the `Synced` reason.
pub fn state(kind: Kind, conditions: &[Condition]) -> ObjectState {
    let find = |t: CondType| conditions.iter().find(|c| c.type_ == t.as_str());
    let status = |t: CondType| find(t).map_or_else(|| "Unknown".to_string(), |c| c.status.clone());
    ObjectState {
        kind: kind.name().into(),
        ready: status(CondType::Ready),
        synced: status(CondType::Synced),
        reason: find(CondType::Synced).map(|c| c.reason.clone()).unwrap_or_default(),
    }
}

/// What the four kinds have in common for the controller.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
    /// The kind's status type (the model's), which a report is laid over.
    type Status: Clone + Default + Serialize + Send + Sync;
    fn object(&self) -> Object;
    fn status(&self) -> Option<&Self::Status>;
    fn sync(status: &mut Self::Status) -> &mut SyncStatus;
    /// Sets the kind's own fields of `fields` (its id and what else it reports).
    fn lay(status: &mut Self::Status, fields: &Fields);
    fn sync_status(&self) -> Option<&SyncStatus>;
    /// The Sinch id the status records.
    fn recorded_id(&self) -> Option<String>;
}

macro_rules! managed {
    ($kind:ident, $status:ident, $($id:ident)?, $lay:expr) => {
        impl Managed for $kind {
            const KIND: Kind = Kind::$kind;
            type Status = $status;
            fn object(&self) -> Object {
                Object::$kind(self.clone())
            }
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn sync(status: &mut $status) -> &mut SyncStatus {
                &mut status.sync
            }
            fn lay(status: &mut $status, fields: &Fields) {
                $(if let Some(id) = &fields.id {
                    status.$id = id.clone();
                })?
                let lay: fn(&mut $status, &Fields) = $lay;
                lay(status, fields);
            }
            fn sync_status(&self) -> Option<&SyncStatus> {
                self.status.as_ref().map(|s| &s.sync)
            }
            fn recorded_id(&self) -> Option<String> {
                None$(.or_else(|| self.status.as_ref().and_then(|s| s.$id.clone())))?
            }
        }
    };
}

managed!(ConversationApp, ConversationAppStatus, app_id, |s, f| {
    if let Some(channels) = &f.channels {
        s.channels = channels.clone();
    }
});
managed!(Webhook, WebhookStatus, webhook_id, |s, f| {
    if let Some(app) = &f.app_id {
        s.app_id = Some(app.clone());
    }
});
managed!(Template, TemplateStatus, template_id, |s, f| {
    if let Some(version) = f.version {
        s.version = Some(version);
    }
});
// Settings have no id of their own: their project is their identity.
managed!(ProjectSettings, ProjectSettingsStatus, , |_, _| {});

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
    /// The normal course of things (a webhook's app being created), which the status need
    /// not say: see [`Report::quiet`].
    pub quiet: bool,
}

impl Blocked {
    pub fn new(reason: Reason, message: impl Into<String>, retry: Retry) -> Blocked {
        Blocked {
            reason,
            message: message.into(),
            retry,
            quiet: false,
        }
    }

    pub fn quiet(self) -> Blocked {
        Blocked { quiet: true, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn a_transition_time_moves_only_when_the_status_does() {
        let report = Report {
            ready: Some(Cond::yes(Reason::Available, "app 01 exists")),
            synced: Some(Cond::no(Reason::SinchError, "503")),
            ..Report::default()
        };
        let first = conditions(&[], &report, Some(1), &time("2026-01-01T00:00:00Z"));
        assert_eq!(first[0].last_transition_time, time("2026-01-01T00:00:00Z"));
        let report2 = Report {
            ready: Some(Cond::yes(Reason::Available, "app 01 exists")),
            synced: Some(Cond::yes(Reason::ReconcileSuccess, "Sinch matches the spec")),
            ..Report::default()
        };
        let second = conditions(&first, &report2, Some(2), &time("2026-01-02T00:00:00Z"));
        assert_eq!(
            second[0].last_transition_time,
            time("2026-01-01T00:00:00Z"),
            "Ready stayed True"
        );
        assert_eq!(
            second[1].last_transition_time,
            time("2026-01-02T00:00:00Z"),
            "Synced turned True"
        );
        assert_eq!(second[1].observed_generation, Some(2));
        // A condition the report leaves out is kept as it was.
        let third = conditions(&second, &Report::default(), Some(3), &time("2026-01-03T00:00:00Z"));
        assert_eq!(third, second);
    }

    #[test]
    fn a_steady_object_never_writes_its_status_for_the_sync_time_alone() {
        let previous = json!({"observedGeneration": 1, "lastSyncedTime": "2026-01-01T00:00:00Z"});
        let at = |now: &str| {
            let mut s = previous.clone();
            s["lastSyncedTime"] = json!(now);
            needs_write(&s, &previous)
        };
        assert!(!at("2026-01-01T00:00:20Z"), "one poll later: nothing to write");
        assert!(!at("2026-01-02T00:00:00Z"), "nor a day later");
        // Anything else changing is written at once, sync time included.
        let mut changed = previous.clone();
        changed["lastSyncedTime"] = json!("2026-01-01T00:00:20Z");
        changed["observedGeneration"] = json!(2);
        assert!(needs_write(&changed, &previous));
        // A status never synced gets its first time; an unchanged failing one writes nothing.
        assert!(needs_write(&previous, &json!({"observedGeneration": 1})));
        assert!(!needs_write(&previous, &previous));
    }

    /// The health script Argo CD runs must call Degraded exactly the reasons no retry fixes,
    /// and name only reasons the controller writes.
    #[test]
    fn argo_cds_health_script_degrades_exactly_the_reasons_that_need_a_person() {
        let script = include_str!("../../manifests/argocd/health.lua");
        let table = script.split("local act = {").nth(1).unwrap().split('}').next().unwrap();
        let mut listed: Vec<&str> = table
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_suffix(" = true").unwrap_or(e))
            .collect();
        listed.sort_unstable();
        let mut wanted: Vec<&str> = Reason::ALL
            .iter()
            .filter(|r| r.needs_a_person())
            .map(|r| r.as_str())
            .collect();
        wanted.sort_unstable();
        assert_eq!(listed, wanted);
        for ready in [Reason::ChannelFailing, Reason::NotFound] {
            assert!(script.contains(&format!("ready.reason == \"{ready}\"")), "{ready}");
        }
    }

    #[test]
    fn an_empty_message_becomes_the_reason() {
        let report = Report {
            ready: Some(Cond::yes(Reason::Available, "")),
            ..Report::default()
        };
        let c = conditions(&[], &report, None, &time("2026-01-01T00:00:00Z"));
        assert_eq!(c[0].message, "Available");
    }
}
