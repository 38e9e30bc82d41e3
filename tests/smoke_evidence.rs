//! Smoke verdicts rest on evidence from AWS: a role that does not exist fails the check at
//! once (even one expecting a denial), and where the endpoint does not enforce IAM a denial
//! is not claimed.

mod common;

use common::{Emulator, write};
use std::time::Instant;

const PLAN: &str = r#"
[stack]
name = "evidence"
[role.partner]
[role.partner.trust]
accounts = ["203461409171"]
external_id = "right.id"
[smoke.partner-gets-in]
from_profile = "ably"
[[smoke.partner-gets-in.assume]]
role = "partner"
external_id = "right.id"
[smoke.partner-gets-in.expect]
result = "allow"
[smoke.no-external-id]
from_profile = "ably"
[[smoke.no-external-id.assume]]
role = "partner"
[smoke.no-external-id.expect]
result = "deny"
reason = "external_id"
"#;

/// Before apply the role does not exist: both checks fail at once, saying so, instead of
/// a minute of retries and a deny check passing on reasons read from the plan.
#[test]
fn a_missing_role_fails_every_check_at_once() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    let started = Instant::now();
    let out = emu
        .iamplan(&["smoke", p, "--json"])
        .expect(1, "smoke before apply");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains("live IAM differs from the plan"),
        "{}",
        out.stderr
    );
    let results: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for r in results.as_array().unwrap() {
        assert_eq!(r["passed"], false, "{r}");
        assert_eq!(
            r["diagnosis"],
            "role arn:aws:iam::000000000000:role/partner not found (not applied yet?)",
            "{r}"
        );
    }
    // Applied, both pass: the denial is IAM's.
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    emu.iamplan(&["smoke", p]).expect(0, "smoke after apply");
}

/// moto accepts any credentials: a deny check says that a denial cannot be observed there
/// rather than failing without a hint.
#[test]
fn deny_checks_say_when_the_endpoint_does_not_enforce_iam() {
    let emu = Emulator::start("moto");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    let out = emu
        .iamplan(&["smoke", p, "--json"])
        .expect(1, "smoke on moto");
    let results: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let deny = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "no-external-id")
        .unwrap();
    assert_eq!(deny["passed"], false);
    assert!(
        deny["diagnosis"]
            .as_str()
            .unwrap()
            .contains("does not enforce IAM"),
        "{deny}"
    );
    let allow = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "partner-gets-in")
        .unwrap();
    assert_eq!(allow["passed"], true, "{allow}");
}
