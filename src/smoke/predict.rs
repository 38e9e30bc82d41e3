//! What the plan's policies say a check should get, before it runs: each assume and the
//! invoke evaluated offline (`crate::access::World`). Compared with AWS's answer, a
//! disagreement is evidence of something outside the plan: drift, an SCP, a resource policy.

use super::{From, SmokeCheck};
use crate::access::{Caller, CallerKind, Context, Decision, World};
use crate::model::{Address, Kind};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicted {
    Allow,
    Deny,
    /// The plan cannot decide (a principal or policy outside it, a condition not modelled).
    Unknown,
}

/// The evaluator's prediction of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    pub outcome: Predicted,
    /// The call that decides a denial or an unknown (`AssumeRole arn:...`, `Invoke NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Why: the deciding statements, or what could not be decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Prediction {
    fn unknown(call: Option<String>, reason: String) -> Self {
        Prediction {
            outcome: Predicted::Unknown,
            call,
            reasons: vec![reason],
        }
    }

    /// `allow`, `deny at AssumeRole ...`, `unknown (...)`: as the smoke table shows it.
    pub fn describe(&self) -> String {
        match (self.outcome, &self.call) {
            (Predicted::Allow, _) => "allow".into(),
            (Predicted::Deny, Some(c)) => format!("deny ({c})"),
            (Predicted::Deny, None) => "deny".into(),
            (Predicted::Unknown, _) => "unknown".into(),
        }
    }
}

/// Predicts a check. `start_arn`: who iamplan's own credentials are in the check's account
/// (for `From::Caller`; empty when unknown).
pub fn predict(world: &World, check: &SmokeCheck, start_arn: &str) -> Prediction {
    let Some(ctx) = world.desired.accounts.get(&check.account) else {
        return Prediction::unknown(
            None,
            format!("account {} is not in the plan", check.account),
        );
    };
    // The first caller: a plan principal (its policies known) or an outside one.
    let (mut caller, mut addr): (Caller, Option<&Address>) = match &check.from {
        From::User { name, .. } => {
            let a = Address::new(&check.account, Kind::User, name);
            match world.desired.resources.get_key_value(&a) {
                Some((a, _)) => match world.caller(a) {
                    Some(c) => (c, Some(a)),
                    None => return Prediction::unknown(None, format!("user {name} has no ARN")),
                },
                None => {
                    return Prediction::unknown(None, format!("user {name} is not in the plan"));
                }
            }
        }
        From::Caller if start_arn.ends_with(":root") => {
            return Prediction::unknown(
                None,
                "the credentials are the account's root user, which policies do not restrict (and AWS refuses it AssumeRole)".into(),
            );
        }
        From::Caller if !start_arn.is_empty() => match world.by_arn(start_arn) {
            Some(a) => match world.caller(a) {
                Some(c) => (c, Some(a)),
                None => (outside(start_arn), None),
            },
            None => (outside(start_arn), None),
        },
        From::Caller => {
            return Prediction::unknown(None, "who iamplan's credentials are is not known".into());
        }
        From::Profile(p) => {
            return Prediction::unknown(
                None,
                format!("profile {p}'s principal and its policies are outside the plan"),
            );
        }
    };
    // Session tags of the last assume: the next calls carry them as principal tags.
    let mut session = Context::new();
    for a in &check.assume {
        let call = format!("AssumeRole {}", a.role_arn);
        let mut given = session.clone();
        if let Some(id) = &a.external_id {
            given.set("sts:ExternalId", vec![id.clone()]);
        }
        given.set("sts:RoleSessionName", vec![a.session_name.clone()]);
        for (k, v) in &a.tags {
            given.set(&format!("aws:RequestTag/{k}"), vec![v.clone()]);
            given.add("aws:TagKeys", k);
        }
        let mut actions = vec!["sts:AssumeRole"];
        if !a.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        for action in actions {
            let e = world.evaluate_as(&caller, addr, action, &a.role_arn, &given);
            if let Some(p) = decided(&e.decision, &e.statements, &e.notes, &call) {
                return p;
            }
        }
        session = Context::new();
        for (k, v) in &a.tags {
            session.set(&format!("aws:PrincipalTag/{k}"), vec![v.clone()]);
        }
        addr = world.by_arn(&a.role_arn).filter(|x| x.kind == Kind::Role);
        caller = match addr.and_then(|x| world.caller(x)) {
            Some(c) => c,
            None => Caller::iam(CallerKind::Role, &a.role_arn),
        };
        if let Some(account) = &caller.account {
            let name = a.role_arn.rsplit('/').next().unwrap_or_default();
            caller.session_arn = Some(format!(
                "arn:{}:sts::{account}:assumed-role/{name}/{}",
                ctx.partition, a.session_name
            ));
        }
    }
    if let Some(inv) = &check.invoke {
        let call = format!("Invoke {}", inv.function);
        let region = inv.region.as_deref().unwrap_or(&ctx.region);
        let account = caller.account.as_deref().unwrap_or(&ctx.account_id);
        let resource = function_arn(
            &inv.function,
            inv.qualifier.as_deref(),
            &ctx.partition,
            region,
            account,
        );
        let e = world.evaluate_as(&caller, addr, "lambda:InvokeFunction", &resource, &session);
        if let Some(p) = decided(&e.decision, &e.statements, &e.notes, &call) {
            return p;
        }
    }
    Prediction {
        outcome: Predicted::Allow,
        call: None,
        reasons: vec![],
    }
}

/// A principal outside the plan, by ARN (an assumed-role session stands for its role).
fn outside(arn: &str) -> Caller {
    let kind = if arn.contains(":user/") {
        CallerKind::User
    } else {
        CallerKind::Role
    };
    Caller::iam(kind, arn)
}

/// A denial or an unknown ends the prediction at this call; an allow goes on.
fn decided(
    decision: &Decision,
    statements: &[crate::access::StatementRef],
    notes: &[String],
    call: &str,
) -> Option<Prediction> {
    let mut reasons: Vec<String> = statements.iter().map(ToString::to_string).collect();
    reasons.extend(notes.iter().cloned());
    let outcome = match decision {
        Decision::Allowed => return None,
        Decision::ImplicitlyDenied | Decision::ExplicitlyDenied => {
            reasons.insert(0, decision.to_string());
            Predicted::Deny
        }
        Decision::Unknown { reasons: why } => {
            reasons.splice(0..0, why.iter().cloned());
            Predicted::Unknown
        }
    };
    Some(Prediction {
        outcome,
        call: Some(call.to_string()),
        reasons,
    })
}

/// A function as Lambda names it in IAM: its ARN (with the qualifier, when given).
fn function_arn(
    function: &str,
    qualifier: Option<&str>,
    partition: &str,
    region: &str,
    account: &str,
) -> String {
    let base = if function.starts_with("arn:") {
        function.to_string()
    } else {
        format!("arn:{partition}:lambda:{region}:{account}:function:{function}")
    };
    // `arn:aws:lambda:REGION:ACCOUNT:function:NAME` has seven parts; an eighth qualifies it.
    match qualifier {
        Some(q) if base.split(':').count() == 7 => format!("{base}:{q}"),
        _ => base,
    }
}

/// What a prediction and AWS's answer say together: a finding when they disagree.
/// `aws_allowed`: `Some(true)` allowed, `Some(false)` denied for a reason of permissions,
/// `None` no answer about permissions (a setup problem, a missing function, a bad key).
pub fn finding(p: &Prediction, aws_allowed: Option<bool>) -> Option<String> {
    match (p.outcome, aws_allowed?) {
        (Predicted::Allow, false) => Some(
            "predicted allow, AWS denied: a sign of drift, an SCP or a resource policy outside the plan".into(),
        ),
        (Predicted::Deny, true) => Some(format!(
            "predicted deny{}, AWS allowed: a sign of drift, or a grant outside the plan (a resource policy, a policy not in the plan)",
            p.call.as_ref().map(|c| format!(" at {c}")).unwrap_or_default()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(src: &str) -> crate::model::Desired {
        let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).expect("parses");
        spec.build(&crate::model::test_accounts("us-east-1"))
            .expect("builds")
    }

    const PLAN: &str = r#"
[stack]
name = "p"

[role.invoker]
tags = { team = "data" }
[role.invoker.trust]
users = ["${user.robot.arn}"]
external_id = "abc"
session_tags = true

[[role.invoker.inline.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:aws:lambda:us-east-1:000000000000:function:app-*"
condition = { StringEquals = { "aws:PrincipalTag/tenant" = "alice" } }

[[user.robot.inline.assume.statement]]
action = ["sts:AssumeRole", "sts:TagSession"]
resource = "${role.invoker.arn}"

[user.robot.access_keys]
count = 1
sink = { type = "json", path = "robot.json" }

[smoke.allowed]
from_user = "robot"
[[smoke.allowed.assume]]
role = "invoker"
external_id = "abc"
tags = { tenant = "alice" }
[smoke.allowed.invoke]
function = "app-one"
[smoke.allowed.expect]
result = "allow"

[smoke.wrong-tenant]
from_user = "robot"
[[smoke.wrong-tenant.assume]]
role = "invoker"
external_id = "abc"
tags = { tenant = "bob" }
[smoke.wrong-tenant.invoke]
function = "app-one"
[smoke.wrong-tenant.expect]
result = "deny"

[smoke.wrong-id]
from_user = "robot"
[[smoke.wrong-id.assume]]
role = "invoker"
external_id = "nope"
[smoke.wrong-id.expect]
result = "deny"

[smoke.from-profile]
from_profile = "partner"
[[smoke.from-profile.assume]]
role = "invoker"
external_id = "abc"
[smoke.from-profile.expect]
result = "allow"
"#;

    fn predicted(name: &str) -> Prediction {
        let d = desired(PLAN);
        let world = World::new(&d);
        let check = d.smoke.iter().find(|c| c.name == name).expect("declared");
        predict(&world, check, "")
    }

    #[test]
    fn session_tags_and_external_ids_decide_the_chain() {
        assert_eq!(predicted("allowed").outcome, Predicted::Allow);
        let p = predicted("wrong-tenant");
        assert_eq!(p.outcome, Predicted::Deny, "{p:?}");
        assert_eq!(p.call.as_deref(), Some("Invoke app-one"));
        let p = predicted("wrong-id");
        assert_eq!(p.outcome, Predicted::Deny, "{p:?}");
        assert!(p.call.as_deref().is_some_and(|c| c.starts_with("AssumeRole arn:aws:iam::000000000000:role/invoker")), "{p:?}");
    }

    #[test]
    fn an_outside_principal_is_unknown_never_a_guess() {
        let p = predicted("from-profile");
        assert_eq!(p.outcome, Predicted::Unknown, "{p:?}");
        assert_eq!(p.describe(), "unknown");
        // An unknown prediction never disagrees with AWS.
        assert_eq!(finding(&p, Some(false)), None);
        assert_eq!(finding(&p, Some(true)), None);
    }

    #[test]
    fn only_a_disagreement_about_permissions_is_a_finding() {
        let allow = predicted("allowed");
        assert!(
            finding(&allow, Some(false))
                .is_some_and(|f| f.starts_with("predicted allow, AWS denied: a sign of drift, an SCP or a resource policy outside the plan"))
        );
        assert_eq!(finding(&allow, Some(true)), None);
        assert_eq!(finding(&allow, None), None);
        let deny = predicted("wrong-tenant");
        assert!(
            finding(&deny, Some(true))
                .is_some_and(|f| f.starts_with("predicted deny at Invoke app-one, AWS allowed"))
        );
        assert_eq!(finding(&deny, Some(false)), None);
    }

    #[test]
    fn function_names_become_arns_with_their_qualifier() {
        assert_eq!(
            function_arn("f", Some("prod"), "aws", "eu-west-1", "1"),
            "arn:aws:lambda:eu-west-1:1:function:f:prod"
        );
        let arn = "arn:aws:lambda:us-east-1:1:function:f:live";
        assert_eq!(function_arn(arn, Some("prod"), "aws", "x", "2"), arn);
    }

    /// Every example's smoke checks: the prediction is what the check expects, or unknown.
    #[test]
    fn the_examples_predictions_agree_with_their_expectations() {
        let mut seen = 0;
        for dir in std::fs::read_dir("plans").expect("plans/").flatten() {
            let Ok(spec) = crate::spec::load(&[dir.path()]) else {
                continue;
            };
            let Ok(accounts) = spec.accounts() else {
                continue;
            };
            let contexts = accounts
                .keys()
                .enumerate()
                .map(|(i, alias)| {
                    let ctx = crate::model::AccountContext {
                        alias: alias.clone(),
                        account_id: if alias == crate::model::DEFAULT_ACCOUNT {
                            "000000000000".into()
                        } else {
                            format!("{:012}", 111_122_223_333u64 + i as u64)
                        },
                        partition: "aws".into(),
                        region: "us-east-1".into(),
                    };
                    (alias.clone(), ctx)
                })
                .collect();
            let d = spec.build(&contexts).expect("the examples build");
            let world = World::new(&d);
            for c in &d.smoke {
                let p = predict(&world, c, "");
                let agrees = match p.outcome {
                    Predicted::Allow => c.expect.allow,
                    Predicted::Deny => !c.expect.allow,
                    Predicted::Unknown => true,
                };
                assert!(
                    agrees,
                    "{}: {} expects {}, predicted {p:?}",
                    dir.path().display(),
                    c.name,
                    c.expect.describe()
                );
                seen += usize::from(p.outcome != Predicted::Unknown);
            }
        }
        assert!(seen >= 3, "few examples were decided: {seen}");
    }
}
