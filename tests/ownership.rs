//! Ownership edges against MiniStack: what a plan may delete when something outside the
//! stack holds on to it.

mod common;

use common::{Emulator, write};

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

const KEEP: &str = r#"
[role.keeper]
description = "stays"
[role.keeper.trust]
services = ["ec2.amazonaws.com"]
"#;

/// An adopted managed policy is marked by its tag only; removed from the plan, it is left in
/// place, as the README promises.
#[tokio::test]
async fn an_adopted_policy_removed_from_the_plan_is_left_in_place() {
    let emu = Emulator::start("ministack");
    let iam = emu.iam().await;
    iam.create_policy()
        .policy_name("handmade")
        .policy_document(DOC)
        .description("made by hand")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let with = format!(
        "[stack]\nname = \"adopter\"\n{KEEP}\n[policy.handmade]\ndescription = \"made by hand\"\nadopt = true\ndocument = '{DOC}'\n"
    );
    let plan = write(dir.path(), "main.toml", &with);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply adopting the policy");
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "the adopted policy is managed: no changes");

    write(
        dir.path(),
        "main.toml",
        &format!("[stack]\nname = \"adopter\"\n{KEEP}"),
    );
    let planned = emu.iamplan(&["plan", p, "--detailed-exitcode"]).expect(
        0,
        "removing an adopted policy from the plan deletes nothing",
    );
    assert!(
        !planned.stdout.contains("policy.handmade"),
        "{}",
        planned.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply without the policy");
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap();
    assert!(
        policies
            .policies()
            .iter()
            .any(|p| p.policy_name() == Some("handmade")),
        "the adopted policy is still there"
    );
}

/// Deleting a policy that a role outside the stack attaches: the plan names the attachment as
/// a conflict, and apply refuses before any write (IAM would refuse the deletion on every
/// apply). Deleting a group says which users outside the stack lose it.
#[tokio::test]
async fn deletions_that_reach_outside_the_stack_are_named() {
    let emu = Emulator::start("ministack");
    let iam = emu.iam().await;
    let dir = tempfile::tempdir().unwrap();
    let full = format!(
        "[stack]\nname = \"owner\"\n{KEEP}\n[policy.shared]\ndocument = '{DOC}'\n\n[group.crew]\n"
    );
    let plan = write(dir.path(), "main.toml", &full);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "first apply");

    let arn = "arn:aws:iam::000000000000:policy/shared";
    iam.create_role()
        .role_name("outsider")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("outsider")
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    iam.create_user().user_name("bob").send().await.unwrap();
    iam.add_user_to_group()
        .user_name("bob")
        .group_name("crew")
        .send()
        .await
        .unwrap();

    // Without the policy and the group, and with one more change that must not be applied.
    write(
        dir.path(),
        "main.toml",
        &format!(
            "[stack]\nname = \"owner\"\n{}",
            KEEP.replace("stays", "changed")
        ),
    );
    let planned = emu
        .iamplan(&["plan", p])
        .expect(1, "a deletion IAM would refuse is a conflict");
    assert!(
        planned.stdout.contains(
            "policy.shared: this plan deletes the policy, but role \"outsider\" (not managed by iamplan) is attached to it outside this stack"
        ),
        "{}",
        planned.stdout
    );
    assert!(
        planned
            .stdout
            .contains("user \"bob\" (not managed by iamplan) is a member"),
        "{}",
        planned.stdout
    );
    let refused = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(1, "apply refuses before any write");
    assert!(
        refused.stderr.contains("nothing was applied"),
        "{}",
        refused.stderr
    );
    let role = iam.get_role().role_name("keeper").send().await.unwrap();
    assert_eq!(role.role().and_then(|r| r.description()), Some("stays"));
    iam.get_policy().policy_arn(arn).send().await.unwrap();

    // Detached there, the deletion goes through.
    iam.detach_role_policy()
        .role_name("outsider")
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply once the policy is detached outside");
    assert!(iam.get_policy().policy_arn(arn).send().await.is_err());
}
