//! export's round trip on each emulator flavor: resources made out of band with the SDK (as
//! a user would by hand or with the CLI), exported, planned (only adoptions), applied, and
//! planned again (no changes).

mod common;

use aws_sdk_iam::types::Tag;
use common::Emulator;

const TRUST_PARTNER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::203461409171:root"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"sts:ExternalId":"a1b2c3.demo-app"}}}]}"#;
const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_ODD: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Deployers","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/deployer"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
const INVOKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Invoke","Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:ACCOUNT:function:ably-sink"}]}"#;
const BOUNDARY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","lambda:*"],"Resource":"*"}]}"#;
const LOGS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#;

async fn by_hand(emu: &Emulator, account: &str) {
    let iam = emu.iam().await;
    let arn = |kind: &str, name: &str| format!("arn:aws:iam::{account}:{kind}/{name}");
    iam.create_policy()
        .policy_name("ably-invoke")
        .policy_document(INVOKE.replace("ACCOUNT", account))
        .description("invoke the Ably sink")
        .send()
        .await
        .unwrap();
    iam.create_policy()
        .policy_name("boundary")
        .path("/limits/")
        .policy_document(BOUNDARY)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("ably-integration")
        .path("/integrations/")
        .description("Ably assumes this role")
        .max_session_duration(7200)
        .assume_role_policy_document(TRUST_PARTNER)
        .permissions_boundary(arn("policy/limits", "boundary"))
        .tags(Tag::builder().key("team").value("data").build().unwrap())
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("ably-integration")
        .policy_arn(arn("policy", "ably-invoke"))
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("ably-integration")
        .policy_name("logs")
        .policy_document(LOGS)
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("web")
        .assume_role_policy_document(TRUST_EC2)
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name("web")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("web")
        .role_name("web")
        .send()
        .await
        .unwrap();
    iam.create_role()
        .role_name("deploy-target")
        .assume_role_policy_document(TRUST_ODD)
        .send()
        .await
        .unwrap();
    iam.create_group()
        .group_name("deployers")
        .path("/teams/")
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("deployers")
        .policy_arn(arn("policy", "ably-invoke"))
        .send()
        .await
        .unwrap();
    iam.create_user()
        .user_name("robot")
        .path("/robots/")
        .tags(Tag::builder().key("owner").value("ci").build().unwrap())
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("deployers")
        .user_name("robot")
        .send()
        .await
        .unwrap();
    iam.create_access_key()
        .user_name("robot")
        .send()
        .await
        .unwrap();
}

async fn roundtrip(flavor: &str) {
    let emu = Emulator::start(flavor);
    let account = match flavor {
        "moto" => "123456789012",
        _ => "000000000000",
    };
    by_hand(&emu, account).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adopted");
    let o = out.to_str().unwrap();
    // The emulator kit has roles of its own (for the example functions): select ours.
    let select = [
        "--name",
        "ably-*",
        "--name",
        "web",
        "--name",
        "deploy-target",
        "--name",
        "robot",
        "--name",
        "deployers",
        "--name",
        "boundary",
    ];
    let mut args = vec!["export", "--stack", "adopted", "--out", o];
    args.extend(select);
    let export = emu.iamplan(&args).expect(0, "export");
    let roles = std::fs::read_to_string(out.join("roles.toml")).unwrap();
    assert!(
        export
            .stdout
            .contains("exported 7 resource(s): 1 group, 2 policy, 3 role, 1 user"),
        "{}\n{roles}",
        export.stdout
    );
    // The partner's trust is said with the helpers, the account's own ID as a variable.
    assert!(
        roles.contains("[role.ably-integration.trust]\naccounts = [\"203461409171\"]\nexternal_id = \"a1b2c3.demo-app\"\nsession_tags = true\n"),
        "{roles}"
    );
    // Boundaries are read from GetAccountAuthorizationDetails, as on AWS; an emulator that
    // leaves them out there shows none (MiniStack): the export says what the read says.
    let gaad = emu
        .iam()
        .await
        .get_account_authorization_details()
        .send()
        .await
        .unwrap();
    let boundary_read = gaad
        .role_detail_list()
        .iter()
        .any(|r| r.role_name() == Some("ably-integration") && r.permissions_boundary().is_some());
    assert_eq!(
        roles.contains("permissions_boundary = \"boundary\""),
        boundary_read,
        "{roles}"
    );
    assert!(
        roles.contains("managed_policies = [\"ably-invoke\"]"),
        "{roles}"
    );
    assert!(roles.contains("instance_profile = true"), "{roles}");
    let policies = std::fs::read_to_string(out.join("policies.toml")).unwrap();
    assert!(
        policies.contains(
            "resource = \"arn:${partition}:lambda:${region}:${account_id}:function:ably-sink\""
        ),
        "{policies}"
    );
    let users = std::fs::read_to_string(out.join("users.toml")).unwrap();
    assert!(
        users.contains("# The user has 1 access key(s), 1 active."),
        "{users}"
    );
    assert!(users.contains("groups = [\"deployers\"]"), "{users}");

    // The same content as JSON, for tools.
    let mut args = vec!["export", "--stack", "adopted", "--format", "json"];
    args.extend(select);
    let json = emu.iamplan(&args).expect(0, "export --format json");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["account_id"], account);
    assert_eq!(
        v["resources"].as_array().unwrap().len(),
        7,
        "{}",
        json.stdout
    );
    let partner = &v["files"]["roles.toml"]["role"]["ably-integration"];
    assert_eq!(partner["adopt"], true, "{}", json.stdout);
    assert_eq!(partner["trust"]["external_id"], "a1b2c3.demo-app");
    assert_eq!(v["unrepresentable"], serde_json::json!([]));

    let plan = emu
        .iamplan(&["plan", o, "--json", "--detailed-exitcode"])
        .expect(2, "plan of the exported files");
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let changes = v["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 7, "{}", plan.stdout);
    // Each an adoption (an update with `adopt`) whose only change is the ownership marker.
    for c in changes {
        assert_eq!(c["change"]["actions"], serde_json::json!(["update"]), "{c}");
        assert_eq!(c["change"]["adopt"], true, "{c}");
        assert_eq!(c["change"]["documents"], serde_json::json!([]), "{c}");
        let attrs: Vec<&str> = c["change"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(attrs.iter().all(|a| *a == "owner"), "{c}");
    }
    emu.iamplan(&["apply", o, "--auto-approve"])
        .expect(0, "apply");
    emu.iamplan(&["plan", o, "--detailed-exitcode"])
        .expect(0, "plan after apply: no changes");
    // Now the stack owns them: an export of what it owns gives the same resources.
    let again = dir.path().join("again");
    let mut args = vec![
        "export",
        "--stack",
        "adopted",
        "--owned-by",
        "adopted",
        "--out",
    ];
    args.push(again.to_str().unwrap());
    emu.iamplan(&args)
        .expect(0, "export of the stack's own resources");
    assert_eq!(
        std::fs::read_to_string(again.join("roles.toml")).unwrap(),
        roles
    );
}

#[tokio::test]
async fn export_roundtrip_ministack() {
    roundtrip("ministack").await;
}

#[tokio::test]
async fn export_roundtrip_moto() {
    roundtrip("moto").await;
}

#[tokio::test]
async fn export_roundtrip_localstack() {
    roundtrip("localstack").await;
}

/// Export says only what happened: into a directory that has the files, it refuses before
/// reporting anything as exported; with nothing selected, it writes nothing and suggests
/// no next step.
#[tokio::test]
async fn export_reports_only_what_it_writes() {
    let emu = Emulator::start("ministack");
    emu.iam()
        .await
        .create_role()
        .role_name("plain")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain");
    let o = out.to_str().unwrap();
    let args = ["export", "--stack", "plain", "--out", o, "--name", "plain"];
    let first = emu.iamplan(&args).expect(0, "export");
    assert!(
        first.stdout.contains("exported 1 resource(s)"),
        "{}",
        first.stdout
    );
    let again = emu.iamplan(&args).expect(1, "export over the same files");
    assert!(!again.stdout.contains("exported"), "{}", again.stdout);
    assert!(
        again
            .stderr
            .contains("already exist(s); nothing was written"),
        "{}",
        again.stderr
    );

    let none = dir.path().join("none");
    let nothing = emu
        .iamplan(&[
            "export",
            "--stack",
            "none",
            "--out",
            none.to_str().unwrap(),
            "--name",
            "no-such-*",
        ])
        .expect(0, "export of nothing");
    assert!(
        nothing.stdout.contains("Nothing to export"),
        "{}",
        nothing.stdout
    );
    assert!(!nothing.stdout.contains("Next:"), "{}", nothing.stdout);
    assert!(!none.exists());
}
