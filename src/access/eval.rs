//! The evaluator: one request against the policies that apply to it, following IAM's
//! evaluation logic as the module documentation states it.

use super::condition::{self, values_of};
use super::matcher::{arn_account, arn_parts, resource_matches};
use super::{Context, Tri, merge};
use crate::lint::db::glob;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub kind: CallerKind,
    /// The principal's ARN (`arn:aws:iam::ID:role/path/NAME`), the service
    /// (`lambda.amazonaws.com`) or the federated provider.
    pub id: String,
    /// The account of a role, user or account principal.
    pub account: Option<String>,
    /// The session's ARN, for a role (`arn:aws:sts::ID:assumed-role/NAME/SESSION`).
    pub session_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    Role,
    User,
    /// Any principal of an account that its own policies allow (`arn:...:root`).
    Account,
    Service,
    Federated,
    /// Any principal at all (`"*"` in a trust policy).
    Anyone,
}

impl Caller {
    /// A role or user by ARN (the account is read from it).
    pub fn iam(kind: CallerKind, arn: &str) -> Caller {
        Caller {
            kind,
            id: arn.to_string(),
            account: arn_account(arn).map(str::to_string),
            session_arn: None,
        }
    }

    /// The context keys the caller itself supplies: its ARN, account, type, user name.
    /// (Tags come from `World`, which knows them.)
    pub fn context_keys(&self, ctx: &mut Context) {
        let name = self.id.rsplit('/').next().unwrap_or(&self.id).to_string();
        match self.kind {
            CallerKind::Role | CallerKind::User => {
                ctx.set_default("aws:PrincipalArn", vec![self.id.clone()]);
                if let Some(a) = &self.account {
                    ctx.set_default("aws:PrincipalAccount", vec![a.clone()]);
                }
                let ty = if self.kind == CallerKind::Role {
                    "AssumedRole"
                } else {
                    ctx.set_default("aws:username", vec![name]);
                    "User"
                };
                ctx.set_default("aws:PrincipalType", vec![ty.into()]);
            }
            CallerKind::Service => {
                ctx.set_default("aws:PrincipalServiceName", vec![self.id.clone()]);
                // A service acting for a resource says which; the request does not say here.
                for k in ["aws:SourceAccount", "aws:SourceArn", "aws:SourceOwner"] {
                    ctx.mark_unknown(k);
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            CallerKind::Service => write!(f, "service {}", self.id),
            CallerKind::Federated => write!(f, "federated {}", self.id),
            CallerKind::Anyone => f.write_str("anyone (\"*\")"),
            _ => f.write_str(&self.id),
        }
    }
}

/// One request: who, what, on which resource, with which context.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Inline or managed, of the principal or (for a user) its groups.
    Identity,
    PermissionsBoundary,
    /// A role's trust policy: the resource policy of the `sts:` actions on the role.
    Trust,
}

/// Where a policy comes from, for messages: `role.app inline policy logs`,
/// `policy.readers (arn:aws:iam::...:policy/readers)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySource {
    pub kind: PolicyKind,
    pub name: String,
}

/// A policy that applies to the request; `document: None` when the plan does not hold it
/// (an AWS managed policy): it may allow or deny anything.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub source: PolicySource,
    pub document: Option<&'a Value>,
}

/// The policies that apply to one request.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    pub identity: Vec<Policy<'a>>,
    pub boundary: Option<Policy<'a>>,
    /// The resource's policy: the target role's trust policy for `sts:` actions.
    pub resource: Option<Policy<'a>>,
    /// Whether the caller's identity policies are those of `identity` (false for a
    /// principal outside the plan, whose policies are unknown).
    pub identity_known: bool,
    /// The account of the resource, when known (`None`: the resource's ARN names none, as
    /// S3's; taken as the caller's account).
    pub resource_account: Option<String>,
}

/// A statement that took part in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub policy: PolicySource,
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: &'static str,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} Statement[{}]{} ({})",
            self.policy.name,
            self.index,
            self.sid
                .as_ref()
                .map(|s| format!(" \"{s}\""))
                .unwrap_or_default(),
            self.effect
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    ImplicitlyDenied,
    ExplicitlyDenied,
    Unknown { reasons: Vec<String> },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        *self == Decision::Allowed
    }
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            Decision::ImplicitlyDenied | Decision::ExplicitlyDenied
        )
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allowed => f.write_str("allowed"),
            Decision::ImplicitlyDenied => f.write_str("denied (implicitly: nothing allows it)"),
            Decision::ExplicitlyDenied => f.write_str("denied (explicitly, by a Deny statement)"),
            Decision::Unknown { .. } => f.write_str("unknown"),
        }
    }
}

/// The answer: the decision, the statements that decided it, and notes on why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    #[serde(flatten)]
    pub decision: Decision,
    pub statements: Vec<StatementRef>,
    pub notes: Vec<String>,
}

/// How a trust statement named the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    /// The caller itself, or `*`.
    Directly,
    /// Only its account (`:root`): the account's own policies must also allow.
    Account,
}

/// What the statements of one side say.
#[derive(Default)]
struct Side {
    allow: Vec<StatementRef>,
    /// Allowing statements of a trust policy that named only the caller's account.
    allow_account: Vec<StatementRef>,
    allow_unknown: Vec<String>,
    deny: Vec<StatementRef>,
    deny_unknown: Vec<String>,
}

impl Side {
    fn allows(&self) -> Tri {
        if !self.allow.is_empty() {
            Tri::Yes
        } else if !self.allow_unknown.is_empty() {
            Tri::Unknown(self.allow_unknown.clone())
        } else {
            Tri::No
        }
    }
}

fn collect(p: &Policy, req: &Request, side: &mut Side, trust: bool) {
    let Some(doc) = p.document else {
        let why = format!(
            "{} is not in the plan: its statements are unknown",
            p.source.name
        );
        side.allow_unknown.push(why.clone());
        side.deny_unknown.push(why);
        return;
    };
    let vars = doc.get("Version").and_then(Value::as_str) == Some("2012-10-17");
    let stmts: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => {
            let why = format!("{} has no readable Statement", p.source.name);
            side.allow_unknown.push(why.clone());
            side.deny_unknown.push(why);
            return;
        }
    };
    for (index, stmt) in stmts.into_iter().enumerate() {
        let effect = match stmt.get("Effect").and_then(Value::as_str) {
            Some("Allow") => "Allow",
            Some("Deny") => "Deny",
            _ => {
                let why = format!(
                    "{} Statement[{index}] has no Effect Allow or Deny",
                    p.source.name
                );
                side.allow_unknown.push(why.clone());
                side.deny_unknown.push(why);
                continue;
            }
        };
        let r = StatementRef {
            policy: p.source.clone(),
            index,
            sid: stmt
                .get("Sid")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            effect,
        };
        let (applies, named) = statement_applies(stmt, req, trust, vars);
        match (effect, applies) {
            (_, Tri::No) => {}
            ("Allow", Tri::Yes) if named == Some(Named::Account) => side.allow_account.push(r),
            ("Allow", Tri::Yes) => side.allow.push(r),
            ("Allow", Tri::Unknown(why)) => {
                let why = why.into_iter().map(|w| format!("{r}: {w}")).collect();
                merge(&mut side.allow_unknown, why);
            }
            (_, Tri::Yes) => side.deny.push(r),
            (_, Tri::Unknown(why)) => {
                let why = why.into_iter().map(|w| format!("{r}: {w}")).collect();
                merge(&mut side.deny_unknown, why);
            }
        }
    }
}

/// Whether one statement applies to the request (ignoring its effect), and for a trust
/// statement how it named the caller.
fn statement_applies(stmt: &Value, req: &Request, trust: bool, vars: bool) -> (Tri, Option<Named>) {
    let action = match (stmt.get("Action"), stmt.get("NotAction")) {
        (Some(a), None) => list_match(a, |p| glob(p, req.action)),
        (None, Some(a)) => list_match(a, |p| glob(p, req.action)).not(),
        _ => Tri::unknown("a statement needs exactly one of Action and NotAction"),
    };
    if action == Tri::No {
        return (Tri::No, None);
    }
    let resource = match (stmt.get("Resource"), stmt.get("NotResource")) {
        (Some(r), None) => resource_list(r, req, vars),
        (None, Some(r)) => resource_list(r, req, vars).not(),
        // A trust policy's statements name no resource: the role itself.
        (None, None) if trust => Tri::Yes,
        _ => Tri::unknown("a statement needs exactly one of Resource and NotResource"),
    };
    let mut out = action.and(resource);
    if out == Tri::No {
        return (Tri::No, None);
    }
    let mut named = None;
    if trust {
        let (m, n) = match (stmt.get("Principal"), stmt.get("NotPrincipal")) {
            (Some(p), None) => principal_match(p, req.caller),
            (None, Some(p)) => {
                let m = match principal_match(p, req.caller) {
                    // AWS exempts a role or user from a NotPrincipal only when the list also
                    // names its account, and for a role session the session: not modelled.
                    (Tri::Yes, _)
                        if matches!(req.caller.kind, CallerKind::Role | CallerKind::User) =>
                    {
                        Tri::unknown(
                            "NotPrincipal names the caller or its account; whether that exempts it depends on the other entries (account, session) and is not modelled",
                        )
                    }
                    (m, _) => m,
                };
                (m.not(), Some(Named::Directly))
            }
            _ => (
                Tri::unknown("a trust statement needs exactly one of Principal and NotPrincipal"),
                None,
            ),
        };
        named = n;
        out = out.and(m);
        if out == Tri::No {
            return (Tri::No, None);
        }
    }
    if let Some(c) = stmt.get("Condition") {
        out = out.and(condition::evaluate(c, req.context, vars));
    }
    (out, named)
}

fn list_match(v: &Value, f: impl Fn(&str) -> bool) -> Tri {
    match values_of(v) {
        Some(items) => Tri::from_bool(items.iter().any(|p| f(p))),
        None => Tri::unknown("an Action or Resource entry is not a string"),
    }
}

fn resource_list(v: &Value, req: &Request, vars: bool) -> Tri {
    let Some(items) = values_of(v) else {
        return Tri::unknown("a Resource entry is not a string");
    };
    let mut out = Tri::No;
    for p in items {
        let m = match condition::substitute(&p, req.context, vars) {
            condition::Subst::Tokens(t) => Tri::from_bool(resource_matches(&t, req.resource)),
            // A variable without a value: this entry matches nothing.
            condition::Subst::Absent(_) => Tri::No,
            condition::Subst::Unknown(why) => Tri::unknown(format!("Resource {p}: {why}")),
        };
        out = out.or(m);
        if out == Tri::Yes {
            break;
        }
    }
    out
}

/// Whether a `Principal` element names the caller, and how.
fn principal_match(p: &Value, caller: &Caller) -> (Tri, Option<Named>) {
    if p.as_str() == Some("*") {
        return (Tri::Yes, Some(Named::Directly));
    }
    let Value::Object(map) = p else {
        return (
            Tri::unknown("a Principal that is neither \"*\" nor an object"),
            None,
        );
    };
    let mut out = (Tri::No, None);
    for (kind, ids) in map {
        let Some(ids) = values_of(ids) else {
            return (
                Tri::unknown(format!("Principal {kind}: an entry is not a string")),
                None,
            );
        };
        for id in ids {
            let m = match kind.as_str() {
                "AWS" => aws_principal(&id, caller),
                "Service" => (
                    Tri::from_bool(
                        caller.kind == CallerKind::Service && caller.id.eq_ignore_ascii_case(&id),
                    ),
                    Some(Named::Directly),
                ),
                "Federated" => (
                    Tri::from_bool(caller.kind == CallerKind::Federated && caller.id == id),
                    Some(Named::Directly),
                ),
                "CanonicalUser" => (Tri::No, None),
                other => (
                    Tri::unknown(format!("the principal type {other} is not modelled")),
                    None,
                ),
            };
            match m {
                (Tri::Yes, Some(Named::Directly)) => return m,
                (Tri::Yes, n) => out = (Tri::Yes, n),
                (Tri::Unknown(w), n) if out.0 != Tri::Yes => out = (out.0.or(Tri::Unknown(w)), n),
                _ => {}
            }
        }
    }
    out
}

fn aws_principal(id: &str, caller: &Caller) -> (Tri, Option<Named>) {
    if id == "*" {
        return (Tri::Yes, Some(Named::Directly));
    }
    let account = if crate::policy::is_account_id(id) {
        Some(id)
    } else {
        arn_parts(id)
            .filter(|p| p[2] == "iam" && p[5] == "root")
            .map(|p| p[4])
    };
    if let Some(account) = account {
        let same = caller.account.as_deref() == Some(account);
        return match caller.kind {
            CallerKind::Role | CallerKind::User => (Tri::from_bool(same), Some(Named::Account)),
            CallerKind::Account => (Tri::from_bool(same), Some(Named::Directly)),
            _ => (Tri::No, None),
        };
    }
    if id.contains(['*', '?']) {
        return (
            Tri::unknown(format!(
                "the principal {id} has a wildcard, which IAM does not match"
            )),
            None,
        );
    }
    let named = Some(Named::Directly);
    // A role session's ARN: decided by the caller's session name, when known.
    if let (Some(p), CallerKind::Role) = (arn_parts(id), caller.kind)
        && p[2] == "sts"
        && let Some(rest) = p[5].strip_prefix("assumed-role/")
    {
        let role = rest.split('/').next().unwrap_or(rest);
        let same_role = caller.account.as_deref() == Some(p[4])
            && caller
                .id
                .rsplit('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(role));
        return match (&caller.session_arn, same_role) {
            (_, false) => (Tri::No, named),
            (Some(s), true) => (Tri::from_bool(s == id), named),
            (None, true) => (
                Tri::unknown(format!(
                    "{id} names one session of the role; the caller's session name is not known"
                )),
                named,
            ),
        };
    }
    match caller.kind {
        CallerKind::Role | CallerKind::User => {
            // IAM names are unique without regard to case; the trust holds the unique ID.
            let yes = same_iam_arn(id, &caller.id)
                || caller.session_arn.as_deref().is_some_and(|s| s == id);
            (Tri::from_bool(yes), named)
        }
        _ => (Tri::No, None),
    }
}

fn same_iam_arn(a: &str, b: &str) -> bool {
    match (arn_parts(a), arn_parts(b)) {
        (Some(x), Some(y)) => {
            x[..5] == y[..5] && {
                // The path does not identify a role or user: the name does.
                let name = |r: &str| r.rsplit('/').next().unwrap_or(r).to_ascii_lowercase();
                let ty = |r: &str| r.split('/').next().unwrap_or(r).to_string();
                ty(x[5]) == ty(y[5]) && name(x[5]) == name(y[5])
            }
        }
        _ => false,
    }
}

/// The decision for one request, and the statements that made it. Pure.
pub fn evaluate(req: &Request, set: &PolicySet) -> Evaluation {
    let mut identity = Side::default();
    for p in &set.identity {
        collect(p, req, &mut identity, false);
    }
    if !set.identity_known {
        let why = format!("the policies of {} are not in the plan", req.caller);
        identity.allow_unknown.push(why.clone());
        identity.deny_unknown.push(why);
    }
    let mut boundary = Side::default();
    if let Some(b) = &set.boundary {
        collect(b, req, &mut boundary, false);
    }
    let mut resource = Side::default();
    if let Some(r) = &set.resource {
        collect(r, req, &mut resource, true);
    }

    let mut notes = Vec::new();
    let denies: Vec<StatementRef> = [&identity, &boundary, &resource]
        .iter()
        .flat_map(|s| s.deny.iter().cloned())
        .collect();
    if !denies.is_empty() {
        return Evaluation {
            decision: Decision::ExplicitlyDenied,
            statements: denies,
            notes,
        };
    }

    let boundary_allows = if set.boundary.is_some() {
        boundary.allows()
    } else {
        Tri::Yes
    };
    let identity_allows = identity.allows().and(boundary_allows.clone());
    let caller_account = req.caller.account.as_deref();
    let same_account = match (&set.resource_account, caller_account) {
        (Some(r), Some(c)) => r == c,
        (None, Some(_)) => true,
        _ => false,
    };
    let mut deciding: Vec<StatementRef> = Vec::new();
    let allow = if set.resource.is_some() {
        let direct = resource.allows();
        let via_account = if resource.allow_account.is_empty() {
            Tri::No
        } else {
            Tri::Yes
        };
        let any = direct.clone().or(via_account.clone());
        let allow = if matches!(req.caller.kind, CallerKind::Service | CallerKind::Federated) {
            // A service or an identity provider has no identity policies: the trust decides.
            direct.clone()
        } else if same_account {
            let direct_enough = match req.caller.kind {
                CallerKind::User => direct.clone(),
                CallerKind::Role => direct.clone().and(boundary_allows.clone()),
                _ => direct.clone(),
            };
            direct_enough.or(any.clone().and(identity_allows.clone()))
        } else {
            any.clone().and(identity_allows.clone())
        };
        if allow == Tri::Yes {
            deciding.extend(resource.allow.iter().cloned());
            deciding.extend(resource.allow_account.iter().cloned());
            if !(same_account && direct == Tri::Yes && req.caller.kind == CallerKind::User) {
                deciding.extend(identity.allow.iter().cloned());
            }
            if set.boundary.is_some() {
                deciding.extend(boundary.allow.iter().cloned());
            }
        } else {
            if any == Tri::No {
                notes.push(format!(
                    "{} does not allow {} for {}",
                    set.resource
                        .as_ref()
                        .map(|r| r.source.name.as_str())
                        .unwrap_or("the resource policy"),
                    req.action,
                    req.caller
                ));
            }
            if identity.allows() == Tri::No && (!same_account || direct != Tri::Yes) {
                notes.push(no_allow_note(req, "identity policies"));
            }
            if boundary_allows == Tri::No {
                notes.push(no_allow_note(req, "permissions boundary"));
            }
        }
        allow
    } else {
        let mut allow = identity_allows.clone();
        if allow == Tri::Yes {
            deciding.extend(identity.allow.iter().cloned());
            deciding.extend(boundary.allow.iter().cloned());
            if !same_account {
                allow = Tri::unknown(format!(
                    "{} is in another account than {}: its own resource policy must also allow, and it is not in the plan",
                    req.resource, req.caller
                ));
            }
        } else {
            if identity.allows() == Tri::No {
                notes.push(no_allow_note(req, "identity policies"));
            }
            if boundary_allows == Tri::No {
                notes.push(no_allow_note(req, "permissions boundary"));
            }
        }
        allow
    };

    let deny_unknown: Vec<String> = [&identity, &boundary, &resource]
        .iter()
        .flat_map(|s| s.deny_unknown.iter().cloned())
        .collect();
    let decision = match allow {
        Tri::No => Decision::ImplicitlyDenied,
        Tri::Yes if deny_unknown.is_empty() => Decision::Allowed,
        Tri::Yes => Decision::Unknown {
            reasons: deny_unknown
                .into_iter()
                .map(|w| format!("a Deny may apply: {w}"))
                .collect(),
        },
        Tri::Unknown(mut reasons) => {
            // A Deny that may apply is a reason too: knowing the allow would not settle it.
            let more = deny_unknown
                .into_iter()
                .filter(|w| !reasons.contains(w))
                .map(|w| format!("a Deny may apply: {w}"))
                .collect();
            merge(&mut reasons, more);
            Decision::Unknown { reasons }
        }
    };
    Evaluation {
        statements: if decision == Decision::Allowed || matches!(decision, Decision::Unknown { .. })
        {
            deciding
        } else {
            Vec::new()
        },
        decision,
        notes,
    }
}

fn no_allow_note(req: &Request, what: &str) -> String {
    format!(
        "no statement of the {what} allows {} on {}",
        req.action, req.resource
    )
}
