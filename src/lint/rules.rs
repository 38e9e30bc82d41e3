//! The lint rules, one statement at a time. The document has passed IAM's grammar
//! (`policy::check`) before it gets here.

use super::db::{self, ActionDb};
use super::{Code, DocContext, Raw};
use crate::policy::is_account_id;
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) fn check(doc: &Value, cx: &DocContext, db: &ActionDb) -> Vec<Raw> {
    let mut out = Vec::new();
    let Some(stmts) = crate::policy::statements(doc) else {
        return out;
    };
    for (i, st) in stmts.iter().enumerate() {
        if let Value::Object(_) = st {
            Statement::read(st).check(i, cx, db, &mut out);
        }
    }
    out
}

/// The parts of a statement the rules look at.
struct Statement<'a> {
    allow: bool,
    actions: Vec<&'a str>,
    not_actions: Vec<&'a str>,
    resources: Vec<&'a str>,
    has_not_resource: bool,
    /// Every condition key, under any operator.
    condition_keys: Vec<&'a str>,
    has_condition: bool,
    /// `Principal: "*"` or `{"AWS": "*"}`.
    any_principal: bool,
    aws_principals: Vec<&'a str>,
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

impl<'a> Statement<'a> {
    fn read(st: &'a Value) -> Self {
        let condition = st.get("Condition").and_then(Value::as_object);
        let condition_keys: Vec<&str> = condition
            .into_iter()
            .flat_map(|ops| ops.values())
            .filter_map(Value::as_object)
            .flat_map(|keys| keys.keys().map(String::as_str))
            .collect();
        let principal = st.get("Principal");
        let aws_principals = match principal {
            Some(Value::Object(m)) => strs(m.get("AWS")),
            _ => vec![],
        };
        Statement {
            allow: st.get("Effect").and_then(Value::as_str) == Some("Allow"),
            actions: strs(st.get("Action")),
            not_actions: strs(st.get("NotAction")),
            resources: strs(st.get("Resource")),
            has_not_resource: st.get("NotResource").is_some(),
            has_condition: !condition_keys.is_empty(),
            condition_keys,
            any_principal: principal.and_then(Value::as_str) == Some("*")
                || aws_principals.contains(&"*"),
            aws_principals,
        }
    }

    fn check(&self, i: usize, cx: &DocContext, db: &ActionDb, out: &mut Vec<Raw>) {
        let mut push = |code: Code, message: String, help: &str| {
            out.push(Raw {
                code,
                statement: Some(i),
                message,
                help: help.to_string(),
            })
        };
        // What each listed action matches in the database.
        let mut known: Vec<(&str, Vec<&db::Action>, &db::Service)> = Vec::new();
        for a in self.actions.iter().chain(&self.not_actions) {
            let Some((prefix, name)) = a.split_once(':') else {
                continue;
            };
            let Some(service) = db.service(prefix) else {
                // Prefixes are short: two edits in three letters is another word (`foo` is
                // no typo of `sso`), so at most a third of the letters may differ.
                let near = crate::spec::nearest(prefix, db.prefixes()).filter(|n| {
                    crate::spec::levenshtein(&prefix.to_ascii_lowercase(), n) * 3
                        <= n.len().max(prefix.len())
                });
                let help = match near {
                    Some(n) => format!("did you mean `{n}:{name}`?"),
                    None => {
                        "check the service prefix in the AWS Service Authorization Reference".into()
                    }
                };
                push(
                    Code::UNKNOWN_SERVICE,
                    format!("`{a}`: no AWS service has the prefix `{prefix}`"),
                    &help,
                );
                continue;
            };
            let matched = service.matching(name);
            if matched.is_empty() {
                let names = service.actions.iter().map(|x| x.name.as_str());
                let help = match crate::spec::nearest(name, names) {
                    Some(n) if !name.contains(['*', '?']) => {
                        format!("did you mean `{}:{n}`?", service.prefix)
                    }
                    _ => format!(
                        "see the actions of `{}` in the AWS Service Authorization Reference",
                        service.prefix
                    ),
                };
                let what = if name.contains(['*', '?']) {
                    "matches no action"
                } else {
                    "is not an action"
                };
                push(
                    Code::UNKNOWN_ACTION,
                    format!("`{a}` {what} of {}", service.prefix),
                    &help,
                );
                continue;
            }
            if self.actions.contains(a) {
                known.push((a, matched, service));
            }
        }
        if self.allow && !self.not_actions.is_empty() {
            push(Code::ALLOW_NOT_ACTION, "Allow with NotAction allows every action not listed, in every service, including actions AWS adds later".into(),
                "list the actions to allow in Action instead");
        }
        if self.allow && self.has_not_resource {
            push(Code::ALLOW_NOT_RESOURCE, "Allow with NotResource allows every resource not listed, including ones created later".into(),
                "list the resources to allow in Resource instead");
        }
        let on_everything = self.resources.contains(&"*");
        if !cx.trust && self.allow && on_everything {
            if let Some(a) = self
                .actions
                .iter()
                .find(|a| **a == "*" || a.ends_with(":*"))
            {
                push(
                    Code::ALL_ACTIONS_ALL_RESOURCES,
                    format!("`{a}` on every resource (\"*\")"),
                    "name the actions and the resources the principal needs",
                );
            }
            if let Some(a) = self.actions.iter().find(|a| db::glob(a, "iam:PassRole")) {
                push(
                    Code::PASS_ROLE_ALL_RESOURCES,
                    format!(
                        "`{a}` allows iam:PassRole on every role: whoever holds this policy can hand any role, an admin role included, to a service they control"
                    ),
                    "name the roles that may be passed in Resource (arn:aws:iam::ACCOUNT:role/NAME), and limit the service with iam:PassedToService",
                );
            }
        }
        if cx.trust && self.allow {
            if self.any_principal && !self.has_condition {
                push(
                    Code::TRUST_ANY_PRINCIPAL,
                    "any AWS principal (\"*\"), in any account, may assume this role".into(),
                    "name the accounts or roles that may assume it, or add a condition such as aws:PrincipalOrgID",
                );
            } else if !self.any_principal {
                let third: BTreeSet<&str> = self
                    .aws_principals
                    .iter()
                    .filter_map(|p| principal_account(p))
                    .filter(|a| !cx.own_accounts.contains(*a))
                    .collect();
                let has_external_id = self
                    .condition_keys
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case("sts:ExternalId"));
                if !third.is_empty() && !has_external_id {
                    let list: Vec<&str> = third.into_iter().collect();
                    push(
                        Code::TRUST_WITHOUT_EXTERNAL_ID,
                        format!(
                            "account {} may assume this role without an ExternalId",
                            list.join(", ")
                        ),
                        "when a third party's service assumes the role, require the ExternalId it gives you: external_id = \"...\" in the trust helpers, or a StringEquals sts:ExternalId condition",
                    );
                }
            }
        }
        self.resources_and_conditions(&known, db, &mut push);
        self.redundant(&mut push);
    }

    fn resources_and_conditions(
        &self,
        known: &[(&str, Vec<&db::Action>, &db::Service)],
        db: &ActionDb,
        push: &mut impl FnMut(Code, String, &str),
    ) {
        // Resources: only for actions named exactly (a wildcard's actions vary too much). An
        // action is flagged when no resource of the statement fits it: one statement often
        // lists a bucket and its objects for bucket and object actions together.
        let named: Vec<&str> = self
            .resources
            .iter()
            .copied()
            .filter(|r| *r != "*")
            .collect();
        if named.len() == self.resources.len() && !named.is_empty() {
            for (a, matched, service) in known {
                if a.contains(['*', '?']) {
                    continue;
                }
                let fits = |r: &str| {
                    matched.iter().any(|action| {
                        action.resources.iter().any(|(t, _)| {
                            service
                                .resources
                                .get(t)
                                .is_some_and(|forms| forms.iter().any(|f| arn_fits(&f.arn, r)))
                        })
                    })
                };
                if named.iter().any(|r| fits(r)) {
                    continue;
                }
                let list = named.join(", ");
                let takes_star = matched.iter().all(|x| x.resources.is_empty());
                let (msg, help) = if takes_star {
                    (
                        format!(
                            "`{a}` works only with \"Resource\": \"*\", so it grants nothing on {list}"
                        ),
                        "put the action in a statement with \"Resource\": \"*\"".to_string(),
                    )
                } else {
                    let forms: Vec<&str> = matched
                        .iter()
                        .flat_map(|x| x.resources.iter())
                        .filter_map(|(t, _)| service.resources.get(t))
                        .flatten()
                        .map(|f| f.arn.as_str())
                        .take(3)
                        .collect();
                    (
                        format!("`{a}` cannot apply to {list}"),
                        format!("its resources look like {}", forms.join(" or ")),
                    )
                };
                push(Code::UNSUPPORTED_RESOURCE, msg, &help);
            }
        }
        // Condition keys: global ones, or defined for the statement's actions.
        let wildcard_actions = self.actions.contains(&"*") || !self.not_actions.is_empty();
        for key in &self.condition_keys {
            let Some((prefix, _)) = key.split_once(':') else {
                continue;
            };
            // Identity providers' keys (accounts.google.com:sub, token.actions....:sub).
            if prefix.contains('.') {
                continue;
            }
            if db.global.iter().any(|g| db::key_matches(g, key)) {
                continue;
            }
            if prefix.eq_ignore_ascii_case("aws") {
                push(
                    Code::UNKNOWN_CONDITION_KEY,
                    format!("`{key}` is not a global condition key"),
                    "see \"AWS global condition context keys\" for the names; the condition never matches as written",
                );
                continue;
            }
            if wildcard_actions || known.is_empty() {
                continue;
            }
            // A service's key table lists keys of all its actions; a key counts only where the
            // action itself or one of its resource types has it.
            let defined = known.iter().any(|(_, matched, service)| {
                matched.iter().any(|action| {
                    action.keys.iter().any(|k| db::key_matches(k, key))
                        || action.resources.iter().any(|(t, _)| {
                            service.resources.get(t).is_some_and(|forms| {
                                forms
                                    .iter()
                                    .any(|f| f.keys.iter().any(|k| db::key_matches(k, key)))
                            })
                        })
                })
            });
            if !defined {
                push(
                    Code::UNKNOWN_CONDITION_KEY,
                    format!(
                        "`{key}` is not a condition key of {}",
                        self.actions.join(", ")
                    ),
                    "use a key the actions support (AWS Service Authorization Reference), or a global aws: key",
                );
            }
        }
    }

    fn redundant(&self, push: &mut impl FnMut(Code, String, &str)) {
        for (i, a) in self.actions.iter().enumerate() {
            let covered_by = self.actions.iter().enumerate().find(|(j, b)| {
                // Two entries that cover each other: only the later one is redundant.
                *j != i && db::glob(b, a) && (!db::glob(a, b) || *j < i)
            });
            if let Some((_, b)) = covered_by {
                push(
                    Code::REDUNDANT_ACTION,
                    format!("`{a}` is already covered by `{b}`"),
                    "remove it",
                );
            }
        }
    }
}

/// The account an AWS principal belongs to (an account ID or an IAM/STS ARN).
fn principal_account(p: &str) -> Option<&str> {
    if is_account_id(p) {
        return Some(p);
    }
    let account = p.strip_prefix("arn:")?.split(':').nth(3)?;
    is_account_id(account).then_some(account)
}

/// Whether a policy's resource ARN can name a resource of this published ARN form
/// (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`). A placeholder stands for one
/// path segment, or for the rest when it follows a `/`; the policy's own wildcards and
/// variables are tried as the shortest texts that could fill them.
fn arn_fits(form: &str, resource: &str) -> bool {
    let concrete = replace_vars(resource);
    ["x", "x/x", "x:x"]
        .iter()
        .any(|fill| matches_form(form, &concrete.replace(['*', '?'], fill)))
}

/// `${aws:username}`-style policy variables -> a plain value.
fn replace_vars(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(end) => {
                out.push('x');
                rest = &rest[i + end + 1..];
            }
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn matches_form(form: &str, text: &str) -> bool {
    // Tokens: literal text, or a placeholder (with whether it may span `/`).
    let mut tokens: Vec<(String, Option<bool>)> = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("${") {
        let literal = &rest[..i];
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        let after_slash = literal.ends_with('/');
        let last = !rest[i + end + 1..].contains("${");
        // Names that hold paths: an object key, a role's path, a log group.
        let name = &rest[i + 2..i + end];
        let path_like = name.contains("Path") || name == "LogGroupName" || name == "ObjectName";
        tokens.push((literal.to_string(), None));
        tokens.push((String::new(), Some((after_slash && last) || path_like)));
        rest = &rest[i + end + 1..];
    }
    tokens.push((rest.to_string(), None));
    fn go(tokens: &[(String, Option<bool>)], text: &str, in_arn_head: usize) -> bool {
        let Some(((lit, hole), more)) = tokens.split_first() else {
            return text.is_empty();
        };
        match hole {
            None => {
                text.len() >= lit.len()
                    && text.is_char_boundary(lit.len())
                    && text[..lit.len()].eq_ignore_ascii_case(lit)
                    && go(
                        more,
                        &text[lit.len()..],
                        in_arn_head + lit.matches(':').count(),
                    )
            }
            Some(spans_slash) => {
                // In the first five ARN fields a placeholder stops at `:`; after, at `/`.
                for end in 0..=text.len() {
                    if !text.is_char_boundary(end) {
                        continue;
                    }
                    let part = &text[..end];
                    let stop = if in_arn_head < 5 {
                        part.contains(':')
                    } else {
                        !spans_slash && part.contains('/')
                    };
                    if stop {
                        break;
                    }
                    if (end > 0 || in_arn_head < 5) && go(more, &text[end..], in_arn_head) {
                        return true;
                    }
                }
                false
            }
        }
    }
    go(&tokens, text, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_forms_match_as_iam_resources_do() {
        let object = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";
        let bucket = "arn:${Partition}:s3:::${BucketName}";
        assert!(arn_fits(object, "arn:aws:s3:::b/key/with/slashes"));
        assert!(arn_fits(object, "arn:aws:s3:::b/*"));
        assert!(arn_fits(object, "arn:aws:s3:::*"));
        assert!(!arn_fits(object, "arn:aws:s3:::b"));
        assert!(arn_fits(bucket, "arn:aws:s3:::b"));
        assert!(!arn_fits(bucket, "arn:aws:s3:::b/k"));
        let function = "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}";
        assert!(arn_fits(
            function,
            "arn:aws:lambda:eu-west-1:123456789012:function:f"
        ));
        assert!(arn_fits(function, "arn:aws:lambda:*:*:function:f"));
        assert!(!arn_fits(
            function,
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t"
        ));
        let role = "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}";
        assert!(arn_fits(role, "arn:aws:iam::123456789012:role/path/name"));
        assert!(arn_fits(
            role,
            "arn:aws:iam::123456789012:role/${aws:username}"
        ));
    }
}
