//! What the client logs at every level, in a test binary of its own: tracing caches per
//! callsite whether anyone listens, and another test's thread (with no subscriber) reaching a
//! callsite first would hide it from this test's subscriber.

mod common;

use serde_json::json;
use sinch_operator::model::Region;
use sinch_operator::sim::{self, Fault};
use sinch_operator::sinch::Sensitive;
use sinch_operator::sinch::app::App;
use sinch_operator::sinch::client::Credentials;

const KEY_SECRET: &str = "canary-key-secret-5b1e";
const TOKEN: &str = "canary-sms-token-90d2";

#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let sim = common::start(sim::Config::default()).await;
    let p = sim.client(common::fast_retries()).unwrap().project(
        "3f2a0c4e-project",
        Region::Us,
        Credentials {
            key_id: "key-id".into(),
            key_secret: Sensitive(KEY_SECRET.into()),
        },
    );
    let app: App = serde_json::from_value(json!({
        "display_name": "A",
        "channel_credentials": [{"channel": "SMS", "static_bearer": {"claimed_identity": "plan-a", "token": TOKEN}}]
    }))
    .unwrap();
    let id = p.create_app(&app).await.unwrap().id.unwrap();
    sim.expire_tokens();
    sim.inject(Fault {
        status: 503,
        times: 1,
        retry_after: None,
        after_write: false,
        matching: None,
        message: None,
    });
    p.get_app(&id).await.unwrap();
    let _ = p.create_app(&App::default()).await;
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sinch_request"), "requests are traced: {logs}");
    assert!(logs.contains("retrying"), "{logs}");
    for canary in [KEY_SECRET, TOKEN, "Bearer", "Basic "] {
        assert!(!logs.contains(canary), "{canary:?} in the logs:\n{logs}");
    }
}
