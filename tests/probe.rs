//! `probe` run as a user runs it, against the simulator under each variant: the exact answers,
//! nothing left behind, no secret in any output, and a failure midway still cleaned up.

mod common;

use common::{Connection, start, text};
use sinch_operator::model::Region;
use sinch_operator::sim::{self, Fault, Sim, Variant};
use std::process::Output;

const PROJECT: &str = "p-probe";
/// The connection's key secret, a canary: it must never appear in any output.
const KEY_SECRET: &str = "canary-key-secret-probe-91c";

/// The binary with `args`, its connection pointed at `sim`.
async fn run(sim: &Sim, args: &[&str]) -> Output {
    let connection = Connection {
        project: PROJECT,
        key_id: "key-id",
        key_secret: KEY_SECRET,
    };
    common::run(sim, &connection, args, &[]).await
}

/// The next request matching `matching` answered `status` instead of carried out.
fn fail_next(sim: &Sim, status: u16, matching: String, message: Option<&str>) {
    sim.inject(Fault {
        status,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: Some(matching),
        message: message.map(String::from),
    });
}

/// The default answers, one line per question, in order.
const DEFAULT_ANSWERS: [&str; 7] = [
    "project settings: 404 when none (the simulator's default)",
    "stale template PUT: 409 ABORTED (the simulator's default)",
    "secrets on GET: in clear (the simulator's default)",
    "retry settings left unset: the defaults shown (the simulator's default)",
    "credential ordinal outside LINE: stored as 0 (the simulator's default)",
    "channel order: kept, a reorder is applied (the simulator's default)",
    "sixth webhook: 400 INVALID_ARGUMENT (the simulator's default)",
];

/// The default answers with line `i` replaced by `line`.
fn answers_with(i: usize, line: &str) -> String {
    let mut lines = DEFAULT_ANSWERS.map(String::from);
    lines[i] = line.to_string();
    lines.join("\n") + "\n"
}

/// Asserts that the simulator holds nothing the probe made, and that no output shows a secret
/// it sent.
fn assert_clean(sim: &Sim, out: &Output) {
    let project = &sim.snapshot().regions[&Region::Us][PROJECT];
    assert!(project.apps.is_empty(), "apps left: {:?}", project.apps.keys());
    assert!(
        project.webhooks.is_empty(),
        "webhooks left: {:?}",
        project.webhooks.keys()
    );
    assert!(
        project.templates.is_empty(),
        "templates left: {:?}",
        project.templates.keys()
    );
    assert_no_secret(sim, out);
}

fn assert_no_secret(sim: &Sim, out: &Output) {
    let mut secrets: Vec<String> = sim
        .journal()
        .iter()
        .filter_map(|r| r.body.as_ref()?.get("channel_credentials")?.as_array().cloned())
        .flatten()
        .filter_map(|c| Some(c.pointer("/static_bearer/token")?.as_str()?.to_string()))
        .collect();
    assert!(!secrets.is_empty(), "the probe sent a token");
    secrets.push(KEY_SECRET.into());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for secret in &secrets {
        assert!(secret.len() >= 16 && !secret.starts_with("fail-"));
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
}

/// Each variant changes the one answer it plays; everything is deleted afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_names_the_variant_the_simulator_plays() {
    let variant = |v| sim::Config {
        variants: vec![v],
        ..sim::Config::default()
    };
    let cases = [
        (sim::Config::default(), DEFAULT_ANSWERS.join("\n") + "\n"),
        (
            variant(Variant::SettingsDefaults),
            answers_with(
                0,
                "project settings: 200 with defaults, PATCH 404 until a POST (--variant settings-defaults)",
            ),
        ),
        (
            variant(Variant::StalePut400),
            answers_with(
                1,
                "stale template PUT: 400 FAILED_PRECONDITION (--variant stale-put-400)",
            ),
        ),
        (
            sim::Config {
                mask_secrets: true,
                ..sim::Config::default()
            },
            answers_with(2, "secrets on GET: all stars, 8 of them (--mask-secrets)"),
        ),
        (
            variant(Variant::PartialMask),
            answers_with(2, "secrets on GET: ****<4 visible> (--variant partial-mask)"),
        ),
        (
            variant(Variant::NullDefaults),
            answers_with(3, "retry settings left unset: null (--variant null-defaults)"),
        ),
    ];
    for (config, expected) in cases {
        let what = format!("{:?} mask {}", config.variants, config.mask_secrets);
        let sim = start(config).await;
        let out = run(&sim, &["probe"]).await;
        assert_eq!(text(&out.stdout), expected, "{what}: {}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{what}");
        assert_clean(&sim, &out);
        assert!(
            sim.snapshot().regions[&Region::Us][PROJECT].settings.is_none(),
            "{what}: settings made"
        );
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_holds_the_same_facts() {
    let sim = start(sim::Config::default()).await;
    let out = run(&sim, &["probe", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["answers"].as_array().unwrap().len(), 7);
    assert_eq!(
        report["answers"][1],
        serde_json::json!({"question": "stale template PUT", "answer": "409 ABORTED", "variant": "default"})
    );
    assert_eq!(report["left_over"], serde_json::json!([]));
    assert_clean(&sim, &out);
}

/// A check that fails midway is reported, the others still run, and cleanup still deletes
/// everything: exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_midway_is_reported_and_still_cleaned_up() {
    let sim = start(sim::Config::default()).await;
    let webhooks = format!("POST /us/v1/projects/{PROJECT}/webhooks");
    fail_next(&sim, 400, webhooks, Some("no webhooks today"));
    let out = run(&sim, &["probe"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..6], DEFAULT_ANSWERS[..6], "{stdout}");
    assert!(
        lines[6].starts_with("sixth webhook: could not run: webhook 1 of 5 could not be created: POST /v1/projects/p-probe/webhooks: HTTP 400"),
        "{stdout}"
    );
    assert!(lines[6].contains("no webhooks today"), "{stdout}");
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_clean(&sim, &out);
}

/// What could not be deleted is named with its id, for a person to delete: exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_be_deleted_is_named_with_its_id() {
    let sim = start(sim::Config::default()).await;
    fail_next(&sim, 403, format!("DELETE /us/v1/projects/{PROJECT}/apps/"), None);
    let out = run(&sim, &["probe"]).await;
    assert_eq!(out.status.code(), Some(1));
    let project = &sim.snapshot().regions[&Region::Us][PROJECT];
    let app = project.apps.keys().next().expect("the app is left");
    assert!(project.webhooks.is_empty() && project.templates.is_empty());
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().take(7).collect::<Vec<_>>(), DEFAULT_ANSWERS, "{stdout}");
    let last = stdout.lines().nth(7).unwrap();
    assert!(
        last.starts_with(&format!(
            "left over: app {app} could not be deleted (DELETE /v1/projects/{PROJECT}/apps/{app}: HTTP 403"
        )),
        "{stdout}"
    );
    assert!(last.ends_with("): delete it by hand"), "{stdout}");
    assert_no_secret(&sim, &out);
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_runs_with_sim() {
    let sim = start(sim::Config::default()).await;
    let out = run(&sim, &["probe", "--sim"]).await;
    assert_eq!(
        text(&out.stdout),
        DEFAULT_ANSWERS.join("\n") + "\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}
