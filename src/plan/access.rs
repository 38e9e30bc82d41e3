//! What each policy document change of a plan does to access (`crate::access::classify`),
//! and `--deny-widening`: the changes that widen access without the plan file's
//! acknowledgement (`allow_widening = true` on the resource).

use super::{Action, Change, Plan};
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
    let db = crate::lint::db::shared();
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
        // A deleted role or user takes its denials with it; a deleted group or managed
        // policy stops denying for the principals that had it.
        let principal_gone =
            c.action == Action::Delete && matches!(c.address.kind, Kind::Role | Kind::User);
        for d in &mut c.documents {
            let (before, after): (Value, Value) = (side(&d.before), side(&d.after));
            d.access = Some(if trust && d.label == TRUST_POLICY {
                classify_trust(&before, &after, db, account)
            } else {
                let mut diff = classify(&before, &after, db);
                if !principal_gone {
                    lifted_denials(&before, &after, db, &mut diff);
                }
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
    /// The resource is deleted (no longer declared: no section to acknowledge it in).
    pub deleted: bool,
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
                    deleted: c.action == Action::Delete,
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
        let mut deleted = false;
        for w in &self.0 {
            let detail = match (&w.first, w.more) {
                (Some(l), 0) => format!(": {l}"),
                (Some(l), n) => format!(": {l} (and {n} more)"),
                (None, _) => String::new(),
            };
            let gone = if w.deleted { " (deleted)" } else { "" };
            writeln!(
                f,
                "  {}{gone} {} {}{detail}",
                w.resource, w.document, w.classification
            )?;
            if w.deleted {
                deleted = true;
            } else if !sections.contains(&w.section.as_str()) {
                sections.push(&w.section);
            }
        }
        if !sections.is_empty() {
            write!(
                f,
                "If this is intended, acknowledge it with `allow_widening = true` in {} and plan again (remove it once applied to guard the next change)",
                sections.join(", ")
            )?;
        }
        if deleted {
            if !sections.is_empty() {
                writeln!(f)?;
            }
            write!(
                f,
                "A deleted group or managed policy whose Deny guarded other policies has no section to acknowledge it in: review the deletion and apply it without --deny-widening"
            )?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use crate::plan::{Action, DocChange};

    fn account() -> BTreeMap<String, AccountContext> {
        let ctx = AccountContext {
            alias: "default".into(),
            account_id: "000000000000".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
        };
        BTreeMap::from([("default".to_string(), ctx)])
    }

    fn change(kind: Kind, docs: Vec<DocChange>) -> Change {
        let mut c = Change::new(&Address::new("default", kind, "x"), "x", Action::Update);
        c.documents = docs;
        c
    }

    fn doc(label: &str, before: Value, after: Value) -> DocChange {
        DocChange {
            label: label.into(),
            before: Some((&before).into()),
            after: Some((&after).into()),
            access: None,
        }
    }

    fn allow(action: &str, resource: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})
    }

    #[test]
    fn creations_and_deletions_compare_with_no_statement() {
        let mut changes = vec![change(
            Kind::User,
            vec![
                DocChange::added("inline policy a", &allow("s3:GetObject", "*")),
                DocChange::removed("inline policy b", &allow("s3:PutObject", "*")),
            ],
        )];
        classify_changes(&mut changes, &account());
        let classes: Vec<Classification> = changes[0]
            .documents
            .iter()
            .map(|d| d.access.as_ref().unwrap().classification)
            .collect();
        assert_eq!(classes, [Classification::Widens, Classification::Narrows]);
    }

    #[test]
    fn a_plan_without_documents_does_not_classify() {
        let mut changes = vec![change(Kind::Role, vec![])];
        classify_changes(&mut changes, &account());
        assert!(changes[0].documents.is_empty());
    }

    #[test]
    fn a_deny_lifted_or_added_counts_even_written_as_one_statement() {
        let deny =
            json!({"Statement": {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}});
        let none = json!({"Statement": []});
        let mut changes = vec![change(
            Kind::Group,
            vec![
                doc("inline policy lifted", deny.clone(), none.clone()),
                doc("inline policy added", none, deny),
            ],
        )];
        classify_changes(&mut changes, &account());
        let lifted = changes[0].documents[0].access.as_ref().unwrap();
        assert_eq!(lifted.classification, Classification::Widens, "{lifted:?}");
        assert_eq!(
            lifted.lines(),
            ["+ s3:DeleteObject on * (no longer denied)"]
        );
        let added = changes[0].documents[1].access.as_ref().unwrap();
        assert_eq!(added.classification, Classification::Narrows, "{added:?}");
    }

    #[test]
    fn a_role_trust_policy_names_principals() {
        let trust = |account: &str| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"}]});
        let mut changes = vec![change(
            Kind::Role,
            vec![doc(
                TRUST_POLICY,
                trust("111122223333"),
                trust("444455556666"),
            )],
        )];
        classify_changes(&mut changes, &account());
        let access = changes[0].documents[0].access.as_ref().unwrap();
        assert_eq!(access.classification, Classification::Changes);
        assert_eq!(
            access.lines(),
            [
                "+ arn:aws:iam::444455556666:root may sts:AssumeRole",
                "- arn:aws:iam::111122223333:root may sts:AssumeRole"
            ]
        );
    }

    #[test]
    fn long_differences_are_summarised_in_the_text_plan() {
        let statements: Vec<Value> = (0..9)
            .map(|i| json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::b{i}/*")}))
            .collect();
        let after = json!({"Version": "2012-10-17", "Statement": statements});
        let access = classify(&json!({"Statement": []}), &after, &crate::lint::db::load());
        let lines = text_lines(&access);
        assert_eq!(lines[0], "widens access:");
        assert_eq!(lines.len(), 1 + SHOWN_LINES + 1, "{lines:?}");
        assert!(lines[SHOWN_LINES + 1].contains("and 3 more"), "{lines:?}");
    }

    #[test]
    fn deny_widening_fails_closed_on_unclassified_documents() {
        let mut plan = crate::plan::Plan::new(
            "s".into(),
            vec![],
            Default::default(),
            crate::diff::Diff::default(),
        );
        let mut c = change(
            Kind::User,
            vec![doc(
                "inline policy a",
                allow("s3:GetObject", "*"),
                allow("s3:*", "*"),
            )],
        );
        plan.changes.push(c.clone());
        let refused = plan.deny_widening().unwrap_err();
        assert!(refused.to_string().contains("plan again"), "{refused}");
        assert!(refused.to_string().contains("[user.x]"), "{refused}");
        c.allow_widening = true;
        plan.changes = vec![c];
        assert_eq!(plan.deny_widening(), Ok(()));
    }

    #[test]
    fn a_deleted_principal_takes_its_denials_along_but_a_deleted_guard_widens() {
        let deny = json!({"Statement": [{"Effect": "Deny", "Action": "iam:*", "Resource": "*"}]});
        let deleted = |kind| {
            let mut c = change(kind, vec![DocChange::removed("inline policy guard", &deny)]);
            c.action = Action::Delete;
            c
        };
        let mut changes = vec![deleted(Kind::Role), deleted(Kind::Group)];
        classify_changes(&mut changes, &account());
        let class = |c: &Change| c.documents[0].access.as_ref().unwrap().classification;
        assert_ne!(class(&changes[0]), Classification::Widens);
        assert_eq!(class(&changes[1]), Classification::Widens);
        let mut plan = crate::plan::Plan::new(
            "s".into(),
            vec![],
            Default::default(),
            crate::diff::Diff::default(),
        );
        plan.changes = changes;
        let text = plan.deny_widening().unwrap_err().to_string();
        assert!(
            text.contains("group.x (deleted) inline policy guard widens access"),
            "{text}"
        );
        assert!(text.contains("apply it without --deny-widening"), "{text}");
        assert!(!text.contains("allow_widening = true` in"), "{text}");
    }
}
