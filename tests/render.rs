//! The three renderings of one plan, as a person and a machine read them. The plan is made by
//! the real engine against a simulator holding a project with some history (see `sample`).

mod common;

use serde_json::json;
use sinch_operator::engine::diff::FieldChange;
use sinch_operator::engine::plan::{self, Action, Change, Options, Plan};
use sinch_operator::engine::{self, Defaults, observe};
use sinch_operator::model::{Kind, Region};
use sinch_operator::render::{self, markdown};
use sinch_operator::sim;
use sinch_operator::sinch::Sensitive;
use sinch_operator::sinch::client::{Credentials, RetryPolicy};
use sinch_operator::sinch::request::Request;
use sinch_operator::{load, validate};

fn change(name: &str, action: Action, fields: Vec<FieldChange>, request: Option<Request>) -> Change {
    let scope = sinch_operator::engine::Scope {
        project: "p".into(),
        region: Region::Eu,
    };
    let id = (action != Action::Create).then(|| "01APP".to_string());
    let mut change = Change::new(
        Kind::ConversationApp,
        format!("team/{name}"),
        action,
        id,
        &scope,
        "absent".into(),
    );
    change.fields = fields;
    change.request = request;
    change
}

fn field(path: &str, before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> FieldChange {
    FieldChange {
        path: path.into(),
        before,
        after,
    }
}

fn plan(changes: Vec<Change>) -> Plan {
    Plan::of(changes)
}

/// A project with some history: an app whose processing mode and channels change, one that is
/// as declared, one no manifest declares, and a template whose text changed. The simulator masks
/// secrets, as Sinch does for some.
const LIVE_APPS: [(&str, &str); 3] = [
    (
        "Support",
        r#"{"display_name": "Support", "processing_mode": "DISPATCH", "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "sms-sender", "token": "old-token"}}]}"#,
    ),
    ("Same", r#"{"display_name": "Same", "channel_credentials": []}"#),
    ("Old App", r#"{"display_name": "Old App", "channel_credentials": []}"#),
];

const MANIFESTS: &str = r#"
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: new, namespace: team}
spec: {displayName: New}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: support, namespace: team}
spec:
  displayName: Support
  processingMode: CONVERSATION
  channelCredentials:
    - channel: SMS
      staticBearer: {claimedIdentity: sms-sender, tokenRef: {name: tokens, key: sms}}
    - channel: RCS
      staticBearer: {claimedIdentity: agent, tokenRef: {name: tokens, key: rcs}}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ConversationApp
metadata: {name: same, namespace: team}
spec: {displayName: Same}
---
apiVersion: conversation.sinch.com/v1alpha1
kind: Template
metadata: {name: greeting, namespace: team}
spec:
  defaultTranslation: en-US
  translations:
    - languageCode: en-US
      version: "1"
      textMessage: {text: "Hello,\nyour order is on its way.\nThanks"}
---
apiVersion: v1
kind: Secret
metadata: {name: tokens, namespace: team}
stringData: {sms: canary-sms-token-1, rcs: canary-rcs-token-2}
"#;

/// The plan `plan --prune` makes of [`MANIFESTS`] against [`LIVE_APPS`], by the real engine.
/// Sinch's ids are random: each is replaced by its app's name in capitals (`01SUPPORT`), so
/// that the snapshots hold from run to run.
fn sample() -> Plan {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = sim::Config {
            mask_secrets: true,
            ..sim::Config::default()
        };
        let sim = common::start(config).await;
        let client = sim.client(RetryPolicy::default()).unwrap();
        let credentials = Credentials {
            key_id: "key".into(),
            key_secret: Sensitive("key-secret".into()),
        };
        let project = client.project("p", Region::Eu, credentials.clone());
        let mut ids = Vec::new();
        for (name, app) in LIVE_APPS {
            let app = project.create_app(&serde_json::from_str(app).unwrap()).await.unwrap();
            ids.push((app.id.unwrap(), format!("01{}", name.replace(' ', "").to_uppercase())));
        }
        let template = json!({"id": "greeting", "default_translation": "en-US", "translations": [
            {"language_code": "en-US", "version": "1", "text_message": {"text": "Hello,\nyour order shipped.\nThanks"}}
        ]});
        project
            .create_template(&serde_json::from_value(template).unwrap())
            .await
            .unwrap();

        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        load::parse_bytes("team.yaml", MANIFESTS.as_bytes(), &mut docs, &mut errors);
        let input = validate::validate(docs, errors).unwrap();
        let defaults = Defaults {
            project: Some("p".into()),
            region: Region::Eu,
        };
        let targets = engine::targets(&input, &defaults).unwrap();
        let source = observe::Direct {
            client: &client,
            credentials: &credentials,
        };
        let live = observe::observe(&source, &targets, true).await;
        let options = Options {
            prune: true,
            salt: "render-tests".into(),
            ..Options::default()
        };
        let mut text = serde_json::to_string(&plan::build(&input, &targets, &live, &options)).unwrap();
        for (id, stable) in ids {
            text = text.replace(&id, &stable);
        }
        serde_json::from_str(&text).unwrap()
    })
}

#[test]
fn text() {
    insta::assert_snapshot!(render::text::render(&sample(), render::text::Paint(false)));
}

#[test]
fn text_in_colour_marks_each_line() {
    let text = render::text::render(&sample(), render::text::Paint(true));
    assert!(
        text.contains("\x1b[32m+ ConversationApp team/new will be created in project p, region eu\x1b[0m\n"),
        "{text}"
    );
    assert!(
        text.contains("\x1b[33m~ processing_mode: \"DISPATCH\" -> \"CONVERSATION\"\x1b[0m"),
        "{text}"
    );
    assert!(
        text.contains("\x1b[31m- ConversationApp Old App (01OLDAPP) will be deleted"),
        "{text}"
    );
}

#[test]
fn markdown() {
    insta::assert_snapshot!(markdown::render(&sample()));
}

#[test]
fn json_follows_the_contract() {
    let plan = sample();
    let text = render::json(&plan);
    assert!(!text.contains("canary-"), "no secret value: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format_version"], "1");
    assert_eq!(
        v["summary"],
        json!({"create": 1, "update": 2, "delete": 1, "unchanged": 1})
    );
    assert_eq!(v["errors"], json!([]));
    let c = &v["changes"][1];
    assert_eq!(
        (
            c["kind"].as_str(),
            c["name"].as_str(),
            c["action"].as_str(),
            c["id"].as_str()
        ),
        (
            Some("ConversationApp"),
            Some("team/support"),
            Some("update"),
            Some("01SUPPORT")
        )
    );
    assert_eq!(
        c["fields"][1],
        json!({"path": "processing_mode", "before": "DISPATCH", "after": "CONVERSATION"})
    );
    assert_eq!(c["request"]["method"], "PATCH");
    assert_eq!(c["request"]["path"], "/v1/projects/p/apps/01SUPPORT");
    assert_eq!(c["request"]["update_mask"], "channel_credentials,processing_mode");
    // Merge-all: the channel list is sent whole, its tokens as placeholders the Secret fills.
    assert_eq!(
        c["request"]["body"],
        json!({
            "channel_credentials": [
                {"channel": "SMS", "static_bearer": {"claimed_identity": "sms-sender", "token": "(sensitive)"}},
                {"channel": "RCS", "static_bearer": {"claimed_identity": "agent", "token": "(sensitive)"}},
            ],
            "processing_mode": "CONVERSATION",
        })
    );
    let slots: Vec<(&str, &str)> = c["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["pointer"].as_str().unwrap(), s["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        slots,
        [
            ("/channel_credentials/0/static_bearer/token", "sms"),
            ("/channel_credentials/1/static_bearer/token", "rcs")
        ]
    );
    // What would let a reader of CI logs test guesses of a secret offline stays out.
    for hidden in ["saved", "salt", "nonce", "fingerprint", "observed", "render-tests"] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
}

#[test]
fn a_plan_too_large_for_a_comment_is_cut_with_a_note() {
    let changes: Vec<Change> = (0..400)
        .map(|i| {
            change(
                &format!("app-{i}"),
                Action::Create,
                (0..5)
                    .map(|f| field(&format!("field_{f}"), None, Some(json!("x".repeat(40)))))
                    .collect(),
                None,
            )
        })
        .collect();
    let text = markdown::render(&plan(changes));
    assert!(text.len() < 65_536, "{}", text.len());
    let shown = text.matches("<details>").count();
    assert!(shown > 50 && shown < 400, "{shown}");
    assert!(text.contains(&format!("_{} more changed objects not shown: the plan is larger than a comment can hold. Run `sinch-operator plan` to see all of it._", 400 - shown)));
    assert!(text.ends_with("Plan: 400 to create, 0 to update, 0 to delete, 0 unchanged.\n"));
}

#[test]
fn a_value_with_backticks_cannot_close_the_fence() {
    let p = plan(vec![change(
        "x",
        Action::Create,
        vec![field("display_name", None, Some(json!("```\n</details>")))],
        None,
    )]);
    let text = markdown::render(&p);
    assert!(text.contains("````diff\n"), "{text}");
}

/// The drift report of a condition or an event: the text plan's lines for the fields, cut at a
/// whole line within the limit, with what was left out counted.
#[test]
fn a_drift_report_is_the_plan_lines_cut_to_the_limit() {
    let fields = (0..20)
        .map(|i| field(&format!("metadata_{i:02}"), Some(json!("before")), Some(json!("after"))))
        .collect();
    let c = change("shop/web", Action::Update, fields, None);
    let all = render::text::drift_report(&c, 10_000);
    assert_eq!(all.lines().count(), 20);
    assert_eq!(all.lines().next(), Some("~ metadata_00: \"before\" -> \"after\""));
    let cut = render::text::drift_report(&c, 120);
    assert!(cut.len() <= 120, "{} bytes: {cut}", cut.len());
    assert_eq!(
        cut,
        "~ metadata_00: \"before\" -> \"after\"\n~ metadata_01: \"before\" -> \"after\"\n... and 18 more line(s)"
    );
}
