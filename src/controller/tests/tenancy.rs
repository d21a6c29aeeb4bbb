//! Tenancy against the mocked API server: what each refusal sends to Sinch (nothing), and the
//! ledger's claims before, during and after a create, an adoption and a delete.

use super::*;
use crate::model::{Kind, SinchConnection, Webhook};
use kube::runtime::watcher;

/// Seeds an app in Sinch as a person would, outside the operator; returns its id.
async fn outside_app(sim: &Sim, name: &str) -> String {
    sinch(sim)
        .create_app(&serde_json::from_value(json!({"display_name": name, "channel_credentials": []})).unwrap())
        .await
        .unwrap()
        .id
        .unwrap()
}

/// The app of the test namespace without channels (no Secret to read).
fn bare_app(extra: Value) -> ConversationApp {
    let mut a = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    a.spec.channel_credentials = None;
    let mut v = serde_json::to_value(a).unwrap();
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

/// Deletes `obj` with a status that records the app `id` (its own, forged, or an earlier object's).
async fn delete_with_status_naming(obj: &ConversationApp, id: &str, ctx: &Arc<Context>) {
    let mut gone = serde_json::to_value(obj).unwrap();
    gone["metadata"]["deletionTimestamp"] = json!("2026-12-03T10:00:00Z");
    gone["status"] = json!({"appId": id, "projectId": "p-test", "region": "us"});
    reconcile(
        Arc::new(serde_json::from_value::<ConversationApp>(gone).unwrap()),
        ctx.clone(),
    )
    .await
    .unwrap();
}

fn synced(patches: &Arc<Mutex<Vec<Value>>>) -> (String, String, String) {
    let last = patches.lock().unwrap().last().cloned().expect("a status was written");
    let c = condition(&last, "Synced");
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
        c["message"].as_str().unwrap().into(),
    )
}

fn claim_specs(claims: &Claims) -> Vec<Value> {
    claims.lock().unwrap().values().map(|c| c["spec"].clone()).collect()
}

#[tokio::test]
async fn an_app_made_outside_the_operator_is_taken_only_with_the_adopt_annotation_and_stays_when_deleted() {
    let (ctx, api, sim) = context().await;
    let id = outside_app(&sim, "Web").await;
    let claims = Claims::default();
    let obj = bare_app(json!({}));
    let patches = serve_one(api, &obj, claims.clone());
    sim.reset_stats();

    reconcile(Arc::new(obj.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "AdoptionRequired".into(),
            "the app in project p-test (us) exists in Sinch and no object of this cluster manages it; to take it over, set the annotation conversation.sinch.com/adopt to its id".into()
        )
    );
    assert_eq!(sim.stats().writes, 0);
    assert!(claims.lock().unwrap().is_empty());
    // The wrong id adopts nothing either.
    let wrong = bare_app(json!({"metadata": {"annotations": {"conversation.sinch.com/adopt": "01OTHER"}}}));
    reconcile(Arc::new(wrong), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).1, "AdoptionRequired");

    let adopting = bare_app(json!({"metadata": {"annotations": {"conversation.sinch.com/adopt": id}}}));
    reconcile(Arc::new(adopting.clone()), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).0, "True", "{:?}", synced(&patches));
    assert_eq!(
        claim_specs(&claims),
        [
            json!({"projectId": "p-test", "region": "us", "kind": "ConversationApp", "key": "Web", "id": id,
                "owner": {"namespace": NS, "name": "web", "uid": "uid-1"}, "adopted": true})
        ]
    );
    assert_eq!(sim.stats().writes, 0, "the app already matched");

    // Deleted without a deletionPolicy: an adopted app stays in Sinch; the claim goes.
    delete_with_status_naming(&adopting, &id, &ctx).await;
    assert_eq!(sim.stats().writes, 0);
    assert_eq!(sinch(&sim).list_apps().await.unwrap().len(), 1);
    assert!(claims.lock().unwrap().is_empty());
}

#[tokio::test]
async fn what_another_namespace_manages_is_never_changed_nor_deleted() {
    let (ctx, api, sim) = context().await;
    let id = outside_app(&sim, "Web").await;
    let claims = Claims::default();
    let (name, mut theirs) = claim(Kind::ConversationApp, ("web", "uid-theirs"), &id, "Web");
    theirs["spec"]["owner"]["namespace"] = json!("team-a");
    claims.lock().unwrap().insert(name, theirs.clone());
    // Even with the adopt annotation, and a spec that differs (a write would follow).
    let obj = bare_app(json!({
        "metadata": {"annotations": {"conversation.sinch.com/adopt": id}},
        "spec": {"conversationMetadataReportView": "FULL"}
    }));
    let patches = serve_one(api, &obj, claims.clone());
    sim.reset_stats();
    reconcile(Arc::new(obj.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "OwnedElsewhere".into(),
            // Neither the id nor the other namespace's object is told.
            "the app in project p-test (us) is managed by an object of another namespace; this object may not change it"
                .to_string()
        )
    );
    assert_eq!(sim.stats().writes, 0);

    // A status naming that app (as if forged) deletes nothing either.
    delete_with_status_naming(&obj, &id, &ctx).await;
    assert_eq!(sim.stats().writes, 0);
    assert_eq!(claim_specs(&claims), [theirs["spec"].clone()], "their claim stays");
}

#[tokio::test]
async fn a_create_that_crashed_after_its_claim_adopts_what_it_made_and_never_creates_twice() {
    let (ctx, api, sim) = context().await;
    // The crashed run claimed the name and created the app; then it died before the id claim
    // and the status.
    let id = outside_app(&sim, "Web").await;
    let claims = Claims::default();
    let scope = crate::engine::Scope {
        project: "p-test".into(),
        region: Region::Us,
    };
    let key_name = super::super::ledger::claim_name(&scope, Kind::ConversationApp, "key:Web");
    claims.lock().unwrap().insert(
        key_name.clone(),
        json!({"apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim",
               "metadata": {"name": key_name},
               "spec": {"projectId": "p-test", "region": "us", "kind": "ConversationApp", "key": "Web",
                        "owner": {"namespace": NS, "name": "web", "uid": "uid-1"}}}),
    );
    let obj = bare_app(json!({}));
    let patches = serve_one(api, &obj, claims.clone());
    sim.reset_stats();
    reconcile(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).0, "True", "{:?}", synced(&patches));
    assert_eq!(sim.stats().writes, 0, "nothing created again");
    assert_eq!(sinch(&sim).list_apps().await.unwrap().len(), 1);
    let specs = claim_specs(&claims);
    let ids: Vec<&Value> = specs.iter().filter_map(|s| s.get("id")).collect();
    assert_eq!(ids, [&json!(id)], "the id claimed beside the key: {specs:?}");
    assert!(
        specs.iter().all(|s| s.get("adopted").is_none()),
        "its own create, not an adoption"
    );
}

#[tokio::test]
async fn a_webhook_may_attach_only_to_an_app_of_its_namespace_or_one_that_grants_it() {
    let (mut parts, api, sim) = parts(sim::Config::default()).await;
    let id = outside_app(&sim, "Theirs").await;
    let claims = Claims::default();
    let (name, mut theirs) = claim(Kind::ConversationApp, ("theirs", "uid-theirs"), &id, "Theirs");
    theirs["spec"]["owner"]["namespace"] = json!("team-a");
    claims.lock().unwrap().insert(name, theirs);
    let (apps, mut writer) = reflector::store::<ConversationApp>();
    parts.tenancy.apps = apps.clone();
    parts.ledger.apps = apps;
    let (webhooks, mut hooks) = crate::controller::watches::webhook_store();
    parts.webhooks = webhooks;
    let ctx = Arc::new(parts);
    let webhook = |ns: &str, uid: &str, created: &str| -> Webhook {
        serde_json::from_value(json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
            "metadata": {"name": "spy", "namespace": ns, "uid": uid, "generation": 1, "finalizers": [FINALIZER],
                         "creationTimestamp": created},
            "spec": {"appId": id, "target": "https://attacker.example.com/in", "triggers": ["MESSAGE_INBOUND"]}
        }))
        .unwrap()
    };
    let hook = webhook(NS, "uid-spy", "2026-12-06T00:00:00Z");
    // An older Webhook for the same app and target in a namespace that may not attach to the
    // app blocks nothing (it once did, and its Conflict message told its names).
    hooks.apply_watcher_event(&watcher::Event::Apply(webhook(
        "squatter",
        "uid-squat",
        "2026-01-01T00:00:00Z",
    )));
    let patches = serve_one(api, &hook, claims);
    sim.reset_stats();
    reconcile(Arc::new(hook.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "AppNotOwned".into(),
            format!(
                "app {id} in project p-test (us) is not managed by a ConversationApp of namespace shop: a Webhook may attach only to its namespace's apps, or to one whose ConversationApp lists shop in the annotation conversation.sinch.com/webhook-namespaces"
            )
        )
    );
    assert_eq!(sim.stats().total, 0, "not even read: {:?}", sim.stats());

    // Their ConversationApp grants namespace shop: the webhook is created.
    let granting: ConversationApp = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
        "metadata": {"name": "theirs", "namespace": "team-a", "uid": "uid-theirs",
                     "annotations": {"conversation.sinch.com/webhook-namespaces": "billing, shop"}},
        "spec": {"displayName": "Theirs"}
    }))
    .unwrap();
    writer.apply_watcher_event(&watcher::Event::Apply(granting));
    reconcile(Arc::new(hook), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).0, "True", "{:?}", synced(&patches));
    assert_eq!(sim.stats().count("POST /{region}/v1/projects/{project_id}/webhooks"), 1);
}

/// A connection for namespace `shop` in project p-test whose key is the only one Sinch takes.
fn connection(extra: Value) -> SinchConnection {
    let mut v = json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchConnection",
        "metadata": {"name": "shop-prod"},
        "spec": {"projectId": "p-test", "region": "us", "credentialsSecretRef": {"name": "sinch-shop"},
                 "namespaces": {"names": [NS]}}
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn connection_secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "sinch-shop", "namespace": "sinch-operator-system"},
           "data": {"keyId": b64("shop-key"), "keySecret": b64("canary-connection-secret-4242")}})
}

#[tokio::test]
async fn objects_use_only_the_connection_their_namespace_may_use() {
    // Sinch takes only the connection's key: the operator's own is refused.
    let (mut parts, api, sim) = parts(sim::Config {
        keys: vec![("shop-key".into(), "canary-connection-secret-4242".into())],
        ..sim::Config::default()
    })
    .await;
    let (connections, mut writer) = reflector::store::<SinchConnection>();
    writer.apply_watcher_event(&watcher::Event::Apply(connection(json!({}))));
    writer.apply_watcher_event(&watcher::Event::Apply(connection(json!({
        "metadata": {"name": "billing"}, "spec": {"projectId": "p-billing", "namespaces": {"names": ["billing"]}}
    }))));
    parts.tenancy.connections = connections;
    let ctx = Arc::new(parts);
    let obj = bare_app(json!({}));
    let elsewhere = bare_app(json!({"spec": {"projectId": "p-billing"}}));
    let named = bare_app(json!({"spec": {"connectionRef": {"name": "billing"}}}));
    let settings: crate::model::ProjectSettings = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ProjectSettings",
        "metadata": {"name": "web", "namespace": NS, "uid": "uid-s", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"contactSettings": {"unifiedContactIdEnabled": true}}
    }))
    .unwrap();
    let mut objects: HashMap<String, Value> = by_path(std::slice::from_ref(&obj)).into_iter().collect();
    objects.extend(by_path(std::slice::from_ref(&settings)));
    objects.insert("secrets/sinch-shop".into(), connection_secret());
    let claims = Claims::default();
    let patches = serve_kube(api, objects, claims.clone());

    for (object, reason, message) in [
        (
            &elsewhere,
            "ProjectNotAllowed",
            "spec.projectId \"p-billing\" is not the project of SinchConnection shop-prod (p-test): this namespace may use only that project",
        ),
        (
            &named,
            "ConnectionRefused",
            "SinchConnection billing (spec.connectionRef) does not allow namespace shop",
        ),
    ] {
        reconcile(Arc::new(object.clone()), ctx.clone()).await.unwrap();
        assert_eq!(synced(&patches), ("False".into(), reason.into(), message.into()));
    }
    reconcile(Arc::new(settings), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "SettingsNotAllowed".into(),
            "SinchConnection shop-prod does not let namespace shop manage the settings of project p-test (spec.settingsNamespaces)".into()
        )
    );
    assert_eq!(sim.stats().total, 0, "nothing sent: {:?}", sim.stats());

    // The namespace's own connection: its key creates the app.
    reconcile(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).0, "True", "{:?}", synced(&patches));
    assert_eq!(
        sinch_as(&sim, "shop-key", "canary-connection-secret-4242")
            .list_apps()
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !patches
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.to_string().contains("canary-connection-secret"))
    );
}

#[tokio::test]
async fn with_connections_a_namespace_none_allows_reaches_nothing_not_even_with_the_operators_key() {
    let (mut parts, api, sim) = parts(sim::Config::default()).await;
    parts.tenancy.operator_key = "team-a, team-b".parse().unwrap();
    let (connections, mut writer) = reflector::store::<SinchConnection>();
    writer.apply_watcher_event(&watcher::Event::Apply(connection(
        json!({"spec": {"namespaces": {"names": ["team-a"]}}}),
    )));
    parts.tenancy.connections = connections;
    let ctx = Arc::new(parts);
    let obj = bare_app(json!({}));
    let patches = serve_one(api, &obj, Claims::default());
    reconcile(Arc::new(obj), ctx).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "NoConnection".into(),
            "no SinchConnection allows namespace shop: the platform admin decides which namespace uses which project"
                .into()
        )
    );
    assert_eq!(sim.stats().total, 0);
}

/// Connections that disappear (deleted, or a CRD reinstall) do not let every namespace fall
/// back to the operator's key: it serves only the namespaces `--operator-key-namespaces` names.
#[tokio::test]
async fn without_any_connection_the_operators_key_serves_only_the_namespaces_named() {
    for (operator_key, reason) in [
        ("", "NoConnection"),
        ("team-a", "NoConnection"),
        ("*", "ReconcileSuccess"),
        ("team-a,shop", "ReconcileSuccess"),
    ] {
        let (mut parts, api, sim) = parts(sim::Config::default()).await;
        parts.tenancy.operator_key = operator_key.parse().unwrap();
        let obj = bare_app(json!({}));
        let patches = serve_one(api, &obj, Claims::default());
        reconcile(Arc::new(obj), Arc::new(parts)).await.unwrap();
        assert_eq!(synced(&patches).1, reason, "--operator-key-namespaces {operator_key:?}");
        if reason == "NoConnection" {
            assert_eq!(sim.stats().total, 0);
        }
    }
    assert!("*,shop".parse::<crate::controller::connections::OperatorKey>().is_err());
}

/// An object that only observed an app nobody claims records it as observed, never as its own:
/// switched to Full it must adopt like any other object (it once took the app over, and deleted
/// it on removal). Its recorded id from before is no claim either while another object holds
/// the app's key.
#[tokio::test]
async fn an_observed_app_is_no_claim_when_the_object_switches_to_full() {
    let (ctx, api, sim) = context().await;
    let id = outside_app(&sim, "Web").await;
    let claims = Claims::default();
    let observing = bare_app(json!({"spec": {"managementPolicy": "ObserveOnly"}}));
    let patches = serve_one(api, &observing, claims.clone());
    reconcile(Arc::new(observing), ctx.clone()).await.unwrap();
    let status = patches.lock().unwrap().last().unwrap()["status"].clone();
    assert_eq!(status["observedId"], json!(id));
    assert_eq!(status.get("appId"), None, "{status}");
    assert!(claims.lock().unwrap().is_empty());

    // Switched to Full with what the status says: adoption is required, nothing is written.
    let mut full = bare_app(json!({}));
    full.status = serde_json::from_value(status).unwrap();
    sim.reset_stats();
    reconcile(Arc::new(full), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).1, "AdoptionRequired");
    assert_eq!(sim.stats().writes, 0);
    assert!(claims.lock().unwrap().is_empty());
}

/// A Secret is used only when labelled for the operator: a user who may write an app or a
/// Webhook but not read Secrets cannot have one sent to Sinch (or, through `clientCredentials`,
/// to an endpoint of theirs). A missing key is named alone, never with the Secret's other keys.
#[tokio::test]
async fn only_secrets_labelled_for_the_operator_are_used_and_their_other_keys_stay_unnamed() {
    let mut unlabelled = secret();
    unlabelled["metadata"]["labels"] = json!({});
    let mut other_keys = secret();
    other_keys["data"] = json!({"db-password": "aHVudGVyMg==", "api-token": "eA=="});
    let cases = [
        (
            unlabelled,
            "SecretNotLabelled",
            "Secret shop/sms (spec.channelCredentials[0].staticBearer.tokenRef) is not labelled for the operator: it uses only Secrets labelled conversation.sinch.com/operator-secret=true (kubectl -n shop label secret sms conversation.sinch.com/operator-secret=true)",
        ),
        (
            other_keys,
            "SecretNotFound",
            "waiting for key \"token\" of Secret shop/sms (spec.channelCredentials[0].staticBearer.tokenRef): not found",
        ),
    ];
    for (secret, reason, message) in cases {
        let (ctx, api, sim) = context().await;
        let obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
        let mut objects: HashMap<String, Value> = by_path(std::slice::from_ref(&obj)).into_iter().collect();
        objects.insert("secrets/sms".into(), secret);
        let patches = serve_kube(api, objects, Claims::default());
        reconcile(Arc::new(obj), ctx).await.unwrap();
        assert_eq!(synced(&patches), ("False".into(), reason.into(), message.into()));
        assert_eq!(sim.stats().total, 0);
    }
}

/// A claim is its owner's by uid, not by name: an object created again under the name of one
/// whose claims stayed (its finalizer forced off, or its namespace deleted and given to another
/// tenant) inherits nothing. It takes the app over only by adoption, which replaces the old
/// claim; deleting it without adoption deletes nothing.
#[tokio::test]
async fn a_claim_of_an_earlier_object_of_the_same_name_is_taken_only_by_adoption() {
    let (ctx, api, sim) = context().await;
    let id = outside_app(&sim, "Web").await;
    let claims = Claims::default();
    let (name, old) = claim(Kind::ConversationApp, ("web", "uid-gone"), &id, "Web");
    claims.lock().unwrap().insert(name.clone(), old);
    let obj = bare_app(json!({"spec": {"conversationMetadataReportView": "FULL"}}));
    let patches = serve_one(api, &obj, claims.clone());
    sim.reset_stats();
    reconcile(Arc::new(obj.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches),
        (
            "False".into(),
            "AdoptionRequired".into(),
            "the app in project p-test (us) was managed by an earlier object of this name, since deleted; to take it over, set the annotation conversation.sinch.com/adopt to its id".into()
        )
    );
    assert_eq!(sim.stats().writes, 0);

    // A forged status naming the app deletes nothing either.
    delete_with_status_naming(&obj, &id, &ctx).await;
    assert_eq!(sim.stats().writes, 0);

    // Adopted: the old claim is replaced by this object's.
    let adopting = bare_app(json!({
        "metadata": {"annotations": {"conversation.sinch.com/adopt": id}},
        "spec": {"conversationMetadataReportView": "FULL"}
    }));
    reconcile(Arc::new(adopting), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).1, "ReconcileSuccess", "{:?}", synced(&patches));
    assert_eq!(claims.lock().unwrap()[&name]["spec"]["owner"]["uid"], "uid-1");
    assert_eq!(sim.stats().writes, 1);
}

/// Deleting a Webhook object that names another tenant's app deletes nothing there, and its
/// events do not tell that app's webhook id (cleanup asks `may_attach` as apply does).
#[tokio::test]
async fn deleting_a_webhook_on_another_tenants_app_deletes_nothing_and_tells_no_id() {
    let (ctx, api, sim) = context().await;
    let app = outside_app(&sim, "Theirs").await;
    let target = "https://theirs.example.com/in";
    let hook: crate::sinch::webhook::Webhook = serde_json::from_value(json!({
        "app_id": app, "target": target, "target_type": "HTTP", "triggers": ["MESSAGE_INBOUND"]
    }))
    .unwrap();
    let theirs = sinch(&sim).create_webhook(&hook).await.unwrap().id.unwrap();
    let claims = Claims::default();
    let (name, mut claim_value) = claim(Kind::ConversationApp, ("theirs", "uid-theirs"), &app, "Theirs");
    claim_value["spec"]["owner"]["namespace"] = json!("team-a");
    claims.lock().unwrap().insert(name, claim_value);
    let spy: Webhook = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
        "metadata": {"name": "spy", "namespace": NS, "uid": "uid-spy", "generation": 1, "finalizers": [FINALIZER],
                     "deletionTimestamp": "2026-12-06T10:00:00Z"},
        "spec": {"appId": app, "target": target, "triggers": ["MESSAGE_INBOUND"], "deletionPolicy": "Delete"}
    }))
    .unwrap();
    let seen = serve_kube_seen(api, by_path(std::slice::from_ref(&spy)).into_iter().collect(), claims);
    sim.reset_stats();
    reconcile(Arc::new(spy), ctx).await.unwrap();
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    assert_eq!(sinch(&sim).list_webhooks(&app).await.unwrap().len(), 1);
    let events = seen.events.lock().unwrap().clone();
    assert!(!events.is_empty());
    for e in &events {
        assert!(!e.to_string().contains(&theirs), "{e}");
    }
}

/// A key claim lasts only while its object declares that key: an app renamed in another
/// namespace no longer reserves its old display name (it could otherwise squat any number of
/// names in a shared project); while it declares the name, the name is its.
#[tokio::test]
async fn a_renamed_apps_old_display_name_is_free_for_others() {
    let (mut parts, api, sim) = parts(sim::Config::default()).await;
    let scope = crate::engine::Scope {
        project: "p-test".into(),
        region: Region::Us,
    };
    let name = super::super::ledger::claim_name(&scope, Kind::ConversationApp, "key:Web");
    let held = json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "SinchClaim", "metadata": {"name": name},
        "spec": {"projectId": "p-test", "region": "us", "kind": "ConversationApp", "key": "Web",
                 "owner": {"namespace": "team-a", "name": "theirs", "uid": "uid-theirs"}}
    });
    let claims = Claims::default();
    claims.lock().unwrap().insert(name.clone(), held);
    let theirs = |display: &str| -> ConversationApp {
        serde_json::from_value(json!({
            "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
            "metadata": {"name": "theirs", "namespace": "team-a", "uid": "uid-theirs"},
            "spec": {"displayName": display}
        }))
        .unwrap()
    };
    let (apps, mut writer) = reflector::store::<ConversationApp>();
    writer.apply_watcher_event(&watcher::Event::Apply(theirs("Web")));
    parts.ledger.apps = apps;
    let ctx = Arc::new(parts);
    let obj = bare_app(json!({}));
    let patches = serve_one(api, &obj, claims.clone());
    reconcile(Arc::new(obj.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        synced(&patches).1,
        "OwnedElsewhere",
        "the name is theirs while they declare it"
    );
    assert_eq!(sim.stats().writes, 0);

    // Renamed: the old name is free.
    writer.apply_watcher_event(&watcher::Event::Apply(theirs("Shop")));
    reconcile(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(synced(&patches).1, "ReconcileSuccess", "{:?}", synced(&patches));
    assert_eq!(sim.stats().count("POST /{region}/v1/projects/{project_id}/apps"), 1);
    assert_eq!(claims.lock().unwrap()[&name]["spec"]["owner"]["uid"], "uid-1");
}

/// A display name a tenant guessed does not tell it the ids of the apps that have it (the CLI,
/// run with an admin's key, names them).
#[tokio::test]
async fn an_ambiguous_display_name_tells_a_tenant_no_ids() {
    let (ctx, api, sim) = context().await;
    let first = outside_app(&sim, "Web").await;
    outside_app(&sim, "Web").await;
    let obj = bare_app(json!({}));
    let patches = serve_one(api, &obj, Claims::default());
    reconcile(Arc::new(obj), ctx).await.unwrap();
    let (status, reason, message) = synced(&patches);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "CannotPlan"));
    assert_eq!(
        message,
        "2 apps are named \"Web\" in this project and region: set spec.appId to the one to manage"
    );
    assert!(!message.contains(&first));
}

/// Reconciles asking for one Secret while a read of it is in flight, or within
/// `SECRET_REUSE` of its answer, share that read; one asking later reads it anew (a rotated
/// Secret is seen at the next poll).
#[tokio::test]
async fn reads_of_one_secret_close_together_share_one_get() {
    use crate::controller::connections::SECRET_REUSE;
    let (ctx, mut api, _sim) = context().await;
    let ask = || crate::controller::connections::get_secret(&ctx.tenancy, NS, "sms");
    let token = |answer: Result<Option<Arc<k8s_openapi::api::core::v1::Secret>>, _>| {
        let secret = answer.unwrap().unwrap();
        secret.data.as_ref().unwrap()["token"].0.clone()
    };
    let together = futures_util::future::join_all((0..10).map(|_| ask()));
    let serve = async {
        let (method, path, _) = expect(&mut api, secret()).await;
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("GET", &*format!("/api/v1/namespaces/{NS}/secrets/sms"))
        );
    };
    // One GET is answered: ten asks that did not share it would wait for ever.
    let answers = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(together, serve).0 })
        .await
        .expect("the ten asks shared the one GET");
    let first = token(answers.into_iter().next().unwrap());
    // Right after the answer: no GET is sent (none would be answered).
    let again = tokio::time::timeout(Duration::from_secs(1), ask())
        .await
        .expect("an ask right after the answer shares it");
    assert_eq!(token(again), first);
    assert_eq!(ctx.tenancy.shared.held(), 1);
    tokio::time::sleep(SECRET_REUSE + Duration::from_millis(100)).await;
    let (later, (_, path, _)) = tokio::join!(ask(), expect(&mut api, secret_with("rotated")));
    assert_eq!(path, format!("/api/v1/namespaces/{NS}/secrets/sms"));
    assert_eq!(token(later), b"rotated");
    assert_eq!(ctx.tenancy.shared.held(), 1, "the old read is gone, the new one held");
}
