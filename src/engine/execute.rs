//! Carrying out a plan: each change's request, in dependency order (an app before its new
//! webhooks, an app's webhook deletes before its creates), everything else at once within the
//! client's rate limit and in-flight bound. A failure stops only the changes that depend on it
//! (rule 8); every outcome is reported.

use super::plan::{Action, Change, Plan, fingerprint, template_update};
use crate::input::Secrets;
use crate::sinch::client::{Client, Credentials, Project, Purpose};
use crate::sinch::error::{Class, ErrorKind, RequestError};
use crate::sinch::request::{Api, Method, Request};
use crate::sinch::template::Template;
use serde_json::Value;
use tokio::task::JoinSet;

/// What became of one change of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// Sent and accepted; the id of the object (a created one's new id), and what Sinch
    /// answered (the object as written) when it answered one.
    Done {
        id: Option<String>,
        note: Option<String>,
        answer: Option<Value>,
    },
    /// Not done; `class` says whether a later try may succeed without any change (rule 8):
    /// the failed request's, `Terminal` for a failure of ours.
    Failed { message: String, class: Class },
    /// Not sent because a change it depends on failed.
    Skipped(String),
    /// A `noop`: nothing to send.
    Unchanged,
}

impl Fate {
    /// A failure that only a change of the input can fix.
    fn failed(message: impl Into<String>) -> Fate {
        Fate::Failed {
            message: message.into(),
            class: Class::Terminal,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub index: usize,
    pub status: Fate,
}

/// Runs every change of `plan`; `secrets` fill the placeholders (each checked against the
/// fingerprint the plan recorded), `done` is called as each change finishes.
pub async fn execute(
    plan: &Plan,
    salt: &str,
    client: &Client,
    credentials: &Credentials,
    secrets: &Secrets,
    done: &(dyn Fn(&Change, &Fate) + Sync),
) -> Vec<Outcome> {
    let changes = &plan.changes;
    let mut level = vec![0usize; changes.len()];
    for (i, c) in changes.iter().enumerate() {
        level[i] = c.after.iter().map(|&a| level[a].saturating_add(1)).max().unwrap_or(0);
    }
    let mut status: Vec<Option<Fate>> = vec![None; changes.len()];
    for (i, c) in changes.iter().enumerate() {
        if c.action == Action::Noop {
            status[i] = Some(Fate::Unchanged);
        }
    }
    let depth = level.iter().copied().max().unwrap_or(0);
    let mut known = secrets.known();
    known.add_key(credentials);
    // At most as many tasks as the client lets requests through: a task per change of a level
    // at once held every request body and its future (36 MiB of an apply's 91 MiB heap at 5,000
    // webhooks) while the client sent 64 of them.
    let limit = client.config().concurrency.get();
    for current in 0..=depth {
        let mut tasks = JoinSet::new();
        let ready: Vec<usize> = (0..changes.len())
            .filter(|&i| level[i] == current && status[i].is_none())
            .collect();
        let mut ready = ready.into_iter();
        loop {
            while tasks.len() < limit
                && let Some(i) = ready.next()
            {
                let c = &changes[i];
                if let Some(failed) = c.after.iter().find(|&&a| !matches!(status[a], Some(Fate::Done { .. }))) {
                    let s = Fate::Skipped(format!("{} did not succeed", changes[*failed].label()));
                    done(c, &s);
                    status[i] = Some(s);
                    continue;
                }
                let app_id = c.app_from.and_then(|a| match &status[a] {
                    Some(Fate::Done { id, .. }) => id.clone(),
                    _ => None,
                });
                let request = match prepare(c, salt, secrets, app_id) {
                    Ok(r) => r,
                    Err(message) => {
                        let s = Fate::failed(message);
                        done(c, &s);
                        status[i] = Some(s);
                        continue;
                    }
                };
                let project = client.project(&c.project, c.region, credentials.clone());
                let id = c.id.clone();
                // A spawned task does not inherit the caller's request purpose: hand it on.
                let purpose = Purpose::current().unwrap_or(Purpose::Write);
                tasks.spawn(purpose.scope(async move { (i, send(&project, request, id).await) }));
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, s) = joined.expect("a change's task does not panic");
            let s = match s {
                Fate::Failed { message, class } => Fate::Failed {
                    message: known.scrub(&message),
                    class,
                },
                s => s,
            };
            done(&changes[i], &s);
            status[i] = Some(s);
        }
    }
    status
        .into_iter()
        .enumerate()
        .map(|(index, s)| Outcome {
            index,
            status: s.expect("every change has run"),
        })
        .collect()
}

/// The request with its placeholders filled: secret values (which must still be those the plan
/// was made with) and the id of an app created earlier in the run.
fn prepare(c: &Change, salt: &str, secrets: &Secrets, app_id: Option<String>) -> Result<Request, String> {
    let mut request = c.request.clone().ok_or("the change has no request")?;
    let body = request.body.as_mut();
    if let Some(body) = body {
        for slot in &c.secrets {
            let value = secrets.get(&slot.namespace, &slot.name, &slot.key).ok_or_else(|| {
                format!(
                    "Secret {}/{} key {:?} is not in the input",
                    slot.namespace, slot.name, slot.key
                )
            })?;
            if fingerprint(salt, value) != slot.fingerprint {
                return Err(format!(
                    "Secret {}/{} key {:?} changed since the plan was made: plan again",
                    slot.namespace, slot.name, slot.key
                ));
            }
            let text = std::str::from_utf8(value).map_err(|_| {
                format!(
                    "Secret {}/{} key {:?} is not UTF-8",
                    slot.namespace, slot.name, slot.key
                )
            })?;
            *body
                .pointer_mut(&slot.pointer)
                .ok_or("a placeholder is missing from the body")? = Value::String(text.into());
        }
        if c.app_from.is_some() {
            let id = app_id.ok_or("the app it belongs to was not created")?;
            body["app_id"] = Value::String(id);
        }
    }
    Ok(request)
}

async fn send(project: &Project, request: Request, id: Option<String>) -> Fate {
    match project.send(&request).await {
        Ok(bytes) => {
            let answer: Option<Value> = serde_json::from_slice(&bytes).ok().filter(Value::is_object);
            match id {
                // Only a create learns its id from the answer. An update's answer naming another
                // object (a hostile upstream) retargets nothing: it is not laid over the view.
                Some(id) => Fate::Done {
                    answer: answer.filter(|a| created_id(a).is_none_or(|answered| answered == id)),
                    id: Some(id),
                    note: None,
                },
                None => Fate::Done {
                    id: answer.as_ref().and_then(created_id),
                    note: None,
                    answer,
                },
            }
        }
        Err(e) if may_be_stale_template(&request, &e) => retry_template(project, &request, e).await,
        Err(e) if e.is_not_found() && Request::settings_created_instead(&request).is_some() => {
            let create = Request::settings_created_instead(&request).expect("just checked");
            Box::pin(send(project, create, id)).await
        }
        Err(e) if request.method == Method::Delete && e.is_not_found() => Fate::Done {
            id,
            note: Some("already gone from Sinch".into()),
            answer: None,
        },
        Err(e) => Fate::Failed {
            message: e.to_string(),
            class: e.class(),
        },
    }
}

/// The answer's id, when it can be an id at all (it goes into URL paths later).
fn created_id(answer: &Value) -> Option<String> {
    answer
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| crate::sinch::request::is_valid_id(id))
        .map(str::to_string)
}

/// A template PUT refused in a way a stale version may be refused. Sinch documents that the
/// latest version must be sent, not the status of a stale one: 409 `ABORTED`, 400
/// `FAILED_PRECONDITION` and 412 are all plausible (docs/sinch-api.md).
fn may_be_stale_template(request: &Request, e: &RequestError) -> bool {
    request.api == Api::Template
        && request.method == Method::Put
        && matches!(
            &e.kind,
            ErrorKind::Status {
                status: 400 | 409 | 412,
                ..
            }
        )
}

/// Rule 4: the template changed since it was read. Read it again and plan it once more; never
/// overwrite blindly. A 400 or 412 whose template still has the version sent was refused for
/// something else: that refusal is the outcome.
async fn retry_template(project: &Project, request: &Request, refused: RequestError) -> Fate {
    let desired: Template = match request.body.clone().map(serde_json::from_value) {
        Some(Ok(t)) => t,
        _ => return Fate::failed("the template request has no body"),
    };
    let id = desired.id.clone().unwrap_or_default();
    let live = match project.get_template(&id).await {
        Ok(live) => live,
        Err(e) => {
            return Fate::Failed {
                message: format!("the template changed while applying, and reading it again failed: {e}"),
                class: e.class(),
            };
        }
    };
    if refused.status() != Some(409) && live.version == desired.version {
        return Fate::Failed {
            message: refused.to_string(),
            class: refused.class(),
        };
    }
    match template_update(&desired, &live) {
        None => Fate::Done {
            id: Some(id),
            note: Some("changed in Sinch meanwhile; it already matches".into()),
            answer: serde_json::to_value(&live).ok(),
        },
        Some((_, body)) => match project.update_template(&id, &body).await {
            Ok(written) => Fate::Done {
                answer: serde_json::to_value(&written).ok(),
                id: Some(id),
                note: Some(format!(
                    "changed in Sinch meanwhile; replaced version {}",
                    live.version.unwrap_or_default()
                )),
            },
            Err(e) => Fate::Failed {
                message: format!("the template changed while applying; after reading it again: {e}"),
                class: e.class(),
            },
        },
    }
}
