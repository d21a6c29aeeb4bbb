//! Checks a document against the OpenAPI schema of its CRD: the very schema `crds/` installs, so
//! the CLI refuses exactly what the API server would (and reports every violation, with its path).

use crate::diagnostic::{child, item};
use serde_json::Value;

/// One violation: the field path and what is wrong with it.
pub type Violation = (String, String);

/// The OpenAPI schema (`openAPIV3Schema`) of a kind's CRD, as JSON. Deriving it (schemars, then
/// kube's structural rewrite) costs milliseconds, once per process: the controller validates
/// each object on every reconcile, and deriving it each time was 80% of its CPU at 1,000 apps.
pub fn of_kind(kind: crate::model::Kind) -> &'static Value {
    static SCHEMAS: std::sync::OnceLock<std::collections::HashMap<crate::model::Kind, Value>> =
        std::sync::OnceLock::new();
    &SCHEMAS.get_or_init(|| crate::model::Kind::ALL.into_iter().map(|k| (k, derive(k))).collect())[&kind]
}

fn derive(kind: crate::model::Kind) -> Value {
    let crd = kind.crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("derived CRDs carry a schema");
    serde_json::to_value(schema).expect("a schema serialises")
}

/// Every violation of `schema` by `value` at `path`: nullability, `type` and `enum` here, then
/// the keywords of the value's own JSON type.
pub fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            out.push((path.to_string(), format!("must be {}, got null", expected(schema))));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            out.push((
                path.to_string(),
                format!("must be {}, got {}", expected(schema), describe(value)),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed
            .iter()
            .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
            .collect();
        out.push((
            path.to_string(),
            format!("must be one of {}, got {}", list.join(", "), describe(value)),
        ));
    }
    match value {
        Value::Object(map) => check_object(schema, map, path, out),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::String(s) => check_string(schema, s, path, out),
        Value::Number(n) => check_number(schema, n, path, out),
        _ => {}
    }
}

/// `minItems`, `maxItems`, and each item against `items`.
fn check_array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<Violation>) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        out.push((
            path.to_string(),
            format!("must have at least {min} item{}", plural(min)),
        ));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        out.push((
            path.to_string(),
            format!("must have at most {max} item{}, got {}", plural(max), items.len()),
        ));
    }
    if let Some(items_schema) = schema.get("items") {
        for (i, v) in items.iter().enumerate() {
            check(items_schema, v, &item(path, i), out);
        }
    }
}

/// `minLength` and `maxLength`, in characters.
fn check_string(schema: &Value, s: &str, path: &str, out: &mut Vec<Violation>) {
    let n = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && n < min
    {
        let msg = if min == 1 {
            "must not be empty".to_string()
        } else {
            format!("must be at least {min} characters long")
        };
        out.push((path.to_string(), msg));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && n > max
    {
        out.push((
            path.to_string(),
            format!("must be at most {max} characters long, got {n}"),
        ));
    }
}

/// `minimum` and `maximum`, reported as one range.
fn check_number(schema: &Value, n: &serde_json::Number, path: &str, out: &mut Vec<Violation>) {
    let x = n.as_f64().unwrap_or(0.0);
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
        let range = match (min, max) {
            (Some(a), Some(b)) => format!("between {a} and {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => unreachable!(),
        };
        out.push((path.to_string(), format!("must be {range}, got {n}")));
    }
}

fn check_object(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|v| v.is_object());
    for (key, v) in map {
        let p = child(path, key);
        match (properties.and_then(|props| props.get(key)), additional) {
            (Some(s), _) => check(s, v, &p, out),
            (None, Some(s)) => check(s, v, &p, out),
            (None, None) if properties.is_some() => {
                let known: Vec<&str> = properties
                    .into_iter()
                    .flat_map(|p| p.keys().map(String::as_str))
                    .collect();
                out.push((p, unknown_field(key, &known)));
            }
            (None, None) => {}
        }
    }
    for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(key) = req.as_str()
            && !map.contains_key(key)
        {
            out.push((child(path, key), "is required".to_string()));
        }
    }
    // `oneOf: [{required: [a]}, {required: [b]}, ...]` is how an enum flattened into a struct
    // says "exactly one of a, b, ...".
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let names: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("required")?.as_array()?.first()?.as_str())
            .collect();
        let present: Vec<&str> = names.iter().copied().filter(|n| map.contains_key(*n)).collect();
        if present.len() != 1 {
            let found = match present.as_slice() {
                [] => "none is".to_string(),
                many => format!("{} are", many.join(" and ")),
            };
            out.push((
                path.to_string(),
                format!("exactly one of {} must be set; {found}", names.join(", ")),
            ));
        }
    }
}

fn unknown_field(key: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, k)) => format!("unknown field (did you mean \"{k}\"?)"),
        None => format!("unknown field; expected one of {}", known.join(", ")),
    }
}

fn expected(schema: &Value) -> &'static str {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => "an object",
        Some("array") => "a list",
        Some("string") => "a string",
        Some("integer") => "an integer",
        Some("number") => "a number",
        Some("boolean") => "true or false",
        _ => "a value",
    }
}

/// A value as a person sees it in a message: its type, and itself when short.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) if s.chars().count() <= 60 => format!("{s:?}"),
        Value::String(_) => "a long string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
