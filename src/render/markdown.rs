//! The plan as a pull-request comment: a summary table, then one collapsible section per changed
//! object holding a `diff` block. Kept under the 65,536 characters a GitHub comment may hold:
//! sections that do not fit are left out with a note saying so.

use super::{field_lines, headline, marker, summary_line};
use crate::engine::plan::{Action, Plan};
use std::fmt::Write;

/// Room left for the note on what was cut, under GitHub's 65,536.
pub const LIMIT: usize = 65_000;

/// The heading a CI job finds its previous comment by.
pub const HEADING: &str = "### sinch-operator plan";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A code fence longer than any run of backticks in `body`, so no value can close it.
fn fence(body: &str) -> String {
    let mut longest = 0usize;
    let mut run = 0usize;
    for c in body.chars() {
        run = if c == '`' { run.saturating_add(1) } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.saturating_add(1).max(3))
}

pub fn render(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{HEADING}\n");
    let _ = writeln!(out, "| create | update | delete | unchanged | errors |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        s.create,
        s.update,
        s.delete,
        s.unchanged,
        plan.errors.len()
    );
    let mut tail = String::new();
    if !plan.errors.is_empty() {
        let _ = writeln!(tail, "**Errors** (nothing is sent for these objects):\n");
        for e in &plan.errors {
            let _ = writeln!(tail, "- {}", escape(&e.to_string()));
        }
        tail.push('\n');
    }
    if !plan.has_changes() && plan.errors.is_empty() {
        let _ = writeln!(tail, "No changes. Sinch matches the manifests.");
    } else {
        let _ = writeln!(tail, "Plan: {}.", summary_line(s));
    }
    let changed: Vec<_> = plan.changes.iter().filter(|c| c.action != Action::Noop).collect();
    for (n, c) in changed.iter().enumerate() {
        let mut body = String::new();
        if let Some(r) = &c.request {
            let _ = writeln!(body, "  {}", r.describe());
        }
        for f in &c.fields {
            for (sign, line) in field_lines(f) {
                let _ = writeln!(body, "{sign} {line}");
            }
        }
        for note in &c.notes {
            let _ = writeln!(body, "# {note}");
        }
        let fence = fence(&body);
        let section = format!(
            "<details><summary><code>{}</code> {}</summary>\n\n{fence}diff\n{body}{fence}\n\n</details>\n\n",
            marker(c.action),
            escape(&headline(c)),
        );
        let note_room = 200;
        let needed = [section.len(), tail.len(), note_room]
            .into_iter()
            .fold(out.len(), usize::saturating_add);
        if needed > LIMIT {
            let left = changed.len().saturating_sub(n);
            let _ = writeln!(
                out,
                "_{left} more changed object{} not shown: the plan is larger than a comment can hold. Run `sinch-operator plan` to see all of it._\n",
                if left == 1 { "" } else { "s" }
            );
            break;
        }
        out.push_str(&section);
    }
    out.push_str(&tail);
    out
}
