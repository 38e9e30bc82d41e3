//! IAM's policy grammar, as IAM enforces it when a policy is written: what `plan` and
//! `validate` must refuse so that apply never meets a `MalformedPolicyDocument`.
//!
//! Every problem of a document is reported, not only the first; each names the statement
//! it is in, so that the plan file's excerpt can point at it.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How bad a problem is: an error stops the plan, a warning is shown and the plan goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// The statement it is in (0-based), when it is in one.
    pub statement: Option<usize>,
    pub message: String,
    pub help: Option<String>,
    /// The JSON text the problem is about (a quoted value or key), so that a document
    /// written as JSON can be pointed at the exact place.
    pub needle: Option<String>,
}

impl Problem {
    fn error(statement: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            statement,
            message: message.into(),
            help: None,
            needle: None,
        }
    }

    /// The problem is about this string of the document (a value or a key).
    fn about(mut self, text: &str) -> Self {
        self.needle = Some(serde_json::Value::String(text.to_string()).to_string());
        self
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The keys a statement may have.
pub const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
];

/// IAM's condition operators; case matters (`stringequals` is refused).
const OPERATORS: [&str; 27] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

/// Checks a document against IAM's grammar. `trust`: a role's trust policy (a resource
/// policy: Principal required, no Resource) rather than an identity policy.
pub fn check(doc: &Value, trust: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let Value::Object(map) = doc else {
        out.push(Problem::error(
            None,
            "a policy document must be a JSON object",
        ));
        return out;
    };
    for k in map.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            out.push(Problem::error(
                None,
                format!("unknown top-level key `{k}` (expected Version, Id or Statement)"),
            ));
        }
    }
    let version = match map.get("Version") {
        None => super::DEFAULT_VERSION,
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => v.as_str(),
        Some(v) => {
            out.push(
                Problem::error(
                    None,
                    format!("Version must be \"2012-10-17\" or \"2008-10-17\", found {v}"),
                )
                .help("use \"2012-10-17\", the current policy language"),
            );
            "2012-10-17"
        }
    };
    let Some(stmts) = super::statements(doc) else {
        out.push(Problem::error(
            None,
            "a policy document needs a Statement (an object or an array of objects)",
        ));
        return out;
    };
    if stmts.is_empty() {
        out.push(Problem::error(None, "Statement is empty"));
    }
    let mut sids = BTreeSet::new();
    for (i, s) in stmts.iter().enumerate() {
        let Value::Object(st) = s else {
            out.push(Problem::error(Some(i), "a statement must be an object"));
            continue;
        };
        statement(i, st, trust, &mut sids, &mut out);
        outside_latin_1(i, s, &mut out);
    }
    if version == "2008-10-17" && uses_policy_variables(doc) {
        out.push(Problem {
            severity: Severity::Warning,
            statement: None,
            message: "policy variables such as ${aws:username} are plain text under Version \"2008-10-17\"".into(),
            help: Some("set Version to \"2012-10-17\" (an omitted Version means 2008-10-17)".into()),
            needle: None,
        });
    }
    out
}

/// IAM takes a policy document as text of tab, newline, carriage return and U+0020 to
/// U+00FF (policyDocumentType in the IAM API model, `[\u0009\u000A\u000D\u0020-\u00FF]+`):
/// a value in another script is refused when applied. Each string once.
fn outside_latin_1(i: usize, v: &Value, out: &mut Vec<Problem>) {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}');
    let mut check = |text: &str| {
        if let Some(c) = text.chars().find(|c| !allowed(*c)) {
            out.push(
                Problem::error(
                    Some(i),
                    format!("\"{text}\": IAM does not take U+{:04X} in a policy document", c as u32),
                )
                .about(text)
                .help("a policy document may hold tab, newline, carriage return and U+0020 to U+00FF (Latin-1) only; use * or ? for other characters in a pattern"),
            );
        }
    };
    fn walk(v: &Value, check: &mut dyn FnMut(&str)) {
        match v {
            Value::String(s) => check(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, check)),
            Value::Object(m) => {
                for (k, x) in m {
                    check(k);
                    walk(x, check);
                }
            }
            _ => {}
        }
    }
    walk(v, &mut check);
}

fn statement(
    i: usize,
    st: &Map<String, Value>,
    trust: bool,
    sids: &mut BTreeSet<String>,
    out: &mut Vec<Problem>,
) {
    let at = Some(i);
    for k in st.keys() {
        if !STATEMENT_KEYS.contains(&k.as_str()) {
            out.push(Problem::error(at, format!("unknown statement key `{k}`")).about(k).help(
                "a statement has Sid, Effect, Action/NotAction, Resource/NotResource, Principal, Condition",
            ));
        }
    }
    match st.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(e) => out.push(
            Problem::error(
                at,
                format!("Effect must be exactly \"Allow\" or \"Deny\", found {e}"),
            )
            .about(e.as_str().unwrap_or("Effect")),
        ),
        None => out.push(
            Problem::error(at, "the statement has no Effect").help("add \"Effect\": \"Allow\""),
        ),
    }
    match st.get("Sid") {
        None => {}
        Some(Value::String(sid)) => {
            if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.push(
                    Problem::error(at, format!("Sid \"{sid}\" has characters IAM refuses"))
                        .about(sid)
                        .help("a Sid is letters and digits only, e.g. \"AllowInvoke\""),
                );
            } else if !sid.is_empty() && !sids.insert(sid.clone()) {
                out.push(
                    Problem::error(at, format!("Sid \"{sid}\" is used twice"))
                        .about(sid)
                        .help("give each statement its own Sid"),
                );
            }
        }
        Some(v) => out.push(Problem::error(
            at,
            format!("Sid must be a string, found {v}"),
        )),
    }
    one_of(st, at, "Action", "NotAction", true, out);
    for key in ["Action", "NotAction"] {
        if let Some(v) = st.get(key) {
            for a in strings(v, at, key, out) {
                if let Some(p) = action_problem(a) {
                    out.push(Problem::error(at, format!("{key} \"{a}\": {p}")).about(a).help(
                        "an action is service:Action, e.g. \"lambda:InvokeFunction\"; * and ? are wildcards",
                    ));
                }
            }
        }
    }
    let has_principal = st.contains_key("Principal") || st.contains_key("NotPrincipal");
    if trust {
        if st.contains_key("NotPrincipal") {
            out.push(Problem::error(at, "NotPrincipal is not allowed in a trust policy").about("NotPrincipal").help(
                "name the principals that may assume the role in Principal; deny others with a Deny statement and a condition",
            ));
        } else if !has_principal {
            out.push(
                Problem::error(at, "a trust policy statement needs a Principal")
                    .help("e.g. \"Principal\": {\"AWS\": \"arn:aws:iam::123456789012:root\"}"),
            );
        }
        for key in ["Resource", "NotResource"] {
            if st.contains_key(key) {
                out.push(Problem::error(
                    at,
                    format!(
                        "a trust policy statement has no {key}: the role itself is the resource"
                    ),
                ));
            }
        }
    } else {
        if has_principal {
            out.push(
                Problem::error(at, "an identity policy cannot have a Principal or NotPrincipal")
                    .help("the principal is whoever the policy is attached to; Principal belongs in a role's trust policy"),
            );
        }
        one_of(st, at, "Resource", "NotResource", true, out);
        for key in ["Resource", "NotResource"] {
            if let Some(v) = st.get(key) {
                for r in strings(v, at, key, out) {
                    if r != "*" && !r.starts_with("arn:") {
                        out.push(
                            Problem::error(at, format!("{key} \"{r}\" is neither an ARN nor *"))
                                .about(r)
                                .help("e.g. \"arn:aws:s3:::bucket/*\""),
                        );
                    }
                }
            }
        }
    }
    if let Some(p) = st.get("Principal") {
        principal(p, at, out);
    }
    if let Some(c) = st.get("Condition") {
        condition(c, at, out);
    }
}

/// Exactly one of `a` and `b` (when `required`), never both.
fn one_of(
    st: &Map<String, Value>,
    at: Option<usize>,
    a: &str,
    b: &str,
    required: bool,
    out: &mut Vec<Problem>,
) {
    match (st.contains_key(a), st.contains_key(b)) {
        (true, true) => out.push(
            Problem::error(at, format!("the statement has both {a} and {b}"))
                .about(b)
                .help(format!(
                    "keep one: {b} means everything except the values listed"
                )),
        ),
        (false, false) if required => out.push(Problem::error(
            at,
            format!("the statement needs {a} or {b}"),
        )),
        _ => {}
    }
}

/// The strings of a string-or-array value; anything else is reported.
fn strings<'v>(v: &'v Value, at: Option<usize>, key: &str, out: &mut Vec<Problem>) -> Vec<&'v str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => {
            if items.is_empty() {
                out.push(Problem::error(at, format!("{key} is an empty list")));
            }
            items
                .iter()
                .filter_map(|i| {
                    let s = i.as_str();
                    if s.is_none() {
                        out.push(Problem::error(at, format!("{key} holds {i}, not a string")));
                    }
                    s
                })
                .collect()
        }
        other => {
            out.push(Problem::error(
                at,
                format!("{key} must be a string or a list of strings, found {other}"),
            ));
            vec![]
        }
    }
}

/// Why an action name is malformed, if it is.
pub fn action_problem(a: &str) -> Option<&'static str> {
    if a == "*" {
        return None;
    }
    let Some((service, action)) = a.split_once(':') else {
        return Some("no service prefix");
    };
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Some("the service prefix is letters, digits and -");
    }
    // One published action has a hyphen (vpc-lattice:AssociateViaAWSService-EventsAndStates).
    if action.is_empty()
        || !action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-'))
    {
        return Some("the action name is letters and digits, with * and ? as wildcards");
    }
    None
}

fn principal(p: &Value, at: Option<usize>, out: &mut Vec<Problem>) {
    let map = match p {
        Value::String(s) if s == "*" => return,
        Value::Object(m) => m,
        other => {
            out.push(
                Problem::error(at, format!("Principal must be \"*\" or an object, found {other}"))
                    .help("e.g. {\"AWS\": \"arn:aws:iam::123456789012:root\"} or {\"Service\": \"ec2.amazonaws.com\"}"),
            );
            return;
        }
    };
    for (kind, ids) in map {
        let ok: fn(&str) -> bool = match kind.as_str() {
            "AWS" => aws_principal,
            "Service" => service_principal,
            "Federated" => federated_principal,
            "CanonicalUser" => |s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()),
            _ => {
                out.push(
                    Problem::error(at, format!("unknown principal type `{kind}`"))
                        .about(kind)
                        .help("principal types are AWS, Service, Federated and CanonicalUser"),
                );
                continue;
            }
        };
        for id in strings(ids, at, &format!("Principal.{kind}"), out) {
            if kind == "AWS" && unique_id(id) {
                // IAM accepts it, but it can only name a principal that was deleted (unique
                // IDs are never reused): the statement trusts no one, and IAM's read-back
                // cannot be told from a live principal's, so the plan could never converge.
                out.push(
                    Problem::error(at, format!("AWS principal \"{id}\" is a unique ID, which IAM shows in place of a role or user that was deleted: it matches no principal, and recreating that name does not restore it"))
                        .about(id)
                        .help("name the principal by its ARN, e.g. arn:aws:iam::123456789012:role/NAME (IAM trusts the principal of that name now), or remove it"),
                );
                continue;
            }
            if !ok(id) {
                out.push(Problem::error(at, format!("{kind} principal \"{id}\" is not valid")).about(id).help(match kind.as_str() {
                    "AWS" => "an AWS principal is \"*\", a 12-digit account ID, or an IAM/STS ARN such as arn:aws:iam::123456789012:role/NAME",
                    "Service" => "a service principal looks like \"lambda.amazonaws.com\"",
                    "Federated" => "a federated principal is an identity provider ARN or a provider such as cognito-identity.amazonaws.com",
                    _ => "a canonical user ID is 64 hexadecimal digits",
                }));
            }
        }
    }
}

fn aws_principal(s: &str) -> bool {
    if s == "*" || super::is_account_id(s) {
        return true;
    }
    let Some((_, service, account, resource)) = crate::spec::arn_parts(s) else {
        return false;
    };
    matches!(service, "iam" | "sts")
        && (super::is_account_id(account) || account.contains("${"))
        && !resource.is_empty()
}

/// A role's (`AROA`) or user's (`AIDA`) unique ID, as IAM shows a deleted principal.
fn unique_id(s: &str) -> bool {
    (s.starts_with("AROA") || s.starts_with("AIDA"))
        && s.len() > 12
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn service_principal(s: &str) -> bool {
    let host = s
        .strip_suffix(".amazonaws.com")
        .or_else(|| s.strip_suffix(".amazonaws.com.cn"));
    host.is_some_and(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    })
}

fn federated_principal(s: &str) -> bool {
    s.starts_with("arn:") || (s.contains('.') && !s.contains(' '))
}

fn condition(c: &Value, at: Option<usize>, out: &mut Vec<Problem>) {
    let Value::Object(ops) = c else {
        out.push(Problem::error(
            at,
            format!("Condition must be an object, found {c}"),
        ));
        return;
    };
    for (op, keys) in ops {
        if let Some(p) = operator_problem(op) {
            out.push(p.located(at).about(op));
        }
        match keys {
            Value::Object(keys) => {
                for (key, values) in keys {
                    let fine = match values {
                        Value::Array(a) => a.iter().all(|v| !v.is_object() && !v.is_array()),
                        Value::Object(_) => false,
                        _ => true,
                    };
                    if !fine {
                        out.push(Problem::error(at, format!("{op}: the value of `{key}` must be a string, number, boolean or a list of them")));
                    }
                }
            }
            other => out.push(
                Problem::error(
                    at,
                    format!("{op} must map condition keys to values, found {other}"),
                )
                .help("e.g. \"StringEquals\": {\"sts:ExternalId\": \"my-id\"}"),
            ),
        }
    }
}

/// What is wrong with a condition operator, if anything: IAM's list, case-sensitive, with
/// an `IfExists` suffix and a `ForAnyValue:`/`ForAllValues:` set qualifier.
fn operator_problem(op: &str) -> Option<Problem> {
    let (qualifier, rest) = match op.split_once(':') {
        Some((q, rest)) => (Some(q), rest),
        None => (None, op),
    };
    if let Some(q) = qualifier
        && q != "ForAnyValue"
        && q != "ForAllValues"
    {
        return Some(
            Problem::error(
                None,
                format!("unknown condition set qualifier `{q}:` in `{op}`"),
            )
            .help("the qualifiers are ForAnyValue: and ForAllValues:"),
        );
    }
    let base = match rest.strip_suffix("IfExists") {
        Some("Null") => {
            return Some(Problem::error(
                None,
                "`NullIfExists` is not an operator: Null already tests for absence",
            ));
        }
        Some(b) => b,
        None => rest,
    };
    if OPERATORS.contains(&base) {
        return None;
    }
    let help = match OPERATORS.iter().find(|o| o.eq_ignore_ascii_case(base)) {
        Some(o) => format!("operators are case-sensitive: `{}`", op.replace(base, o)),
        None => match crate::spec::nearest(base, OPERATORS) {
            Some(n) => format!("did you mean `{n}`?"),
            None => "see IAM's condition operators: StringEquals, StringLike, ArnLike, Bool, NumericLessThan, IpAddress, Null, ...".into(),
        },
    };
    Some(Problem::error(None, format!("unknown condition operator `{op}`")).help(help))
}

impl Problem {
    fn located(mut self, at: Option<usize>) -> Self {
        self.statement = at;
        self
    }
}

/// Whether the document uses IAM policy variables (`${aws:username}`...).
fn uses_policy_variables(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(a) => a.iter().any(uses_policy_variables),
        Value::Object(m) => m.values().any(uses_policy_variables),
        _ => false,
    }
}

/// A document's size as IAM counts it against its quotas: characters, not counting
/// white space.
pub fn size_without_whitespace(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(doc: Value, trust: bool) -> Vec<String> {
        check(&doc, trust)
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.message)
            .collect()
    }

    fn identity(st: Value) -> Vec<String> {
        errors(json!({"Version": "2012-10-17", "Statement": [st]}), false)
    }

    fn trust(st: Value) -> Vec<String> {
        errors(json!({"Version": "2012-10-17", "Statement": [st]}), true)
    }

    #[test]
    fn a_good_identity_and_trust_policy_pass() {
        assert_eq!(
            identity(
                json!({"Sid": "Invoke1", "Effect": "Allow", "Action": ["lambda:InvokeFunction", "s3:Get*"], "Resource": "*",
            "Condition": {"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*"]}, "Bool": {"aws:SecureTransport": true}}})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            trust(
                json!({"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:role/x", "*"], "Service": "ec2.amazonaws.com"},
            "Condition": {"StringEquals": {"sts:ExternalId": "x"}}})
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn effect_is_exactly_allow_or_deny() {
        assert_eq!(
            identity(json!({"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"})),
            ["Effect must be exactly \"Allow\" or \"Deny\", found \"allow\""]
        );
        assert_eq!(
            identity(json!({"Action": "s3:GetObject", "Resource": "*"})),
            ["the statement has no Effect"]
        );
    }

    #[test]
    fn actions_need_a_service_prefix_and_one_of_action_or_not_action() {
        assert_eq!(
            identity(
                json!({"Effect": "Allow", "Action": "lambda InvokeFunction", "Resource": "*"})
            ),
            ["Action \"lambda InvokeFunction\": no service prefix"]
        );
        assert_eq!(
            identity(json!({"Effect": "Allow", "Action": "InvokeFunction", "Resource": "*"})),
            ["Action \"InvokeFunction\": no service prefix"]
        );
        assert_eq!(
            identity(json!({"Effect": "Allow", "Action": "s3:Get Object", "Resource": "*"})),
            [
                "Action \"s3:Get Object\": the action name is letters and digits, with * and ? as wildcards"
            ]
        );
        assert_eq!(
            identity(
                json!({"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:PutObject", "Resource": "*"})
            ),
            ["the statement has both Action and NotAction"]
        );
        assert_eq!(
            identity(json!({"Effect": "Allow", "Resource": "*"})),
            ["the statement needs Action or NotAction"]
        );
    }

    #[test]
    fn resources_one_of_and_arns() {
        assert_eq!(
            identity(json!({"Effect": "Allow", "Action": "s3:GetObject"})),
            ["the statement needs Resource or NotResource"]
        );
        assert_eq!(
            identity(
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "NotResource": "arn:aws:s3:::b"})
            ),
            ["the statement has both Resource and NotResource"]
        );
        assert_eq!(
            identity(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "my-bucket"})),
            ["Resource \"my-bucket\" is neither an ARN nor *"]
        );
    }

    #[test]
    fn principals_belong_to_trust_policies_and_not_principal_never() {
        assert_eq!(
            identity(
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"})
            ),
            ["an identity policy cannot have a Principal or NotPrincipal"]
        );
        assert_eq!(
            trust(json!({"Effect": "Allow", "Action": "sts:AssumeRole"})),
            ["a trust policy statement needs a Principal"]
        );
        assert_eq!(
            trust(
                json!({"Effect": "Deny", "Action": "sts:AssumeRole", "NotPrincipal": {"AWS": "123456789012"}})
            ),
            ["NotPrincipal is not allowed in a trust policy"]
        );
        assert_eq!(
            trust(
                json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "123456789012"}, "Resource": "*"})
            ),
            ["a trust policy statement has no Resource: the role itself is the resource"]
        );
    }

    #[test]
    fn principals_must_be_arns_account_ids_services_or_star() {
        assert_eq!(
            trust(
                json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "my-partner"}})
            ),
            ["AWS principal \"my-partner\" is not valid"]
        );
        assert_eq!(
            trust(
                json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda"}})
            ),
            ["Service principal \"lambda\" is not valid"]
        );
        assert_eq!(
            trust(
                json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Robot": "x"}})
            ),
            ["unknown principal type `Robot`"]
        );
        // A deleted principal's unique ID trusts no one: refused, not planned forever.
        let unique = trust(
            json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": ["AROAABCDEFGHIJKLMNOP", "123456789012"]}}),
        );
        assert_eq!(unique.len(), 1, "{unique:?}");
        assert!(unique[0].starts_with("AWS principal \"AROAABCDEFGHIJKLMNOP\" is a unique ID"));
        assert_eq!(
            trust(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "everyone"})),
            ["Principal must be \"*\" or an object, found \"everyone\""]
        );
    }

    #[test]
    fn condition_operators_are_iams_and_case_sensitive() {
        let with = |c: Value| {
            identity(
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": c}),
            )
        };
        assert_eq!(
            with(json!({"StringEqualz": {"aws:username": "a"}})),
            ["unknown condition operator `StringEqualz`"]
        );
        assert_eq!(
            with(json!({"stringequals": {"aws:username": "a"}})),
            ["unknown condition operator `stringequals`"]
        );
        assert_eq!(
            with(json!({"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}})),
            ["unknown condition set qualifier `ForSomeValues:` in `ForSomeValues:StringEquals`"]
        );
        assert_eq!(
            with(json!({"NullIfExists": {"aws:TagKeys": "true"}})),
            ["`NullIfExists` is not an operator: Null already tests for absence"]
        );
        assert_eq!(
            with(
                json!({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::b"}, "ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}})
            ),
            Vec::<String>::new()
        );
        let help = check(
            &json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*", "Condition": {"stringequals": {"k": "v"}}}]}),
            false,
        );
        assert_eq!(
            help[0].help.as_deref(),
            Some("operators are case-sensitive: `StringEquals`")
        );
        assert_eq!(
            with(json!({"StringEquals": {"aws:username": {"a": "b"}}})),
            [
                "StringEquals: the value of `aws:username` must be a string, number, boolean or a list of them"
            ]
        );
    }

    #[test]
    fn sids_are_alphanumeric_and_unique() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
            {"Sid": "read-all", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]});
        let problems = check(&doc, false);
        let found: Vec<(Option<usize>, &str)> = problems
            .iter()
            .map(|p| (p.statement, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(1), "Sid \"Read\" is used twice"),
                (Some(2), "Sid \"read-all\" has characters IAM refuses")
            ]
        );
    }

    #[test]
    fn versions_and_policy_variables_under_2008() {
        assert_eq!(
            errors(
                json!({"Version": "2012-10-16", "Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*"}]}),
                false
            ),
            ["Version must be \"2012-10-17\" or \"2008-10-17\", found \"2012-10-16\""]
        );
        let old = check(
            &json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"}]}),
            false,
        );
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].severity, Severity::Warning);
        let new = check(
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}/*"}]}),
            false,
        );
        assert!(new.is_empty());
    }

    #[test]
    fn every_problem_is_reported() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "allow", "Action": "lambda InvokeFunction", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEqualz": {"a:b": "c"}}}]});
        assert_eq!(errors(doc, false).len(), 3);
    }

    #[test]
    fn size_does_not_count_white_space() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "x y"}]});
        assert_eq!(size_without_whitespace(&a), a.to_string().len() - 1);
    }
}
