//! The simulator's own flags, over HTTP and as the `sim` subcommand.

mod common;

use common::start;
use serde_json::{Value, json};
use sinch_operator::sim::{self, Sim};
use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::process::Stdio;

/// `POST` an app to project `p` in `us`, with a key.
async fn create_app(http: &reqwest::Client, sim: &Sim, app: &Value) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}/us/v1/projects/p/apps", sim.url()))
        .basic_auth("k", Some("s"))
        .json(app)
        .send()
        .await
}

async fn list_apps(http: &reqwest::Client, sim: &Sim) -> reqwest::Response {
    http.get(format!("{}/us/v1/projects/p/apps", sim.url()))
        .basic_auth("k", Some("s"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let sim = start(sim::Config {
        rate_limit: NonZeroU32::new(3),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = list_apps(&http, &sim).await;
        if r.status() == 429 {
            retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    // A burst of three, then refused (six requests take far less than the second a slot needs).
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Another project has its own budget.
    let other = http
        .get(format!("{}/us/v1/projects/q/apps", sim.url()))
        .basic_auth("k", Some("s"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn the_failure_rate_fails_that_share_of_requests_without_carrying_them_out() {
    let sim = start(sim::Config {
        failure_rate: 1.0,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let status = create_app(&http, &sim, &json!({"display_name": "A", "channel_credentials": []}))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(status == 500 || status == 503, "{status}");
    }
    assert!(sim.snapshot().regions.is_empty(), "nothing was stored");
    let sim = start(sim::Config::default()).await;
    assert_eq!(list_apps(&http, &sim).await.status(), 200);
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let sim = start(sim::Config {
        keys: vec![("k".into(), "s".into())],
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/us/v1/projects/p/apps", sim.url());
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let unknown = http.get(&url).bearer_auth("made-up").send().await.unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    let wrong = http.get(&url).basic_auth("k", Some("wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let token = token(&http, &sim, "k", "s").await;
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(sim.issued_tokens(), [token["access_token"].as_str().unwrap()]);
    let ok = http
        .get(&url)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    sim.expire_tokens();
    let expired = http
        .get(&url)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert!(
        expired.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );
    // An unknown region is an unknown host: 404.
    let nowhere = http
        .get(format!("{}/xx/v1/projects/p/apps", sim.url()))
        .basic_auth("k", Some("s"))
        .send()
        .await;
    assert_eq!(nowhere.unwrap().status(), 404);
}

/// Runs `sinch-operator sim --listen 127.0.0.1:0 FLAGS`, gives `check` its URL, then stops it.
fn with_sim_command<T, F: std::future::Future<Output = T>>(flags: &[&str], check: impl FnOnce(String) -> F) -> T {
    let mut child = common::binary(&["sim", "--listen", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("sinch-operator sim listening on ")
        .expect(&line)
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = runtime.block_on(check(url));
    child.kill().unwrap();
    child.wait().unwrap();
    out
}

#[test]
fn the_sim_command_serves_until_stopped_and_checks_its_flags() {
    let stats: Value = with_sim_command(&["--latency", "1"], |url| async move {
        reqwest::get(format!("{url}/_sim/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(stats["total"], 0);

    let out = common::binary(&["sim", "--failure-rate", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: invalid value '2' for '--failure-rate <RATE>': \"2\" is not a number from 0 to 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn dropped_connections_end_without_an_answer_half_of_them_after_the_write() {
    let sim = start(sim::Config {
        drop_rate: 1.0,
        basic_rate_limit: None,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    for i in 0..24 {
        let sent = create_app(
            &http,
            &sim,
            &json!({"display_name": format!("A{i}"), "channel_credentials": []}),
        )
        .await;
        let error = sent.expect_err("no answer");
        assert!(!error.is_connect() && !error.is_timeout(), "{error:?}");
    }
    let stored = sim
        .snapshot()
        .regions
        .values()
        .flat_map(|r| r.values())
        .map(|p| p.apps.len())
        .sum::<usize>();
    // Each way has a chance of 2^-24 of getting none of the 24.
    assert!((1..24).contains(&stored), "{stored} of 24 carried out");
    assert_eq!(sim.stats().faults.get("dropped"), Some(&24));
}

#[tokio::test]
async fn latency_spikes_delay_that_share_of_requests() {
    let sim = start(sim::Config {
        spike_rate: 1.0,
        spike_latency: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    assert_eq!(list_apps(&http, &sim).await.status(), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(sim.stats().faults.get("spike"), Some(&1));
}

/// `GET /_sim/requests` leaves the process: every secret field of a recorded body is shown as
/// the product shows secrets, at any depth, while tests in the process still see what was sent.
#[tokio::test]
async fn the_journal_served_over_http_never_shows_a_secret() {
    let sim = start(sim::Config::default()).await;
    let http = reqwest::Client::new();
    let app = json!({
        "display_name": "Shop",
        "channel_credentials": [
            {"channel": "SMS", "static_bearer": {"claimed_identity": "1", "token": "canary-token-41a7"}, "callback_secret": ""},
            {"channel": "MMS", "mms_credentials": {"account_id": "a", "api_key": "canary-key-8c02",
             "basic_auth": {"username": "u", "password": "canary-password-77e1"}}}
        ],
        "callback_settings": {"secret_for_overridden_callback_urls": "canary-callback-5d93"}
    });
    assert_eq!(create_app(&http, &sim, &app).await.unwrap().status(), 200);
    let served = http
        .get(format!("{}/_sim/requests", sim.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!served.contains("canary"), "{served}");
    let journal: Value = serde_json::from_str(&served).unwrap();
    let mut redacted = app.clone();
    for secret in [
        "/channel_credentials/0/static_bearer/token",
        "/channel_credentials/1/mms_credentials/api_key",
        "/channel_credentials/1/mms_credentials/basic_auth/password",
        "/callback_settings/secret_for_overridden_callback_urls",
    ] {
        *redacted.pointer_mut(secret).unwrap() = json!("(sensitive)");
    }
    assert_eq!(journal[0]["body"], redacted);
    assert_eq!(sim.journal()[0].body.as_ref(), Some(&app));
}

/// The state holds every secret sent: mode 0600, even over a file that was readable by all.
#[cfg(unix)]
#[tokio::test]
async fn the_state_file_is_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    for file in [&state, &state.with_extension("tmp")] {
        std::fs::write(file, "{}").unwrap();
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let sim = start(sim::Config {
        state_file: Some(state.clone()),
        ..Default::default()
    })
    .await;
    let app = json!({"display_name": "A", "channel_credentials": []});
    let created = create_app(&reqwest::Client::new(), &sim, &app).await.unwrap();
    assert_eq!(created.status(), 200);
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("\"display_name\": \"A\"")
    );
}

/// `--echo-headers-rate`: a buggy proxy's 502 quoting the request's headers, the bearer token
/// first, without carrying the request out.
#[tokio::test]
async fn the_echo_headers_rate_answers_502_quoting_the_authorization_header() {
    let sim = start(sim::Config {
        echo_headers_rate: 1.0,
        ..Default::default()
    })
    .await;
    let answer = reqwest::Client::new()
        .post(format!("{}/us/v1/projects/p/apps", sim.url()))
        .bearer_auth("canary-bearer-0b5e")
        .json(&json!({"display_name": "A", "channel_credentials": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert_eq!(answer.headers()["content-type"], "text/plain");
    let body = answer.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "502 Bad Gateway: the upstream did not answer the request",
            "Authorization: Bearer canary-bearer-0b5e"
        ]
    );
    assert!(lines.contains(&format!("Host: {}", sim.addr()).as_str()), "{body}");
    assert!(lines.contains(&"Content-Type: application/json"), "{body}");
    assert!(sim.snapshot().regions.is_empty(), "nothing was stored");
    assert_eq!(sim.stats().faults.get("502"), Some(&1));
}

/// Beyond loopback and without --key, anyone who reaches the simulator may use it: `sim` says
/// so on stderr, and only then.
#[test]
fn listening_beyond_loopback_without_a_key_warns_on_stderr() {
    let warning = "warning: listening on 0.0.0.0:0, beyond this machine, and accepting any access key: whoever reaches it can read and change what it holds; give --key KEY_ID:KEY_SECRET, or listen on 127.0.0.1\n";
    let cases: [(&[&str], &str); 3] = [
        (&["--listen", "0.0.0.0:0", "--echo-headers-rate", "0.5"], warning),
        (&["--listen", "0.0.0.0:0", "--key", "k:s"], ""),
        (&["--listen", "127.0.0.1:0"], ""),
    ];
    for (args, expected) in cases {
        let mut child = common::binary(&["sim"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("sinch-operator sim listening on http://"), "{line}");
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stderr).unwrap(), expected, "{args:?}");
    }
    let out = common::binary(&["sim", "--echo-headers-rate", "1.5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: invalid value '1.5' for '--echo-headers-rate <RATE>': \"1.5\" is not a number from 0 to 1"
        ),
        "{stderr}"
    );
}

/// The token endpoint's answer to key `id:secret`.
async fn token(http: &reqwest::Client, sim: &Sim, id: &str, secret: &str) -> Value {
    http.post(format!("{}/oauth2/token", sim.url()))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn access_token(http: &reqwest::Client, sim: &Sim, id: &str, secret: &str) -> String {
    token(http, sim, id, secret).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_credential_marked_to_fail_reads_back_failing_until_it_changes() {
    let sim = start(sim::Config::default()).await;
    let http = reqwest::Client::new();
    let entry = |token: &str| json!({"channel": "SMS", "static_bearer": {"claimed_identity": "plan", "token": token}});
    let app = json!({"display_name": "A", "channel_credentials": [
        entry(&format!("{}wrong-token", sim::store::FAILING_PREFIX)),
        {"channel": "TELEGRAM", "telegram_credentials": {"token": "good"}},
    ]});
    let created: Value = create_app(&http, &sim, &app).await.unwrap().json().await.unwrap();
    assert_eq!(created["channel_credentials"][0]["state"]["status"], "PENDING");
    let states = |apps: Value| -> Vec<Value> {
        apps["apps"][0]["channel_credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["state"].clone())
            .collect()
    };
    let failing = json!({"status": "FAILING", "description": "the channel refused the credential (a value starts with \"fail-\")"});
    let active = json!({"status": "ACTIVE", "description": ""});
    for _ in 0..2 {
        let apps: Value = list_apps(&http, &sim).await.json().await.unwrap();
        assert_eq!(states(apps), [failing.clone(), active.clone()]);
    }
    // A corrected credential is PENDING, then ACTIVE.
    let id = created["id"].as_str().unwrap();
    let fixed = json!({"channel_credentials": [entry("right-token"), app["channel_credentials"][1]]});
    let patched: Value = http
        .patch(format!(
            "{}/us/v1/projects/p/apps/{id}?update_mask=channel_credentials",
            sim.url()
        ))
        .basic_auth("k", Some("s"))
        .json(&fixed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["channel_credentials"][0]["state"]["status"], "PENDING");
    let apps: Value = list_apps(&http, &sim).await.json().await.unwrap();
    assert_eq!(states(apps), [active.clone(), active]);
}

#[tokio::test]
async fn a_key_bound_to_projects_is_answered_403_for_another() {
    let sim = start(sim::Config {
        keys: vec![("bound".into(), "s".into()), ("free".into(), "s".into())],
        key_projects: [("bound".to_string(), vec!["p".to_string(), "q".to_string()])].into(),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let bound = access_token(&http, &sim, "bound", "s").await;
    let free = access_token(&http, &sim, "free", "s").await;
    let get = |project: &str, token: &str| {
        http.get(format!("{}/us/v1/projects/{project}/apps", sim.url()))
            .bearer_auth(token)
            .send()
    };
    for project in ["p", "q"] {
        assert_eq!(get(project, &bound).await.unwrap().status(), 200);
    }
    let refused = get("other", &bound).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"code": 403, "status": "PERMISSION_DENIED", "details": [],
               "message": "the provided client_id and client_secret are not associated with the project_id"})
    );
    // With Basic too; and a key bound to nothing may use any project.
    let basic = http
        .get(format!("{}/us/v1/projects/other/apps", sim.url()))
        .basic_auth("bound", Some("s"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 403);
    assert_eq!(get("other", &free).await.unwrap().status(), 200);
}

#[tokio::test]
async fn basic_auth_has_a_lower_rate_limit_than_tokens() {
    assert_eq!(
        sim::Config::default().basic_rate_limit,
        NonZeroU32::new(sim::BASIC_RATE_LIMIT)
    );
    let sim = start(sim::Config {
        basic_rate_limit: NonZeroU32::new(3),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(list_apps(&http, &sim).await.status().as_u16());
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // Tokens of the same project are held only to the project's limit.
    let token = access_token(&http, &sim, "k", "s").await;
    for _ in 0..10 {
        let r = http
            .get(format!("{}/us/v1/projects/p/apps", sim.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[test]
fn the_sim_command_binds_keys_to_projects_and_limits_basic_auth() {
    let flags = ["--basic-rate-limit", "1", "--key", "a:s@p,q", "--key", "b:s"];
    let statuses = with_sim_command(&flags, |url| async move {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for (key, project) in [("a", "q"), ("a", "r"), ("b", "s"), ("b", "s")] {
            let r = http
                .get(format!("{url}/us/v1/projects/{project}/apps"))
                .basic_auth(key, Some("s"))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    // q is a's, r is not; b may use s, once a second with Basic.
    assert_eq!(statuses, [200, 403, 200, 429]);

    let out = common::binary(&["sim", "--key", "a:s@"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("expected KEY_ID:KEY_SECRET, or KEY_ID:KEY_SECRET@PROJECT[,PROJECT...]"),
        "{stderr}"
    );
}

/// `--ignore-updates-of FIELD`: a PATCH writing that app field is accepted (200) and the app
/// keeps its own value, the answer and every later read showing it; the other fields of the
/// same PATCH are written, and a create still stores the field.
#[tokio::test]
async fn an_ignored_field_is_accepted_in_a_patch_and_not_kept() {
    let sim = start(sim::Config {
        ignore_updates_of: vec!["processing_mode".into()],
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let created: Value = create_app(&http, &sim, &json!({"display_name": "A", "channel_credentials": []}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["processing_mode"], "DISPATCH", "the server's default");
    let url = format!("{}/us/v1/projects/p/apps/{id}", sim.url());
    for query in ["?update_mask=processing_mode,display_name", ""] {
        let answer = http
            .patch(format!("{url}{query}"))
            .basic_auth("k", Some("s"))
            .json(&json!({"processing_mode": "CONVERSATION", "display_name": format!("B{query}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{query}");
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["processing_mode"], "DISPATCH", "{query}");
        assert_eq!(answer["display_name"], format!("B{query}"));
        let read: Value = http
            .get(&url)
            .basic_auth("k", Some("s"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (&read["processing_mode"], &read["display_name"]),
            (&json!("DISPATCH"), &json!(format!("B{query}")))
        );
    }
    // A stored value is kept as well; a create writes the field.
    let created: Value = create_app(
        &http,
        &sim,
        &json!({"display_name": "C", "processing_mode": "CONVERSATION", "channel_credentials": []}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(created["processing_mode"], "CONVERSATION");
    let answer: Value = http
        .patch(format!(
            "{}/us/v1/projects/p/apps/{}?update_mask=processing_mode",
            sim.url(),
            created["id"].as_str().unwrap()
        ))
        .basic_auth("k", Some("s"))
        .json(&json!({"processing_mode": "DISPATCH"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["processing_mode"], "CONVERSATION");

    // The flag names only writable app fields.
    let out = common::binary(&["sim", "--ignore-updates-of", "rate_limits"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: invalid value 'rate_limits' for '--ignore-updates-of <FIELD>': \"rate_limits\" is not a writable app field: one of display_name, "
        ),
        "{stderr}"
    );
}
