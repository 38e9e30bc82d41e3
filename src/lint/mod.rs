//! Lint: findings about policies that IAM accepts but that are probably wrong or risky,
//! modelled on IAM Access Analyzer's policy validation (error, security warning, warning,
//! suggestion). Each finding has a stable code (a public contract: README "Lint"), the
//! resource and document it is in, and how to fix it. Pure: it reads the desired state.

pub mod db;
mod rules;

use crate::model::{Desired, Place, Resource};
use crate::plan::resource_label;
use crate::policy::PolicyDocument;
use serde::Serialize;
use std::collections::BTreeSet;

/// How much a finding matters. Ordered from the most to the least serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    SecurityWarning,
    Warning,
    Suggestion,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::SecurityWarning => "security warning",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        }
    }
}

macro_rules! codes {
    ($($code:ident => $severity:ident, $summary:literal;)*) => {
        /// A finding's kind. The names are stable: plan files ignore findings by them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(non_camel_case_types)]
        pub enum Code { $($code),* }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$code),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code)),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$severity),* }
            }

            /// One line on what the finding means (README's table).
            pub fn summary(self) -> &'static str {
                match self { $(Code::$code => $summary),* }
            }

            pub fn parse(s: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    UNKNOWN_SERVICE => Error, "an action's service prefix belongs to no AWS service";
    UNKNOWN_ACTION => Error, "no action of the service has this name, or the wildcard matches none";
    TRUST_WITHOUT_EXTERNAL_ID => SecurityWarning, "a role trusts another AWS account without requiring sts:ExternalId (the confused deputy)";
    TRUST_ANY_PRINCIPAL => SecurityWarning, "a trust policy lets any principal (\"*\") assume the role, with no condition";
    PASS_ROLE_ALL_RESOURCES => SecurityWarning, "iam:PassRole is allowed on every role";
    ALL_ACTIONS_ALL_RESOURCES => SecurityWarning, "every action, or every action of a service, on every resource";
    ALLOW_NOT_ACTION => SecurityWarning, "Allow with NotAction grants every action not listed, including future ones";
    ALLOW_NOT_RESOURCE => SecurityWarning, "Allow with NotResource grants every resource not listed";
    UNSUPPORTED_RESOURCE => Warning, "none of the action's resource types can match the statement's resource, so it grants nothing there";
    UNKNOWN_CONDITION_KEY => Warning, "a condition key that is neither global nor defined for the statement's actions: the condition never matches";
    REDUNDANT_ACTION => Suggestion, "an action already covered by another entry of the same statement";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding, as `iamplan lint --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The resource, as the plan names it (`role.ably`, `policy.invoke[tooling]`).
    pub resource: String,
    /// Which of its documents (`trust policy`, `inline policy logs`, `policy document`).
    pub document: String,
    /// The statement (0-based), when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    pub message: String,
    pub help: String,
}

impl Finding {
    /// `file:line:col: severity CODE: resource (document, Statement[i]): message`.
    pub fn one_line(&self) -> String {
        let statement = self
            .statement
            .map(|i| format!(", Statement[{i}]"))
            .unwrap_or_default();
        format!(
            "{}:{}:{}: {} {}: {} ({}{statement}): {}",
            self.file,
            self.line,
            self.column,
            self.severity.as_str(),
            self.code,
            self.resource,
            self.document,
            self.message
        )
    }
}

/// A finding before it is placed in the plan files.
pub(crate) struct Raw {
    pub code: Code,
    pub statement: Option<usize>,
    pub message: String,
    pub help: String,
}

/// What a document is, for the rules that depend on it.
pub(crate) struct DocContext<'a> {
    pub trust: bool,
    /// Account IDs the plan itself declares: trusting them is not trusting a third party.
    pub own_accounts: &'a BTreeSet<String>,
}

/// Every finding of the desired state's documents, by file and line, except those the plan
/// files ignore for their resource.
pub fn lint(desired: &Desired) -> Vec<Finding> {
    // Nothing to check: the database is not read.
    if desired.resources.is_empty() {
        return Vec::new();
    }
    lint_with(desired, db::shared())
}

pub fn lint_with(desired: &Desired, db: &db::ActionDb) -> Vec<Finding> {
    let own_accounts: BTreeSet<String> = desired
        .accounts
        .values()
        .map(|a| a.account_id.clone())
        .collect();
    let mut out = Vec::new();
    for (addr, d) in &desired.resources {
        let mut docs: Vec<(String, &PolicyDocument, bool)> = Vec::new();
        let inline = match &d.resource {
            Resource::Role(r) => {
                docs.push(("trust policy".into(), &r.trust, true));
                Some(&r.inline)
            }
            Resource::ManagedPolicy(p) => {
                docs.push(("policy document".into(), &p.document, false));
                None
            }
            Resource::User(u) => Some(&u.inline),
            Resource::Group(g) => Some(&g.inline),
        };
        for (name, doc) in inline.into_iter().flatten() {
            docs.push((format!("inline policy {name}"), doc, false));
        }
        let (file, line, column) = split_origin(&d.origin);
        let resource = resource_label(addr, d.resource.name());
        for (document, doc, trust) in docs {
            let cx = DocContext {
                trust,
                own_accounts: &own_accounts,
            };
            // Looked at without keeping the parse: the plan's documents are held as text.
            for raw in doc.inspect(|v| rules::check(v, &cx, db)) {
                if d.lint_ignore.contains_key(raw.code.as_str()) {
                    continue;
                }
                let (file, line, column) = match place(&d.places, &document, &raw) {
                    Some(origin) => split_origin(origin),
                    None => (file.clone(), line, column),
                };
                out.push(Finding {
                    code: raw.code,
                    severity: raw.code.severity(),
                    file,
                    line,
                    column,
                    resource: resource.clone(),
                    document: document.clone(),
                    statement: raw.statement,
                    message: raw.message,
                    help: raw.help,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.document, a.statement, a.code).cmp(&(
            &b.file,
            b.line,
            b.column,
            &b.document,
            b.statement,
            b.code,
        ))
    });
    out.dedup();
    out
}

/// The codes one document raises (for tests and tools that hold a bare document):
/// `own_accounts` are the account IDs that are not third parties.
pub fn check_document(
    doc: &serde_json::Value,
    trust: bool,
    own_accounts: &BTreeSet<String>,
    db: &db::ActionDb,
) -> Vec<(Code, Option<usize>, String)> {
    let cx = DocContext {
        trust,
        own_accounts,
    };
    rules::check(doc, &cx, db)
        .into_iter()
        .map(|r| (r.code, r.statement, r.message))
        .collect()
}

/// Where a finding is written: the value it is about (a finding's message starts with it,
/// in backticks, when it is about one), else its statement, else its document.
fn place<'p>(places: &'p [Place], document: &str, raw: &Raw) -> Option<&'p str> {
    let about = raw
        .message
        .strip_prefix('`')
        .and_then(|m| m.split_once('`'))
        .map(|(a, _)| a);
    let of_document = || places.iter().filter(|p| p.document == document);
    let find = |statement: Option<usize>, text: Option<&str>| {
        of_document()
            .find(|p| p.statement == statement && p.text.as_deref() == text)
            .map(|p| p.origin.as_str())
    };
    about
        .and_then(|a| find(raw.statement, Some(a)))
        .or_else(|| raw.statement.and_then(|i| find(Some(i), None)))
        .or_else(|| find(None, None))
}

/// `file:line:col` -> its parts (a file name may itself contain colons).
fn split_origin(origin: &str) -> (String, usize, usize) {
    let mut parts = origin.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse().ok());
    let line = parts.next().and_then(|l| l.parse().ok());
    match (parts.next(), line, col) {
        (Some(file), Some(line), Some(col)) => (file.to_string(), line, col),
        _ => (origin.to_string(), 0, 0),
    }
}
