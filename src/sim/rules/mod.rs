//! What the API refuses in a request body, one function per request type, each returning every
//! violation it finds (the 400 lists them all as `google.rpc.BadRequest` field violations).
//!
//! Bodies are checked against small schemas written from the fact sheet and the OpenAPI specs
//! (`required`, enums, ranges, lengths, types; unknown fields are refused at every level, as a
//! gRPC gateway does), then against the rules a schema cannot say (exactly one credential object,
//! a credential for its channel, unique ordinals, the default translation among the
//! translations). Rules that need other objects (the app of a webhook, unique targets, five
//! webhooks per app, template ids and versions) are the store's.
//!
//! This module holds the schema machinery (`Ty`, `Field`, `Check`); each request type's table
//! and the rules beyond it live in the submodule named for the resource.

mod apps;
mod settings;
mod templates;
mod webhooks;

pub use apps::{create_app, update_app};
pub use settings::settings;
pub use templates::{create_template, replace_template};
pub use webhooks::{create_webhook, update_webhook};

use serde_json::{Map, Value};
use std::fmt;

type Object = Map<String, Value>;

/// One refused field: `field` is its path in the body (`channel_credentials[0].channel`).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

const UNKNOWN: &str = "unknown field";

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description == UNKNOWN {
            true => write!(f, "{UNKNOWN} {:?}", self.field),
            false => write!(f, "{}: {}", self.field, self.description),
        }
    }
}

/// The type of a field's value.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// A string of at most this many characters.
    Len(usize),
    Bool,
    Num,
    /// An integer (or, as proto JSON allows, a string holding one) from min to max.
    Int(i64, i64),
    /// As `Int`, but 0 (what GET shows when it is not set) is accepted too.
    IntOr0(i64, i64),
    Enum(&'static [&'static str]),
    /// An object with exactly these fields.
    Obj(&'static [Field]),
    /// An object with these fields and possibly others (message bodies, kept free-form).
    Open(&'static [Field]),
    List(&'static Ty),
    /// A list of at most this many items.
    Most(usize, &'static Ty),
    /// An object whose keys are data.
    Dict(&'static Ty),
    Any,
    /// Output-only: accepted back from a client and ignored.
    Output,
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

use Ty::*;

/// Collects violations while walking a body.
#[derive(Default)]
struct Check(Vec<Violation>);

impl Check {
    fn bad(&mut self, field: &str, description: impl fmt::Display) {
        self.0.push(Violation {
            field: field.to_string(),
            description: description.to_string(),
        });
    }

    /// `obj` against `fields`; `also` names fields required here though optional in the schema.
    fn object(&mut self, path: &str, obj: &Object, fields: &[Field], open: bool, also: &[&str]) {
        for key in obj
            .keys()
            .filter(|k| !open && !fields.iter().any(|f| f.name == k.as_str()))
        {
            self.bad(&join(path, key), UNKNOWN);
        }
        for f in fields {
            let at = join(path, f.name);
            match obj.get(f.name) {
                None | Some(Value::Null) if f.required || also.contains(&f.name) => self.bad(&at, "required"),
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() && (f.required || also.contains(&f.name)) => {
                    self.bad(&at, "required")
                }
                Some(v) => self.value(&at, v, f.ty),
            }
        }
    }

    fn value(&mut self, at: &str, v: &Value, ty: Ty) {
        match ty {
            Str if !v.is_string() => self.bad(at, format!("{v} must be a string")),
            Len(_) if !v.is_string() => self.bad(at, format!("{v} must be a string")),
            Len(n) if v.as_str().is_some_and(|s| s.chars().count() > n) => {
                self.bad(at, format!("longer than {n} characters"))
            }
            Bool if !v.is_boolean() => self.bad(at, format!("{v} must be true or false")),
            Num if !v.is_number() => self.bad(at, format!("{v} must be a number")),
            Int(min, max) | IntOr0(min, max) => match integer(v) {
                Some(0) if matches!(ty, IntOr0(..)) => {}
                Some(n) if (min..=max).contains(&n) => {}
                _ => self.bad(at, format!("{v} is out of range {min} to {max}")),
            },
            Enum(allowed) if !v.as_str().is_some_and(|s| allowed.contains(&s)) => {
                self.bad(at, format!("{v} is not one of {}", allowed.join(", ")))
            }
            Obj(fields) | Open(fields) => match v.as_object() {
                Some(o) => self.object(at, o, fields, matches!(ty, Open(_)), &[]),
                None => self.bad(at, "must be an object"),
            },
            List(item) | Most(_, item) => match v.as_array() {
                Some(items) => {
                    if let Most(most, _) = ty
                        && items.len() > most
                    {
                        self.bad(at, format!("holds {} items; at most {most} are allowed", items.len()));
                    }
                    for (i, v) in items.iter().enumerate() {
                        self.value(&format!("{at}[{i}]"), v, *item);
                    }
                }
                None => self.bad(at, "must be a list"),
            },
            Dict(item) => match v.as_object() {
                Some(o) => o.iter().for_each(|(k, v)| self.value(&join(at, k), v, *item)),
                None => self.bad(at, "must be an object"),
            },
            _ => {}
        }
    }

    fn done(self) -> Vec<Violation> {
        self.0
    }
}

fn join(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_string(),
        false => format!("{path}.{key}"),
    }
}

fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn items<'a>(obj: &'a Object, field: &str) -> impl Iterator<Item = (usize, &'a Object)> {
    let list = obj
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().enumerate().filter_map(|(i, v)| Some((i, v.as_object()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Vec<Violation>) -> Vec<String> {
        v.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn every_violation_is_reported_not_only_the_first() {
        let body = json!({
            "channel_credentials": [{"channel": "FAX", "static_bearer": {"token": 1}, "extra": true}],
            "processing_mode": "BATCH",
        });
        assert_eq!(
            fields(create_app(body.as_object().unwrap())),
            [
                "display_name",
                "channel_credentials[0].extra",
                "channel_credentials[0].channel",
                "channel_credentials[0].static_bearer.claimed_identity",
                "channel_credentials[0].static_bearer.token",
                "processing_mode",
            ]
        );
    }
}
