//! Which link broke, and what to look at: from the AWS error and the declared plan.

use super::{Assume, Invoke, Reason, SmokeCheck};

/// Where in the chain a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Start,
    Assume(usize),
    Invoke,
}

/// Explains a failed call. `caller` is the identity that made it, when known.
pub fn diagnose(
    check: &SmokeCheck,
    stage: &Stage,
    code: &str,
    message: &str,
    caller: &str,
) -> (Reason, String) {
    let key_problem = matches!(
        code,
        "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "ExpiredToken"
    );
    if key_problem {
        return (
            Reason::Key,
            format!(
                "{code}: the credentials were refused: the access key is inactive, deleted or wrong (check the sink or profile, and that the key is Active)"
            ),
        );
    }
    match stage {
        Stage::Start => (Reason::Key, format!("{code}: {message}")),
        Stage::Assume(i) => assume_reason(&check.assume[*i], code, message, caller),
        Stage::Invoke => invoke_reason(check.invoke.as_ref(), code, message, caller),
    }
}

fn assume_reason(a: &Assume, code: &str, message: &str, caller: &str) -> (Reason, String) {
    if code != "AccessDenied" {
        return (
            Reason::Trust,
            format!("AssumeRole {}: {code}: {message}", a.role_arn),
        );
    }
    let Some(trust) = &a.trust else {
        return (
            Reason::Trust,
            format!(
                "AssumeRole {} was denied ({message}); the role is not in this plan: check its trust policy names {caller}",
                a.role_arn
            ),
        );
    };
    if !trust.external_ids.is_empty() {
        match &a.external_id {
            None => {
                return (
                    Reason::ExternalId,
                    format!(
                        "AssumeRole {} was denied: the trust policy requires an ExternalId and the check sent none",
                        a.role_arn
                    ),
                );
            }
            Some(x) if !trust.external_ids.contains(x) => {
                return (
                    Reason::ExternalId,
                    format!(
                        "AssumeRole {} was denied: ExternalId \"{x}\" is not the one the trust policy requires",
                        a.role_arn
                    ),
                );
            }
            _ => {}
        }
    }
    if !a.tags.is_empty() && !trust.allows_tag_session {
        return (
            Reason::TagSession,
            format!(
                "AssumeRole {} with session tags was denied: the trust policy does not allow sts:TagSession (set session_tags = true)",
                a.role_arn
            ),
        );
    }
    (
        Reason::Trust,
        format!(
            "AssumeRole {} was denied: the trust policy does not allow the caller {caller} (it names {})",
            a.role_arn,
            if trust.principals.is_empty() {
                "no AWS principal".to_string()
            } else {
                trust.principals.join(", ")
            }
        ),
    )
}

fn invoke_reason(
    invoke: Option<&Invoke>,
    code: &str,
    message: &str,
    caller: &str,
) -> (Reason, String) {
    let Some(inv) = invoke else {
        return (Reason::Trust, format!("{code}: {message}"));
    };
    let target = match &inv.qualifier {
        Some(q) => format!("{}:{q}", inv.function),
        None => inv.function.clone(),
    };
    match code {
        "AccessDeniedException" | "AccessDenied" => (
            Reason::InvokePermission,
            format!(
                "Invoke {target} was denied: {caller} has no lambda:InvokeFunction on the exact function ARN{} ({message})",
                if inv.qualifier.is_some() {
                    " and qualifier"
                } else {
                    ""
                }
            ),
        ),
        "ResourceNotFoundException" => (
            Reason::NotFound,
            format!(
                "Invoke {target}: function not found in region {}: check the name, the qualifier, and that the client's region is the function's",
                inv.region.as_deref().unwrap_or("of the account")
            ),
        ),
        _ => (
            Reason::InvokePermission,
            format!("Invoke {target}: {code}: {message}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::{Expect, From, TrustFacts};
    use std::collections::BTreeMap;

    fn check(external_id: Option<&str>, tags: bool) -> SmokeCheck {
        let mut t = BTreeMap::new();
        if tags {
            t.insert("user".to_string(), "alice".to_string());
        }
        SmokeCheck {
            name: "c".into(),
            description: None,
            account: "default".into(),
            from: From::Caller,
            assume: vec![Assume {
                role_arn: "arn:aws:iam::1:role/r".into(),
                external_id: external_id.map(str::to_string),
                session_name: "s".into(),
                duration_seconds: None,
                tags: t,
                trust: Some(TrustFacts {
                    external_ids: vec!["a.b".into()],
                    allows_tag_session: false,
                    principals: vec!["arn:aws:iam::2:root".into()],
                }),
            }],
            invoke: Some(Invoke {
                function: "f".into(),
                qualifier: Some("live".into()),
                payload: "{}".into(),
                region: Some("us-east-1".into()),
            }),
            expect: Expect {
                allow: true,
                reason: None,
                status: None,
                payload_contains: None,
            },
            retry_seconds: 0,
            origin: "t.toml:1:1".into(),
        }
    }

    #[test]
    fn names_the_broken_link() {
        let d = |c: &SmokeCheck, stage, code| {
            diagnose(c, &stage, code, "denied", "arn:aws:iam::2:root").0
        };
        assert_eq!(
            d(&check(None, false), Stage::Assume(0), "AccessDenied"),
            Reason::ExternalId
        );
        assert_eq!(
            d(&check(Some("x"), false), Stage::Assume(0), "AccessDenied"),
            Reason::ExternalId
        );
        assert_eq!(
            d(&check(Some("a.b"), true), Stage::Assume(0), "AccessDenied"),
            Reason::TagSession
        );
        assert_eq!(
            d(&check(Some("a.b"), false), Stage::Assume(0), "AccessDenied"),
            Reason::Trust
        );
        assert_eq!(
            d(
                &check(Some("a.b"), false),
                Stage::Invoke,
                "AccessDeniedException"
            ),
            Reason::InvokePermission
        );
        assert_eq!(
            d(
                &check(Some("a.b"), false),
                Stage::Invoke,
                "ResourceNotFoundException"
            ),
            Reason::NotFound
        );
        assert_eq!(
            d(
                &check(Some("a.b"), false),
                Stage::Start,
                "InvalidClientTokenId"
            ),
            Reason::Key
        );
    }
}
