//! Property tests of everything that reads input a person (or an attacker) wrote, of what Sinch
//! (or a proxy before it) answers, and of the renderers that print it back: no input and no
//! answer makes them panic, every error names where it is (a failed read carries its class),
//! and rendered text carries no raw control characters (a value must not repaint a terminal or
//! break out of a pull-request comment's code fence).
//!
//! `PROPTEST_CASES` raises the case count for a longer run.

mod common;

use common::examples;
use proptest::prelude::*;
use serde_json::Value;
use sinch_operator::engine::observe::{Live, ScopeLive};
use sinch_operator::engine::{self, Defaults, plan};
use sinch_operator::load::{self, Document};
use sinch_operator::model::Region;
use sinch_operator::render;

fn parse(label: &str, bytes: &[u8]) -> (Vec<Document>, Vec<sinch_operator::diagnostic::Diagnostic>) {
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    load::parse_bytes(label, bytes, &mut docs, &mut errors);
    (docs, errors)
}

/// Loads and validates; every error names the file it is in, except the one about the input as
/// a whole (bytes that hold no object of ours, an empty file say, belong to no object).
fn load_and_validate(bytes: &[u8]) {
    let (docs, errors) = parse("fuzz.yaml", bytes);
    if let Err(report) = sinch_operator::validate::validate(docs, errors) {
        let text = report.to_string();
        for line in text.lines().filter(|l| l.starts_with("error: ")) {
            assert!(
                line.starts_with("error: fuzz.yaml")
                    || line == "error: no conversation.sinch.com/v1alpha1 objects found in the input",
                "{line}"
            );
        }
    }
}

/// Characters that mean something to YAML, plus some that mean something to terminals.
fn edit_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            ':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '#', '%', '@', '`', ',', '?', '\n', '\t',
            ' ', '\u{0}', '\u{1b}', '\r', '\u{feff}', '\u{2028}', '\u{202e}', '\u{2066}',
        ]),
        any::<char>(),
    ]
}

/// An edit at a relative position: delete a few bytes, or insert a few characters.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0, 1..20usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (0.0..1.0, prop::collection::vec(edit_char(), 1..8))
            .prop_map(|(at, cs)| Edit::Insert(at, cs.into_iter().collect())),
    ]
}

fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for edit in edits {
        let at = |f: f64, text: &str| {
            let mut i = (f * text.len() as f64) as usize;
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match edit {
            Edit::Delete(f, n) => {
                let start = at(*f, &text);
                let mut end = (start + n).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(start..end, "");
            }
            Edit::Insert(f, s) => {
                let i = at(*f, &text);
                text.insert_str(i, s);
            }
        }
    }
    text
}

/// Fields whose values are free text (and Secret values): anything a person may type in them
/// must plan and render.
const FREE_TEXT: [&str; 7] = [
    "displayName",
    "text",
    "description",
    "claimedIdentity",
    "sms-token",
    "whatsapp-token",
    "callback-signing",
];

/// Every free-text leaf of `value`, in order, replaced from `strings` (cycled), each followed by
/// its number: never empty, never the same twice (what validation would refuse on its own).
fn replace_strings(value: &mut Value, key: &str, strings: &[String], next: &mut usize) {
    match value {
        Value::String(s) if FREE_TEXT.contains(&key) => {
            *s = format!("{}{next}", strings[*next % strings.len()]);
            *next += 1;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, key, strings, next)),
        // A Secret's `data` holds base64; its `stringData` the text.
        Value::Object(map) => map
            .iter_mut()
            .filter(|(k, _)| *k != "data")
            .for_each(|(k, v)| replace_strings(v, k, strings, next)),
        _ => {}
    }
}

/// Plans `docs` against an empty project and renders the plan every way; checks the output.
/// False when the input is refused before there is a plan.
fn plan_and_render(docs: Vec<Document>) -> bool {
    let Ok(input) = sinch_operator::validate::validate(docs, Vec::new()) else {
        return false;
    };
    let defaults = Defaults {
        project: Some("p".into()),
        region: Region::Us,
    };
    let Ok(targets) = engine::targets(&input, &defaults) else {
        return false;
    };
    let mut live = Live::default();
    for t in &targets {
        live.scopes.entry(t.scope.clone()).or_insert_with(|| ScopeLive {
            apps: Some(Ok(std::sync::Arc::new(Vec::new()))),
            templates: Some(Ok(std::sync::Arc::new(Vec::new()))),
            settings: Some(Ok(std::sync::Arc::new(None))),
            conflicts: Some(Ok(std::sync::Arc::new(Vec::new()))),
        });
    }
    let plan = plan::build(&input, &targets, &live, &plan::Options::default());
    let plain = render::text::render(&plan, render::text::Paint(false));
    let coloured = render::text::render(&plan, render::text::Paint(true));
    let markdown = render::markdown::render(&plan);
    let json = render::json(&plan);
    // What people read shows every control character and bidirectional mark as an escape; JSON
    // (for programs) escapes what JSON requires, the characters below U+0020.
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    for (name, text, for_people) in [
        ("text", &plain, true),
        ("markdown", &markdown, true),
        ("json", &json, false),
    ] {
        let hidden = |c: char| match for_people {
            true => c.is_control() || bidi(c),
            false => c < '\u{20}',
        };
        if let Some(line) = text.lines().find(|l| l.chars().any(hidden)) {
            panic!("a control character in the {name} rendering: {line:?}");
        }
    }
    // The colour codes are the only escapes, and only in the coloured rendering.
    assert_eq!(
        coloured
            .replace("\u{1b}[", "")
            .chars()
            .filter(|c| *c == '\u{1b}')
            .count(),
        0
    );
    serde_json::from_str::<serde_json::Value>(&json).expect("the JSON rendering is JSON");
    let saved: plan::Plan = serde_json::from_str(&render::saved(&plan)).expect("a saved plan reads back");
    assert_eq!(saved, plan);
    true
}

proptest! {
    // 256 cases, or PROPTEST_CASES (CI runs more).
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(256), ..ProptestConfig::default() })]

    #[test]
    fn the_loader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        load_and_validate(&bytes);
    }

    #[test]
    fn the_loader_survives_edited_manifests(edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply_edits(&examples(), &edits);
        load_and_validate(text.as_bytes());
    }

    #[test]
    fn renderers_survive_hostile_values(strings in prop::collection::vec(
        prop_oneof![
            any::<String>(),
            "[a-z]{1,10}",
            "https://[a-z]{1,8}\\.example\\.com/[ -~]{0,20}",
            prop::collection::vec(edit_char(), 0..40).prop_map(|cs| cs.into_iter().collect::<String>()),
        ],
        1..12,
    )) {
        // `${name}` in a template's text names a variable the translation must declare: the one
        // form of free text that is not free (tests/validate.rs checks its refusal).
        prop_assume!(!strings.iter().any(|s| s.contains("${")));
        let (mut docs, errors) = parse("fuzz.yaml", examples().as_bytes());
        prop_assert!(errors.is_empty());
        let mut next = 0;
        for doc in &mut docs {
            replace_strings(&mut doc.value, "", &strings, &mut next);
        }
        // Free text is free: every case is planned and rendered, none refused before.
        prop_assert!(plan_and_render(docs));
    }
}

/// The unmodified examples plan and render cleanly: the property above is not vacuous.
#[test]
fn the_examples_plan_and_render() {
    let (docs, errors) = parse("examples.yaml", examples().as_bytes());
    assert!(errors.is_empty());
    let n = docs.len();
    assert!(n >= 10, "{n}");
    assert!(plan_and_render(docs));
}

/// One upstream for every case of the property below: it answers any request with the status
/// and body of the current case, as a hostile Sinch (or a proxy before it) might.
struct Upstream {
    runtime: tokio::runtime::Runtime,
    url: String,
    answer: std::sync::Arc<std::sync::Mutex<(u16, Vec<u8>)>>,
}

fn upstream() -> &'static Upstream {
    static UPSTREAM: std::sync::OnceLock<Upstream> = std::sync::OnceLock::new();
    UPSTREAM.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let answer = std::sync::Arc::new(std::sync::Mutex::new((200, Vec::new())));
        let served = answer.clone();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(move || {
            let (status, body) = served.lock().unwrap().clone();
            async move {
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                (status, [("content-type", "application/json")], body)
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Upstream { runtime, url, answer }
    })
}

/// JSON of any shape, with the API's own field names, huge numbers and wrong types.
fn any_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "apps",
        "id",
        "display_name",
        "channel_credentials",
        "channel",
        "state",
        "status",
        "templates",
        "translations",
        "version",
        "language_code",
        "webhooks",
        "target",
        "triggers",
        "settings",
        "contact_settings",
        "conflicts",
        "next_page_token",
        "identity",
        "error",
        "message",
        "code",
        "text_message",
        "text",
        "credential_ordinal_number",
        "static_bearer",
        "token",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(Value::from("..")),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((names.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A body: JSON of any shape, or nested far past any parser's limit, or not JSON at all.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => (1usize..20_000).prop_map(|n| format!(r#"{{"apps":{}{}}}"#, "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(256), ..ProptestConfig::default() })]

    /// Whatever Sinch (or a proxy) answers, through the client, observe and plan: no panic; a
    /// failed read is an error of the objects that needed it, with its class (rule 8), and the
    /// plan renders.
    #[test]
    fn any_answer_from_sinch_is_a_plan_or_a_classified_error(
        status in prop::sample::select(vec![200u16, 200, 200, 400, 404, 409, 429, 500, 503]),
        body in any_body(),
    ) {
        use sinch_operator::sinch::client::{AuthMode, Client, Config, Credentials, RetryPolicy};
        let up = upstream();
        *up.answer.lock().unwrap() = (status, body);
        let (docs, errors) = parse("examples.yaml", examples().as_bytes());
        prop_assert!(errors.is_empty());
        let input = sinch_operator::validate::validate(docs, Vec::new()).unwrap();
        let url = up.url.clone();
        let endpoints = sinch_operator::sinch::endpoints::Endpoints::from_lookup(|k| match k {
            "SINCH_CONVERSATION_URL" | "SINCH_TEMPLATE_URL" => Some(format!("{url}/{{region}}")),
            _ => None,
        })
        .unwrap();
        let client = Client::new(Config {
            endpoints,
            auth: AuthMode::Basic,
            retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
            ..Config::default()
        })
        .unwrap();
        let credentials = Credentials { key_id: "k".into(), key_secret: sinch_operator::sinch::Sensitive("s".into()) };
        let defaults = Defaults { project: Some("p".into()), region: Region::Us };
        let targets = engine::targets(&input, &defaults).unwrap();
        let plan = up.runtime.block_on(async {
            let source = engine::observe::Direct { client: &client, credentials: &credentials };
            let live = engine::observe::observe(&source, &targets, true).await;
            plan::build(&input, &targets, &live, &plan::Options::default())
        });
        if status != 200 {
            prop_assert!(!plan.errors.is_empty());
            prop_assert!(plan.errors.iter().all(|e| e.class.is_some()), "{:?}", plan.errors);
        }
        render::text::render(&plan, render::text::Paint(false));
        render::json(&plan);
    }
}
