//! `plan --from-cluster`: what the controller would do now with the objects in the cluster.
//!
//! Each object goes through the very steps of a reconcile ([`decide`]: its access through the
//! connections or the operator's key, its Secrets, the offline rules, its plan against one read
//! per scope, its claims), with a ledger that runs dry: nothing is written, to Sinch or to the
//! cluster. Objects are decided in the order a restart would reconcile them at best (apps,
//! templates, settings, then webhooks), so that two objects wanting one claim show what the
//! controller would: the first takes it. A webhook waiting for an app this plan creates is shown
//! as the create that follows the app's.

use super::connections::{self, OperatorKey};
use super::metrics::Metrics;
use super::observation::Observations;
use super::prepare;
use super::raw::Raw;
use super::reconcile::{Decided, Decision, decide};
use super::status::{Managed, Reason};
use super::{Context, Deletion, Settings};
use crate::engine::plan::{Action, Change, Options, Plan, PlanError};
use crate::engine::{self, Defaults, observe};
use crate::model::{
    AppOf, ConversationApp, Kind, Object, PAUSED_ANNOTATION, ProjectSettings, SinchClaim, SinchConnection, Template,
    Webhook,
};
use crate::scrub::Known;
use crate::sinch::client::{Client, Credentials};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::Duration;

/// How the operator runs, as far as a plan depends on it (`run`'s flags of the same names).
#[derive(Clone, Debug)]
pub struct Operator {
    /// Where the Secrets of SinchConnections and the key of secret fingerprints live.
    pub namespace: String,
    /// Where the operator's own key serves.
    pub key: OperatorKey,
}

/// The plan, and the secret values it met (which no output may show).
pub struct Preview {
    pub plan: Plan,
    pub known: Known,
}

/// One read of each scope serves the whole plan.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// The plan of the objects of `namespace` (every namespace: `None`); `sinch`, `credentials`
/// and `defaults` are the operator's (`run`'s environment).
pub async fn preview(
    kube: kube::Client,
    namespace: Option<&str>,
    operator: Operator,
    sinch: Client,
    credentials: Option<Credentials>,
    defaults: Defaults,
) -> crate::Result<Preview> {
    let key = fingerprint_key(&kube, &operator.namespace).await?;
    let settings = Settings {
        resync: MAX_AGE,
        min_poll_interval: MAX_AGE,
        namespace: namespace.map(str::to_string),
        listen: ([127, 0, 0, 1], 0).into(),
        lease_name: String::new(),
        lease_namespace: operator.namespace.clone(),
        operator_namespace: operator.namespace,
        identity: "plan".into(),
        lease_duration: MAX_AGE,
        concurrency: 1,
        operator_key: operator.key,
        deletion: Deletion::default(),
    };
    let observations = Arc::new(Observations::new(sinch, MAX_AGE));
    let metrics = Arc::new(Metrics::default());
    let (mut ctx, mut writers) = Context::new(
        &settings,
        kube.clone(),
        observations,
        metrics,
        credentials,
        defaults,
        key,
    );
    ctx.ledger.run_dry();
    ctx.tenancy.read = Some(Default::default());
    fill(&mut writers.connections, Api::<SinchConnection>::all(kube.clone())).await?;
    pages(&Api::<SinchClaim>::all(kube.clone()), |claim| {
        writers.claims.apply_watcher_event(watcher::Event::Apply(claim))
    })
    .await?;
    namespaces(&kube, &mut writers.namespaces).await?;
    let mut out = Out::default();
    let apps = list::<ConversationApp>(&kube, namespace, &mut out).await?;
    let templates = list::<Template>(&kube, namespace, &mut out).await?;
    let project_settings = list::<ProjectSettings>(&kube, namespace, &mut out).await?;
    let webhooks = list::<Webhook>(&kube, namespace, &mut out).await?;
    for app in &apps {
        writers.apps.apply_watcher_event(&watcher::Event::Apply(app.clone()));
    }
    for template in &templates {
        writers
            .templates
            .apply_watcher_event(&watcher::Event::Apply(template.clone()));
    }
    for webhook in &webhooks {
        writers
            .webhooks
            .apply_watcher_event(&watcher::Event::Apply(webhook.clone()));
    }
    for app in &apps {
        out.decide(app, &ctx).await;
    }
    for template in &templates {
        out.decide(template, &ctx).await;
    }
    for settings in &project_settings {
        out.decide(settings, &ctx).await;
    }
    for webhook in &webhooks {
        out.decide(webhook, &ctx).await;
    }
    for webhook in std::mem::take(&mut out.waiting) {
        out.after_app(webhook, &ctx).await;
    }
    let mut plan = Plan::of(out.changes);
    plan.errors = out.errors;
    Ok(Preview { plan, known: out.known })
}

/// What the preview found so far.
#[derive(Default)]
struct Out {
    changes: Vec<Change>,
    errors: Vec<PlanError>,
    known: Known,
    /// Webhooks waiting for their app, with the controller's words for why.
    waiting: Vec<(Webhook, String)>,
}

impl Out {
    fn error(&mut self, kind: Kind, object: &Object, message: String) {
        self.errors.push(PlanError {
            kind: Some(kind),
            name: Some(format!("{}/{}", object.namespace(), object.name())),
            message,
            class: None,
        });
    }

    /// One object, as a reconcile would decide it now.
    async fn decide<K: Managed>(&mut self, obj: &K, ctx: &Context) {
        let object = obj.object();
        if obj.meta().deletion_timestamp.is_some() {
            return; // being deleted: its cleanup is no plan's
        }
        let mut events = Vec::new();
        let Decided { decision, known, .. } = decide(obj, &object, MAX_AGE, ctx, &mut events).await;
        self.known.extend(&known);
        match decision {
            Decision::Stop(report, _) => {
                let Some(synced) = report.synced else { return };
                if let (Object::Webhook(w), Reason::AppNotFound | Reason::AppNotReady) = (&object, synced.reason) {
                    self.waiting.push((w.clone(), synced.message));
                    return;
                }
                self.error(K::KIND, &object, format!("{} ({})", synced.message, synced.reason));
            }
            Decision::Observe(planned) => {
                let mut change = planned.change().clone();
                let why = match crate::model::is_paused(obj.meta()) {
                    true => format!("paused ({PAUSED_ANNOTATION})"),
                    false => "managementPolicy ObserveOnly".to_string(),
                };
                if change.action != Action::Noop {
                    change.notes.push(format!("the controller sends nothing for it: {why}"));
                }
                self.changes.push(change);
            }
            Decision::Write(planned) => self.changes.push(planned.change().clone()),
        }
    }

    /// A webhook whose app this plan creates: the create the controller sends once the app is
    /// Ready, planned with its app as `apply` plans them. Any other wait is shown as the
    /// controller's condition says.
    async fn after_app(&mut self, (webhook, why): (Webhook, String), ctx: &Context) {
        let hook = Object::Webhook(webhook.clone());
        let AppOf::Object { namespace, name } = webhook.app_of() else {
            return self.error(Kind::Webhook, &hook, why);
        };
        let app_name = format!("{namespace}/{name}");
        let created = self
            .changes
            .iter()
            .position(|c| c.kind == Kind::ConversationApp && c.name == app_name && c.action == Action::Create);
        let app = ctx.tenancy.apps.get(&ObjectRef::new(name).within(namespace));
        let (Some(index), Some(app)) = (created, app) else {
            return self.error(Kind::Webhook, &hook, format!("{why} ({})", Reason::AppNotReady));
        };
        // The access the webhook will have once its app is Ready.
        let mut resolved = webhook.clone();
        prepare::inherit_access(&mut resolved, &app, &ctx.tenancy);
        let app = Object::ConversationApp((*app).clone());
        let planned = async {
            let access = connections::access(&Object::Webhook(resolved), &ctx.tenancy).await?;
            let input = prepare::input(&[&app, &hook], &ctx.tenancy).await?;
            Ok::<_, super::status::Blocked>((access, input))
        };
        let (access, input) = match planned.await {
            Ok(planned) => planned,
            Err(blocked) => {
                return self.error(
                    Kind::Webhook,
                    &hook,
                    format!("{} ({})", blocked.message, blocked.reason),
                );
            }
        };
        self.known.extend(&input.secrets.known());
        let targets = match engine::targets(&input, &access.defaults) {
            Ok(targets) => targets,
            Err(_) => return self.error(Kind::Webhook, &hook, super::reconcile::NO_PROJECT.into()),
        };
        let view = ctx.observations.view(&access.credentials, MAX_AGE);
        let live = observe::observe(&view, &targets, false).await;
        let options = Options {
            tenant: true,
            ..Options::default()
        };
        let plan = engine::plan::build(&input, &targets, &live, &options);
        self.errors.extend(plan.errors);
        for mut change in plan.changes.into_iter().filter(|c| c.kind == Kind::Webhook) {
            change.app_from = Some(index);
            change.after = vec![index];
            change.notes.push(format!(
                "sent once ConversationApp {app_name} is Ready: the controller waits for it"
            ));
            self.changes.push(change);
        }
    }
}

/// The kind's objects, each parsed alone as the controller's watches do: one that cannot be
/// read is an error of its own, and the others are planned.
async fn list<K: Managed>(kube: &kube::Client, namespace: Option<&str>, out: &mut Out) -> crate::Result<Vec<K>> {
    let api: Api<Raw<K>> = match namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    };
    let mut objects = Vec::new();
    pages(&api, |raw| match raw.parse() {
        Ok(object) => objects.push(object),
        Err(why) => out.errors.push(PlanError {
            kind: Some(K::KIND),
            name: Some(format!(
                "{}/{}",
                raw.metadata.namespace.as_deref().unwrap_or_default(),
                raw.metadata.name.as_deref().unwrap_or_default()
            )),
            message: format!("the object cannot be read: {why} ({})", Reason::InvalidSpec),
            class: None,
        }),
    })
    .await?;
    Ok(objects)
}

/// Fills a store of the tenancy kinds from one list.
async fn fill<K>(writer: &mut Writer<K>, api: Api<K>) -> crate::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    pages(&api, |object| {
        writer.apply_watcher_event(&watcher::Event::Apply(object))
    })
    .await
}

/// Every object of `api`, in pages of 50 as the watches read them (never one answer holding a
/// whole kind), each handed to `each`.
async fn pages<K>(api: &Api<K>, mut each: impl FnMut(K)) -> crate::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(50);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| crate::Error::kube(format!("--from-cluster: cannot list {}", K::plural(&())), e))?;
        page.items.into_iter().for_each(&mut each);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// The namespaces' labels, for connections that select namespaces by label. Whoever may not
/// list namespaces plans without them: such connections then allow no namespace, which the
/// plan shows as each object's refusal.
async fn namespaces(
    kube: &kube::Client,
    writer: &mut Writer<kube::core::PartialObjectMeta<Namespace>>,
) -> crate::Result<()> {
    let api: Api<Namespace> = Api::all(kube.clone());
    match api.list_metadata(&ListParams::default()).await {
        Ok(list) => {
            for ns in list {
                writer.apply_watcher_event(&watcher::Event::Apply(ns));
            }
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 403 => Ok(()),
        Err(e) => Err(crate::Error::kube("--from-cluster: cannot list namespaces", e)),
    }
}

/// The key the controller's recorded secret hashes are keyed with, read (never made: a plan
/// writes nothing). Absent, the controller would make a new one, under which every recorded
/// hash reads as a rotation: a random key shows just that.
async fn fingerprint_key(kube: &kube::Client, namespace: &str) -> crate::Result<ring::hmac::Key> {
    match super::startup::stored_fingerprint_key(kube, namespace).await {
        Ok(Some(key)) => Ok(key),
        Ok(None) => {
            let bytes = super::startup::new_fingerprint_key()?;
            Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))
        }
        Err(e) => Err(crate::Error::kube(
            format!(
                "--from-cluster: cannot read Secret {namespace}/{} (the key of the controller's secret fingerprints; --operator-namespace names where the operator runs)",
                super::FINGERPRINT_SECRET
            ),
            e,
        )),
    }
}
