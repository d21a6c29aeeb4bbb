//! The plan for a terminal: one block per change with its `+ ~ - =` marker, the request it sends
//! and each field before and after, then the errors and a summary line.

use super::{field_lines, headline, marker, summary_line, value};
use crate::engine::plan::{Action, Plan};
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
            let lines = field_lines(f);
            match (&f.before, &f.after) {
                // A value replaced on one line reads best as `~ path: before -> after`.
                (Some(b), Some(a)) if lines.len() == 2 => {
                    let line = format!("~ {}: {} -> {}", f.path, value(b), value(a));
                    let _ = writeln!(out, "    {}", paint.sign('~', &line));
                }
                _ => {
                    for (sign, line) in lines {
                        let _ = writeln!(out, "    {}", paint.sign(sign, &format!("{sign} {line}")));
                    }
                }
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
