//! Each reconcile path against a mocked Kubernetes API (tower-test), asserting every request the
//! controller sends, in order; Sinch is the in-process simulator, whose journal shows the calls.
//!
//! This file is the harness the tests share (the context, the mocked API server, fixtures);
//! the tests live by what they hold to: `lifecycle` (one object's finalizer, create, delete and
//! refusals), `observation` (the shared reads of a scope), `drift` (reports and pausing),
//! `tenancy` (the ledger's claims and the connections).

use super::metrics::Metrics;
use super::observation::Observations;
use super::reconcile::{FINALIZER, reconcile};
use super::status::Retry;
use super::{Context, MAX_POLL_INTERVAL, POLL_INTERVAL_ANNOTATION, backoff, jitter, poll_interval};
use crate::engine::Defaults;
use crate::model::{ConversationApp, Region};
use crate::sim::{self, Sim};
use crate::sinch::Sensitive;
use crate::sinch::client::{Credentials, RetryPolicy};
use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::reflector;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_test::mock::Handle;

type ApiHandle = Handle<Request<Body>, Response<Body>>;

const NS: &str = "shop";
const APPS: &str = "/apis/conversation.sinch.com/v1alpha1/namespaces/shop/conversationapps";

async fn context() -> (Arc<Context>, ApiHandle, Sim) {
    context_with(sim::Config::default()).await
}

async fn context_with(config: sim::Config) -> (Arc<Context>, ApiHandle, Sim) {
    let (ctx, handle, sim) = parts(config).await;
    (Arc::new(ctx), handle, sim)
}

/// The context before it is shared, for a test to fill its stores.
async fn parts(config: sim::Config) -> (Context, ApiHandle, Sim) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let kube = kube::Client::new(service, "default");
    let sim = Sim::start_local(config).await.unwrap();
    // The controller's retry policy: 10 s of waits at most.
    let sinch = sim.client(RetryPolicy::controller()).unwrap();
    let metrics = Arc::new(Metrics::default());
    sinch.count_requests(metrics.sinch_requests.clone());
    let settings = super::Settings {
        resync: Duration::from_secs(600),
        min_poll_interval: Duration::from_secs(1),
        namespace: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        lease_name: "sinch-operator".into(),
        lease_namespace: "sinch-operator-system".into(),
        operator_namespace: "sinch-operator-system".into(),
        identity: "test".into(),
        lease_duration: Duration::from_secs(15),
        concurrency: 8,
        // The tests' namespace, as a single-tenant install would say.
        operator_key: super::connections::OperatorKey::Everywhere,
        deletion: super::Deletion::default(),
    };
    let (ctx, _writers) = Context::new(
        &settings,
        kube,
        Arc::new(Observations::new(sinch, Duration::from_secs(2400))),
        metrics,
        Some(Credentials {
            key_id: "key".into(),
            key_secret: Sensitive("canary-operator-secret-9911".into()),
        }),
        Defaults {
            project: Some("p-test".into()),
            region: Region::Us,
        },
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"a key the operator keeps"),
    );
    (ctx, handle, sim)
}

fn app(extra: Value) -> ConversationApp {
    let mut v = json!({
        "apiVersion": "conversation.sinch.com/v1alpha1",
        "kind": "ConversationApp",
        "metadata": {"name": "web", "namespace": NS, "uid": "uid-1", "generation": 1, "resourceVersion": "7"},
        "spec": {
            "displayName": "Web",
            "channelCredentials": [{"channel": "SMS", "staticBearer": {"claimedIdentity": "web", "tokenRef": {"name": "sms", "key": "token"}}}]
        }
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The next request: its method, path and query, and JSON body; answered with `answer`.
async fn expect(handle: &mut ApiHandle, answer: Value) -> (Method, String, Value) {
    expect_with(handle, |_| (200, answer)).await
}

/// The next request, answered as `answer` says from its body (status code, body).
async fn expect_with(handle: &mut ApiHandle, answer: impl FnOnce(&Value) -> (u16, Value)) -> (Method, String, Value) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("a request within 10 s")
        .expect("the client is alive");
    let method = request.method().clone();
    let uri = request.uri().to_string();
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (code, answer) = answer(&body);
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    (method, uri, body)
}

/// The condition `kind` of a status patch (null when it has none).
fn condition(status_patch: &Value, kind: &str) -> Value {
    status_patch["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The simulator's project, as a person with the operator's key sees it.
fn sinch(sim: &Sim) -> crate::sinch::client::Project {
    sinch_as(sim, "key", "canary-operator-secret-9911")
}

/// The simulator's project, as a person with this access key sees it.
fn sinch_as(sim: &Sim, key_id: &str, key_secret: &str) -> crate::sinch::client::Project {
    let key = Credentials {
        key_id: key_id.into(),
        key_secret: Sensitive(key_secret.into()),
    };
    sim.project_as("p-test", Region::Us, key).unwrap()
}

/// The owner label of the ConversationApp `name` of the test namespace.
fn owner_label(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("ConversationApp/{NS}/{name}").as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()[..40].to_string()
}

/// A create answered as created (the object sent).
fn created(body: &Value) -> (u16, Value) {
    (201, body.clone())
}

fn not_found(_: &Value) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// The CustomResourceDefinition of a kind, installed (not being deleted).
fn crd(name: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": name, "uid": "crd-uid"},
           "spec": {"group": "conversation.sinch.com", "scope": "Namespaced",
                    "names": {"plural": name.split('.').next().unwrap(), "kind": "X"}, "versions": []}})
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/";

fn no_claims(_: &Value) -> (u16, Value) {
    (
        200,
        json!({"apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaimList", "metadata": {}, "items": []}),
    )
}

fn secret() -> Value {
    secret_with("canary-sms-token-7777")
}

fn secret_with(token: &str) -> Value {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(token);
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "sms", "namespace": NS, "labels": {crate::model::SECRET_LABEL: "true"}},
           "data": {"token": encoded}})
}

/// The delay of a requeue (kube's `Action` shows it only through `Debug`).
fn requeue_secs(action: &kube::runtime::controller::Action) -> f64 {
    let debug = format!("{action:?}");
    let inner = debug
        .split("Some(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_default();
    match inner.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().unwrap() / 1000.0,
        None => inner.trim_end_matches('s').parse().unwrap_or(f64::NAN),
    }
}

/// Claims in the mocked API server, by name.
type Claims = Arc<Mutex<BTreeMap<String, Value>>>;

/// Answers every request of the mocked API server: a status patch with the object it names (as
/// the test made it), the ledger's requests from `claims` (create, get, delete, list), anything
/// else (events) with `{}`. Keeps the status patches sent.
/// [`serve_kube`] of one object.
fn serve_one<K: serde::Serialize + kube::Resource<DynamicType = ()>>(
    handle: ApiHandle,
    obj: &K,
    claims: Claims,
) -> Arc<Mutex<Vec<Value>>> {
    serve_kube(handle, by_path(std::slice::from_ref(obj)).into_iter().collect(), claims)
}

fn serve_kube(handle: ApiHandle, objects: HashMap<String, Value>, claims: Claims) -> Arc<Mutex<Vec<Value>>> {
    serve_kube_seen(handle, objects, claims).statuses
}

/// What [`serve_kube_seen`] was sent: status patches, events, and every other write (method,
/// path) but the ledger's.
#[derive(Clone, Default)]
struct Seen {
    statuses: Arc<Mutex<Vec<Value>>>,
    events: Arc<Mutex<Vec<Value>>>,
    writes: Arc<Mutex<Vec<(Method, String)>>>,
}

/// [`serve_kube`], keeping events and other writes too.
fn serve_kube_seen(mut handle: ApiHandle, objects: HashMap<String, Value>, claims: Claims) -> Seen {
    let kept = Seen::default();
    let seen = kept.statuses.clone();
    let record = kept.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let body = request.into_body().collect_bytes().await.unwrap();
            let (code, answer) = if let Some(rest) = path.strip_prefix(CLAIMS) {
                claim_request(&claims, &method, rest.trim_start_matches('/'), &body)
            } else {
                let key = |path: &str| {
                    let name = path.rsplit('/').take(2).collect::<Vec<_>>();
                    format!("{}/{}", name[1], name[0])
                };
                match path.strip_suffix("/status") {
                    Some(object) => {
                        seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                        (200, objects[&key(object)].clone())
                    }
                    // The kinds' CRDs are installed, unless the test says otherwise.
                    None if method == Method::GET && path.starts_with(CRDS) => {
                        let name = &path[CRDS.len()..];
                        (
                            200,
                            objects
                                .get(&format!("customresourcedefinitions/{name}"))
                                .cloned()
                                .unwrap_or_else(|| crd(name)),
                        )
                    }
                    // A Secret the test made, or none.
                    None if method == Method::GET => match objects.get(&key(&path)) {
                        Some(o) => (200, o.clone()),
                        None => not_found(&Value::Null),
                    },
                    None if path.contains("/events") => {
                        record
                            .events
                            .lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        (200, json!({}))
                    }
                    // A finalizer patch: the object as the test made it.
                    None => {
                        record.writes.lock().unwrap().push((method.clone(), path.clone()));
                        (200, objects.get(&key(&path)).cloned().unwrap_or(json!({})))
                    }
                }
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    kept
}

const CLAIMS: &str = "/apis/conversation.sinch.com/v1alpha1/sinchclaims";

/// The API server's answer to a request on the claims (`name` empty: the collection).
fn claim_request(claims: &Claims, method: &Method, name: &str, body: &[u8]) -> (u16, Value) {
    let status = |code: u16, reason: &str| {
        json!({"kind": "Status", "apiVersion": "v1", "status": if code < 300 {"Success"} else {"Failure"},
               "reason": reason, "code": code, "message": reason})
    };
    let mut claims = claims.lock().unwrap();
    match (method.as_str(), name) {
        ("POST", "") => {
            let claim: Value = serde_json::from_slice(body).unwrap();
            let name = claim["metadata"]["name"].as_str().unwrap().to_string();
            if claims.contains_key(&name) {
                return (409, status(409, "AlreadyExists"));
            }
            claims.insert(name, claim.clone());
            (201, claim)
        }
        ("GET", "") => (
            200,
            json!({"apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaimList",
                   "metadata": {}, "items": claims.values().cloned().collect::<Vec<_>>()}),
        ),
        ("GET", name) => match claims.get(name) {
            Some(c) => (200, c.clone()),
            None => (404, status(404, "NotFound")),
        },
        ("DELETE", name) => match claims.remove(name) {
            Some(_) => (200, status(200, "Deleted")),
            None => (404, status(404, "NotFound")),
        },
        other => panic!("unexpected claim request {other:?}"),
    }
}

/// The claim a previous run of the operator wrote for `owner` (kind, name, uid) over `id`.
fn claim(kind: crate::model::Kind, owner: (&str, &str), id: &str, key: &str) -> (String, Value) {
    let scope = crate::engine::Scope {
        project: "p-test".into(),
        region: Region::Us,
    };
    let name = super::ledger::claim_name(&scope, kind, &format!("id:{id}"));
    let value = json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim",
        "metadata": {"name": name},
        "spec": {"projectId": "p-test", "region": "us", "kind": kind.name(), "key": key, "id": id,
                 "owner": {"namespace": NS, "name": owner.0, "uid": owner.1}}
    });
    (name, value)
}

/// N apps in Sinch with 5 webhooks each, as an earlier run of the operator left them (each with
/// its claim for the objects of `inventory`); returns the apps' ids and the claims.
async fn seed(sim: &Sim, ctx: &Context, n: usize) -> (Vec<String>, Claims) {
    let claims = Claims::default();
    let project = sim
        .project_as("p-test", Region::Us, ctx.tenancy.credentials.clone().unwrap())
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let app = project
            .create_app(
                &serde_json::from_value(json!({"display_name": format!("App {i}"), "channel_credentials": []}))
                    .unwrap(),
            )
            .await
            .unwrap();
        let id = app.id.unwrap();
        let (name, value) = claim(
            crate::model::Kind::ConversationApp,
            (&format!("app-{i}"), &format!("uid-app-{i}")),
            &id,
            &format!("App {i}"),
        );
        claims.lock().unwrap().insert(name, value);
        for w in 0..5 {
            let hook = project
                .create_webhook(
                    &serde_json::from_value(
                        json!({"app_id": id, "target": format!("https://hooks.example.com/{i}/{w}"),
                        "target_type": "HTTP", "triggers": ["MESSAGE_INBOUND"]}),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
            let target = format!("https://hooks.example.com/{i}/{w}");
            let (name, value) = claim(
                crate::model::Kind::Webhook,
                (&format!("hook-{i}-{w}"), &format!("uid-hook-{i}-{w}")),
                hook.id.as_deref().unwrap(),
                &format!("{id}/{target}"),
            );
            claims.lock().unwrap().insert(name, value);
        }
        ids.push(id);
    }
    (ids, claims)
}

/// The objects of `seed`'s inventory, each with the finalizer in place.
fn inventory(ids: &[String]) -> (Vec<ConversationApp>, Vec<crate::model::Webhook>) {
    let apps = (0..ids.len())
        .map(|i| {
            app(json!({"metadata": {"name": format!("app-{i}"), "uid": format!("uid-app-{i}"), "finalizers": [FINALIZER]},
                       "spec": {"displayName": format!("App {i}"), "channelCredentials": null}}))
        })
        .collect();
    let webhooks = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            (0..5).map(move |w| {
                serde_json::from_value(json!({
                    "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
                    "metadata": {"name": format!("hook-{i}-{w}"), "namespace": NS, "uid": format!("uid-hook-{i}-{w}"),
                                 "generation": 1, "resourceVersion": "3", "finalizers": [FINALIZER]},
                    "spec": {"appId": id, "target": format!("https://hooks.example.com/{i}/{w}"), "triggers": ["MESSAGE_INBOUND"]}
                }))
                .unwrap()
            })
        })
        .collect();
    (apps, webhooks)
}

fn by_path<K: serde::Serialize + kube::Resource<DynamicType = ()>>(objects: &[K]) -> Vec<(String, Value)> {
    objects
        .iter()
        .map(|o| {
            let key = format!("{}/{}", K::plural(&()), o.meta().name.clone().unwrap());
            (key, serde_json::to_value(o).unwrap())
        })
        .collect()
}

const APPS_LIST: &str = "GET /{region}/v1/projects/{project_id}/apps";
const WEBHOOKS_LIST: &str = "GET /{region}/v1/projects/{project_id}/apps/{app_id}/webhooks";

// The requeue delays of `super` (no API server needed).

#[test]
fn backoff_doubles_from_two_seconds_up_to_five_minutes() {
    let got: Vec<u64> = [1, 2, 3, 8, 9, 50].iter().map(|n| backoff(*n).as_secs()).collect();
    assert_eq!(got, [2, 4, 8, 256, 300, 300]);
}

#[test]
fn jitter_stays_within_ten_percent() {
    for _ in 0..1000 {
        let d = jitter(Duration::from_secs(600)).as_secs_f64();
        assert!((540.0..=660.0).contains(&d), "{d}");
    }
}

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

/// A tenant's annotation once panicked the reconcile (a Duration overflow) and crash-looped both
/// replicas: any interval is capped at a day, and every sum with it saturates.
#[tokio::test]
async fn an_absurd_poll_interval_is_capped_at_a_day_and_nothing_overflows() {
    let (ctx, _handle, _sim) = context().await;
    for huge in ["10000000000000000000s", "18446744073709551615s", "5000000000000h"] {
        let app = app(json!({"metadata": {"annotations": {POLL_INTERVAL_ANNOTATION: huge}}}));
        assert_eq!(
            poll_interval(&app, ctx.resync, ctx.min_poll_interval),
            MAX_POLL_INTERVAL,
            "{huge}"
        );
        assert_eq!(ctx.fresh_for(&app), Duration::from_secs(18 * 3600), "{huge}");
        for retry in [Retry::Poll, Retry::Wait, Retry::ReadBack, Retry::Backoff] {
            ctx.requeue(&app, retry, Some(std::time::Instant::now()));
            ctx.requeue(&app, retry, None);
        }
    }
}

mod drift;
mod lifecycle;
mod observation;
mod tenancy;
