//! Saved plans, bad input, recovery after a failed apply, API-call bounds and the example
//! plans, against the default emulator (MiniStack with IAM enforcement on).

mod common;

use common::{Emulator, repo, write};

const PLAN: &str = r#"
[stack]
name = "wf"
[policy.read]
[[policy.read.statement]]
action = "s3:GetObject"
resource = "arn:aws:s3:::bucket/*"
[role.app]
managed_policies = ["read"]
[role.app.trust]
services = ["ec2.amazonaws.com"]
"#;

#[test]
fn saved_plan_applies_exactly_and_refuses_after_drift() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let saved = dir.path().join("plan.json");
    let (p, s) = (plan.to_str().unwrap(), saved.to_str().unwrap());

    emu.iamplan(&["plan", p, "--out", s])
        .expect(0, "plan --out");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(json["stack"], "wf");
    assert!(json["steps"].as_array().unwrap().len() >= 3);
    // The saved plan is applied without the plan files.
    std::fs::remove_file(&plan).unwrap();
    let applied = emu.iamplan(&["apply", s]).expect(0, "apply saved plan");
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 2 added"),
        "{}",
        applied.stdout
    );

    // A plan saved before an out-of-band change is refused.
    write(
        dir.path(),
        "plan.toml",
        &PLAN.replace("s3:GetObject", "s3:PutObject"),
    );
    emu.iamplan(&["plan", p, "--out", s])
        .expect(0, "second plan --out");
    let changed = PLAN.replace("s3:GetObject", "s3:DeleteObject");
    write(dir.path(), "other.toml", &changed);
    let other = dir.path().join("other.toml");
    emu.iamplan(&["apply", other.to_str().unwrap(), "--auto-approve"])
        .expect(0, "out-of-band change");
    let refused = emu
        .iamplan(&["apply", s])
        .expect(1, "apply a stale saved plan");
    assert!(
        refused.stderr.contains("the live account changed since"),
        "{}",
        refused.stderr
    );
}

#[test]
fn plan_json_and_detailed_exitcode() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let out = emu
        .iamplan(&[
            "plan",
            plan.to_str().unwrap(),
            "--json",
            "--detailed-exitcode",
        ])
        .expect(2, "plan --json");
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("plan --json prints JSON");
    assert_eq!(json["format_version"], "1.1");
    let actions: Vec<&str> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"]["actions"][0].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["create", "create"]);
    // Documents are objects, never JSON inside strings.
    assert!(json["resource_changes"][1]["change"]["after"]["trust"].is_object());
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );
}

#[test]
fn bad_input_is_one_clear_error_and_nothing_is_applied() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "a.toml", PLAN);
    let cases = [
        (
            "[role.x]\nmax_sesion_duration = 3600\n",
            "b.toml:2:1",
            "did you mean `max_session_duration`?",
        ),
        (
            "[role.x]\n[role.x.trust]\naccounts = [\"12345\"]\n",
            "b.toml:3:13",
            "invalid account ID",
        ),
        (
            "[role.x]\n[role.x.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.x.inline.p]\ndocument = '{\"Version\": \"2012-10-17\",}'\n",
            "b.toml:5:",
            "invalid policy JSON",
        ),
        (
            "[role.APP]\n[role.APP.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
            "b.toml:1:7",
            "declared twice",
        ),
        (
            "[role.x]\nmanaged_policies = [\"raed\"]\n[role.x.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
            "b.toml:2:21",
            "did you mean \"read\"?",
        ),
        (
            "[role.x]\ndescription = \"${var.nope}\"\n[role.x.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
            "",
            "undefined variable `nope`",
        ),
        ("[role.x\n", "b.toml:1:", "TOML"),
    ];
    for (bad, location, message) in cases {
        write(dir.path(), "b.toml", bad);
        let run = emu
            .iamplan(&["apply", dir.path().to_str().unwrap(), "--auto-approve"])
            .expect(1, bad);
        assert!(
            run.stderr.contains(location),
            "{bad}: expected {location} in\n{}",
            run.stderr
        );
        assert!(
            run.stderr.to_lowercase().contains(&message.to_lowercase()),
            "{bad}: expected {message} in\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // Nothing of the good file was applied either.
    std::fs::remove_file(dir.path().join("b.toml")).unwrap();
    let plan = emu
        .iamplan(&["plan", good.to_str().unwrap()])
        .expect(0, "plan after refused applies");
    assert!(plan.stdout.contains("Plan: 2 to add"), "{}", plan.stdout);
}

#[tokio::test]
async fn apply_that_fails_half_way_converges_when_rerun() {
    let emu = Emulator::start("ministack");
    let iam = emu.iam().await;
    // A deployer allowed everything in IAM except attaching policies: apply fails half way.
    iam.create_user()
        .user_name("deployer")
        .send()
        .await
        .unwrap();
    let deny_attach = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","sts:GetCallerIdentity"],"Resource":"*"},
        {"Effect":"Deny","Action":"iam:AttachRolePolicy","Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name("deployer")
        .policy_name("deploy")
        .policy_document(deny_attach)
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("deployer")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let (id, secret) = (
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
    );

    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    let creds = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let failed = emu
        .iamplan_env(&["apply", p, "--auto-approve"], &creds)
        .expect(1, "apply without attach permission");
    assert!(
        failed.stderr.contains("AttachRolePolicy"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("run apply again"),
        "{}",
        failed.stderr
    );
    assert!(
        iam.get_role().role_name("app").send().await.is_ok(),
        "the role was created before the failure"
    );

    // Fix the cause (grant the permission) and re-run: it converges without clean-up.
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","sts:GetCallerIdentity"],"Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name("deployer")
        .policy_name("deploy")
        .policy_document(allow)
        .send()
        .await
        .unwrap();
    let rerun = emu
        .iamplan_env(&["apply", p, "--auto-approve"], &creds)
        .expect(0, "re-run after fixing");
    assert!(
        rerun
            .stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        rerun.stdout
    );
    emu.iamplan_env(&["plan", p, "--detailed-exitcode"], &creds)
        .expect(0, "plan after convergence");
}

#[test]
fn unreachable_endpoint_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iamplan"))
        .args([
            "plan",
            plan.to_str().unwrap(),
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "us-east-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot identify the caller") && stderr.contains("http://127.0.0.1:9"),
        "{stderr}"
    );
}

/// A no-change plan reads the account in a number of calls bound by pages, not roles.
#[test]
fn no_change_plan_makes_no_per_resource_reads() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[stack]\nname = \"many\"\n");
    for i in 0..20 {
        text.push_str(&format!("[policy.p{i}]\n[[policy.p{i}.statement]]\naction = \"s3:GetObject\"\nresource = \"arn:aws:s3:::b{i}/*\"\n"));
    }
    for i in 0..200 {
        text.push_str(&format!(
            "[role.r{i}]\nmanaged_policies = [\"p{}\"]\n[role.r{i}.trust]\naccounts = [\"111122223333\"]\n[role.r{i}.inline.own]\n[[role.r{i}.inline.own.statement]]\naction = \"sqs:SendMessage\"\nresource = \"arn:aws:sqs:us-east-1:111122223333:q{i}\"\n",
            i % 20
        ));
    }
    let plan = write(dir.path(), "plan.toml", &text);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve", "--parallelism", "16"])
        .expect(0, "apply 200 roles");
    let run = emu
        .iamplan(&["plan", p, "--detailed-exitcode", "--stats"])
        .expect(0, "no-change plan");
    let calls = common::api_calls(&run.stderr);
    let count = |op: &str| -> u64 { calls.get(op).copied().unwrap_or(0) };
    // 220 entities fit one page (1,000); each listing is one page; one identity call.
    assert_eq!(count("GetAccountAuthorizationDetails"), 1, "{calls:?}");
    assert!(
        count("ListRoles") <= 1 && count("ListPolicies") <= 1,
        "{calls:?}"
    );
    assert_eq!(count("GetCallerIdentity"), 1, "{calls:?}");
    for per_resource in [
        "GetRole",
        "GetRolePolicy",
        "ListRolePolicies",
        "ListAttachedRolePolicies",
        "GetPolicy",
        "GetPolicyVersion",
    ] {
        assert_eq!(count(per_resource), 0, "{calls:?}");
    }
    assert!(
        run.stderr.contains("total 4") || run.stderr.contains("total 3"),
        "{calls:?}"
    );
}

/// Every example in plans/ applies, then plans no changes, and its smoke checks pass
/// against MiniStack with IAM enforcement on; each denial for the reason it names.
#[test]
fn example_plans_apply_converge_and_pass_their_smoke_checks() {
    let emu = Emulator::start("ministack");
    let mut dirs: Vec<_> = std::fs::read_dir(repo().join("plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 6, "examples missing: {dirs:?}");
    let mut checked = 0;
    for d in dirs {
        // A copy, so that key sinks write into a temporary directory, not the repository.
        let copy = tempfile::tempdir().unwrap();
        let mut has_checks = false;
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "toml") {
                has_checks |= std::fs::read_to_string(&f).unwrap().contains("[smoke.");
                std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
            }
        }
        let p = copy.path().to_str().unwrap();
        let what = d.display().to_string();
        let applied = emu
            .iamplan(&["apply", p, "--auto-approve"])
            .expect(0, &what);
        assert!(
            applied.stdout.contains("Apply complete!"),
            "{}",
            applied.stdout
        );
        emu.iamplan(&["plan", p, "--detailed-exitcode"])
            .expect(0, &what);
        if has_checks {
            let smoke = emu.iamplan(&["smoke", p, "--json"]).expect(0, &what);
            let results: serde_json::Value = serde_json::from_str(&smoke.stdout).unwrap();
            for r in results.as_array().unwrap() {
                assert_eq!(r["passed"], true, "{what}: {r}");
                // The plan's policies predict what the enforcing emulator answers.
                assert!(r["finding"].is_null(), "{what}: {r}");
                assert!(!r["prediction"].is_null(), "{what}: {r}");
                let expected = r["expected"].as_str().unwrap();
                if let Some(reason) = expected.strip_prefix("deny ") {
                    assert_eq!(
                        r["outcome"].as_str().unwrap(),
                        format!("denied {reason}"),
                        "{what}: {r}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} smoke checks ran");
}

/// Two accounts in one plan, each with its own credentials (a named profile): a role in
/// the default account trusts a role that the same plan creates in the other account.
#[test]
fn two_accounts_in_one_plan() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    // MiniStack treats a 12-digit access key as that account's root.
    let creds = write(
        dir.path(),
        "credentials",
        "[partner]\naws_access_key_id = 111111111111\naws_secret_access_key = test\n",
    );
    let config = write(
        dir.path(),
        "config",
        "[profile partner]\nregion = us-east-1\n",
    );
    let plan = write(
        dir.path(),
        "plan.toml",
        r#"
[stack]
name = "xacct"
[accounts.partner]
profile = "partner"
[role.caller]
account = "partner"
[role.caller.trust]
services = ["lambda.amazonaws.com"]
[role.target]
[role.target.trust]
roles = ["arn:aws:iam::${account.partner}:role/caller"]
"#,
    );
    let env = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
    ];
    let p = plan.to_str().unwrap();
    let first = emu
        .iamplan_env(&["plan", p], &env)
        .expect(0, "plan across accounts");
    assert!(
        first
            .stdout
            .contains("# role.caller[partner] will be created"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("arn:aws:iam::111111111111:role/caller"),
        "{}",
        first.stdout
    );
    emu.iamplan_env(&["apply", p, "--auto-approve"], &env)
        .expect(0, "apply across accounts");
    emu.iamplan_env(&["plan", p, "--detailed-exitcode"], &env)
        .expect(0, "plan after apply");
}

/// Users and groups: created, stable, and deleted in the order IAM requires (keys, inline
/// policies, attachments, memberships, login profile, then the user; members out of a group
/// before it goes). A same-named group no stack owns is a conflict.
#[tokio::test(flavor = "multi_thread")]
async fn users_and_groups_lifecycle() {
    let emu = Emulator::start("ministack");
    let iam = emu.iam().await;
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[stack]
name = "people"
[policy.read]
[[policy.read.statement]]
action = "s3:GetObject"
resource = "*"
[group.deployers]
path = "/teams/"
managed_policies = ["read"]
[group.deployers.inline.deploy]
[[group.deployers.inline.deploy.statement]]
action = "lambda:UpdateFunctionCode"
resource = "*"
[user.ci]
groups = ["deployers"]
managed_policies = ["read"]
tags = { team = "platform" }
[user.ci.inline.own]
[[user.ci.inline.own.statement]]
action = "sqs:SendMessage"
resource = "*"
[user.ci.access_keys]
sink = { type = "json", path = "ci.json" }
"#;
    let plan = write(dir.path(), "plan.toml", text);
    let p = plan.to_str().unwrap();
    let first = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "create users and groups");
    assert!(first.stdout.contains("Plan: 3 to add"), "{}", first.stdout);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "no changes after apply");
    let members = iam
        .get_group()
        .group_name("deployers")
        .send()
        .await
        .unwrap();
    assert_eq!(
        members
            .users()
            .iter()
            .map(|u| u.user_name())
            .collect::<Vec<_>>(),
        vec!["ci"]
    );

    // Out of band: a console password, which IAM requires gone before the user.
    iam.create_login_profile()
        .user_name("ci")
        .password("Aa1!aaaaaaaaaaaa")
        .send()
        .await
        .unwrap();
    write(dir.path(), "plan.toml", "[stack]\nname = \"people\"\n");
    let gone = emu
        .iamplan(&["apply", p, "--auto-approve", "--allow-delete-all"])
        .expect(0, "delete users and groups");
    assert!(
        gone.stdout
            .contains("Plan: 0 to add, 0 to change, 3 to destroy."),
        "{}",
        gone.stdout
    );
    assert!(
        iam.get_user().user_name("ci").send().await.is_err(),
        "user deleted"
    );
    assert!(
        iam.get_group()
            .group_name("deployers")
            .send()
            .await
            .is_err(),
        "group deleted"
    );

    // A group that exists without this stack's marker is not taken over silently.
    iam.create_group()
        .group_name("deployers")
        .send()
        .await
        .unwrap();
    write(dir.path(), "plan.toml", text);
    let conflict = emu.iamplan(&["plan", p]).expect(1, "unowned group");
    assert!(
        conflict
            .stdout
            .contains("group \"deployers\" already exists and is not managed by iamplan"),
        "{}",
        conflict.stdout
    );
}

/// `instance_profile = true`: an instance profile named after the role holds it; removing
/// the role removes the profile too. `--adopt` takes over an unowned same-named role.
#[tokio::test(flavor = "multi_thread")]
async fn instance_profiles_and_adoption() {
    let emu = Emulator::start("ministack");
    let iam = emu.iam().await;
    let dir = tempfile::tempdir().unwrap();
    let text = "[stack]\nname = \"ec2\"\n[role.web]\ninstance_profile = true\n[role.web.trust]\nservices = [\"ec2.amazonaws.com\"]\n";
    let plan = write(dir.path(), "plan.toml", text);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "create with an instance profile");
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("web")
        .send()
        .await
        .unwrap();
    let roles: Vec<&str> = profile
        .instance_profile()
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name())
        .collect();
    assert_eq!(roles, vec!["web"]);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "no changes");
    write(dir.path(), "plan.toml", "[stack]\nname = \"ec2\"\n");
    emu.iamplan(&["apply", p, "--auto-approve", "--allow-delete-all"])
        .expect(0, "delete");
    assert!(iam.get_role().role_name("web").send().await.is_err());
    assert!(
        iam.get_instance_profile()
            .instance_profile_name("web")
            .send()
            .await
            .is_err()
    );

    // An existing role without a marker: a conflict, until adopted; then it is tagged.
    iam.create_role()
        .role_name("legacy")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"ec2\"\n[role.legacy]\n[role.legacy.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    emu.iamplan(&["plan", p]).expect(1, "unowned role");
    let adopt = emu
        .iamplan(&["apply", p, "--auto-approve", "--adopt"])
        .expect(0, "adopt");
    assert!(
        adopt.stdout.contains("# role.legacy will be adopted"),
        "{}",
        adopt.stdout
    );
    let tags = iam
        .list_role_tags()
        .role_name("legacy")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "iamplan:stack" && t.value() == "ec2")
    );
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "owned after adoption");
}

/// `apply --smoke` runs the checks after applying; `smoke --show-request` prints the
/// equivalent signed request with the secrets redacted; a failing check exits 1 and names
/// the broken link.
#[test]
fn apply_smoke_and_show_request() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[stack]
name = "smoke"
[role.caller]
[role.caller.trust]
accounts = ["${account_id}"]
external_id = "right.id"
[role.caller.inline.invoke]
[[role.caller.inline.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:${partition}:lambda:${region}:${account_id}:function:ably-sink"
[smoke.invokes]
retry_seconds = 2
[[smoke.invokes.assume]]
role = "caller"
external_id = "right.id"
[smoke.invokes.invoke]
function = "ably-sink"
payload = '{"ping": 1}'
[smoke.invokes.expect]
result = "allow"
payload_contains = "ping"
"#;
    let plan = write(dir.path(), "plan.toml", text);
    let p = plan.to_str().unwrap();
    let run = emu
        .iamplan(&["apply", p, "--auto-approve", "--smoke"])
        .expect(0, "apply --smoke");
    assert!(
        run.stdout.contains("Smoke: 1 passed, 0 failed"),
        "{}",
        run.stdout
    );

    let shown = emu
        .iamplan(&["smoke", p, "--show-request"])
        .expect(0, "smoke --show-request");
    assert!(
        shown
            .stdout
            .contains("POST /2015-03-31/functions/ably-sink/invocations HTTP/1.1"),
        "{}",
        shown.stdout
    );
    // As sent: the SDK's own headers, the signed headers list, the scope.
    for expected in [
        "x-amz-invocation-type: RequestResponse",
        "host: 127.0.0.1:",
        "/us-east-1/lambda/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;",
        "x-amz-security-token: <redacted: session token>",
    ] {
        assert!(
            shown.stdout.contains(expected),
            "{expected}: {}",
            shown.stdout
        );
    }
    assert!(
        shown.stdout.contains("Signature=<redacted>"),
        "{}",
        shown.stdout
    );
    assert!(
        !shown.stdout.contains("test"),
        "no credential material: {}",
        shown.stdout
    );

    // The same check with a wrong ExternalId fails, and says which link broke.
    write(
        dir.path(),
        "plan.toml",
        &text
            .replacen(
                "external_id = \"right.id\"\n[smoke",
                "external_id = \"wrong.id\"\n[smoke",
                1,
            )
            .replace(
                "[[smoke.invokes.assume]]\nrole = \"caller\"\nexternal_id = \"right.id\"",
                "[[smoke.invokes.assume]]\nrole = \"caller\"\nexternal_id = \"wrong.id\"",
            ),
    );
    let failed = emu.iamplan(&["smoke", p]).expect(1, "a failing check");
    assert!(
        failed.stdout.contains("what broke: AssumeRole"),
        "{}",
        failed.stdout
    );
    assert!(
        failed
            .stdout
            .contains("ExternalId \"wrong.id\" is not the one the trust policy requires"),
        "{}",
        failed.stdout
    );
}
