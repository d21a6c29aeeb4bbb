//! What the engine needs of the cluster for one object: its credentials and defaults, a
//! webhook's app (resolved from `appRef` once the app is Ready, and the oldest claim of one
//! target), the Secrets it references, and the offline rules on the object as the CLI reads it.

use super::Context;
use super::connections::{self, Access, Tenancy};
use super::status::{Blocked, Reason, Retry};
use crate::input::{Input, Manifest};
use crate::load::Source;
use crate::model::{AppOf, ConversationApp, Object, Webhook, WebhookApp};
use crate::validate;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};

/// The engine's input for one object, read from the cluster.
pub struct Prepared {
    pub input: Input,
    /// The object as planned: a webhook's `appRef` replaced by its app's id and placement.
    pub resolved: Object,
    pub access: Access,
}

/// Credentials, defaults, the app of a webhook and the referenced Secrets, then the offline
/// rules on the object as the CLI would read it.
pub async fn prepare(object: &Object, ctx: &Context) -> Result<Prepared, Blocked> {
    let mut object = object.clone();
    if let Object::Webhook(w) = &mut object {
        resolve_app(w, ctx)?;
        check_claim(w, ctx)?;
    }
    let access = connections::access(&object, &ctx.tenancy).await?;
    let input = input(&[&object], &ctx.tenancy).await?;
    Ok(Prepared {
        input,
        resolved: object,
        access,
    })
}

/// The engine's input of `objects` (of one namespace) and the Secrets they refer to, read from
/// the cluster and checked by the schema's and the typed rules (already read: not parsed
/// again): the one
/// constructor of an input from cluster objects (`plan --from-cluster` uses it too).
pub async fn input(objects: &[&Object], tenancy: &Tenancy) -> Result<Input, Blocked> {
    let Some(ns) = objects.first().map(|o| o.namespace().to_string()) else {
        return Ok(Input::default());
    };
    let mut input = Input::default();
    for object in objects {
        input.manifests.push(Manifest {
            source: Source::named(&object.label()),
            object: (*object).clone(),
        });
    }
    // Secret name -> (the first field naming it, the keys the objects use).
    let mut names: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for (path, r) in objects.iter().flat_map(|o| o.secret_refs()) {
        names
            .entry(r.name)
            .or_insert_with(|| (path, BTreeSet::new()))
            .1
            .insert(r.key);
    }
    let mut missing = Vec::new();
    for (name, (path, keys)) in names {
        match connections::get_tenant_secret(tenancy, &ns, &name, &path).await? {
            Some(secret) => {
                // Only the keys this object uses: one Secret may hold the tokens of a thousand
                // apps, and loading all of them for each app made every reconcile O(apps). A
                // missing key is named alone: the Secret's other keys are not this object's to
                // learn.
                let data = secret.data.as_ref();
                let mut used = BTreeMap::new();
                for key in keys {
                    match data.and_then(|d| d.get(&key)) {
                        Some(value) => {
                            used.insert(key, value.0.clone());
                        }
                        None => missing.push(format!("key {key:?} of Secret {ns}/{name} ({path})")),
                    }
                }
                input.secrets.insert(&ns, &name, used);
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
    let errors = validate::schema_errors(&input.manifests);
    validate::check(input, errors).map_err(|report| {
        let lines: Vec<String> = report
            .0
            .into_iter()
            .map(|mut d| {
                d.file = None; // the object names itself; there is no file
                d.to_string()
            })
            .collect();
        Blocked::new(Reason::InvalidSpec, lines.join("; "), Retry::OnChange)
    })
}

/// A webhook with `appRef` reaches Sinch as its app does: with the app's `credentialsRef` and
/// `connectionRef`, unless it names its own.
pub fn inherit_access(w: &mut Webhook, app: &ConversationApp, tenancy: &Tenancy) {
    w.spec.placement.credentials_ref = connections::credentials_ref(&Object::Webhook(w.clone()), tenancy);
    if w.spec.placement.connection_ref.is_none() {
        w.spec.placement.connection_ref = app.spec.placement.connection_ref.clone();
    }
}

/// A webhook with `appRef` is planned as one with the id, project and region of its app, once
/// the app is Ready; it uses the app's credentials unless it names its own.
fn resolve_app(w: &mut Webhook, ctx: &Context) -> Result<(), Blocked> {
    let AppOf::Object { namespace: ns, name } = w.app_of() else {
        return Ok(());
    };
    let (ns, name) = (ns.to_string(), name.to_string());
    let app = ctx
        .tenancy
        .apps
        .get(&ObjectRef::new(&name).within(&ns))
        .ok_or_else(|| {
            Blocked::new(
                Reason::AppNotFound,
                format!("waiting for ConversationApp {ns}/{name} (spec.appRef): it does not exist"),
                Retry::Wait,
            )
        })?;
    let status = app.status.clone().unwrap_or_default();
    let ready = status.sync.condition(crate::model::CondType::Ready);
    let (Some(id), Some(project), Some(region), Some("True")) = (
        status.app_id.clone(),
        status.sync.project_id.clone(),
        status.sync.region,
        ready.map(|c| c.status.as_str()),
    ) else {
        let why = ready.map_or("it has not been reconciled yet".to_string(), |c| c.message.clone());
        let blocked = Blocked::new(
            Reason::AppNotReady,
            format!("waiting for ConversationApp {ns}/{name} to be Ready: {why}"),
            Retry::Wait,
        );
        // An app not reconciled yet (no condition at all) is being created: its own status
        // will show that, the webhook's need not (one write less per webhook). Any other app
        // that is not Ready with an id (it failed, a channel is FAILING, it is observed only and
        // claims no id) may need a person: the webhook says what it waits for.
        let in_progress = ready.is_none() && !status.sync.conditions.iter().any(|c| c.status == "False");
        return Err(if in_progress { blocked.quiet() } else { blocked });
    };
    inherit_access(w, &app, &ctx.tenancy);
    w.spec.app = WebhookApp::AppId(id);
    w.spec.placement.project_id = Some(project);
    w.spec.placement.region = Some(region);
    Ok(())
}

/// Two Webhook objects of one namespace claiming one (app, target): the oldest wins. Across
/// namespaces the ledger's atomic claim decides, after `may_attach`: a namespace that may not
/// attach to the app can neither block this webhook nor learn that its target exists.
fn check_claim(w: &Webhook, ctx: &Context) -> Result<(), Blocked> {
    let WebhookApp::AppId(app) = &w.spec.app else {
        return Ok(());
    };
    let app_of = |other: &Webhook| match other.app_of() {
        AppOf::Id(id) => Some(id.to_string()),
        AppOf::Object { namespace, name } => ctx
            .tenancy
            .apps
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|a| a.status.as_ref().and_then(|s| s.app_id.clone())),
    };
    let age = |o: &Webhook| (o.metadata.creation_timestamp.clone(), o.namespace(), o.name_any());
    let namespace = w.namespace().unwrap_or_default();
    let older = ctx
        .webhooks
        .declaring(&namespace, &w.spec.target)
        .into_iter()
        .filter(|o| o.metadata.uid != w.metadata.uid && o.metadata.deletion_timestamp.is_none())
        .filter(|o| app_of(o).as_deref() == Some(app.as_str()))
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
