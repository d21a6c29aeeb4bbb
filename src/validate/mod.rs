//! The offline rules: everything that can be known wrong without calling Sinch. `validate` runs
//! them alone; `plan` and `apply` run them before any request, so bad input never reaches Sinch.

mod cross;
mod fields;
mod schema;

use crate::diagnostic::{Diagnostic, Report, child};
use crate::input::Secrets;
pub use crate::input::{Input, Manifest};
use crate::load::Document;
use crate::model::{
    API_VERSION, ConversationApp, DEFAULT_NAMESPACE, GROUP, Kind, Object, ProjectSettings, Template, Webhook,
};
use fields::{dns_label, dns_subdomain};
use serde_json::Value;
use std::collections::BTreeMap;

impl Manifest {
    fn error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        self.source.diagnostic(Some(&self.object.label()), field, message)
    }
}

/// Reads and validates the inputs: every problem of every file, or the input when there is none.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Input, Report> {
    let (docs, errors) = std::thread::scope(|s| {
        // Deriving the kinds' schemas (once per process) takes as long as parsing a few hundred
        // documents: it runs beside the reading.
        s.spawn(|| schema::of_kind(crate::model::Kind::ConversationApp));
        crate::load::read_inputs(paths)
    });
    validate(docs, errors)
}

/// Classifies, schema-checks and cross-checks the documents, after `errors` the loader found.
/// Every problem is reported; the input is returned only when there is none.
pub fn validate(docs: Vec<Document>, errors: Vec<Diagnostic>) -> Result<Input, Report> {
    let (input, errors) = parse(docs, errors);
    check(input, errors)
}

/// The documents as typed objects and Secrets: each classified, checked against its kind's
/// schema (the CRD's) and read; with every problem met on the way.
fn parse(mut docs: Vec<Document>, mut errors: Vec<Diagnostic>) -> (Input, Vec<Diagnostic>) {
    // Each document is read on its own: a large input is read in two halves, one per core.
    let read: Vec<Read> = if docs.len() < PARALLEL_ABOVE_DOCUMENTS {
        docs.into_iter().map(read).collect()
    } else {
        let second = docs.split_off(docs.len() / 2);
        std::thread::scope(|s| {
            let second = s.spawn(|| second.into_iter().map(read).collect::<Vec<_>>());
            let mut read: Vec<Read> = docs.into_iter().map(read).collect();
            read.extend(second.join().expect("reading a document does not panic"));
            read
        })
    };
    let mut input = Input::default();
    for r in read {
        match r {
            Read::Object(m) => input.manifests.push(*m),
            Read::Secret(doc) => {
                if let Err(e) = add_secret(&doc, &mut input.secrets) {
                    errors.push(e);
                }
            }
            Read::Other => {}
            Read::Invalid(mut e) => errors.append(&mut e),
        }
    }
    let any_document_failed = !errors.is_empty();
    if input.manifests.is_empty() && !any_document_failed {
        errors.push(Diagnostic::new(format!("no {API_VERSION} objects found in the input")));
    }
    (input, errors)
}

/// The CRD schema's rules on objects already read: the API server checked them when they were
/// written, but an object stored before a bound was added (or under older CRDs) was not.
pub fn schema_errors(manifests: &[Manifest]) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for m in manifests {
        let mut violations = Vec::new();
        let schema = schema::of_kind(m.object.kind());
        schema::check(
            &schema["properties"]["spec"],
            &m.object.spec_value(),
            "spec",
            &mut violations,
        );
        errors.extend(violations.into_iter().map(|(path, msg)| m.error(&path, msg)));
    }
    errors
}

/// The typed rules on objects already read (their fields, and checks across them), after the
/// `errors` met reading them: the input, or every problem. The controller asks this after
/// [`schema_errors`]: its objects were read by the watches, not parsed again.
pub fn check(input: Input, mut errors: Vec<Diagnostic>) -> Result<Input, Report> {
    errors.extend(cross::cross_check(&input));
    if errors.is_empty() {
        return Ok(input);
    }
    sort_in_reading_order(&mut errors);
    Err(Report(errors))
}

/// In reading order: files as given, then document and line within each.
fn sort_in_reading_order(errors: &mut [Diagnostic]) {
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

/// Below this many documents, one thread reads them all: a thread costs more than it saves.
const PARALLEL_ABOVE_DOCUMENTS: usize = 200;

/// One document, read.
enum Read {
    Object(Box<Manifest>),
    Secret(Document),
    /// Another tool's object (a ConfigMap, a Deployment): not ours to judge.
    Other,
    Invalid(Vec<Diagnostic>),
}

fn read(doc: Document) -> Read {
    match classify(&doc) {
        Ok(Some(kind)) => match parse_object(kind, schema::of_kind(kind), &doc) {
            Ok(object) => Read::Object(Box::new(Manifest {
                source: doc.source,
                object,
            })),
            Err(e) => Read::Invalid(e),
        },
        Ok(None) if is_secret(&doc.value) => Read::Secret(doc),
        Ok(None) => Read::Other,
        Err(e) => Read::Invalid(vec![e]),
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
    check_metadata(map.get("metadata"), &err, &mut errors);
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

/// `metadata`: a stable, valid name and, when given, a valid namespace.
fn check_metadata(metadata: Option<&Value>, err: &impl Fn(&str, String) -> Diagnostic, errors: &mut Vec<Diagnostic>) {
    match metadata {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MAX_MESSAGE_BYTES, MAX_MESSAGE_DEPTH};

    /// The errors of a Template whose one translation has `message` as its `field`.
    fn message_errors(field: &str, message: Value) -> Vec<String> {
        let template = serde_json::json!({
            "apiVersion": API_VERSION, "kind": "Template", "metadata": {"name": "t"},
            "spec": {"defaultTranslation": "en", "translations": [
                {"languageCode": "en", "version": "1", field: message}
            ]}
        });
        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        crate::load::parse_bytes("t.yaml", template.to_string().as_bytes(), &mut docs, &mut errors);
        match validate(docs, errors) {
            Ok(_) => Vec::new(),
            Err(report) => report.0.iter().map(|d| d.message.clone()).collect(),
        }
    }

    /// A free-form message may nest exactly `MAX_MESSAGE_DEPTH` levels (the message object is
    /// the first) and be exactly `MAX_MESSAGE_BYTES` long as JSON; one more of either is refused.
    #[test]
    fn free_form_messages_are_bounded_in_depth_and_size() {
        let nested = |levels: usize| (0..levels).fold(serde_json::json!("x"), |v, _| serde_json::json!({"a": v}));
        assert_eq!(
            message_errors("cardMessage", nested(MAX_MESSAGE_DEPTH)),
            Vec::<String>::new()
        );
        assert_eq!(
            message_errors("cardMessage", nested(MAX_MESSAGE_DEPTH + 1)),
            ["nests 33 levels deep; at most 32 levels are allowed"]
        );
        let overhead = r#"{"title":""}"#.len();
        let sized = |bytes: usize| serde_json::json!({"title": "x".repeat(bytes - overhead)});
        assert_eq!(
            message_errors("cardMessage", sized(MAX_MESSAGE_BYTES)),
            Vec::<String>::new()
        );
        assert_eq!(
            message_errors("cardMessage", sized(MAX_MESSAGE_BYTES + 1)),
            ["is 65537 bytes as JSON; at most 65536 bytes (64 KiB) are allowed"]
        );
    }

    /// The typed messages' strings are bounded by the CRD schema, at the same figure.
    #[test]
    fn typed_message_text_is_bounded_by_the_schema() {
        let text = |n: usize| serde_json::json!({"text": "é".repeat(n)});
        assert_eq!(
            message_errors("textMessage", text(MAX_MESSAGE_BYTES)),
            Vec::<String>::new()
        );
        assert_eq!(
            message_errors("textMessage", text(MAX_MESSAGE_BYTES + 1)),
            ["must be at most 65536 characters long, got 65537"]
        );
    }

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
        // Each object's source keeps the file's text (for the lines of errors): not its values.
        let whole = format!("{input:?}");
        assert!(!whole.contains("canary"), "{whole}");
        assert!(
            debug.contains("messaging/creds") && debug.contains("\"token\""),
            "{debug}"
        );
    }
}
