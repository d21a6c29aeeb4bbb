//! `plan` and `apply` run as a user runs them, against the simulator: exact requests (from its
//! journal), request counts (from its stats), exact output and exit codes.

mod common;

use common::{Connection, command, text, walk};

use serde_json::json;
use sinch_operator::model::Region;
use sinch_operator::sim::{self, Fault, Sim};
use sinch_operator::sinch::Sensitive;
use sinch_operator::sinch::app::App;
use sinch_operator::sinch::client::{Credentials, Project, RetryPolicy};
use sinch_operator::sinch::webhook::Webhook;
use std::path::Path;
use std::process::{Command, Output};

const PROJECT: &str = "p-engine";

async fn start() -> Sim {
    start_with(sim::Config::default()).await
}

async fn start_with(config: sim::Config) -> Sim {
    common::start(config).await
}

/// The connection's key secret, a canary: it must never appear in any output.
const KEY_SECRET: &str = "canary-key-secret-77aa";

/// Who the binary connects as.
const CONNECTION: Connection = Connection {
    project: PROJECT,
    key_id: "key-id",
    key_secret: KEY_SECRET,
};

/// Runs the binary against `sim` with the connection in its environment.
async fn run(sim: &Sim, args: &[&str]) -> Output {
    run_env(sim, args, &[]).await
}

async fn run_env(sim: &Sim, args: &[&str], env: &[(&str, &str)]) -> Output {
    common::run(sim, &CONNECTION, args, env).await
}

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// A client of the simulator for changes made "behind our back".
fn api(sim: &Sim, region: Region) -> Project {
    sim.project(PROJECT, region).unwrap()
}

fn writes(journal: &[sim::Call]) -> Vec<&sim::Call> {
    journal.iter().filter(|r| r.method != "GET").collect()
}

/// `apply --auto-approve` of `dir`, which must succeed; `what` names the case in a failure.
async fn apply_ok(sim: &Sim, dir: &Path, what: &str) -> Output {
    let out = run(sim, &["apply", "-f", path(dir), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{what}: {}{}", stdout(&out), stderr(&out));
    out
}

fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

const APP: &str = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: shop, namespace: team}
spec:
  displayName: Shop
  processingMode: CONVERSATION
  retentionPolicy:
    ttlDays: 30
  channelCredentials:
    - channel: SMS
      staticBearer:
        claimedIdentity: sms-plan
        tokenRef: {name: shop-secrets, key: sms}
"#;

const SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: shop-secrets, namespace: team}
stringData:
  sms: canary-sms-token-1f3c
  whatsapp: canary-whatsapp-token-8e21
  hook: canary-hook-secret-42d0
  client: canary-client-secret-c9b7
"#;

fn webhook(name: &str, target: &str) -> String {
    format!(
        r#"
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {{name: {name}, namespace: team}}
spec:
  appRef: {{name: shop}}
  target: {target}
  triggers: [MESSAGE_INBOUND]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_are_created_then_converged_with_zero_writes() {
    let sim = start().await;
    let out = run(&sim, &["apply", "-f", "examples/", "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("\nApply complete: 10 created, 0 updated, 0 deleted, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
    let stats = sim.stats();
    assert_eq!(stats.count("POST /{region}/v1/projects/{project_id}/apps"), 2);
    assert_eq!(stats.count("POST /{region}/v1/projects/{project_id}/webhooks"), 5);
    assert_eq!(stats.count("POST /{region}/v2/projects/{project_id}/templates"), 2);
    assert_eq!(stats.count("POST /{region}/v1/projects/{project_id}/settings"), 1);
    assert_eq!(stats.writes, 10);
    let store = serde_json::to_value(sim.snapshot()).unwrap();
    assert_eq!(store["regions"]["eu"][PROJECT]["apps"].as_object().unwrap().len(), 1);
    assert_eq!(
        store["regions"]["us"][PROJECT]["webhooks"].as_object().unwrap().len(),
        3
    );

    let plan = run(&sim, &["plan", "-f", "examples/", "--detailed-exitcode"]).await;
    assert_eq!(stdout(&plan), "No changes. Sinch matches the manifests (10 objects).\n");
    assert_eq!((plan.status.code(), stderr(&plan)), (Some(0), String::new()));

    sim.reset_stats();
    let again = run(&sim, &["apply", "-f", "examples/", "--auto-approve"]).await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        stdout(&again),
        "No changes. Sinch matches the manifests (10 objects).\n"
    );
    assert_eq!(sim.stats().writes, 0, "a converged apply sends no write");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_shown_field_by_field_and_reverted_by_one_exact_patch() {
    let sim = start().await;
    assert_eq!(
        run(&sim, &["apply", "-f", "examples/", "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    let us = api(&sim, Region::Us);
    let app = us
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.display_name.as_deref() == Some("Customer Support (US)"))
        .unwrap();
    let id = app.id.clone().unwrap();
    let drift = App {
        processing_mode: Some("DISPATCH".into()),
        ..App::default()
    };
    us.update_app(&id, &drift, vec!["processing_mode".into()])
        .await
        .unwrap();

    let plan = run(&sim, &["plan", "-f", "examples/", "--detailed-exitcode"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    assert_eq!(
        stdout(&plan),
        format!(
            "~ ConversationApp messaging/support-us ({id}) will be updated in project {PROJECT}, region us\n    \
             PATCH /v1/projects/{PROJECT}/apps/{id}?update_mask=processing_mode\n    \
             ~ processing_mode: \"DISPATCH\" -> \"CONVERSATION\"\n\n\
             Plan: 0 to create, 1 to update, 0 to delete, 9 unchanged.\n"
        )
    );

    sim.reset_stats();
    let apply = run(&sim, &["apply", "-f", "examples/", "--auto-approve"]).await;
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let journal = sim.journal();
    let sent = writes(&journal);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "PATCH");
    assert_eq!(sent[0].path, format!("/us/v1/projects/{PROJECT}/apps/{id}"));
    assert_eq!(sent[0].query.as_deref(), Some("update_mask=processing_mode"));
    assert_eq!(sent[0].body, Some(json!({"processing_mode": "CONVERSATION"})));
    assert!(stdout(&apply).contains(&format!("updated ConversationApp messaging/support-us ({id})\n")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partly_declared_object_keeps_live_sub_fields_and_a_new_channel_keeps_the_others() {
    let sim = start().await;
    let us = api(&sim, Region::Us);
    let live: App = serde_json::from_value(json!({
        "display_name": "Shop",
        "processing_mode": "CONVERSATION",
        "retention_policy": {"retention_type": "CONVERSATION_EXPIRE_POLICY", "ttl_days": 180},
        "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "sms-plan", "token": "canary-sms-token-1f3c"}}]
    }))
    .unwrap();
    let id = us.create_app(&live).await.unwrap().id.unwrap();
    let app = APP.replace(
        "        tokenRef: {name: shop-secrets, key: sms}\n",
        "        tokenRef: {name: shop-secrets, key: sms}\n    - channel: WHATSAPP\n      staticBearer:\n        claimedIdentity: \"4600\"\n        tokenRef: {name: shop-secrets, key: whatsapp}\n",
    );
    let dir = write_dir(&[("app.yaml", &app), ("secrets.yaml", SECRETS)]);
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let journal = sim.journal();
    let sent = writes(&journal);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].query.as_deref(),
        Some("update_mask=channel_credentials,retention_policy")
    );
    assert_eq!(
        sent[0].body,
        Some(json!({
            "retention_policy": {"retention_type": "CONVERSATION_EXPIRE_POLICY", "ttl_days": 30},
            "channel_credentials": [
                {"channel": "SMS", "static_bearer": {"claimed_identity": "sms-plan", "token": "canary-sms-token-1f3c"}},
                {"channel": "WHATSAPP", "static_bearer": {"claimed_identity": "4600", "token": "canary-whatsapp-token-8e21"}}
            ]
        }))
    );
    let after = us.get_app(&id).await.unwrap();
    assert_eq!(after.processing_mode.as_deref(), Some("CONVERSATION"));
    assert_eq!(after.channel_credentials.unwrap().len(), 2);
    let plan = run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
}

/// AppCreateRequest requires `channel_credentials` (the simulator enforces it as Sinch does).
#[tokio::test(flavor = "multi_thread")]
async fn an_app_declared_without_channels_is_created_with_an_empty_channel_list() {
    let sim = start().await;
    let app = "apiVersion: conversation.sinch.com/v1alpha1\nkind: ConversationApp\nmetadata: {name: bare, namespace: team}\nspec: {displayName: Bare}\n";
    let dir = write_dir(&[("app.yaml", app)]);
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let journal = sim.journal();
    let sent = writes(&journal);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].body,
        Some(json!({"display_name": "Bare", "channel_credentials": []}))
    );
    let plan = run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
    assert_eq!(stdout(&plan), "No changes. Sinch matches the manifests (1 object).\n");
}

/// Creates the Shop app and `n` webhooks of it through the API, returning the app id.
async fn shop_with_webhooks(sim: &Sim, targets: &[&str]) -> String {
    let us = api(sim, Region::Us);
    let app: App = serde_json::from_value(json!({"display_name": "Shop", "processing_mode": "CONVERSATION",
        "retention_policy": {"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 30},
        "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "sms-plan", "token": "canary-sms-token-1f3c"}}]}))
    .unwrap();
    let id = us.create_app(&app).await.unwrap().id.unwrap();
    for target in targets {
        let w = Webhook {
            app_id: Some(id.clone()),
            target: Some(target.to_string()),
            target_type: Some("HTTP".into()),
            triggers: Some(vec!["MESSAGE_INBOUND".into()]),
            ..Webhook::default()
        };
        us.create_webhook(&w).await.unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_limits_count_declared_and_live_before_any_write() {
    let sim = start().await;
    // Six declared: refused offline, nothing sent at all.
    let mut six = String::from(APP);
    for i in 0..6 {
        six.push_str(&webhook(&format!("h{i}"), &format!("https://h{i}.example.com/")));
    }
    let dir = write_dir(&[("all.yaml", &six), ("secrets.yaml", SECRETS)]);
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ConversationApp team/shop would have 6 webhooks, more than the 5 Sinch allows"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sim.stats().total, 0);

    // Four declared and two live that no manifest declares: an error naming the app, the count
    // and the targets, and no write.
    let id = shop_with_webhooks(&sim, &["https://old1.example.com/", "https://old2.example.com/"]).await;
    let mut four = String::from(APP);
    for i in 0..4 {
        four.push_str(&webhook(&format!("h{i}"), &format!("https://h{i}.example.com/")));
    }
    let dir = write_dir(&[("all.yaml", &four), ("secrets.yaml", SECRETS)]);
    sim.reset_stats();
    let plan = run(&sim, &["plan", "-f", path(dir.path())]).await;
    assert_eq!(plan.status.code(), Some(1));
    let message = "ConversationApp team/shop would have 6 webhooks, more than the 5 Sinch allows: 4 declared and 2 in Sinch that no manifest declares (https://h0.example.com/, https://h1.example.com/, https://h2.example.com/, https://h3.example.com/, https://old1.example.com/, https://old2.example.com/); delete those or run with --prune";
    assert!(
        stdout(&plan).contains(&format!("  error: Webhook team/h0: {message}\n")),
        "{}",
        stdout(&plan)
    );
    let apply = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(apply.status.code(), Some(1));
    assert_eq!(sim.stats().writes, 0);
    assert_eq!(api(&sim, Region::Us).list_webhooks(&id).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn swapping_one_target_at_five_of_five_deletes_first() {
    let sim = start().await;
    let targets: Vec<String> = (0..5).map(|i| format!("https://h{i}.example.com/")).collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let id = shop_with_webhooks(&sim, &refs).await;
    let mut yaml = String::from(APP);
    for (i, target) in targets.iter().take(4).enumerate() {
        yaml.push_str(&webhook(&format!("h{i}"), target));
    }
    yaml.push_str(&webhook("h4", "https://new.example.com/"));
    let dir = write_dir(&[("all.yaml", &yaml), ("secrets.yaml", SECRETS)]);
    // Without --prune the old target keeps its slot: six would not fit.
    let plan = run(&sim, &["plan", "-f", path(dir.path())]).await;
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve", "--prune"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let journal = sim.journal();
    let sent: Vec<(String, String)> = writes(&journal)
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0, "DELETE");
    assert_eq!(sent[1], ("POST".into(), format!("/us/v1/projects/{PROJECT}/webhooks")));
    let mut live: Vec<String> = api(&sim, Region::Us)
        .list_webhooks(&id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|w| w.target)
        .collect();
    live.sort();
    assert_eq!(live.len(), 5);
    assert!(live.contains(&"https://new.example.com/".to_string()) && !live.contains(&targets[4]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_created_before_a_crash_is_adopted_not_duplicated() {
    let sim = start().await;
    // The create went through but the run died before anything was recorded.
    let id = shop_with_webhooks(&sim, &["https://h0.example.com/"]).await;
    let dir = write_dir(&[
        (
            "all.yaml",
            &format!("{APP}{}", webhook("h0", "https://h0.example.com/")),
        ),
        ("secrets.yaml", SECRETS),
    ]);
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(sim.stats().count("POST /{region}/v1/projects/{project_id}/apps"), 0);
    assert_eq!(sim.stats().count("POST /{region}/v1/projects/{project_id}/webhooks"), 0);
    let apps = api(&sim, Region::Us).list_apps().await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].id.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_are_0_2_1_with_detailed_exitcode() {
    let sim = start().await;
    let dir = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    let code = |o: &Output| o.status.code();
    assert_eq!(
        code(&run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await),
        Some(2)
    );
    assert_eq!(
        code(&run(&sim, &["plan", "-f", path(dir.path())]).await),
        Some(0),
        "changes without the flag: 0"
    );
    assert_eq!(
        code(&run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await),
        Some(0)
    );
    assert_eq!(
        code(&run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await),
        Some(0)
    );
    let bad = write_dir(&[("app.yaml", &APP.replace("CONVERSATION", "CONVERSATIONS"))]);
    assert_eq!(
        code(&run(&sim, &["plan", "-f", path(bad.path()), "--detailed-exitcode"]).await),
        Some(1)
    );
    let refused = write_dir(&[(
        "app.yaml",
        &APP.replace("displayName: Shop", "displayName: Shop\n  appId: 01NOSUCHAPP"),
    )]);
    let out = run(&sim, &["plan", "-f", path(refused.path()), "--detailed-exitcode"]).await;
    assert_eq!(code(&out), Some(1));
    assert!(
        stdout(&out).contains(
            "  error: ConversationApp team/shop: spec.appId: no app 01NOSUCHAPP exists in this project and region\n"
        ),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_apply_needs_auto_approve_and_reads_nothing() {
    let sim = start().await;
    let dir = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    let out = run(&sim, &["apply", "-f", path(dir.path())]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: --auto-approve: not given, and standard input is not a terminal to ask on\n"
    );
    assert_eq!(sim.stats().total, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_and_refused_once_stale() {
    let sim = start().await;
    let dir = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    let plan_file = dir.path().join("plan.json");
    let plan_path = plan_file.to_str().unwrap();
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--out", plan_path]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert!(!saved.contains("canary"), "a saved plan holds no secret value");
    // Its fingerprints are keyed with the key secret, not with anything in the file: holding
    // the file does not let anyone test a guess (here, the right one).
    let file: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let nonce = file["saved"]["nonce"].as_str().unwrap();
    let recorded = file["changes"][0]["secrets"][0]["fingerprint"].as_str().unwrap();
    let guess = b"canary-sms-token-1f3c";
    assert_ne!(sinch_operator::engine::plan::fingerprint(nonce, guess), recorded);
    let key = sinch_operator::engine::plan::fingerprint(KEY_SECRET, nonce.as_bytes());
    assert_eq!(sinch_operator::engine::plan::fingerprint(&key, guess), recorded);
    let out = run(&sim, &["apply", plan_path]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(sim.stats().writes, 1);
    let stored = api(&sim, Region::Us).list_apps().await.unwrap();
    assert_eq!(
        stored[0].channel_credentials.as_ref().unwrap()[0]
            .static_bearer
            .as_ref()
            .unwrap()
            .token,
        Some(Sensitive("canary-sms-token-1f3c".into())),
        "the placeholder was filled from the input's Secret"
    );

    // Planned, then changed behind our back: refused, nothing written.
    let changed = APP.replace("ttlDays: 30", "ttlDays: 60");
    std::fs::write(dir.path().join("app.yaml"), changed).unwrap();
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--out", plan_path]).await;
    assert_eq!(out.status.code(), Some(0));
    let id = stored[0].id.clone().unwrap();
    let drift = App {
        processing_mode: Some("DISPATCH".into()),
        ..App::default()
    };
    api(&sim, Region::Us)
        .update_app(&id, &drift, vec!["processing_mode".into()])
        .await
        .unwrap();
    sim.reset_stats();
    let out = run(&sim, &["apply", plan_path]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the saved plan is stale, nothing was applied:\n  ConversationApp team/shop: changed in Sinch since the plan was made\nrun `sinch-operator plan` again\n"
    );
    assert_eq!(sim.stats().writes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn planning_a_project_with_a_apps_reads_a_plus_3_times() {
    let sim = start().await;
    let mut yaml = String::new();
    for i in 0..4 {
        yaml.push_str(
            &APP.replace("name: shop,", &format!("name: shop{i},"))
                .replace("displayName: Shop", &format!("displayName: Shop {i}")),
        );
        yaml.push_str(
            &webhook(&format!("h{i}"), &format!("https://h{i}.example.com/"))
                .replace("name: shop}", &format!("name: shop{i}}}")),
        );
        yaml.push_str("---\n");
    }
    yaml.push_str("apiVersion: conversation.sinch.com/v1alpha1\nkind: ProjectSettings\nmetadata: {name: settings, namespace: team}\nspec:\n  contactSettings: {unifiedContactIdEnabled: false}\n");
    yaml.push_str("---\napiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: hello, namespace: team}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - languageCode: en-US\n      version: \"1\"\n      textMessage: {text: Hello}\n");
    let dir = write_dir(&[("all.yaml", &yaml), ("secrets.yaml", SECRETS)]);
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    sim.reset_stats();
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let stats = sim.stats();
    assert_eq!(stats.count("GET /{region}/v1/projects/{project_id}/apps"), 1);
    assert_eq!(
        stats.count("GET /{region}/v1/projects/{project_id}/apps/{app_id}/webhooks"),
        4
    );
    assert_eq!(stats.count("GET /{region}/v2/projects/{project_id}/templates"), 1);
    assert_eq!(stats.count("GET /{region}/v1/projects/{project_id}/settings"), 1);
    assert_eq!(stats.total - stats.count("POST /oauth2/token"), 4 + 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_template_version_is_read_again_and_replaced_once() {
    let sim = start().await;
    let tpl = "apiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: hello, namespace: team}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - languageCode: en-US\n      version: \"1\"\n      textMessage: {text: Hello}\n";
    let dir = write_dir(&[("t.yaml", tpl)]);
    assert_eq!(
        run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    std::fs::write(
        dir.path().join("t.yaml"),
        tpl.replace("text: Hello", "text: Hello there"),
    )
    .unwrap();
    sim.inject(Fault {
        status: 409,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("PUT /us/v2/".into()),
        message: None,
    });
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let journal = sim.journal();
    let calls: Vec<String> = journal.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let t = format!("/us/v2/projects/{PROJECT}/templates");
    assert_eq!(
        calls,
        [
            format!("GET {t}"),
            format!("PUT {t}/hello"),
            format!("GET {t}/hello"),
            format!("PUT {t}/hello")
        ]
    );
    assert!(
        stdout(&out).contains("updated Template team/hello (hello): changed in Sinch meanwhile; replaced version 1\n"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failed_object_does_not_stop_the_others() {
    let sim = start().await;
    let dir = write_dir(&[
        (
            "all.yaml",
            &format!(
                "{APP}{}{}",
                webhook("h0", "https://h0.example.com/"),
                "---\napiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: hello, namespace: team}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - languageCode: en-US\n      version: \"1\"\n      textMessage: {text: Hello}\n"
            ),
        ),
        ("secrets.yaml", SECRETS),
    ]);
    sim.inject(Fault {
        status: 400,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("POST /us/v1/projects/p-engine/apps".into()),
        message: Some("Invalid argument: channel_credentials[0].static_bearer.claimed_identity is not an SMS sender of the project".into()),
    });
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("failed ConversationApp team/shop: POST /v1/projects/p-engine/apps: HTTP 400 INVALID_ARGUMENT: Invalid argument: channel_credentials[0].static_bearer.claimed_identity is not an SMS sender of the project\n"),
        "{text}"
    );
    assert!(
        text.contains("skipped Webhook team/h0: ConversationApp team/shop did not succeed\n"),
        "{text}"
    );
    assert!(text.contains("created Template team/hello (hello)\n"), "{text}");
    assert!(
        text.ends_with("Apply finished with errors: 1 created, 0 updated, 0 deleted, 2 failed.\n"),
        "{text}"
    );
    // A rerun converges.
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("Apply complete: 2 created, 0 updated, 0 deleted, 0 failed.\n"));
}

/// Sinch's error text may quote what it was sent: a secret value in it is shown as
/// `(sensitive)`, never as itself.
#[tokio::test]
async fn a_secret_quoted_in_an_api_error_is_never_shown() {
    let sim = start().await;
    let dir = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    sim.inject(Fault {
        status: 400,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some("POST /us/v1/projects/p-engine/apps".into()),
        message: Some("token canary-sms-token-1f3c is not valid for key canary-key-secret-77aa".into()),
    });
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("failed ConversationApp team/shop: POST /v1/projects/p-engine/apps: HTTP 400 INVALID_ARGUMENT: token (sensitive) is not valid for key (sensitive)\n"),
        "{text}"
    );
    assert!(!text.contains("canary") && !err.contains("canary"), "{text}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_of_a_populated_project_plans_no_changes_and_writes_no_secret() {
    let sim = start().await;
    let dir = write_dir(&[
        (
            "app.yaml",
            &format!("{APP}{}", webhook("h0", "https://h0.example.com/")),
        ),
        (
            "secrets.yaml",
            &SECRETS.replace("stringData:", "stringData:\n  unused: x"),
        ),
    ]);
    let hooked = std::fs::read_to_string(dir.path().join("app.yaml")).unwrap().replace(
        "  triggers: [MESSAGE_INBOUND]\n",
        "  triggers: [MESSAGE_INBOUND]\n  secretRef: {name: shop-secrets, key: hook}\n",
    );
    std::fs::write(dir.path().join("app.yaml"), hooked).unwrap();
    assert_eq!(
        run(&sim, &["apply", "-f", "examples/", "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );

    let out_dir = tempfile::tempdir().unwrap();
    let imported = out_dir.path().join("live");
    let out = run(
        &sim,
        &[
            "import",
            "--region",
            "us",
            "--region",
            "eu",
            "--out",
            imported.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "imported 3 ConversationApp, 6 Webhook, 2 Template, 1 ProjectSettings into {}\nsecret values are not imported: provide the 6 Secret(s) listed in {}\n",
            imported.display(),
            imported.join("secrets.example.yaml").display()
        )
    );
    for entry in walk(&imported) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains("canary") && !text.contains("replace-with"),
            "{}: {text}",
            entry.display()
        );
    }
    sim.reset_stats();
    let plan = run(&sim, &["plan", "-f", imported.to_str().unwrap(), "--detailed-exitcode"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    assert!(
        stdout(&plan).ends_with("No changes. Sinch matches the manifests (12 objects).\n"),
        "{}",
        stdout(&plan)
    );
    assert_eq!(sim.stats().writes, 0);

    // Never overwrites.
    let again = run(&sim, &["import", "--region", "us", "--out", imported.to_str().unwrap()]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("exists; import never overwrites a file, nothing was written"),
        "{}",
        stderr(&again)
    );
}

/// Every secret of the model, each with a unique canary value: all 11 credential objects (LINE
/// Enterprise in both markets), the callback secrets of the app and of a channel, and the
/// webhook's secret and OAuth client secret.
const CANARY_INPUT: &str = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: shop, namespace: team}
spec:
  displayName: Shop
  callbackSettings:
    secretForOverriddenCallbackUrlsRef: {name: c, key: callback}
  channelCredentials:
    - channel: SMS
      callbackSecretRef: {name: c, key: channel-callback}
      staticBearer: {claimedIdentity: plan, tokenRef: {name: c, key: bearer}}
    - channel: MMS
      mmsCredentials:
        accountId: acc
        apiKeyRef: {name: c, key: mms-key}
        basicAuth: {username: u, passwordRef: {name: c, key: mms-password}}
    - channel: LINE
      credentialOrdinalNumber: 1
      lineCredentials: {tokenRef: {name: c, key: line-token}, secretRef: {name: c, key: line-secret}, isDefault: true}
    - channel: LINE
      credentialOrdinalNumber: 2
      lineEnterpriseCredentials:
        lineJapan: {tokenRef: {name: c, key: line-jp-token}, secretRef: {name: c, key: line-jp-secret}}
    - channel: WECHAT
      wechatCredentials:
        appId: wx
        appSecretRef: {name: c, key: wechat-app-secret}
        tokenRef: {name: c, key: wechat-token}
        aesKeyRef: {name: c, key: wechat-aes}
    - channel: MESSENGER
      staticToken: {tokenRef: {name: c, key: messenger-token}}
    - channel: KAKAOTALK
      kakaotalkCredentials: {kakaotalkPlusFriendId: kf, kakaotalkSenderKeyRef: {name: c, key: kakao-sender}}
    - channel: KAKAOTALKCHAT
      kakaotalkchatCredentials: {kakaotalkPlusFriendId: kc, apiKeyRef: {name: c, key: kakaochat-key}}
    - channel: TELEGRAM
      telegramCredentials: {tokenRef: {name: c, key: telegram-token}}
    - channel: INSTAGRAM
      instagramCredentials: {tokenRef: {name: c, key: instagram-token}}
    - channel: APPLEBC
      applebcCredentials:
        businessChatAccountId: abc
        applePayCertificatePasswordRef: {name: c, key: applepay-password}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: shop-th, namespace: team}
spec:
  displayName: Shop Thailand
  channelCredentials:
    - channel: LINE
      lineEnterpriseCredentials:
        lineThailand: {tokenRef: {name: c, key: line-th-token}, secretRef: {name: c, key: line-th-secret}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Webhook
metadata: {name: hook, namespace: team}
spec:
  appRef: {name: shop}
  target: https://hooks.example.com/
  triggers: [MESSAGE_INBOUND]
  secretRef: {name: c, key: hook}
  clientCredentials:
    clientId: id
    clientSecretRef: {name: c, key: client}
    endpoint: https://auth.example.com/token
---
apiVersion: v1
kind: Secret
metadata: {name: c, namespace: team}
stringData:
  callback: canary-01-callback
  channel-callback: canary-02-channel-callback
  bearer: canary-03-bearer
  mms-key: canary-04-mms-key
  mms-password: canary-05-mms-password
  line-token: canary-06-line-token
  line-secret: canary-07-line-secret
  wechat-app-secret: canary-08-wechat-app-secret
  wechat-token: canary-09-wechat-token
  wechat-aes: canary-10-wechat-aes
  hook: canary-11-hook
  client: canary-12-client
  line-jp-token: canary-13-line-jp-token
  line-jp-secret: canary-14-line-jp-secret
  messenger-token: canary-15-messenger-token
  kakao-sender: canary-16-kakao-sender
  kakaochat-key: canary-17-kakaochat-key
  telegram-token: canary-18-telegram-token
  instagram-token: canary-19-instagram-token
  applepay-password: canary-20-applepay-password
  line-th-token: canary-21-line-th-token
  line-th-secret: canary-22-line-th-secret
"#;

#[tokio::test(flavor = "multi_thread")]
async fn canary_secrets_never_appear_in_any_output_saved_plan_or_log() {
    let sim = start().await;
    let dir = write_dir(&[("all.yaml", CANARY_INPUT)]);
    let trace = [("SINCH_OPERATOR_LOG", "trace")];
    let mut seen = Vec::new();
    for output in ["text", "markdown", "json"] {
        let out = run_env(&sim, &["plan", "-f", path(dir.path()), "--output", output], &trace).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("(sensitive)"), "{output}: {}", stdout(&out));
        seen.push((format!("plan --output {output}"), stdout(&out) + &stderr(&out)));
    }
    let saved = dir.path().join("plan.json");
    let out = run_env(
        &sim,
        &["plan", "-f", path(dir.path()), "--out", saved.to_str().unwrap()],
        &trace,
    )
    .await;
    seen.push((
        "plan --out".into(),
        stdout(&out) + &stderr(&out) + &std::fs::read_to_string(&saved).unwrap(),
    ));
    let out = run_env(&sim, &["apply", saved.to_str().unwrap()], &trace).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    seen.push(("apply PLANFILE".into(), stdout(&out) + &stderr(&out)));
    assert!(
        stderr(&out).contains("TRACE") || stderr(&out).contains("DEBUG"),
        "logs were on: {}",
        stderr(&out)
    );
    // Every secret reached Sinch...
    let store = serde_json::to_string(&sim.snapshot()).unwrap();
    for n in 1..=22 {
        assert!(store.contains(&format!("canary-{n:02}")), "canary {n} was sent");
    }
    // ...and changed behind our back, shows as a sensitive change only.
    let apps = api(&sim, Region::Us).list_apps().await.unwrap();
    let shop = apps.iter().find(|a| a.display_name.as_deref() == Some("Shop")).unwrap();
    let id = api(&sim, Region::Us)
        .list_webhooks(shop.id.as_deref().unwrap())
        .await
        .unwrap()[0]
        .id
        .clone()
        .unwrap();
    let drift = Webhook {
        target: Some("https://hooks.example.com/".into()),
        secret: Some(Sensitive("canary-99-drifted".into())),
        ..Webhook::default()
    };
    api(&sim, Region::Us)
        .update_webhook(&id, &drift, vec!["secret".into()])
        .await
        .unwrap();
    let out = run_env(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"], &trace).await;
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("    ~ secret: (sensitive value changes)\n"),
        "{}",
        stdout(&out)
    );
    seen.push(("apply after drift".into(), stdout(&out) + &stderr(&out)));
    for (what, text) in seen {
        assert!(!text.contains("canary-"), "{what} shows a secret value:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unresolved_secret_is_reported_and_never_sent_empty() {
    let sim = start().await;
    let dir = write_dir(&[("app.yaml", APP)]);
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  error: ConversationApp team/shop: cannot create the app: spec.channelCredentials[0].staticBearer.tokenRef: Secret team/shop-secrets is not in the input\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sim.stats().writes, 0);
    // Existing, with the secret not given: not compared, the rest still converges.
    let with = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    assert_eq!(
        run(&sim, &["apply", "-f", path(with.path()), "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    std::fs::write(dir.path().join("app.yaml"), APP.replace("ttlDays: 30", "ttlDays: 45")).unwrap();
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("    # spec.channelCredentials[0].staticBearer.tokenRef: Secret team/shop-secrets is not in the input; not compared\n"), "{}", stdout(&out));
    let journal = sim.journal();
    let sent = writes(&journal);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].query.as_deref(), Some("update_mask=retention_policy"));
    // Changing the channel list would have to send the unknown token: refused, not sent empty.
    std::fs::write(
        dir.path().join("app.yaml"),
        APP.replace("claimedIdentity: sms-plan", "claimedIdentity: sms-plan-2"),
    )
    .unwrap();
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("cannot update: channel_credentials must be sent whole, but the secret for channel_credentials.0.static_bearer.token is unresolved"), "{}", stdout(&out));
    assert_eq!(sim.stats().writes, 0);
}

const SETTINGS_ON: &str = "apiVersion: conversation.sinch.com/v1alpha1\nkind: ProjectSettings\nmetadata: {name: settings, namespace: team}\nspec:\n  contactSettings: {unifiedContactIdEnabled: true}\n";

#[tokio::test(flavor = "multi_thread")]
async fn identity_conflicts_are_reported_instead_of_a_doomed_patch() {
    let sim = start().await;
    let dir = write_dir(&[("settings.yaml", &SETTINGS_ON.replace("true", "false"))]);
    assert_eq!(
        run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    sim.seed_identity_conflicts(
        Region::Us,
        PROJECT,
        vec![sinch_operator::sinch::settings::IdentityConflict {
            identity: "+46700000001".into(),
            channels: vec!["SMS".into(), "RCS".into()],
            contact_ids: vec!["c1".into(), "c2".into()],
        }],
    );
    std::fs::write(dir.path().join("settings.yaml"), SETTINGS_ON).unwrap();
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  error: ProjectSettings team/settings: contactSettings.unifiedContactIdEnabled: 1 identity conflict in project p-engine in region us block enabling unified contact id (first: +46700000001 on SMS, RCS, contacts c1, c2); resolve them, then plan again\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        sim.stats()
            .count("GET /{region}/v1/projects/{project_id}/contacts:identityConflicts"),
        1
    );
    assert_eq!(sim.stats().writes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn masked_secrets_are_not_compared_and_do_not_cause_updates() {
    let sim = start_with(sim::Config {
        mask_secrets: true,
        ..Default::default()
    })
    .await;
    let dir = write_dir(&[
        (
            "app.yaml",
            &format!(
                "{APP}{}",
                webhook("h0", "https://h0.example.com/").replace(
                    "  triggers: [MESSAGE_INBOUND]\n",
                    "  triggers: [MESSAGE_INBOUND]\n  secretRef: {name: shop-secrets, key: hook}\n"
                )
            ),
        ),
        ("secrets.yaml", SECRETS),
    ]);
    assert_eq!(
        run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"])
            .await
            .status
            .code(),
        Some(0)
    );
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "= ConversationApp team/shop is up to date\n    # 1 secret not compared: Sinch does not return it in clear\n\
         = Webhook team/h0 is up to date\n    # 1 secret not compared: Sinch does not return it in clear\n\
         No changes. Sinch matches the manifests (2 objects).\n"
    );
    assert_eq!(sim.stats().writes, 0);
}

/// `apply` on a terminal (a pseudo-terminal made by util-linux `script`): it asks, takes only
/// `yes`, colours the plan unless `NO_COLOR` is set.
async fn on_terminal(sim: &Sim, dir: &Path, answer: &str, env: &[(&str, &str)]) -> Output {
    let command = format!("{} apply -f {}", env!("CARGO_BIN_EXE_sinch-operator"), path(dir));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("SINCH_PROJECT_ID", PROJECT)
        .env("SINCH_KEY_ID", "key-id")
        .env("SINCH_KEY_SECRET", "x")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (k, v) in sim.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let answer = answer.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("util-linux `script` runs");
        child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_apply_asks_and_takes_only_yes() {
    let sim = start().await;
    let dir = write_dir(&[("settings.yaml", SETTINGS_ON)]);
    let out = on_terminal(&sim, dir.path(), "y\n", &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("\x1b[32m+ ProjectSettings team/settings"),
        "coloured: {text:?}"
    );
    assert!(
        text.contains("Apply these changes to Sinch? Only 'yes' is accepted: "),
        "{text:?}"
    );
    assert!(text.contains("Apply cancelled; nothing was sent."), "{text:?}");
    assert_eq!(sim.stats().writes, 0);

    let out = on_terminal(&sim, dir.path(), "yes\n", &[("NO_COLOR", "1")]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("+ ProjectSettings team/settings") && !text.contains("\x1b[32m"),
        "{text:?}"
    );
    assert!(
        text.contains("Apply complete: 1 created, 0 updated, 0 deleted, 0 failed."),
        "{text:?}"
    );
    assert_eq!(sim.stats().writes, 1);
}

fn old_template() -> sinch_operator::sinch::template::Template {
    serde_json::from_value(json!({
        "id": "old", "default_translation": "en", "translations": [{"language_code": "en", "version": "1", "text_message": {"text": "Hi"}}]
    }))
    .unwrap()
}

fn stray_app(name: &str) -> App {
    serde_json::from_value(json!({"display_name": name,
        "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "x", "token": "y"}}]}))
    .unwrap()
}

fn sent(sim: &Sim) -> Vec<String> {
    let journal = sim.journal();
    let mut sent: Vec<String> = writes(&journal)
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    sent.sort();
    sent
}

/// `--prune` deletes the undeclared objects of the kinds the input declares, in the scopes it
/// touches: an input of apps alone leaves templates and webhooks be.
#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_only_undeclared_objects_of_declared_kinds_in_the_scopes_the_input_touches() {
    let sim = start().await;
    let us = api(&sim, Region::Us);
    let stray_id = us.create_app(&stray_app("Stray")).await.unwrap().id.unwrap();
    let elsewhere = api(&sim, Region::Eu)
        .create_app(&stray_app("Stray"))
        .await
        .unwrap()
        .id
        .unwrap();
    us.create_template(&old_template()).await.unwrap();
    let dir = write_dir(&[("app.yaml", APP), ("secrets.yaml", SECRETS)]);
    // Without --prune nothing is deleted.
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        sim.stats()
            .count("DELETE /{region}/v1/projects/{project_id}/apps/{app_id}"),
        0
    );
    let shop = us
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.display_name.as_deref() == Some("Shop"))
        .unwrap()
        .id
        .unwrap();
    let hook: Webhook = serde_json::from_value(json!({
        "app_id": shop, "target": "https://by-hand.example.com/", "target_type": "HTTP", "triggers": ["MESSAGE_INBOUND"]
    }))
    .unwrap();
    us.create_webhook(&hook).await.unwrap();
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--prune"]).await;
    assert!(
        stdout(&out).contains(&format!("- ConversationApp Stray ({stray_id}) will be deleted in project {PROJECT}, region us\n    DELETE /v1/projects/{PROJECT}/apps/{stray_id}\n    # not declared by any manifest; deleted because of --prune\n")),
        "{}",
        stdout(&out)
    );
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve", "--prune"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Apps only: the template and the webhook made by hand stay.
    assert_eq!(
        sent(&sim),
        [format!("DELETE /us/v1/projects/{PROJECT}/apps/{stray_id}")]
    );
    assert_eq!(us.list_webhooks(&shop).await.unwrap().len(), 1);
    // The other region was not touched by the input: its app stays.
    assert_eq!(
        api(&sim, Region::Eu).list_apps().await.unwrap()[0].id.as_deref(),
        Some(elsewhere.as_str())
    );

    // Templates declared too: the undeclared one goes, the declared one is created.
    let dir = write_dir(&[
        ("app.yaml", APP),
        ("secrets.yaml", SECRETS),
        ("template.yaml", TEMPLATE),
    ]);
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve", "--prune"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        sent(&sim),
        [
            format!("DELETE /us/v2/projects/{PROJECT}/templates/old"),
            format!("POST /us/v2/projects/{PROJECT}/templates"),
        ]
    );
    assert_eq!(us.list_webhooks(&shop).await.unwrap().len(), 1);
}

/// What looks undeclared in a scope whose plan has an error may be what the input meant (here
/// the declared app's name matches two apps): `--prune` deletes nothing there, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_nothing_in_a_scope_whose_plan_has_errors() {
    let sim = start().await;
    let us = api(&sim, Region::Us);
    let a = us.create_app(&stray_app("Shop")).await.unwrap().id.unwrap();
    let b = us.create_app(&stray_app("Shop")).await.unwrap().id.unwrap();
    us.create_app(&stray_app("Stray")).await.unwrap();
    us.create_template(&old_template()).await.unwrap();
    let dir = write_dir(&[
        ("app.yaml", APP),
        ("secrets.yaml", SECRETS),
        ("template.yaml", TEMPLATE),
    ]);
    let plan = run(&sim, &["plan", "-f", path(dir.path()), "--prune"]).await;
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains(&format!("  error: ConversationApp team/shop: 2 apps are named \"Shop\" in this project and region ({a}, {b}): set spec.appId to the one to manage\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  error: --prune deletes nothing in project {PROJECT} in region us: its plan has errors\n"
        )),
        "{text}"
    );
    assert!(!text.contains("will be deleted"), "{text}");
    sim.reset_stats();
    let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve", "--prune"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // The independent template is still created; nothing is deleted.
    assert_eq!(sent(&sim), [format!("POST /us/v2/projects/{PROJECT}/templates")]);
    assert_eq!(us.list_apps().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_state_keeps_the_in_process_simulator_between_runs() {
    let sim = start().await; // unused by --sim runs: they must not need it
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let state = state.to_str().unwrap();
    let out = run(
        &sim,
        &[
            "apply",
            "--sim",
            "--sim-state",
            state,
            "-f",
            "examples/",
            "--auto-approve",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(
        &sim,
        &[
            "plan",
            "--sim",
            "--sim-state",
            state,
            "-f",
            "examples/",
            "--detailed-exitcode",
        ],
    )
    .await;
    // The state file holds no secret: the reloaded simulator answers them masked, so they are
    // not compared, and nothing else differs.
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!std::fs::read_to_string(state).unwrap().contains("replace-with"));
    assert_eq!(
        (
            stdout(&out).lines().filter(|l| l.starts_with('=')).count(),
            stdout(&out).lines().last()
        ),
        (6, Some("No changes. Sinch matches the manifests (10 objects)."))
    );
    assert_eq!(sim.stats().total, 0, "--sim never calls the configured endpoints");
}

/// SIGKILL in the middle of an apply, at several points: the next apply converges, and nothing
/// exists twice (rule 1: a created object is found by its natural key, never created again).
#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_mid_run_converges_on_rerun_without_duplicates() {
    let dir = write_dir(&[("fleet.yaml", &inventory(10, 3, 0)), ("secrets.yaml", SECRETS)]);
    for kill_after in [1, 7, 18, 33] {
        let sim = start_with(sim::Config {
            latency: std::time::Duration::from_millis(25),
            ..sim::Config::default()
        })
        .await;
        let mut child = command(
            &sim,
            &CONNECTION,
            &["apply", "-f", path(dir.path()), "--auto-approve", "--concurrency", "3"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let started = std::time::Instant::now();
        while sim.stats().writes < kill_after {
            assert!(
                started.elapsed().as_secs() < 30,
                "apply stalled before {kill_after} writes"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What exists once the requests cut off in flight have ended, carried out or not.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let us = api(&sim, Region::Us);
        let mut existing = 0;
        for app in us.list_apps().await.unwrap() {
            existing += 1 + us.list_webhooks(app.id.as_deref().unwrap()).await.unwrap().len() as u64;
        }
        assert!(existing < 40, "killed at {kill_after}: the run had already finished");
        sim.reset_stats();

        let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "killed at {kill_after}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let stats = sim.stats();
        let apps = us.list_apps().await.unwrap();
        let mut names: Vec<String> = apps.iter().filter_map(|a| a.display_name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!((apps.len(), names.len()), (10, 10), "killed at {kill_after}: {names:?}");
        for app in &apps {
            let hooks = us.list_webhooks(app.id.as_deref().unwrap()).await.unwrap();
            assert_eq!(hooks.len(), 3, "killed at {kill_after}: {:?}", app.display_name);
        }
        // The rerun created exactly what was missing, and changed nothing else.
        assert_eq!(stats.writes, 40 - existing, "killed at {kill_after}: {stats:?}");
        assert_eq!(
            stats.count("POST /{region}/v1/projects/{project_id}/apps")
                + stats.count("POST /{region}/v1/projects/{project_id}/webhooks"),
            40 - existing
        );
        let plan = run(&sim, &["plan", "-f", path(dir.path())]).await;
        assert_eq!(
            stdout(&plan),
            "No changes. Sinch matches the manifests (40 objects).\n",
            "killed at {kill_after}"
        );
    }
}

const TEMPLATE: &str = "---\napiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: hello, namespace: team}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - languageCode: en-US\n      version: \"1\"\n      textMessage: {text: Hello}\n";

/// `apps` apps named `shop-N` with `hooks` webhooks each, and `templates` templates `t-N`.
fn inventory(apps: usize, hooks: usize, templates: usize) -> String {
    let mut out = String::new();
    for i in 0..apps {
        out.push_str(
            &APP.replace("name: shop,", &format!("name: shop-{i},"))
                .replace("displayName: Shop", &format!("displayName: Shop {i}")),
        );
        for h in 0..hooks {
            out.push_str(
                &webhook(&format!("shop-{i}-h{h}"), &format!("https://h{h}.example.com/{i}"))
                    .replace("appRef: {name: shop}", &format!("appRef: {{name: shop-{i}}}")),
            );
        }
        out.push_str("\n---\n");
    }
    for t in 0..templates {
        out.push_str(
            &TEMPLATE
                .replace("name: hello,", &format!("name: t-{t},"))
                .replace("text: Hello", &format!("text: Hello {t}")),
        );
    }
    out
}

/// The retries `sinch-operator` noted on stderr (none noted: 0).
fn retries_noted(o: &Output) -> u64 {
    stderr(o)
        .lines()
        .filter_map(|l| l.strip_prefix("note: "))
        .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Apps (by display name) and their webhook targets, and template ids, as stored: read from the
/// simulator's store, not through the faulty API.
fn stored(sim: &Sim) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let store = sim.snapshot();
    let project = &store.regions[&Region::Us][PROJECT];
    let snapshot = serde_json::to_value(project).unwrap();
    let field = |o: &serde_json::Value, f: &str| o[f].as_str().unwrap_or_default().to_string();
    let mut apps: Vec<(String, Vec<String>)> = snapshot["apps"]
        .as_object()
        .unwrap()
        .values()
        .map(|app| {
            let id = field(app, "id");
            let mut targets: Vec<String> = snapshot["webhooks"]
                .as_object()
                .unwrap()
                .values()
                .filter(|w| field(w, "app_id") == id)
                .map(|w| field(w, "target"))
                .collect();
            targets.sort();
            (field(app, "display_name"), targets)
        })
        .collect();
    apps.sort();
    let mut templates: Vec<String> = snapshot["templates"].as_object().unwrap().keys().cloned().collect();
    templates.sort();
    (apps, templates)
}

/// The fault soak: 10% of requests answered 500 or 503, 3% delayed by 400 ms, 2% of connections
/// dropped (half of those after the write was carried out), 150 ms of 429s with `Retry-After`
/// every 1.5 s, tokens that live 2 s. Runs of `apply` until one exits 0; then nothing exists
/// twice, nothing declared is missing, and a fault-free `plan` of the stored state has no changes.
#[tokio::test(flavor = "multi_thread")]
async fn apply_under_faults_converges_without_duplicates_or_losses() {
    let (apps, hooks, templates) = (100, 5, 50);
    let dir = write_dir(&[
        ("fleet.yaml", &inventory(apps, hooks, templates)),
        ("secrets.yaml", SECRETS),
    ]);
    let state = dir.path().join("sim-state.json");
    let sim = start_with(sim::Config {
        latency: std::time::Duration::from_millis(2),
        failure_rate: 0.10,
        spike_rate: 0.03,
        spike_latency: std::time::Duration::from_millis(400),
        drop_rate: 0.02,
        throttle: Some(sim::Throttle {
            every: std::time::Duration::from_millis(1500),
            length: std::time::Duration::from_millis(150),
        }),
        token_lifetime: std::time::Duration::from_secs(2),
        state_file: Some(state.clone()),
        ..sim::Config::default()
    })
    .await;
    let mut codes = Vec::new();
    let mut retries = 0;
    while codes.last() != Some(&0) {
        assert!(codes.len() < 8, "no convergence after {} runs: {codes:?}", codes.len());
        let out = run(&sim, &["apply", "-f", path(dir.path()), "--auto-approve"]).await;
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1)), "{}{}", stdout(&out), stderr(&out));
        // Whatever failed was a fault's doing, reported with the object it hit.
        for line in stdout(&out).lines().filter(|l| l.starts_with("failed ")) {
            assert!(
                line.contains("500") || line.contains("503") || line.contains("429") || line.contains("connection"),
                "{line}"
            );
        }
        retries += retries_noted(&out);
        codes.push(code.unwrap());
    }
    let stats = sim.stats();
    eprintln!(
        "fault soak: {} runs (exit codes {codes:?}), {} requests, {} retried by the client, faults dealt {:?}",
        codes.len(),
        stats.total,
        retries,
        stats.faults
    );
    for kind in ["500", "503", "429", "dropped", "spike"] {
        assert!(
            stats.faults.get(kind).is_some_and(|n| *n > 0),
            "no {kind} dealt: {:?}",
            stats.faults
        );
    }
    assert!(retries > 0);

    let (stored_apps, stored_templates) = stored(&sim);
    let mut expected_apps: Vec<(String, Vec<String>)> = (0..apps)
        .map(|i| {
            let mut targets: Vec<String> = (0..hooks).map(|h| format!("https://h{h}.example.com/{i}")).collect();
            targets.sort();
            (format!("Shop {i}"), targets)
        })
        .collect();
    expected_apps.sort();
    assert_eq!(stored_apps, expected_apps, "an app or webhook is missing or twice");
    let mut expected_templates: Vec<String> = (0..templates).map(|t| format!("t-{t}")).collect();
    expected_templates.sort();
    assert_eq!(stored_templates, expected_templates);

    sim.stop().await;
    let clean = start_with(sim::Config {
        state_file: Some(state),
        ..sim::Config::default()
    })
    .await;
    // Reloaded from its state file, it answers the secrets masked: not compared, no change.
    let plan = run(&clean, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
    assert_eq!(
        (stdout(&plan).lines().last(), stderr(&plan).as_str(), plan.status.code()),
        (
            Some("No changes. Sinch matches the manifests (650 objects)."),
            "",
            Some(0)
        )
    );
}

/// Tokens that live 1 s and are revoked every 250 ms besides: each expiry is met by one renewal
/// and one retry of the refused request, and no object fails.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_expiring_mid_run_are_renewed_and_nothing_fails() {
    let dir = write_dir(&[("fleet.yaml", &inventory(10, 3, 4)), ("secrets.yaml", SECRETS)]);
    let sim = start_with(sim::Config {
        latency: std::time::Duration::from_millis(40),
        token_lifetime: std::time::Duration::from_secs(1),
        ..sim::Config::default()
    })
    .await;
    let child = command(
        &sim,
        &CONNECTION,
        &["apply", "-f", path(dir.path()), "--auto-approve", "--concurrency", "2"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    tokio::pin!(output);
    let out = loop {
        tokio::select! {
            out = &mut output => break out.unwrap(),
            () = tokio::time::sleep(std::time::Duration::from_millis(250)) => sim.expire_tokens(),
        }
    };
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("Apply complete: 44 created, 0 updated, 0 deleted, 0 failed.\n"),
        "{}",
        stdout(&out)
    );
    let stats = sim.stats();
    let tokens = stats.count("POST /oauth2/token");
    // Every retry was a refused token's; each renewal serves the requests in flight with it.
    let retries = retries_noted(&out);
    assert!(
        tokens > 3 && retries >= tokens - 1,
        "{tokens} tokens, {retries} retries: {}",
        stderr(&out)
    );
    let (apps, templates) = stored(&sim);
    assert_eq!(apps.len(), 10);
    assert!(apps.iter().all(|(_, targets)| targets.len() == 3), "{apps:?}");
    assert_eq!(templates.len(), 4);
}

#[tokio::test]
async fn plan_errors_carry_the_class_of_the_read_that_failed() {
    let sim = start().await;
    let us = api(&sim, Region::Us);
    let a = us.create_app(&stray_app("Shop")).await.unwrap().id.unwrap();
    let b = us.create_app(&stray_app("Shop")).await.unwrap().id.unwrap();
    let dir = write_dir(&[
        ("app.yaml", APP),
        ("secrets.yaml", SECRETS),
        ("template.yaml", TEMPLATE),
    ]);
    sim.inject(Fault {
        status: 403,
        times: 10,
        retry_after: None,
        after_write: false,
        matching: Some("GET /us/v2/projects/".into()),
        message: Some("The project is not accessible with this key".into()),
    });
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // An ambiguous identity needs a change of the input: no class. The refused read is
    // terminal (a 403), which the controller turns into ReadRefused at the poll interval.
    assert_eq!(
        plan["errors"],
        serde_json::json!([
            {
                "kind": "ConversationApp",
                "name": "team/shop",
                "message": format!("2 apps are named \"Shop\" in this project and region ({a}, {b}): set spec.appId to the one to manage"),
            },
            {
                "kind": "Template",
                "name": "team/hello",
                "message": format!("cannot read the templates of project {PROJECT} in region us: GET /v2/projects/{PROJECT}/templates: HTTP 403 PERMISSION_DENIED: The project is not accessible with this key (the access key has no access to project {PROJECT}, or the account's credit limit is reached)"),
                "class": "terminal",
            },
        ])
    );

    // The webhooks of an app whose list could not be read share its class.
    let dir = write_dir(&[
        ("app.yaml", APP),
        ("secrets.yaml", SECRETS),
        ("hooks.yaml", &webhook("orders", "https://hooks.example.com/orders")),
    ]);
    sim.inject(Fault {
        status: 503,
        times: 10,
        retry_after: None,
        after_write: false,
        matching: Some(format!("GET /us/v1/projects/{PROJECT}/apps")),
        message: None,
    });
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let classes: Vec<(&str, &str)> = plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["class"].as_str().unwrap_or("none")))
        .collect();
    assert_eq!(classes, [("team/shop", "retryable"), ("team/orders", "retryable")]);
    assert_eq!(
        plan["errors"][1]["message"],
        "not planned: ConversationApp team/shop has an error"
    );
}

/// The order of the credentials is the app's channel priority: swapping two channels in the
/// manifest plans one priority change and sends the whole list in the declared order; Sinch
/// keeps it, so the next plan has no changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_reorder_of_channels_is_one_patch_of_the_list_in_the_declared_order() {
    let sim = start().await;
    let two = APP.replace(
        "  channelCredentials:\n",
        "  channelCredentials:\n    - channel: WHATSAPP\n      staticBearer:\n        claimedIdentity: \"15550001111\"\n        tokenRef: {name: shop-secrets, key: whatsapp}\n",
    );
    let dir = write_dir(&[("app.yaml", &two), ("secrets.yaml", SECRETS)]);
    apply_ok(&sim, dir.path(), "WHATSAPP first").await;

    // SMS first now.
    let swapped = APP.replace(
        "        tokenRef: {name: shop-secrets, key: sms}\n",
        "        tokenRef: {name: shop-secrets, key: sms}\n    - channel: WHATSAPP\n      staticBearer:\n        claimedIdentity: \"15550001111\"\n        tokenRef: {name: shop-secrets, key: whatsapp}\n",
    );
    std::fs::write(dir.path().join("app.yaml"), swapped).unwrap();
    let out = run(&sim, &["plan", "-f", path(dir.path())]).await;
    assert!(
        stdout(&out).contains("  ~ channel_credentials (priority): [\"WHATSAPP\",\"SMS\"] -> [\"SMS\",\"WHATSAPP\"]\n"),
        "{}",
        stdout(&out)
    );
    sim.reset_stats();
    apply_ok(&sim, dir.path(), "SMS first").await;
    let patch = sim
        .journal()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("one PATCH");
    assert_eq!(patch.query.as_deref(), Some("update_mask=channel_credentials"));
    let channels: Vec<&str> = patch.body.as_ref().unwrap()["channel_credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["SMS", "WHATSAPP"]);
    assert_eq!(sim.stats().writes, 1);
    let out = run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// The undocumented answers the simulator can play, each with the default one.
fn every_variant() -> Vec<Vec<sim::Variant>> {
    use clap::ValueEnum;
    let mut all = vec![Vec::new()];
    all.extend(sim::Variant::value_variants().iter().map(|v| vec![*v]));
    all
}

/// A template changed in Sinch between the read and the PUT: whether Sinch answers the stale
/// version 409 `ABORTED` or 400 `FAILED_PRECONDITION`, the template is read again and replaced
/// once at its new version.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_template_put_is_read_again_whatever_status_refuses_it() {
    use sinch_operator::engine::{self, Defaults, execute, observe, plan};
    use sinch_operator::{load, validate};
    for variants in [vec![], vec![sim::Variant::StalePut400]] {
        let sim = start_with(sim::Config {
            variants: variants.clone(),
            ..sim::Config::default()
        })
        .await;
        let template = json!({"id": "hello", "default_translation": "en-US", "translations": [
            {"language_code": "en-US", "version": "1", "text_message": {"text": "Hello"}}]});
        let theirs = api(&sim, Region::Us);
        theirs
            .create_template(&serde_json::from_value(template.clone()).unwrap())
            .await
            .unwrap();
        let tpl = "apiVersion: conversation.sinch.com/v1alpha1\nkind: Template\nmetadata: {name: hello, namespace: team}\nspec:\n  defaultTranslation: en-US\n  translations:\n    - languageCode: en-US\n      version: \"1\"\n      textMessage: {text: Hello there}\n";
        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        load::parse_bytes("t.yaml", tpl.as_bytes(), &mut docs, &mut errors);
        let input = validate::validate(docs, errors).unwrap();
        let defaults = Defaults {
            project: Some(PROJECT.into()),
            region: Region::Us,
        };
        let targets = engine::targets(&input, &defaults).unwrap();
        let client = sim.client(RetryPolicy::default()).unwrap();
        let credentials = Credentials {
            key_id: "key-id".into(),
            key_secret: Sensitive(KEY_SECRET.into()),
        };
        let source = observe::Direct {
            client: &client,
            credentials: &credentials,
        };
        let live = observe::observe(&source, &targets, false).await;
        let planned = plan::build(&input, &targets, &live, &plan::Options::default());
        // Someone else's edit after the read: the plan's version is stale now.
        let mut edited = template.clone();
        edited["version"] = json!(1);
        edited["description"] = json!("edited in the dashboard");
        theirs
            .update_template("hello", &serde_json::from_value(edited).unwrap())
            .await
            .unwrap();
        sim.reset_stats();
        let outcomes = execute::execute(&planned, "", &client, &credentials, &input.secrets, &|_, _| {}).await;
        assert!(
            matches!(&outcomes[0].status, execute::Fate::Done { note: Some(n), .. } if n == "changed in Sinch meanwhile; replaced version 2"),
            "{variants:?}: {:?}",
            outcomes[0].status
        );
        let t = format!("/us/v2/projects/{PROJECT}/templates/hello");
        let calls: Vec<String> = sim
            .journal()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(
            calls,
            [format!("PUT {t}"), format!("GET {t}"), format!("PUT {t}")],
            "{variants:?}"
        );
        let stored = theirs.get_template("hello").await.unwrap();
        assert_eq!(stored.version, Some(3), "{variants:?}");
    }
}

/// A fresh project's settings: absent (404), or shown with defaults while a PATCH answers 404
/// until a POST. Either way apply creates them, and the next plan has nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn project_settings_are_created_whether_a_fresh_project_answers_404_or_defaults() {
    let settings = "apiVersion: conversation.sinch.com/v1alpha1\nkind: ProjectSettings\nmetadata: {name: project, namespace: team}\nspec:\n  contactSettings: {unifiedContactIdEnabled: true}\n";
    let s = format!("/us/v1/projects/{PROJECT}/settings");
    for (variants, expected) in [
        (vec![], vec![format!("POST {s}")]),
        (
            vec![sim::Variant::SettingsDefaults],
            vec![format!("PATCH {s}"), format!("POST {s}")],
        ),
    ] {
        let sim = start_with(sim::Config {
            variants: variants.clone(),
            ..sim::Config::default()
        })
        .await;
        let dir = write_dir(&[("settings.yaml", settings)]);
        apply_ok(&sim, dir.path(), &format!("{variants:?}")).await;
        let journal = sim.journal();
        let sent: Vec<String> = writes(&journal)
            .iter()
            .filter(|r| r.path.ends_with("/settings"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(sent, expected, "{variants:?}");
        let out = run(&sim, &["plan", "-f", path(dir.path()), "--detailed-exitcode"]).await;
        assert_eq!(out.status.code(), Some(0), "{variants:?}: {}", stdout(&out));
    }
}

/// Against every undocumented answer the simulator can play (masks of any shape, defaults
/// answered null, ...), an apply converges: the next apply sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn under_every_variant_a_second_apply_writes_nothing() {
    let app = APP.replace(
        "  retentionPolicy:\n",
        "  messageRetrySettings: {retryDuration: 3600}\n  deliveryReportBasedFallback: {enabled: false}\n  retentionPolicy:\n",
    );
    for variants in every_variant() {
        let sim = start_with(sim::Config {
            variants: variants.clone(),
            ..sim::Config::default()
        })
        .await;
        let dir = write_dir(&[("app.yaml", &app), ("secrets.yaml", SECRETS)]);
        apply_ok(&sim, dir.path(), &format!("{variants:?}")).await;
        sim.reset_stats();
        apply_ok(&sim, dir.path(), &format!("{variants:?}")).await;
        assert_eq!(sim.stats().writes, 0, "{variants:?}: {:?}", sim.journal());
    }
}
