//! What each manifest asks of Sinch, as the wire types: the one place per kind where camelCase
//! model fields become the API's snake_case ones. Only declared fields are set (rule 6: drift is
//! a difference in a declared field), and secret references are resolved here, or recorded as
//! unresolved: such a field is left out, never sent empty (rule 7).

use crate::input::Secrets;
use crate::model::{
    self as m, ConversationAppSpec, Credential, LineEnterpriseAccount, ProjectSettingsSpec, SecretKeyRef,
    TemplateMessage, TemplateSpec, WebhookSpec,
};
use crate::sinch::app as w;
use crate::sinch::settings::{ContactSettings, ProjectSettingsRequest};
use crate::sinch::template::{ChannelTemplateOverride, Template, TemplateReference, Translation, Variable};
use crate::sinch::webhook::{ClientCredentials, Webhook};
use crate::sinch::{Enabled, Sensitive};
use serde::Serialize;

/// Where a manifest uses a secret: the manifest field, the place in the wire value, and the
/// Secret key it names. The value itself sits in the wire value when it resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretUse {
    /// The manifest field, e.g. `spec.channelCredentials[0].staticBearer.tokenRef`.
    pub field: String,
    /// The place in the wire value as a JSON pointer (`/channel_credentials/0/static_bearer/token`):
    /// where serialisation put the value (or would have, unresolved), found after the fact (see
    /// [`Resolver::finish`]).
    pub pointer: String,
    /// The Secret's namespace, name and key.
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// The value, when it resolved: what no request body of a plan may hold.
    pub value: Option<Sensitive>,
    /// Why no value was found; the field is then left out of the wire value.
    pub unresolved: Option<String>,
}

/// A manifest in wire form, with every secret it uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired<T> {
    pub wire: T,
    pub secrets: Vec<SecretUse>,
}

impl<T> Desired<T> {
    pub fn unresolved(&self) -> impl Iterator<Item = &SecretUse> {
        self.secrets.iter().filter(|s| s.unresolved.is_some())
    }
}

/// What a resolved secret stands as in the wire value until [`Resolver::finish`] finds where
/// serialisation put it: the secret's pointer is where its marker lands, whatever the wire
/// field is called. No naming rule stands between a manifest field and its place in a request.
/// A random part, drawn once per process, keeps a manifest's own strings from ever reading as
/// a marker.
fn marker_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| format!("\u{0}sinch-operator-secret-{:016x}:", fastrand::u64(..)))
}

/// Reads secret values for one namespace and records every use.
struct Resolver<'a> {
    secrets: &'a Secrets,
    namespace: &'a str,
    uses: Vec<SecretUse>,
}

impl Resolver<'_> {
    fn new<'a>(secrets: &'a Secrets, namespace: &'a str) -> Resolver<'a> {
        Resolver {
            secrets,
            namespace,
            uses: Vec::new(),
        }
    }

    /// What goes into the wire value: a marker, replaced by the value (or taken out, when
    /// unresolved) in [`Resolver::finish`].
    fn secret(&mut self, field: &str, r: &SecretKeyRef) -> Option<Sensitive> {
        let (ns, name, key) = (self.namespace, r.name.as_str(), r.key.as_str());
        let (value, unresolved) = match self.secrets.get(ns, name, key) {
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(value) => (Some(Sensitive(value.to_string())), None),
                Err(_) => (
                    None,
                    Some(format!("key {key:?} of Secret {ns}/{name} is not UTF-8 text")),
                ),
            },
            None => match self.secrets.keys(ns, name) {
                Some(_) => (None, Some(format!("Secret {ns}/{name} has no key {key:?}"))),
                None => (None, Some(format!("Secret {ns}/{name} is not in the input"))),
            },
        };
        let marker = Sensitive(format!("{}{}\u{0}", marker_prefix(), self.uses.len()));
        self.uses.push(SecretUse {
            field: field.to_string(),
            pointer: String::new(),
            namespace: ns.to_string(),
            name: name.to_string(),
            key: key.to_string(),
            value,
            unresolved,
        });
        Some(marker)
    }

    fn optional(&mut self, field: &str, r: Option<&SecretKeyRef>) -> Option<Sensitive> {
        r.and_then(|r| self.secret(field, r))
    }

    /// The wire value with each marker replaced by its value (an unresolved one's field taken
    /// out: never sent empty), and each use with the pointer of the place its marker took. A
    /// resolved secret whose marker is nowhere (a conversion that dropped it) is unresolved: it
    /// is not sent, and an object that needs it is not created.
    fn finish<T: Serialize + serde::de::DeserializeOwned>(self, wire: T) -> Desired<T> {
        let mut uses = self.uses;
        let mut json = serde_json::to_value(&wire).expect("wire types always serialise");
        place(&mut json, &mut String::new(), &mut uses);
        for u in uses.iter_mut().filter(|u| u.value.is_some() && u.pointer.is_empty()) {
            u.value = None;
            u.unresolved = Some("its value has no place in the request (a bug of sinch-operator)".into());
        }
        let wire = serde_json::from_value(json).expect("a wire value reads back as itself");
        Desired { wire, secrets: uses }
    }
}

/// Replaces each marker under `value` (at `pointer`) by its use's value, or takes its field out
/// when the use is unresolved, recording the place.
fn place(value: &mut serde_json::Value, pointer: &mut String, uses: &mut [SecretUse]) {
    use serde_json::Value;
    let marked = |v: &Value| {
        v.as_str()
            .and_then(|s| s.strip_prefix(marker_prefix()))
            .and_then(|rest| rest.strip_suffix('\u{0}'))
            .and_then(|i| i.parse::<usize>().ok())
    };
    match value {
        Value::Object(map) => {
            let mut gone = Vec::new();
            for (k, v) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                match marked(v).and_then(|i| uses.get_mut(i)) {
                    Some(u) => {
                        u.pointer = pointer.clone();
                        match &u.value {
                            Some(secret) => *v = Value::String(secret.0.clone()),
                            None => gone.push(k.clone()),
                        }
                    }
                    None => place(v, pointer, uses),
                }
                pointer.truncate(len);
            }
            for k in gone {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                place(v, pointer, uses);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// An enum of the model as the API spells it (the model's serde names are the API's values).
fn api_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("model enums serialise as strings, got {other:?}"),
    }
}

pub fn app(spec: &ConversationAppSpec, namespace: &str, secrets: &Secrets) -> Desired<w::App> {
    let mut r = Resolver::new(secrets, namespace);
    let wire = w::App {
        display_name: Some(spec.display_name.clone()),
        channel_credentials: spec.channel_credentials.as_ref().map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, c)| channel(&mut r, &format!("spec.channelCredentials[{i}]"), c))
                .collect()
        }),
        conversation_metadata_report_view: spec.conversation_metadata_report_view.as_ref().map(api_name),
        retention_policy: spec.retention_policy.as_ref().map(|p| w::RetentionPolicy {
            retention_type: p.retention_type.as_ref().map(api_name),
            ttl_days: p.ttl_days,
            ..Default::default()
        }),
        dispatch_retention_policy: spec.dispatch_retention_policy.as_ref().map(|p| w::RetentionPolicy {
            retention_type: p.retention_type.as_ref().map(api_name),
            ttl_days: p.ttl_days,
            ..Default::default()
        }),
        processing_mode: spec.processing_mode.as_ref().map(api_name),
        smart_conversation: spec.smart_conversation.as_ref().map(|s| Enabled {
            enabled: s.enabled,
            ..Default::default()
        }),
        callback_settings: spec.callback_settings.as_ref().map(|c| w::CallbackSettings {
            secret_for_overridden_callback_urls: r.optional(
                "spec.callbackSettings.secretForOverriddenCallbackUrlsRef",
                c.secret_for_overridden_callback_urls_ref.as_ref(),
            ),
            ..Default::default()
        }),
        message_retry_settings: spec.message_retry_settings.as_ref().map(|s| w::MessageRetrySettings {
            retry_duration: s.retry_duration.map(i64::from),
            ..Default::default()
        }),
        delivery_report_based_fallback: spec.delivery_report_based_fallback.as_ref().map(|f| {
            w::DeliveryReportBasedFallback {
                enabled: f.enabled,
                delivery_report_waiting_time: f.delivery_report_waiting_time.map(i64::from),
                ..Default::default()
            }
        }),
        ..Default::default()
    };
    r.finish(wire)
}

fn channel(r: &mut Resolver, path: &str, c: &m::ChannelCredential) -> w::ChannelCredentials {
    let mut out = w::ChannelCredentials {
        channel: c.channel.as_str().to_string(),
        credential_ordinal_number: c.credential_ordinal_number.map(i64::from),
        callback_secret: r.optional(&format!("{path}.callbackSecretRef"), c.callback_secret_ref.as_ref()),
        ..Default::default()
    };
    let field = |name: &str| format!("{path}.{}.{name}", c.credential.field());
    credential(r, &field, &c.credential, &mut out);
    out
}

/// The one credential of a channel, in its wire field; `field` names a manifest field of it.
fn credential(r: &mut Resolver, field: &dyn Fn(&str) -> String, c: &Credential, out: &mut w::ChannelCredentials) {
    match c {
        Credential::StaticBearer(b) => {
            out.static_bearer = Some(w::StaticBearer {
                claimed_identity: Some(b.claimed_identity.clone()),
                token: r.secret(&field("tokenRef"), &b.token_ref),
                ..Default::default()
            })
        }
        Credential::StaticToken(t) => {
            out.static_token = Some(w::Token {
                token: r.secret(&field("tokenRef"), &t.token_ref),
                ..Default::default()
            })
        }
        Credential::MmsCredentials(m) => {
            out.mms_credentials = Some(w::MmsCredentials {
                account_id: Some(m.account_id.clone()),
                api_key: r.secret(&field("apiKeyRef"), &m.api_key_ref),
                basic_auth: m.basic_auth.as_ref().map(|b| w::BasicAuth {
                    username: Some(b.username.clone()),
                    password: r.secret(&field("basicAuth.passwordRef"), &b.password_ref),
                }),
                default_sender: m.default_sender.clone(),
                ..Default::default()
            })
        }
        Credential::KakaotalkCredentials(k) => {
            out.kakaotalk_credentials = Some(w::KakaotalkCredentials {
                kakaotalk_plus_friend_id: Some(k.kakaotalk_plus_friend_id.clone()),
                kakaotalk_sender_key: r.secret(&field("kakaotalkSenderKeyRef"), &k.kakaotalk_sender_key_ref),
                ..Default::default()
            })
        }
        Credential::KakaotalkchatCredentials(k) => {
            out.kakaotalkchat_credentials = Some(w::KakaotalkchatCredentials {
                kakaotalk_plus_friend_id: Some(k.kakaotalk_plus_friend_id.clone()),
                api_key: r.optional(&field("apiKeyRef"), k.api_key_ref.as_ref()),
                ..Default::default()
            })
        }
        Credential::TelegramCredentials(t) => {
            out.telegram_credentials = Some(w::Token {
                token: r.secret(&field("tokenRef"), &t.token_ref),
                ..Default::default()
            })
        }
        Credential::LineCredentials(l) => {
            out.line_credentials = Some(w::LineCredentials {
                token: r.secret(&field("tokenRef"), &l.token_ref),
                secret: r.secret(&field("secretRef"), &l.secret_ref),
                is_default: l.is_default,
                ..Default::default()
            })
        }
        Credential::LineEnterpriseCredentials(l) => {
            out.line_enterprise_credentials = Some(line_enterprise(r, field, l))
        }
        Credential::WechatCredentials(c) => {
            out.wechat_credentials = Some(w::WechatCredentials {
                app_id: Some(c.app_id.clone()),
                app_secret: r.secret(&field("appSecretRef"), &c.app_secret_ref),
                token: r.secret(&field("tokenRef"), &c.token_ref),
                aes_key: r.secret(&field("aesKeyRef"), &c.aes_key_ref),
                ..Default::default()
            })
        }
        Credential::InstagramCredentials(c) => {
            out.instagram_credentials = Some(w::InstagramCredentials {
                token: r.secret(&field("tokenRef"), &c.token_ref),
                business_account_id: c.business_account_id.clone(),
                ..Default::default()
            })
        }
        Credential::ApplebcCredentials(c) => {
            out.applebc_credentials = Some(w::ApplebcCredentials {
                business_chat_account_id: Some(c.business_chat_account_id.clone()),
                merchant_id: c.merchant_id.clone(),
                apple_pay_certificate_reference: c.apple_pay_certificate_reference.clone(),
                apple_pay_certificate_password: r.optional(
                    &field("applePayCertificatePasswordRef"),
                    c.apple_pay_certificate_password_ref.as_ref(),
                ),
                ..Default::default()
            })
        }
    }
}

/// LINE Enterprise: one account, Japan or Thailand, each with its own token and secret.
fn line_enterprise(
    r: &mut Resolver,
    field: &dyn Fn(&str) -> String,
    l: &m::LineEnterpriseCredentials,
) -> w::LineEnterpriseCredentials {
    let (name, account) = match &l.account {
        LineEnterpriseAccount::LineJapan(a) => ("lineJapan", a),
        LineEnterpriseAccount::LineThailand(a) => ("lineThailand", a),
    };
    let wire = w::LineCredentials {
        token: r.secret(&field(&format!("{name}.tokenRef")), &account.token_ref),
        secret: r.secret(&field(&format!("{name}.secretRef")), &account.secret_ref),
        ..Default::default()
    };
    let japan = matches!(l.account, LineEnterpriseAccount::LineJapan(_));
    w::LineEnterpriseCredentials {
        line_japan: japan.then(|| wire.clone()),
        line_thailand: (!japan).then_some(wire),
        is_default: l.is_default,
        ..Default::default()
    }
}

/// A webhook of the app `app_id` (resolved from `appRef` or given as `appId`). `targetType` is
/// always sent: the API documents two different defaults, the model has one (`HTTP`).
pub fn webhook(spec: &WebhookSpec, app_id: &str, namespace: &str, secrets: &Secrets) -> Desired<Webhook> {
    let mut r = Resolver::new(secrets, namespace);
    let wire = Webhook {
        app_id: Some(app_id.to_string()),
        target: Some(spec.target.clone()),
        target_type: Some(api_name(&spec.target_type.unwrap_or_default())),
        secret: r.optional("spec.secretRef", spec.secret_ref.as_ref()),
        triggers: spec.triggers.as_ref().map(|t| t.iter().map(api_name).collect()),
        client_credentials: spec.client_credentials.as_ref().map(|c| ClientCredentials {
            client_id: Some(c.client_id.clone()),
            client_secret: r.secret("spec.clientCredentials.clientSecretRef", &c.client_secret_ref),
            endpoint: Some(c.endpoint.clone()),
            scope: c.scope.clone(),
            response_type: c.response_type.clone(),
            token_request_type: c.token_request_type.as_ref().map(api_name),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.finish(wire)
}

/// A template; its id is `templateId`, else the object's name.
pub fn template(spec: &TemplateSpec, name: &str) -> Template {
    Template {
        id: Some(spec.id(name)),
        description: spec.description.clone(),
        default_translation: Some(spec.default_translation.clone()),
        translations: Some(spec.translations.iter().map(translation).collect()),
        ..Default::default()
    }
}

fn translation(t: &m::Translation) -> Translation {
    let mut message = crate::sinch::Extra::new();
    let (field, body) = match &t.message {
        TemplateMessage::TextMessage(m) => ("text_message", serde_json::to_value(m)),
        TemplateMessage::MediaMessage(m) => ("media_message", serde_json::to_value(media(m))),
        TemplateMessage::LocationMessage(m) => ("location_message", serde_json::to_value(m)),
        TemplateMessage::CardMessage(j) => ("card_message", serde_json::to_value(j)),
        TemplateMessage::CarouselMessage(j) => ("carousel_message", serde_json::to_value(j)),
        TemplateMessage::ChoiceMessage(j) => ("choice_message", serde_json::to_value(j)),
        TemplateMessage::ListMessage(j) => ("list_message", serde_json::to_value(j)),
        TemplateMessage::TemplateMessage(j) => ("template_message", serde_json::to_value(j)),
        TemplateMessage::ContactInfoMessage(j) => ("contact_info_message", serde_json::to_value(j)),
    };
    message.insert(field.to_string(), body.expect("messages always serialise"));
    Translation {
        language_code: Some(t.language_code.clone()),
        version: Some(t.version.clone()),
        variables: t.variables.as_ref().map(|vs| {
            vs.iter()
                .map(|v| Variable {
                    key: Some(v.key.clone()),
                    preview_value: v.preview_value.clone(),
                })
                .collect()
        }),
        channel_template_overrides: t.channel_template_overrides.as_ref().map(|o| {
            o.iter()
                .map(|(channel, o)| {
                    let reference = &o.template_reference;
                    let wire = ChannelTemplateOverride {
                        template_reference: Some(TemplateReference {
                            template_id: Some(reference.template_id.clone()),
                            version: reference.version.clone(),
                            language_code: reference.language_code.clone(),
                            parameters: reference.parameters.clone(),
                        }),
                        parameter_mappings: o.parameter_mappings.clone(),
                        ..Default::default()
                    };
                    (channel.clone(), wire)
                })
                .collect()
        }),
        message,
        ..Default::default()
    }
}

/// The media message's fields in the API's spelling.
fn media(m: &m::MediaMessage) -> serde_json::Value {
    let mut out = serde_json::json!({ "url": m.url });
    if let Some(t) = &m.thumbnail_url {
        out["thumbnail_url"] = t.clone().into();
    }
    if let Some(f) = &m.filename_override {
        out["filename_override"] = f.clone().into();
    }
    out
}

pub fn settings(spec: &ProjectSettingsSpec) -> ProjectSettingsRequest {
    ProjectSettingsRequest {
        contact_settings: spec.contact_settings.as_ref().map(|c| ContactSettings {
            unified_contact_id_enabled: c.unified_contact_id_enabled,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Object;
    use serde_json::json;

    fn examples() -> crate::validate::Input {
        crate::validate::load(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")]).unwrap()
    }

    fn find(input: &crate::validate::Input, name: &str) -> Object {
        input
            .manifests
            .iter()
            .map(|m| m.object.clone())
            .find(|o| o.name() == name)
            .unwrap()
    }

    #[test]
    fn an_app_becomes_the_api_json_with_only_declared_fields_and_secrets_resolved() {
        let input = examples();
        let Object::ConversationApp(a) = find(&input, "support-us") else {
            panic!()
        };
        let desired = app(&a.spec, "messaging", &input.secrets);
        assert_eq!(desired.unresolved().count(), 0);
        assert_eq!(
            desired.secrets.iter().map(|s| s.pointer.as_str()).collect::<Vec<_>>(),
            [
                "/channel_credentials/0/static_bearer/token",
                "/channel_credentials/1/static_bearer/token",
                "/channel_credentials/2/static_bearer/token",
                "/callback_settings/secret_for_overridden_callback_urls",
            ]
        );
        let bearer = |channel: &str, id: &str, token: &str| json!({"channel": channel, "static_bearer": {"claimed_identity": id, "token": token}});
        assert_eq!(
            serde_json::to_value(&desired.wire).unwrap(),
            json!({
                "display_name": "Customer Support (US)",
                "processing_mode": "CONVERSATION",
                "conversation_metadata_report_view": "FULL",
                "retention_policy": {"retention_type": "MESSAGE_EXPIRE_POLICY", "ttl_days": 90},
                "message_retry_settings": {"retry_duration": 1800},
                "callback_settings": {"secret_for_overridden_callback_urls": "replace-with-callback-signing-secret"},
                "channel_credentials": [
                    bearer("WHATSAPP", "15550001111", "replace-with-whatsapp-bearer-token"),
                    bearer("RCS", "support_us_agent", "replace-with-rcs-bearer-token"),
                    bearer("SMS", "5f7c1e0a9b2d4c6e8f0a1b2c3d4e5f60", "replace-with-sms-service-plan-token"),
                ]
            })
        );
    }

    #[test]
    fn a_missing_secret_is_left_out_and_reported_with_its_field() {
        let input = examples();
        let Object::ConversationApp(a) = find(&input, "support-us") else {
            panic!()
        };
        let desired = app(&a.spec, "messaging", &Secrets::default());
        let fields: Vec<&str> = desired.unresolved().map(|u| u.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.channelCredentials[0].staticBearer.tokenRef",
                "spec.channelCredentials[1].staticBearer.tokenRef",
                "spec.channelCredentials[2].staticBearer.tokenRef",
                "spec.callbackSettings.secretForOverriddenCallbackUrlsRef",
            ]
        );
        assert_eq!(
            desired.secrets[0].unresolved.as_deref(),
            Some("Secret messaging/support-us-channels is not in the input")
        );
        let wire = serde_json::to_value(&desired.wire).unwrap();
        assert_eq!(
            wire["channel_credentials"][0]["static_bearer"],
            json!({"claimed_identity": "15550001111"})
        );
        assert_eq!(wire["callback_settings"], json!({}));
        let mut partial = Secrets::default();
        partial.insert(
            "messaging",
            "support-us-channels",
            [("sms-token".to_string(), b"x".to_vec())].into(),
        );
        let desired = app(&a.spec, "messaging", &partial);
        assert_eq!(
            desired.secrets[0].unresolved.as_deref(),
            Some("Secret messaging/support-us-channels has no key \"whatsapp-token\"")
        );
    }

    #[test]
    fn webhooks_templates_and_settings_convert_field_by_field() {
        let input = examples();
        for manifest in &input.manifests {
            match &manifest.object {
                Object::Webhook(wh) => {
                    let d = webhook(&wh.spec, "01APP", "messaging", &input.secrets);
                    assert_eq!(d.unresolved().count(), 0, "{}", manifest.object.label());
                    assert_eq!(d.wire.target.as_deref(), Some(wh.spec.target.as_str()));
                    assert_eq!(
                        d.wire.target_type.as_deref(),
                        Some(api_name(&wh.spec.target_type.unwrap_or_default()).as_str())
                    );
                }
                Object::Template(t) => {
                    let wire = serde_json::to_value(template(&t.spec, t.metadata.name.as_deref().unwrap())).unwrap();
                    let expected_id = t.spec.template_id.clone().or(t.metadata.name.clone()).unwrap();
                    assert_eq!(wire["id"], expected_id.as_str());
                    for (i, tr) in t.spec.translations.iter().enumerate() {
                        let message = tr.message.field();
                        let snake: String = message
                            .chars()
                            .flat_map(|c| match c.is_ascii_uppercase() {
                                true => vec!['_', c.to_ascii_lowercase()],
                                false => vec![c],
                            })
                            .collect();
                        assert!(wire["translations"][i][snake.as_str()].is_object(), "{wire}");
                        assert_eq!(wire["translations"][i]["version"], tr.version.as_str());
                    }
                }
                Object::ProjectSettings(s) => {
                    let wire = serde_json::to_value(settings(&s.spec)).unwrap();
                    assert_eq!(
                        wire,
                        json!({"contact_settings": {"unified_contact_id_enabled": s.spec.contact_settings.as_ref().unwrap().unified_contact_id_enabled}})
                    );
                }
                Object::ConversationApp(_) => {}
            }
        }
    }

    /// Each of the 11 credential objects, with every secret the model has, and where each lands
    /// in the request: found where serialisation put it, never derived from a name. The
    /// pointers are also the keys of the hashes statuses record: they must not move.
    #[test]
    fn every_secret_of_every_credential_lands_where_the_api_has_it() {
        let spec: ConversationAppSpec = serde_yaml::from_str(
            r#"
displayName: All
callbackSettings: {secretForOverriddenCallbackUrlsRef: {name: c, key: s01}}
channelCredentials:
  - {channel: SMS, callbackSecretRef: {name: c, key: s02}, staticBearer: {claimedIdentity: i, tokenRef: {name: c, key: s03}}}
  - {channel: MESSENGER, staticToken: {tokenRef: {name: c, key: s04}}}
  - {channel: MMS, mmsCredentials: {accountId: a, apiKeyRef: {name: c, key: s05}, basicAuth: {username: u, passwordRef: {name: c, key: s06}}}}
  - {channel: KAKAOTALK, kakaotalkCredentials: {kakaotalkPlusFriendId: k, kakaotalkSenderKeyRef: {name: c, key: s07}}}
  - {channel: KAKAOTALKCHAT, kakaotalkchatCredentials: {kakaotalkPlusFriendId: k, apiKeyRef: {name: c, key: s08}}}
  - {channel: TELEGRAM, telegramCredentials: {tokenRef: {name: c, key: s09}}}
  - {channel: LINE, credentialOrdinalNumber: 1, lineCredentials: {tokenRef: {name: c, key: s10}, secretRef: {name: c, key: s11}, isDefault: true}}
  - {channel: LINE, credentialOrdinalNumber: 2, lineEnterpriseCredentials: {lineJapan: {tokenRef: {name: c, key: s12}, secretRef: {name: c, key: s13}}}}
  - {channel: LINE, credentialOrdinalNumber: 3, lineEnterpriseCredentials: {lineThailand: {tokenRef: {name: c, key: s14}, secretRef: {name: c, key: s15}}}}
  - {channel: WECHAT, wechatCredentials: {appId: w, appSecretRef: {name: c, key: s16}, tokenRef: {name: c, key: s17}, aesKeyRef: {name: c, key: s18}}}
  - {channel: INSTAGRAM, instagramCredentials: {tokenRef: {name: c, key: s19}}}
  - {channel: APPLEBC, applebcCredentials: {businessChatAccountId: b, applePayCertificatePasswordRef: {name: c, key: s20}}}
"#,
        )
        .unwrap();
        let mut secrets = Secrets::default();
        let data = (1..=20).map(|i| (format!("s{i:02}"), format!("canary-{i:02}").into_bytes()));
        secrets.insert("ns", "c", data.collect());
        let desired = app(&spec, "ns", &secrets);
        let placed: Vec<(&str, &str)> = desired
            .secrets
            .iter()
            .map(|u| (u.key.as_str(), u.pointer.as_str()))
            .collect();
        let cc = |i: usize, rest: &str| format!("/channel_credentials/{i}/{rest}");
        let expected = [
            ("s02", cc(0, "callback_secret")),
            ("s03", cc(0, "static_bearer/token")),
            ("s04", cc(1, "static_token/token")),
            ("s05", cc(2, "mms_credentials/api_key")),
            ("s06", cc(2, "mms_credentials/basic_auth/password")),
            ("s07", cc(3, "kakaotalk_credentials/kakaotalk_sender_key")),
            ("s08", cc(4, "kakaotalkchat_credentials/api_key")),
            ("s09", cc(5, "telegram_credentials/token")),
            ("s10", cc(6, "line_credentials/token")),
            ("s11", cc(6, "line_credentials/secret")),
            ("s12", cc(7, "line_enterprise_credentials/line_japan/token")),
            ("s13", cc(7, "line_enterprise_credentials/line_japan/secret")),
            ("s14", cc(8, "line_enterprise_credentials/line_thailand/token")),
            ("s15", cc(8, "line_enterprise_credentials/line_thailand/secret")),
            ("s16", cc(9, "wechat_credentials/app_secret")),
            ("s17", cc(9, "wechat_credentials/token")),
            ("s18", cc(9, "wechat_credentials/aes_key")),
            ("s19", cc(10, "instagram_credentials/token")),
            ("s20", cc(11, "applebc_credentials/apple_pay_certificate_password")),
            (
                "s01",
                "/callback_settings/secret_for_overridden_callback_urls".to_string(),
            ),
        ];
        let expected: Vec<(&str, &str)> = expected.iter().map(|(k, p)| (*k, p.as_str())).collect();
        assert_eq!(placed, expected);
        let wire = serde_json::to_value(&desired.wire).unwrap();
        for u in &desired.secrets {
            assert_eq!(
                wire.pointer(&u.pointer).and_then(|v| v.as_str()),
                Some(format!("canary-{}", &u.key[1..]).as_str()),
                "{}",
                u.field
            );
            let last = u.pointer.rsplit('/').next().unwrap();
            assert!(<w::App as crate::sinch::Wire>::FIELDS.is_secret(last), "{last}");
        }
        // Unresolved, each field is left out, and its place is still known.
        let desired = app(&spec, "ns", &Secrets::default());
        let places: Vec<&str> = desired.secrets.iter().map(|u| u.pointer.as_str()).collect();
        assert_eq!(places, expected.iter().map(|(_, p)| *p).collect::<Vec<_>>());
        let wire = serde_json::to_value(&desired.wire).unwrap();
        assert!(places.iter().all(|p| wire.pointer(p).is_none()), "{wire}");
        assert!(!wire.to_string().contains("sinch-operator-secret"), "{wire}");
        // A manifest string shaped like a marker is only a string.
        let mut spec = spec.clone();
        spec.display_name = "\u{0}sinch-operator-secret:0\u{0}".into();
        let desired = app(&spec, "ns", &secrets);
        assert_eq!(desired.wire.display_name.as_deref(), Some(spec.display_name.as_str()));
        assert_eq!(desired.secrets[0].pointer, expected[0].1);
    }

    #[test]
    fn a_media_message_is_sent_in_the_api_spelling() {
        let m = m::MediaMessage {
            url: "https://cdn.example.com/a.png".into(),
            thumbnail_url: Some("https://cdn.example.com/t.png".into()),
            filename_override: None,
        };
        assert_eq!(
            media(&m),
            json!({"url": "https://cdn.example.com/a.png", "thumbnail_url": "https://cdn.example.com/t.png"})
        );
    }
}
