//! The wire types read the official SDKs' JSON fixtures (tests/fixtures/sdk, copied verbatim)
//! and write them back unchanged: nothing is lost on a read-modify-write.

mod common;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sinch_operator::sinch::app::{App, ChannelCredentials, ListAppsResponse};
use sinch_operator::sinch::error::ApiError;
use sinch_operator::sinch::settings::{ListIdentityConflictsResponse, ProjectSettings, ProjectSettingsRequest};
use sinch_operator::sinch::template::{ListTemplatesResponse, ListTranslationsResponse, Template};
use sinch_operator::sinch::webhook::{ClientCredentials, ListWebhooksResponse, Webhook};

fn fixture(name: &str) -> Value {
    let path = common::root().join("tests/fixtures/sdk").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `null` and an absent field mean the same to the API; the wire types write neither.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn round_trip<T: DeserializeOwned + Serialize + std::fmt::Debug>(name: &str) -> T {
    let original = fixture(name);
    let typed: T = serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        without_nulls(original),
        "{name} changed on the round trip"
    );
    typed
}

#[test]
fn every_fixture_reads_and_writes_back_unchanged() {
    let app: App = round_trip("java-app-response.json");
    assert_eq!(app.id.as_deref(), Some("an app id"));
    assert_eq!(
        app.channel_credentials.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .status
            .as_deref(),
        Some("ACTIVE")
    );
    assert_eq!(app.message_search.as_ref().unwrap().enabled, Some(true));
    round_trip::<App>("java-app-create-request.json");
    round_trip::<App>("java-app-update-request.json");
    assert_eq!(
        round_trip::<ListAppsResponse>("java-app-list-response.json").apps.len(),
        fixture("java-app-list-response.json")["apps"].as_array().unwrap().len()
    );
    for f in [
        "java-channel-credential-sms-response.json",
        "java-channel-credential-whatsapp-request.json",
        "java-channel-credential-telegram-response.json",
        "java-channel-credential-line-enterprise-japan-response.json",
        "dotnet-channel-credential-line-request.json",
    ] {
        let entry: ChannelCredentials = round_trip(f);
        assert!(
            entry.extra.is_empty(),
            "{f}: every credential field is modelled, got {:?}",
            entry.extra.keys()
        );
    }
    let hook: Webhook = round_trip("java-webhook-response.json");
    assert_eq!(hook.triggers.as_ref().unwrap().len(), 4);
    round_trip::<Webhook>("java-webhook-create-request.json");
    round_trip::<ListWebhooksResponse>("java-webhook-list-response.json");
    round_trip::<ClientCredentials>("java-webhook-client-credentials.json");
    round_trip::<ProjectSettingsRequest>("java-project-settings-request.json");
    let settings: ProjectSettings = round_trip("java-project-settings-response.json");
    assert_eq!(
        settings
            .settings
            .unwrap()
            .contact_settings
            .unwrap()
            .unified_contact_id_enabled,
        Some(true)
    );
    let conflicts: ListIdentityConflictsResponse = round_trip("java-identity-conflicts-list-response.json");
    assert_eq!(conflicts.conflicts[0].channels, ["RCS", "SMS"]);
    let template: Template = round_trip("java-template-v2-response.json");
    assert!(
        template.translations.as_ref().unwrap()[0]
            .message
            .contains_key("template_message")
    );
    round_trip::<Template>("java-template-v2-request.json");
    round_trip::<ListTemplatesResponse>("java-template-v2-list-response.json");
    round_trip::<ListTranslationsResponse>("java-template-v2-translations-list-response.json");
}

#[test]
fn fields_the_client_does_not_know_survive_a_round_trip() {
    let body = serde_json::json!({
        "id": "01HZ", "display_name": "A", "future_setting": {"x": 1},
        "channel_credentials": [{"channel": "NEWCHAT", "newchat_credentials": {"token": "t"}}]
    });
    let app: App = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(app.extra["future_setting"], serde_json::json!({"x": 1}));
    assert_eq!(serde_json::to_value(&app).unwrap(), body);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let app: App = serde_json::from_value(fixture("java-app-response.json")).unwrap();
    let hook: Webhook = serde_json::from_value(fixture("java-webhook-response.json")).unwrap();
    let debug = format!("{app:?} {hook:?}");
    for secret in [
        "my token",
        "foo value",
        "my secret",
        "my secret value",
        "a client secret",
    ] {
        assert!(
            !debug.contains(&format!("\"{secret}\"")),
            "{secret:?} leaked into Debug output"
        );
    }
    assert!(debug.contains("(sensitive)"));
}

#[test]
fn error_bodies_are_read_wrapped_and_flat() {
    let wrapped = br#"{"error":{"code":400,"message":"Invalid argument","status":"INVALID_ARGUMENT","details":[]}}"#;
    let flat = br#"{"code":404,"message":"App not found","status":"NOT_FOUND"}"#;
    assert_eq!(
        ApiError::parse(wrapped).unwrap().status.as_deref(),
        Some("INVALID_ARGUMENT")
    );
    assert_eq!(ApiError::parse(flat).unwrap().message.as_deref(), Some("App not found"));
    assert_eq!(ApiError::parse(b"<html>Bad gateway</html>"), None);
    assert_eq!(ApiError::parse(b"{}"), None);
}
