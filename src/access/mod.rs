//! Access analysis: what the plan's policies allow, offline. Pure: no AWS, no I/O.
//!
//! Three questions, one file each:
//!
//! - **May this principal do this?** [`evaluate`] (in `eval.rs`, conditions in
//!   `condition.rs`, wildcards and ARNs in `matcher.rs`) answers for one [`Request`] against
//!   a [`PolicySet`]: `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied`, or `Unknown` with
//!   the reasons, and the statements that decided it. [`World`] (`world.rs`) builds the
//!   policy set of a role or user of a [`crate::model::Desired`] (its inline and managed
//!   policies, its groups' for a user, its permissions boundary, and the target role's
//!   trust policy for `sts:` actions): `World::new(&desired).explain(..)` is what
//!   `iamplan explain` prints and what `smoke` should compare with AWS's answer.
//! - **Who can reach it?** [`who_can`] (`graph.rs`): the plan's principals and the outside
//!   principals its trust policies name that are allowed an action on a resource, directly
//!   or through chains of `sts:AssumeRole` through the plan's roles (PMapper's graph).
//! - **What does a change do to access?** [`classify`] (`classify.rs`) compares an old and a
//!   new policy document: `Narrows`, `Equivalent`, `Widens` or `Changes`, with the actions x
//!   resources (x condition) gained and lost; [`classify_trust`] names the principals that
//!   gain or lose the right to assume a role. Load the action database once
//!   ([`crate::lint::db::load`]) and pass it to every call.
//!
//! # For the integrations
//!
//! - `plan` (JSON plan, `--deny-widening`): load the database once (`lint::db::load()`,
//!   about 15 ms), then per changed document `classify(&before.value(), &after.value(), &db)`,
//!   or `classify_trust(.., Some(&account_id))` for a trust policy (the real account ID:
//!   it decides whether a `:root` covers a principal). [`Difference`] serialises as is
//!   (`classification`, `gained`, `lost`, `notes`); `Difference::lines()` is the text
//!   rendering. A change widens when the classification is `Widens` or `Changes`. A created
//!   document is a change from `{"Statement": []}`, a deleted one a change to it.
//! - `smoke`: `World::new(&desired)` once, then per step of a check
//!   `World::evaluate_as(&caller, addr, action, resource, &ctx)`, the caller being the
//!   previous step's role (`World::caller`) or, for the first, the profile's principal as
//!   `Caller::iam(..)` with `addr: None`; session tags go in `ctx` as
//!   `aws:PrincipalTag/KEY`, and `sts:ExternalId`, `sts:RoleSessionName` likewise.
//! - Differential tests: [`evaluate`] with hand-built [`PolicySet`]s and
//!   [`Context::complete`] contexts (every key the generated request has is given, so
//!   nothing is unknown for lack of a key); compare `Decision::is_allowed` with the
//!   emulator's answer and count `Unknown` apart.
//!
//! # Evaluation rules implemented
//!
//! - Default deny; an applicable `Deny` in any policy wins over every `Allow`.
//! - `Action`/`NotAction` with `*` and `?`, without regard to case; `Resource`/`NotResource`
//!   with wildcards, with regard to case, ARNs compared part by part (a wildcard stays in its
//!   part, except a `*` that ends one of the first five parts, which may reach across the
//!   colons after it, as AWS documents; `ArnLike` conditions stay strictly part by part);
//!   policy variables in resources and condition values when `Version` is
//!   `2012-10-17` (`${aws:username}`, `${aws:PrincipalTag/x}`, any key of the context,
//!   `${*}`, `${?}`, `${$}`, `${key, 'default'}`); under `2008-10-17` they are literal text.
//! - `Principal`/`NotPrincipal` in trust policies: `*`, account IDs and `:root` ARNs (the
//!   whole account, which then must also allow through its own identity policies), role and
//!   user ARNs (without regard to case in the name: IAM resolves them to unique IDs),
//!   `assumed-role` session ARNs (decided by the caller's session name, unknown without it),
//!   services and federated providers. A `NotPrincipal` that names a role or user caller
//!   or its account is `Unknown`: AWS exempts such a caller only when the list also names
//!   its account and, for a role, its session, which the plan cannot say.
//! - Conditions: the string, numeric, date, `Bool`, `Null`, IP address and ARN operators, with
//!   `...IfExists` and `ForAnyValue:`/`ForAllValues:`; several values of one key are OR, several
//!   keys and operators are AND; keys without regard to case. A key absent from the request
//!   makes a positive operator false and a negated one (`StringNotEquals`, ...) true,
//!   `ForAllValues` true and `ForAnyValue` false.
//! - Identity side: the union of the principal's identity policies (a user's include its
//!   groups'), intersected with its permissions boundary.
//! - Resource side: a role's trust policy is the resource policy of the `sts:` actions on
//!   that role. `sts:AssumeRole` and the other `sts:` role actions always need the trust
//!   policy to allow. In one account, a trust statement that names the caller itself
//!   (or `*`) is enough on its own for a user; for a role caller its permissions boundary
//!   must also allow (AWS: a resource policy naming a role ARN is limited by the role's
//!   boundary); a statement that names only the account (`:root`) delegates to the
//!   account, so the identity side must allow too. Across accounts both sides must allow.
//! - For other actions the plan holds no resource policy: the identity side decides in the
//!   caller's own account; for a resource in another account the answer is at most
//!   `Unknown` (that account's resource policy must also allow and is not in the plan).
//!
//! # Not modelled (the answer is `Unknown` where it could matter, never a guess)
//!
//! Service control and resource control policies, session policies, resource policies
//! outside the plan (S3 buckets, Lambda functions), managed policies whose document is not
//! in the plan (AWS managed ones), `BinaryEquals` and unknown operators, keys the request
//! context does not give unless the context is [`Context::complete`] (the principal's own
//! keys, the tags and `sts:ExternalId`, `sts:RoleSessionName`, `sts:SourceIdentity`,
//! `aws:SourceAccount`/`aws:SourceArn` are taken as absent when not given: the caller
//! controls them), a multi-valued key under an operator without a set prefix, and the
//! account root user (which no policy restricts within its account).

mod classify;
mod condition;
mod eval;
mod graph;
pub mod matcher;
mod world;

pub use classify::{AccessDelta, Classification, Difference, Through, classify, classify_trust};
pub use eval::{
    Caller, CallerKind, Decision, Evaluation, Policy, PolicyKind, PolicySet, PolicySource, Request,
    StatementRef, evaluate,
};
pub use graph::{Reach, Step, who_can};
pub use world::World;

use std::collections::BTreeMap;

/// A mistake in what was asked (a principal, account or context the plan does not know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("no {kind} named `{name}` in the plan{}", suggestion(.did_you_mean))]
    UnknownPrincipal {
        kind: String,
        name: String,
        did_you_mean: Option<String>,
    },
    #[error("`{0}` is not a principal: give role/NAME, user/NAME or a role or user ARN")]
    BadPrincipal(String),
    #[error("no account `{alias}` in the plan{}", suggestion(.did_you_mean))]
    UnknownAccount {
        alias: String,
        did_you_mean: Option<String>,
    },
    #[error("`{0}` is not a context entry: give KEY=VALUE, e.g. sts:ExternalId=abc")]
    BadContext(String),
    #[error("`{0}` is not an action: give SERVICE:ACTION, e.g. lambda:InvokeFunction")]
    BadAction(String),
    #[error("`{0}` is not a resource: give an ARN, `*`, or role/NAME or user/NAME of the plan")]
    BadResource(String),
}

fn suggestion(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(": did you mean `{s}`?"))
        .unwrap_or_default()
}

/// The request context: condition keys (without regard to case) and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
    complete: bool,
    /// Keys whose absence is not known after all (a service sends `aws:SourceAccount`).
    unknown: std::collections::BTreeSet<String>,
}

/// Keys the caller itself decides or that describe the caller: when the request does not
/// carry them, they are absent, not unknown.
const ABSENCE_KNOWN: &[&str] = &[
    "aws:principaltag/",
    "aws:requesttag/",
    "aws:tagkeys",
    "sts:externalid",
    "sts:rolesessionname",
    "sts:sourceidentity",
    "sts:transitivetagkeys",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:username",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
];

/// What the context says about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Values(&'a [String]),
    Absent,
    /// Not given, and its absence is not known: why.
    Unknown(String),
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// A context that holds every key of the request: a key it lacks is absent (for
    /// requests whose every key is known, e.g. one a test made).
    pub fn complete(mut self) -> Self {
        self.complete = true;
        self
    }

    /// Sets a key's values (replacing any before).
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    /// Adds one value to a key (a key given twice is multi-valued, as `aws:TagKeys`).
    pub fn add(&mut self, key: &str, value: &str) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }

    /// Sets a key only when the context does not already hold it.
    pub fn set_default(&mut self, key: &str, values: Vec<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_insert(values);
    }

    /// Makes a key's absence unknown even where the caller usually decides it.
    pub fn mark_unknown(&mut self, key: &str) {
        self.unknown.insert(key.to_ascii_lowercase());
    }

    /// `KEY=VALUE`, as given on the command line.
    pub fn parse_pair(pair: &str) -> Result<(String, String), AccessError> {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(AccessError::BadContext(pair.to_string())),
        }
    }

    pub(crate) fn lookup(&self, key: &str) -> Lookup<'_> {
        // Keys compare case-insensitively; messages name the key as the policy wrote it.
        let lower = key.to_ascii_lowercase();
        match self.values.get(&lower) {
            Some(v) if !v.is_empty() => Lookup::Values(v),
            Some(_) => Lookup::Absent,
            None if self.complete
                || (!self.unknown.contains(&lower)
                    && ABSENCE_KNOWN.iter().any(|k| lower.starts_with(k))) =>
            {
                Lookup::Absent
            }
            None => Lookup::Unknown(format!(
                "the condition key {key} is not in the request context (give --context {key}=VALUE)"
            )),
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// A three-valued answer: a match, no match, or undecidable (with why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tri {
    Yes,
    No,
    Unknown(Vec<String>),
}

impl Tri {
    pub(crate) fn unknown(reason: impl Into<String>) -> Tri {
        Tri::Unknown(vec![reason.into()])
    }

    pub(crate) fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Unknown(mut a), Tri::Unknown(b)) => {
                merge(&mut a, b);
                Tri::Unknown(a)
            }
            (u @ Tri::Unknown(_), Tri::Yes) | (Tri::Yes, u @ Tri::Unknown(_)) => u,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
        }
    }

    pub(crate) fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::Unknown(mut a), Tri::Unknown(b)) => {
                merge(&mut a, b);
                Tri::Unknown(a)
            }
            (u @ Tri::Unknown(_), Tri::No) | (Tri::No, u @ Tri::Unknown(_)) => u,
            (Tri::No, Tri::No) => Tri::No,
        }
    }

    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            u => u,
        }
    }
}

pub(crate) fn merge(into: &mut Vec<String>, more: Vec<String>) {
    for r in more {
        if !into.contains(&r) {
            into.push(r);
        }
    }
}

#[cfg(test)]
mod tests;
