use super::*;
use crate::model::{Address, Kind, Resource};
use serde_json::json;

fn ctx() -> BTreeMap<String, AccountContext> {
    crate::model::test_accounts("eu-west-1")
}

fn build(src: &str) -> Result<Desired, SpecErrors> {
    let spec = parse_str(Path::new("t.toml"), src)?;
    spec.accounts()?;
    spec.build(&ctx())
}

/// The first error of a plan that has one.
fn err(src: &str) -> SpecError {
    build(src).expect_err("expected an error").0.remove(0)
}

/// Every error of a plan, as messages.
fn errors(src: &str) -> Vec<String> {
    build(src)
        .expect_err("expected errors")
        .0
        .into_iter()
        .map(|e| e.message)
        .collect()
}

const BASE: &str = r#"
[stack]
name = "demo"

[variables]
app = "chat"

[policy.invoke]
description = "invoke one function"
[[policy.invoke.statement]]
sid = "Invoke"
action = ["lambda:InvokeFunction"]
resource = "arn:${partition}:lambda:${region}:${account_id}:function:${var.app}"

[role.ably]
path = "/integrations/"
max_session_duration = 7200
managed_policies = ["invoke", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
tags = { team = "data" }
[role.ably.trust]
accounts = ["203461409171"]
external_id = "${account_id}.${var.app}"
session_tags = true
[role.ably.inline.logs]
document = '''
{"Version": "2012-10-17",
 "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}
'''
"#;

#[test]
fn builds_roles_policies_and_variables() {
    let d = build(BASE).unwrap();
    assert_eq!(d.stack, "demo");
    let role = match &d.resources[&Address::new("default", Kind::Role, "ably")].resource {
        Resource::Role(r) => r.clone(),
        _ => panic!(),
    };
    assert_eq!(role.path, "/integrations/");
    assert_eq!(role.max_session_duration, 7200);
    assert!(
        role.managed
            .contains("arn:aws:iam::000000000000:policy/invoke")
    );
    assert_eq!(
        *role.trust.value(),
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::203461409171:root"},
            "Action":["sts:AssumeRole","sts:TagSession"],
            "Condition":{"StringEquals":{"sts:ExternalId":"000000000000.chat"}}}]})
    );
    let pol = match &d.resources[&Address::new("default", Kind::ManagedPolicy, "INVOKE")].resource {
        Resource::ManagedPolicy(p) => p.clone(),
        _ => panic!(),
    };
    assert_eq!(
        pol.document.value()["Statement"][0]["Resource"],
        json!("arn:aws:lambda:eu-west-1:000000000000:function:chat")
    );
}

#[test]
fn iam_policy_variables_are_left_alone() {
    let src = BASE.replace(
        "${var.app}\"\n\n[role",
        "${aws:PrincipalTag/user}\"\n\n[role",
    );
    let d = build(&src).unwrap();
    let pol = &d.resources[&Address::new("default", Kind::ManagedPolicy, "invoke")];
    let Resource::ManagedPolicy(p) = &pol.resource else {
        panic!()
    };
    assert!(p.document.to_wire().contains("${aws:PrincipalTag/user}"));
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let e = err(&BASE.replace("max_session_duration", "max_sesion_duration"));
    assert!(
        e.message.contains("unknown field `max_sesion_duration`"),
        "{e}"
    );
    assert_eq!(
        e.help.as_deref(),
        Some("did you mean `max_session_duration`?")
    );
    assert_eq!(e.position.unwrap().0, 17, "{e}");
}

#[test]
fn malformed_toml_has_a_position() {
    let e = err("[stack]\nname = \"x\"\n[role.a\n");
    assert_eq!(e.position.unwrap().0, 3, "{e}");
}

#[test]
fn invalid_json_points_into_the_document() {
    let src = BASE.replace("\"Resource\": \"*\"}]}", "\"Resource\": \"*\",}]}");
    let e = err(&src);
    assert!(e.message.contains("invalid policy JSON"), "{e}");
    assert_eq!(e.position.unwrap(), (27, 83), "{e}");
}

#[test]
fn undefined_variable_names_it_and_suggests() {
    let e = err(&BASE.replace("${var.app}\"\n\n[role", "${var.ap}\"\n\n[role"));
    assert!(e.message.contains("undefined variable `ap`"), "{e}");
    assert!(e.help.unwrap().contains("${var.app}"));
    let e = err(&BASE.replace("${region}", "${regoin}"));
    assert!(e.help.unwrap().contains("${region}"));
}

#[test]
fn undefined_policy_reference_is_an_error() {
    let e = err(&BASE.replace("[\"invoke\",", "[\"invok\","));
    assert!(e.message.contains("\"invok\" is not defined"), "{e}");
    assert_eq!(e.help.as_deref(), Some("did you mean \"invoke\"?"));
}

#[test]
fn duplicate_names_differ_only_in_case() {
    let src =
        format!("{BASE}\n[role.ABLY]\n[role.ABLY.trust]\nservices = [\"ec2.amazonaws.com\"]\n");
    let e = err(&src);
    assert!(e.message.contains("declared twice"), "{e}");
}

#[test]
fn invalid_principals_and_arns() {
    let e = err(&BASE.replace("203461409171", "20346140917"));
    assert!(e.message.contains("invalid account ID"), "{e}");
    let e = err(&BASE.replace(
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam:aws:policy/ReadOnlyAccess",
    ));
    assert!(e.message.contains("invalid managed policy ARN"), "{e}");
    let e = err(&BASE.replace(
        "accounts = [\"203461409171\"]",
        "roles = [\"arn:aws:iam::1234:role/x\"]",
    ));
    assert!(e.message.contains("invalid role ARN"), "{e}");
    let e = err(&BASE.replace(
        "accounts = [\"203461409171\"]",
        "accounts = [\"203461409171\"]\nservices = [\"ec2\"]",
    ));
    assert!(e.message.contains("invalid service principal"), "{e}");
    let e = err(&BASE.replace("${account_id}.${var.app}", "a b"));
    assert!(e.message.contains("invalid ExternalId"), "{e}");
}

#[test]
fn invalid_policy_structure() {
    let e = err(&BASE.replace(
        "\"Effect\": \"Allow\", \"Action\": \"logs",
        "\"Effect\": \"allow\", \"Action\": \"logs",
    ));
    assert!(e.message.contains("Effect must be"), "{e}");
}

#[test]
fn missing_stack_is_explained() {
    let e = err("[role.a.trust]\nservices = [\"ec2.amazonaws.com\"]\n");
    assert!(e.message.contains("no [stack] table"), "{e}");
}

#[test]
fn raw_trust_document_and_helpers_are_exclusive() {
    let src = BASE.replace(
        "session_tags = true",
        "session_tags = true\ndocument = '{\"Version\":\"2012-10-17\",\"Statement\":[]}'",
    );
    let e = err(&src);
    assert!(e.message.contains("either helpers"), "{e}");
}

#[test]
fn undeclared_account_alias_is_an_error() {
    let e = err(&BASE.replace("path = \"/integrations/\"", "account = \"prod\""));
    assert!(
        e.message.contains("account \"prod\" is not declared"),
        "{e}"
    );
}

fn smoke_err(extra: &str) -> SpecError {
    let src = format!("{BASE}\n{extra}");
    err(&src)
}

#[test]
fn smoke_checks_resolve_roles_and_trust_facts() {
    let src = format!(
        "{BASE}\n[smoke.ok]\n[[smoke.ok.assume]]\nrole = \"ably\"\nexternal_id = \"x\"\ntags = {{ user = \"alice\" }}\n[smoke.ok.expect]\nresult = \"deny\"\nreason = \"external_id\"\n"
    );
    let spec = parse_str(Path::new("t.toml"), &src).unwrap();
    let desired = spec.build(&ctx()).unwrap();
    let checks = &desired.smoke;
    let a = &checks[0].assume[0];
    assert_eq!(
        a.role_arn,
        "arn:aws:iam::000000000000:role/integrations/ably"
    );
    let trust = a.trust.as_ref().unwrap();
    assert_eq!(trust.external_ids, vec!["000000000000.chat".to_string()]);
    assert!(trust.allows_tag_session);
    assert_eq!(
        checks[0].retry_seconds, 0,
        "a denial is not retried by default"
    );
}

#[test]
fn smoke_check_errors_name_the_place() {
    let e = smoke_err(
        "[smoke.x]\n[[smoke.x.assume]]\nrole = \"ably2\"\n[smoke.x.expect]\nresult = \"allow\"\n",
    );
    assert!(e.message.contains("role \"ably2\" is not declared"), "{e}");
    assert_eq!(e.help.as_deref(), Some("did you mean \"ably\"?"));
    let e = smoke_err("[smoke.x]\n[smoke.x.expect]\nresult = \"deny\"\nreason = \"because\"\n");
    assert!(e.message.contains("unknown reason \"because\""), "{e}");
    let e = smoke_err("[smoke.x]\nfrom_user = \"nobody\"\n[smoke.x.expect]\nresult = \"allow\"\n");
    assert!(e.message.contains("user \"nobody\" is not declared"), "{e}");
    let e = smoke_err(
        "[smoke.x]\n[smoke.x.invoke]\nfunction = \"f\"\npayload = \"{not json\"\n[smoke.x.expect]\nresult = \"allow\"\n",
    );
    assert!(e.message.contains("payload is not JSON"), "{e}");
}

#[test]
fn references_name_the_plans_resources_in_any_string() {
    let d = build(
        r#"
[stack]
name = "demo"
[policy.assume]
[[policy.assume.statement]]
action = "sts:AssumeRole"
resource = "${role.Target.arn}"          # declared below, in another path
[role.Target]
path = "/x/"
instance_profile = true
[role.Target.trust]
users = ["${user.robot.arn}"]
[user.robot]
path = "/robots/"
[output.both]
value = "${role.Target.arn} ${role.target.unique_id} ${instance_profile.Target.arn}"
"#,
    )
    .unwrap();
    let policy =
        match &d.resources[&Address::new("default", Kind::ManagedPolicy, "assume")].resource {
            Resource::ManagedPolicy(p) => p.document.value().clone(),
            _ => unreachable!(),
        };
    assert_eq!(
        policy["Statement"][0]["Resource"],
        "arn:aws:iam::000000000000:role/x/Target"
    );
    let role = match &d.resources[&Address::new("default", Kind::Role, "target")].resource {
        Resource::Role(r) => r.trust.value().clone(),
        _ => unreachable!(),
    };
    assert_eq!(
        role["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:user/robots/robot"
    );
    let out = &d.outputs[0];
    assert_eq!(out.name, "both");
    // Before apply: the ARNs are known, the unique ID is not.
    let planned = out.planned(&crate::model::Live::default(), false);
    assert_eq!(planned.value, None);
    assert_eq!(out.parts.len(), 5, "{:?}", out.parts);
}

#[test]
fn a_unique_id_outside_an_output_is_an_error() {
    let e = err(
        "[stack]\nname = \"demo\"\n[role.app]\ndescription = \"${role.app.unique_id}\"\n[role.app.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    assert!(
        e.message.contains("known only once IAM has made the role"),
        "{e}"
    );
    assert_eq!(e.position, Some((4, 15)));
}

#[test]
fn every_section_with_an_error_is_reported_and_a_bad_policy_is_still_declared() {
    let src = format!(
        "{BASE}\n[policy.broken]\n[[policy.broken.statement]]\neffect = \"allow\"\naction = \"s3:GetObject\"\nresource = \"*\"\n\n[role.uses-broken]\nmanaged_policies = [\"broken\"]\n[role.uses-broken.trust]\nroles = [\"ghost\"]\n\n[role.other]\n[role.other.trust]\nusers = [\"nobody\"]\n"
    );
    assert_eq!(
        errors(&src),
        [
            "effect must be \"Allow\" or \"Deny\", found \"allow\"",
            "role \"ghost\" is not declared in this plan",
            "user \"nobody\" is not declared in this plan",
        ]
    );
}

#[test]
fn a_schema_error_in_one_section_does_not_hide_the_others() {
    let src = "[stack]\nname = \"x\"\n[role.a]\nmax_session_duration = \"long\"\n[role.b]\npathh = \"/\"\n[role.c.trust]\nservices = [\"ec2.amazonaws.com\"]\n";
    let found = match parse_str(Path::new("t.toml"), src) {
        Err(e) => e.0,
        Ok(_) => panic!("expected errors"),
    };
    let messages: Vec<&str> = found.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("invalid type: string \"long\""),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("unknown field `pathh`"),
        "{messages:?}"
    );
    assert_eq!(found[1].help.as_deref(), Some("did you mean `path`?"));
}

#[test]
fn trust_helpers_name_plan_roles_declared_anywhere_in_the_files() {
    // `early` names `late`, declared after it: its ARN carries late's path.
    let src = "[stack]\nname = \"x\"\n[role.early.trust]\nroles = [\"late\"]\n[role.late]\npath = \"/p/\"\n[role.late.trust]\nservices = [\"ec2.amazonaws.com\"]\n";
    let d = build(src).unwrap();
    let Resource::Role(r) = &d.resources[&Address::new("default", Kind::Role, "early")].resource
    else {
        panic!()
    };
    assert_eq!(
        r.trust.value()["Statement"][0]["Principal"]["AWS"],
        json!("arn:aws:iam::000000000000:role/p/late")
    );
}

#[test]
fn size_quotas_are_counted_without_white_space() {
    let statement = |i: usize| {
        format!(
            "[[policy.big.statement]]\nsid = \"S{i}\"\naction = \"s3:GetObject\"\nresource = \"arn:aws:s3:::{}/{i}\"\n",
            "b".repeat(80)
        )
    };
    let small: String = (0..10).map(statement).collect();
    assert!(build(&format!("[stack]\nname = \"x\"\n{small}")).is_ok());
    let big: String = (0..80).map(statement).collect();
    let e = err(&format!("[stack]\nname = \"x\"\n{big}"));
    assert!(
        e.message.contains("IAM allows 6144 in a managed policy"),
        "{e}"
    );
    let inline = format!(
        "[stack]\nname = \"x\"\n[user.u.inline.p]\ndocument = '''{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::{}\"}}]}}'''\n",
        "b".repeat(2100)
    );
    let e = err(&inline);
    assert!(e.message.contains("IAM allows 2048"), "{e}");
}

#[test]
fn documents_get_iams_grammar_with_every_problem_at_its_statement() {
    let src = "[stack]\nname = \"x\"\n[policy.p]\n[[policy.p.statement]]\naction = \"lambda InvokeFunction\"\nresource = \"*\"\n[[policy.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\ncondition = { StringEqualz = { \"aws:username\" = \"a\" } }\n";
    let e = build(src).expect_err("errors").0;
    let places: Vec<(usize, &str)> = e
        .iter()
        .map(|e| (e.position.unwrap().0, e.message.as_str()))
        .collect();
    assert_eq!(
        places,
        [
            (
                5,
                "invalid policy: Action \"lambda InvokeFunction\": no service prefix"
            ),
            (
                10,
                "invalid policy: unknown condition operator `StringEqualz`"
            ),
        ]
    );
}

/// Every error (and warning) the offline check finds in these files, as `file:line:col
/// message`, parse errors included.
fn offline(files: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    let mut parsed = Vec::new();
    let mut found = Vec::new();
    for (name, source) in files {
        let (spec, errors) = parse::parse(Path::new(name), source);
        found.extend(errors);
        parsed.push(PlanFile {
            path: PathBuf::from(name),
            source: source.to_string(),
            spec: spec.expect("TOML"),
            line_starts: line_starts(source),
        });
    }
    let (_, mut d) = Spec { files: parsed }.check_offline();
    d.errors.extend(found);
    error::sort(&mut d.errors);
    let show = |e: &SpecError| format!("{} {}", e.location(), e.message);
    (
        d.errors.iter().map(show).collect(),
        d.warnings.iter().map(show).collect(),
    )
}

const SMOKE_ON_ROLE: &str = "[smoke.s]\nfrom_profile = \"p\"\n[[smoke.s.assume]]\nrole = \"r\"\n[smoke.s.expect]\nresult = \"allow\"\n[output.o]\nvalue = \"${role.r.arn}\"\n";

#[test]
fn a_resource_with_an_error_is_still_declared_for_what_names_it() {
    // A key typo, and a value of the wrong type: one error each, none for the smoke check
    // and output naming the role.
    let typo = format!(
        "[stack]\nname = \"s\"\n[role.r]\nmanaged_polices = []\n[role.r.trust]\naccounts = [\"203461409171\"]\n{SMOKE_ON_ROLE}"
    );
    let (errors, _) = offline(&[("t.toml", &typo)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("t.toml:4:1 unknown field `managed_polices`"),
        "{errors:#?}"
    );
    let integer = typo
        .replace("managed_polices = []\n", "")
        .replace("[\"203461409171\"]", "[203461409171]");
    let (errors, _) = offline(&[("t.toml", &integer)]);
    assert_eq!(
        errors,
        ["t.toml:5:13 invalid type: integer `203461409171`, expected a string"]
    );
    // A role built with an error of its own (not a schema error) is declared too.
    let built = typo.replace("managed_polices = []", "path = \"no-slashes\"");
    let (errors, _) = offline(&[("t.toml", &built)]);
    assert_eq!(errors, ["t.toml:4:8 invalid path \"no-slashes\""]);
    // An [accounts.X] table that cannot be read still declares X.
    let account = "[stack]\nname = \"s\"\n[accounts.prod]\nprofile = 3\n[policy.p]\naccount = \"prod\"\n[[policy.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\n";
    let (errors, _) = offline(&[("t.toml", account)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn a_variable_defined_in_two_files_is_one_error_naming_both_places() {
    let a = "[stack]\nname = \"s\"\n[variables]\nfn = \"f\"\n[policy.p]\n[[policy.p.statement]]\naction = \"lambda:InvokeFunction\"\nresource = \"arn:aws:lambda:us-east-1:123456789012:function:${var.fn}\"\n";
    let b = "[variables]\nother = \"1\"\nfn = \"g\"\n";
    let (errors, _) = offline(&[("a.toml", a), ("b.toml", b)]);
    assert_eq!(
        errors,
        ["b.toml:3:6 variable \"fn\" is defined twice: here and at a.toml:4:6"]
    );
}

#[test]
fn an_error_in_a_statement_does_not_hide_the_others_in_it() {
    let src = "[stack]\nname = \"s\"\n[policy.p]\n[[policy.p.statement]]\neffect = \"allow\"\naction = [\"s3:GetObject\", \"lambda InvokeFunction\"]\nresource = \"${var.x}\"\ncondition = { StringEqualz = { \"aws:username\" = \"${var.y}\" } }\n";
    let (errors, _) = offline(&[("t.toml", src)]);
    assert_eq!(
        errors,
        [
            "t.toml:5:10 effect must be \"Allow\" or \"Deny\", found \"allow\"",
            "t.toml:6:27 invalid policy: Action \"lambda InvokeFunction\": no service prefix",
            "t.toml:7:12 undefined variable `x`",
            "t.toml:8:13 undefined variable `y`",
            "t.toml:8:15 invalid policy: unknown condition operator `StringEqualz`",
        ]
    );
}

/// The same for a JSON document: an undefined variable in it does not hide its grammar
/// errors, and the value holding the variable is not reported a second time.
#[test]
fn an_undefined_variable_does_not_hide_the_other_errors_of_a_json_document() {
    let src = "[stack]\nname = \"s\"\n[policy.p]\ndocument = '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"allow\", \"Action\": \"lambda InvokeFunction\", \"Resource\": \"${var.x}\"}]}'\n";
    let (errors, _) = offline(&[("t.toml", src)]);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("undefined variable `x`"), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("Effect")), "{errors:#?}");
    assert!(
        errors.iter().any(|e| e.contains("no service prefix")),
        "{errors:#?}"
    );
}

#[test]
fn statement_problems_point_at_the_value_at_fault() {
    let src = "[stack]\nname = \"s\"\n[role.r.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.r.inline.i]\n[[role.r.inline.i.statement]]\nsid = \"has space\"\naction = \"s3:GetObject\"\nnot_action = \"s3:PutObject\"\nresource = \"*\"\n";
    let (errors, _) = offline(&[("t.toml", src)]);
    let lines: Vec<&str> = errors
        .iter()
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    // Sid at its value, NotAction at its value: not the [[...statement]] header (line 6).
    assert!(
        !lines.iter().any(|l| l.starts_with("t.toml:6:")),
        "{errors:#?}"
    );
    assert_eq!(lines, ["t.toml:7:7", "t.toml:9:14"], "{errors:#?}");
}

#[test]
fn roles_past_iams_quotas_per_account_warn_then_fail() {
    let roles = |n: usize| {
        let mut s = String::from("[stack]\nname = \"s\"\n");
        for i in 0..n {
            s.push_str(&format!(
                "[role.r{i:04}.trust]\nservices = [\"ec2.amazonaws.com\"]\n"
            ));
        }
        s
    };
    let (errors, warnings) = offline(&[("t.toml", &roles(1000))]);
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
    let (errors, warnings) = offline(&[("t.toml", &roles(1001))]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        warnings,
        [
            "t.toml:2003:7 account \"default\" has more than 1,000 roles in this plan: over IAM's default quota of 1,000 roles per account"
        ]
    );
    let (errors, warnings) = offline(&[("t.toml", &roles(5001))]);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        errors,
        [
            "t.toml:10003:7 account \"default\" has more than 5,000 roles in this plan; IAM allows at most 5,000 roles per account"
        ]
    );
}

#[test]
fn the_lock_prefix_is_reserved_for_policy_names() {
    let src = "[stack]\nname = \"s\"\n[policy.IAMPLAN-lock-other]\npath = \"/iamplan/\"\n[[policy.IAMPLAN-lock-other.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\n";
    let (errors, _) = offline(&[("t.toml", src)]);
    assert_eq!(
        errors,
        [
            "t.toml:3:9 the policy name \"IAMPLAN-lock-other\" is reserved: it is the name of stack \"other\"'s lock"
        ]
    );
    let fine = src.replace("IAMPLAN-lock-other", "iamplan-locks");
    assert_eq!(offline(&[("t.toml", &fine)]).0, Vec::<String>::new());
}

#[test]
fn strings_aws_would_refuse_fail_at_their_place() {
    let src = "[stack]\nname = \"s\"\n[role.r]\npath = \"/café/\"\ndescription = \"デプロイ\"\ntags = { team = \"🚀\" }\n[role.r.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.q]\ndescription = \"abc\\u202E\"\n[role.q.trust]\nservices = [\"ec2.amazonaws.com\"]\n[policy.p]\npath = \"/a!b/\"\n[[policy.p.statement]]\naction = \"s3:GetObject\"\nresource = \"arn:aws:s3:::b/データ\"\n";
    let (errors, _) = offline(&[("t.toml", src)]);
    assert_eq!(
        errors,
        [
            "t.toml:4:8 a path may not contain 'é' (U+00E9)",
            "t.toml:5:15 a role description may not contain 'デ' (U+30C7)",
            "t.toml:6:17 a tag value may not contain '🚀' (U+1F680)",
            "t.toml:10:15 a role description may not contain U+202E",
            "t.toml:14:8 a managed policy's path may not contain '!' (U+0021)",
            "t.toml:17:12 invalid policy: \"arn:aws:s3:::b/データ\": IAM does not take U+30C7 in a policy document",
        ]
    );
}

#[test]
fn lint_findings_point_at_the_value_at_fault() {
    let src = "[stack]\nname = \"s\"\n\n[policy.p]\n[[policy.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\n[[policy.p.statement]]\neffect = \"Allow\"\naction = [\"s3:GetObject\", \"s3:GetObjekt\"]\nresource = \"arn:aws:s3:::b/*\"\n\n[role.r]\n[role.r.trust]\naccounts = [\"203461409171\"]\n\n[policy.j]\ndocument = '''{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"s3:GetObjekt\", \"Resource\": \"*\"}]}'''\n";
    let spec = parse_str(Path::new("t.toml"), src).unwrap();
    let (desired, found) = spec.check_offline();
    assert!(found.errors.is_empty(), "{:?}", found.errors);
    let places: Vec<(usize, usize, &str)> = crate::lint::lint(&desired)
        .iter()
        .map(|f| (f.line, f.column, f.code.as_str()))
        .collect();
    assert_eq!(
        places,
        [
            // The action in the second statement, not [policy.p] (line 4).
            (10, 27, "UNKNOWN_ACTION"),
            // The helper's principal, not [role.r].
            (15, 13, "TRUST_WITHOUT_EXTERNAL_ID"),
            // A JSON document: its text.
            (18, 12, "UNKNOWN_ACTION"),
        ]
    );
}
