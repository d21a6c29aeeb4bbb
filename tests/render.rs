//! The three renderings of one plan, as a person and a machine read them. The plan is made by
//! the real engine against an empty simulator, so ids and order are those a user would see.

use serde_json::json;
use sinch_operator::engine::diff::FieldChange;
use sinch_operator::engine::plan::{Action, Change, Plan};
use sinch_operator::model::{Kind, Region};
use sinch_operator::render::{self, markdown};
use sinch_operator::sinch::request::Request;

fn change(name: &str, action: Action, fields: Vec<FieldChange>, request: Option<Request>) -> Change {
    Change {
        kind: Kind::ConversationApp,
        name: format!("team/{name}"),
        action,
        id: (action != Action::Create).then(|| "01APP".to_string()),
        project: "p".into(),
        region: Region::Eu,
        fields,
        request,
        notes: Vec::new(),
        secrets: Vec::new(),
        after: Vec::new(),
        app_from: None,
        observed: "absent".into(),
    }
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

fn sample() -> Plan {
    let mut update = change(
        "support",
        Action::Update,
        vec![
            field("processing_mode", Some(json!("DISPATCH")), Some(json!("CONVERSATION"))),
            field(
                "channel_credentials[SMS].static_bearer.token",
                Some(json!("(sensitive)")),
                Some(json!("(sensitive)")),
            ),
            field(
                "channel_credentials[RCS]",
                None,
                Some(json!({"channel": "RCS", "static_bearer": {"claimed_identity": "agent", "token": "(sensitive)"}})),
            ),
        ],
        None,
    );
    update.request = Some(
        serde_json::from_value(json!({
            "api": "conversation", "method": "PATCH", "route": "/v1/projects/{project_id}/apps/{app_id}",
            "path": "/v1/projects/p/apps/01APP", "update_mask": "channel_credentials,processing_mode",
            "body": {"processing_mode": "CONVERSATION"}
        }))
        .unwrap(),
    );
    update.notes = vec!["1 secret not compared: Sinch does not return it in clear".into()];
    let mut template = change(
        "greeting",
        Action::Update,
        vec![field(
            "translations[en-US@1].text_message.text",
            Some(json!("Hello,\nyour order shipped.\nThanks")),
            Some(json!("Hello,\nyour order is on its way.\nThanks")),
        )],
        None,
    );
    template.kind = Kind::Template;
    let mut delete = change("Old App", Action::Delete, Vec::new(), None);
    delete.name = "Old App".into();
    delete.notes = vec!["not declared by any manifest; deleted because of --prune".into()];
    plan(vec![
        change(
            "new",
            Action::Create,
            vec![field("display_name", None, Some(json!("New")))],
            None,
        ),
        update,
        template,
        delete,
        change("same", Action::Noop, Vec::new(), None),
    ])
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
        text.contains("\x1b[31m- ConversationApp Old App (01APP) will be deleted"),
        "{text}"
    );
}

#[test]
fn markdown() {
    insta::assert_snapshot!(markdown::render(&sample()));
}

#[test]
fn json_follows_the_contract() {
    let v: serde_json::Value = serde_json::from_str(&render::json(&sample())).unwrap();
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
            Some("01APP")
        )
    );
    assert_eq!(
        c["fields"][0],
        json!({"path": "processing_mode", "before": "DISPATCH", "after": "CONVERSATION"})
    );
    assert_eq!(c["request"]["method"], "PATCH");
    assert_eq!(c["request"]["path"], "/v1/projects/p/apps/01APP");
    assert_eq!(c["request"]["update_mask"], "channel_credentials,processing_mode");
    assert_eq!(c["request"]["body"], json!({"processing_mode": "CONVERSATION"}));
    let back: Plan = serde_json::from_value(v).unwrap();
    assert_eq!(back, sample(), "a saved plan reads back as it was");
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
