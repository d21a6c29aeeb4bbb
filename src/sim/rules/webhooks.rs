//! What a webhook body may hold (§2.2, §2.3), and its target: a URL, not on Sinch's own
//! conversation-api hosts.

use super::Ty::*;
use super::{Check, Field, Object, Violation, opt, req};
use serde_json::Value;

const TRIGGERS: &[&str] = &[
    "MESSAGE_DELIVERY",
    "EVENT_DELIVERY",
    "MESSAGE_INBOUND",
    "EVENT_INBOUND",
    "CONVERSATION_START",
    "CONVERSATION_STOP",
    "CONTACT_CREATE",
    "CONTACT_DELETE",
    "CONTACT_MERGE",
    "CONTACT_UPDATE",
    "UNSUPPORTED",
    "OPT_IN",
    "OPT_OUT",
    "CAPABILITY",
    "CONVERSATION_DELETE",
    "CONTACT_IDENTITIES_DUPLICATION",
    "CHANNEL_EVENT",
    "SMART_CONVERSATION",
    "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
    "RECORD_NOTIFICATION",
    "MESSAGE_SUBMIT",
];
const MAX_TARGET_LEN: usize = 742;
/// `Webhook`: `target` is required on create and in every PATCH, `app_id` on create only.
const WEBHOOK: &[Field] = &[
    opt("app_id", Str),
    req("target", Len(MAX_TARGET_LEN)),
    opt("target_type", Enum(&["DISMISS", "HTTP"])),
    opt("secret", Str),
    opt("triggers", List(&Enum(TRIGGERS))),
    opt(
        "client_credentials",
        Obj(&[
            req("client_id", Str),
            req("client_secret", Str),
            req("endpoint", Str),
            opt("scope", Len(1024)),
            opt("response_type", Len(64)),
            opt("token_request_type", Enum(&["BASIC", "FORM"])),
        ]),
    ),
    opt("id", Output),
];

/// `POST /v1/projects/{project_id}/webhooks`: `app_id` and `target` required.
pub fn create_webhook(body: &Object) -> Vec<Violation> {
    webhook(body, &["app_id"])
}

/// `PATCH /v1/projects/{project_id}/webhooks/{webhook_id}`: the schema still requires `target`.
pub fn update_webhook(body: &Object) -> Vec<Violation> {
    webhook(body, &[])
}

fn webhook(body: &Object, required: &[&str]) -> Vec<Violation> {
    let mut check = Check::default();
    check.object("", body, WEBHOOK, false, required);
    if let Some(target) = body.get("target").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        match url::Url::parse(target) {
            Err(e) => check.bad("target", format!("{target:?} is not a URL ({e})")),
            Ok(url) if forbidden_host(url.host_str().unwrap_or_default()) => {
                check.bad("target", "the conversation-api.*.sinch.com subdomains are forbidden")
            }
            Ok(_) => {}
        }
    }
    check.done()
}

/// `conversation-api.<anything>.sinch.com`, and any name under one.
fn forbidden_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    host.ends_with(".sinch.com") && (host.starts_with("conversation-api.") || host.contains(".conversation-api."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_hosts() {
        assert!(forbidden_host("conversation-api.eu.sinch.com"));
        assert!(forbidden_host("a.conversation-api.us.sinch.com"));
        assert!(!forbidden_host("hooks.sinch.com"));
        assert!(!forbidden_host("conversation-api.example.com"));
    }
}
