//! The plan for a terminal: one block per change with its `+ ~ - =` marker, the request it sends
//! and each field before and after, then the errors and a summary line.

use super::{field_lines, headline, marker, summary_line, value};
use crate::engine::diff::FieldChange;
use crate::engine::plan::{Action, Change, Plan};
use std::fmt::Write;

/// ANSI colours, or none (`NO_COLOR`, not a terminal).
#[derive(Clone, Copy, Debug)]
pub struct Paint(pub bool);

impl Paint {
    fn paint(self, code: &str, text: &str) -> String {
        match self.0 {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_string(),
        }
    }

    fn sign(self, sign: char, text: &str) -> String {
        match sign {
            '+' => self.paint("32", text),
            '-' => self.paint("31", text),
            '~' => self.paint("33", text),
            _ => text.to_string(),
        }
    }
}

/// One field as the text plan shows it: a value replaced on one line reads best as
/// `~ path: before -> after`, anything else as the lines of [`field_lines`].
fn field_block(f: &FieldChange) -> Vec<(char, String)> {
    let lines = field_lines(f);
    match (&f.before, &f.after) {
        (Some(b), Some(a)) if lines.len() == 2 => {
            vec![('~', format!("{}: {} -> {}", f.path, value(b), value(a)))]
        }
        _ => lines,
    }
}

/// What changed in Sinch, field by field, as the text plan shows it (secrets only as changed),
/// cut to whole lines within `limit` bytes: the drift report of a condition or an event.
pub fn drift_report(change: &Change, limit: usize) -> String {
    let lines: Vec<String> = change
        .fields
        .iter()
        .flat_map(field_block)
        // Sinch holds `-` (before), the spec `+` (after): the report reads "Sinch has, spec wants".
        .map(|(sign, line)| format!("{sign} {line}"))
        .collect();
    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        let left = lines.len().saturating_sub(n);
        let more = format!("... and {left} more line(s)");
        let room = if left == 1 { 0 } else { more.len().saturating_add(1) };
        if [line.len(), 1, room].into_iter().fold(out.len(), usize::saturating_add) > limit {
            out.push_str(&more);
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

pub fn render(plan: &Plan, paint: Paint) -> String {
    let mut out = String::new();
    let changed: Vec<_> = plan.changes.iter().filter(|c| c.action != Action::Noop).collect();
    for c in &changed {
        let mark = marker(c.action);
        let _ = writeln!(out, "{}", paint.sign(mark, &format!("{mark} {}", headline(c))));
        if let Some(r) = &c.request {
            let _ = writeln!(out, "    {}", paint.paint("2", &r.describe()));
        }
        for f in &c.fields {
            for (sign, line) in field_block(f) {
                let _ = writeln!(out, "    {}", paint.sign(sign, &format!("{sign} {line}")));
            }
        }
        for note in &c.notes {
            let _ = writeln!(out, "    {}", paint.paint("2", &format!("# {note}")));
        }
        out.push('\n');
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            paint.paint("1;31", &format!("{} object(s) cannot be planned:", plan.errors.len()))
        );
        for e in &plan.errors {
            let _ = writeln!(out, "  {} {e}", paint.paint("31", "error:"));
        }
        out.push('\n');
    }
    let unchanged: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Noop && !c.notes.is_empty())
        .collect();
    for c in unchanged {
        let _ = writeln!(out, "= {} is up to date", c.label());
        for note in &c.notes {
            let _ = writeln!(out, "    {}", paint.paint("2", &format!("# {note}")));
        }
    }
    match changed.is_empty() && plan.errors.is_empty() {
        true => {
            let _ = writeln!(
                out,
                "No changes. Sinch matches the manifests ({} object{}).",
                plan.changes.len(),
                if plan.changes.len() == 1 { "" } else { "s" }
            );
        }
        false => {
            let _ = writeln!(
                out,
                "{}",
                paint.paint("1", &format!("Plan: {}.", summary_line(&plan.summary)))
            );
        }
    }
    out
}
