//! Showing a plan: `text` for a terminal (Terraform-like), `markdown` for a pull-request comment,
//! `json` for machines. All three read the same [`Plan`] data and nothing else; secrets in it are
//! placeholders already.

pub mod markdown;
pub mod text;

use crate::engine::diff::FieldChange;
use crate::engine::plan::{Action, Change, Plan, Summary};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// The plan as `--out` saves it for `apply PLANFILE`: all of it, fingerprints included.
pub fn saved(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).expect("a plan always serialises");
    out.push('\n');
    out
}

/// The plan for machines: without what only `apply PLANFILE` needs (the saved plan's nonce,
/// the fingerprints of live objects and secret values). A fingerprint next to what keys it
/// would let a reader of CI logs test guesses of a secret offline.
pub fn json(plan: &Plan) -> String {
    let mut shown = serde_json::to_value(plan).expect("a plan always serialises");
    if let Some(plan) = shown.as_object_mut() {
        plan.remove("saved");
    }
    for change in shown["changes"].as_array_mut().into_iter().flatten() {
        if let Some(change) = change.as_object_mut() {
            change.remove("observed");
            change.remove("rekeyed");
        }
        for slot in change["secrets"].as_array_mut().into_iter().flatten() {
            if let Some(slot) = slot.as_object_mut() {
                slot.remove("fingerprint");
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&shown).expect("JSON values always serialise");
    out.push('\n');
    out
}

/// `2 to create, 1 to update, 0 to delete, 3 unchanged`.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "{} to create, {} to update, {} to delete, {} unchanged",
        s.create, s.update, s.delete, s.unchanged
    )
}

/// The marker of an action: `+ ~ - =`.
pub fn marker(action: Action) -> char {
    match action {
        Action::Create => '+',
        Action::Update => '~',
        Action::Delete => '-',
        Action::Noop => '=',
    }
}

/// `ConversationApp messaging/support-us (01H...) will be updated in project p, region us`.
pub fn headline(c: &Change) -> String {
    let id = c.id.as_ref().map(|id| format!(" ({id})")).unwrap_or_default();
    let verb = match c.action {
        Action::Create => "will be created",
        Action::Update => "will be updated",
        Action::Delete => "will be deleted",
        Action::Noop => "is up to date",
    };
    format!("{}{id} {verb} in project {}, region {}", c.label(), c.project, c.region)
}

/// A value on one line: strings quoted, structures as compact JSON.
pub fn value(v: &Value) -> String {
    printable(&serde_json::to_string(v).expect("JSON values always serialise"))
}

/// `text` with every character that could repaint a terminal or reorder what a reviewer sees
/// (control characters, bidirectional overrides) written as a `\uXXXX` escape: values come from
/// manifests and from Sinch, and a plan must show what they are.
pub fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match hidden(c) {
            true => format!("\\u{:04x}", c as u32),
            false => c.to_string(),
        })
        .collect()
}

/// One field as lines of a diff: (`+`, `-`, `~` or ` `, text); a changed secret is one `~` line. A string that spans lines becomes a
/// unified diff of its lines; anything else a `-` line with the old value and a `+` with the new.
pub fn field_lines(f: &FieldChange) -> Vec<(char, String)> {
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
    let (before, after) = (text(&f.before), text(&f.after));
    let multiline = |s: &Option<String>| s.as_ref().is_some_and(|s| s.contains('\n'));
    if multiline(&before) || multiline(&after) {
        let (b, a) = (before.unwrap_or_default(), after.unwrap_or_default());
        let diff = similar::TextDiff::from_lines(&b, &a);
        let mut lines = vec![(' ', format!("{}:", f.path))];
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            lines.push((
                sign,
                format!("    {}", printable(change.value().trim_end_matches('\n'))),
            ));
        }
        return lines;
    }
    let sensitive = Some(Value::String(crate::engine::diff::SENSITIVE.into()));
    if f.before == sensitive && f.after == sensitive {
        return vec![('~', format!("{}: (sensitive value changes)", f.path))];
    }
    let mut lines = Vec::new();
    for (sign, v) in [('-', &f.before), ('+', &f.after)] {
        if let Some(v) = v {
            lines.extend(value_lines(&f.path, v).into_iter().map(|l| (sign, l)));
        }
    }
    lines
}

/// Longest `path: value` kept on one line; a longer structure becomes an indented block.
const LINE: usize = 72;

/// `path: value` on one line, or, for an object or a list too long for one, `path:` followed by
/// the value as indented YAML.
fn value_lines(path: &str, v: &Value) -> Vec<String> {
    let one = format!("{path}: {}", value(v));
    let nested = matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty());
    if !nested || one.chars().count() <= LINE {
        return vec![one];
    }
    let yaml = serde_yaml::to_string(v).expect("JSON values always serialise");
    std::iter::once(format!("{path}:"))
        .chain(yaml.lines().map(|l| format!("    {}", printable(l))))
        .collect()
}
