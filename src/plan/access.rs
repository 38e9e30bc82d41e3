//! What each policy document change of a plan does to access (`crate::access::classify`),
//! and `--deny-widening`: the changes that widen access without the plan file's
//! acknowledgement (`allow_widening = true` on the resource).

use super::{Change, Plan};
use crate::access::{AccessDelta, Classification, Difference, Through, classify, classify_trust};
use crate::lint::db::ActionDb;
use crate::model::{AccountContext, Kind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The label of a role's trust policy among its documents.
pub const TRUST_POLICY: &str = "trust policy";

/// Gives each document change its classification. The action database is loaded only when
/// some document changes: a plan without document changes does not pay for it.
pub fn classify_changes(changes: &mut [Change], accounts: &BTreeMap<String, AccountContext>) {
    if changes.iter().all(|c| c.documents.is_empty()) {
        return;
    }
    let db = crate::lint::db::load();
    // A created document is a change from no statement, a deleted one a change to none.
    let empty = json!({ "Statement": [] });
    let side = |j: &Option<crate::policy::Json>| {
        j.as_ref().map_or_else(|| empty.clone(), |j| j.to_value())
    };
    for c in changes.iter_mut() {
        // The real account ID decides whether a trust policy's `:root` covers a principal.
        let account = accounts
            .get(&c.address.account)
            .map(|a| a.account_id.as_str());
        let trust = c.address.kind == Kind::Role;
        for d in &mut c.documents {
            let (before, after): (Value, Value) = (side(&d.before), side(&d.after));
            d.access = Some(if trust && d.label == TRUST_POLICY {
                classify_trust(&before, &after, &db, account)
            } else {
                let mut diff = classify(&before, &after, &db);
                lifted_denials(&before, &after, &db, &mut diff);
                diff
            });
        }
    }
}

/// A `Deny` guards what the principal's other policies allow, which one document's
/// classification cannot see (alone, a Deny grants nothing: dropping it is `Equivalent`).
/// Compared again with an `Allow` of everything added to both sides, a Deny lifted shows as
/// access gained and a new one as access lost; those are added to the difference.
fn lifted_denials(before: &Value, after: &Value, db: &ActionDb, diff: &mut Difference) {
    if !has_deny(before) && !has_deny(after) {
        return;
    }
    let with_allow = |doc: &Value| {
        let mut doc = doc.clone();
        let everything = json!({ "Effect": "Allow", "Action": "*", "Resource": "*" });
        match doc.get_mut("Statement") {
            Some(Value::Array(list)) => list.push(everything),
            Some(one) => *one = json!([one.take(), everything]),
            None => return None,
        }
        Some(doc)
    };
    let (Some(b), Some(a)) = (with_allow(before), with_allow(after)) else {
        return;
    };
    let guarded = classify(&b, &a, db);
    let by_deny = |d: &AccessDelta| d.through == Through::Deny;
    for g in guarded.gained.into_iter().filter(by_deny) {
        if !diff.gained.contains(&g) {
            diff.gained.push(g);
        }
    }
    for l in guarded.lost.into_iter().filter(by_deny) {
        if !diff.lost.contains(&l) {
            diff.lost.push(l);
        }
    }
    diff.classification = match (diff.gained.is_empty(), diff.lost.is_empty()) {
        (false, false) => Classification::Changes,
        (false, true) => Classification::Widens,
        (true, false) => Classification::Narrows,
        (true, true) => diff.classification,
    };
}

fn has_deny(doc: &Value) -> bool {
    let deny = |s: &Value| {
        s.get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("deny"))
    };
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().any(deny),
        Some(one) => deny(one),
        None => false,
    }
}

/// Whether a classification counts as widening for `--deny-widening`.
pub fn widens(c: Classification) -> bool {
    matches!(c, Classification::Widens | Classification::Changes)
}

/// One document change that widens access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// `role.ably-integration`, `policy.invoke[tooling]`.
    pub resource: String,
    /// The plan-file section that acknowledges it: `[role.ably-integration]`.
    pub section: String,
    /// `trust policy`, `inline policy NAME`, `policy document`.
    pub document: String,
    pub classification: Classification,
    /// The first access line (`+ s3:DeleteObject on arn:aws:s3:::b/*`) and how many more.
    pub first: Option<String>,
    pub more: usize,
    /// `allow_widening = true` on the resource.
    pub acknowledged: bool,
}

impl Plan {
    /// Every document change that widens (or both widens and narrows) access, in plan order.
    pub fn widenings(&self) -> Vec<Widening> {
        let mut out = Vec::new();
        for c in self.changes() {
            for d in &c.documents {
                // Fails closed: a plan saved before documents were classified may widen.
                let (classification, lines) = match &d.access {
                    Some(a) if !widens(a.classification) => continue,
                    Some(a) => (a.classification, a.lines()),
                    None => (
                        Classification::Changes,
                        vec![
                            "not classified (a plan saved by an older iamplan): plan again".into(),
                        ],
                    ),
                };
                out.push(Widening {
                    resource: super::resource_label(&c.address, &c.name),
                    section: format!("[{}.{}]", c.address.kind.label(), c.name),
                    document: d.label.clone(),
                    classification,
                    first: lines.first().cloned(),
                    more: lines.len().saturating_sub(1),
                    acknowledged: c.allow_widening,
                });
            }
        }
        out
    }

    /// `--deny-widening`: an error naming each widening change the plan file does not
    /// acknowledge.
    pub fn deny_widening(&self) -> Result<(), WideningDenied> {
        let open: Vec<Widening> = self
            .widenings()
            .into_iter()
            .filter(|w| !w.acknowledged)
            .collect();
        if open.is_empty() {
            Ok(())
        } else {
            Err(WideningDenied(open))
        }
    }
}

/// `--deny-widening` refused the plan: these changes widen access unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WideningDenied(pub Vec<Widening>);

impl fmt::Display for WideningDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "--deny-widening: {} policy document change(s) widen access without an acknowledgement in the plan files:",
            self.0.len()
        )?;
        let mut sections: Vec<&str> = Vec::new();
        for w in &self.0 {
            let detail = match (&w.first, w.more) {
                (Some(l), 0) => format!(": {l}"),
                (Some(l), n) => format!(": {l} (and {n} more)"),
                (None, _) => String::new(),
            };
            writeln!(
                f,
                "  {} {} {}{detail}",
                w.resource, w.document, w.classification
            )?;
            if !sections.contains(&w.section.as_str()) {
                sections.push(&w.section);
            }
        }
        write!(
            f,
            "If this is intended, acknowledge it with `allow_widening = true` in {} and plan again (remove it once applied to guard the next change)",
            sections.join(", ")
        )
    }
}

/// How many access lines a document shows in the text plan before it counts the rest.
const SHOWN_LINES: usize = 6;

/// The text plan's lines for one document's access: `widens access: + ...`, one line for a
/// single difference, a heading and one line each (up to six) otherwise.
pub fn text_lines(access: &Difference) -> Vec<String> {
    let lines = access.lines();
    let class = access.classification.to_string();
    match lines.as_slice() {
        [] if access.classification == Classification::Equivalent => {
            vec!["equivalent access".into()]
        }
        [] => vec![class],
        [one] => vec![format!("{class}: {one}")],
        many => {
            let mut out = vec![format!("{class}:")];
            out.extend(many.iter().take(SHOWN_LINES).map(|l| format!("  {l}")));
            if many.len() > SHOWN_LINES {
                out.push(format!(
                    "  ... and {} more (`plan --json` lists them all)",
                    many.len() - SHOWN_LINES
                ));
            }
            out
        }
    }
}
