//! The client of the Sinch API against the simulator: every call, and every rule of auth, retry,
//! rate and errors, asserted on what went over the wire (the simulator's journal and counts).

mod common;

use common::start;
use serde_json::{Value, json};
use sinch_operator::model::Region;
use sinch_operator::sim::{self, Fault, Sim};
use sinch_operator::sinch::Sensitive;
use sinch_operator::sinch::app::App;
use sinch_operator::sinch::client::{AuthMode, Client, Config, Credentials, Project, RetryPolicy};
use sinch_operator::sinch::error::Class;
use sinch_operator::sinch::settings::{ContactSettings, IdentityConflict, ProjectSettingsRequest};
use sinch_operator::sinch::template::Template;
use sinch_operator::sinch::webhook::Webhook;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

const PROJECT: &str = "3f2a0c4e-project";
const KEY_SECRET: &str = "canary-key-secret-5b1e";
const TOKEN: &str = "canary-sms-token-90d2";

/// Fast retries, so tests of backoff do not wait for production delays.
fn client_config(sim: &Sim) -> Config {
    Config {
        endpoints: sim.endpoints(),
        retry: common::fast_retries(),
        ..Config::default()
    }
}

fn credentials() -> Credentials {
    Credentials {
        key_id: "key-id".into(),
        key_secret: Sensitive(KEY_SECRET.into()),
    }
}

fn project_with(config: Config, region: Region) -> Project {
    Client::new(config).unwrap().project(PROJECT, region, credentials())
}

fn project(sim: &Sim) -> Project {
    project_with(client_config(sim), Region::Us)
}

fn sms_app(name: &str) -> App {
    serde_json::from_value(json!({
        "display_name": name,
        "channel_credentials": [
            {"channel": "SMS", "static_bearer": {"claimed_identity": "plan-a", "token": TOKEN}}
        ],
        "retention_policy": {"retention_type": "PERSIST_RETENTION_POLICY"}
    }))
    .unwrap()
}

fn webhook(app: &str, target: &str) -> Webhook {
    serde_json::from_value(json!({
        "app_id": app, "target": target, "target_type": "HTTP", "triggers": ["MESSAGE_INBOUND"]
    }))
    .unwrap()
}

fn template(id: &str, text: &str) -> Template {
    serde_json::from_value(json!({
        "id": id,
        "description": "order shipped",
        "default_translation": "en-US",
        "translations": [
            {"language_code": "en-US", "version": "1", "text_message": {"text": text}}
        ]
    }))
    .unwrap()
}

/// The last request the simulator received: method, path, query and body.
fn last(sim: &Sim) -> (String, String, Option<String>, Option<Value>) {
    let r = sim.journal().pop().expect("a request was sent");
    (r.method, r.path, r.query, r.body)
}

#[tokio::test]
async fn apps_are_created_read_patched_by_mask_and_deleted() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);

    let created = p.create_app(&sms_app("Support")).await.unwrap();
    let id = created.id.clone().unwrap();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    let (method, path, query, body) = last(&sim);
    assert_eq!(
        (method.as_str(), path.as_str(), query),
        ("POST", format!("/us/v1/projects/{PROJECT}/apps").as_str(), None)
    );
    assert_eq!(body.unwrap(), serde_json::to_value(sms_app("Support")).unwrap());
    let channel = &created.channel_credentials.as_ref().unwrap()[0];
    assert_eq!(channel.state.as_ref().unwrap().status.as_deref(), Some("PENDING"));

    // Reads show the server's defaults, and the channel has become active.
    let read = p.get_app(&id).await.unwrap();
    assert_eq!(read.processing_mode.as_deref(), Some("DISPATCH"));
    assert_eq!(read.retention_policy.as_ref().unwrap().ttl_days, Some(180));
    assert_eq!(read.rate_limits.as_ref().unwrap().outbound, Some(25));
    let channel = &read.channel_credentials.as_ref().unwrap()[0];
    assert_eq!(channel.state.as_ref().unwrap().status.as_deref(), Some("ACTIVE"));
    assert_eq!(
        channel.static_bearer.as_ref().unwrap().token,
        Some(Sensitive(TOKEN.into()))
    );
    assert_eq!(p.list_apps().await.unwrap(), vec![read.clone()]);

    // A PATCH writes the masked fields only: the retention policy stays.
    let patch = App {
        display_name: Some("Support desk".into()),
        ..App::default()
    };
    let updated = p.update_app(&id, &patch, vec!["display_name".into()]).await.unwrap();
    let (method, path, query, body) = last(&sim);
    assert_eq!(method, "PATCH");
    assert_eq!(path, format!("/us/v1/projects/{PROJECT}/apps/{id}"));
    assert_eq!(query.as_deref(), Some("update_mask=display_name"));
    assert_eq!(body.unwrap(), json!({"display_name": "Support desk"}));
    assert_eq!(updated.display_name.as_deref(), Some("Support desk"));
    assert_eq!(
        updated.retention_policy.unwrap().retention_type.as_deref(),
        Some("PERSIST_RETENTION_POLICY")
    );
    // The unchanged credential keeps its state.
    let channel = &updated.channel_credentials.as_ref().unwrap()[0];
    assert_eq!(channel.state.as_ref().unwrap().status.as_deref(), Some("ACTIVE"));

    p.delete_app(&id).await.unwrap();
    assert_eq!(last(&sim).0, "DELETE");
    let gone = p.get_app(&id).await.unwrap_err();
    assert_eq!(gone.class(), Class::NotFound);
    assert_eq!(
        gone.to_string(),
        format!(
            "GET /v1/projects/{PROJECT}/apps/{id}: HTTP 404 NOT_FOUND: app {id} not found \
             (not found in project {PROJECT} in region us: objects live in the region they were created in)"
        )
    );
    assert!(p.list_apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_app_asked_for_in_another_region_is_not_found() {
    let sim = start(sim::Config::default()).await;
    let us = project(&sim);
    let eu = project_with(client_config(&sim), Region::Eu);
    let id = us.create_app(&sms_app("Support")).await.unwrap().id.unwrap();
    let err = eu.get_app(&id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.attempts, 1, "a 404 is not retried");
    assert!(err.to_string().contains("in region eu"), "{err}");
    assert_eq!(last(&sim).1, format!("/eu/v1/projects/{PROJECT}/apps/{id}"));
    // The same display name in another region is another app.
    us.create_app(&sms_app("Support")).await.unwrap();
    eu.create_app(&sms_app("Support")).await.unwrap();
    assert_eq!(us.list_apps().await.unwrap().len(), 2);
    assert_eq!(eu.list_apps().await.unwrap().len(), 1);
}

#[tokio::test]
async fn update_mask_is_understood_in_all_three_spellings() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    let id = p.create_app(&sms_app("A")).await.unwrap().id.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/us/v1/projects/{PROJECT}/apps/{id}", sim.url());
    let body = json!({"display_name": "B", "processing_mode": "CONVERSATION"});
    for (i, query) in [
        "update_mask=display_name",
        "update_mask=display_name%2Cprocessing_mode",
        "update_mask.paths=display_name&update_mask.paths=processing_mode",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("name {i}");
        let body = json!({"display_name": name, "processing_mode": body["processing_mode"]});
        let answer: Value = http
            .patch(format!("{url}?{query}"))
            .basic_auth("key-id", Some(KEY_SECRET))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["display_name"], name.as_str(), "{query}");
        let expected_mode = if i == 0 { "DISPATCH" } else { "CONVERSATION" };
        assert_eq!(answer["processing_mode"], expected_mode, "{query}");
    }
    // A field in the mask but not in the body is cleared (back to the server's default).
    let cleared = p
        .update_app(&id, &App::default(), vec!["retention_policy".into()])
        .await
        .unwrap();
    assert_eq!(
        cleared.retention_policy.unwrap().retention_type.as_deref(),
        Some("MESSAGE_EXPIRE_POLICY")
    );
    // Without a mask, the fields present are written.
    let unmasked = http
        .patch(&url)
        .basic_auth("key-id", Some(KEY_SECRET))
        .json(&json!({"display_name": "C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unmasked.json::<Value>().await.unwrap()["display_name"], "C");
    // A PATCH of channel_credentials replaces the whole list.
    let mut two = sms_app("x").channel_credentials.unwrap();
    two.push(serde_json::from_value(json!({"channel": "MESSENGER", "static_token": {"token": "t2"}})).unwrap());
    let body = App {
        channel_credentials: Some(two),
        ..App::default()
    };
    p.update_app(&id, &body, vec!["channel_credentials".into()])
        .await
        .unwrap();
    let one = App {
        channel_credentials: Some(vec![body.channel_credentials.unwrap()[1].clone()]),
        ..App::default()
    };
    let after = p
        .update_app(&id, &one, vec!["channel_credentials".into()])
        .await
        .unwrap();
    let channels: Vec<String> = after
        .channel_credentials
        .unwrap()
        .into_iter()
        .map(|c| c.channel)
        .collect();
    assert_eq!(channels, ["MESSENGER"]);
}

#[tokio::test]
async fn bad_input_is_a_terminal_400_and_is_sent_once() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    let mut app = sms_app("A");
    app.retention_policy.as_mut().unwrap().ttl_days = Some(4000);
    app.retention_policy.as_mut().unwrap().retention_type = Some("MESSAGE_EXPIRE_POLICY".into());
    let err = p.create_app(&app).await.unwrap_err();
    assert_eq!(err.class(), Class::Terminal);
    assert_eq!(
        err.to_string(),
        format!(
            "POST /v1/projects/{PROJECT}/apps: HTTP 400 INVALID_ARGUMENT: retention_policy.ttl_days: 4000 is out of range 1 to 3650"
        )
    );
    assert_eq!(sim.stats().count("POST /{region}/v1/projects/{project_id}/apps"), 1);
    // Unknown fields are refused, so a misspelt wire name cannot pass unnoticed.
    let mut app = sms_app("A");
    app.extra.insert("displayName".into(), json!("A"));
    let err = p.create_app(&app).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("HTTP 400 INVALID_ARGUMENT: unknown field \"displayName\""),
        "{err}"
    );
}

/// Ids also come from Sinch's answers, which validate never sees: one that would change the
/// path (`..`, `.\t.`, which `url` reads as `..`, or none at all) is refused before anything is
/// sent, token included, as a terminal error naming the path that would have been sent.
#[tokio::test]
async fn an_id_that_would_change_the_path_is_refused_before_it_is_sent() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    let body = template("x", "Hi");
    let errors = [
        p.update_template("..", &body).await.unwrap_err(),
        p.delete_template(".\t.").await.unwrap_err(),
        p.list_webhooks("").await.unwrap_err(),
    ];
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            format!(
                "PUT /v2/projects/{PROJECT}/templates/%2E%2E: not sent: the path holds a dot segment, which URL parsers remove or resolve (\"..\")"
            ),
            format!(
                "DELETE /v2/projects/{PROJECT}/templates/%2E%09%2E: not sent: the path holds a segment with a control character (\".\\t.\")"
            ),
            format!("GET /v1/projects/{PROJECT}/apps//webhooks: not sent: the path holds an empty segment (\"\")"),
        ]
    );
    assert!(errors.iter().all(|e| e.class() == Class::Terminal && e.attempts == 0));
    assert_eq!(sim.stats().total, 0, "{:?}", sim.stats());
}

#[tokio::test]
async fn webhooks_are_limited_to_five_per_app_with_unique_targets() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    let app = p.create_app(&sms_app("A")).await.unwrap().id.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let w = p
            .create_webhook(&webhook(&app, &format!("https://hooks.example.com/{i}")))
            .await
            .unwrap();
        ids.push(w.id.unwrap());
    }
    let (method, path, _, body) = last(&sim);
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", format!("/us/v1/projects/{PROJECT}/webhooks").as_str())
    );
    assert_eq!(
        body.unwrap(),
        serde_json::to_value(webhook(&app, "https://hooks.example.com/4")).unwrap()
    );

    let sixth = p
        .create_webhook(&webhook(&app, "https://hooks.example.com/5"))
        .await
        .unwrap_err();
    assert_eq!(sixth.class(), Class::Terminal);
    assert!(
        sixth.to_string().ends_with(&format!(
            "HTTP 400 INVALID_ARGUMENT: app {app} already has 5 webhooks, the most an app can have"
        )),
        "{sixth}"
    );
    p.delete_webhook(&ids[0]).await.unwrap();
    let duplicate = p
        .create_webhook(&webhook(&app, "https://hooks.example.com/1"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.status(), Some(400));
    assert!(
        duplicate
            .to_string()
            .contains("already has a webhook with target https://hooks.example.com/1"),
        "{duplicate}"
    );
    // The slot freed by the delete takes a new target.
    p.create_webhook(&webhook(&app, "https://hooks.example.com/new"))
        .await
        .unwrap();

    let listed = p.list_webhooks(&app).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(last(&sim).1, format!("/us/v1/projects/{PROJECT}/apps/{app}/webhooks"));
    let patch = Webhook {
        target: Some("https://hooks.example.com/1".into()),
        triggers: Some(vec!["MESSAGE_DELIVERY".into(), "EVENT_DELIVERY".into()]),
        ..Webhook::default()
    };
    let updated = p
        .update_webhook(&ids[1], &patch, vec!["target".into(), "triggers".into()])
        .await
        .unwrap();
    assert_eq!(last(&sim).2.as_deref(), Some("update_mask=target,triggers"));
    assert_eq!(updated.triggers.unwrap(), ["MESSAGE_DELIVERY", "EVENT_DELIVERY"]);
    assert_eq!(
        p.get_webhook(&ids[1]).await.unwrap().target_type.as_deref(),
        Some("HTTP")
    );
    // Deleting the app deletes its webhooks.
    p.delete_app(&app).await.unwrap();
    assert_eq!(p.get_webhook(&ids[1]).await.unwrap_err().class(), Class::NotFound);
}

#[tokio::test]
async fn templates_are_versioned_and_reads_add_latest_copies() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    let created = p
        .create_template(&template("order-shipped", "Shipped: ${order}"))
        .await
        .unwrap();
    assert_eq!(created.version, Some(1));
    assert_eq!(last(&sim).1, format!("/us/v2/projects/{PROJECT}/templates"));
    let read = p.get_template("order-shipped").await.unwrap();
    let versions: Vec<&str> = read
        .translations
        .iter()
        .flatten()
        .map(|t| t.version.as_deref().unwrap())
        .collect();
    assert_eq!(versions, ["1", "latest"]);
    let stored: Vec<_> = read.stored_translations().collect();
    assert_eq!(stored.len(), 1);
    // The server fills defaults that were not sent.
    assert_eq!(stored[0].variables, Some(vec![]));
    assert_eq!(stored[0].channel_template_overrides, Some(Default::default()));
    assert_eq!(p.list_templates().await.unwrap(), vec![read.clone()]);
    let translations = p.list_translations("order-shipped", Some("en-US"), None).await.unwrap();
    assert_eq!(translations.len(), 1, "no latest copy unless asked for");
    let latest = p
        .list_translations("order-shipped", None, Some("latest"))
        .await
        .unwrap();
    assert_eq!(latest[0].version.as_deref(), Some("latest"));
    assert_eq!(last(&sim).2.as_deref(), Some("translation_version=latest"));

    let mut update = template("order-shipped", "On its way: ${order}");
    update.version = Some(1);
    update.translations.as_mut().unwrap()[0].version = Some("2".into());
    let replaced = p.update_template("order-shipped", &update).await.unwrap();
    assert_eq!(replaced.version, Some(2));
    assert_eq!(last(&sim).0, "PUT");
    let stale = p.update_template("order-shipped", &update).await.unwrap_err();
    assert_eq!(stale.status(), Some(409));
    assert_eq!(stale.class(), Class::Terminal);
    assert!(
        stale.to_string().contains(
            "HTTP 409 ABORTED: template order-shipped is at version 2; the update was made against version 1"
        ),
        "{stale}"
    );
    let exists = p.create_template(&template("order-shipped", "x")).await.unwrap_err();
    assert!(exists.to_string().contains("HTTP 409 ALREADY_EXISTS"), "{exists}");
    // Without an id, the server assigns one.
    let mut anonymous = template("x", "y");
    anonymous.id = None;
    assert_eq!(p.create_template(&anonymous).await.unwrap().id.unwrap().len(), 26);

    p.delete_template("order-shipped").await.unwrap();
    assert_eq!(
        p.get_template("order-shipped").await.unwrap_err().class(),
        Class::NotFound
    );
}

#[tokio::test]
async fn settings_are_a_singleton_and_conflicts_block_unified_contact_id() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    assert_eq!(p.get_settings().await.unwrap(), None, "404 means no settings yet");
    let off = ProjectSettingsRequest {
        contact_settings: Some(ContactSettings {
            unified_contact_id_enabled: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    let on = ProjectSettingsRequest {
        contact_settings: Some(ContactSettings {
            unified_contact_id_enabled: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = p.create_settings(&off).await.unwrap();
    assert_eq!(created.project_id.as_deref(), Some(PROJECT));
    assert_eq!(
        last(&sim).3.unwrap(),
        json!({"contact_settings": {"unified_contact_id_enabled": false}})
    );
    let again = p.create_settings(&off).await.unwrap_err();
    assert!(again.to_string().contains("HTTP 409 ALREADY_EXISTS"), "{again}");

    let conflicts: Vec<IdentityConflict> = (0..45)
        .map(|i| IdentityConflict {
            identity: format!("4670000{i:04}"),
            channels: vec!["SMS".into(), "RCS".into()],
            contact_ids: vec![format!("c{i}a"), format!("c{i}b")],
        })
        .collect();
    sim.seed_identity_conflicts(Region::Us, PROJECT, conflicts.clone());
    sim.reset_stats();
    assert_eq!(p.list_identity_conflicts().await.unwrap(), conflicts);
    let pages: Vec<Option<String>> = sim.journal().into_iter().map(|r| r.query).collect();
    assert_eq!(
        pages,
        [
            Some("page_size=20".into()),
            Some("page_size=20&page_token=20".into()),
            Some("page_size=20&page_token=40".into())
        ]
    );
    let refused = p.update_settings(&on).await.unwrap_err();
    assert_eq!(refused.class(), Class::Terminal);
    assert!(
        refused
            .to_string()
            .contains("HTTP 400 FAILED_PRECONDITION: the project has 45 identity conflicts"),
        "{refused}"
    );

    sim.seed_identity_conflicts(Region::Us, PROJECT, vec![]);
    let updated = p.update_settings(&on).await.unwrap();
    assert_eq!(
        updated
            .settings
            .unwrap()
            .contact_settings
            .unwrap()
            .unified_contact_id_enabled,
        Some(true)
    );
    assert_eq!(last(&sim).0, "PATCH");
    assert_eq!(last(&sim).2, None, "settings PATCH has no update_mask");
    p.delete_settings().await.unwrap();
    assert_eq!(p.get_settings().await.unwrap(), None);
}

#[tokio::test]
async fn a_token_is_fetched_once_and_renewed_once_when_it_expires() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    for _ in 0..3 {
        p.list_apps().await.unwrap();
    }
    assert_eq!(sim.stats().count("POST /oauth2/token"), 1);
    sim.expire_tokens();
    p.list_apps().await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.count("POST /oauth2/token"), 2);
    assert_eq!(
        stats.count("GET /{region}/v1/projects/{project_id}/apps"),
        5,
        "one refused, then one retried"
    );
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let sim = start(sim::Config {
        token_lifetime: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let p = project(&sim);
    p.list_apps().await.unwrap();
    tokio::time::sleep(Duration::from_millis(950)).await;
    p.list_apps().await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.count("POST /oauth2/token"), 2);
    assert_eq!(
        stats.count("GET /{region}/v1/projects/{project_id}/apps"),
        2,
        "no call was refused"
    );
}

#[tokio::test]
async fn a_refused_key_is_reported_with_what_to_check() {
    let sim = start(sim::Config {
        keys: vec![("key-id".into(), "another".into())],
        ..Default::default()
    })
    .await;
    let p = project(&sim);
    let err = p.list_apps().await.unwrap_err();
    assert_eq!(err.class(), Class::Auth);
    assert_eq!(
        err.to_string(),
        format!(
            "GET /v1/projects/{PROJECT}/apps: could not get an access token from {}/oauth2/token: HTTP 401: \
             the access key was refused (check SINCH_KEY_ID and SINCH_KEY_SECRET: an access key of the project)",
            sim.url()
        )
    );
    // Basic auth sends the key on every call, and fetches no token.
    let sim = start(sim::Config {
        keys: vec![("key-id".into(), KEY_SECRET.into())],
        ..Default::default()
    })
    .await;
    let p = project_with(
        Config {
            auth: AuthMode::Basic,
            ..client_config(&sim)
        },
        Region::Us,
    );
    p.list_apps().await.unwrap();
    assert_eq!(sim.stats().count("POST /oauth2/token"), 0);
}

#[tokio::test]
async fn rate_limited_calls_wait_as_retry_after_asks() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    p.list_apps().await.unwrap();
    sim.inject(Fault {
        status: 429,
        times: 1,
        retry_after: Some(1),
        after_write: false,
        matching: None,
        message: None,
    });
    let started = Instant::now();
    p.list_apps().await.unwrap();
    // The client's own backoff is milliseconds here: only Retry-After explains a second.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(sim.stats().count("GET /{region}/v1/projects/{project_id}/apps"), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    sim.inject(Fault {
        status: 503,
        times: 2,
        retry_after: None,
        after_write: false,
        matching: None,
        message: None,
    });
    p.list_apps().await.unwrap();
    assert_eq!(sim.stats().count("GET /{region}/v1/projects/{project_id}/apps"), 3);

    sim.inject(Fault {
        status: 500,
        times: 10,
        retry_after: None,
        after_write: false,
        matching: None,
        message: None,
    });
    let err = p.list_apps().await.unwrap_err();
    assert_eq!(err.class(), Class::Retryable);
    assert_eq!(err.attempts, 4);
    assert_eq!(
        err.to_string(),
        format!(
            "GET /v1/projects/{PROJECT}/apps: HTTP 500 INTERNAL: the service failed; retry with exponential back-off \
             (Sinch failed to answer: run again later) (gave up after 4 attempts)"
        )
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_sent_twice() {
    let sim = start(sim::Config::default()).await;
    let p = project(&sim);
    sim.inject(Fault {
        status: 503,
        times: 1,
        retry_after: None,
        after_write: true,
        matching: Some("POST".into()),
        message: None,
    });
    let err = p.create_app(&sms_app("A")).await.unwrap_err();
    assert_eq!((err.status(), err.attempts), (Some(503), 1));
    // The app exists once: the next run finds it by display name instead of creating another.
    assert_eq!(p.list_apps().await.unwrap().len(), 1);
    // A 429 means the server did nothing, so even a create is sent again.
    sim.inject(Fault {
        status: 429,
        times: 1,
        retry_after: Some(0),
        after_write: false,
        matching: Some("POST".into()),
        message: None,
    });
    p.create_app(&sms_app("B")).await.unwrap();
    assert_eq!(p.list_apps().await.unwrap().len(), 2);
}

#[tokio::test]
async fn calls_to_one_project_share_the_rate_limit_and_the_in_flight_bound() {
    let sim = start(sim::Config {
        latency: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let config = Config {
        concurrency: NonZeroUsize::new(2).unwrap(),
        ..client_config(&sim)
    };
    let p = project_with(config, Region::Us);
    p.list_apps().await.unwrap();
    let started = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.list_apps().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // Six calls of 100 ms, two at a time: three rounds at least.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let sim = start(sim::Config::default()).await;
    let config = Config {
        rate_limit: NonZeroU32::new(10).unwrap(),
        ..client_config(&sim)
    };
    let client = Client::new(config).unwrap();
    // Two regions of one project: one budget.
    let us = client.project(PROJECT, Region::Us, credentials());
    let eu = client.project(PROJECT, Region::Eu, credentials());
    let started = Instant::now();
    for _ in 0..10 {
        us.list_apps().await.unwrap();
        eu.list_apps().await.unwrap();
    }
    // A burst of 10, then 10 more at 10 per second.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn masked_secrets_are_answered_as_stars() {
    let sim = start(sim::Config {
        mask_secrets: true,
        ..Default::default()
    })
    .await;
    let p = project(&sim);
    let created = p.create_app(&sms_app("A")).await.unwrap();
    let token = |app: &App| {
        app.channel_credentials.as_ref().unwrap()[0]
            .static_bearer
            .as_ref()
            .unwrap()
            .token
            .clone()
    };
    assert_eq!(token(&created), Some(Sensitive(sim::store::MASK.into())));
    assert_eq!(
        token(&p.get_app(created.id.as_deref().unwrap()).await.unwrap()),
        Some(Sensitive(sim::store::MASK.into()))
    );
    // Stored as sent: the channel got the real token.
    let stored = sim.snapshot();
    let app = stored.regions[&Region::Us][PROJECT].apps.values().next().unwrap();
    assert_eq!(app["channel_credentials"][0]["static_bearer"]["token"], TOKEN);
}

#[tokio::test]
async fn the_state_file_keeps_objects_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let config = sim::Config {
        state_file: Some(state.clone()),
        ..Default::default()
    };
    let sim = start(config.clone()).await;
    let id = project(&sim).create_app(&sms_app("Kept")).await.unwrap().id.unwrap();
    sim.stop().await;
    // No secret sent to it is on disk: a reloaded simulator answers it masked.
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    let sim = start(config).await;
    let kept = project(&sim).get_app(&id).await.unwrap();
    assert_eq!(kept.display_name.as_deref(), Some("Kept"));
    let token = kept.channel_credentials.unwrap()[0]
        .static_bearer
        .clone()
        .unwrap()
        .token;
    assert_eq!(token, Some(Sensitive("********".into())));
}

/// The example manifests, converted to the wire, are what the API accepts.
#[tokio::test]
async fn every_example_manifest_converted_is_accepted() {
    use sinch_operator::engine::desired;
    use sinch_operator::model::{Object, WebhookApp};
    let input = sinch_operator::validate::load(&["examples".into()]).unwrap();
    let sim = start(sim::Config::default()).await;
    let mut app_ids = std::collections::HashMap::new();
    let mut created = 0;
    for m in &input.manifests {
        let region = m.object.placement().region.unwrap_or(Region::Us);
        let p = project_with(client_config(&sim), region);
        if let Object::ConversationApp(a) = &m.object {
            let d = desired::app(&a.spec, m.object.namespace(), &input.secrets);
            let app = p.create_app(&d.wire).await.unwrap();
            app_ids.insert(m.object.name().to_string(), (app.id.unwrap(), region));
            created += 1;
        }
    }
    for m in &input.manifests {
        let region = m.object.placement().region.unwrap_or(Region::Us);
        let p = project_with(client_config(&sim), region);
        match &m.object {
            Object::Webhook(w) => {
                let WebhookApp::AppRef(r) = &w.spec.app else {
                    panic!("examples use appRef")
                };
                // A webhook lives in its app's project and region.
                let (app_id, app_region) = &app_ids[&r.name];
                let d = desired::webhook(&w.spec, app_id, m.object.namespace(), &input.secrets);
                project_with(client_config(&sim), *app_region)
                    .create_webhook(&d.wire)
                    .await
                    .unwrap();
            }
            Object::Template(t) => {
                p.create_template(&desired::template(&t.spec, m.object.name()))
                    .await
                    .unwrap();
            }
            Object::ProjectSettings(s) => {
                p.create_settings(&desired::settings(&s.spec)).await.unwrap();
            }
            Object::ConversationApp(_) => continue,
        }
        created += 1;
    }
    assert_eq!(created, input.manifests.len());
}

/// A server that answers each request with the raw HTTP `answer(request head)` gives (its first
/// line is the request line), one request per connection, and keeps the request lines it
/// received.
struct Hostile {
    url: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hostile {
    async fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Hostile {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, answer) = (asked.clone(), std::sync::Arc::new(answer));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let line = head.lines().next().unwrap_or_default().to_string();
                    log.lock().unwrap().push(line);
                    let _ = conn.write_all(&answer(&head)).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Hostile { url, asked }
    }

    fn project(&self, auth: AuthMode, max_body_bytes: usize) -> Project {
        let url = self.url.clone();
        let endpoints = sinch_operator::sinch::endpoints::Endpoints::from_lookup(|k| match k {
            "SINCH_AUTH_URL" => Some(format!("{url}/oauth2/token")),
            "SINCH_CONVERSATION_URL" | "SINCH_TEMPLATE_URL" => Some(format!("{url}/{{region}}")),
            _ => None,
        })
        .unwrap();
        project_with(
            Config {
                endpoints,
                auth,
                max_body_bytes,
                retry: RetryPolicy {
                    max_attempts: 2,
                    min_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(5),
                    max_retry_after: Duration::from_millis(50),
                    max_total_wait: Duration::from_secs(60),
                },
                ..Config::default()
            },
            Region::Us,
        )
    }

    /// A client of this server, authenticated with the key itself (no token endpoint).
    fn client(&self, retry: RetryPolicy) -> Client {
        let url = self.url.clone();
        let endpoints = sinch_operator::sinch::endpoints::Endpoints::from_lookup(|k| match k {
            "SINCH_CONVERSATION_URL" | "SINCH_TEMPLATE_URL" => Some(format!("{url}/{{region}}")),
            _ => None,
        })
        .unwrap();
        Client::new(Config {
            endpoints,
            auth: AuthMode::Basic,
            retry,
            ..Config::default()
        })
        .unwrap()
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

fn http(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

const TOKEN_ANSWER: &str = r#"{"access_token":"t","expires_in":3600,"token_type":"bearer"}"#;

/// A proxy (or a hostile upstream) whose error page quotes the request's headers: neither the
/// bearer token, nor the key's `Basic` form, nor the key secret reaches the error anyone reads.
#[tokio::test]
async fn an_error_quoting_the_requests_headers_carries_no_credential() {
    const BEARER: &str = "canary-bearer-token-0123456789";
    let server = Hostile::start(|head| {
        if head.starts_with("POST /oauth2/token") {
            let token = format!(r#"{{"access_token":"{BEARER}","expires_in":3600}}"#);
            return http("200 OK", &["Content-Type: application/json"], &token);
        }
        let quoted = head.replace("\r\n", " ");
        match head.contains("/templates") {
            // The API's own error shape, its message quoting the request.
            true => http(
                "503 Service Unavailable",
                &["Content-Type: application/json"],
                &serde_json::json!({"error": {"code": 503, "status": "UNAVAILABLE", "message": format!("upstream said: {quoted}")}}).to_string(),
            ),
            // A proxy's page.
            false => http("502 Bad Gateway", &["Content-Type: text/html"], &format!("<pre>{quoted}</pre>")),
        }
    })
    .await;
    let (key_id, key_secret) = (credentials().key_id, credentials().key_secret.0);
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{key_id}:{key_secret}"),
    );
    for auth in [AuthMode::OAuth, AuthMode::Basic] {
        let p = server.project(auth, 1 << 20);
        for e in [p.list_apps().await.unwrap_err(), p.list_templates().await.unwrap_err()] {
            let text = e.to_string();
            for secret in [BEARER, basic.as_str(), key_secret.as_str()] {
                assert!(!text.contains(secret), "{auth:?}: {secret} in {text}");
            }
            assert!(
                text.to_ascii_lowercase().contains("authorization: (sensitive)"),
                "{text}"
            );
        }
    }
    let asked = server.asked();
    assert!(asked.iter().any(|l| l.starts_with("GET /us/v1/projects/")), "{asked:?}");
}

#[tokio::test]
async fn a_retry_after_of_1e20_seconds_waits_the_longest_allowed_wait_and_no_more() {
    let server = Hostile::start(|line| match line.starts_with("POST /oauth2/token") {
        true => http("200 OK", &["Content-Type: application/json"], TOKEN_ANSWER),
        false => http("429 Too Many Requests", &["Retry-After: 1e20"], ""),
    })
    .await;
    let started = Instant::now();
    let e = server.project(AuthMode::OAuth, 1 << 20).list_apps().await.unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.attempts, 2);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(server.asked().iter().filter(|l| l.contains("/apps")).count(), 2);
}

#[tokio::test]
async fn a_token_that_never_expires_is_kept_without_overflow() {
    let server = Hostile::start(|line| match line.starts_with("POST /oauth2/token") {
        true => http(
            "200 OK",
            &["Content-Type: application/json"],
            r#"{"access_token":"t","expires_in":18446744073709551615,"token_type":"bearer"}"#,
        ),
        false => http("200 OK", &["Content-Type: application/json"], r#"{"apps":[]}"#),
    })
    .await;
    let p = server.project(AuthMode::OAuth, 1 << 20);
    assert!(p.list_apps().await.unwrap().is_empty());
    assert!(p.list_apps().await.unwrap().is_empty());
    assert_eq!(server.asked().iter().filter(|l| l.contains("/oauth2/token")).count(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_nothing_reaches_its_target() {
    let elsewhere = Hostile::start(|_| http("200 OK", &[], r#"{"apps":[]}"#)).await;
    let target = format!("Location: {}/us/v1/projects/{PROJECT}/apps", elsewhere.url);
    let server = Hostile::start(move |_| http("307 Temporary Redirect", &[&target], "")).await;
    let e = server.project(AuthMode::Basic, 1 << 20).list_apps().await.unwrap_err();
    assert_eq!(e.status(), Some(307));
    assert_eq!(e.class(), Class::Terminal);
    assert_eq!(server.asked().len(), 1);
    assert_eq!(elsewhere.asked(), Vec::<String>::new());
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_not_buffered() {
    let big = format!(r#"{{"apps":[],"padding":"{}"}}"#, "x".repeat(4096));
    let server = Hostile::start(move |_| http("200 OK", &["Content-Type: application/json"], &big)).await;
    let e = server.project(AuthMode::Basic, 1024).list_apps().await.unwrap_err();
    assert_eq!(
        e.kind.to_string(),
        "the answer could not be read: the answer is larger than 1024 bytes"
    );
    assert_eq!(e.class(), Class::Terminal);
}

#[tokio::test]
async fn identity_conflict_pages_that_come_round_again_are_an_error_not_a_loop() {
    let server = Hostile::start(|line| {
        let next = if line.contains("page_token=b") { "a" } else { "b" };
        http(
            "200 OK",
            &["Content-Type: application/json"],
            &format!(r#"{{"conflicts":[],"next_page_token":"{next}"}}"#),
        )
    })
    .await;
    let e = server
        .project(AuthMode::Basic, 1 << 20)
        .list_identity_conflicts()
        .await
        .unwrap_err();
    assert_eq!(
        e.kind.to_string(),
        "the answer could not be read: the pages do not end: page token \"b\" came back or more than 10000 pages"
    );
    assert_eq!(server.asked().len(), 3, "{:?}", server.asked());
}

/// A refused key is answered from the cache for a while: a thousand objects naming it send
/// the token endpoint one request, not a thousand.
#[tokio::test]
async fn a_refused_key_is_asked_for_once_then_answered_from_the_cache() {
    let server = Hostile::start(|head| match head.starts_with("POST /oauth2/token") {
        true => http(
            "401 Unauthorized",
            &["Content-Type: application/json"],
            r#"{"error":"invalid_client","error_description":"bad key"}"#,
        ),
        false => http("200 OK", &["Content-Type: application/json"], r#"{"apps":[]}"#),
    })
    .await;
    let p = server.project(AuthMode::OAuth, 1 << 20);
    for _ in 0..5 {
        let e = p.list_apps().await.unwrap_err();
        assert_eq!((e.class(), e.status()), (Class::Auth, Some(401)));
        assert!(e.to_string().contains("bad key"), "{e}");
    }
    assert_eq!(server.asked(), ["POST /oauth2/token HTTP/1.1"]);
}

/// One tenant's project answers 429 forever, asking for a minute's wait: with the controller's
/// policy a request gives up at once instead of holding its caller for minutes, while the calls
/// of another project go on meanwhile.
#[tokio::test]
async fn a_throttled_project_gives_up_within_the_wait_budget_and_others_go_on() {
    let server = Hostile::start(|head| match head.contains("/projects/throttled/") {
        true => http("429 Too Many Requests", &["Retry-After: 60"], ""),
        false => http("200 OK", &["Content-Type: application/json"], r#"{"apps":[]}"#),
    })
    .await;
    let client = server.client(RetryPolicy::controller());
    let throttled = client.project("throttled", Region::Us, credentials());
    let other = client.project("other", Region::Us, credentials());
    let started = Instant::now();
    let (throttled, others) = tokio::join!(throttled.list_apps(), async {
        for _ in 0..20 {
            other.list_apps().await.unwrap();
        }
        started.elapsed()
    });
    let e = throttled.unwrap_err();
    assert_eq!(
        (e.status(), e.attempts),
        (Some(429), 1),
        "a 60 s wait is over the 10 s budget: {e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(others < Duration::from_secs(5), "{others:?}");
    let asked = server.asked();
    assert_eq!(asked.iter().filter(|l| l.contains("/projects/throttled/")).count(), 1);
    assert_eq!(asked.iter().filter(|l| l.contains("/projects/other/")).count(), 20);
}

/// A project answering identity conflicts page after page is read up to a bound: planning
/// needs to know that there are conflicts, not to hold every one (memory, rule 14).
#[tokio::test]
async fn identity_conflicts_are_read_up_to_a_thousand() {
    let server = Hostile::start(|head| {
        let line = head.lines().next().unwrap_or_default();
        let page: usize = line
            .split("page_token=p")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let conflicts: Vec<_> = (0..20)
            .map(|i| serde_json::json!({"identity": format!("+4670{page:04}{i:02}"), "channels": ["SMS", "RCS"]}))
            .collect();
        let body = serde_json::json!({"conflicts": conflicts, "next_page_token": format!("p{}", page + 1)});
        http("200 OK", &["Content-Type: application/json"], &body.to_string())
    })
    .await;
    let conflicts = server
        .project(AuthMode::Basic, 1 << 20)
        .list_identity_conflicts()
        .await
        .unwrap();
    assert_eq!(conflicts.len(), sinch_operator::sinch::client::MAX_CONFLICTS);
    assert_eq!(server.asked().len(), 50);
}

/// An update's answer naming another object (a hostile or broken upstream) retargets nothing:
/// the change keeps its own id and the answer is not taken as the object's state. Only a
/// create learns its id from the answer, and only one that can be an id.
#[tokio::test]
async fn an_answer_naming_another_object_retargets_nothing() {
    use sinch_operator::engine::execute::{Fate, execute};
    use sinch_operator::engine::plan::{Action, Change, Plan};
    use sinch_operator::sinch::request::Request;
    let server = Hostile::start(|head| match head.starts_with("PATCH") {
        true => http(
            "200 OK",
            &["Content-Type: application/json"],
            r#"{"id":"01VICTIM","display_name":"Web"}"#,
        ),
        false => http(
            "200 OK",
            &["Content-Type: application/json"],
            r#"{"id":"../../x","display_name":"Web"}"#,
        ),
    })
    .await;
    let client = server.client(RetryPolicy::default());
    let change = |id: Option<&str>, request: Request| {
        let action = if id.is_some() { Action::Update } else { Action::Create };
        let scope = sinch_operator::engine::Scope {
            project: PROJECT.into(),
            region: Region::Us,
        };
        let kind = sinch_operator::model::Kind::ConversationApp;
        let mut c = Change::new(
            kind,
            "shop/web".into(),
            action,
            id.map(str::to_string),
            &scope,
            "absent".into(),
        );
        c.request = Some(request);
        c
    };
    let body = json!({"display_name": "Web"});
    let plan = Plan::of(vec![
        change(
            Some("01MINE"),
            Request::update_app(PROJECT, "01MINE", &body, vec!["display_name".into()]),
        ),
        change(
            None,
            Request::create_app(PROJECT, &serde_json::from_value(body.clone()).unwrap()),
        ),
    ]);
    let outcomes = execute(&plan, "", &client, &credentials(), &Default::default(), &|_, _| {}).await;
    let status: Vec<&Fate> = outcomes.iter().map(|o| &o.status).collect();
    assert_eq!(
        status[0],
        &Fate::Done {
            id: Some("01MINE".into()),
            note: None,
            answer: None
        }
    );
    assert!(matches!(status[1], Fate::Done { id: None, .. }), "{:?}", status[1]);
}
