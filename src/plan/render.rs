//! The plan as a person reads it, in Terraform's vocabulary: symbols, attribute values,
//! policy documents as unified JSON diffs, a summary line.

use super::{Action, Change, Plan};
use crate::keys::KeyReport;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};
use std::fmt::Write;

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
        Action::NoOp => " ".into(),
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
        Action::NoOp => "is unchanged",
    }
}

/// The plan as a person reads it.
pub fn render(plan: &Plan, st: Style) -> String {
    let mut out = String::new();
    // Which account is read and written, before anything else: the first question when
    // several profiles and environment keys are about.
    for a in &plan.accounts {
        let _ = writeln!(out, "{}", st.bold(&a.to_string()));
    }
    if !plan.accounts.is_empty() {
        let _ = writeln!(out);
    }
    if let Some(n) = plan.deletes_whole_stack {
        let _ = writeln!(
            out,
            "{} this plan deletes every resource stack \"{}\" owns ({n}). A plan directory copied from another one keeps its [stack] name, which is what marks resources as this plan's: give the copy a name of its own. To delete them on purpose, apply with --allow-delete-all.\n",
            st.red(&st.bold("Warning:")),
            plan.stack
        );
    }
    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            st.red(&st.bold("Conflicts: nothing is applied until these are resolved:"))
        );
        for c in &plan.conflicts {
            let label = super::resource_label(&c.address, &c.name);
            let _ = writeln!(out, "  {} {label}: {}", st.red("!"), c.message);
        }
        let _ = writeln!(out);
    }
    if !plan.has_changes() {
        if plan.conflicts.is_empty() {
            let _ = writeln!(
                out,
                "No changes. Live IAM matches the plan for stack \"{}\".",
                plan.stack
            );
        }
        render_key_status(&mut out, plan, st);
        render_output_changes(&mut out, plan, st);
        return out;
    }
    let _ = writeln!(
        out,
        "iamplan will perform the following actions in stack \"{}\":\n",
        plan.stack
    );
    for c in plan.changes() {
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
    render_output_changes(&mut out, plan, st);
    out
}

/// An output's value as Terraform shows it.
fn output_text(value: &Option<String>, sensitive: bool) -> String {
    match value {
        _ if sensitive => "(sensitive value)".into(),
        Some(v) => Value::from(v.as_str()).to_string(),
        None => "(known after apply)".into(),
    }
}

/// Outputs that apply will give a new value.
fn render_output_changes(out: &mut String, plan: &Plan, st: Style) {
    let changed: Vec<&crate::output::OutputValue> = plan
        .outputs
        .iter()
        .filter(|o| o.before.is_none() || o.before != o.value)
        .collect();
    if changed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nChanges to Outputs:");
    let width = changed.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in changed {
        let after = output_text(&o.value, o.sensitive);
        let (sym, text) = match &o.before {
            None => (st.green("+"), after),
            before => (
                st.yellow("~"),
                format!("{} -> {after}", output_text(before, o.sensitive)),
            ),
        };
        let _ = writeln!(out, "  {sym} {:width$} = {text}", o.name);
    }
}

/// The outputs after apply, as Terraform prints them.
pub fn render_outputs(outputs: &[crate::output::OutputValue], st: Style) -> String {
    let mut out = String::new();
    if outputs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n{}\n", st.green(&st.bold("Outputs:")));
    for o in outputs {
        let _ = writeln!(out, "{} = {}", o.name, output_text(&o.value, o.sensitive));
    }
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
            (None, Some(after)) => (st.green("+"), value_text(after)),
            (Some(before), None) => (st.red("-"), format!("{} -> null", value_text(before))),
            (Some(before), Some(after)) => (
                st.yellow("~"),
                format!("{} -> {}", value_text(before), value_text(after)),
            ),
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
        let before = d
            .before
            .as_ref()
            .map(|j| crate::policy::pretty(&j.to_value()));
        let after = d
            .after
            .as_ref()
            .map(|j| crate::policy::pretty(&j.to_value()));
        render_document(out, before.as_deref(), after.as_deref(), st);
        if let Some(access) = &d.access {
            render_access(out, access, st);
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "      {} {n}", st.yellow("note:"));
    }
    let _ = writeln!(out, "    }}\n");
}

/// What the document change does to access, as comment lines under its diff: in yellow
/// when it widens, so that a reviewer's eye stops there.
fn render_access(out: &mut String, access: &crate::access::Difference, st: Style) {
    let widens = super::access::widens(access.classification);
    for l in super::access::text_lines(access) {
        let l = format!("# {l}");
        let l = if widens { st.yellow(&l) } else { l };
        let _ = writeln!(out, "          {l}");
    }
}

/// An attribute value as Terraform shows it: strings quoted, numbers and booleans bare.
fn value_text(v: &Value) -> String {
    v.to_string()
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
    use crate::diff::Diff;
    use crate::model::{Address, Kind};
    use crate::plan::{AttrChange, DocChange, Summary};
    use serde_json::json;

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::new(
            "demo".into(),
            vec![],
            Default::default(),
            Diff {
                changes,
                ..Diff::default()
            },
        )
    }

    #[test]
    fn summary_counts_like_terraform() {
        let c = |action| Change::new(&Address::new("default", Kind::Role, "r"), "r", action);
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
            attributes: vec![
                AttrChange::changed("max_session_duration", 3600, 7200),
                AttrChange::changed("path", "/a/", "/b/"),
            ],
            documents: vec![DocChange {
                label: "trust policy".into(),
                before: Some((&json!({"a": 1, "b": 2})).into()),
                after: Some((&json!({"a": 1, "b": 3})).into()),
                access: None,
            }],
            ..Change::new(
                &Address::new("default", Kind::Role, "r"),
                "r",
                Action::Update,
            )
        }]);
        let text = render(&p, Style { color: false });
        assert!(
            text.contains("~ max_session_duration = 3600 -> 7200"),
            "{text}"
        );
        assert!(
            text.contains("~ path                 = \"/a/\" -> \"/b/\""),
            "{text}"
        );
        assert!(text.contains("-   \"b\": 2"), "{text}");
        assert!(text.contains("+   \"b\": 3"), "{text}");
        assert!(text.contains("      \"a\": 1,"), "{text}");
        let colored = render(&p, Style { color: true });
        assert!(colored.contains("\x1b[31m-   \"b\": 2"));
    }

    #[test]
    fn conflicts_name_the_resource_as_declared() {
        let mut p = plan(vec![]);
        p.conflicts.push(crate::plan::Conflict {
            address: Address::new("default", Kind::Role, "ChimeServerRole"),
            name: "ChimeServerRole".into(),
            message: "exists".into(),
        });
        let text = render(&p, Style { color: false });
        assert!(text.contains("  ! role.ChimeServerRole: exists"), "{text}");
    }

    #[test]
    fn no_changes_message() {
        let text = render(&plan(vec![]), Style { color: false });
        assert!(text.starts_with("No changes."), "{text}");
    }
}
