//! One object's life against the mocked API server, request by request: the finalizer first,
//! the create (claimed in the ledger before Sinch is called), the delete or the orphaning,
//! the answers no retry fixes (a rejected create, a refused key), and a rotated Secret.

use super::*;
use crate::controller::connections::SECRET_REUSE;

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
    // Sinch answered the create with the channel PENDING: the app was read back at once, and
    // the status shows what Sinch decided.
    assert_eq!(
        s["channels"],
        json!([{"channel": "SMS", "credentialOrdinalNumber": 0, "state": "ACTIVE", "description": ""}])
    );
    assert_eq!(
        sim.stats()
            .count("GET /{region}/v1/projects/{project_id}/apps/{app_id}"),
        1,
        "read back"
    );
    // No `Created` event: the status says it, and the event would be one more write to the
    // API server per object. The channels settled: no read-back later, the next look is the
    // poll's.
    let action = task.await.unwrap().unwrap();
    assert!(requeue_secs(&action) > 300.0, "{action:?}");
}

/// A channel still PENDING at the read right after the create: the status says so, and the
/// app is read back soon (a second status write, when the state settles).
#[tokio::test]
async fn a_channel_still_pending_after_the_create_is_read_back_soon() {
    let (ctx, mut api, sim) = context().await;
    // The read right after the create fails: the channel state is the create's answer's.
    sim.inject(crate::sim::Fault {
        status: 400,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("GET /us/v1/projects/p-test/apps/".into()),
        message: None,
    });
    let obj = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));
    expect(&mut api, secret()).await;
    expect_with(&mut api, created).await; // the key claim
    expect_with(&mut api, created).await; // the id claim
    let (_, _, status) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!(status["status"]["channels"][0]["state"], "PENDING");
    let action = task.await.unwrap().unwrap();
    assert!((4.5..=5.5).contains(&requeue_secs(&action)), "{action:?}");
}

#[tokio::test]
async fn cleanup_deletes_the_app_in_sinch_then_removes_the_finalizer() {
    let (ctx, mut api, sim) = context().await;
    let created = sim
        .project_as("p-test", Region::Us, ctx.tenancy.credentials.clone().unwrap())
        .unwrap()
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
    // Its CRD is installed, not being deleted: this is no uninstall.
    let crd_name = "conversationapps.conversation.sinch.com";
    let (method, uri, _) = expect(&mut api, crd(crd_name)).await;
    assert_eq!((method, uri), (Method::GET, format!("{CRDS}{crd_name}")));
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
    task.await.unwrap().unwrap(); // no `Created` event

    let mut synced = serde_json::to_value(&obj).unwrap();
    synced["status"] = first["status"].clone();
    let synced: ConversationApp = serde_json::from_value(synced).unwrap();

    // Same value: nothing to write. (Each reconcile here is a later poll: past the time a
    // Secret's read is shared.)
    let next_poll = || tokio::time::sleep(SECRET_REUSE + Duration::from_millis(100));
    next_poll().await;
    sim.reset_stats();
    let task = tokio::spawn(reconcile(Arc::new(synced.clone()), ctx.clone()));
    expect(&mut api, secret_with("canary-token-before")).await;
    expect(&mut api, id_claim.clone()).await; // ours
    // No status write either: the create's already showed the channels' states.
    task.await.unwrap().unwrap();
    assert_eq!(sim.stats().writes, 0);

    // Rotated: one PATCH of the channel list, with the new token.
    next_poll().await;
    let task = tokio::spawn(reconcile(Arc::new(synced.clone()), ctx.clone()));
    expect(&mut api, secret_with("canary-token-after")).await;
    expect(&mut api, id_claim).await;
    let (_, _, status) = expect(&mut api, serde_json::to_value(&synced).unwrap()).await;
    // No event: a rotation is not drift, and the status records the new hash.
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
}

/// Under every undocumented answer the simulator can play (masks of any shape, defaults
/// answered null, ...), a created app is in sync at its read-back and at the next poll: the
/// create is the only write.
#[tokio::test]
async fn under_every_variant_an_app_converges_with_one_write() {
    use clap::ValueEnum;
    let variants = std::iter::once(None).chain(crate::sim::Variant::value_variants().iter().copied().map(Some));
    for variant in variants {
        let (ctx, api, sim) = context_with(sim::Config {
            variants: variant.into_iter().collect(),
            ..sim::Config::default()
        })
        .await;
        let obj = app(json!({"metadata": {"finalizers": [FINALIZER]},
                              "spec": {"messageRetrySettings": {"retryDuration": 3600}}}));
        let mut objects: HashMap<String, Value> = by_path(std::slice::from_ref(&obj)).into_iter().collect();
        objects.insert("secrets/sms".into(), secret());
        let patches = serve_kube(api, objects, Claims::default());
        let mut current = obj;
        for _ in 0..3 {
            reconcile(Arc::new(current.clone()), ctx.clone()).await.unwrap();
            // The next reconcile sees what this one wrote into the status.
            let mut v = serde_json::to_value(&current).unwrap();
            v["status"] = patches.lock().unwrap().last().unwrap()["status"].clone();
            current = serde_json::from_value(v).unwrap();
        }
        assert_eq!(sim.stats().writes, 1, "{variant:?}: {:?}", sim.journal());
        let synced = condition(patches.lock().unwrap().last().unwrap(), "Synced");
        assert_eq!(synced["reason"], "ReconcileSuccess", "{variant:?}: {synced}");
    }
}

/// Deletions that are no request to delete in Sinch: the CRDs removed (an uninstall deletes
/// every custom resource), a namespace deleted (unless the operator says so), a namespace or an
/// operator whose default is Orphan. Each keeps the app, with an `Orphaned` event and the
/// deletions metric; an explicit deletion otherwise deletes it.
#[tokio::test]
async fn bulk_deletions_and_orphan_defaults_keep_the_sinch_side() {
    use crate::model::DeletionPolicy::{Delete, Orphan};
    use k8s_openapi::api::core::v1::Namespace;
    use kube::core::PartialObjectMeta;
    let namespace = |labels: Value, deleting: bool| -> PartialObjectMeta<Namespace> {
        let mut meta = json!({"name": NS, "labels": labels});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-12-06T10:00:00Z");
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})).unwrap()
    };
    let mut crd_going = crd("conversationapps.conversation.sinch.com");
    crd_going["metadata"]["deletionTimestamp"] = json!("2026-12-06T10:00:00Z");
    let cases = [
        (
            "uninstall",
            Some(crd_going),
            namespace(json!({}), false),
            Delete,
            Orphan,
            "CustomResourceDefinition conversationapps.conversation.sinch.com is being deleted (an uninstall): the app stays in Sinch",
        ),
        (
            "namespace deleted",
            None,
            namespace(json!({}), true),
            Delete,
            Orphan,
            "namespace shop is being deleted: the app stays in Sinch (the operator's --namespace-deletion-policy is Orphan)",
        ),
        (
            "namespace label",
            None,
            namespace(json!({crate::model::DELETION_POLICY_LABEL: "Orphan"}), false),
            Delete,
            Orphan,
            "the namespace's label conversation.sinch.com/deletion-policy is Orphan: the app stays in Sinch",
        ),
        (
            "operator default",
            None,
            namespace(json!({}), false),
            Orphan,
            Orphan,
            "the operator's default deletion policy is Orphan: the app stays in Sinch",
        ),
        (
            "namespace deleted, operator deletes",
            None,
            namespace(json!({}), true),
            Delete,
            Delete,
            "",
        ),
    ];
    for (case, crd_object, ns, default_policy, on_namespace_deletion, kept) in cases {
        let (mut parts, api, sim) = parts(sim::Config::default()).await;
        let (namespaces, mut writer) = reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(ns));
        parts.tenancy.namespaces = namespaces;
        parts.deletion = super::super::Deletion {
            default_policy,
            on_namespace_deletion,
        };
        let ctx = Arc::new(parts);
        let created = sinch(&sim)
            .create_app(&serde_json::from_value(json!({"display_name": "Web", "channel_credentials": []})).unwrap())
            .await
            .unwrap();
        let (name, value) = claim(
            crate::model::Kind::ConversationApp,
            ("web", "uid-1"),
            created.id.as_deref().unwrap(),
            "Web",
        );
        let claims = Claims::default();
        claims.lock().unwrap().insert(name, value);
        let obj = app(json!({
            "metadata": {"finalizers": [FINALIZER], "deletionTimestamp": "2026-12-06T10:00:00Z"},
            "status": {"appId": created.id, "projectId": "p-test", "region": "us"}
        }));
        let mut objects: HashMap<String, Value> = by_path(std::slice::from_ref(&obj)).into_iter().collect();
        if let Some(c) = crd_object {
            objects.insert(
                "customresourcedefinitions/conversationapps.conversation.sinch.com".into(),
                c,
            );
        }
        let seen = serve_kube_seen(api, objects, claims);
        sim.reset_stats();
        reconcile(Arc::new(obj), ctx.clone()).await.unwrap();
        let events = seen.events.lock().unwrap().clone();
        let metrics = ctx.metrics.render();
        if kept.is_empty() {
            assert_eq!(sim.stats().writes, 1, "{case}");
            assert_eq!(events[0]["reason"], "Deleted", "{case}");
            assert!(
                metrics.contains("sinch_operator_deletions_total{kind=\"ConversationApp\",outcome=\"deleted\"} 1"),
                "{case}: {metrics}"
            );
        } else {
            assert_eq!(sim.stats().writes, 0, "{case}: {:?}", sim.journal());
            assert_eq!(
                (events[0]["reason"].as_str(), events[0]["note"].as_str()),
                (Some("Orphaned"), Some(kept)),
                "{case}"
            );
            assert!(
                metrics.contains("sinch_operator_deletions_total{kind=\"ConversationApp\",outcome=\"kept\"} 1"),
                "{case}: {metrics}"
            );
        }
    }
}

/// Our own finalizer patch not yet in the copy another trigger brought: no second patch (the API
/// server would refuse it as stale), the object is looked at again once the watch brings it.
#[tokio::test]
async fn a_copy_without_our_new_finalizer_waits_for_the_watch_instead_of_patching_again() {
    let (ctx, mut api, sim) = context().await;
    let obj = app(json!({}));
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx.clone()));
    let (method, _, _) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!(method, Method::PATCH);
    task.await.unwrap().unwrap();
    // The same copy again (the watch has not brought the patch): nothing sent.
    let action = reconcile(Arc::new(obj.clone()), ctx.clone()).await.unwrap();
    assert!((0.8..1.2).contains(&requeue_secs(&action)), "{action:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), api.next_request())
            .await
            .is_err(),
        "no request"
    );
    // The copy with the finalizer goes on (its Secret read first); one without it later (a
    // person removed it) gets it again.
    let finalized = app(json!({"metadata": {"finalizers": [FINALIZER]}}));
    let task = tokio::spawn(reconcile(Arc::new(finalized), ctx.clone()));
    let (method, uri, _) = expect_with(&mut api, not_found).await;
    assert_eq!(
        (method, uri.as_str()),
        (Method::GET, "/api/v1/namespaces/shop/secrets/sms")
    );
    expect(&mut api, serde_json::to_value(&obj).unwrap()).await; // the status: SecretNotFound
    expect(&mut api, json!({})).await; // its event
    task.await.unwrap().unwrap();
    let task = tokio::spawn(reconcile(Arc::new(obj.clone()), ctx));
    let (method, uri, _) = expect(&mut api, serde_json::to_value(&obj).unwrap()).await;
    assert_eq!((method, uri.as_str()), (Method::PATCH, &*format!("{APPS}/web?")));
    task.await.unwrap().unwrap();
    assert_eq!(sim.stats().total, 0);
}

/// A webhook waiting for its app: its first look writes nothing (the app is usually Ready by the
/// next, and its readiness brings the webhook back), a wait that lasts is written once, and a
/// look that finds the same wait writes nothing more. No event: the condition says it.
#[tokio::test]
async fn a_webhook_waiting_for_its_app_writes_its_wait_once_when_it_lasts() {
    let (ctx, api, sim) = context().await;
    let hook: crate::model::Webhook = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
        "metadata": {"name": "orders", "namespace": NS, "uid": "uid-hook", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"appRef": {"name": "shop"}, "target": "https://orders.example.com/in", "triggers": ["MESSAGE_INBOUND"]}
    }))
    .unwrap();
    let seen = serve_kube_seen(
        api,
        by_path(std::slice::from_ref(&hook)).into_iter().collect(),
        Claims::default(),
    );
    let first = reconcile(Arc::new(hook.clone()), ctx.clone()).await.unwrap();
    assert!((0.9..=1.1).contains(&requeue_secs(&first)), "{first:?}");
    assert!(
        seen.statuses.lock().unwrap().is_empty(),
        "the first look writes nothing"
    );
    let second = reconcile(Arc::new(hook.clone()), ctx.clone()).await.unwrap();
    assert!((1.8..=2.2).contains(&requeue_secs(&second)), "{second:?}");
    let statuses = seen.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1, "the wait that lasts is written");
    let synced = condition(&statuses[0], "Synced");
    assert_eq!(
        (&synced["status"], &synced["reason"]),
        (&json!("False"), &json!("AppNotFound"))
    );
    // Looked at again with its status saying so: nothing more.
    let mut waiting = serde_json::to_value(&hook).unwrap();
    waiting["status"] = statuses[0]["status"].clone();
    let waiting: crate::model::Webhook = serde_json::from_value(waiting).unwrap();
    reconcile(Arc::new(waiting), ctx.clone()).await.unwrap();
    assert_eq!(seen.statuses.lock().unwrap().len(), 1);
    assert!(
        seen.events.lock().unwrap().is_empty(),
        "{:?}",
        seen.events.lock().unwrap()
    );
    assert!(ctx.metrics.render().contains("reason=\"AppNotFound\"} 3"));
    assert_eq!(sim.stats().total, 0);
}

/// A webhook whose app exists but is not Ready (a channel FAILING) says why it waits once the
/// wait has lasted one look, as any wait a person may need to act on: only an app not
/// reconciled yet is waited for quietly, however long.
#[tokio::test]
async fn a_webhook_waiting_for_an_app_with_a_failing_channel_says_why() {
    let (mut parts, api, sim) = parts(sim::Config::default()).await;
    let (apps, mut writer) = reflector::store::<ConversationApp>();
    parts.tenancy.apps = apps.clone();
    parts.ledger.apps = apps;
    let failing = "Sinch reports these channels FAILING: SMS (invalid token)";
    let shop: ConversationApp = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "ConversationApp",
        "metadata": {"name": "shop", "namespace": NS, "uid": "uid-shop"},
        "spec": {"displayName": "Shop"},
        "status": {"appId": "01SHOP", "projectId": "p-test", "region": "us", "conditions": [
            {"type": "Ready", "status": "False", "reason": "ChannelFailing", "message": failing,
             "lastTransitionTime": "2026-12-06T00:00:00Z"},
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": "Sinch matches the spec",
             "lastTransitionTime": "2026-12-06T00:00:00Z"}]}
    }))
    .unwrap();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(shop));
    let ctx = Arc::new(parts);
    let hook: crate::model::Webhook = serde_json::from_value(json!({
        "apiVersion": "conversation.sinch.com/v1alpha1", "kind": "Webhook",
        "metadata": {"name": "orders", "namespace": NS, "uid": "uid-hook", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"appRef": {"name": "shop"}, "target": "https://orders.example.com/in", "triggers": ["MESSAGE_INBOUND"]}
    }))
    .unwrap();
    let seen = serve_kube_seen(
        api,
        by_path(std::slice::from_ref(&hook)).into_iter().collect(),
        Claims::default(),
    );
    reconcile(Arc::new(hook.clone()), ctx.clone()).await.unwrap();
    assert!(
        seen.statuses.lock().unwrap().is_empty(),
        "the first look writes nothing"
    );
    reconcile(Arc::new(hook), ctx.clone()).await.unwrap();
    let statuses = seen.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1, "the wait that lasts is written");
    let synced = condition(&statuses[0], "Synced");
    assert_eq!(
        (&synced["status"], &synced["reason"], &synced["message"]),
        (
            &json!("False"),
            &json!("AppNotReady"),
            &json!(format!("waiting for ConversationApp {NS}/shop to be Ready: {failing}"))
        )
    );
    assert_eq!(sim.stats().total, 0);
}
