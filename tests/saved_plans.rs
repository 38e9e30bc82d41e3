//! Saved plans of updates, against MiniStack: `plan --out P` then `apply P` with nothing
//! changed in between applies, for every kind of update; a change made out of band between
//! the two is refused, naming the resource, and nothing is applied.

mod common;

use common::{Emulator, write};
use std::path::Path;

const BEFORE: &str = r#"
[stack]
name = "saved"

[policy.invoke]
description = "invoke one function"
[[policy.invoke.statement]]
action = ["lambda:InvokeFunction"]
resource = ["arn:${partition}:lambda:${region}:${account_id}:function:one"]

[role.partner]
description = "first words"
managed_policies = ["invoke"]
[role.partner.trust]
accounts = ["203461409171"]
[[role.partner.inline.logs.statement]]
action = ["logs:PutLogEvents"]
resource = ["*"]

[group.readers]
[[group.readers.inline.read.statement]]
action = ["s3:GetObject"]
resource = ["arn:aws:s3:::one/*"]

[user.robot]
groups = ["readers"]
[[user.robot.inline.own.statement]]
action = ["sqs:SendMessage"]
resource = ["*"]
[user.robot.access_keys]
count = 1
rotate_after_days = 90
sink = { type = "json", path = "secrets/robot.json" }
"#;

/// Every kind of update at once: a role's description and inline policy, a managed
/// policy's document (a new version), a group's inline policy, a user's inline policy and
/// tag, and (under `--now`, 100 days on) a key rotation.
fn after() -> String {
    BEFORE
        .replace("first words", "second words")
        .replace("logs:PutLogEvents", "logs:CreateLogStream")
        .replace("function:one", "function:two")
        .replace("arn:aws:s3:::one/*", "arn:aws:s3:::two/*")
        .replace("sqs:SendMessage", "sqs:ReceiveMessage")
        .replace(
            "[user.robot]\n",
            "[user.robot]\ntags = { team = \"data\" }\n",
        )
}

fn plan_out(emu: &Emulator, plan: &Path, saved: &Path, now: &str) -> common::Run {
    emu.iamplan(&[
        "plan",
        plan.to_str().unwrap(),
        "--now",
        now,
        "--out",
        saved.to_str().unwrap(),
    ])
}

const LATER: &str = "2027-06-01T00:00:00Z";

#[tokio::test]
async fn a_saved_plan_of_updates_applies_and_out_of_band_changes_are_refused() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "main.toml", BEFORE);
    let p = plan.to_str().unwrap();
    emu.iamplan(&[
        "apply",
        p,
        "--auto-approve",
        "--now",
        "2027-01-01T00:00:00Z",
    ])
    .expect(0, "first apply");

    write(dir.path(), "main.toml", &after());
    let saved = dir.path().join("update.plan");
    let planned = plan_out(&emu, &plan, &saved, LATER).expect(0, "plan --out of the updates");
    for address in [
        "role.partner",
        "policy.invoke",
        "group.readers",
        "user.robot",
    ] {
        assert!(
            planned.stdout.contains(address),
            "the plan updates {address}:\n{}",
            planned.stdout
        );
    }
    let applied = emu
        .iamplan(&["apply", saved.to_str().unwrap()])
        .expect(0, "apply of the saved plan right after plan --out");
    assert!(
        !applied.stderr.contains("changed since"),
        "{}",
        applied.stderr
    );
    emu.iamplan(&["plan", p, "--now", LATER, "--detailed-exitcode"])
        .expect(0, "after the saved plan, nothing is left to change");

    // An out-of-band change between plan --out and apply is refused, naming the resource,
    // and nothing of the saved plan is applied.
    write(
        dir.path(),
        "main.toml",
        &after().replace("second words", "third words"),
    );
    plan_out(&emu, &plan, &saved, LATER).expect(0, "plan --out of one more update");
    let iam = emu.iam().await;
    iam.update_role_description()
        .role_name("partner")
        .description("changed by hand")
        .send()
        .await
        .unwrap();
    let refused = emu
        .iamplan(&["apply", saved.to_str().unwrap()])
        .expect(1, "apply of a saved plan after an out-of-band change");
    assert!(
        refused.stderr.contains("role.partner (changed)")
            && refused.stderr.contains("nothing was applied"),
        "{}",
        refused.stderr
    );
    let role = iam.get_role().role_name("partner").send().await.unwrap();
    assert_eq!(
        role.role().and_then(|r| r.description()),
        Some("changed by hand"),
        "the refused plan applied nothing"
    );
}
