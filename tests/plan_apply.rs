//! plan/apply against a real emulator, on each flavor: their documents come back in
//! different encodings, which is the point.

mod common;

use common::{Emulator, write};

const PLAN: &str = r#"
[stack]
name = "itest"

[variables]
app = "chat"

[policy.invoke]
description = "invoke one function"
[[policy.invoke.statement]]
sid = "Invoke"
action = ["lambda:InvokeFunction", "lambda:InvokeAsync"]
resource = ["arn:${partition}:lambda:${region}:${account_id}:function:${var.app}"]

[role.partner]
path = "/integrations/"
description = "a third party assumes this"
max_session_duration = 7200
managed_policies = ["invoke"]
tags = { team = "data" }
[role.partner.trust]
accounts = ["203461409171"]
external_id = "${account_id}.${var.app}"
[role.partner.inline.logs]
document = '''
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
  ]
}
'''

[role.worker]
[role.worker.trust]
services = ["ec2.amazonaws.com"]
"#;

async fn roundtrip(flavor: &str) {
    let emu = Emulator::start(flavor);
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    let account = match flavor {
        "moto" => "123456789012",
        _ => "000000000000",
    };

    let first = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(2, "first plan");
    assert!(
        first
            .stdout
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        first.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    let after = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after apply");
    assert!(after.stdout.contains("No changes."), "{}", after.stdout);

    // Out of band: the same documents in other but equivalent forms.
    let iam = emu.iam().await;
    // moto and LocalStack reject trust actions in any case but AWS's own spelling, and
    // LocalStack an upper-case service prefix in actions and condition keys (AWS accepts all).
    let assume = if flavor == "ministack" {
        "STS:assumerole"
    } else {
        "sts:AssumeRole"
    };
    let trust = format!(
        r#"{{"Statement":[{{"Condition":{{"StringEquals":{{"STS:EXTERNALID":["{account}.chat"]}}}},
            "Principal":{{"AWS":["203461409171"]}},"Action":["{assume}"],"Effect":"Allow"}}],"Version":"2012-10-17"}}"#
    );
    iam.update_assume_role_policy()
        .role_name("partner")
        .policy_document(trust)
        .send()
        .await
        .unwrap();
    // LocalStack rejects a JSON boolean as a condition value (AWS takes `true` for "true").
    let secure = if flavor == "localstack" {
        r#""true""#
    } else {
        "true"
    };
    let inline = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Resource":["*"],"Effect":"Allow","Sid":"Logs",
        "Action":["logs:PUTLOGEVENTS","logs:CreateLogStream"],"Condition":{{"Bool":{{"aws:securetransport":{secure}}}}}}}}}"#
    );
    iam.put_role_policy()
        .role_name("partner")
        .policy_name("logs")
        .policy_document(&inline)
        .send()
        .await
        .unwrap();
    let managed = format!(
        r#"{{"Statement":[{{"Resource":"arn:aws:lambda:us-east-1:{account}:function:chat","Action":["lambda:invokeasync","lambda:invokefunction"],"Effect":"Allow","Sid":"Invoke"}}],"Version":"2012-10-17"}}"#
    );
    let policy_arn = format!("arn:aws:iam::{account}:policy/invoke");
    iam.create_policy_version()
        .policy_arn(&policy_arn)
        .policy_document(managed)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let equivalent = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after equivalent rewrites");
    assert!(
        equivalent.stdout.contains("No changes."),
        "{}",
        equivalent.stdout
    );

    // A real change out of band is reported, with the user's text in the diff, and repaired.
    let other = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    iam.update_assume_role_policy()
        .role_name("partner")
        .policy_document(other)
        .send()
        .await
        .unwrap();
    iam.update_role()
        .role_name("partner")
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    let drift = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(2, "plan after drift");
    assert!(
        drift
            .stdout
            .contains("# role.partner will be updated in place"),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("~ max_session_duration = 3600 -> 7200"),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("-         \"AWS\": \"arn:aws:iam::111122223333:root\""),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("+         \"AWS\": \"arn:aws:iam::203461409171:root\""),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        drift.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "repair");
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after repair");

    // An unowned same-named role is a conflict: not touched, not adopted silently.
    iam.create_role()
        .role_name("outsider")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let with_outsider = format!(
        "{PLAN}\n[role.outsider]\ndescription = \"mine now\"\n[role.outsider.trust]\nservices = [\"lambda.amazonaws.com\"]\n"
    );
    write(dir.path(), "plan.toml", &with_outsider);
    let conflict = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(1, "plan with an unowned role");
    assert!(
        conflict
            .stdout
            .contains("role \"outsider\" already exists and is not managed by iamplan"),
        "{}",
        conflict.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(1, "apply with a conflict");
    let outsider = iam.get_role().role_name("outsider").send().await.unwrap();
    assert_eq!(
        outsider.role().and_then(|r| r.description()).unwrap_or(""),
        ""
    );

    // Removing resources from the plan deletes what the stack owns, and only that.
    let only_worker = "[stack]\nname = \"itest\"\n[role.worker]\n[role.worker.trust]\nservices = [\"ec2.amazonaws.com\"]\n";
    write(dir.path(), "plan.toml", only_worker);
    let shrink = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(2, "plan after removing resources");
    assert!(
        shrink.stdout.contains("# role.partner will be destroyed"),
        "{}",
        shrink.stdout
    );
    assert!(
        shrink.stdout.contains("# policy.invoke will be destroyed"),
        "{}",
        shrink.stdout
    );
    assert!(
        shrink
            .stdout
            .contains("Plan: 0 to add, 0 to change, 2 to destroy."),
        "{}",
        shrink.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply deletions");
    assert!(
        iam.get_role().role_name("partner").send().await.is_err(),
        "partner should be deleted"
    );
    assert!(
        iam.get_policy()
            .policy_arn(&policy_arn)
            .send()
            .await
            .is_err(),
        "invoke should be deleted"
    );
    assert!(
        iam.get_role().role_name("outsider").send().await.is_ok(),
        "the unowned role must survive"
    );
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after deletions");
}

#[tokio::test]
async fn plan_apply_roundtrip_ministack() {
    roundtrip("ministack").await;
}

#[tokio::test]
async fn plan_apply_roundtrip_moto() {
    roundtrip("moto").await;
}

#[tokio::test]
async fn plan_apply_roundtrip_localstack() {
    roundtrip("localstack").await;
}
