//! The plan as a value: rendered for people (Terraform's vocabulary), as JSON for CI,
//! and saved to a file that `apply` runs later.

use crate::aws::read::KeyHints;
use crate::diff::{Action, Change, Conflict, Diff, KeyStatus};
use crate::keys::KeyReport;
use crate::model::Address;
use crate::ops::Step;
use crate::spec::AccountSpec;
use serde::{Deserialize, Serialize};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Bumped when the saved-plan format changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    /// Account aliases and IDs the plan was made against.
    pub accounts: Vec<(String, String)>,
    /// How to reach each account (profiles and role ARNs, never credentials).
    pub account_specs: BTreeMap<String, AccountSpec>,
    /// The declared resources: with the stack's owned ones, what the fingerprint covers.
    pub declared: Vec<Address>,
    /// Which users' access keys were read (the fingerprint covers them).
    #[serde(default)]
    pub key_hints: BTreeMap<String, KeyHints>,
    /// Hash of the live resources the plan was computed from.
    pub live_fingerprint: String,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_status: Vec<KeyStatus>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn new(
        stack: String,
        accounts: Vec<(String, String)>,
        live_fingerprint: String,
        diff: Diff,
    ) -> Self {
        Plan {
            format_version: FORMAT_VERSION,
            stack,
            accounts,
            account_specs: BTreeMap::new(),
            declared: vec![],
            key_hints: BTreeMap::new(),
            live_fingerprint,
            changes: diff.changes,
            conflicts: diff.conflicts,
            steps: diff.steps,
            key_status: diff.key_status,
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update | Action::Adopt => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty() || !self.changes.is_empty()
    }
}

/// ANSI colours, on only for a terminal and never with NO_COLOR.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// For output on stdout.
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self::for_terminal(std::io::stdout().is_terminal())
    }
    /// For output on stderr.
    pub fn detect_stderr() -> Self {
        use std::io::IsTerminal;
        Self::for_terminal(std::io::stderr().is_terminal())
    }
    fn for_terminal(terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: terminal && !no_color,
        }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

fn symbol(action: Action, st: Style) -> String {
    match action {
        Action::Create => st.green("+"),
        Action::Update | Action::Adopt => st.yellow("~"),
        Action::Delete => st.red("-"),
        Action::Replace => format!("{}/{}", st.red("-"), st.green("+")),
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Adopt => "will be adopted into this stack (and updated in place)",
        Action::Delete => "will be destroyed",
        Action::Replace => "must be replaced",
    }
}

/// The plan as a person reads it.
pub fn render(plan: &Plan, st: Style) -> String {
    let mut out = String::new();
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            st.red(&st.bold("Conflicts: these resources exist but are not this stack's:"))
        );
        for c in &plan.conflicts {
            let _ = writeln!(out, "  {} {}: {}", st.red("!"), c.address, c.message);
        }
        let _ = writeln!(out);
    }
    if plan.changes.is_empty() {
        if plan.conflicts.is_empty() {
            let _ = writeln!(
                out,
                "No changes. Live IAM matches the plan for stack \"{}\".",
                plan.stack
            );
        }
        render_key_status(&mut out, plan, st);
        return out;
    }
    let _ = writeln!(
        out,
        "iamplan will perform the following actions in stack \"{}\":\n",
        plan.stack
    );
    for c in &plan.changes {
        render_change(&mut out, c, st);
    }
    let s = plan.summary();
    let _ = writeln!(
        out,
        "{} {} to add, {} to change, {} to destroy.",
        st.bold("Plan:"),
        s.add,
        s.change,
        s.destroy
    );
    render_key_status(&mut out, plan, st);
    out
}

fn render_key(out: &mut String, k: &KeyReport, st: Style) {
    let sink = if k.in_sink { ", in the sink" } else { "" };
    let _ = writeln!(
        out,
        "      {} access key {}: {}, {} days old, last used {}{sink}\n          -> {}",
        st.yellow("*"),
        k.id,
        k.status,
        k.age_days,
        k.last_used,
        k.outlook
    );
}

/// Keys with nothing to do now, and what will happen to them next.
fn render_key_status(out: &mut String, plan: &Plan, st: Style) {
    if plan.key_status.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nAccess keys (nothing to do now):");
    for u in &plan.key_status {
        let _ = writeln!(out, "  {} \"{}\"", u.address.kind.label(), u.name);
        for k in &u.keys {
            render_key(out, k, st);
        }
    }
}

fn render_change(out: &mut String, c: &Change, st: Style) {
    let _ = writeln!(
        out,
        "  {}",
        st.bold(&format!("# {} {}", c.address, verb(c.action)))
    );
    let kind = c.address.kind.label();
    let _ = writeln!(out, "  {} {kind} \"{}\" {{", symbol(c.action, st), c.name);
    let width = c.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &c.attributes {
        let (sym, text) = match (&a.before, &a.after) {
            (None, Some(after)) => (st.green("+"), after.clone()),
            (Some(before), None) => (st.red("-"), format!("{before} -> null")),
            (Some(before), Some(after)) => (st.yellow("~"), format!("{before} -> {after}")),
            (None, None) => continue,
        };
        let forces = if a.forces_replacement {
            st.red(" # forces replacement")
        } else {
            String::new()
        };
        let _ = writeln!(out, "      {sym} {:width$} = {text}{forces}", a.name);
    }
    for k in &c.keys {
        render_key(out, k, st);
    }
    for d in &c.documents {
        let sym = match (&d.before, &d.after) {
            (None, _) => st.green("+"),
            (_, None) => st.red("-"),
            _ => st.yellow("~"),
        };
        let _ = writeln!(out, "      {sym} {} = ", d.label);
        render_document(out, d.before.as_deref(), d.after.as_deref(), st);
    }
    for n in &c.notes {
        let _ = writeln!(out, "      {} {n}", st.yellow("note:"));
    }
    let _ = writeln!(out, "    }}\n");
}

/// A unified diff of pretty-printed JSON (whole document when created or destroyed).
fn render_document(out: &mut String, before: Option<&str>, after: Option<&str>, st: Style) {
    let indent = "          ";
    match (before, after) {
        (None, Some(text)) => {
            for l in text.lines() {
                let _ = writeln!(out, "{indent}{}", st.green(&format!("+ {l}")));
            }
        }
        (Some(text), None) => {
            for l in text.lines() {
                let _ = writeln!(out, "{indent}{}", st.red(&format!("- {l}")));
            }
        }
        (Some(b), Some(a)) => {
            let diff = TextDiff::from_lines(b, a);
            for (i, group) in diff.grouped_ops(3).iter().enumerate() {
                if i > 0 {
                    let _ = writeln!(out, "{indent}  ...");
                }
                for op in group {
                    for ch in diff.iter_changes(op) {
                        let line = ch.as_str().unwrap_or("").trim_end_matches('\n');
                        let text = match ch.tag() {
                            ChangeTag::Delete => st.red(&format!("- {line}")),
                            ChangeTag::Insert => st.green(&format!("+ {line}")),
                            ChangeTag::Equal => format!("  {line}"),
                        };
                        let _ = writeln!(out, "{indent}{text}");
                    }
                }
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{AttrChange, DocChange};
    use crate::model::Kind;

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::new(
            "demo".into(),
            vec![],
            "0".into(),
            Diff {
                changes,
                ..Diff::default()
            },
        )
    }

    #[test]
    fn summary_counts_like_terraform() {
        let c = |action| Change {
            address: Address::new("default", Kind::Role, "r"),
            name: "r".into(),
            action,
            attributes: vec![],
            documents: vec![],
            notes: vec![],
            keys: vec![],
        };
        let p = plan(vec![
            c(Action::Create),
            c(Action::Replace),
            c(Action::Update),
            c(Action::Delete),
        ]);
        assert_eq!(
            p.summary(),
            Summary {
                add: 2,
                change: 1,
                destroy: 2
            }
        );
        let text = render(&p, Style { color: false });
        assert!(
            text.contains("Plan: 2 to add, 1 to change, 2 to destroy."),
            "{text}"
        );
        assert!(text.contains("  -/+ role \"r\" {"), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn documents_render_as_unified_json_diff() {
        let p = plan(vec![Change {
            address: Address::new("default", Kind::Role, "r"),
            name: "r".into(),
            action: Action::Update,
            attributes: vec![AttrChange {
                name: "max_session_duration".into(),
                before: Some("3600".into()),
                after: Some("7200".into()),
                forces_replacement: false,
            }],
            documents: vec![DocChange {
                label: "trust policy".into(),
                before: Some("{\n  \"a\": 1,\n  \"b\": 2\n}".into()),
                after: Some("{\n  \"a\": 1,\n  \"b\": 3\n}".into()),
            }],
            notes: vec![],
            keys: vec![],
        }]);
        let text = render(&p, Style { color: false });
        assert!(
            text.contains("~ max_session_duration = 3600 -> 7200"),
            "{text}"
        );
        assert!(text.contains("-   \"b\": 2"), "{text}");
        assert!(text.contains("+   \"b\": 3"), "{text}");
        assert!(text.contains("      \"a\": 1,"), "{text}");
        let colored = render(&p, Style { color: true });
        assert!(colored.contains("\x1b[31m-   \"b\": 2"));
    }

    #[test]
    fn no_changes_message() {
        let text = render(&plan(vec![]), Style { color: false });
        assert!(text.starts_with("No changes."), "{text}");
    }
}
