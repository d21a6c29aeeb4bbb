//! The rules within one object's spec beyond its schema: channel credentials, a webhook's
//! target, OAuth endpoint and triggers, URLs, ids sent in paths, a template's translations and
//! the bounds of its messages, secret references, and the Kubernetes name rules (also used for
//! metadata and Secrets).

use crate::diagnostic::{Diagnostic, child, item};
use crate::input::{Manifest, Secrets};
use crate::model::{
    AppOf, Channel, ConversationApp, JsonObject, MAX_MESSAGE_BYTES, MAX_MESSAGE_DEPTH, Object, SecretKeyRef, Template,
    Webhook,
};
use crate::sinch::request::is_valid_id;
use serde_json::Value;
use std::collections::HashMap;

pub(super) fn check_channels(m: &Manifest, app: &ConversationApp, errors: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(Channel, i32), usize> = HashMap::new();
    for (i, entry) in app.spec.channel_credentials.iter().flatten().enumerate() {
        let path = item("spec.channelCredentials", i);
        if !entry.credential.channels().contains(&entry.channel) {
            let fits: Vec<&str> = entry.credential.channels().iter().map(|c| c.as_str()).collect();
            errors.push(m.error(
                &child(&path, entry.credential.field()),
                format!("is for {}, not {}", fits.join(", "), entry.channel),
            ));
        }
        let ordinal = entry.credential_ordinal_number.unwrap_or(0);
        if let Some(first) = seen.insert((entry.channel, ordinal), i) {
            errors.push(m.error(
                &path,
                format!(
                    "{} with credentialOrdinalNumber {ordinal} is already declared at spec.channelCredentials[{first}]; give each credential of a channel its own credentialOrdinalNumber",
                    entry.channel
                ),
            ));
        }
    }
}

pub(super) fn check_webhook(m: &Manifest, hook: &Webhook, errors: &mut Vec<Diagnostic>) {
    if let Err(problem) = check_url(&hook.spec.target) {
        errors.push(m.error("spec.target", problem));
    } else if let Some(host) = url::Url::parse(&hook.spec.target)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        && host.starts_with("conversation-api.")
        && host.ends_with(".sinch.com")
    {
        errors.push(m.error(
            "spec.target",
            format!("{host} is a conversation-api.*.sinch.com host, which Sinch forbids as a webhook target"),
        ));
    }
    if let Some(cc) = &hook.spec.client_credentials {
        // Sinch sends the client secret there: never in clear text.
        match check_url(&cc.endpoint) {
            Err(problem) => errors.push(m.error("spec.clientCredentials.endpoint", problem)),
            Ok(()) if !cc.endpoint.to_ascii_lowercase().starts_with("https://") => errors.push(m.error(
                "spec.clientCredentials.endpoint",
                format!(
                    "must be an https URL: Sinch sends the client secret there; {:?} would carry it in clear text",
                    cc.endpoint
                ),
            )),
            Ok(()) => {}
        }
    }
    let mut seen = Vec::new();
    for (i, t) in hook.spec.triggers.iter().flatten().enumerate() {
        if seen.contains(t) {
            errors.push(m.error(
                &item("spec.triggers", i),
                format!(
                    "{} is listed twice",
                    serde_json::to_value(t).expect("enum").as_str().unwrap_or_default()
                ),
            ));
        }
        seen.push(*t);
    }
}

fn check_url(s: &str) -> Result<(), String> {
    match url::Url::parse(s) {
        Err(e) => Err(format!("must be an absolute http(s) URL; {s:?} is not ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Err(format!("must be an http or https URL, got scheme {:?}", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Err(format!("must name a host; {s:?} has none")),
        // Plans print URLs and repositories keep them: no place for a secret.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(
            "must not contain a user name or password: URLs are shown in plans and kept in Git; \
             authenticate with spec.secretRef or spec.clientCredentials"
                .into(),
        ),
        Ok(_) => Ok(()),
    }
}

/// The ids the object sends as URL path segments: its project, an app's, a template's.
pub(super) fn check_ids(m: &Manifest, errors: &mut Vec<Diagnostic>) {
    let mut ids = vec![("spec.projectId", m.object.placement().project_id.as_deref())];
    match &m.object {
        Object::ConversationApp(app) => ids.push(("spec.appId", app.spec.app_id.as_deref())),
        Object::Webhook(hook) => {
            if let AppOf::Id(id) = hook.app_of() {
                ids.push(("spec.appId", Some(id)));
            }
        }
        Object::Template(t) => ids.push(("spec.templateId", t.spec.template_id.as_deref())),
        Object::ProjectSettings(_) => {}
    }
    for (field, id) in ids {
        if let Some(id) = id
            && !is_valid_id(id)
        {
            errors.push(m.error(
                field,
                format!("{id:?} is not a valid Sinch id: it is sent as a URL path segment, so use letters, digits, '-', '_', '.' and '~', and not only dots"),
            ));
        }
    }
}

/// Channels a translation may override with a channel-specific template.
const OVERRIDABLE_CHANNELS: [&str; 2] = ["WHATSAPP", "KAKAOTALK"];

pub(super) fn check_template(m: &Manifest, t: &Template, errors: &mut Vec<Diagnostic>) {
    let spec = &t.spec;
    if !spec
        .translations
        .iter()
        .any(|tr| tr.language_code == spec.default_translation)
    {
        let langs: Vec<&str> = spec.translations.iter().map(|tr| tr.language_code.as_str()).collect();
        errors.push(m.error(
            "spec.defaultTranslation",
            format!(
                "{:?} is not the languageCode of any translation ({})",
                spec.default_translation,
                langs.join(", ")
            ),
        ));
    }
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, tr) in spec.translations.iter().enumerate() {
        let path = item("spec.translations", i);
        if tr.version == "latest" {
            errors.push(m.error(
                &child(&path, "version"),
                "\"latest\" is reserved: Sinch uses it for the copy of the current translation",
            ));
        }
        if let Some(first) = seen.insert((&tr.language_code, &tr.version), i) {
            errors.push(m.error(
                &path,
                format!(
                    "languageCode {:?} version {:?} is already declared at spec.translations[{first}]",
                    tr.language_code, tr.version
                ),
            ));
        }
        for channel in tr.channel_template_overrides.iter().flat_map(|o| o.keys()) {
            if !OVERRIDABLE_CHANNELS.contains(&channel.as_str()) {
                errors.push(m.error(
                    &child(&child(&path, "channelTemplateOverrides"), channel),
                    format!(
                        "Sinch supports channel template overrides for {} only",
                        OVERRIDABLE_CHANNELS.join(" and ")
                    ),
                ));
            }
        }
        let mut keys = Vec::new();
        for (j, v) in tr.variables.iter().flatten().enumerate() {
            if keys.contains(&v.key.as_str()) {
                errors.push(m.error(
                    &child(&item(&child(&path, "variables"), j), "key"),
                    format!("{:?} is declared twice", v.key),
                ));
            }
            keys.push(&v.key);
        }
        if let Some(body) = tr.message.free_form() {
            check_message_bounds(m, &child(&path, tr.message.field()), body, errors);
        }
    }
}

/// A free-form message body within [`MAX_MESSAGE_DEPTH`] and [`MAX_MESSAGE_BYTES`].
fn check_message_bounds(m: &Manifest, path: &str, body: &JsonObject, errors: &mut Vec<Diagnostic>) {
    let depth = body.0.values().map(depth).max().unwrap_or(0).saturating_add(1);
    if depth > MAX_MESSAGE_DEPTH {
        errors.push(m.error(
            path,
            format!("nests {depth} levels deep; at most {MAX_MESSAGE_DEPTH} levels are allowed"),
        ));
    }
    let bytes = serde_json::to_vec(body).expect("JSON values serialise").len();
    if bytes > MAX_MESSAGE_BYTES {
        errors.push(m.error(
            path,
            format!("is {bytes} bytes as JSON; at most {MAX_MESSAGE_BYTES} bytes (64 KiB) are allowed"),
        ));
    }
}

/// The levels of objects and lists in `value`, 0 for a scalar. The loader (and, in the
/// controller, serde_json) have already bounded the recursion.
fn depth(value: &Value) -> usize {
    let inner = match value {
        Value::Object(map) => map.values().map(depth).max(),
        Value::Array(items) => items.iter().map(depth).max(),
        _ => return 0,
    };
    inner.unwrap_or(0).saturating_add(1)
}

/// Every `...Ref: {name, key}` names a Secret that can exist; when the input holds that Secret,
/// the key must be in it.
pub(super) fn check_secret_refs(m: &Manifest, secrets: &Secrets, errors: &mut Vec<Diagnostic>) {
    let ns = m.object.namespace();
    for (path, SecretKeyRef { name, key }) in m.object.secret_refs() {
        let (name, key) = (name.as_str(), key.as_str());
        if let Some(problem) = dns_subdomain(name) {
            errors.push(m.error(&child(&path, "name"), problem));
        }
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            errors.push(m.error(
                &child(&path, "key"),
                format!("{key:?} is not a valid Secret key (letters, digits, '-', '_', '.')"),
            ));
        } else if let Some(keys) = secrets.keys(ns, name)
            && !keys.contains(&key)
        {
            errors.push(m.error(
                &child(&path, "key"),
                format!("Secret {ns}/{name} has no key {key:?} (it has: {})", keys.join(", ")),
            ));
        }
    }
}

/// Kubernetes object names: lowercase RFC 1123 subdomain, at most 253 characters.
pub(super) fn dns_subdomain(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    (!ok).then(|| format!("{s:?} is not a valid name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (at most 253 characters)"))
}

/// Kubernetes namespaces: lowercase RFC 1123 label, at most 63 characters.
pub(super) fn dns_label(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    (!ok).then(|| format!("{s:?} is not a valid namespace: use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)"))
}
