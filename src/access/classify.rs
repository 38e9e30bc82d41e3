//! What a change of a policy document does to access: `Narrows`, `Equivalent`, `Widens`
//! or `Changes` (both), with the actions x resources (x principals, x condition) gained
//! and lost.
//!
//! Sound, not complete: a statement of the new document is compared with the old one's
//! element by element (each action, expanded against the action database, and each
//! resource pattern), and an element counts as already granted only when one old statement
//! of the same effect grants it under a condition no stricter (no condition, the same one,
//! a subset of its keys, or more values for a positive operator). What cannot be proven
//! covered is reported as gained; the answer can be too wide (`Changes` where a solver
//! would say `Narrows`), never too narrow. The rules:
//!
//! - Access gained: an element of a new `Allow` that no old `Allow` grants, unless a new
//!   unconditional `Deny` blocks it; an element of an old `Deny` that no new `Deny` covers,
//!   when some new `Allow` may reach it.
//! - Access lost: the same with old and new swapped.
//! - Resources are patterns: `arn:aws:s3:::b/*` covers `arn:aws:s3:::b/logs/*`; two patterns
//!   may overlap unless their fixed heads or tails differ. `NotAction`/`NotResource` are
//!   "everything except", `NotPrincipal` "everyone except".
//! - Trust policies: principals compare exactly (an account ID equals its `:root` ARN);
//!   `*` covers every principal; an account's `:root` covers that account's roles and users
//!   only when the role's own account is given and differs (in the role's own account a
//!   principal named directly needs no identity policy, so the change is not a narrowing).
//! - A `Version` change with policy variables, or a statement it cannot read, makes the
//!   answer at least `Changes`.

use super::condition::values_of;
use super::matcher::{arn_parts, contains, glob_bytes, may_overlap, resource_contains};
use crate::lint::db::ActionDb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Equivalent,
    Narrows,
    Widens,
    /// Some access gained and some lost.
    Changes,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Classification::Equivalent => "equivalent",
            Classification::Narrows => "narrows access",
            Classification::Widens => "widens access",
            Classification::Changes => "changes access",
        })
    }
}

/// How an access difference came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Through {
    /// An `Allow` grants it (gained) or no longer grants it (lost).
    Allow,
    /// A `Deny` no longer blocks it (gained) or now blocks it (lost).
    Deny,
}

/// Some actions on some resources (for some principals, under some condition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDelta {
    pub through: Through,
    /// Action names, sorted; `service:*` stands for every action the database lists for the
    /// service; patterns the database cannot expand are kept as written.
    pub actions: Vec<String>,
    /// How many actions `actions` stands for.
    pub action_count: usize,
    /// `arn:aws:s3:::b/*`, or `everything except ...`.
    pub resource: String,
    /// For trust policies: the principal (`arn:aws:iam::111122223333:root`, `service
    /// lambda.amazonaws.com`, `*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// How many action names a line shows before it counts the rest.
const SHOWN: usize = 5;

impl AccessDelta {
    /// The actions, summarised: every entry up to five, else five and a count.
    pub fn actions_summary(&self) -> String {
        if self.actions.len() <= SHOWN {
            self.actions.join(", ")
        } else {
            format!(
                "{} and {} more ({} actions)",
                self.actions[..SHOWN].join(", "),
                self.actions.len() - SHOWN,
                self.action_count
            )
        }
    }

    /// One line without the sign: `s3:DeleteObject on arn:aws:s3:::b/*`.
    pub fn describe(&self) -> String {
        let mut s = match &self.principal {
            Some(p) => format!("{p} may {}", self.actions_summary()),
            None => format!("{} on {}", self.actions_summary(), self.resource),
        };
        if let Some(c) = &self.condition {
            s.push_str(&format!(" when {c}"));
        }
        s
    }
}

/// The classification of one change, with the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub classification: Classification,
    /// Access the new document grants that the old did not.
    pub gained: Vec<AccessDelta>,
    /// Access the old document granted that the new does not.
    pub lost: Vec<AccessDelta>,
    /// What made the answer less precise (a statement it could not read, ...).
    pub notes: Vec<String>,
}

impl Difference {
    /// `+ ...` and `- ...` lines, gained first.
    pub fn lines(&self) -> Vec<String> {
        let why = |d: &AccessDelta, gained: bool| match (d.through, gained) {
            (Through::Allow, _) => "",
            (Through::Deny, true) => " (no longer denied)",
            (Through::Deny, false) => " (now denied)",
        };
        let mut out: Vec<String> = self
            .gained
            .iter()
            .map(|d| format!("+ {}{}", d.describe(), why(d, true)))
            .collect();
        out.extend(
            self.lost
                .iter()
                .map(|d| format!("- {}{}", d.describe(), why(d, false))),
        );
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

/// Classifies a change of an identity policy (inline, managed, or a boundary).
pub fn classify(old: &Value, new: &Value, db: &ActionDb) -> Difference {
    run(old, new, db, false, None)
}

/// Classifies a change of a role's trust policy; `own_account` is the role's account ID.
pub fn classify_trust(
    old: &Value,
    new: &Value,
    db: &ActionDb,
    own_account: Option<&str>,
) -> Difference {
    run(old, new, db, true, own_account)
}

/// A set of patterns, or everything except them (`NotAction`, `NotResource`,
/// `NotPrincipal`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Set {
    negated: bool,
    items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stmt {
    deny: bool,
    actions: Set,
    resources: Set,
    principals: Option<Set>,
    /// (operator, key) -> values, all lower-cased where case does not matter.
    condition: BTreeMap<(String, String), BTreeSet<String>>,
    /// The condition as written, for display.
    shown: Option<String>,
}

impl Stmt {
    /// The same statement for comparison: names lower-cased, lists sorted.
    fn key(&self) -> Stmt {
        let mut k = self.clone();
        let norm = |s: &mut Set, lower: bool| {
            if lower {
                s.items.iter_mut().for_each(|i| *i = i.to_ascii_lowercase());
            }
            s.items.sort();
            s.items.dedup();
        };
        norm(&mut k.actions, true);
        norm(&mut k.resources, false);
        if let Some(p) = &mut k.principals {
            norm(p, false);
        }
        k.shown = None;
        k
    }
}

struct Doc<'a> {
    stmts: Vec<Stmt>,
    version: Option<String>,
    value: &'a Value,
}

/// Whether a document uses policy variables (only asked when the Version changed).
fn has_vars(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(a) => a.iter().any(has_vars),
        Value::Object(m) => m.values().any(has_vars),
        _ => false,
    }
}

fn parse<'a>(
    doc: &'a Value,
    trust: bool,
    partition: &str,
    notes: &mut Vec<String>,
    which: &str,
) -> Doc<'a> {
    let version = doc
        .get("Version")
        .and_then(Value::as_str)
        .map(str::to_string);
    let raw: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => {
            notes.push(format!("the {which} document has no readable Statement"));
            vec![]
        }
    };
    let mut stmts = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        match statement(s, trust, partition) {
            Some(st) => stmts.push(st),
            None => notes.push(format!(
                "the {which} document's Statement[{i}] cannot be read"
            )),
        }
    }
    Doc {
        stmts,
        version,
        value: doc,
    }
}

fn set_of(v: Option<&Value>, not: Option<&Value>) -> Option<Set> {
    match (v, not) {
        (Some(v), None) => Some(Set {
            negated: false,
            items: values_of(v)?,
        }),
        (None, Some(v)) => Some(Set {
            negated: true,
            items: values_of(v)?,
        }),
        _ => None,
    }
}

fn statement(s: &Value, trust: bool, partition: &str) -> Option<Stmt> {
    let deny = match s.get("Effect")?.as_str()? {
        "Allow" => false,
        "Deny" => true,
        _ => return None,
    };
    let actions = set_of(s.get("Action"), s.get("NotAction"))?;
    let resources = match set_of(s.get("Resource"), s.get("NotResource")) {
        Some(r) => r,
        None if trust && s.get("Resource").is_none() && s.get("NotResource").is_none() => Set {
            negated: false,
            items: vec!["*".into()],
        },
        None => return None,
    };
    let principals = if trust {
        let (p, negated) = match (s.get("Principal"), s.get("NotPrincipal")) {
            (Some(p), None) => (p, false),
            (None, Some(p)) => (p, true),
            _ => return None,
        };
        Some(Set {
            negated,
            items: principals(p, partition)?,
        })
    } else {
        None
    };
    let mut condition = BTreeMap::new();
    let mut shown = Vec::new();
    if let Some(c) = s.get("Condition") {
        for (op, keys) in c.as_object()? {
            let op_l = op.to_ascii_lowercase();
            let ignore_case = op_l.contains("ignorecase");
            for (key, values) in keys.as_object()? {
                let written = values_of(values)?;
                shown.push(format!("{op} {key} = {}", written.join(" | ")));
                let vals: BTreeSet<String> = written
                    .into_iter()
                    .map(|v| if ignore_case { v.to_lowercase() } else { v })
                    .collect();
                let slot: &mut BTreeSet<String> = condition
                    .entry((op_l.clone(), key.to_ascii_lowercase()))
                    .or_default();
                if !slot.is_empty() && *slot != vals {
                    // The same key twice under one operator: both must hold; not modelled.
                    return None;
                }
                *slot = vals;
            }
        }
    }
    Some(Stmt {
        deny,
        actions,
        resources,
        principals,
        condition,
        shown: (!shown.is_empty()).then(|| shown.join(" and ")),
    })
}

/// A `Principal` element as comparable strings: `*`, `AWS:arn...`, `Service:...`, ...
fn principals(p: &Value, partition: &str) -> Option<Vec<String>> {
    if p.as_str() == Some("*") {
        return Some(vec!["*".into()]);
    }
    let mut out = Vec::new();
    for (kind, ids) in p.as_object()? {
        for id in values_of(ids)? {
            out.push(match kind.as_str() {
                "AWS" if id == "*" => "*".into(),
                "AWS" => format!("AWS:{}", crate::policy::account_principal(&id, partition)),
                "Service" => format!("Service:{}", id.to_ascii_lowercase()),
                other => format!("{other}:{id}"),
            });
        }
    }
    Some(out)
}

fn show_principal(p: &str) -> String {
    match p.split_once(':') {
        Some(("AWS", arn)) => arn.to_string(),
        Some(("Service", s)) => format!("service {s}"),
        Some(("Federated", s)) => format!("federated {s}"),
        _ => p.to_string(),
    }
}

/// One element of a statement: an action (a name or a pattern, or everything except some),
/// a resource and a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Elem {
    One(String),
    AllExcept(Vec<String>),
}

impl Elem {
    fn show(&self, what: &str) -> String {
        match self {
            Elem::One(s) => s.clone(),
            Elem::AllExcept(e) => format!("every {what} except {}", e.join(", ")),
        }
    }
}

/// Whether `inner` is within `outer`: actions without regard to case, resources part by
/// part as IAM matches ARNs.
fn covers(outer: &str, inner: &str, action: bool) -> bool {
    if action {
        contains(outer, inner, true)
    } else {
        resource_contains(outer, inner)
    }
}

/// Whether an element is within a set, as a proof (`false`: not proven). `action`: the set
/// is of actions (else of resources).
fn within(e: &Elem, s: &Set, action: bool) -> bool {
    match (e, s.negated) {
        (Elem::One(p), false) => s.items.iter().any(|q| covers(q, p, action)),
        (Elem::One(p), true) => s.items.iter().all(|q| !may_overlap(q, p, action)),
        (Elem::AllExcept(_), false) => s
            .items
            .iter()
            .any(|q| !q.is_empty() && q.chars().all(|c| c == '*')),
        (Elem::AllExcept(ex), true) => s
            .items
            .iter()
            .all(|h| ex.iter().any(|g| covers(g, h, action))),
    }
}

/// Whether an element and a set may share a member (`action`: as `within`).
fn meets(e: &Elem, s: &Set, action: bool) -> bool {
    match (e, s.negated) {
        (Elem::One(p), false) => s.items.iter().any(|q| may_overlap(q, p, action)),
        (Elem::One(p), true) => !s.items.iter().any(|q| covers(q, p, action)),
        _ => true,
    }
}

struct Cx<'a> {
    db: &'a ActionDb,
    own_account: Option<&'a str>,
}

impl Cx<'_> {
    /// Calls `f` with every action of the database as `service:Action`, through one buffer
    /// (no allocation per action: the database has over 20,000).
    fn each_action(&self, mut f: impl FnMut(&str)) {
        let mut buf = String::with_capacity(128);
        for p in self.db.prefixes() {
            let Some(s) = self.db.service(p) else {
                continue;
            };
            for a in &s.actions {
                buf.clear();
                buf.push_str(&s.prefix);
                buf.push(':');
                buf.push_str(&a.name);
                f(&buf);
            }
        }
    }

    /// The database's actions an element stands for, sorted.
    fn actions_of(&self, e: &Elem) -> Vec<String> {
        let mut out = Vec::new();
        match e {
            // No action name is this long: nothing to expand, and no time spent trying.
            Elem::One(p) if p.len() > 256 => {}
            Elem::One(p) => match p.split_once(':') {
                Some((svc, act)) if !svc.contains(['*', '?']) => {
                    if let Some(s) = self.db.service(svc) {
                        out.extend(
                            s.actions
                                .iter()
                                .filter(|a| glob_bytes(act.as_bytes(), a.name.as_bytes(), true))
                                .map(|a| format!("{}:{}", s.prefix, a.name)),
                        );
                    }
                }
                _ => self.each_action(|n| {
                    if glob_bytes(p.as_bytes(), n.as_bytes(), true) {
                        out.push(n.to_string());
                    }
                }),
            },
            Elem::AllExcept(ex) => self.each_action(|n| {
                if !ex
                    .iter()
                    .any(|e| glob_bytes(e.as_bytes(), n.as_bytes(), true))
                {
                    out.push(n.to_string());
                }
            }),
        }
        out.sort();
        out
    }

    /// How many of the database's actions an element stands for (at least one: a pattern
    /// the database does not know is one action of its own).
    fn count(&self, e: &Elem) -> usize {
        let mut n = 0;
        match e {
            Elem::One(p) if !p.contains(['*', '?']) => return 1,
            Elem::One(p) if p.chars().all(|c| c == '*') => {
                self.db
                    .prefixes()
                    .filter_map(|p| self.db.service(p))
                    .for_each(|s| n += s.actions.len());
            }
            Elem::One(p) => match p.split_once(':') {
                Some((svc, act)) if !svc.contains(['*', '?']) => {
                    if let Some(s) = self.db.service(svc) {
                        n = s
                            .actions
                            .iter()
                            .filter(|a| glob_bytes(act.as_bytes(), a.name.as_bytes(), true))
                            .count();
                    }
                }
                _ => self.each_action(|a| {
                    n += usize::from(glob_bytes(p.as_bytes(), a.as_bytes(), true))
                }),
            },
            Elem::AllExcept(ex) => self.each_action(|a| {
                n += usize::from(
                    !ex.iter()
                        .any(|e| glob_bytes(e.as_bytes(), a.as_bytes(), true)),
                )
            }),
        }
        n.max(1)
    }

    fn principal_within(&self, p: &Elem, s: &Set) -> bool {
        let member = |p: &str, q: &str| -> bool {
            if q == "*" || p == q {
                return true;
            }
            // An account's root covers its roles and users when the account is another.
            let (Some(pa), Some(qa)) = (p.strip_prefix("AWS:"), q.strip_prefix("AWS:")) else {
                return false;
            };
            match (arn_parts(pa), arn_parts(qa)) {
                (Some(x), Some(y)) => {
                    y[5] == "root"
                        && x[4] == y[4]
                        && x[2] == "iam"
                        && self.own_account.is_some_and(|own| own != x[4])
                }
                _ => false,
            }
        };
        match (p, s.negated) {
            (Elem::One(p), false) => s.items.iter().any(|q| member(p, q)),
            // Surely not exempted: nothing listed shares a member with it.
            (Elem::One(p), true) => p != "*" && !s.items.iter().any(|q| principals_overlap(p, q)),
            (Elem::AllExcept(_), false) => s.items.iter().any(|q| q == "*"),
            (Elem::AllExcept(ex), true) => s.items.iter().all(|h| ex.contains(h)),
        }
    }

    fn principal_meets(&self, p: &Elem, s: &Set) -> bool {
        match (p, s.negated) {
            (Elem::One(p), false) => s.items.iter().any(|q| principals_overlap(p, q)),
            // Whom a NotPrincipal exempts depends on more than the list (see `eval.rs`): only
            // `*` surely exempts everyone.
            (Elem::One(_), true) => !s.items.iter().any(|q| q == "*"),
            _ => true,
        }
    }
}

/// Whether two principals may share members: equal, `*`, or an account's root and a
/// principal of that account.
fn principals_overlap(p: &str, q: &str) -> bool {
    let account = |x: &str| {
        x.strip_prefix("AWS:")
            .and_then(arn_parts)
            .map(|p| (p[4].to_string(), p[5] == "root"))
    };
    p == "*"
        || q == "*"
        || p == q
        || match (account(p), account(q)) {
            (Some((a, ra)), Some((b, rb))) => a == b && (ra || rb),
            _ => false,
        }
}

/// Whether `by`'s condition is no stricter than `of`'s: each of its requirements is also one
/// of `of`'s, with at least as many accepted values.
fn condition_weaker(by: &Stmt, of: &Stmt) -> bool {
    by.condition.iter().all(|((op, key), hv)| {
        let Some(gv) = of.condition.get(&(op.clone(), key.clone())) else {
            return false;
        };
        let base = op
            .rsplit(':')
            .next()
            .unwrap_or(op)
            .trim_end_matches("ifexists");
        let positive = [
            "stringequals",
            "stringequalsignorecase",
            "stringlike",
            "arnequals",
            "arnlike",
            "ipaddress",
        ];
        let negative = [
            "stringnotequals",
            "stringnotequalsignorecase",
            "stringnotlike",
            "arnnotequals",
            "arnnotlike",
            "notipaddress",
        ];
        if positive.contains(&base) {
            hv.is_superset(gv)
        } else if negative.contains(&base) {
            hv.is_subset(gv)
        } else {
            hv == gv
        }
    })
}

/// (action, resource, principal, how many actions the first stands for).
type Triple = (Elem, Elem, Option<Elem>, usize);

fn elems(s: &Set) -> Vec<Elem> {
    if s.negated {
        vec![Elem::AllExcept(s.items.clone())]
    } else {
        s.items.iter().map(|i| Elem::One(i.clone())).collect()
    }
}

/// The triples of `g` that no statement of `by` (of the same effect) is proven to grant.
fn uncovered(cx: &Cx, g: &Stmt, by: &[&Stmt]) -> Vec<Triple> {
    let by: Vec<&Stmt> = by
        .iter()
        .copied()
        .filter(|h| h.deny == g.deny && condition_weaker(h, g))
        .collect();
    let principals: Vec<Option<Elem>> = match &g.principals {
        Some(p) => elems(p).into_iter().map(Some).collect(),
        None => vec![None],
    };
    let covered = |a: &Elem, r: &Elem, p: &Option<Elem>| {
        by.iter().any(|h| {
            within(a, &h.actions, true)
                && within(r, &h.resources, false)
                && match (p, &h.principals) {
                    (Some(p), Some(hp)) => cx.principal_within(p, hp),
                    (None, None) => true,
                    _ => false,
                }
        })
    };
    let mut out = Vec::new();
    for r in elems(&g.resources) {
        for p in &principals {
            for a in elems(&g.actions) {
                if covered(&a, &r, p) {
                    continue;
                }
                let touched = by.iter().any(|h| {
                    meets(&a, &h.actions, true)
                        && meets(&r, &h.resources, false)
                        && match (p, &h.principals) {
                            (Some(p), Some(hp)) => cx.principal_meets(p, hp),
                            _ => true,
                        }
                });
                if !touched {
                    // Nothing of it was granted before: the element itself is the news.
                    let n = cx.count(&a);
                    out.push((a, r.clone(), p.clone(), n));
                    continue;
                }
                // Partly covered: name the actions it stands for that are not.
                let mut any = false;
                for n in cx.actions_of(&a) {
                    let e = Elem::One(n);
                    if !covered(&e, &r, p) {
                        any = true;
                        out.push((e, r.clone(), p.clone(), 1));
                    }
                }
                if !any && (matches!(a, Elem::AllExcept(_)) || cx.actions_of(&a).is_empty()) {
                    // Actions the database does not list (new ones, or a name it does not
                    // know) stay uncovered.
                    out.push((a.clone(), r.clone(), p.clone(), 1));
                }
            }
        }
    }
    out
}

/// Whether some statement of `of` (an effect's statements) may grant part of a triple.
fn reached(cx: &Cx, t: &Triple, of: &[&Stmt]) -> bool {
    of.iter().any(|h| {
        meets(&t.0, &h.actions, true)
            && meets(&t.1, &h.resources, false)
            && match (&t.2, &h.principals) {
                (Some(p), Some(hp)) => cx.principal_meets(p, hp),
                _ => true,
            }
    })
}

/// Whether an unconditional statement of `of` surely covers the triple.
fn blocked(cx: &Cx, t: &Triple, of: &[&Stmt]) -> bool {
    of.iter().any(|h| {
        h.condition.is_empty()
            && within(&t.0, &h.actions, true)
            && within(&t.1, &h.resources, false)
            && match (&t.2, &h.principals) {
                (Some(p), Some(hp)) => cx.principal_within(p, hp),
                (None, None) => true,
                _ => false,
            }
    })
}

/// Action names with every action of a service replaced by `service:*`.
fn by_service(actions: BTreeMap<String, usize>, db: &ActionDb) -> Vec<String> {
    let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in actions.into_keys() {
        let svc = a
            .split_once(':')
            .map(|(s, _)| s.to_string())
            .unwrap_or_default();
        per.entry(svc).or_default().push(a);
    }
    let mut out = Vec::new();
    for (svc, names) in per {
        match db.service(&svc) {
            Some(s)
                if names.len() == s.actions.len()
                    && !names.iter().any(|n| n.contains(['*', '?'])) =>
            {
                out.push(format!("{}:*", s.prefix))
            }
            _ => out.extend(names),
        }
    }
    out
}

/// Deltas being gathered: (through, resource, principal, condition) -> actions.
type Groups = BTreeMap<(Through, String, Option<String>, Option<String>), BTreeMap<String, usize>>;

/// Groups triples into deltas: one per (resource, principal, condition), actions listed.
fn group(into: &mut Groups, through: Through, s: &Stmt, ts: Vec<Triple>) {
    let cond = s.shown.clone();
    for (a, r, p, n) in ts {
        into.entry((
            through,
            r.show("resource"),
            p.map(|p| match p {
                Elem::One(p) => show_principal(&p),
                Elem::AllExcept(e) => format!(
                    "every principal except {}",
                    e.iter()
                        .map(|x| show_principal(x))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            cond.clone(),
        ))
        .or_default()
        .insert(a.show("action"), n);
    }
}

fn run(old: &Value, new: &Value, db: &ActionDb, trust: bool, own: Option<&str>) -> Difference {
    let mut notes = Vec::new();
    let partition = "aws";
    let o = parse(old, trust, partition, &mut notes, "old");
    let n = parse(new, trust, partition, &mut notes, "new");
    let mut uncertain = !notes.is_empty();
    if !o.stmts.is_empty()
        && !n.stmts.is_empty()
        && o.version != n.version
        && (has_vars(o.value) || has_vars(n.value))
    {
        notes.push("the policy language Version changed and the documents use policy variables: their meaning changed".into());
        uncertain = true;
    }
    let cx = Cx {
        db,
        own_account: own,
    };
    let keys_o: Vec<Stmt> = o.stmts.iter().map(Stmt::key).collect();
    let keys_n: Vec<Stmt> = n.stmts.iter().map(Stmt::key).collect();
    fn refs<'d>(d: &'d Doc<'_>, deny: bool) -> Vec<&'d Stmt> {
        d.stmts.iter().filter(|s| s.deny == deny).collect()
    }
    let (o_allow, o_deny, n_allow, n_deny) = (
        refs(&o, false),
        refs(&o, true),
        refs(&n, false),
        refs(&n, true),
    );
    let all_o: Vec<&Stmt> = o.stmts.iter().collect();
    let all_n: Vec<&Stmt> = n.stmts.iter().collect();

    let mut gained = Groups::new();
    let mut lost = Groups::new();
    // New statements: what they grant (allow) or block (deny) beyond the old ones.
    for (s, k) in n.stmts.iter().zip(&keys_n) {
        if keys_o.contains(k) {
            continue;
        }
        let ts = uncovered(&cx, s, &all_o);
        if s.deny {
            let ts: Vec<Triple> = ts
                .into_iter()
                .filter(|t| reached(&cx, t, &o_allow))
                .collect();
            group(&mut lost, Through::Deny, s, ts);
        } else {
            let ts: Vec<Triple> = ts
                .into_iter()
                .filter(|t| !blocked(&cx, t, &n_deny))
                .collect();
            group(&mut gained, Through::Allow, s, ts);
        }
    }
    // Old statements: what no longer is granted (allow) or blocked (deny).
    for (s, k) in o.stmts.iter().zip(&keys_o) {
        if keys_n.contains(k) {
            continue;
        }
        let ts = uncovered(&cx, s, &all_n);
        if s.deny {
            let ts: Vec<Triple> = ts
                .into_iter()
                .filter(|t| reached(&cx, t, &n_allow))
                .collect();
            group(&mut gained, Through::Deny, s, ts);
        } else {
            let ts: Vec<Triple> = ts
                .into_iter()
                .filter(|t| !blocked(&cx, t, &o_deny))
                .collect();
            group(&mut lost, Through::Allow, s, ts);
        }
    }
    let deltas = |m: Groups| -> Vec<AccessDelta> {
        m.into_iter()
            .map(|((through, resource, principal, condition), actions)| {
                let action_count = actions.values().sum();
                AccessDelta {
                    through,
                    actions: by_service(actions, db),
                    action_count,
                    resource,
                    principal,
                    condition,
                }
            })
            .collect()
    };
    let (gained, lost) = (deltas(gained), deltas(lost));
    // Unsure of part of a document: never say less than that access changed.
    let classification = match (gained.is_empty(), lost.is_empty()) {
        _ if uncertain => Classification::Changes,
        (true, true) => Classification::Equivalent,
        (true, false) => Classification::Narrows,
        (false, true) => Classification::Widens,
        (false, false) => Classification::Changes,
    };
    Difference {
        classification,
        gained,
        lost,
        notes,
    }
}
