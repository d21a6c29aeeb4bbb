//! The shared observation (rule 13): one read of a scope's lists serves every object in it,
//! a write updates the shared view, and a refused shared read is reported on every object.

use super::*;
use crate::controller::POLL_INTERVAL_ANNOTATION;

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
    let project = sim
        .project_as("p-test", Region::Us, ctx.tenancy.credentials.clone().unwrap())
        .unwrap();
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
    fast.metadata.annotations = Some([(POLL_INTERVAL_ANNOTATION.to_string(), "2s".to_string())].into());
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
        let synced = condition(body, "Synced");
        assert_eq!(synced["reason"], "ReadRefused", "{synced}");
        assert!(synced["message"].as_str().unwrap().contains("HTTP 403"), "{synced}");
    }
    // Not retried with backoff: at the poll interval (600 s), like any terminal answer.
    for action in &actions {
        assert!(requeue_secs(action) > 300.0, "{action:?}");
    }
}

/// One tenant's project answers 429 asking for a minute's wait, for as long as it likes: all
/// its objects cost one request, none waits through the minute holding a worker (its failure is
/// shared until the wait passed, not only for the usual two seconds), and another tenant's app
/// in another project is created meanwhile.
#[tokio::test]
async fn a_throttled_project_costs_one_request_and_stalls_no_other_project() {
    let (ctx, api, sim) = context().await;
    sim.inject(crate::sim::Fault {
        status: 429,
        times: 1000,
        retry_after: Some(60),
        after_write: false,
        matching: Some("/projects/p-throttled/".into()),
        message: None,
    });
    let bare = |name: &str, project: &str| {
        app(
            json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "finalizers": [FINALIZER]},
                   "spec": {"projectId": project, "displayName": name, "channelCredentials": null}}),
        )
    };
    let throttled: Vec<ConversationApp> = (0..8).map(|i| bare(&format!("t-{i}"), "p-throttled")).collect();
    let other = bare("other", "p-test");
    let objects = by_path(&throttled)
        .into_iter()
        .chain(by_path(std::slice::from_ref(&other)))
        .collect();
    let seen = serve_kube_seen(api, objects, Claims::default());
    let runs = throttled.iter().map(|a| reconcile(Arc::new(a.clone()), ctx.clone()));
    let (results, created) = tokio::join!(
        futures_util::future::join_all(runs),
        reconcile(Arc::new(other.clone()), ctx.clone())
    );
    created.unwrap();
    for result in results {
        result.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.faults.values().sum::<u64>(), 1, "{stats:?}");
    assert_eq!(
        stats.count("POST /{region}/v1/projects/{project_id}/apps"),
        1,
        "{stats:?}"
    );
    // Past the usual two seconds of a shared failure: still no request before the minute.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for a in &throttled {
        reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    }
    assert_eq!(sim.stats().faults.values().sum::<u64>(), 1, "{:?}", sim.stats());
    let statuses = seen.statuses.lock().unwrap().clone();
    let refused = statuses
        .iter()
        .filter(|s| condition(s, "Synced")["reason"] == "SinchUnavailable")
        .count();
    assert_eq!(refused, 16, "{statuses:?}");
}

/// `conversation.sinch.com/reconcile-requested-at`: a new value reads the scope afresh (the
/// shared list is young, yet Sinch's change is found and set back at once), and the value is
/// recorded as handled; the same value again reads nothing.
#[tokio::test]
async fn a_reconcile_request_reads_sinch_afresh_once_per_value() {
    use crate::model::RECONCILE_REQUESTED_ANNOTATION;
    let (ctx, api, sim) = context().await;
    let (ids, claims) = seed(&sim, &ctx, 1).await;
    let (apps, _) = inventory(&ids);
    let mut v = serde_json::to_value(&apps[0]).unwrap();
    v["spec"]["processingMode"] = json!("DISPATCH");
    v["status"] = json!({"appId": ids[0], "projectId": "p-test", "region": "us"});
    let app: ConversationApp = serde_json::from_value(v).unwrap();
    let patches = serve_one(api, &app, claims);
    reconcile(Arc::new(app.clone()), ctx.clone()).await.unwrap();
    // Changed in Sinch right after the shared read: a poll would not see it for minutes.
    let mut changed = sinch(&sim).get_app(&ids[0]).await.unwrap();
    changed.processing_mode = Some(serde_json::from_value(json!("CONVERSATION")).unwrap());
    sinch(&sim)
        .update_app(&ids[0], &changed, vec!["processing_mode".into()])
        .await
        .unwrap();
    sim.reset_stats();
    let mut requested = serde_json::to_value(&app).unwrap();
    requested["metadata"]["annotations"] = json!({RECONCILE_REQUESTED_ANNOTATION: "2026-12-06T17:00:00Z"});
    let requested: ConversationApp = serde_json::from_value(requested).unwrap();
    reconcile(Arc::new(requested.clone()), ctx.clone()).await.unwrap();
    assert_eq!(sim.stats().count(APPS_LIST), 1, "read afresh: {:?}", sim.stats());
    assert_eq!(sim.stats().writes, 1, "set back: {:?}", sim.journal());
    let status = patches.lock().unwrap().last().unwrap()["status"].clone();
    assert_eq!(status["lastHandledReconcileAt"], "2026-12-06T17:00:00Z");

    // The same value, handled: the shared list serves.
    let mut handled = serde_json::to_value(&requested).unwrap();
    handled["status"]["lastHandledReconcileAt"] = json!("2026-12-06T17:00:00Z");
    sim.reset_stats();
    reconcile(
        Arc::new(serde_json::from_value::<ConversationApp>(handled).unwrap()),
        ctx.clone(),
    )
    .await
    .unwrap();
    assert_eq!(sim.stats().count(APPS_LIST), 0, "{:?}", sim.stats());
}
