//! The rules within one object's spec beyond its schema: channel credentials, a webhook's
//! target, OAuth endpoint and triggers, URLs, ids sent in paths, a template's translations and
//! the bounds of its messages, secret references, and the Kubernetes name rules (also used for
//! metadata and Secrets).

use crate::diagnostic::{Diagnostic, child, item};
use crate::input::{Manifest, Secrets};
use crate::model::{
    AppOf, Channel, ChannelTemplateOverride, ConversationApp, Credential, JsonObject, MAX_MESSAGE_BYTES,
    MAX_MESSAGE_DEPTH, Object, SecretKeyRef, Template, Translation, Webhook,
};
use crate::sinch::request::is_valid_id;
use serde_json::Value;
use std::collections::HashMap;

/// Whether a credential object is LINE's: `lineCredentials` or `lineEnterpriseCredentials`,
/// both on channel LINE ("If the channel property is set to LINE ..., you must include either
/// the line_credentials object or the line_enterprise_credentials object", [NODE]
/// `line-credentials.ts`). There is no LINE_ENTERPRISE channel: an enterprise account is one
/// more LINE credential, under the same ordinal and default rules as the others.
fn line_default(credential: &Credential) -> Option<bool> {
    match credential {
        Credential::LineCredentials(c) => Some(c.is_default.unwrap_or(false)),
        Credential::LineEnterpriseCredentials(c) => Some(c.is_default.unwrap_or(false)),
        _ => None,
    }
}

pub(super) fn check_channels(m: &Manifest, app: &ConversationApp, errors: &mut Vec<Diagnostic>) {
    let entries = app.spec.channel_credentials.as_deref().unwrap_or_default();
    let mut seen: HashMap<(Channel, i32), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = item("spec.channelCredentials", i);
        if !entry.credential.channels().contains(&entry.channel) {
            let fits: Vec<&str> = entry.credential.channels().iter().map(|c| c.as_str()).collect();
            errors.push(m.error(
                &child(&path, entry.credential.field()),
                format!("is for {}, not {}", fits.join(", "), entry.channel),
            ));
        }
        let ordinal = entry.credential_ordinal_number.unwrap_or(0);
        // "Currently, this is only applicable to the LINE channel. For other channels, this
        // value will always be set to 0" ([CONV] CredentialOrdinalNumber): Sinch would keep 0,
        // and the plan would find the declared ordinal missing on every run.
        if entry.channel != Channel::Line && ordinal != 0 {
            errors.push(m.error(
                &child(&path, "credentialOrdinalNumber"),
                format!(
                    "only LINE credentials take an ordinal number; for {} Sinch always sets it to 0, got {ordinal}",
                    entry.channel
                ),
            ));
        }
        // Only LINE holds several credentials; another channel is one entry, whatever its ordinal.
        let key = (entry.channel, if entry.channel == Channel::Line { ordinal } else { 0 });
        match seen.insert(key, i) {
            Some(first) if entry.channel == Channel::Line => errors.push(m.error(
                &path,
                format!(
                    "LINE with credentialOrdinalNumber {ordinal} is already declared at spec.channelCredentials[{first}]; give each LINE credential its own credentialOrdinalNumber"
                ),
            )),
            Some(first) => errors.push(m.error(
                &path,
                format!(
                    "{} is already declared at spec.channelCredentials[{first}]; an app has one credential per channel (only LINE takes several)",
                    entry.channel
                ),
            )),
            None => {}
        }
    }
    // "When an app contains multiple LINE or LINE Enterprise credentials, one of the credentials
    // needs to be defined as the default" ([JAVA] LineCredentials.java; [NODE], [NET], [PY] alike).
    let defaults: Vec<bool> = entries.iter().filter_map(|e| line_default(&e.credential)).collect();
    let chosen = defaults.iter().filter(|d| **d).count();
    if defaults.len() > 1 && chosen != 1 {
        errors.push(m.error(
            "spec.channelCredentials",
            format!(
                "{} LINE credentials, {chosen} with isDefault: true; with several, exactly one must be the default",
                defaults.len()
            ),
        ));
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
        let declared = Declared {
            keys,
            at: child(&path, "variables"),
        };
        check_placeholders(m, &path, tr, &declared, errors);
        if let Some(whatsapp) = tr.channel_template_overrides.as_ref().and_then(|o| o.get("WHATSAPP")) {
            let at = child(&child(&path, "channelTemplateOverrides"), "WHATSAPP");
            check_whatsapp_override(m, &at, whatsapp, &declared, errors);
        }
        if let Some(body) = tr.message.free_form() {
            let at = child(&path, tr.message.field());
            check_message_bounds(m, &at, body, errors);
            check_message_lists(m, &at, tr.message.field(), body, errors);
        }
    }
}

/// The variables a translation declares, and where, for the messages that name them.
struct Declared<'a> {
    keys: Vec<&'a str>,
    at: String,
}

impl Declared<'_> {
    fn has(&self, key: &str) -> bool {
        self.keys.contains(&key)
    }

    /// "(declared: a, b)" or "(none is declared)".
    fn listed(&self) -> String {
        match self.keys.as_slice() {
            [] => "(none is declared)".to_string(),
            keys => format!("(declared: {})", keys.join(", ")),
        }
    }
}

/// Every `${name}` in the message's strings names a declared variable: `variables` is the
/// "List of expected variables. Can be used for request validation" ([TMPL] v2MessageCommonProps),
/// so an undeclared one is a variable nobody is asked for and the text is sent with it unfilled.
fn check_placeholders(m: &Manifest, path: &str, tr: &Translation, declared: &Declared, errors: &mut Vec<Diagnostic>) {
    let message = serde_json::to_value(&tr.message).expect("a message serialises");
    let mut strings = Vec::new();
    strings_of(&message, path.to_string(), &mut strings);
    for (at, text) in strings {
        let missing: Vec<String> = placeholders(text)
            .filter(|name| !declared.has(name))
            .map(|name| format!("${{{name}}}"))
            .collect();
        if !missing.is_empty() {
            let verb = if missing.len() == 1 { "is" } else { "are" };
            errors.push(m.error(
                &at,
                format!(
                    "{} {verb} not declared in {} {}",
                    missing.join(", "),
                    declared.at,
                    declared.listed()
                ),
            ));
        }
    }
}

/// Each string of `value` with its field path.
fn strings_of<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings_of(v, child(&path, k), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| strings_of(v, item(&path, i), out)),
        _ => {}
    }
}

/// The names of the `${name}` placeholders of a text, in order.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| !name.is_empty())
}

/// A WhatsApp override maps WhatsApp's parameter keys to this translation's variables: the
/// spec's example is `parameter_mappings: {body[1]text: name}` beside `variables: [{key: name}]`
/// and `text: Hi ${name}` ([TMPL] examples createTemplateV2, updateTemplateV2). The keys of
/// `templateReference.parameters` take the same form.
fn check_whatsapp_override(
    m: &Manifest,
    path: &str,
    o: &ChannelTemplateOverride,
    declared: &Declared,
    errors: &mut Vec<Diagnostic>,
) {
    let parameters = child(&child(path, "templateReference"), "parameters");
    for key in o.template_reference.parameters.iter().flat_map(|p| p.keys()) {
        if !is_whatsapp_parameter(key) {
            errors.push(m.error(&child(&parameters, key), not_a_whatsapp_parameter(key)));
        }
    }
    let mappings = child(path, "parameterMappings");
    for (key, variable) in o.parameter_mappings.iter().flatten() {
        let at = child(&mappings, key);
        if !is_whatsapp_parameter(key) {
            errors.push(m.error(
                &at,
                format!(
                    "{}; parameterMappings maps a WhatsApp parameter key to a variable of the translation",
                    not_a_whatsapp_parameter(key)
                ),
            ));
        }
        if !declared.has(variable) {
            errors.push(m.error(
                &at,
                format!(
                    "maps to {variable:?}, which is not declared in {} {}",
                    declared.at,
                    declared.listed()
                ),
            ));
        }
    }
}

fn not_a_whatsapp_parameter(key: &str) -> String {
    format!(
        "{key:?} is not a WhatsApp template parameter key (such as body[1]text, header[1]image.link, button[0]url[1]text or carousel[0]body[1]text)"
    )
}

/// Sinch's form of a WhatsApp template parameter key:
/// `<component_type>[carousel_card_index]<card_component_type>[<component_index>]<component_sub_type>[<parameter_index>]<parameter_field>`,
/// the component `header`, `body`, `button` or `carousel`; a carousel's card index 0-based, at
/// most ten cards; the component index (0-based) and sub-type (`quick_reply`, `url`, ...) for
/// buttons only; the parameter index 1-based; the field a property of the parameter (`text`,
/// `payload`, `image.link`, ...).
/// (https://developers.sinch.com/docs/conversation/channel-support/whatsapp/template-support)
fn is_whatsapp_parameter(key: &str) -> bool {
    let component = match key.strip_prefix("carousel[").and_then(index) {
        Some((card, rest)) if card < 10 => rest,
        Some(_) => return false,
        None => key,
    };
    let parameter = if let Some(rest) = component.strip_prefix("header[").or(component.strip_prefix("body[")) {
        Some(rest)
    } else if let Some((_, rest)) = component.strip_prefix("button[").and_then(index) {
        let sub_type = rest.find('[').unwrap_or(0);
        let (name, rest) = rest.split_at(sub_type);
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then(|| &rest[1..])
    } else {
        None
    };
    match parameter.and_then(index) {
        Some((n, field)) => {
            n >= 1
                && field.starts_with(|c: char| c.is_ascii_lowercase())
                && field.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
        }
        None => false,
    }
}

/// `N]rest` -> `(N, rest)`: the index of a `[N]`, its `[` already read.
fn index(s: &str) -> Option<(u32, &str)> {
    let (digits, rest) = s.split_once(']')?;
    let n = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()?;
    Some((n, rest))
}

/// The lists Sinch bounds in rich messages (snake_case keys, as the free-form bodies are):
/// "The number of choices is limited to 10" ([CONV] `Choices`, on card and choice messages);
/// a carousel holds "A list of up to 10 cards", each a card message, and its own choices are
/// "limited to 3" ([CONV] `CarouselMessageField`).
const MESSAGE_LISTS: &[(&str, &str, usize)] = &[
    ("cardMessage", "choices", 10),
    ("choiceMessage", "choices", 10),
    ("carouselMessage", "cards", 10),
    ("carouselMessage", "choices", 3),
];
const CARD_CHOICES: usize = 10;

fn check_message_lists(m: &Manifest, path: &str, field: &str, body: &JsonObject, errors: &mut Vec<Diagnostic>) {
    let mut check = |at: String, list: Option<&Value>, most: usize| {
        if let Some(n) = list.and_then(Value::as_array).map(Vec::len).filter(|n| *n > most) {
            errors.push(m.error(&at, format!("holds {n} items; Sinch allows at most {most}")));
        }
    };
    for (_, list, most) in MESSAGE_LISTS.iter().filter(|(message, ..)| *message == field) {
        check(child(path, list), body.0.get(*list), *most);
    }
    if field == "carouselMessage" {
        let cards = body
            .0
            .get("cards")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, card) in cards.iter().enumerate() {
            check(
                child(&item(&child(path, "cards"), i), "choices"),
                card.get("choices"),
                CARD_CHOICES,
            );
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
