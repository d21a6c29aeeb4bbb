//! Writing an object's JSON fields: what a create keeps, what a PATCH writes (update masks
//! included) and must leave set, and the server's defaults laid under what is stored.

use super::{Object, Result, SimError, new_id};
use crate::sim::rules::Violation;
use serde_json::{Value, json};

/// A created object: the writable fields of `body` and a new id.
pub(super) fn new_object(body: Object, writable: &[&str]) -> (String, Object) {
    let id = new_id();
    let mut object: Object = body
        .into_iter()
        .filter(|(k, v)| writable.contains(&k.as_str()) && !v.is_null())
        .collect();
    object.insert("id".into(), json!(id));
    (id, object)
}

/// Required top-level fields still set after a PATCH (a mask naming one absent from the body
/// clears it).
pub(super) fn still_required(object: &Object, fields: &[&str]) -> Vec<Violation> {
    fields
        .iter()
        .filter(|f| object.get(**f).is_none_or(|v| v.is_null() || v == ""))
        .map(|f| Violation {
            field: f.to_string(),
            description: "required".into(),
        })
        .collect()
}

/// PATCH. With a mask only the listed fields are written, and a listed field absent from the
/// body is cleared; without one, every field in the body is written. A field written is
/// replaced whole, lists included.
pub(super) fn apply_update(
    stored: &mut Object,
    body: &Object,
    mask: Option<Vec<String>>,
    writable: &[&str],
) -> Result<()> {
    let Some(paths) = mask.filter(|m| !m.is_empty()) else {
        for (k, v) in body.iter().filter(|(k, _)| writable.contains(&k.as_str())) {
            stored.insert(k.clone(), v.clone());
        }
        return Ok(());
    };
    for path in paths {
        let mut parts = path.split('.');
        let top = parts.next().unwrap_or_default();
        if !writable.contains(&top) {
            return Err(SimError::invalid(format!(
                "update_mask: {path:?} is not a field that can be updated"
            )));
        }
        let rest: Vec<&str> = parts.collect();
        set_path(stored, top, &rest, lookup(body, top, &rest));
    }
    Ok(())
}

fn lookup<'a>(body: &'a Object, top: &str, rest: &[&str]) -> Option<&'a Value> {
    rest.iter().try_fold(body.get(top)?, |v, k| v.get(k))
}

fn set_path(stored: &mut Object, top: &str, rest: &[&str], value: Option<&Value>) {
    match rest.split_first() {
        None => match value {
            Some(v) => {
                stored.insert(top.to_string(), v.clone());
            }
            None => {
                stored.remove(top);
            }
        },
        Some((next, rest)) => {
            let child = stored.entry(top).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            set_path(child.as_object_mut().expect("made an object above"), next, rest, value);
        }
    }
}

/// Merges `over` into `under`, objects field by field, anything else replaced.
pub(super) fn overlay(under: &mut Value, over: &Value) {
    match (under, over) {
        (Value::Object(u), Value::Object(o)) => {
            for (k, v) in o {
                match u.get_mut(k) {
                    Some(slot) if !v.is_null() => overlay(slot, v),
                    Some(_) => {}
                    None => {
                        u.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (u, o) => *u = o.clone(),
    }
}
