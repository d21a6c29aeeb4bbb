//! The controller's one observation of each scope (design rule 13): what Sinch holds in a
//! (project, region), read once and shared by every reconcile that needs it.
//!
//! Each list (the apps, the templates, the settings, one app's webhooks) is a [`Piece`]: the
//! first reconcile that finds it missing or older than it accepts reads it, and every reconcile
//! that asks meanwhile waits for that one read (single flight: the piece's lock is held while
//! reading). Our own writes update the written object in place from Sinch's answer, so a write
//! never costs a re-list. The engine's `observe` decides what to read, as for `plan`; this module
//! only answers it ([`View`] is an [`observe::Source`]).
//!
//! Entries are keyed by the scope and by the access key that read them (an HMAC of it, keyed with
//! a secret of this process): a reconcile with other credentials, valid or not, never sees what
//! another key read.

use crate::engine::Scope;
use crate::engine::execute::{Fate, execute};
use crate::engine::observe::{self, List, Read, ReadError, shared};
use crate::engine::plan::{Action, Change, Plan};
use crate::input::Secrets;
use crate::model::Kind;
use crate::sinch::app::App;
use crate::sinch::client::{Client, Credentials, Project, Purpose};
use crate::sinch::settings::{IdentityConflict, ProjectSettings};
use crate::sinch::template::Template;
use crate::sinch::webhook::Webhook;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A failed read is shared only this long (by the reconciles waiting for it and those that come
/// right after), so that N objects backing off do not read N times, and an outage ends soon.
const ERROR_REUSE: Duration = Duration::from_secs(2);
/// A failure whose answer asked for a wait (`Retry-After`: a throttled project) is shared until
/// that wait passed, at most this long: every object of the scope then fails at once, holding
/// no worker and sending nothing, instead of each waiting its turn (one tenant's throttled
/// project stalled every tenant's objects of that kind).
const RETRY_AFTER_REUSE: Duration = Duration::from_secs(300);

/// One list as last read, or being read.
struct Piece<T> {
    slot: tokio::sync::Mutex<Option<Entry<T>>>,
    /// When a reconcile last asked for it: pieces nobody asks for are dropped.
    used: Mutex<Instant>,
}

struct Entry<T> {
    /// When the read began: the list is at least this fresh.
    at: Instant,
    read: Read<T>,
}

impl<T> Default for Piece<T> {
    fn default() -> Self {
        Piece {
            slot: tokio::sync::Mutex::new(None),
            used: Mutex::new(Instant::now()),
        }
    }
}

impl<T: Clone> Piece<T> {
    /// The list, read with `fetch` unless what is held is younger than `max_age`.
    async fn get(&self, max_age: Duration, fetch: impl Future<Output = Read<T>>) -> (Read<T>, Instant) {
        *self.used.lock().expect("never poisoned") = Instant::now();
        let mut slot = self.slot.lock().await;
        if let Some(e) = slot.as_ref() {
            let keep = match &e.read {
                Ok(_) => max_age,
                Err(failed) => failed
                    .retry_after
                    .map_or(ERROR_REUSE, |wait| wait.clamp(ERROR_REUSE, RETRY_AFTER_REUSE)),
            };
            if e.at.elapsed() <= keep {
                return (e.read.clone(), e.at);
            }
        }
        let at = Instant::now();
        let read = fetch.await;
        *slot = Some(Entry { at, read: read.clone() });
        (read, at)
    }

    /// Changes the list as held (after our own write); nothing when it was not read or failed:
    /// the next reconcile reads it anyway.
    async fn edit(&self, f: impl FnOnce(&mut T)) {
        if let Some(Entry { read: Ok(list), .. }) = self.slot.lock().await.as_mut() {
            f(Arc::make_mut(list));
        }
    }

    async fn set(&self, value: T) {
        *self.slot.lock().await = Some(Entry {
            at: Instant::now(),
            read: Ok(Arc::new(value)),
        });
    }

    /// How old the list held is; `None` while nothing is held or a read is in flight.
    fn age(&self) -> Option<Duration> {
        let slot = self.slot.try_lock().ok()?;
        slot.as_ref().map(|e| e.at.elapsed())
    }

    fn idle(&self) -> Duration {
        self.used.lock().expect("never poisoned").elapsed()
    }
}

/// What is held of one scope, as read with one access key.
#[derive(Default)]
struct ScopeCache {
    apps: Piece<List<App>>,
    templates: Piece<List<Template>>,
    settings: Piece<Option<ProjectSettings>>,
    /// App id -> its webhooks.
    webhooks: Mutex<HashMap<String, Arc<Piece<List<Webhook>>>>>,
    swept: Mutex<Option<Instant>>,
}

impl ScopeCache {
    fn webhooks_of(&self, app: &str) -> Arc<Piece<List<Webhook>>> {
        self.webhooks
            .lock()
            .expect("never poisoned")
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    fn webhook_pieces(&self) -> Vec<Arc<Piece<List<Webhook>>>> {
        self.webhooks
            .lock()
            .expect("never poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Drops the webhook lists nobody asked for within `idle` (apps deleted, objects gone).
    fn sweep(&self, idle: Duration) {
        let mut swept = self.swept.lock().expect("never poisoned");
        if swept.is_some_and(|at| at.elapsed() < idle.div_f64(4.0)) {
            return;
        }
        *swept = Some(Instant::now());
        self.webhooks
            .lock()
            .expect("never poisoned")
            .retain(|_, piece| piece.idle() < idle);
    }

    fn idle(&self) -> Duration {
        let lists = [self.apps.idle(), self.templates.idle(), self.settings.idle()];
        let webhooks = self.webhook_pieces().iter().map(|p| p.idle()).min();
        lists.into_iter().chain(webhooks).min().unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    /// HMAC of the access key.
    access: String,
}

/// Every scope's observation, shared by all reconciles of all kinds.
pub struct Observations {
    sinch: Client,
    hmac: ring::hmac::Key,
    /// Lists (and whole scopes) nobody asked for this long are dropped.
    idle: Duration,
    scopes: Mutex<HashMap<Key, Arc<ScopeCache>>>,
    /// When idle scopes were last dropped.
    swept: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Observations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observations").field("scopes", &self.ages()).finish()
    }
}

impl Observations {
    /// `idle`: how long an observation nobody asks for is kept (a few poll intervals).
    pub fn new(sinch: Client, idle: Duration) -> Observations {
        let rng = ring::rand::SystemRandom::new();
        let hmac = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).expect("the system has randomness");
        Observations {
            sinch,
            hmac,
            idle,
            scopes: Mutex::default(),
            swept: Mutex::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.sinch
    }

    /// What a reconcile with `credentials` reads through: lists younger than `max_age` are
    /// taken as they are.
    pub fn view<'a>(&'a self, credentials: &'a Credentials, max_age: Duration) -> View<'a> {
        View {
            observations: self,
            access: self.access(credentials),
            credentials,
            max_age,
            oldest: Mutex::new(None),
        }
    }

    fn access(&self, credentials: &Credentials) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.hmac);
        ctx.update(credentials.key_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(credentials.key_secret.0.as_bytes());
        crate::engine::plan::hex16(ctx.sign().as_ref())
    }

    fn scope(&self, access: &str, scope: &Scope) -> Arc<ScopeCache> {
        let mut scopes = self.scopes.lock().expect("never poisoned");
        // Looking at every scope's lists costs as much as the lists are long: not on each read.
        let mut swept = self.swept.lock().expect("never poisoned");
        if swept.is_none_or(|at| at.elapsed() >= self.idle.div_f64(4.0)) {
            *swept = Some(Instant::now());
            scopes.retain(|_, cache| cache.idle() < self.idle);
        }
        drop(swept);
        let cache = scopes
            .entry(Key {
                scope: scope.clone(),
                access: access.to_string(),
            })
            .or_default()
            .clone();
        cache.sweep(self.idle);
        cache
    }

    fn project(&self, scope: &Scope, credentials: &Credentials) -> Project {
        self.sinch.project(&scope.project, scope.region, credentials.clone())
    }

    /// Reads one object again after a write of ours (an app's channel states settle, a template
    /// gets its new version) and puts it into the held list: one GET instead of a re-list.
    /// Returns the app read, if it was one.
    pub async fn read_back(
        &self,
        credentials: &Credentials,
        scope: &Scope,
        kind: Kind,
        id: &str,
        just_created: bool,
    ) -> Option<App> {
        let cache = self.scope(&self.access(credentials), scope);
        let project = self.project(scope, credentials);
        Purpose::ReadBack
            .scope(async {
                match kind {
                    Kind::ConversationApp => match project.get_app(id).await {
                        Ok(app) => {
                            cache
                                .apps
                                .edit(|apps| upsert(apps, app.clone(), |a| a.id.as_deref()))
                                .await;
                            return Some(app);
                        }
                        // Read at once after its create, a 404 may be Sinch not showing the new
                        // app yet (read-after-write is not documented): the answer's copy stays.
                        Err(e) if e.is_not_found() && !just_created => {
                            cache.apps.edit(|apps| remove(apps, id, |a| a.id.as_deref())).await
                        }
                        Err(e) => tracing::info!(error = %e, "reading an app back failed; the next poll reads it"),
                    },
                    Kind::Template => match project.get_template(id).await {
                        Ok(t) => cache.templates.edit(|ts| upsert(ts, t, |t| t.id.as_deref())).await,
                        Err(e) if e.is_not_found() => {
                            cache.templates.edit(|ts| remove(ts, id, |t| t.id.as_deref())).await
                        }
                        Err(e) => tracing::info!(error = %e, "reading a template back failed; the next poll reads it"),
                    },
                    Kind::Webhook | Kind::ProjectSettings => {}
                }
                None
            })
            .await
    }

    /// Our own write, done: the written object as Sinch answered it replaces (or joins, or
    /// leaves) the held list. A write whose answer cannot be read leaves the list to the next
    /// poll.
    pub async fn written(&self, credentials: &Credentials, change: &Change, status: &Fate) {
        let Fate::Done { id, answer, .. } = status else {
            return;
        };
        let scope = Scope {
            project: change.project.clone(),
            region: change.region,
        };
        let cache = self.scope(&self.access(credentials), &scope);
        let id = id.clone().or_else(|| change.id.clone()).unwrap_or_default();
        match (change.kind, change.action) {
            (Kind::ConversationApp, Action::Delete) => {
                cache.apps.edit(|apps| remove(apps, &id, |a| a.id.as_deref())).await;
                cache.webhooks.lock().expect("never poisoned").remove(&id);
            }
            (Kind::ConversationApp, action) => {
                if let Some(app) = parse::<App>(answer) {
                    cache.apps.edit(|apps| upsert(apps, app, |a| a.id.as_deref())).await;
                    if action == Action::Create {
                        // A new app has no webhooks: its webhooks need not list them.
                        cache.webhooks_of(&id).set(Vec::new()).await;
                    }
                }
            }
            (Kind::Webhook, Action::Delete) => {
                for piece in cache.webhook_pieces() {
                    piece.edit(|hooks| remove(hooks, &id, |w| w.id.as_deref())).await;
                }
            }
            (Kind::Webhook, _) => {
                if let Some(hook) = parse::<Webhook>(answer)
                    && let Some(app) = hook.app_id.clone()
                {
                    cache
                        .webhooks_of(&app)
                        .edit(|hooks| upsert(hooks, hook, |w| w.id.as_deref()))
                        .await;
                }
            }
            (Kind::Template, Action::Delete) => {
                cache.templates.edit(|ts| remove(ts, &id, |t| t.id.as_deref())).await;
            }
            (Kind::Template, _) => {
                if let Some(t) = parse::<Template>(answer) {
                    cache.templates.edit(|ts| upsert(ts, t, |t| t.id.as_deref())).await;
                }
            }
            (Kind::ProjectSettings, _) => {
                if let Some(s) = parse::<ProjectSettings>(answer) {
                    cache.settings.set(Some(s)).await;
                }
            }
        }
    }

    /// Per scope and list, the age of the oldest list held: what `/metrics` shows.
    pub fn ages(&self) -> Vec<(Scope, &'static str, Duration)> {
        let scopes: Vec<(Key, Arc<ScopeCache>)> = self
            .scopes
            .lock()
            .expect("never poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut ages: HashMap<(Scope, &'static str), Duration> = HashMap::new();
        for (key, cache) in scopes {
            let webhooks = cache.webhook_pieces().iter().filter_map(|p| p.age()).max();
            for (list, age) in [
                ("apps", cache.apps.age()),
                ("templates", cache.templates.age()),
                ("settings", cache.settings.age()),
                ("webhooks", webhooks),
            ] {
                if let Some(age) = age {
                    let slot = ages.entry((key.scope.clone(), list)).or_default();
                    *slot = (*slot).max(age);
                }
            }
        }
        let mut out: Vec<_> = ages.into_iter().map(|((s, l), a)| (s, l, a)).collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }
}

fn parse<T: DeserializeOwned>(answer: &Option<Value>) -> Option<T> {
    answer.clone().and_then(|v| serde_json::from_value(v).ok())
}

fn upsert<T>(list: &mut List<T>, item: T, id: impl Fn(&T) -> Option<&str>) {
    let Some(key) = id(&item).map(str::to_string) else {
        return;
    };
    match list.iter_mut().find(|x| id(x) == Some(key.as_str())) {
        Some(slot) => *slot = Arc::new(item),
        None => list.push(Arc::new(item)),
    }
}

fn remove<T>(list: &mut List<T>, key: &str, id: impl Fn(&T) -> Option<&str>) {
    list.retain(|x| id(x) != Some(key));
}

/// One reconcile's reads: through the shared observation, each list at most `max_age` old.
pub struct View<'a> {
    observations: &'a Observations,
    credentials: &'a Credentials,
    access: String,
    max_age: Duration,
    oldest: Mutex<Option<Instant>>,
}

impl View<'_> {
    /// When the oldest list this view served was read: the object is due again one poll
    /// interval after it, together with every other object of its scope.
    pub fn observed_at(&self) -> Option<Instant> {
        *self.oldest.lock().expect("never poisoned")
    }

    fn served<T>(&self, (read, at): (Read<T>, Instant)) -> Read<T> {
        let mut oldest = self.oldest.lock().expect("never poisoned");
        *oldest = Some(oldest.map_or(at, |o| o.min(at)));
        read
    }

    fn cache(&self, scope: &Scope) -> Arc<ScopeCache> {
        self.observations.scope(&self.access, scope)
    }

    fn project(&self, scope: &Scope) -> Project {
        self.observations.project(scope, self.credentials)
    }
}

async fn poll<T>(f: impl Future<Output = Result<T, crate::sinch::error::RequestError>>) -> Read<T> {
    Ok(Arc::new(Purpose::Poll.scope(f).await.map_err(ReadError::from)?))
}

impl View<'_> {
    async fn take<T: Clone>(
        &self,
        piece: &Piece<T>,
        fetch: impl Future<Output = Result<T, crate::sinch::error::RequestError>>,
    ) -> Read<T> {
        self.served(piece.get(self.max_age, poll(fetch)).await)
    }
}

impl observe::Source for View<'_> {
    async fn apps(&self, scope: &Scope) -> Read<List<App>> {
        let (p, cache) = (self.project(scope), self.cache(scope));
        self.take(&cache.apps, async { p.list_apps().await.map(shared) }).await
    }

    async fn templates(&self, scope: &Scope) -> Read<List<Template>> {
        let (p, cache) = (self.project(scope), self.cache(scope));
        self.take(&cache.templates, async { p.list_templates().await.map(shared) })
            .await
    }

    async fn settings(&self, scope: &Scope) -> Read<Option<ProjectSettings>> {
        let (p, cache) = (self.project(scope), self.cache(scope));
        self.take(&cache.settings, p.get_settings()).await
    }

    async fn webhooks(&self, scope: &Scope, app: &str) -> Read<List<Webhook>> {
        let (p, piece) = (self.project(scope), self.cache(scope).webhooks_of(app));
        self.take(&piece, async { p.list_webhooks(app).await.map(shared) })
            .await
    }

    /// Read fresh each time: asked for only while enabling unified contact id, and the answer
    /// is what a person acts on.
    async fn identity_conflicts(&self, scope: &Scope) -> Read<Vec<IdentityConflict>> {
        poll(self.project(scope).list_identity_conflicts()).await
    }
}

impl Observations {
    /// Carries out a one-change plan through the shared client and lays what was written over
    /// the shared observation.
    pub async fn write(&self, plan: &Plan, salt: &str, credentials: &Credentials, secrets: &Secrets) -> Fate {
        let outcome = Purpose::Write
            .scope(execute(plan, salt, &self.sinch, credentials, secrets, &|_, _| {}))
            .await;
        let status = outcome.into_iter().next().map(|o| o.status).unwrap_or(Fate::Unchanged);
        if let Some(change) = plan.changes.first() {
            self.written(credentials, change, &status).await;
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::observe::Source;
    use crate::model::Region;
    use crate::sim::{self, Sim};
    use crate::sinch::Sensitive;
    use crate::sinch::client::RetryPolicy;

    const APPS: &str = "GET /{region}/v1/projects/{project_id}/apps";

    fn key(id: &str, secret: &str) -> Credentials {
        Credentials {
            key_id: id.into(),
            key_secret: Sensitive(secret.into()),
        }
    }

    async fn setup() -> (Sim, Observations, Scope) {
        let sim = Sim::start_local(sim::Config {
            keys: vec![("good".into(), "good-secret".into())],
            ..sim::Config::default()
        })
        .await
        .unwrap();
        let client = sim.client(RetryPolicy::default()).unwrap();
        let scope = Scope {
            project: "p".into(),
            region: Region::Us,
        };
        (sim, Observations::new(client, Duration::from_secs(600)), scope)
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_read_until_it_is_older_than_they_accept() {
        let (sim, observations, scope) = setup().await;
        let good = key("good", "good-secret");
        let view = observations.view(&good, Duration::from_millis(300));
        let reads = (0..20).map(|_| view.apps(&scope));
        for read in futures_util::future::join_all(reads).await {
            assert!(read.unwrap().is_empty());
        }
        assert_eq!(sim.stats().count(APPS), 1, "single flight: {:?}", sim.stats());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let reads = (0..20).map(|_| view.apps(&scope));
        futures_util::future::join_all(reads).await;
        assert_eq!(sim.stats().count(APPS), 2, "one refresh once stale: {:?}", sim.stats());
        assert!(view.observed_at().is_some());
    }

    #[tokio::test]
    async fn a_write_laid_over_a_held_list_copies_pointers_not_objects() {
        let named = |id: &str, name: &str| App {
            id: Some(id.into()),
            display_name: Some(name.into()),
            ..App::default()
        };
        let piece: Piece<List<App>> = Piece::default();
        piece.set(shared(vec![named("a", "A"), named("b", "B")])).await;
        let (held, _) = piece.get(Duration::from_secs(60), async { unreachable!() }).await;
        let held = held.unwrap();
        piece
            .edit(|apps| upsert(apps, named("b", "B2"), |a| a.id.as_deref()))
            .await;
        piece
            .edit(|apps| upsert(apps, named("c", "C"), |a| a.id.as_deref()))
            .await;
        let (now, _) = piece.get(Duration::from_secs(60), async { unreachable!() }).await;
        let now = now.unwrap();
        let names = |l: &List<App>| l.iter().map(|a| a.display_name.clone().unwrap()).collect::<Vec<_>>();
        assert_eq!(names(&held), ["A", "B"], "a reconcile's list stays as it read it");
        assert_eq!(names(&now), ["A", "B2", "C"]);
        assert!(
            Arc::ptr_eq(&held[0], &now[0]),
            "the app not written is shared, not copied"
        );
        piece.edit(|apps| remove(apps, "a", |a| a.id.as_deref())).await;
        let (now, _) = piece.get(Duration::from_secs(60), async { unreachable!() }).await;
        assert_eq!(names(&now.unwrap()), ["B2", "C"]);
    }

    #[tokio::test]
    async fn another_access_key_never_sees_what_one_key_read() {
        let (sim, observations, scope) = setup().await;
        let good = key("good", "good-secret");
        let forged = key("good", "guessed");
        assert!(
            observations
                .view(&good, Duration::from_secs(60))
                .apps(&scope)
                .await
                .is_ok()
        );
        let refused = observations
            .view(&forged, Duration::from_secs(60))
            .apps(&scope)
            .await
            .unwrap_err();
        assert_eq!(refused.class, crate::sinch::error::Class::Auth, "{refused}");
        // The refusal is shared for a moment by that key only; the good key still reads its own.
        assert!(
            observations
                .view(&good, Duration::from_secs(60))
                .apps(&scope)
                .await
                .is_ok()
        );
        assert_eq!(sim.stats().count(APPS), 1, "{:?}", sim.stats());
    }
}
