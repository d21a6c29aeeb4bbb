//! What a reconcile tells people: the conditions of a refusal, of an observed or paused object
//! and of drift, the ids and channel states for the status, and the events.

use super::Context;
use super::status::Managed;
use super::status::{Blocked, Retry};
use super::status::{Cond, Fields, Reason, Report};
use crate::engine::execute::Fate;
use crate::engine::plan::{Action, Change};
use crate::engine::{Scope, observe};
use crate::model::{ChannelStatus, CondType, Kind, Object, PAUSED_ANNOTATION, WebhookApp};
use crate::sinch::app::{App, ChannelIntegrationState as State};
use crate::sinch::template::Template;
use kube::runtime::events::{Event, EventType};
use serde_json::json;
use std::collections::BTreeMap;

/// The report of a reconcile that cannot go on (nothing was written to Sinch).
pub(super) fn refused<K: Managed>(obj: &K, blocked: Blocked, events: &mut Vec<Event>) -> (Report, Retry) {
    // An event says what is new: a refusal the status already shows is not published again
    // at each look (each would be a write to the API server). Waiting for the app is the
    // normal course of things: its condition says so, no event.
    if !has_synced_reason(obj, blocked.reason) && !is_wait(blocked.reason) {
        events.push(warning(blocked.reason, &blocked.message, "Reconcile"));
    }
    let report = Report {
        ready: obj
            .recorded_id()
            .is_none()
            .then(|| Cond::no(blocked.reason, "not created in Sinch yet")),
        failure: Some(blocked.reason),
        synced: Some(Cond::no(blocked.reason, blocked.message)),
        quiet: blocked.quiet,
        ..Report::default()
    };
    (report, blocked.retry)
}

/// A webhook waiting for its app: the normal course of a create, not a failure to report.
pub(super) fn is_wait(reason: Reason) -> bool {
    matches!(reason, Reason::AppNotFound | Reason::AppNotReady)
}

/// An update of an object whose spec has not changed since its last successful sync, or since
/// drift was found and not set back (paused, failed): someone changed it in Sinch.
pub(super) fn is_drift<K: Managed>(obj: &K) -> bool {
    let Some(status) = obj.sync_status() else { return false };
    let generation = obj.meta().generation;
    let synced = status.is_true(CondType::Synced) && status.observed_generation == generation;
    let drifted = status
        .condition(CondType::Drifted)
        .is_some_and(|c| c.status == "True" && c.observed_generation == generation);
    synced || drifted
}

/// Whether the last reconcile left the object drifted (its `Drifted` condition is True).
pub(super) fn was_drifted<K: Managed>(obj: &K) -> bool {
    obj.sync_status().is_some_and(|s| s.is_true(CondType::Drifted))
}

/// `ObserveOnly`, or paused: what would be written is reported, never sent. `drift` is the
/// field-by-field report of what differs.
pub(super) fn observe_only(
    object: &Object,
    change: &Change,
    paused: bool,
    drift: Option<&str>,
    report: &mut Report,
    events: &mut Vec<Event>,
) {
    let what = object.kind().noun();
    let why = match paused {
        true => format!("paused ({PAUSED_ANNOTATION})"),
        false => "managementPolicy ObserveOnly".to_string(),
    };
    match change.action {
        Action::Create => {
            let never = match paused {
                true => "creates none until the annotation is removed",
                false => "never creates one",
            };
            report.ready = Some(Cond::no(
                Reason::NotFound,
                format!("no such {what} exists in Sinch; {why} {never}"),
            ));
            let reason = if paused { Reason::Paused } else { Reason::NotFound };
            report.synced = Some(Cond::no(reason, format!("the {what} does not exist in Sinch; {why}")));
        }
        Action::Update => {
            let message = format!(
                "Sinch differs from the spec in {}; {why}: not written",
                fields_of(change)
            );
            if let Some(fields) = drift {
                events.push(warning(
                    Reason::DriftDetected,
                    &format!("{message}:\n{fields}"),
                    "Observe",
                ));
                report.drifted = Some(Cond::yes(
                    if paused { Reason::Paused } else { Reason::ObserveOnly },
                    format!("Sinch differs from the spec ({why}: not set back):\n{fields}"),
                ));
            }
            report.ready = Some(Cond::yes(Reason::Available, format!("the {what} exists in Sinch")));
            report.synced = Some(Cond::no(if paused { Reason::Paused } else { Reason::Drifted }, message));
        }
        _ => {
            report.ready = Some(Cond::yes(Reason::Available, format!("the {what} exists in Sinch")));
            if paused {
                report.synced = Some(Cond::no(
                    Reason::Paused,
                    format!("Sinch matches the spec; {why}: nothing is written"),
                ));
            } else {
                report.synced = Some(Cond::yes(Reason::Observed, "Sinch matches the spec (ObserveOnly)"));
                report.in_sync = true;
            }
        }
    }
    if change.id.is_some() {
        report.fields.id = Some(change.id.clone());
    }
}

/// The ids (and an app's channel states, a template's version) for the status: from Sinch's
/// answer to the write when it gave one (a create's, which the read before it cannot know), else
/// from what was read.
pub(super) fn ids(
    object: &Object,
    scope: &Scope,
    id: Option<&str>,
    live: &observe::Live,
    answer: Option<&serde_json::Value>,
    app: Option<&App>,
    fields: &mut Fields,
) {
    fields.id = Some(id.map(str::to_string));
    fields.observed_id = Some(None);
    let answered = |kind: Kind| answer.filter(|_| object.kind() == kind && id.is_some());
    match object {
        Object::ConversationApp(_) => {
            fields.channels = app.map(channels);
        }
        Object::Webhook(w) => {
            if let WebhookApp::AppId(app) = &w.spec.app {
                fields.app_id = Some(app.clone());
            }
        }
        Object::Template(_) => {
            let answered = answered(Kind::Template)
                .and_then(|a| serde_json::from_value::<Template>(a.clone()).ok())
                .filter(|t| t.id.as_deref() == id)
                .and_then(|t| t.version);
            let read = || {
                live.scopes
                    .get(scope)
                    .and_then(|s| s.templates.as_ref())
                    .and_then(|r| r.as_ref().ok())
                    .and_then(|ts| ts.iter().find(|t| t.id.as_deref() == id))
                    .and_then(|t| t.version)
            };
            fields.version = answered.or_else(read);
        }
        Object::ProjectSettings(_) => {}
    }
}

/// An app's channel states, as the status shows them.
pub(super) fn channels(app: &App) -> Vec<ChannelStatus> {
    app.channel_credentials
        .iter()
        .flatten()
        .filter_map(|c| {
            let state = c.state.as_ref()?;
            Some(ChannelStatus {
                channel: serde_json::from_value(json!(c.channel)).ok()?,
                credential_ordinal_number: c.credential_ordinal_number.and_then(|n| i32::try_from(n).ok()),
                state: state.status.clone().unwrap_or_else(|| State::PENDING.into()),
                // Sinch's words: scrubbed like any upstream text.
                description: state.description.as_deref().map(crate::scrub::upstream),
            })
        })
        .collect()
}

/// The app `id` as Sinch holds it after a write: its `answer` (a create's) when given, else as
/// it was read.
pub(super) fn app_after(
    live: &observe::Live,
    scope: &Scope,
    id: Option<&str>,
    answer: Option<&serde_json::Value>,
) -> Option<App> {
    id?;
    let answered = answer
        .and_then(|a| serde_json::from_value::<App>(a.clone()).ok())
        .filter(|a| a.id.as_deref() == id);
    answered.or_else(|| {
        live.apps(scope)
            .and_then(|r| r.as_ref().ok())
            .and_then(|apps| apps.iter().find(|a| a.id.as_deref() == id))
            .map(|a| App::clone(a))
    })
}

/// Whether Sinch is still checking a channel of the app (a new or changed credential).
pub(super) fn pending(channels: &[ChannelStatus]) -> bool {
    channels.iter().any(|c| c.state == State::PENDING)
}

/// An app with a failing channel is not Ready.
pub(super) fn app_ready(object: &Object, app: Option<&App>) -> Option<Cond> {
    if object.kind() != Kind::ConversationApp {
        return None;
    }
    let app = app?;
    let failing: Vec<String> = app
        .channel_credentials
        .iter()
        .flatten()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.is(State::FAILING)))
        .map(|c| {
            let why = c
                .state
                .as_ref()
                .and_then(|s| s.description.as_deref())
                .map(crate::scrub::upstream)
                .unwrap_or_default();
            format!("{} ({why})", c.channel)
        })
        .collect();
    (!failing.is_empty()).then(|| {
        Cond::no(
            Reason::ChannelFailing,
            format!("Sinch reports these channels FAILING: {}", failing.join(", ")),
        )
    })
}

/// The hashes of the secrets just written, over those of earlier writes (rule 7).
pub(super) fn record_hashes<K: Managed>(obj: &K, change: &Change, fields: &mut Fields) {
    let mut hashes: BTreeMap<String, String> = obj.sync_status().map(|s| s.secret_hashes.clone()).unwrap_or_default();
    if change.action == Action::Create {
        hashes.clear();
    }
    hashes.extend(change.rekeyed.clone());
    for slot in &change.secrets {
        hashes.insert(slot.pointer.clone(), slot.fingerprint.clone());
    }
    fields.secret_hashes = Some(hashes);
}

pub(super) fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "Create",
        Action::Update => "Update",
        Action::Delete => "Delete",
        Action::Noop => "Observe",
    }
}

/// The top-level fields a change writes, as a person reads them (never a value).
pub(super) fn fields_of(change: &Change) -> String {
    let mut names: Vec<&str> = change
        .fields
        .iter()
        .map(|f| f.path.split(['.', '[']).next().unwrap_or_default())
        .collect();
    names.dedup();
    names.join(", ")
}

/// The event of a write that succeeded, when it tells a person something the status does not:
/// drift set back (what changed in Sinch behind the spec's back). A plain create or update
/// publishes none: the status says it (`Ready`, `Synced` at the new generation, the id), and
/// each event is one more write to the API server per object (at 1,000 apps a `Created` for
/// every object was a fifth of the controller's writes).
pub(super) fn written(object: &Object, change: &Change, drift: Option<&str>) -> Option<Event> {
    let (Action::Update, Some(drift)) = (change.action, drift) else {
        return None;
    };
    let what = object.kind().noun();
    let id = change.id.clone().unwrap_or_default();
    Some(Event {
        type_: EventType::Warning,
        reason: Reason::DriftReverted.to_string(),
        note: Some(format!(
            "{} changed in Sinch; set back to the spec ({what} {id}):\n{drift}",
            fields_of(change)
        )),
        action: verb(change.action).into(),
        secondary: None,
    })
}

pub(super) fn warning(reason: Reason, message: &str, action: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(message.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    }
}

pub(super) fn normal(reason: Reason, note: String, action: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason.to_string(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    }
}

pub(super) async fn publish<K: Managed>(ctx: &Context, obj: &K, events: Vec<Event>) {
    let reference = obj.object_ref(&());
    for event in events {
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %crate::kube_message(&e), reason = %event.reason, "cannot publish an event");
        }
    }
}

/// The same update wanted again right after it was sent and read back: Sinch stores these
/// fields otherwise than it was sent (normalised, ignored, or a hostile upstream). Nothing is
/// sent; the condition names each field with Sinch's value and ours, the event is published
/// when the condition is new, and the update is tried again at the poll interval.
pub(super) fn not_converging<K: Managed>(
    obj: &K,
    unkept: &[crate::engine::diff::FieldChange],
    mut report: Report,
    events: &mut Vec<Event>,
) -> (Report, Retry) {
    use crate::render::value;
    report.failure = Some(Reason::NotConverging);
    let shown = |v: &Option<serde_json::Value>| v.as_ref().map_or_else(|| "(absent)".to_string(), value);
    let fields: Vec<String> = unkept
        .iter()
        .map(|f| {
            format!(
                "{}: Sinch holds {}, the spec says {}",
                f.path,
                shown(&f.before),
                shown(&f.after)
            )
        })
        .collect();
    let message = crate::scrub::cut(
        &format!(
            "Sinch did not keep the last update (sent again at the next poll): {}",
            fields.join("; ")
        ),
        super::status::MESSAGE_LIMIT,
    );
    if !has_synced_reason(obj, Reason::NotConverging) {
        events.push(warning(Reason::NotConverging, &message, "Update"));
    }
    report.synced = Some(Cond::no(Reason::NotConverging, message));
    (report, Retry::Poll)
}

/// Whether the object's `Synced` condition already says `reason` (its event was published).
pub(super) fn has_synced_reason<K: Managed>(obj: &K, reason: Reason) -> bool {
    obj.sync_status().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CondType::Synced.as_str() && c.reason == reason.as_str())
    })
}

/// What a reconcile wrote, for its report.
pub(super) struct Written<'a> {
    pub object: &'a Object,
    pub change: &'a Change,
    /// The Sinch id after the write (a created object's new one).
    pub id: Option<&'a str>,
    /// The field-by-field report of the drift the write set back.
    pub drift: Option<&'a str>,
    /// An app as Sinch holds it after the write (its channel states).
    pub app: Option<&'a App>,
}

/// The report (conditions, events) of a write, and when to look again.
pub(super) fn outcome<K: Managed>(
    obj: &K,
    what: Written<'_>,
    status: Fate,
    mut report: Report,
    events: &mut Vec<Event>,
) -> (Report, Retry) {
    let Written {
        object,
        change,
        id,
        drift,
        app,
    } = what;
    match status {
        Fate::Done { .. } | Fate::Unchanged => {
            record_hashes(obj, change, &mut report.fields);
            let exists = format!("{} {} exists in Sinch", object.kind().noun(), id.unwrap_or_default());
            report.ready = Some(app_ready(object, app).unwrap_or(Cond::yes(Reason::Available, exists)));
            report.synced = Some(Cond::yes(Reason::ReconcileSuccess, "Sinch matches the spec"));
            report.in_sync = true;
            report.drifted = match drift {
                Some(fields) => Some(Cond::no(
                    Reason::Reverted,
                    format!("changed in Sinch, set back to the spec:\n{fields}"),
                )),
                None => was_drifted(obj).then(|| Cond::no(Reason::InSync, "Sinch matches the spec again")),
            };
            report.settled = true;
            events.extend(written(object, change, drift));
            // What Sinch sets after a write (channel states, a template's version) is read
            // back soon; a webhook's and the settings' answer says it all.
            let retry = match (change.action, object.kind()) {
                (Action::Create | Action::Update, kind) if kind.reads_back() => Retry::ReadBack,
                _ => Retry::Poll,
            };
            (report, retry)
        }
        Fate::Failed { message, class } => {
            let (reason, retry) = Reason::of_write(class);
            report.failure = Some(reason);
            events.push(warning(reason, &message, verb(change.action)));
            if let Some(fields) = drift {
                report.drifted = Some(Cond::yes(
                    Reason::Drifted,
                    format!("Sinch differs from the spec (not set back: {reason}):\n{fields}"),
                ));
            }
            report.synced = Some(Cond::no(reason, message));
            if change.id.is_none() {
                report.ready = Some(Cond::no(Reason::Creating, "not created in Sinch yet"));
            }
            (report, retry)
        }
        Fate::Skipped(message) => {
            report.synced = Some(Cond::no(Reason::Skipped, message));
            (report, Retry::Backoff)
        }
    }
}
