//! The simulator refuses what the API refuses (shared/reference/sinch-api-facts.md): one test
//! per rule, over HTTP, each checking the exact status and that nothing was stored.

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use sinch_operator::sim::store::{Project, Store};
use sinch_operator::sim::{self, Sim};
use std::num::NonZeroU32;

const APPS: &str = "/us/v1/projects/p/apps";
const WEBHOOKS: &str = "/us/v1/projects/p/webhooks";
const SETTINGS: &str = "/us/v1/projects/p/settings";
const TEMPLATES: &str = "/us/v2/projects/p/templates";

/// A simulator holding one app (`app`) in project `p` in `us`.
struct Api {
    sim: Sim,
    http: reqwest::Client,
    app: String,
}

impl Api {
    async fn new() -> Api {
        // Basic auth keeps these tests short; its own rate limit is tested in sim.rs.
        let config = sim::Config {
            basic_rate_limit: None,
            ..sim::Config::default()
        };
        let sim = common::start(config).await;
        let mut api = Api {
            sim,
            http: reqwest::Client::new(),
            app: String::new(),
        };
        api.app = api.ok(Method::POST, APPS, app("Base")).await["id"]
            .as_str()
            .unwrap()
            .into();
        api
    }

    async fn raw(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.url()))
            .basic_auth("k", Some("s"));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let body = (method != Method::GET && method != Method::DELETE).then(|| body.to_string().into_bytes());
        self.raw(method, path, body).await
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    /// What is stored, without the empty projects a request to a new one leaves.
    fn stored(&self) -> Store {
        let mut store = self.sim.snapshot();
        for projects in store.regions.values_mut() {
            projects.retain(|_, p| *p != Project::default());
        }
        store.regions.retain(|_, projects| !projects.is_empty());
        store
    }

    /// Answered `status` in the API's error shape, with nothing stored; the error object.
    async fn refused(&self, method: Method, path: &str, body: Value, status: u16) -> Value {
        let before = self.stored();
        let (got, answer) = self.call(method.clone(), path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        assert_eq!(self.stored(), before, "{method} {path} {body} stored something");
        let error = answer["error"].clone();
        assert_eq!(error["code"], status, "{answer}");
        error
    }

    /// A 400 INVALID_ARGUMENT naming exactly these fields.
    async fn invalid(&self, method: Method, path: &str, body: Value, fields: &[&str]) -> Value {
        let error = self.refused(method, path, body.clone(), 400).await;
        assert_eq!(error["status"], "INVALID_ARGUMENT", "{error}");
        assert_eq!(violations(&error), fields, "{body}: {error}");
        error
    }

    async fn create_app(&self, body: Value, fields: &[&str]) {
        self.invalid(Method::POST, APPS, body, fields).await;
    }

    async fn patch_app(&self, mask: &str, body: Value, fields: &[&str]) {
        let path = format!("{APPS}/{}?update_mask={mask}", self.app);
        self.invalid(Method::PATCH, &path, body, fields).await;
    }

    async fn create_webhook(&self, body: Value, fields: &[&str]) {
        self.invalid(Method::POST, WEBHOOKS, body, fields).await;
    }

    async fn webhook(&self, target: &str) -> String {
        let w = self.ok(Method::POST, WEBHOOKS, webhook(&self.app, target)).await;
        w["id"].as_str().unwrap().into()
    }

    async fn create_template(&self, body: Value, fields: &[&str]) {
        self.invalid(Method::POST, TEMPLATES, body, fields).await;
    }
}

fn violations(error: &Value) -> Vec<String> {
    let details = error["details"].as_array().cloned().unwrap_or_default();
    details
        .iter()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .flat_map(|d| d["field_violations"].as_array().cloned().unwrap_or_default())
        .map(|v| v["field"].as_str().unwrap().to_string())
        .collect()
}

fn sms() -> Value {
    json!({"channel": "SMS", "static_bearer": {"claimed_identity": "plan", "token": "t"}})
}

fn app(name: &str) -> Value {
    json!({"display_name": name, "channel_credentials": [sms()]})
}

/// An app whose one channel entry is `entry`.
fn with_entry(entry: Value) -> Value {
    json!({"display_name": "A", "channel_credentials": [entry]})
}

/// `app("A")` with `field` set to `value`.
fn app_with(field: &str, value: Value) -> Value {
    let mut a = app("A");
    a[field] = value;
    a
}

fn webhook(app: &str, target: &str) -> Value {
    json!({"app_id": app, "target": target, "target_type": "HTTP", "triggers": ["MESSAGE_INBOUND"]})
}

fn translation(language: &str) -> Value {
    json!({"language_code": language, "version": "1", "text_message": {"text": "Hi ${name}"}})
}

fn template(id: &str) -> Value {
    json!({"id": id, "default_translation": "en-US", "translations": [translation("en-US")]})
}

/// `template("t")` whose one translation is `t`.
fn template_with(t: Value) -> Value {
    json!({"id": "t", "default_translation": "en-US", "translations": [t]})
}

// Apps: AppCreateRequest and AppUpdateRequest (§1.2).

#[tokio::test]
async fn an_app_create_requires_display_name() {
    let api = Api::new().await;
    api.create_app(json!({"channel_credentials": []}), &["display_name"])
        .await;
    api.create_app(
        json!({"display_name": "", "channel_credentials": []}),
        &["display_name"],
    )
    .await;
}

#[tokio::test]
async fn an_app_create_requires_channel_credentials_and_takes_an_empty_list() {
    let api = Api::new().await;
    api.create_app(json!({"display_name": "A"}), &["channel_credentials"])
        .await;
    api.create_app(
        json!({"display_name": "A", "channel_credentials": null}),
        &["channel_credentials"],
    )
    .await;
    api.create_app(
        json!({"display_name": "A", "channel_credentials": {}}),
        &["channel_credentials"],
    )
    .await;
    let created = api
        .ok(
            Method::POST,
            APPS,
            json!({"display_name": "A", "channel_credentials": []}),
        )
        .await;
    assert_eq!(created["channel_credentials"], json!([]));
}

#[tokio::test]
async fn a_patch_cannot_clear_display_name() {
    let api = Api::new().await;
    api.patch_app("display_name", json!({}), &["display_name"]).await;
    api.patch_app("display_name", json!({"display_name": ""}), &["display_name"])
        .await;
}

#[tokio::test]
async fn a_patch_is_checked_field_by_field_as_a_create_is() {
    let api = Api::new().await;
    api.patch_app(
        "processing_mode,channel_credentials",
        json!({"processing_mode": "BATCH", "channel_credentials": [{"channel": "SMS"}]}),
        &["processing_mode", "channel_credentials[0]"],
    )
    .await;
    // Outside the mask too: the body is still parsed.
    api.patch_app(
        "display_name",
        json!({"display_name": "B", "processing_mode": "BATCH"}),
        &["processing_mode"],
    )
    .await;
}

#[tokio::test]
async fn conversation_metadata_report_view_is_none_or_full() {
    let api = Api::new().await;
    let body = app_with("conversation_metadata_report_view", json!("PARTIAL"));
    api.create_app(body, &["conversation_metadata_report_view"]).await;
}

#[tokio::test]
async fn processing_mode_is_conversation_or_dispatch() {
    let api = Api::new().await;
    api.create_app(app_with("processing_mode", json!("BATCH")), &["processing_mode"])
        .await;
}

#[tokio::test]
async fn retention_type_is_one_of_the_three_policies() {
    let api = Api::new().await;
    let body = app_with("retention_policy", json!({"retention_type": "FOREVER", "ttl_days": 10}));
    api.create_app(body, &["retention_policy.retention_type"]).await;
}

#[tokio::test]
async fn retention_ttl_days_is_1_to_3650() {
    let api = Api::new().await;
    for days in [0, 3651] {
        let body = app_with("retention_policy", json!({"ttl_days": days}));
        api.create_app(body, &["retention_policy.ttl_days"]).await;
    }
    api.ok(
        Method::POST,
        APPS,
        app_with("retention_policy", json!({"ttl_days": 3650})),
    )
    .await;
}

#[tokio::test]
async fn dispatch_retention_type_is_only_message_expire() {
    let api = Api::new().await;
    let body = app_with(
        "dispatch_retention_policy",
        json!({"retention_type": "CONVERSATION_EXPIRE_POLICY"}),
    );
    api.create_app(body, &["dispatch_retention_policy.retention_type"])
        .await;
}

#[tokio::test]
async fn dispatch_ttl_days_is_0_to_7() {
    let api = Api::new().await;
    for days in [-1, 8] {
        let body = app_with("dispatch_retention_policy", json!({"ttl_days": days}));
        api.create_app(body, &["dispatch_retention_policy.ttl_days"]).await;
    }
}

#[tokio::test]
async fn message_retry_duration_is_30_to_3600_seconds() {
    let api = Api::new().await;
    for seconds in [29, 3601] {
        let body = app_with("message_retry_settings", json!({"retry_duration": seconds}));
        api.create_app(body, &["message_retry_settings.retry_duration"]).await;
    }
}

#[tokio::test]
async fn delivery_report_waiting_time_is_10_to_259200_when_set() {
    let api = Api::new().await;
    let field = "delivery_report_based_fallback.delivery_report_waiting_time";
    for fallback in [
        json!({"enabled": false, "delivery_report_waiting_time": 9}),
        json!({"enabled": true, "delivery_report_waiting_time": 259_201}),
        json!({"enabled": true, "delivery_report_waiting_time": 0}),
    ] {
        api.create_app(app_with("delivery_report_based_fallback", fallback), &[field])
            .await;
    }
    // 0 is what GET shows when it is not set.
    let off = json!({"enabled": false, "delivery_report_waiting_time": 0});
    api.ok(Method::POST, APPS, app_with("delivery_report_based_fallback", off))
        .await;
    // Nothing documented requires it when enabled.
    let mut unset = app_with("delivery_report_based_fallback", json!({"enabled": true}));
    unset["display_name"] = json!("Fallback without a time");
    api.ok(Method::POST, APPS, unset).await;
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_refused() {
    let api = Api::new().await;
    let mut body = app_with("smart_conversation", json!({"enabled": "yes"}));
    body["display_name"] = json!(7);
    body["callback_settings"] = json!("secret");
    body["message_retry_settings"] = json!({"retry_duration": "soon"});
    api.create_app(
        body,
        &[
            "display_name",
            "smart_conversation.enabled",
            "callback_settings",
            "message_retry_settings.retry_duration",
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_refused_at_every_level() {
    let api = Api::new().await;
    let mut body = app_with("displayName", json!("A"));
    body["retention_policy"] = json!({"ttl": 3});
    body["channel_credentials"][0]["static_bearer"]["sender"] = json!("x");
    let error = api
        .invalid(
            Method::POST,
            APPS,
            body,
            &[
                "displayName",
                "channel_credentials[0].static_bearer.sender",
                "retention_policy.ttl",
            ],
        )
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown field \"displayName\""),
        "{error}"
    );
}

#[tokio::test]
async fn output_only_fields_sent_back_are_ignored() {
    let api = Api::new().await;
    let mut body = app_with("rate_limits", json!({"inbound": 1}));
    body["id"] = json!("mine");
    body["channel_credentials"][0]["state"] = json!({"status": "ACTIVE"});
    body["channel_credentials"][0]["channel_known_id"] = json!("x");
    let created = api.ok(Method::POST, APPS, body).await;
    assert_ne!(created["id"], "mine");
    assert_eq!(created["rate_limits"]["inbound"], 25);
    assert_eq!(created["channel_credentials"][0]["state"]["status"], "PENDING");
}

// Channel credentials (§1.3).

#[tokio::test]
async fn a_channel_is_required_and_one_of_the_conversation_channels() {
    let api = Api::new().await;
    let mut entry = sms();
    entry.as_object_mut().unwrap().remove("channel");
    api.create_app(with_entry(entry), &["channel_credentials[0].channel"])
        .await;
    // VIBER (Viber Bot) is gone from the enum.
    for channel in ["FAX", "VIBER", "sms"] {
        let entry = json!({"channel": channel, "static_token": {"token": "t"}});
        api.create_app(with_entry(entry), &["channel_credentials[0].channel"])
            .await;
    }
}

#[tokio::test]
async fn callback_secret_is_at_most_256_characters() {
    let api = Api::new().await;
    let mut entry = sms();
    entry["callback_secret"] = json!("s".repeat(257));
    api.create_app(with_entry(entry.clone()), &["channel_credentials[0].callback_secret"])
        .await;
    entry["callback_secret"] = json!("s".repeat(256));
    api.ok(Method::POST, APPS, with_entry(entry)).await;
}

#[tokio::test]
async fn credential_ordinal_number_is_0_to_255() {
    let api = Api::new().await;
    for n in [-1, 256] {
        let mut entry = sms();
        entry["credential_ordinal_number"] = json!(n);
        api.create_app(with_entry(entry), &["channel_credentials[0].credential_ordinal_number"])
            .await;
    }
}

#[tokio::test]
async fn an_entry_has_exactly_one_credential_object() {
    let api = Api::new().await;
    let error = api
        .invalid(
            Method::POST,
            APPS,
            with_entry(json!({"channel": "SMS"})),
            &["channel_credentials[0]"],
        )
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("exactly one credential object"),
        "{error}"
    );
    let mut two = sms();
    two["static_token"] = json!({"token": "t"});
    api.create_app(with_entry(two), &["channel_credentials[0]"]).await;
}

#[tokio::test]
async fn a_credential_object_serves_only_its_channels() {
    let api = Api::new().await;
    for (channel, credential) in [
        ("TELEGRAM", "static_bearer"),
        ("SMS", "static_token"),
        ("WHATSAPP", "telegram_credentials"),
    ] {
        let mut entry = sms();
        entry.as_object_mut().unwrap().remove("static_bearer");
        entry["channel"] = json!(channel);
        entry[credential] = match credential {
            "static_bearer" => json!({"claimed_identity": "c", "token": "t"}),
            _ => json!({"token": "t"}),
        };
        let field = format!("channel_credentials[0].{credential}");
        api.create_app(with_entry(entry), &[field.as_str()]).await;
    }
}

#[tokio::test]
async fn each_credential_object_requires_its_fields() {
    let api = Api::new().await;
    let full = [
        ("SMS", "static_bearer", json!({"claimed_identity": "c", "token": "t"})),
        ("MESSENGER", "static_token", json!({"token": "t"})),
        ("MMS", "mms_credentials", json!({"account_id": "a", "api_key": "k"})),
        (
            "KAKAOTALK",
            "kakaotalk_credentials",
            json!({"kakaotalk_plus_friend_id": "f", "kakaotalk_sender_key": "k"}),
        ),
        (
            "KAKAOTALKCHAT",
            "kakaotalkchat_credentials",
            json!({"kakaotalk_plus_friend_id": "f"}),
        ),
        ("TELEGRAM", "telegram_credentials", json!({"token": "t"})),
        ("LINE", "line_credentials", json!({"token": "t", "secret": "s"})),
        (
            "WECHAT",
            "wechat_credentials",
            json!({"app_id": "a", "app_secret": "s", "token": "t", "aes_key": "k"}),
        ),
        ("INSTAGRAM", "instagram_credentials", json!({"token": "t"})),
        (
            "APPLEBC",
            "applebc_credentials",
            json!({"business_chat_account_id": "b"}),
        ),
    ];
    for (channel, kind, credential) in full {
        api.ok(
            Method::POST,
            APPS,
            with_entry(json!({"channel": channel, kind: credential})),
        )
        .await;
        for field in credential.as_object().unwrap().keys() {
            let mut missing = credential.clone();
            missing.as_object_mut().unwrap().remove(field);
            let path = format!("channel_credentials[0].{kind}.{field}");
            api.create_app(with_entry(json!({"channel": channel, kind: missing})), &[path.as_str()])
                .await;
        }
    }
}

#[tokio::test]
async fn mms_basic_auth_requires_username_and_password() {
    let api = Api::new().await;
    let entry = json!({"channel": "MMS", "mms_credentials": {"account_id": "a", "api_key": "k", "basic_auth": {"username": "u"}}});
    api.create_app(
        with_entry(entry),
        &["channel_credentials[0].mms_credentials.basic_auth.password"],
    )
    .await;
}

#[tokio::test]
async fn line_enterprise_takes_exactly_one_of_japan_and_thailand_with_token_and_secret() {
    let api = Api::new().await;
    let field = "channel_credentials[0].line_enterprise_credentials";
    let account = json!({"token": "t", "secret": "s"});
    for credential in [
        json!({"is_default": true}),
        json!({"line_japan": account, "line_thailand": account}),
    ] {
        let entry = json!({"channel": "LINE", "line_enterprise_credentials": credential});
        api.create_app(with_entry(entry), &[field]).await;
    }
    let entry = json!({"channel": "LINE", "line_enterprise_credentials": {"line_japan": {"token": "t"}}});
    let secret = format!("{field}.line_japan.secret");
    api.create_app(with_entry(entry), &[secret.as_str()]).await;
}

#[tokio::test]
async fn a_channel_s_credentials_have_distinct_ordinal_numbers() {
    let api = Api::new().await;
    let line = |n: Option<u8>| {
        let mut e = json!({"channel": "LINE", "line_credentials": {"token": "t", "secret": "s"}});
        if let Some(n) = n {
            e["credential_ordinal_number"] = json!(n);
        }
        e
    };
    // Unset is 0.
    let mut default = line(None);
    default["line_credentials"]["is_default"] = json!(true);
    let body = json!({"display_name": "A", "channel_credentials": [default, line(Some(0))]});
    api.create_app(body, &["channel_credentials[1].credential_ordinal_number"])
        .await;
    let body = json!({"display_name": "A", "channel_credentials": [default, line(Some(1)), sms()]});
    api.ok(Method::POST, APPS, body).await;
}

/// "For other channels, this value will always be set to 0": stored as 0, not refused (no
/// source says Sinch refuses it; rule 15). Validate refuses it offline, since a declared 2 would
/// never read back.
#[tokio::test]
async fn an_ordinal_on_a_channel_other_than_line_is_stored_as_0() {
    let api = Api::new().await;
    let mut entry = sms();
    entry["credential_ordinal_number"] = json!(2);
    let app = api.ok(Method::POST, APPS, with_entry(entry)).await;
    assert_eq!(app["channel_credentials"][0]["credential_ordinal_number"], 0);
}

#[tokio::test]
async fn a_channel_other_than_line_has_one_credential() {
    let api = Api::new().await;
    let body = json!({"display_name": "A", "channel_credentials": [sms(), sms()]});
    let error = api.invalid(Method::POST, APPS, body, &["channel_credentials[1]"]).await;
    assert_eq!(
        error["details"][0]["field_violations"][0]["description"],
        "channel SMS has a credential already (channel_credentials[0]); only LINE takes several"
    );
    // A PATCH of the list is held to the same rule.
    api.patch_app(
        "channel_credentials",
        json!({"channel_credentials": [sms(), sms()]}),
        &["channel_credentials[1]"],
    )
    .await;
}

#[tokio::test]
async fn several_line_credentials_have_exactly_one_default() {
    let api = Api::new().await;
    // LINE Enterprise accounts are LINE credentials: they count with the others.
    let line = |n: u8, default: Option<bool>| {
        let mut e = match n {
            0 => json!({"channel": "LINE", "line_credentials": {"token": "t", "secret": "s"}}),
            _ => {
                json!({"channel": "LINE", "line_enterprise_credentials": {"line_japan": {"token": "t", "secret": "s"}}})
            }
        };
        e["credential_ordinal_number"] = json!(n);
        if let Some(d) = default {
            let kind = if n == 0 {
                "line_credentials"
            } else {
                "line_enterprise_credentials"
            };
            e[kind]["is_default"] = json!(d);
        }
        e
    };
    for (a, b, chosen) in [(None, Some(false), 0), (Some(true), Some(true), 2)] {
        let body = json!({"display_name": "A", "channel_credentials": [line(0, a), line(1, b)]});
        let error = api.invalid(Method::POST, APPS, body, &["channel_credentials"]).await;
        assert_eq!(
            error["details"][0]["field_violations"][0]["description"],
            format!("2 LINE credentials, {chosen} with is_default true; exactly one must be the default")
        );
    }
    // One LINE credential needs no default; of two, one is.
    api.ok(Method::POST, APPS, with_entry(line(0, None))).await;
    let body = json!({"display_name": "A", "channel_credentials": [line(0, None), line(1, Some(true))]});
    api.ok(Method::POST, APPS, body).await;
}

// Webhooks (§2).

#[tokio::test]
async fn a_webhook_create_requires_app_id_and_target() {
    let api = Api::new().await;
    api.create_webhook(json!({"target": "https://h.example.com"}), &["app_id"])
        .await;
    api.create_webhook(json!({"app_id": api.app}), &["target"]).await;
    api.create_webhook(json!({"app_id": "", "target": ""}), &["app_id", "target"])
        .await;
}

#[tokio::test]
async fn a_webhook_s_app_exists_in_its_project_and_region() {
    let api = Api::new().await;
    api.create_webhook(webhook("01NOSUCHAPP", "https://h.example.com"), &["app_id"])
        .await;
    api.invalid(
        Method::POST,
        "/eu/v1/projects/p/webhooks",
        webhook(&api.app, "https://h.example.com"),
        &["app_id"],
    )
    .await;
}

#[tokio::test]
async fn every_webhook_patch_carries_target() {
    let api = Api::new().await;
    let id = api.webhook("https://h.example.com/1").await;
    let path = format!("{WEBHOOKS}/{id}?update_mask=triggers");
    api.invalid(
        Method::PATCH,
        &path,
        json!({"triggers": ["MESSAGE_DELIVERY"]}),
        &["target"],
    )
    .await;
    let path = format!("{WEBHOOKS}/{id}?update_mask=target");
    api.invalid(Method::PATCH, &path, json!({"target": ""}), &["target"])
        .await;
}

#[tokio::test]
async fn a_target_is_at_most_742_characters() {
    let api = Api::new().await;
    let base = "https://h.example.com/";
    let long = format!("{base}{}", "x".repeat(743 - base.len()));
    api.create_webhook(webhook(&api.app, &long), &["target"]).await;
    api.webhook(&long[..742]).await;
}

#[tokio::test]
async fn a_target_is_a_url_outside_conversation_api_sinch_com() {
    let api = Api::new().await;
    for target in [
        "not a url",
        "https://conversation-api.eu.sinch.com/hook",
        "https://CONVERSATION-API.us.sinch.com/hook",
        "https://x.conversation-api.us.sinch.com/hook",
    ] {
        api.create_webhook(webhook(&api.app, target), &["target"]).await;
    }
    api.webhook("https://hooks.sinch.com/ok").await;
}

#[tokio::test]
async fn target_type_is_dismiss_or_http() {
    let api = Api::new().await;
    let mut body = webhook(&api.app, "https://h.example.com");
    body["target_type"] = json!("GRPC");
    api.create_webhook(body, &["target_type"]).await;
}

#[tokio::test]
async fn triggers_are_the_21_usable_ones() {
    let api = Api::new().await;
    let mut body = webhook(&api.app, "https://h.example.com");
    body["triggers"] = json!(["MESSAGE_INBOUND", "UNSPECIFIED_TRIGGER", "SMART_CONVERSATIONS"]);
    api.create_webhook(body.clone(), &["triggers[1]", "triggers[2]"]).await;
    body["triggers"] = json!("MESSAGE_INBOUND");
    api.create_webhook(body, &["triggers"]).await;
}

#[tokio::test]
async fn client_credentials_require_client_id_client_secret_and_endpoint() {
    let api = Api::new().await;
    let mut body = webhook(&api.app, "https://h.example.com");
    body["client_credentials"] = json!({"scope": "a"});
    api.create_webhook(
        body,
        &[
            "client_credentials.client_id",
            "client_credentials.client_secret",
            "client_credentials.endpoint",
        ],
    )
    .await;
}

fn with_client_credentials(app: &str, field: &str, value: Value) -> Value {
    let mut body = webhook(app, "https://h.example.com");
    body["client_credentials"] =
        json!({"client_id": "i", "client_secret": "s", "endpoint": "https://auth.example.com"});
    body["client_credentials"][field] = value;
    body
}

#[tokio::test]
async fn client_credentials_scope_is_at_most_1024_characters() {
    let api = Api::new().await;
    let body = with_client_credentials(&api.app, "scope", json!("s".repeat(1025)));
    api.create_webhook(body, &["client_credentials.scope"]).await;
    let body = with_client_credentials(&api.app, "scope", json!("s".repeat(1024)));
    api.ok(Method::POST, WEBHOOKS, body).await;
}

#[tokio::test]
async fn client_credentials_response_type_is_at_most_64_characters() {
    let api = Api::new().await;
    let body = with_client_credentials(&api.app, "response_type", json!("r".repeat(65)));
    api.create_webhook(body, &["client_credentials.response_type"]).await;
}

#[tokio::test]
async fn token_request_type_is_basic_or_form() {
    let api = Api::new().await;
    let body = with_client_credentials(&api.app, "token_request_type", json!("JWT"));
    api.create_webhook(body, &["client_credentials.token_request_type"])
        .await;
}

#[tokio::test]
async fn an_app_has_at_most_five_webhooks() {
    let api = Api::new().await;
    for i in 0..5 {
        api.webhook(&format!("https://h.example.com/{i}")).await;
    }
    let error = api
        .refused(
            Method::POST,
            WEBHOOKS,
            webhook(&api.app, "https://h.example.com/5"),
            400,
        )
        .await;
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert!(
        error["message"].as_str().unwrap().contains("already has 5 webhooks"),
        "{error}"
    );
}

#[tokio::test]
async fn a_target_is_unique_per_app() {
    let api = Api::new().await;
    api.webhook("https://h.example.com/1").await;
    let id = api.webhook("https://h.example.com/2").await;
    api.create_webhook(webhook(&api.app, "https://h.example.com/1"), &["target"])
        .await;
    let path = format!("{WEBHOOKS}/{id}?update_mask=target");
    api.invalid(
        Method::PATCH,
        &path,
        json!({"target": "https://h.example.com/1"}),
        &["target"],
    )
    .await;
    // Another app may use it.
    let other = api.ok(Method::POST, APPS, app("Other")).await;
    api.ok(
        Method::POST,
        WEBHOOKS,
        webhook(other["id"].as_str().unwrap(), "https://h.example.com/1"),
    )
    .await;
}

// Project settings (§3).

#[tokio::test]
async fn settings_requests_require_a_body() {
    let api = Api::new().await;
    for method in [Method::POST, Method::PATCH] {
        let before = api.stored();
        let (status, answer) = api.raw(method.clone(), SETTINGS, Some(Vec::new())).await;
        assert_eq!(status, 400, "{method}: {answer}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(api.stored(), before);
    }
}

#[tokio::test]
async fn contact_settings_hold_only_a_boolean_unified_contact_id_enabled() {
    let api = Api::new().await;
    let field = "contact_settings.unified_contact_id_enabled";
    api.invalid(
        Method::POST,
        SETTINGS,
        json!({"contact_settings": {"unified_contact_id_enabled": "on"}}),
        &[field],
    )
    .await;
    api.invalid(
        Method::POST,
        SETTINGS,
        json!({"contact_settings": {"unified": true}}),
        &["contact_settings.unified"],
    )
    .await;
    api.invalid(Method::POST, SETTINGS, json!({"settings": {}}), &["settings"])
        .await;
    let off = json!({"contact_settings": {"unified_contact_id_enabled": false}});
    api.ok(Method::POST, SETTINGS, off).await;
    api.invalid(
        Method::PATCH,
        SETTINGS,
        json!({"contact_settings": {"unified_contact_id_enabled": 1}}),
        &[field],
    )
    .await;
}

#[tokio::test]
async fn settings_are_created_once() {
    let api = Api::new().await;
    let body = json!({"contact_settings": {"unified_contact_id_enabled": false}});
    api.ok(Method::POST, SETTINGS, body.clone()).await;
    let error = api.refused(Method::POST, SETTINGS, body, 409).await;
    assert_eq!(error["status"], "ALREADY_EXISTS");
}

#[tokio::test]
async fn unified_contact_id_is_not_enabled_while_identity_conflicts_remain() {
    let api = Api::new().await;
    let conflict = serde_json::from_value(
        json!({"identity": "46700000000", "channels": ["SMS", "RCS"], "contact_ids": ["a", "b"]}),
    )
    .unwrap();
    api.sim
        .seed_identity_conflicts(sinch_operator::model::Region::Us, "p", vec![conflict]);
    let on = json!({"contact_settings": {"unified_contact_id_enabled": true}});
    let error = api.refused(Method::POST, SETTINGS, on.clone(), 400).await;
    assert_eq!(error["status"], "FAILED_PRECONDITION");
    api.ok(
        Method::POST,
        SETTINGS,
        json!({"contact_settings": {"unified_contact_id_enabled": false}}),
    )
    .await;
    let error = api.refused(Method::PATCH, SETTINGS, on, 400).await;
    assert_eq!(error["status"], "FAILED_PRECONDITION");
}

// Templates v2 (§4).

#[tokio::test]
async fn a_template_create_requires_default_translation_and_translations() {
    let api = Api::new().await;
    api.create_template(
        json!({"translations": [translation("en-US")]}),
        &["default_translation"],
    )
    .await;
    api.create_template(json!({"default_translation": "en-US"}), &["translations"])
        .await;
    api.create_template(
        json!({"default_translation": "en-US", "translations": []}),
        &["translations"],
    )
    .await;
}

#[tokio::test]
async fn the_default_translation_is_one_of_the_translations() {
    let api = Api::new().await;
    let mut body = template("t");
    body["default_translation"] = json!("sv-SE");
    api.create_template(body, &["default_translation"]).await;
}

#[tokio::test]
async fn a_translation_requires_a_bcp_47_language_code() {
    let api = Api::new().await;
    let mut t = translation("en-US");
    t.as_object_mut().unwrap().remove("language_code");
    api.create_template(
        template_with(t),
        &["translations[0].language_code", "default_translation"],
    )
    .await;
    let mut body = template_with(translation("en US"));
    body["default_translation"] = json!("en US");
    api.create_template(body, &["translations[0].language_code"]).await;
}

#[tokio::test]
async fn a_translation_has_exactly_one_message() {
    let api = Api::new().await;
    let mut t = translation("en-US");
    t.as_object_mut().unwrap().remove("text_message");
    api.create_template(template_with(t.clone()), &["translations[0]"])
        .await;
    t["text_message"] = json!({"text": "a"});
    t["media_message"] = json!({"url": "https://m.example.com/a.png"});
    api.create_template(template_with(t), &["translations[0]"]).await;
}

#[tokio::test]
async fn a_message_requires_its_own_fields() {
    let api = Api::new().await;
    for (kind, message, missing) in [
        ("text_message", json!({}), vec!["text"]),
        ("media_message", json!({"thumbnail_url": "x"}), vec!["url"]),
        (
            "location_message",
            json!({"coordinates": {"latitude": 1.5}}),
            vec!["coordinates.longitude", "title"],
        ),
        ("choice_message", json!({}), vec!["choices"]),
        ("carousel_message", json!({}), vec!["cards"]),
        (
            "list_message",
            json!({"title": "t", "sections": [{}]}),
            vec!["sections[0].items"],
        ),
        (
            "contact_info_message",
            json!({"name": {}}),
            vec!["name.full_name", "phone_numbers"],
        ),
    ] {
        let t = json!({"language_code": "en-US", kind: message});
        let fields: Vec<String> = missing.iter().map(|m| format!("translations[0].{kind}.{m}")).collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        api.create_template(template_with(t), &fields).await;
    }
    let t = json!({"language_code": "en-US", "text_message": {"text": "a", "bold": true}});
    api.create_template(template_with(t), &["translations[0].text_message.bold"])
        .await;
}

#[tokio::test]
async fn channel_template_overrides_are_only_for_whatsapp_and_kakaotalk() {
    let api = Api::new().await;
    let mut t = translation("en-US");
    t["channel_template_overrides"] = json!({"SMS": {"template_reference": {"template_id": "x"}}});
    api.create_template(template_with(t), &["translations[0].channel_template_overrides"])
        .await;
}

#[tokio::test]
async fn an_override_names_its_template() {
    let api = Api::new().await;
    let mut t = translation("en-US");
    t["channel_template_overrides"] = json!({"WHATSAPP": {"template_reference": {"language_code": "en_US"}}});
    let field = "translations[0].channel_template_overrides.WHATSAPP.template_reference.template_id";
    api.create_template(template_with(t.clone()), &[field]).await;
    t["channel_template_overrides"] = json!({"WHATSAPP": {"parameter_mappings": {}}});
    let field = "translations[0].channel_template_overrides.WHATSAPP.template_reference";
    api.create_template(template_with(t), &[field]).await;
}

#[tokio::test]
async fn a_translation_version_is_a_string_other_than_latest() {
    let api = Api::new().await;
    for version in [json!(1), json!("latest")] {
        let mut t = translation("en-US");
        t["version"] = version;
        api.create_template(template_with(t), &["translations[0].version"])
            .await;
    }
}

#[tokio::test]
async fn a_language_and_version_appear_once_in_a_template() {
    let api = Api::new().await;
    let mut unversioned = translation("en-US");
    unversioned.as_object_mut().unwrap().remove("version");
    let body = json!({"default_translation": "en-US", "translations": [translation("en-US"), unversioned]});
    api.create_template(body, &["translations[1]"]).await;
}

#[tokio::test]
async fn a_template_id_is_unique_per_project_and_well_formed() {
    let api = Api::new().await;
    api.create_template(template("has space"), &["id"]).await;
    api.create_template(template(&"x".repeat(257)), &["id"]).await;
    api.ok(Method::POST, TEMPLATES, template("t")).await;
    let error = api.refused(Method::POST, TEMPLATES, template("t"), 409).await;
    assert_eq!(error["status"], "ALREADY_EXISTS");
}

#[tokio::test]
async fn a_template_put_requires_the_version_and_takes_the_id_from_the_path() {
    let api = Api::new().await;
    api.ok(Method::POST, TEMPLATES, template("t")).await;
    let path = format!("{TEMPLATES}/t");
    api.invalid(Method::PUT, &path, template("t"), &["version"]).await;
    let mut body = template("t");
    body["version"] = json!(1);
    body["id"] = json!("u");
    api.invalid(Method::PUT, &path, body.clone(), &["id"]).await;
    // No id, as the Node SDK's templatesV2.update and Sinch's curl send it: the path names it.
    body.as_object_mut().unwrap().remove("id");
    let updated = api.ok(Method::PUT, &path, body).await;
    assert_eq!((&updated["id"], &updated["version"]), (&json!("t"), &json!(2)));
}

#[tokio::test]
async fn rich_messages_hold_at_most_10_choices_10_cards_and_3_carousel_choices() {
    let api = Api::new().await;
    let choices = |n: usize| json!(vec![json!({"text_message": {"text": "c"}}); n]);
    let card = |n: usize| json!({"title": "t", "choices": choices(n)});
    let with = |message: &str, body: Value| {
        let mut t = json!({"language_code": "en-US", "version": "1"});
        t[message] = body;
        template_with(t)
    };
    api.create_template(
        with("card_message", card(11)),
        &["translations[0].card_message.choices"],
    )
    .await;
    let error = api
        .invalid(
            Method::POST,
            TEMPLATES,
            with("choice_message", json!({"choices": choices(11)})),
            &["translations[0].choice_message.choices"],
        )
        .await;
    assert_eq!(
        error["details"][0]["field_violations"][0]["description"],
        "holds 11 items; at most 10 are allowed"
    );
    let carousel = json!({"cards": vec![card(11); 11], "choices": choices(4)});
    let mut fields = vec!["translations[0].carousel_message.cards".to_string()];
    fields.extend((0..11).map(|i| format!("translations[0].carousel_message.cards[{i}].choices")));
    fields.push("translations[0].carousel_message.choices".into());
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    api.create_template(with("carousel_message", carousel), &fields).await;
    let carousel = json!({"cards": vec![card(10); 10], "choices": choices(3)});
    api.ok(Method::POST, TEMPLATES, with("carousel_message", carousel))
        .await;
}

#[tokio::test]
async fn a_template_put_is_made_against_the_current_version() {
    let api = Api::new().await;
    api.ok(Method::POST, TEMPLATES, template("t")).await;
    let path = format!("{TEMPLATES}/t");
    let mut body = template("t");
    body["version"] = json!(1);
    assert_eq!(api.ok(Method::PUT, &path, body.clone()).await["version"], 2);
    let error = api.refused(Method::PUT, &path, body, 409).await;
    assert_eq!(error["status"], "ABORTED");
}

// Auth (§5.1).

#[tokio::test]
async fn the_token_endpoint_takes_the_key_as_basic_auth_and_a_client_credentials_form() {
    let api = Api::new().await;
    let url = format!("{}/oauth2/token", api.sim.url());
    let form = "application/x-www-form-urlencoded";
    let post = |key: Option<(&str, &str)>, content_type: &str, body: &str| {
        let mut r = api
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some((id, secret)) = key {
            r = r.basic_auth(id, Some(secret));
        }
        r.send()
    };
    let none = post(None, form, "grant_type=client_credentials").await.unwrap();
    assert_eq!(none.status(), 401);
    let grant = post(Some(("k", "s")), form, "grant_type=password").await.unwrap();
    assert_eq!(grant.status(), 400);
    assert_eq!(grant.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let json_body = post(
        Some(("k", "s")),
        "application/json",
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await
    .unwrap();
    assert_eq!(json_body.status(), 400);
    assert_eq!(json_body.json::<Value>().await.unwrap()["error"], "invalid_request");
    let ok = post(Some(("k", "s")), form, "grant_type=client_credentials")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(api.sim.stats().writes, 1, "only the base app was written");
}

// Errors (§5.3).

#[tokio::test]
async fn a_refused_body_lists_every_violation_as_bad_request_details() {
    let api = Api::new().await;
    let body = json!({"channel_credentials": [{"channel": "FAX"}], "processing_mode": "BATCH"});
    let error = api
        .invalid(
            Method::POST,
            APPS,
            body,
            &[
                "display_name",
                "channel_credentials[0].channel",
                "processing_mode",
                "channel_credentials[0]",
            ],
        )
        .await;
    let mut keys: Vec<&String> = error.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "details", "message", "status"]);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("display_name: required; channel_credentials[0].channel: \"FAX\" is not one of"),
        "{message}"
    );
    assert_eq!(
        error["details"][0]["field_violations"][0],
        json!({"field": "display_name", "description": "required"})
    );
}

// Pagination (§5.4) and rate limits (§5.5).

#[tokio::test]
async fn identity_conflicts_come_in_pages_of_at_most_20() {
    let api = Api::new().await;
    let conflicts = (0..25)
        .map(|i| {
            serde_json::from_value(
                json!({"identity": format!("4670{i:04}"), "channels": ["SMS"], "contact_ids": ["a"]}),
            )
            .unwrap()
        })
        .collect();
    api.sim
        .seed_identity_conflicts(sinch_operator::model::Region::Us, "p", conflicts);
    let path = "/us/v1/projects/p/contacts:identityConflicts";
    let first = api.ok(Method::GET, path, Value::Null).await;
    assert_eq!(first["conflicts"].as_array().unwrap().len(), 10, "10 by default");
    let page = api
        .ok(Method::GET, &format!("{path}?page_size=20&page_token=20"), Value::Null)
        .await;
    assert_eq!(page["conflicts"].as_array().unwrap().len(), 5);
    assert_eq!(page["next_page_token"], "", "an empty token ends the list");
    for query in ["page_size=21", "page_size=-1", "page_token=x", "page_token=26"] {
        let (status, answer) = api.call(Method::GET, &format!("{path}?{query}"), Value::Null).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn a_project_makes_at_most_800_requests_a_second_by_default() {
    assert_eq!(sim::Config::default().rate_limit, NonZeroU32::new(800));
}
