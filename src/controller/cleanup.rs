//! Deleting an object, as the `finalizer()` helper's Cleanup: the Sinch object goes only when
//! this object manages it (its claim), `deletionPolicy` says so and nothing pauses it.

use super::Context;
use super::connections;
use super::ledger::{self, owner, subject};
use super::prepare::{Prepared, prepare};
use super::report::{normal, publish, warning};
use super::status::Managed;
use super::status::Reason;
use super::status::Retry;
use crate::engine::execute::Fate;
use crate::engine::plan::{self, Action, Options, Plan};
use crate::engine::{self, Scope, observe};
use crate::input::Secrets;
use crate::model::{DELETION_POLICY_LABEL, DeletionPolicy, ManagementPolicy, Object, PAUSED_ANNOTATION, WebhookApp};
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;

/// Deleting the object: with `deletionPolicy: Delete` (and `Full` management) the Sinch object
/// goes too, if this object holds its claim; the finalizer stays until that succeeded. Its
/// claims go with it either way.
pub(super) async fn cleanup<K: Managed>(obj: &K, ctx: &Context) -> super::Result<Requeue> {
    let object = obj.object();
    let placement = object.placement();
    let what = object.kind().noun();
    let me = owner(obj);
    let namespace = ctx.tenancy.namespaces.get(&ObjectRef::new(object.namespace()));
    if let Some(note) = kept(&object, namespace.as_deref(), ctx) {
        return orphan(obj, &me, note, ctx).await;
    }
    // A bulk deletion is no request to delete in Sinch: the CRDs removed (an uninstall deletes
    // every custom resource), or the namespace deleted (unless the operator says otherwise).
    if let Some(note) = bulk::<K>(&object, namespace.as_deref(), ctx).await? {
        return orphan(obj, &me, note, ctx).await;
    }
    if crate::model::is_paused(obj.meta()) {
        let note = format!(
            "the deletion waits: the object is paused ({PAUSED_ANNOTATION}); remove the annotation to delete the {what} in Sinch, or set deletionPolicy Orphan to keep it"
        );
        publish(ctx, obj, vec![warning(Reason::Paused, &note, "Delete")]).await;
        // An error keeps the finalizer (the helper removes it on success). No watch event
        // brings the annotation's removal (annotations change no generation): the error policy
        // looks again at the poll interval, and counts no failure (see `error_policy`).
        return Err(super::Error::Cleanup {
            reason: Reason::Paused,
            message: note,
        });
    }
    let Some((id, scope, prepared)) = found(obj, &object, ctx).await? else {
        let note = format!("no {what} of this object exists in Sinch");
        ctx.ledger.release_all(&me).await.map_err(ledger_error)?;
        publish(ctx, obj, vec![normal(Reason::Deleted, note, "Delete")]).await;
        return Ok(Requeue::await_change());
    };
    let subject = subject(prepared.as_ref().map_or(&object, |p| &p.resolved), &scope);
    let explicit = placement.deletion_policy == Some(DeletionPolicy::Delete);
    let allowed = ledger::may_delete(&ctx.ledger, &me, &subject, &id, obj.recorded_id().as_deref(), explicit)
        .await
        .map_err(ledger_error)?;
    if let Err(note) = allowed {
        return orphan(obj, &me, note, ctx).await;
    }
    let credentials = match prepared {
        Some(p) => p.access.credentials,
        None => {
            connections::access(&object, &ctx.tenancy)
                .await
                .map_err(|b| super::Error::Cleanup {
                    reason: b.reason,
                    message: b.message,
                })?
                .credentials
        }
    };
    let Some(change) = plan::delete(
        object.kind(),
        object.label(),
        id.clone(),
        &scope,
        "deleted with its object".into(),
    ) else {
        return Ok(Requeue::await_change());
    };
    let plan = Plan::of(vec![change]);
    // A delete carries no secret: nothing for a salt to key.
    match ctx
        .observations
        .write(&plan, "", &credentials, &Secrets::default())
        .await
    {
        Fate::Done { note, .. } => {
            let note = match note {
                Some(n) => format!("deleted {what} {id} in Sinch ({n})"),
                None => format!("deleted {what} {id} in Sinch"),
            };
            ctx.ledger.release_all(&me).await.map_err(ledger_error)?;
            ctx.metrics.deletion(K::KIND, true);
            publish(ctx, obj, vec![normal(Reason::Deleted, note, "Delete")]).await;
            Ok(Requeue::await_change())
        }
        Fate::Failed { message, .. } => {
            publish(ctx, obj, vec![warning(Reason::DeleteFailed, &message, "Delete")]).await;
            Err(super::Error::Cleanup {
                reason: Reason::DeleteFailed,
                message: format!("cannot delete {what} {id}: {message}"),
            })
        }
        other => Err(super::Error::Cleanup {
            reason: Reason::DeleteFailed,
            message: format!("cannot delete {what} {id}: {other:?}"),
        }),
    }
}

/// Why the Sinch side of `object` stays whatever this object holds, if it does.
fn kept(object: &Object, namespace: Option<&PartialObjectMeta<Namespace>>, ctx: &Context) -> Option<String> {
    let placement = object.placement();
    let what = object.kind().noun();
    let labelled = namespace
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(DELETION_POLICY_LABEL))
        .and_then(|v| v.parse::<DeletionPolicy>().ok());
    if placement.management_policy == Some(ManagementPolicy::ObserveOnly) {
        Some(format!("managementPolicy ObserveOnly: the {what} stays in Sinch"))
    } else if placement.deletion_policy == Some(DeletionPolicy::Orphan) {
        Some(format!("deletionPolicy Orphan: the {what} stays in Sinch"))
    } else if placement.deletion_policy.is_none() && labelled == Some(DeletionPolicy::Orphan) {
        Some(format!(
            "the namespace's label {DELETION_POLICY_LABEL} is Orphan: the {what} stays in Sinch"
        ))
    } else if placement.deletion_policy.is_none()
        && labelled.is_none()
        && ctx.deletion.default_policy == DeletionPolicy::Orphan
    {
        Some(format!(
            "the operator's default deletion policy is Orphan: the {what} stays in Sinch"
        ))
    } else if !object.kind().deletable() {
        Some("project settings cannot be deleted in Sinch; they stay as they are".into())
    } else {
        None
    }
}

/// Why a deletion is part of a bulk one that deletes nothing in Sinch, if it is: the kind's CRD
/// is being deleted (always), or the object's namespace is (unless `--namespace-deletion-policy
/// Delete`). The CRD is asked for only here, when a Sinch deletion would follow.
async fn bulk<K: Managed>(
    object: &Object,
    namespace: Option<&PartialObjectMeta<Namespace>>,
    ctx: &Context,
) -> super::Result<Option<String>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let what = object.kind().noun();
    let crd = format!("{}.{}", K::plural(&()), K::group(&()));
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(ctx.kube.clone());
    let going = crds
        .get_opt(&crd)
        .await
        .map_err(|e| super::Error::kube(format!("reading CustomResourceDefinition {crd}"), e))?
        .is_none_or(|c| c.metadata.deletion_timestamp.is_some());
    if going {
        return Ok(Some(format!(
            "CustomResourceDefinition {crd} is being deleted (an uninstall): the {what} stays in Sinch"
        )));
    }
    let ns = object.namespace();
    let terminating = namespace.is_some_and(|n| n.metadata.deletion_timestamp.is_some());
    Ok((terminating && ctx.deletion.on_namespace_deletion == DeletionPolicy::Orphan).then(|| {
        format!(
            "namespace {ns} is being deleted: the {what} stays in Sinch (the operator's --namespace-deletion-policy is Orphan)"
        )
    }))
}

/// The Sinch object to delete: the one the status records, else the one apply would find by
/// the natural key (with what was prepared to find it); `None` when there is none.
async fn found<K: Managed>(
    obj: &K,
    object: &Object,
    ctx: &Context,
) -> super::Result<Option<(String, Scope, Option<Prepared>)>> {
    let status = obj.sync_status();
    let recorded = (
        obj.recorded_id(),
        status.and_then(|s| s.project_id.clone()),
        status.and_then(|s| s.region),
    );
    if let (Some(id), Some(project), Some(region)) = recorded {
        return Ok(Some((id, Scope { project, region }, None)));
    }
    match prepare(object, ctx).await {
        Err(blocked) if blocked.retry == Retry::Backoff => Err(super::Error::Cleanup {
            reason: blocked.reason,
            message: blocked.message,
        }),
        Err(blocked) => {
            tracing::info!(object = %object.label(), reason = blocked.reason.as_str(), "nothing recorded in Sinch to delete");
            Ok(None)
        }
        Ok(prepared) => {
            let Some((id, scope)) = lookup(obj, &prepared, ctx).await? else {
                return Ok(None);
            };
            // A webhook on an app its namespace may not attach to was never this object's,
            // and its id is not this namespace's to learn (not even in an event).
            if let Object::Webhook(w) = &prepared.resolved
                && let WebhookApp::AppId(app) = &w.spec.app
                && ledger::may_attach(&ctx.ledger, object.namespace(), &scope, app)
                    .await
                    .is_err()
            {
                return Ok(None);
            }
            Ok(Some((id, scope, Some(prepared))))
        }
    }
}

/// The object goes, its Sinch object stays: its claims are let go (a later object must adopt).
pub(super) async fn orphan<K: Managed>(
    obj: &K,
    me: &ledger::Owner,
    note: String,
    ctx: &Context,
) -> super::Result<Requeue> {
    ctx.ledger.release_all(me).await.map_err(ledger_error)?;
    ctx.metrics.deletion(K::KIND, false);
    publish(ctx, obj, vec![normal(Reason::Orphaned, note, "Delete")]).await;
    Ok(Requeue::await_change())
}

pub(super) fn ledger_error(e: kube::Error) -> super::Error {
    super::Error::kube("updating the ownership ledger (SinchClaim)", e)
}

/// The id and scope of the live object apply would manage, if it exists.
pub(super) async fn lookup<K: Managed>(
    obj: &K,
    prepared: &Prepared,
    ctx: &Context,
) -> super::Result<Option<(String, Scope)>> {
    let targets = engine::targets(&prepared.input, &prepared.access.defaults).map_err(|_| super::Error::Cleanup {
        reason: Reason::ProjectMissing,
        message: super::reconcile::NO_PROJECT.into(),
    })?;
    let view = ctx.observations.view(&prepared.access.credentials, ctx.fresh_for(obj));
    let live = observe::observe(&view, &targets, false).await;
    if let Some(e) = live.failure() {
        return Err(super::Error::Cleanup {
            reason: Reason::of_read(e.class).0,
            message: format!("cannot read Sinch to find what {} manages: {e}", obj.object().label()),
        });
    }
    let plan = plan::build(
        &prepared.input,
        &targets,
        &live,
        &Options {
            salt: ctx.salt(&obj.meta().uid.clone().unwrap_or_default()),
            tenant: true,
            ..Options::default()
        },
    );
    Ok(plan.changes.first().and_then(|c| match c.action {
        Action::Create => None,
        _ => c.id.clone().map(|id| {
            (
                id,
                Scope {
                    project: c.project.clone(),
                    region: c.region,
                },
            )
        }),
    }))
}
