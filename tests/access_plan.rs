//! Access analysis wired into plan, apply and smoke, against MiniStack (AUTH=true, so that
//! AWS's answers are IAM's): `--deny-widening` refuses an unacknowledged widening after
//! showing the plan, lets an acknowledged one through, and smoke reports a check whose
//! prediction from the plan disagrees with AWS (here: a trust policy changed out of band).

mod common;

use common::{Emulator, write};

const PLAN: &str = r#"
[stack]
name = "access"

[role.invoker]
[role.invoker.trust]
users = ["${user.robot.arn}"]
external_id = "abc"
[[role.invoker.inline.data.statement]]
action = "s3:GetObject"
resource = "arn:aws:s3:::bucket/*"

[[user.robot.inline.assume.statement]]
action = "sts:AssumeRole"
resource = "${role.invoker.arn}"

[user.robot.access_keys]
count = 1
sink = { type = "json", path = "robot.json" }

[smoke.robot-gets-in]
from_user = "robot"
retry_seconds = 10
[[smoke.robot-gets-in.assume]]
role = "invoker"
external_id = "abc"
[smoke.robot-gets-in.expect]
result = "allow"

[smoke.wrong-id]
from_user = "robot"
[[smoke.wrong-id.assume]]
role = "invoker"
external_id = "nope"
[smoke.wrong-id.expect]
result = "deny"
reason = "external_id"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn deny_widening_and_smoke_predictions() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    // A new stack widens everything: acknowledged or not, a plain apply goes ahead.
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");

    // Both checks agree with the plan: no finding.
    let out = emu.iamplan(&["smoke", p, "--json"]).expect(0, "smoke");
    let results: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for r in results.as_array().unwrap() {
        assert!(r["finding"].is_null(), "{r}");
    }
    let predicted = |name: &str, results: &serde_json::Value| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["prediction"]["outcome"].clone())
    };
    assert_eq!(predicted("robot-gets-in", &results).unwrap(), "allow");
    assert_eq!(predicted("wrong-id", &results).unwrap(), "deny");

    // The widening: one more action on the bucket.
    let widened = PLAN.replace(
        r#"action = "s3:GetObject""#,
        r#"action = ["s3:GetObject", "s3:DeleteObject"]"#,
    );
    write(dir.path(), "plan.toml", &widened);
    let saved = dir.path().join("widening.plan");
    let out = emu
        .iamplan(&[
            "plan",
            p,
            "--deny-widening",
            "--out",
            saved.to_str().unwrap(),
        ])
        .expect(1, "plan --deny-widening");
    assert!(
        out.stdout
            .contains("# widens access: + s3:DeleteObject on arn:aws:s3:::bucket/*"),
        "the plan is shown first:\n{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("role.invoker inline policy data widens access")
            && out
                .stderr
                .contains("`allow_widening = true` in [role.invoker]"),
        "{}",
        out.stderr
    );
    assert!(!saved.exists(), "a refused plan is not saved");
    let out = emu
        .iamplan(&["apply", p, "--deny-widening", "--auto-approve"])
        .expect(1, "apply --deny-widening");
    assert!(
        out.stderr.contains("Nothing was applied."),
        "{}",
        out.stderr
    );
    let json = emu.iamplan(&["plan", p, "--json"]).expect(0, "plan --json");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let doc = &json["resource_changes"][0]["change"]["documents"][0];
    assert_eq!(doc["access"]["classification"], "widens", "{json}");
    assert_eq!(
        doc["access"]["gained"][0]["actions"],
        serde_json::json!(["s3:DeleteObject"])
    );

    // Acknowledged, the same change passes, and a narrowing needs nothing.
    let acknowledged = widened.replace(
        "[role.invoker]\n",
        "[role.invoker]\nallow_widening = true\n",
    );
    write(dir.path(), "plan.toml", &acknowledged);
    emu.iamplan(&["plan", p, "--deny-widening"])
        .expect(0, "acknowledged plan");
    emu.iamplan(&["apply", p, "--deny-widening", "--auto-approve"])
        .expect(0, "acknowledged apply");
    write(dir.path(), "plan.toml", PLAN);
    let out = emu
        .iamplan(&["plan", p, "--deny-widening"])
        .expect(0, "a narrowing");
    assert!(
        out.stdout
            .contains("# narrows access: - s3:DeleteObject on arn:aws:s3:::bucket/*"),
        "{}",
        out.stdout
    );
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply the narrowing");

    // Out of band, the role's trust wants another ExternalId: the plan still predicts the
    // robot gets in, AWS refuses: a finding.
    let account = "000000000000";
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:user/robot"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"changed"}}}}}}]}}"#
    );
    emu.iam()
        .await
        .update_assume_role_policy()
        .role_name("invoker")
        .policy_document(trust)
        .send()
        .await
        .unwrap();
    let out = emu
        .iamplan(&["smoke", p, "--json"])
        .expect(1, "smoke after drift");
    let results: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let gets_in = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "robot-gets-in")
        .unwrap();
    assert!(
        gets_in["finding"]
            .as_str()
            .is_some_and(|f| f.starts_with("predicted allow, AWS denied")),
        "{gets_in}"
    );
    let text = emu.iamplan(&["smoke", p]).expect(1, "smoke text");
    assert!(text.stdout.contains("PREDICTED"), "{}", text.stdout);
    assert!(
        text.stdout.contains("finding: predicted allow, AWS denied"),
        "{}",
        text.stdout
    );
}
