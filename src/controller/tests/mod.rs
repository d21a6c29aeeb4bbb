//! Each reconcile path against a mocked Kubernetes API (tower-test), asserting every request the
//! controller sends, in order; Sinch is the in-process simulator, whose journal shows the calls.

use super::metrics::Metrics;
use super::observation::Observations;
use super::reconcile::{FINALIZER, reconcile};
use super::{Context, backoff, jitter};
use crate::engine::Defaults;
use crate::model::{ConversationApp, Region};
use crate::sim::{self, Sim};
use crate::sinch::Sensitive;
use crate::sinch::client::{Client, Config, Credentials};
use http::{Method, Request, Response};
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
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
    let sim = Sim::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sinch = Client::new(Config {
        endpoints: sim.endpoints(),
        ..Config::default()
    })
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    sinch.count_requests(metrics.sinch_requests.clone());
    let ctx = Context {
        recorder: Recorder::new(
            kube.clone(),
            Reporter {
                controller: "sinch-operator".into(),
                instance: Some("test".into()),
            },
        ),
        kube: kube.clone(),
        observations: Arc::new(Observations::new(sinch, Duration::from_secs(2400))),
        credentials: Some(Credentials {
            key_id: "key".into(),
            key_secret: Sensitive("canary-operator-secret-9911".into()),
        }),
        defaults: Defaults {
            project: Some("p-test".into()),
            region: Region::Us,
        },
        metrics,
        apps: reflector::store().0,
        webhooks: reflector::store().0,
        connections: reflector::store().0,
        namespaces: reflector::store().0,
        ledger: super::ledger::Ledger {
            api: kube::Api::all(kube.clone()),
            store: reflector::store().0,
        },
        operator_namespace: "sinch-operator-system".into(),
        resync: Duration::from_secs(600),
        min_poll_interval: Duration::from_secs(1),
        failures: Mutex::default(),
        read_back: Mutex::default(),
        fingerprint_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"a key the operator keeps"),
    };
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

/// The simulator's project, as a person with the operator's key sees it.
fn sinch(sim: &Sim) -> crate::sinch::client::Project {
    Client::new(Config {
        endpoints: sim.endpoints(),
        ..Config::default()
    })
    .unwrap()
    .project(
        "p-test",
        Region::Us,
        Credentials {
            key_id: "key".into(),
            key_secret: Sensitive("canary-operator-secret-9911".into()),
        },
    )
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
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sms", "namespace": NS},
           "data": {"token": encoded}})
}

#[tokio::test]
async fn a_new_object_first_gets_the_finalizer_and_nothing_else() {
    let (ctx, mut api, sim) = context().await;
    let obj = app(json!({}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));
    let (method, uri, body) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!((method, uri.as_str()), (Method::PATCH, &*format!("{APPS}/web?")));
    assert_eq!(
        body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        ])
    );
    task.await.unwrap().unwrap();
    assert_eq!(
        sim.stats().total,
        0,
        "Sinch is not called before the finalizer is in place"
    );
}

/// The finalizer patch met a newer object (the watch had not yet brought our own finalizer):
/// looked at again in about a second, not counted as a failure, nothing sent to Sinch.
#[tokio::test]
async fn a_finalizer_patch_refused_as_stale_is_retried_soon_and_is_not_a_failure() {
    let (ctx, mut api, sim) = context().await;
    let obj = app(json!({}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx.clone()));
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), api.next_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.method(), Method::PATCH);
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
        "reason": "Invalid", "message": "the server rejected our request due to an error in our request"});
    send.send_response(
        Response::builder()
            .status(422)
            .body(Body::from(serde_json::to_vec(&status).unwrap()))
            .unwrap(),
    );
    let action = task.await.unwrap().unwrap();
    assert!(
        (800..1200).any(|ms| action == kube::runtime::controller::Action::requeue(Duration::from_millis(ms))),
        "{action:?}"
    );
    assert!(!ctx.metrics.render().contains("KubernetesError"));
    assert_eq!(sim.stats().total, 0);
}

#[tokio::test]
async fn apply_creates_in_sinch_then_patches_the_status_and_records_an_event() {
    let (ctx, mut api, sim) = context().await;
    let obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));

    let (method, uri, _) = expect(&mut api, secret()).await;
    assert_eq!(
        (method, uri.as_str()),
        (Method::GET, "/api/v1/namespaces/shop/secrets/sms")
    );
    // The ledger before Sinch: the display name is claimed, then the app created.
    let (method, uri, key_claim) = expect_with(&mut api, created).await;
    assert_eq!((method, uri.as_str()), (Method::POST, &*format!("{CLAIMS}?")));
    assert_eq!(
        key_claim["spec"],
        json!({"projectId": "p-test", "region": "us", "kind": "ConversationApp", "key": "Web",
               "owner": {"namespace": NS, "name": "web", "uid": "uid-1"}})
    );
    assert_eq!(
        sim.journal().iter().filter(|r| r.method == "POST").count(),
        0,
        "claimed first"
    );
    // Once Sinch answered, the id is claimed (the key claim stays while the object exists).
    let (method, uri, id_claim) = expect_with(&mut api, created).await;
    assert_eq!((method, uri.as_str()), (Method::POST, &*format!("{CLAIMS}?")));
    let apps = sinch(&sim).list_apps().await.unwrap();
    assert_eq!(apps.len(), 1);
    let app_id = apps[0].id.clone().unwrap();
    assert_eq!(id_claim["spec"]["id"], app_id.as_str());
    assert_ne!(id_claim["metadata"]["name"], key_claim["metadata"]["name"]);
    let (method, uri, status) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!(
        (method, uri.as_str()),
        (
            Method::PATCH,
            &*format!("{APPS}/web/status?&force=true&fieldManager=sinch-operator-status")
        )
    );
    let created = sim.journal();
    assert_eq!(
        created
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/apps"))
            .count(),
        1
    );
    let s = &status["status"];
    assert_eq!(status["kind"], "ConversationApp");
    assert_eq!(s["projectId"], "p-test");
    assert_eq!(s["region"], "us");
    assert_eq!(s["observedGeneration"], 1);
    assert!(s["appId"].as_str().is_some_and(|id| !id.is_empty()), "{s}");
    let conditions: Vec<(&str, &str, &str)> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [("Ready", "True", "Available"), ("Synced", "True", "ReconcileSuccess")]
    );
    // The hash of the token written, never the token.
    assert_eq!(
        s["secretHashes"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["/channel_credentials/0/static_bearer/token"]
    );
    assert!(!status.to_string().contains("canary-sms-token-7777"));

    let (method, uri, event) = expect(&mut api, json!({})).await;
    assert_eq!(
        (method, uri.as_str()),
        (Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events?")
    );
    assert_eq!(
        (event["reason"].as_str(), event["note"].as_str(), event["type"].as_str()),
        (Some("Created"), Some("created the app in Sinch"), Some("Normal"))
    );
    // Read back soon (the new app's channel states), not after the whole poll interval.
    let action = task.await.unwrap().unwrap();
    assert!((4.5..=5.5).contains(&requeue_secs(&action)), "{action:?}");
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

#[tokio::test]
async fn cleanup_deletes_the_app_in_sinch_then_removes_the_finalizer() {
    let (ctx, mut api, sim) = context().await;
    let created = crate::sinch::client::Client::new(Config {
        endpoints: sim.endpoints(),
        ..Config::default()
    })
    .unwrap()
    .project("p-test", Region::Us, ctx.credentials.clone().unwrap())
    .create_app(
        &serde_json::from_value(json!({"display_name": "Web", "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "w", "token": "t"}}]}))
            .unwrap(),
    )
    .await
    .unwrap();
    let app_id = created.id.unwrap();
    sim.reset_stats();
    let obj = app(json!({
        "metadata": {"finalizers": [FINALIZER], "deletionTimestamp": "2026-11-21T10:00:00Z"},
        "status": {"appId": app_id, "projectId": "p-test", "region": "us"}
    }));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));
    // No claim: the status recorded the id before the ledger existed, so the app is this
    // object's to delete.
    let (method, uri, _) = expect_with(&mut api, not_found).await;
    assert_eq!(method, Method::GET);
    assert!(uri.starts_with(&format!("{CLAIMS}/conversationapp-")), "{uri}");
    let (method, uri, _) = expect_with(&mut api, no_claims).await;
    assert_eq!(
        (method, uri),
        (
            Method::GET,
            format!(
                "{CLAIMS}?&labelSelector=conversation.sinch.com%2Fowner%3D{}",
                owner_label("web")
            )
        )
    );
    let (method, uri, event) = expect(&mut api, json!({})).await;
    assert_eq!(
        (method, uri.as_str()),
        (Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events?")
    );
    assert_eq!(event["reason"], "Deleted");
    assert_eq!(event["note"], format!("deleted app {app_id} in Sinch"));
    assert_eq!(
        sim.stats()
            .count("DELETE /{region}/v1/projects/{project_id}/apps/{app_id}"),
        1
    );
    let (method, uri, body) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!((method, uri.as_str()), (Method::PATCH, &*format!("{APPS}/web?")));
    assert_eq!(
        body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn orphan_removes_the_finalizer_and_never_calls_sinch() {
    let (ctx, mut api, sim) = context().await;
    let obj = app(json!({
        "metadata": {"finalizers": [FINALIZER], "deletionTimestamp": "2026-11-21T10:00:00Z"},
        "spec": {"deletionPolicy": "Orphan"},
        "status": {"appId": "01KEEP", "projectId": "p-test", "region": "us"}
    }));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));
    // Its claims go: a later object must adopt the app.
    let (method, uri, _) = expect_with(&mut api, no_claims).await;
    assert_eq!(method, Method::GET);
    assert!(uri.starts_with(&format!("{CLAIMS}?&labelSelector=")), "{uri}");
    let (_, uri, event) = expect(&mut api, json!({})).await;
    assert_eq!(uri, "/apis/events.k8s.io/v1/namespaces/shop/events?");
    assert_eq!(
        (event["reason"].as_str(), event["note"].as_str()),
        (Some("Orphaned"), Some("deletionPolicy Orphan: the app stays in Sinch"))
    );
    let (method, uri, _) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!((method, uri.as_str()), (Method::PATCH, &*format!("{APPS}/web?")));
    task.await.unwrap().unwrap();
    assert_eq!(sim.stats().total, 0);
}

#[tokio::test]
async fn a_rejected_create_is_reported_and_waits_for_a_change() {
    let (ctx, mut api, sim) = context().await;
    // Sinch answers 400, which retrying cannot fix.
    sim.inject(crate::sim::Fault {
        status: 400,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("POST /us/v1/projects/p-test/apps".into()),
        message: Some("display_name: too long".into()),
    });
    let mut obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    obj.spec.channel_credentials = None;
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx.clone()));
    let (method, _, _) = expect_with(&mut api, created).await; // the key claim; it stays
    assert_eq!(method, Method::POST);
    let (_, uri, status) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert!(
        uri.ends_with("/web/status?&force=true&fieldManager=sinch-operator-status"),
        "{uri}"
    );
    let synced = &status["status"]["conditions"][1];
    assert_eq!(
        (
            synced["type"].as_str(),
            synced["status"].as_str(),
            synced["reason"].as_str()
        ),
        (Some("Synced"), Some("False"), Some("Rejected"))
    );
    assert_eq!(
        synced["message"],
        "POST /v1/projects/p-test/apps: HTTP 400 INVALID_ARGUMENT: display_name: too long"
    );
    let (_, _, event) = expect(&mut api, json!({})).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("Rejected"))
    );
    let action = task.await.unwrap().unwrap();
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    assert!(ctx.metrics.render().contains("reason=\"Rejected\"} 1"));
}

/// A write refused for its key (401, after a new token) or for an object gone from Sinch (404)
/// is reported as such and looked at again each poll interval: no change of the spec fixes it.
#[tokio::test]
async fn a_write_refused_for_the_key_or_a_vanished_object_is_retried_at_the_poll_interval() {
    for (status, reason) in [(401, "CredentialsRefused"), (404, "NotFound")] {
        let (ctx, mut api, sim) = context().await;
        sim.inject(crate::sim::Fault {
            status,
            times: 10,
            retry_after: None,
            after_write: false,
            matching: Some("POST /us/v1/projects/p-test/apps".into()),
            message: None,
        });
        let mut obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
        obj.spec.channel_credentials = None;
        let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx.clone()));
        expect_with(&mut api, created).await; // the key claim
        let (_, _, patch) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
        let synced = &patch["status"]["conditions"][1];
        assert_eq!(
            (synced["status"].as_str(), synced["reason"].as_str()),
            (Some("False"), Some(reason)),
            "{status}: {synced}"
        );
        let (_, _, event) = expect(&mut api, json!({})).await;
        assert_eq!(event["reason"].as_str(), Some(reason));
        let action = task.await.unwrap().unwrap();
        assert!(requeue_secs(&action) > 300.0, "{status}: {action:?}");
        assert!(sinch(&sim).list_apps().await.unwrap().is_empty());
    }
}

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

/// Rule 7: Sinch masks the token, so a rotated Secret is found through the hash the status
/// recorded at the last write, and sent; an unrotated one is not.
#[tokio::test]
async fn a_rotated_secret_that_sinch_masks_is_found_by_its_recorded_hash() {
    let (ctx, mut api, sim) = context_with(sim::Config {
        mask_secrets: true,
        ..sim::Config::default()
    })
    .await;
    let obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx.clone()));
    expect(&mut api, secret_with("canary-token-before")).await;
    expect_with(&mut api, created).await; // the key claim
    let (_, _, id_claim) = expect_with(&mut api, created).await;
    let (_, _, first) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    expect(&mut api, json!({})).await; // Created
    task.await.unwrap().unwrap();

    let mut synced = serde_json::to_value(&obj).unwrap();
    synced["status"] = first["status"].clone();
    let synced: ConversationApp = serde_json::from_value(synced).unwrap();

    // Same value: nothing to write.
    sim.reset_stats();
    let task = tokio::spawn(reconcile(Arc::new(synced.clone()), ctx.clone()));
    expect(&mut api, secret_with("canary-token-before")).await;
    expect(&mut api, id_claim.clone()).await; // ours
    expect(&mut api, serde_json::to_value(&synced).unwrap()).await; // status (sync time)
    task.await.unwrap().unwrap();
    assert_eq!(sim.stats().writes, 0);

    // Rotated: one PATCH of the channel list, with the new token.
    let task = tokio::spawn(reconcile(Arc::new(synced.clone()), ctx.clone()));
    expect(&mut api, secret_with("canary-token-after")).await;
    expect(&mut api, id_claim).await;
    let (_, _, status) = expect(&mut api, serde_json::to_value(&synced).unwrap()).await;
    let (_, _, event) = expect(&mut api, json!({})).await;
    task.await.unwrap().unwrap();
    let patch = sim
        .journal()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(patch.query.as_deref(), Some("update_mask=channel_credentials"));
    assert_eq!(
        patch.body.unwrap()["channel_credentials"][0]["static_bearer"]["token"],
        "canary-token-after"
    );
    assert_ne!(status["status"]["secretHashes"], first["status"]["secretHashes"]);
    assert_eq!(
        (event["reason"].as_str(), event["type"].as_str()),
        (Some("Updated"), Some("Normal")),
        "a rotation is not drift"
    );
}

/// Claims in the mocked API server, by name.
type Claims = Arc<Mutex<BTreeMap<String, Value>>>;

/// Answers every request of the mocked API server: a status patch with the object it names (as
/// the test made it), the ledger's requests from `claims` (create, get, delete, list), anything
/// else (events) with `{}`. Keeps the status patches sent.
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
    let project = Client::new(Config {
        endpoints: sim.endpoints(),
        ..Config::default()
    })
    .unwrap()
    .project("p-test", Region::Us, ctx.credentials.clone().unwrap());
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

#[tokio::test]
async fn n_apps_with_five_webhooks_each_cost_one_apps_list_and_n_webhook_lists() {
    const N: usize = 8;
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, N).await;
    let (apps, webhooks) = inventory(&ids);
    let objects = by_path(&apps).into_iter().chain(by_path(&webhooks)).collect();
    let patches = serve_kube(api, objects, claims);
    sim.reset_stats();

    // Every object at once, as the controllers start them: 6N reconciles.
    let app_runs = apps.iter().map(|a| reconcile(Arc::new(a.clone()), ctx.clone()));
    let hook_runs = webhooks.iter().map(|w| reconcile(Arc::new(w.clone()), ctx.clone()));
    let (a, w) = tokio::join!(
        futures_util::future::join_all(app_runs),
        futures_util::future::join_all(hook_runs)
    );
    for result in a.into_iter().chain(w) {
        result.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.count(APPS_LIST), 1, "{stats:?}");
    assert_eq!(stats.count(WEBHOOKS_LIST), N as u64, "{stats:?}");
    assert_eq!(stats.count("POST /oauth2/token"), 1, "{stats:?}");
    assert_eq!(
        stats.total,
        N as u64 + 2,
        "one apps list, N webhook lists, one token: {stats:?}"
    );
    assert_eq!(stats.writes, 0);
    assert_eq!(
        patches.lock().unwrap().len(),
        6 * N,
        "each object's status written once"
    );
    let metrics = ctx.metrics.render();
    let polls = format!(
        "sinch_operator_sinch_requests_total{{method=\"GET\",route=\"/v1/projects/{{project_id}}/apps/{{app_id}}/webhooks\",status=\"200\",reason=\"poll\"}} {N}"
    );
    assert!(metrics.lines().any(|l| l == polls), "{polls} missing from\n{metrics}");

    // Within the poll interval the same reconciles read nothing again.
    sim.reset_stats();
    let again = webhooks.iter().map(|w| reconcile(Arc::new(w.clone()), ctx.clone()));
    for result in futures_util::future::join_all(again).await {
        result.unwrap();
    }
    assert_eq!(sim.stats().total, 0, "{:?}", sim.stats());
}

#[tokio::test]
async fn a_write_updates_the_shared_view_and_drift_is_found_once_the_interval_passed() {
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 2).await;
    let (_, mut webhooks) = inventory(&ids);
    // The first webhook of app 0 now wants another trigger: a PATCH.
    webhooks[0].spec.triggers = Some(vec![serde_json::from_value(json!("MESSAGE_DELIVERY")).unwrap()]);
    let patches = serve_kube(api, by_path(&webhooks).into_iter().collect(), claims);
    sim.reset_stats();
    for w in &webhooks {
        reconcile(Arc::new(w.clone()), ctx.clone()).await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(
        (stats.count(APPS_LIST), stats.count(WEBHOOKS_LIST), stats.writes),
        (0, 2, 1),
        "{stats:?}"
    );
    assert_eq!(patches.lock().unwrap().len(), 10);
    let metrics = ctx.metrics.render();
    assert!(
        metrics.lines().any(|l| l.starts_with("sinch_operator_sinch_requests_total{method=\"PATCH\",route=\"/v1/projects/{project_id}/webhooks/{webhook_id}\",status=\"200\",reason=\"write\"} 1")),
        "{metrics}"
    );
    // The PATCH's answer is in the shared view: planning the object again finds nothing to do
    // and reads nothing.
    sim.reset_stats();
    reconcile(Arc::new(webhooks[0].clone()), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().total, 0, "{:?}", sim.stats());

    // Someone changes the webhook in Sinch; once the object's poll interval passed, one read of
    // its app's webhooks finds it, and the object's next reconcile sets it back.
    let project = Client::new(Config {
        endpoints: sim.endpoints(),
        ..Config::default()
    })
    .unwrap()
    .project("p-test", Region::Us, ctx.credentials.clone().unwrap());
    let hook = project
        .list_webhooks(&ids[0])
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.target.as_deref() == Some("https://hooks.example.com/0/0"))
        .unwrap();
    let mut changed = hook.clone();
    changed.triggers = Some(vec![serde_json::from_value(json!("MESSAGE_INBOUND")).unwrap()]);
    project
        .update_webhook(hook.id.as_deref().unwrap(), &changed, vec!["triggers".into()])
        .await
        .unwrap();
    sim.reset_stats();
    let mut fast = webhooks[0].clone();
    fast.metadata.annotations =
        Some([(super::reconcile::POLL_INTERVAL_ANNOTATION.to_string(), "2s".to_string())].into());
    tokio::time::sleep(Duration::from_millis(1600)).await; // a read is fresh for 3/4 of the 2 s interval
    reconcile(Arc::new(fast), ctx.clone()).await.unwrap();
    let stats = sim.stats();
    assert_eq!(
        (
            stats.count(APPS_LIST),
            stats.count(WEBHOOKS_LIST),
            stats.count("PATCH /{region}/v1/projects/{project_id}/webhooks/{webhook_id}")
        ),
        (0, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.total, 2, "{stats:?}");
}

#[tokio::test]
async fn a_refused_shared_read_is_reported_on_every_object_as_its_class_says() {
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 1).await;
    let (apps, webhooks) = inventory(&ids);
    let status_bodies = serve_kube(
        api,
        by_path(&apps).into_iter().chain(by_path(&webhooks)).collect(),
        claims,
    );
    sim.reset_stats();
    sim.inject(sim::Fault {
        status: 403,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("/webhooks".into()),
        message: Some("The project is not accessible with this key".into()),
    });
    let runs = webhooks.iter().map(|w| reconcile(Arc::new(w.clone()), ctx.clone()));
    let actions: Vec<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        sim.stats().count(WEBHOOKS_LIST),
        1,
        "one read for all five: {:?}",
        sim.stats()
    );
    let bodies = status_bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 5);
    for body in &bodies {
        let synced = body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Synced")
            .unwrap()
            .clone();
        assert_eq!(synced["reason"], "ReadRefused", "{synced}");
        assert!(synced["message"].as_str().unwrap().contains("HTTP 403"), "{synced}");
    }
    // Not retried with backoff: at the poll interval (600 s), like any terminal answer.
    for action in &actions {
        assert!(requeue_secs(action) > 300.0, "{action:?}");
    }
}

mod drift;
mod tenancy;
