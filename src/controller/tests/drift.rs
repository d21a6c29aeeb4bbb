//! Drift reports and pausing: what differs is named field by field (by the plan's renderer) in
//! the `Drifted` condition and an event, counted once; a paused object sends Sinch nothing.

use super::*;
use crate::model::PAUSED_ANNOTATION;
use crate::model::Webhook;

/// The first webhook of `seed`'s app 0 as an earlier reconcile left it: synced at generation 1.
fn synced(hook: &Webhook, id: &str) -> Webhook {
    let mut v = serde_json::to_value(hook).unwrap();
    v["status"] = json!({
        "webhookId": id, "projectId": "p-test", "region": "us", "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "exists",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": "in sync",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}
        ]
    });
    serde_json::from_value(v).unwrap()
}

/// Someone sets the triggers of webhook `target` in Sinch; returns its id.
async fn change_in_sinch(sim: &Sim, app: &str, target: &str) -> String {
    let project = sinch(sim);
    let hook = project
        .list_webhooks(app)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.target.as_deref() == Some(target))
        .unwrap();
    let mut changed = hook.clone();
    changed.triggers = Some(vec![serde_json::from_value(json!("MESSAGE_DELIVERY")).unwrap()]);
    project
        .update_webhook(hook.id.as_deref().unwrap(), &changed, vec!["triggers".into()])
        .await
        .unwrap();
    hook.id.unwrap()
}

fn metric(ctx: &Context, line_start: &str) -> Option<String> {
    ctx.metrics
        .render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .map(str::to_string)
}

const REPORT: &str = "~ triggers: [\"MESSAGE_DELIVERY\"] -> [\"MESSAGE_INBOUND\"]";

#[tokio::test]
async fn drift_is_set_back_with_a_field_by_field_report_and_counted() {
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 1).await;
    let (_, webhooks) = inventory(&ids);
    let id = change_in_sinch(&sim, &ids[0], "https://hooks.example.com/0/0").await;
    let hook = synced(&webhooks[0], &id);
    let seen = serve_kube_seen(api, by_path(std::slice::from_ref(&hook)).into_iter().collect(), claims);
    sim.reset_stats();
    reconcile(Arc::new(hook.clone()), ctx.clone()).await.unwrap();

    let patch = sim
        .journal()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("set back");
    assert_eq!(patch.path, format!("/us/v1/projects/p-test/webhooks/{id}"));
    assert_eq!(patch.body.unwrap()["triggers"], json!(["MESSAGE_INBOUND"]));
    let status = seen.statuses.lock().unwrap()[0].clone();
    let drifted = condition(&status, "Drifted");
    assert_eq!(
        (&drifted["status"], &drifted["reason"]),
        (&json!("False"), &json!("Reverted"))
    );
    assert_eq!(
        drifted["message"],
        format!("changed in Sinch, set back to the spec:\n{REPORT}")
    );
    assert_eq!(condition(&status, "Synced")["status"], "True");
    let events = seen.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "DriftReverted");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(
        events[0]["note"],
        format!("triggers changed in Sinch; set back to the spec (webhook {id}):\n{REPORT}")
    );
    assert_eq!(
        metric(&ctx, "sinch_operator_drift_detected_total{kind=\"Webhook\"}").as_deref(),
        Some("sinch_operator_drift_detected_total{kind=\"Webhook\"} 1")
    );
    // Set back: not drifted now.
    assert_eq!(
        metric(&ctx, "sinch_operator_drifted_objects{kind=\"Webhook\"}").as_deref(),
        Some("sinch_operator_drifted_objects{kind=\"Webhook\"} 0")
    );
}

/// A synced webhook, paused, whose triggers were then changed in Sinch; the API server that
/// answers its reconciles.
async fn paused_and_drifted() -> (Arc<Context>, Sim, Webhook, Seen) {
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 1).await;
    let (_, webhooks) = inventory(&ids);
    let id = change_in_sinch(&sim, &ids[0], "https://hooks.example.com/0/0").await;
    let mut paused = synced(&webhooks[0], &id);
    paused.metadata.annotations = Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
    let seen = serve_kube_seen(
        api,
        by_path(std::slice::from_ref(&paused)).into_iter().collect(),
        claims,
    );
    (ctx, sim, paused, seen)
}

#[tokio::test]
async fn a_paused_object_sends_sinch_nothing_reports_drift_and_resumes_when_unpaused() {
    let (ctx, sim, paused, seen) = paused_and_drifted().await;
    sim.reset_stats();
    reconcile(Arc::new(paused.clone()), ctx.clone()).await.unwrap();

    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    assert_eq!(sim.stats().count(WEBHOOKS_LIST), 1, "reads go on");
    let status = seen.statuses.lock().unwrap()[0].clone();
    let synced_cond = condition(&status, "Synced");
    assert_eq!(
        (&synced_cond["status"], &synced_cond["reason"]),
        (&json!("False"), &json!("Paused"))
    );
    assert_eq!(
        synced_cond["message"],
        format!("Sinch differs from the spec in triggers; paused ({PAUSED_ANNOTATION}): not written")
    );
    let drifted = condition(&status, "Drifted");
    assert_eq!(
        (&drifted["status"], &drifted["reason"]),
        (&json!("True"), &json!("Paused"))
    );
    assert_eq!(
        drifted["message"],
        format!("Sinch differs from the spec (paused ({PAUSED_ANNOTATION}): not set back):\n{REPORT}")
    );
    let events = seen.events.lock().unwrap().clone();
    assert_eq!(
        (events[0]["reason"].as_str(), events[0]["type"].as_str()),
        (Some("DriftDetected"), Some("Warning"))
    );
    assert!(events[0]["note"].as_str().unwrap().ends_with(REPORT), "{events:?}");
    assert_eq!(
        metric(&ctx, "sinch_operator_drifted_objects{kind=\"Webhook\"}").as_deref(),
        Some("sinch_operator_drifted_objects{kind=\"Webhook\"} 1")
    );

    // Unpaused, with the status the paused reconcile wrote: set back, counted once in all.
    let mut resumed = paused.clone();
    resumed.metadata.annotations = None;
    let mut v = serde_json::to_value(&resumed).unwrap();
    v["status"] = status["status"].clone();
    let resumed: Webhook = serde_json::from_value(v).unwrap();
    reconcile(Arc::new(resumed), ctx.clone()).await.unwrap();
    let patches: Vec<_> = sim.journal().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].body.as_ref().unwrap()["triggers"],
        json!(["MESSAGE_INBOUND"])
    );
    let status = seen.statuses.lock().unwrap()[1].clone();
    assert_eq!(condition(&status, "Drifted")["reason"], "Reverted");
    assert_eq!(condition(&status, "Synced")["reason"], "ReconcileSuccess");
    assert_eq!(
        metric(&ctx, "sinch_operator_drifted_objects{kind=\"Webhook\"}").as_deref(),
        Some("sinch_operator_drifted_objects{kind=\"Webhook\"} 0")
    );
    assert_eq!(
        metric(&ctx, "sinch_operator_drift_detected_total{kind=\"Webhook\"}").as_deref(),
        Some("sinch_operator_drift_detected_total{kind=\"Webhook\"} 1")
    );
}

#[tokio::test]
async fn a_paused_object_is_not_created_and_its_deletion_waits() {
    let (ctx, api, sim) = context().await;
    let paused = app(json!({"metadata": {"finalizers": [FINALIZER],
        "annotations": {PAUSED_ANNOTATION: "true"}}, "spec": {"channelCredentials": null}}));
    let seen = serve_kube_seen(
        api,
        by_path(std::slice::from_ref(&paused)).into_iter().collect(),
        Claims::default(),
    );
    reconcile(Arc::new(paused.clone()), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    assert!(sinch(&sim).list_apps().await.unwrap().is_empty());
    let status = seen.statuses.lock().unwrap()[0].clone();
    assert_eq!(condition(&status, "Synced")["reason"], "Paused");
    assert_eq!(condition(&status, "Ready")["status"], "False");

    // An app that exists, deleted while paused: nothing deleted, the finalizer stays.
    let created = sinch(&sim)
        .create_app(&serde_json::from_value(json!({"display_name": "Web", "channel_credentials": []})).unwrap())
        .await
        .unwrap();
    let mut deleting = serde_json::to_value(&paused).unwrap();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    deleting["status"] = json!({"appId": created.id, "projectId": "p-test", "region": "us"});
    let deleting: ConversationApp = serde_json::from_value(deleting).unwrap();
    sim.reset_stats();
    let deleting = Arc::new(deleting);
    let waits = reconcile(deleting.clone(), ctx.clone()).await.unwrap_err();
    assert!(
        waits
            .to_string()
            .starts_with("the deletion waits: the object is paused"),
        "{waits}"
    );
    // Waiting as asked is no failure: looked at again at the poll interval (600 s here), not
    // with backoff, and not counted.
    let again = super::super::reconcile::error_policy(deleting, &waits, ctx.clone());
    assert!(format!("{again:?}").contains("requeue_after: Some(6"), "{again:?}");
    assert!(
        !ctx.metrics.render().contains("reason=\"Paused\""),
        "{}",
        ctx.metrics.render()
    );
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    assert_eq!(sinch(&sim).list_apps().await.unwrap().len(), 1);
    assert!(
        seen.writes.lock().unwrap().is_empty(),
        "the finalizer stays: {:?}",
        seen.writes
    );
    let events = seen.events.lock().unwrap().clone();
    let last = events.last().unwrap();
    assert_eq!(last["reason"], "Paused");
    assert_eq!(
        last["note"],
        format!(
            "the deletion waits: the object is paused ({PAUSED_ANNOTATION}); remove the annotation to delete the app in Sinch, or set deletionPolicy Orphan to keep it"
        )
    );
}

/// Sinch does not keep an update (it stores the field otherwise, or ignores it): the same update
/// is not sent again right after it was read back. `NotConverging` names the field, Sinch's
/// value and ours, its event is published once, and the object waits for its poll interval.
#[tokio::test]
async fn an_update_sinch_does_not_keep_is_reported_not_resent_in_a_loop() {
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 1).await;
    let (apps, _) = inventory(&ids);
    let mut v = serde_json::to_value(&apps[0]).unwrap();
    v["spec"]["processingMode"] = json!("CONVERSATION");
    v["status"] = json!({"appId": ids[0]});
    let app: ConversationApp = serde_json::from_value(v).unwrap();
    let seen = serve_kube_seen(api, by_path(std::slice::from_ref(&app)).into_iter().collect(), claims);
    let requeue = reconcile(Arc::new(app.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        sim.stats()
            .count("PATCH /{region}/v1/projects/{project_id}/apps/{app_id}"),
        1
    );
    assert!(
        format!("{requeue:?}").contains("requeue_after: Some(4")
            || format!("{requeue:?}").contains("requeue_after: Some(5"),
        "read back soon: {requeue:?}"
    );

    // Sinch keeps its own value; the read-back sees it.
    let mut back = sinch(&sim).get_app(&ids[0]).await.unwrap();
    back.processing_mode = Some(serde_json::from_value(json!("DISPATCH")).unwrap());
    sinch(&sim)
        .update_app(&ids[0], &back, vec!["processing_mode".into()])
        .await
        .unwrap();
    sim.reset_stats();
    let requeue = reconcile(Arc::new(app.clone()), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    assert_eq!(
        sim.stats()
            .count("GET /{region}/v1/projects/{project_id}/apps/{app_id}"),
        1,
        "read back"
    );
    // At the poll interval (600 s here, from when the list was read; up to 5 s spread), not soon.
    assert!((590.0..=606.0).contains(&requeue_secs(&requeue)), "{requeue:?}");
    let statuses = seen.statuses.lock().unwrap().clone();
    let synced = condition(statuses.last().unwrap(), "Synced");
    assert_eq!(
        (&synced["status"], &synced["reason"]),
        (&json!("False"), &json!("NotConverging"))
    );
    assert_eq!(
        synced["message"],
        "Sinch did not keep the last update (sent again at the next poll): processing_mode: Sinch holds \"DISPATCH\", the spec says \"CONVERSATION\""
    );
    // Once the status says so, no further event.
    let mut waiting = serde_json::to_value(&app).unwrap();
    waiting["status"]["conditions"] = json!([synced]);
    let waiting: ConversationApp = serde_json::from_value(waiting).unwrap();
    reconcile(Arc::new(waiting), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    let events = seen.events.lock().unwrap().clone();
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons, ["NotConverging"], "no `Updated` event: the status says it");
}

/// A secret hash salted with the public uid (written before 0.2) that still matches is keyed
/// anew on the next reconcile, with nothing sent: the status no longer holds a hash a reader
/// could test guesses against.
#[tokio::test]
async fn a_legacy_secret_hash_is_keyed_anew_without_a_write() {
    let (ctx, api, sim) = context_with(sim::Config {
        mask_secrets: true,
        ..sim::Config::default()
    })
    .await;
    let token = "canary-sms-token-7777";
    let created = sinch(&sim)
        .create_app(
            &serde_json::from_value(json!({"display_name": "Web", "channel_credentials": [
                {"channel": "SMS", "static_bearer": {"claimed_identity": "web", "token": token}}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    let id = created.id.unwrap();
    let claims = Claims::default();
    let (name, value) = claim(crate::model::Kind::ConversationApp, ("web", "uid-1"), &id, "Web");
    claims.lock().unwrap().insert(name, value);
    let pointer = "/channel_credentials/0/static_bearer/token";
    let legacy = crate::engine::plan::legacy_fingerprint("uid-1", token.as_bytes());
    let obj = app(json!({"metadata": {"finalizers": [FINALIZER]},
                          "status": {"appId": id, "projectId": "p-test", "region": "us", "secretHashes": {pointer: legacy}}}));
    let mut objects: HashMap<String, Value> = by_path(std::slice::from_ref(&obj)).into_iter().collect();
    objects.insert("secrets/sms".into(), secret());
    let patches = serve_kube(api, objects, claims);
    sim.reset_stats();
    reconcile(Arc::new(obj), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().writes, 0, "{:?}", sim.journal());
    let status = patches.lock().unwrap().last().unwrap()["status"].clone();
    let keyed = crate::engine::plan::fingerprint(&ctx.salt("uid-1"), token.as_bytes());
    assert_eq!(status["secretHashes"], json!({pointer: keyed}));
}

/// Every `sinch_operator_objects` series, in the order exposed.
fn objects(ctx: &Context) -> Vec<String> {
    ctx.metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("sinch_operator_objects{"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn objects_are_counted_by_their_conditions_until_deleted() {
    let (ctx, _sim, paused, seen) = paused_and_drifted().await;
    assert_eq!(objects(&ctx), Vec::<String>::new());
    reconcile(Arc::new(paused.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        objects(&ctx),
        ["sinch_operator_objects{kind=\"Webhook\",ready=\"True\",synced=\"False\",reason=\"Paused\"} 1"]
    );

    // Unpaused: set back, in sync; the paused series is gone, not left at 0.
    let mut v = serde_json::to_value(&paused).unwrap();
    v["metadata"]["annotations"] = json!(null);
    v["status"] = seen.statuses.lock().unwrap()[0]["status"].clone();
    let resumed: Webhook = serde_json::from_value(v.clone()).unwrap();
    reconcile(Arc::new(resumed), ctx.clone()).await.unwrap();
    assert_eq!(
        objects(&ctx),
        ["sinch_operator_objects{kind=\"Webhook\",ready=\"True\",synced=\"True\",reason=\"ReconcileSuccess\"} 1"]
    );

    // Deleted (its Sinch side kept): no longer counted.
    v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    v["spec"]["deletionPolicy"] = json!("Orphan");
    let deleting: Webhook = serde_json::from_value(v).unwrap();
    reconcile(Arc::new(deleting), ctx.clone()).await.unwrap();
    assert_eq!(objects(&ctx), Vec::<String>::new());
    assert!(
        ctx.metrics.render().contains("# TYPE sinch_operator_objects gauge"),
        "the family is described even when empty"
    );
}
