//! The offline rules: everything that can be known wrong without calling Sinch. `validate` runs
//! them alone; `plan` and `apply` run them before any request, so bad input never reaches Sinch.

mod schema;

use crate::diagnostic::{Diagnostic, Report, child, item};
use crate::input::Secrets;
pub use crate::input::{Input, Manifest};
use crate::load::{Document, Source};
use crate::model::{
    API_VERSION, AppOf, Channel, ConversationApp, DEFAULT_NAMESPACE, GROUP, Kind, Object, ProjectSettings, Region,
    SecretKeyRef, Template, Webhook,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

use crate::sinch::webhook::MAX_PER_APP as MAX_WEBHOOKS_PER_APP;

impl Manifest {
    fn error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.source.diagnostic(Some(&self.object.label()), field, message)
    }
}

/// Reads and validates the inputs: every problem of every file, or the input when there is none.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Input, Report> {
    let (docs, errors) = crate::load::read_inputs(paths);
    validate(docs, errors)
}

/// Classifies, schema-checks and cross-checks the documents, after `errors` the loader found.
/// Every problem is reported; the input is returned only when there is none.
pub fn validate(docs: Vec<Document>, mut errors: Vec<Diagnostic>) -> Result<Input, Report> {
    let mut input = Input::default();
    for doc in docs {
        match classify(&doc) {
            Ok(Some(kind)) => match parse_object(kind, schema::of_kind(kind), &doc) {
                Ok(object) => input.manifests.push(Manifest {
                    source: doc.source,
                    object,
                }),
                Err(mut e) => errors.append(&mut e),
            },
            Ok(None) if is_secret(&doc.value) => {
                if let Err(e) = add_secret(&doc, &mut input.secrets) {
                    errors.push(e);
                }
            }
            Ok(None) => {} // another tool's object (a ConfigMap, a Deployment): not ours to judge
            Err(e) => errors.push(e),
        }
    }
    let any_document_failed = !errors.is_empty();
    if input.manifests.is_empty() && !any_document_failed {
        errors.push(Diagnostic::new(format!("no {API_VERSION} objects found in the input")));
    }
    errors.extend(cross_check(&input));
    if errors.is_empty() {
        return Ok(input);
    }
    // In reading order: files as given, then document and line within each.
    let mut files: Vec<std::sync::Arc<str>> = Vec::new();
    for file in errors.iter().filter_map(|d| d.file.clone()) {
        if !files.contains(&file) {
            files.push(file);
        }
    }
    errors.sort_by_key(|d| {
        (
            d.file.as_ref().and_then(|f| files.iter().position(|x| x == f)),
            d.document,
            d.line,
        )
    });
    Err(Report(errors))
}

fn classify(doc: &Document) -> Result<Option<Kind>, Diagnostic> {
    let src = &doc.source;
    let Some(map) = doc.value.as_object() else {
        return Err(src.diagnostic(
            None,
            "",
            format!("a document must be a mapping, got {}", schema::describe(&doc.value)),
        ));
    };
    let string = |field: &str| match map.get(field) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(src.diagnostic(
            None,
            field,
            format!("must be a string, got {}", schema::describe(other)),
        )),
        None => Err(src.diagnostic(None, field, "is required")),
    };
    let (api_version, kind) = (string("apiVersion")?, string("kind")?);
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    if group != GROUP {
        return Ok(None);
    }
    if api_version != API_VERSION {
        return Err(src.diagnostic(
            None,
            "apiVersion",
            format!("{api_version:?} is not supported; use {API_VERSION}"),
        ));
    }
    match Kind::from_name(kind) {
        Some(k) => Ok(Some(k)),
        None => {
            let kinds: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            Err(src.diagnostic(
                None,
                "kind",
                format!("unknown kind {kind:?} of {GROUP}; expected one of {}", kinds.join(", ")),
            ))
        }
    }
}

fn is_secret(v: &Value) -> bool {
    v.get("apiVersion").and_then(Value::as_str) == Some("v1") && v.get("kind").and_then(Value::as_str) == Some("Secret")
}

fn parse_object(kind: Kind, schema: &Value, doc: &Document) -> Result<Object, Vec<Diagnostic>> {
    let src = &doc.source;
    let map = doc.value.as_object().expect("classified as a mapping");
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str);
    let namespace = map
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    let label = format!(
        "{kind} {}/{}",
        namespace.unwrap_or(DEFAULT_NAMESPACE),
        name.unwrap_or("<unnamed>")
    );
    let err = |field: &str, msg: String| src.diagnostic(Some(&label), field, msg);
    let mut errors = Vec::new();

    for key in map.keys() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            errors.push(err(
                key,
                "unknown field; expected apiVersion, kind, metadata, spec".into(),
            ));
        }
    }
    match map.get("metadata") {
        Some(Value::Object(meta)) => {
            match meta.get("name") {
                Some(Value::String(n)) => {
                    if let Some(problem) = dns_subdomain(n) {
                        errors.push(err("metadata.name", problem));
                    }
                }
                Some(other) => errors.push(err(
                    "metadata.name",
                    format!("must be a string, got {}", schema::describe(other)),
                )),
                None if meta.contains_key("generateName") => errors.push(err(
                    "metadata.generateName",
                    "is not supported: objects need a stable metadata.name".into(),
                )),
                None => errors.push(err("metadata.name", "is required".into())),
            }
            match meta.get("namespace") {
                Some(Value::String(ns)) => {
                    if let Some(problem) = dns_label(ns) {
                        errors.push(err("metadata.namespace", problem));
                    }
                }
                Some(other) => errors.push(err(
                    "metadata.namespace",
                    format!("must be a string, got {}", schema::describe(other)),
                )),
                None => {}
            }
        }
        Some(other) => errors.push(err(
            "metadata",
            format!("must be an object, got {}", schema::describe(other)),
        )),
        None => errors.push(err("metadata", "is required".into())),
    }
    match map.get("spec") {
        Some(spec) => {
            let mut violations = Vec::new();
            schema::check(&schema["properties"]["spec"], spec, "spec", &mut violations);
            errors.extend(violations.into_iter().map(|(path, msg)| err(&path, msg)));
        }
        None => errors.push(err("spec", "is required".into())),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The CLI ignores `status`, as `kubectl apply` does for a resource with a status subresource.
    let mut value = doc.value.clone();
    value.as_object_mut().expect("a mapping").remove("status");
    let parsed = match kind {
        Kind::ConversationApp => serde_json::from_value::<ConversationApp>(value).map(Object::ConversationApp),
        Kind::Webhook => serde_json::from_value::<Webhook>(value).map(Object::Webhook),
        Kind::Template => serde_json::from_value::<Template>(value).map(Object::Template),
        Kind::ProjectSettings => serde_json::from_value::<ProjectSettings>(value).map(Object::ProjectSettings),
    };
    // The schema check above accepts only what these types read; this is a backstop.
    parsed.map_err(|e| vec![err("", format!("cannot be read: {e}"))])
}

fn add_secret(doc: &Document, secrets: &mut Secrets) -> Result<(), Diagnostic> {
    use base64::Engine;
    let src = &doc.source;
    let meta = |f: &str| doc.value.get("metadata").and_then(|m| m.get(f)).and_then(Value::as_str);
    let label = format!(
        "Secret {}/{}",
        meta("namespace").unwrap_or(DEFAULT_NAMESPACE),
        meta("name").unwrap_or("<unnamed>")
    );
    // Named here by key, since the Secret's own parse error names neither key nor Secret; the
    // value itself is never quoted.
    for (key, value) in doc.value.get("data").and_then(Value::as_object).into_iter().flatten() {
        if let Some(Err(e)) = value
            .as_str()
            .map(|v| base64::engine::general_purpose::STANDARD.decode(v))
        {
            let message = format!("is not base64 ({e}); put text under stringData instead");
            return Err(src.diagnostic(Some(&label), &child("data", key), message));
        }
    }
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(doc.value.clone())
        .map_err(|e| src.diagnostic(Some(&label), "", format!("is not a valid Secret: {e}")))?;
    let name = secret.metadata.name.clone().unwrap_or_default();
    let namespace = secret
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    if let Some(problem) = dns_subdomain(&name) {
        return Err(src.diagnostic(Some(&label), "metadata.name", problem));
    }
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    // `stringData` wins over `data` for the same key, as on the API server.
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    secrets.insert(&namespace, &name, data);
    Ok(())
}

/// The Sinch scope an object is declared in; `None` parts come from the connection at run time.
type Scope = (Option<String>, Option<Region>);

fn scope(object: &Object) -> Scope {
    let p = object.placement();
    (p.project_id.clone(), p.region)
}

fn describe_scope(scope: &Scope) -> String {
    let project = scope.0.as_deref().unwrap_or("the default project");
    match scope.1 {
        Some(r) => format!("{project}, region {r}"),
        None => format!("{project}, the default region"),
    }
}

/// The rules across objects and within each object's spec beyond its schema.
fn cross_check(input: &Input) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let manifests = &input.manifests;
    unique_names(manifests, &mut errors);
    let apps: HashMap<(&str, &str), &ConversationApp> = manifests
        .iter()
        .filter_map(|m| match &m.object {
            Object::ConversationApp(a) => Some(((m.object.namespace(), m.object.name()), a)),
            _ => None,
        })
        .collect();
    let mut identities = Identities::default();
    // Webhooks grouped by the app they belong to: its id when known, else the app object.
    let mut webhooks_of: BTreeMap<String, Vec<&Manifest>> = BTreeMap::new();
    for m in manifests {
        check_secret_refs(m, &input.secrets, &mut errors);
        match &m.object {
            Object::ConversationApp(app) => {
                identities.app(m, app, &mut errors);
                check_channels(m, app, &mut errors);
            }
            Object::Webhook(hook) => {
                let key = webhook_app(m, hook, &apps, &mut errors);
                check_webhook(m, hook, &mut errors);
                if let Some(key) = key {
                    webhooks_of.entry(key).or_default().push(m);
                }
            }
            Object::Template(t) => {
                identities.template(m, t, &mut errors);
                check_template(m, t, &mut errors);
            }
            Object::ProjectSettings(_) => identities.settings(m, &mut errors),
        }
    }
    for (app, hooks) in &webhooks_of {
        check_webhooks_of(app, hooks, &mut errors);
    }
    errors
}

/// Two objects of one kind with one namespace and name.
fn unique_names(manifests: &[Manifest], errors: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(Kind, &str, &str), &Manifest> = HashMap::new();
    for m in manifests {
        let key = (m.object.kind(), m.object.namespace(), m.object.name());
        if let Some(first) = seen.insert(key, m) {
            errors.push(m.error(
                "metadata.name",
                format!("is declared twice; first at {}", at(&first.source)),
            ));
        }
    }
}

/// The identities seen so far, each of which one object at most may claim (rule 1): an app's id,
/// else its display name, in its scope; a template's id in its scope; a project's settings.
#[derive(Default)]
struct Identities<'m> {
    by_display_name: HashMap<(Scope, &'m str), &'m Manifest>,
    by_app_id: HashMap<(Scope, &'m str), &'m Manifest>,
    templates: HashMap<(Scope, String), &'m Manifest>,
    settings: HashMap<Option<String>, &'m Manifest>,
}

impl<'m> Identities<'m> {
    fn app(&mut self, m: &'m Manifest, app: &'m ConversationApp, errors: &mut Vec<Diagnostic>) {
        let s = scope(&m.object);
        match &app.spec.app_id {
            Some(id) => {
                if let Some(first) = self.by_app_id.insert((s, id), m) {
                    errors.push(m.error(
                        "spec.appId",
                        format!(
                            "{id:?} is also claimed by {} at {}",
                            first.object.label(),
                            at(&first.source)
                        ),
                    ));
                }
            }
            None => {
                if let Some(first) = self.by_display_name.insert((s.clone(), &app.spec.display_name), m) {
                    errors.push(m.error(
                        "spec.displayName",
                        format!(
                            "{:?} is also the display name of {} at {} in {}; apps without spec.appId are found by display name, so it must be unique",
                            app.spec.display_name,
                            first.object.label(),
                            at(&first.source),
                            describe_scope(&s)
                        ),
                    ));
                }
            }
        }
    }

    fn template(&mut self, m: &'m Manifest, t: &Template, errors: &mut Vec<Diagnostic>) {
        let id = t
            .spec
            .template_id
            .clone()
            .unwrap_or_else(|| m.object.name().to_string());
        if let Some(first) = self.templates.insert((scope(&m.object), id.clone()), m) {
            errors.push(m.error(
                if t.spec.template_id.is_some() {
                    "spec.templateId"
                } else {
                    "metadata.name"
                },
                format!(
                    "template id {id:?} is also declared by {} at {}",
                    first.object.label(),
                    at(&first.source)
                ),
            ));
        }
    }

    fn settings(&mut self, m: &'m Manifest, errors: &mut Vec<Diagnostic>) {
        let project = m.object.placement().project_id.clone();
        if let Some(first) = self.settings.insert(project.clone(), m) {
            errors.push(m.error(
                "spec.projectId",
                format!(
                    "{} already has ProjectSettings {}/{} at {}; at most one per project",
                    project.as_deref().unwrap_or("the default project"),
                    first.object.namespace(),
                    first.object.name(),
                    at(&first.source)
                ),
            ));
        }
    }
}

/// The key a webhook's app is counted under for rule 3 (`app <id>`, or the app object), once its
/// `appRef` names an app of the input placed where the webhook is.
fn webhook_app(
    m: &Manifest,
    hook: &Webhook,
    apps: &HashMap<(&str, &str), &ConversationApp>,
    errors: &mut Vec<Diagnostic>,
) -> Option<String> {
    match hook.app_of() {
        AppOf::Id(id) => Some(format!("app {id}")),
        AppOf::Object { namespace: ns, name } => match apps.get(&(ns, name)) {
            None => {
                errors.push(m.error(
                    "spec.appRef.name",
                    format!("no ConversationApp {ns}/{name} is declared in the input"),
                ));
                None
            }
            Some(app) => {
                check_webhook_placement(m, hook, app, errors);
                Some(match &app.spec.app_id {
                    Some(id) => format!("app {id}"),
                    None => format!("ConversationApp {ns}/{name}"),
                })
            }
        },
    }
}

/// Rule 3 over the declared webhooks of one app (plan counts the live ones too).
fn check_webhooks_of(app: &str, hooks: &[&Manifest], errors: &mut Vec<Diagnostic>) {
    let mut targets: HashMap<&str, &Manifest> = HashMap::new();
    for m in hooks {
        let Object::Webhook(h) = &m.object else { continue };
        if let Some(first) = targets.insert(h.spec.target.as_str(), m) {
            errors.push(m.error(
                "spec.target",
                format!(
                    "{:?} is also the target of {} at {}; targets must be unique per app ({app})",
                    h.spec.target,
                    first.object.label(),
                    at(&first.source)
                ),
            ));
        }
    }
    if hooks.len() > MAX_WEBHOOKS_PER_APP {
        let names: Vec<String> = hooks
            .iter()
            .map(|m| format!("{} ({})", m.object.name(), target_of(m)))
            .collect();
        let last = hooks.last().expect("more than five");
        errors.push(last.error(
            "spec.appRef",
            format!(
                "{app} would have {} webhooks, more than the {MAX_WEBHOOKS_PER_APP} Sinch allows: {}",
                hooks.len(),
                names.join(", ")
            ),
        ));
    }
}

fn target_of(m: &Manifest) -> &str {
    match &m.object {
        Object::Webhook(h) => &h.spec.target,
        _ => "",
    }
}

fn at(source: &Source) -> String {
    format!("{}:{}", source.origin.file, source.line)
}

fn check_channels(m: &Manifest, app: &ConversationApp, errors: &mut Vec<Diagnostic>) {
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

/// A Webhook of a ConversationApp lives in the app's project and region.
fn check_webhook_placement(m: &Manifest, hook: &Webhook, app: &ConversationApp, errors: &mut Vec<Diagnostic>) {
    let (mine, theirs) = (&hook.spec.placement, &app.spec.placement);
    if let (Some(a), Some(b)) = (&mine.project_id, &theirs.project_id)
        && a != b
    {
        errors.push(m.error(
            "spec.projectId",
            format!("{a:?} differs from the project of its app ({b:?}); leave it out to use the app's"),
        ));
    }
    if let (Some(a), Some(b)) = (mine.region, theirs.region)
        && a != b
    {
        errors.push(m.error(
            "spec.region",
            format!("{a} differs from the region of its app ({b}); leave it out to use the app's"),
        ));
    }
}

fn check_webhook(m: &Manifest, hook: &Webhook, errors: &mut Vec<Diagnostic>) {
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

/// Channels a translation may override with a channel-specific template.
const OVERRIDABLE_CHANNELS: [&str; 2] = ["WHATSAPP", "KAKAOTALK"];

fn check_template(m: &Manifest, t: &Template, errors: &mut Vec<Diagnostic>) {
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
    }
}

/// Every `...Ref: {name, key}` names a Secret that can exist; when the input holds that Secret,
/// the key must be in it.
fn check_secret_refs(m: &Manifest, secrets: &Secrets, errors: &mut Vec<Diagnostic>) {
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
fn dns_subdomain(s: &str) -> Option<String> {
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
fn dns_label(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    (!ok).then(|| format!("{s:?} is not a valid namespace: use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secret documents feed the store: `data` base64-decoded, `stringData` winning on a shared
    /// key; the store's Debug output names keys, never values.
    #[test]
    fn secret_documents_are_decoded_and_never_shown() {
        let yaml = "\
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: messaging}
data:
  token: Y2FuYXJ5LWRhdGE=   # canary-data
  both: b2xk               # old
stringData:
  both: canary-string
---
apiVersion: conversation.sinch.com/v1alpha1
kind: ProjectSettings
metadata: {name: p}
spec: {}
";
        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        crate::load::parse_bytes("s.yaml", yaml.as_bytes(), &mut docs, &mut errors);
        let input = validate(docs, errors).unwrap();
        assert_eq!(
            input.secrets.get("messaging", "creds", "token"),
            Some(&b"canary-data"[..])
        );
        assert_eq!(
            input.secrets.get("messaging", "creds", "both"),
            Some(&b"canary-string"[..])
        );
        assert_eq!(input.secrets.get("default", "creds", "token"), None);
        let debug = format!("{:?}", input.secrets);
        assert!(!debug.contains("canary"), "{debug}");
        assert!(
            debug.contains("messaging/creds") && debug.contains("\"token\""),
            "{debug}"
        );
    }
}
