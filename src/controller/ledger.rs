//! The ownership ledger: one `SinchClaim` per Sinch object, naming the object that manages it.
//!
//! Claims are named by what they claim, so creating one is the atomic test: the API server
//! refuses a second claim of the same name (409), and the operator then acts for the holder
//! only. Two names per Sinch object kind:
//! - the id claim (`id:` + the Sinch id), held for as long as the object manages it;
//! - the key claim (`key:` + the natural key, an app's display name or a webhook's app and
//!   target), written BEFORE a create, so that a crash between the POST and the status finds its
//!   own key claim, adopts what it created and never creates it twice. It is kept until its
//!   object is deleted (letting it go earlier would cost the API server one more write per
//!   object; at 1,000 apps the claims were already half of the controller's writes), but counts
//!   only while its object declares that key: once the app is renamed (or the template's id
//!   changed) it is outdated, and the next object that needs the key takes it over. Templates
//!   and the settings know their id before they exist; their id claim is written before the
//!   create.
//!
//! An existing Sinch object that nobody claims is taken only on an explicit opt-in (the adopt
//! annotation naming its id), by a create this object started (its key claim), or when the
//! object's status already records that id (written by an operator version before the ledger).

use super::status::{Blocked, Managed, Reason, Retry};
use crate::engine::Scope;
use crate::model::{ClaimOwner, ConversationApp, Kind, Object, SinchClaim, SinchClaimSpec, Template};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// On an object: the Sinch id it may take over although no object manages it yet.
pub const ADOPT_ANNOTATION: &str = "conversation.sinch.com/adopt";
/// On a ConversationApp: further namespaces (comma-separated) whose Webhooks may attach to it.
pub const GRANT_ANNOTATION: &str = "conversation.sinch.com/webhook-namespaces";
/// On a claim: a hash of its owner, to find all claims of an object being deleted.
pub const OWNER_LABEL: &str = "conversation.sinch.com/owner";

/// A Sinch object as the ledger names it.
#[derive(Clone, Debug)]
pub struct Subject {
    pub scope: Scope,
    pub kind: Kind,
    /// The natural key (see [`SinchClaimSpec::key`]).
    pub key: String,
}

impl Subject {
    /// Templates (their template id) and the settings (their project) know their id before
    /// they exist.
    fn id_is_key(&self) -> bool {
        self.kind.id_known_before_create()
    }

    fn noun(&self) -> &'static str {
        self.kind.noun()
    }

    fn id_claim(&self, id: &str) -> String {
        claim_name(&self.scope, self.kind, &format!("id:{id}"))
    }

    fn key_claim(&self) -> String {
        match self.id_is_key() {
            true => self.id_claim(&self.key),
            false => claim_name(&self.scope, self.kind, &format!("key:{}", self.key)),
        }
    }

    fn where_(&self) -> String {
        format!("in project {} ({})", self.scope.project, self.scope.region)
    }
}

/// The object a claim names as its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// The same object: kind, namespace and name, and its uid. A claim of an earlier object of
    /// the same name (deleted with its finalizer forced off, so its claims stayed; or a
    /// namespace deleted and given to another tenant) is not this object's: see [`Holder::Stale`].
    fn holds(&self, claim: &SinchClaim) -> bool {
        self.named(claim) && (claim.spec.owner.uid.is_empty() || claim.spec.owner.uid == self.uid)
    }

    fn named(&self, claim: &SinchClaim) -> bool {
        claim.spec.kind == self.kind
            && claim.spec.owner.namespace == self.namespace
            && claim.spec.owner.name == self.name
    }

    fn label(&self) -> String {
        hash(&format!("{}/{}/{}", self.kind, self.namespace, self.name))[..40].to_string()
    }
}

/// Who holds a claim.
#[derive(Clone, Debug)]
pub enum Holder {
    Free,
    Ours(Arc<SinchClaim>),
    Other(ClaimOwner),
    /// An earlier object of this object's kind, namespace and name, gone (names are unique at
    /// any time, so its uid is): what it managed is taken over only by adoption, like anything
    /// nobody manages.
    Stale(Arc<SinchClaim>),
}

/// What a reconcile holds before it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// The id claim (or, ObserveOnly, nothing to hold: it never writes).
    Done,
    /// Nothing: an object that does not write observes a Sinch object no object claims. Its
    /// id is shown as observed, never recorded as the object's own.
    Unclaimed,
    /// The key claim of a create: once Sinch answered with the id, [`created`] claims the id.
    Creating,
}

/// `kind-<hash>`: a valid object name whatever the key holds.
pub fn claim_name(scope: &Scope, kind: Kind, tag: &str) -> String {
    let digest = hash(&format!("{}\0{}\0{}\0{tag}", scope.project, scope.region, kind));
    format!("{}-{}", kind.name().to_lowercase(), &digest[..32])
}

fn hash(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The claims as their watch last showed them: each one's spec by its name, which is all the
/// ledger reads. A reflector's store kept every claim whole (its metadata alone is some 400
/// bytes inline, empty or not): 21 MiB of the controller's 66 MiB heap at 1,000 apps, where
/// most objects hold two claims.
#[derive(Clone)]
pub struct ClaimStore {
    claims: Arc<RwLock<HashMap<String, SinchClaimSpec>>>,
    listed: tokio::sync::watch::Receiver<bool>,
}

/// Feeds a [`ClaimStore`] from the claims' watch events.
pub struct ClaimWriter {
    claims: Arc<RwLock<HashMap<String, SinchClaimSpec>>>,
    /// During a relist (`Init` to `InitDone`): the claims that will replace the store's.
    relisted: Option<HashMap<String, SinchClaimSpec>>,
    listed: tokio::sync::watch::Sender<bool>,
}

pub fn claim_store() -> (ClaimStore, ClaimWriter) {
    let claims = Arc::new(RwLock::default());
    let (listed_tx, listed) = tokio::sync::watch::channel(false);
    let store = ClaimStore {
        claims: claims.clone(),
        listed,
    };
    let writer = ClaimWriter {
        claims,
        relisted: None,
        listed: listed_tx,
    };
    (store, writer)
}

impl ClaimStore {
    /// The claim `name` as the store holds it: its name and spec.
    pub fn get(&self, name: &str) -> Option<Arc<SinchClaim>> {
        let spec = self.claims.read().expect("never poisoned").get(name)?.clone();
        Some(Arc::new(SinchClaim::new(name, spec)))
    }

    pub fn count(&self) -> usize {
        self.claims.read().expect("never poisoned").len()
    }

    /// Resolves once the claims were listed once (at once in a dry run, which fills the store
    /// itself).
    pub async fn wait_until_listed(&self) {
        let _ = self.listed.clone().wait_for(|listed| *listed).await;
    }
}

impl ClaimWriter {
    pub fn apply_watcher_event(&mut self, event: watcher::Event<SinchClaim>) {
        let keep = |claims: &mut HashMap<String, SinchClaimSpec>, claim: SinchClaim| {
            claims.insert(claim.name_any(), claim.spec);
        };
        match event {
            watcher::Event::Apply(claim) => keep(&mut self.claims.write().expect("never poisoned"), claim),
            watcher::Event::Delete(claim) => {
                self.claims.write().expect("never poisoned").remove(&claim.name_any());
            }
            watcher::Event::Init => self.relisted = Some(HashMap::new()),
            watcher::Event::InitApply(claim) => keep(self.relisted.get_or_insert_default(), claim),
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    *self.claims.write().expect("never poisoned") = relisted;
                }
                self.listed.send_replace(true);
            }
        }
    }
}

/// Reads and writes the claims: the watch's store first, the API server when it matters.
pub struct Ledger {
    pub api: Api<SinchClaim>,
    pub store: ClaimStore,
    /// What the owners of app and template claims declare now: a claim whose owner has since
    /// changed the natural key (renamed the app, changed the template id) is outdated.
    pub apps: Store<ConversationApp>,
    pub templates: Store<Template>,
    /// A dry run's claims taken (`Some`) and let go (`None`), written nowhere else.
    dry: Option<Mutex<HashMap<String, Option<Arc<SinchClaim>>>>>,
}

impl Ledger {
    pub fn new(
        api: Api<SinchClaim>,
        store: ClaimStore,
        apps: Store<ConversationApp>,
        templates: Store<Template>,
    ) -> Ledger {
        Ledger {
            api,
            store,
            apps,
            templates,
            dry: None,
        }
    }

    /// A ledger that reads the claims but writes none: what [`claim`] would take or let go is
    /// remembered here only, so that `plan --from-cluster` asks the very rules a reconcile
    /// does (two objects wanting one claim: the first takes it, as in the controller).
    pub fn run_dry(&mut self) {
        self.dry = Some(Mutex::default());
    }

    /// A dry run's own claim or release of `name`, if any.
    fn dry_holder(&self, name: &str, me: &Owner) -> Option<Holder> {
        let taken = self.dry.as_ref()?.lock().expect("never poisoned").get(name).cloned()?;
        Some(match taken {
            None => Holder::Free,
            Some(claim) if me.holds(&claim) => Holder::Ours(claim),
            Some(claim) => Holder::Other(claim.spec.owner.clone()),
        })
    }

    /// Who holds `name`: ours from the store (a claim of ours stays ours until we delete it),
    /// anything else confirmed by the API server (the store may not show a claim just made).
    pub async fn holder(&self, name: &str, me: &Owner) -> Result<Holder, kube::Error> {
        if let Some(holder) = self.dry_holder(name, me) {
            return Ok(holder);
        }
        if let Some(claim) = self.store.get(name)
            && me.holds(&claim)
        {
            return Ok(Holder::Ours(claim));
        }
        Ok(match self.api.get_opt(name).await? {
            None => Holder::Free,
            Some(claim) if me.holds(&claim) => Holder::Ours(Arc::new(claim)),
            Some(claim) if me.named(&claim) || self.outdated(&claim) => Holder::Stale(Arc::new(claim)),
            Some(claim) => Holder::Other(claim.spec.owner),
        })
    }

    /// Whether the object a claim names (the same uid) declares another natural key now: a
    /// renamed app, a template with another id. Its claim on the old key would otherwise
    /// reserve a display name or a template id for as long as the object exists (squatting in
    /// a shared project). An owner the store does not show is not judged (the store may lag).
    fn outdated(&self, claim: &SinchClaim) -> bool {
        let owner = &claim.spec.owner;
        let same = |uid: &Option<String>| uid.as_deref() == Some(owner.uid.as_str());
        match claim.spec.kind {
            Kind::ConversationApp => self
                .apps
                .get(&ObjectRef::new(&owner.name).within(&owner.namespace))
                .is_some_and(|a| same(&a.metadata.uid) && a.spec.display_name != claim.spec.key),
            Kind::Template => self
                .templates
                .get(&ObjectRef::new(&owner.name).within(&owner.namespace))
                .is_some_and(|t| same(&t.metadata.uid) && t.spec.id(&owner.name) != claim.spec.key),
            Kind::Webhook | Kind::ProjectSettings => false,
        }
    }

    /// Creates the claim `name`, or says who holds it.
    async fn take(&self, name: &str, spec: SinchClaimSpec, me: &Owner) -> Result<Holder, kube::Error> {
        let mut claim = SinchClaim::new(name, spec);
        claim.labels_mut().insert(OWNER_LABEL.into(), me.label());
        if let Some(dry) = &self.dry {
            let holder = self.holder(name, me).await?;
            if let Holder::Free = holder {
                let claim = Arc::new(claim);
                dry.lock()
                    .expect("never poisoned")
                    .insert(name.to_string(), Some(claim.clone()));
                return Ok(Holder::Ours(claim));
            }
            return Ok(holder);
        }
        match self.api.create(&PostParams::default(), &claim).await {
            Ok(made) => Ok(Holder::Ours(Arc::new(made))),
            Err(kube::Error::Api(e)) if e.code == 409 => self.holder(name, me).await,
            Err(e) => Err(e),
        }
    }

    async fn release(&self, name: &str) -> Result<(), kube::Error> {
        if let Some(dry) = &self.dry {
            dry.lock().expect("never poisoned").insert(name.to_string(), None);
            return Ok(());
        }
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lets go of every claim `me` holds (its object is being deleted).
    pub async fn release_all(&self, me: &Owner) -> Result<(), kube::Error> {
        let params = ListParams::default().labels(&format!("{OWNER_LABEL}={}", me.label()));
        for claim in self.api.list(&params).await? {
            if me.holds(&claim) {
                self.release(&claim.name_any()).await?;
            }
        }
        Ok(())
    }
}

fn spec(subject: &Subject, id: Option<&str>, me: &Owner, adopted: bool) -> SinchClaimSpec {
    SinchClaimSpec {
        project_id: subject.scope.project.clone(),
        region: subject.scope.region,
        kind: subject.kind,
        key: subject.key.clone(),
        id: id.map(str::to_string),
        owner: ClaimOwner {
            namespace: me.namespace.clone(),
            name: me.name.clone(),
            uid: me.uid.clone(),
        },
        adopted: adopted.then_some(true),
    }
}

fn unavailable(e: kube::Error) -> Blocked {
    Blocked::new(
        Reason::ClaimUnavailable,
        format!(
            "cannot read or write the ownership ledger (SinchClaim): {}",
            crate::kube_message(&e)
        ),
        Retry::Backoff,
    )
}

/// A claim that existed a moment ago is gone (its owner let it go meanwhile).
fn raced() -> Blocked {
    Blocked::new(
        Reason::ClaimUnavailable,
        "a claim changed hands while this object took it; looking again soon",
        Retry::Wait,
    )
}

/// What an earlier object of this object's name claimed: taken over only by adoption.
fn stale(subject: &Subject) -> Blocked {
    Blocked::new(
        Reason::AdoptionRequired,
        format!(
            "the {} {} was managed by an earlier object of this name, since deleted; to take it over, set the annotation {ADOPT_ANNOTATION} to its id",
            subject.noun(),
            subject.where_()
        ),
        Retry::Poll,
    )
}

/// The refusal of what another object manages. The owner and the Sinch id are named only to
/// the owner's own namespace: a guessed display name must not tell another tenant an app's id
/// or which namespace and object manage it.
fn owned_elsewhere(subject: &Subject, what: &str, owner: &ClaimOwner, me: &Owner) -> Blocked {
    let message = match owner.namespace == me.namespace {
        true => format!(
            "the {} {what} {} is managed by {} {}/{}; this object may not change it",
            subject.noun(),
            subject.where_(),
            subject.kind,
            owner.namespace,
            owner.name
        ),
        false => format!(
            "the {} {} is managed by an object of another namespace; this object may not change it",
            subject.noun(),
            subject.where_(),
        ),
    };
    Blocked::new(Reason::OwnedElsewhere, message, Retry::Poll)
}

/// What the object may do about the Sinch object its plan found (`id`) or is about to create
/// (`None`). `write`: it may write (Full); ObserveOnly takes nothing but is still refused what
/// another object holds. `recorded`: the id its status records; `adopt`: its adopt annotation.
pub async fn claim(
    ledger: &Ledger,
    me: &Owner,
    subject: &Subject,
    id: Option<&str>,
    write: bool,
    recorded: Option<&str>,
    adopt: Option<&str>,
) -> Result<Held, Blocked> {
    let Some(id) = id else {
        if !write {
            return Ok(Held::Done);
        }
        let name = subject.key_claim();
        let known = subject.id_is_key().then_some(subject.key.as_str());
        let mut holder = ledger
            .take(&name, spec(subject, known, me, false), me)
            .await
            .map_err(unavailable)?;
        // An earlier object of this name claimed the key, and nothing exists in Sinch under
        // it: nothing to take over, so its claim goes and this object's create goes on.
        if let Holder::Stale(_) = holder {
            ledger.release(&name).await.map_err(unavailable)?;
            holder = ledger
                .take(&name, spec(subject, known, me, false), me)
                .await
                .map_err(unavailable)?;
        }
        return match holder {
            Holder::Ours(_) if subject.id_is_key() => Ok(Held::Done),
            Holder::Ours(_) => Ok(Held::Creating),
            Holder::Free => Err(raced()),
            Holder::Stale(_) => Err(raced()),
            Holder::Other(owner) => Err(owned_elsewhere(
                subject,
                &format!("{:?} (claimed for a create)", subject.key),
                &owner,
                me,
            )),
        };
    };
    let name = subject.id_claim(id);
    let adopting = adopt == Some(id);
    match ledger.holder(&name, me).await.map_err(unavailable)? {
        Holder::Ours(_) => return Ok(Held::Done),
        Holder::Other(owner) => return Err(owned_elsewhere(subject, id, &owner, me)),
        // Adopting what an earlier object of this name left: its claim goes first.
        Holder::Stale(_) if adopting && write => ledger.release(&name).await.map_err(unavailable)?,
        Holder::Stale(_) if !write => return Ok(Held::Unclaimed),
        Holder::Stale(_) => return Err(stale(subject)),
        Holder::Free => {}
    }
    // Nobody holds it. A create of ours that crashed before its id was recorded, or a status
    // that records the id, is this object's own; the settings are nobody's but the project's.
    let key_claim = (!subject.id_is_key()).then(|| subject.key_claim());
    let key_holder = match &key_claim {
        Some(key) => Some(ledger.holder(key, me).await.map_err(unavailable)?),
        None => None,
    };
    let recovering = matches!(key_holder, Some(Holder::Ours(_)));
    // An earlier object's key claim is not this object's create to recover: it goes when
    // this object takes the id.
    if let (Some(Holder::Stale(_)), Some(key)) = (&key_holder, &key_claim)
        && adopting
        && write
    {
        ledger.release(key).await.map_err(unavailable)?;
    }
    // A recorded id is the object's own only as the migration from before the ledger (ids are
    // recorded only while claimed now), and never while another object holds the key.
    let migrating = recorded == Some(id) && !matches!(key_holder, Some(Holder::Other(_)));
    let own = recovering || migrating || subject.kind == Kind::ProjectSettings;
    if !own && !adopting {
        if !write {
            return Ok(Held::Unclaimed); // observing what nobody manages takes nothing
        }
        return Err(Blocked::new(
            Reason::AdoptionRequired,
            format!(
                "the {} {} exists in Sinch and no object of this cluster manages it; to take it over, set the annotation {ADOPT_ANNOTATION} to its id",
                subject.noun(),
                subject.where_()
            ),
            // An annotation changes no generation, so no watch event brings it: look each poll.
            Retry::Poll,
        ));
    }
    match ledger
        .take(&name, spec(subject, Some(id), me, adopting && !own), me)
        .await
        .map_err(unavailable)?
    {
        Holder::Ours(_) => {}
        Holder::Other(owner) => return Err(owned_elsewhere(subject, id, &owner, me)),
        Holder::Free => return Err(raced()),
        Holder::Stale(_) => return Err(stale(subject)),
    }
    Ok(Held::Done)
}

/// After a create of ours answered with `id`: the id is claimed. A failure here is repaired by
/// the next reconcile (its key claim makes the object its own); someone else holding an id
/// that did not exist a moment ago is reported by that reconcile too.
pub async fn created(ledger: &Ledger, me: &Owner, subject: &Subject, id: &str) -> Result<(), kube::Error> {
    ledger
        .take(&subject.id_claim(id), spec(subject, Some(id), me, false), me)
        .await
        .map(|_| ())
}

/// Whether deleting the object may delete the Sinch object `id`: only the holder of its claim
/// may (or an object whose status recorded it before the ledger existed). `Ok(Err(why))`:
/// leave it in Sinch, for `why`.
pub async fn may_delete(
    ledger: &Ledger,
    me: &Owner,
    subject: &Subject,
    id: &str,
    recorded: Option<&str>,
    explicit_delete: bool,
) -> Result<Result<(), String>, kube::Error> {
    match ledger.holder(&subject.id_claim(id), me).await? {
        Holder::Ours(claim) if claim.spec.adopted == Some(true) && !explicit_delete => Ok(Err(format!(
            "the {} was adopted (annotation {ADOPT_ANNOTATION}) and deletionPolicy is not Delete: it stays in Sinch",
            subject.noun()
        ))),
        Holder::Ours(_) => Ok(Ok(())),
        Holder::Other(owner) if owner.namespace == me.namespace => Ok(Err(format!(
            "the {} {id} is managed by {} {}/{}: it stays in Sinch",
            subject.noun(),
            subject.kind,
            owner.namespace,
            owner.name
        ))),
        Holder::Other(_) => Ok(Err(format!(
            "the {} is managed by an object of another namespace: it stays in Sinch",
            subject.noun()
        ))),
        Holder::Stale(_) => Ok(Err(format!(
            "the {} {id} was managed by an earlier object of this name: it stays in Sinch",
            subject.noun()
        ))),
        Holder::Free if recorded == Some(id) => Ok(Ok(())),
        Holder::Free => {
            let creating =
                !subject.id_is_key() && matches!(ledger.holder(&subject.key_claim(), me).await?, Holder::Ours(_));
            Ok(match creating {
                true => Ok(()),
                false => Err(format!(
                    "this object never managed the {} {id}: it stays in Sinch",
                    subject.noun()
                )),
            })
        }
    }
}

/// A webhook may attach only to an app a ConversationApp of its namespace manages, or whose
/// object lists the webhook's namespace in [`GRANT_ANNOTATION`].
pub async fn may_attach(ledger: &Ledger, ns: &str, scope: &Scope, app_id: &str) -> Result<(), Blocked> {
    let name = claim_name(scope, Kind::ConversationApp, &format!("id:{app_id}"));
    let claim = match ledger.store.get(&name) {
        Some(c) => Some(c),
        None => ledger.api.get_opt(&name).await.map_err(unavailable)?.map(Arc::new),
    };
    let granted = claim.as_ref().is_some_and(|c| {
        let owner = &c.spec.owner;
        owner.namespace == ns
            || ledger
                .apps
                .get(&ObjectRef::new(&owner.name).within(&owner.namespace))
                .is_some_and(|app| {
                    app.annotations()
                        .get(GRANT_ANNOTATION)
                        .is_some_and(|v| v.split(',').any(|n| n.trim() == ns))
                })
    });
    match granted {
        true => Ok(()),
        false => Err(Blocked::new(
            Reason::AppNotOwned,
            format!(
                "app {app_id} in project {} ({}) is not managed by a ConversationApp of namespace {ns}: a Webhook may attach only to its namespace's apps, or to one whose ConversationApp lists {ns} in the annotation {GRANT_ANNOTATION}",
                scope.project, scope.region
            ),
            Retry::Poll,
        )),
    }
}

/// The object as the ledger names owners.
pub fn owner<K: Managed>(obj: &K) -> Owner {
    Owner {
        kind: K::KIND,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.meta().uid.clone().unwrap_or_default(),
    }
}

/// The Sinch object `resolved` stands for, by its natural key.
pub fn subject(resolved: &Object, scope: &Scope) -> Subject {
    // A webhook's `appRef` is resolved to the app's id before it is claimed.
    let key = resolved.natural_key().unwrap_or_else(|| scope.project.clone());
    Subject {
        scope: scope.clone(),
        kind: resolved.kind(),
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watcher::Event;

    fn claim(name: &str, owner: &str) -> SinchClaim {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim",
            "metadata": {"name": name, "uid": "u", "resourceVersion": "7", "labels": {OWNER_LABEL: "x"}},
            "spec": {"projectId": "p", "region": "us", "kind": "Webhook", "key": "k", "id": "ID",
                     "owner": {"namespace": "ns", "name": owner, "uid": owner}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_claim_store_follows_the_watch_events_and_keeps_name_and_spec() {
        let (store, mut writer) = claim_store();
        let owner = |name: &str| store.get(name).map(|c| c.spec.owner.name.clone());
        writer.apply_watcher_event(Event::Init);
        writer.apply_watcher_event(Event::InitApply(claim("a", "one")));
        assert_eq!(owner("a"), None, "a list is seen whole, at its end");
        let listed = tokio::spawn({
            let store = store.clone();
            async move { store.wait_until_listed().await }
        });
        tokio::task::yield_now().await;
        assert!(!listed.is_finished());
        writer.apply_watcher_event(Event::InitDone);
        listed.await.unwrap();
        let a = store.get("a").unwrap();
        assert_eq!(a.name_any(), "a");
        assert_eq!(a.spec, claim("a", "one").spec);
        assert_eq!(a.metadata.uid, None, "the rest of the metadata is not kept");
        writer.apply_watcher_event(Event::Apply(claim("b", "two")));
        writer.apply_watcher_event(Event::Apply(claim("a", "three")));
        assert_eq!((owner("a"), owner("b")), (Some("three".into()), Some("two".into())));
        writer.apply_watcher_event(Event::Delete(claim("b", "two")));
        assert_eq!((owner("b"), store.count()), (None, 1));
        // A relist replaces every claim once done: one deleted meanwhile is gone.
        writer.apply_watcher_event(Event::Init);
        writer.apply_watcher_event(Event::InitApply(claim("c", "four")));
        assert_eq!(owner("a"), Some("three".into()));
        writer.apply_watcher_event(Event::InitDone);
        assert_eq!((owner("a"), owner("c"), store.count()), (None, Some("four".into()), 1));
    }
}
