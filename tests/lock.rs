//! The stack lock: apply and rotate take it, plan does not; a lock held elsewhere stops an
//! apply with who holds it; force-unlock removes it; concurrent applies end consistent.

mod common;

use common::{Emulator, write};

const PLAN: &str = r#"
[stack]
name = "locked"
[role.worker.trust]
services = ["lambda.amazonaws.com"]
[user.robot.access_keys]
sink = { type = "json", path = "robot.json" }
"#;

const LOCK_DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iamplan:StackLock","Resource":"*"}]}"#;

async fn lock_exists(emu: &Emulator) -> bool {
    let iam = emu.iam().await;
    iam.get_policy()
        .policy_arn("arn:aws:iam::000000000000:policy/iamplan/iamplan-lock-locked")
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_elsewhere_stops_apply_until_force_unlock() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    // A run on another machine holds the lock.
    emu.iam()
        .await
        .create_policy()
        .policy_name("iamplan-lock-locked")
        .path("/iamplan/")
        .description("held by arn:aws:iam::000000000000:user/ci on build-7 (pid 4242) since 2026-11-25T08:00:00Z")
        .policy_document(LOCK_DOC)
        .send()
        .await
        .unwrap();
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(2, "plan does not lock");
    let refused = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(1, "apply while locked");
    assert!(
        refused.stderr.contains("stack \"locked\" is locked in account default (held by arn:aws:iam::000000000000:user/ci on build-7 (pid 4242) since 2026-11-25T08:00:00Z)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("`iamplan force-unlock`"),
        "{}",
        refused.stderr
    );
    let iam = emu.iam().await;
    assert!(
        iam.get_role().role_name("worker").send().await.is_err(),
        "applied while locked"
    );
    let unlocked = emu.iamplan(&["force-unlock", p]).expect(0, "force-unlock");
    assert!(unlocked.stdout.contains("removed the lock of stack \"locked\" (held by arn:aws:iam::000000000000:user/ci on build-7"), "{}", unlocked.stdout);
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply after force-unlock");
    assert!(
        !lock_exists(&emu).await,
        "the apply did not give its lock back"
    );
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
}

/// Three applies of one stack at once: each either applies or is refused by the lock, and
/// the end state is one role and one active key, the sink's.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_applies_end_consistent() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = emu.command(&["apply", p, "--auto-approve"]);
            std::thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0) || stderr.contains("is locked"),
            "{stderr}"
        );
    }
    let iam = emu.iam().await;
    let keys = iam
        .list_access_keys()
        .user_name("robot")
        .send()
        .await
        .unwrap();
    let active: Vec<String> = keys
        .access_key_metadata()
        .iter()
        .filter(|k| k.status() == Some(&aws_sdk_iam::types::StatusType::Active))
        .map(|k| k.access_key_id().unwrap_or_default().to_string())
        .collect();
    let sink: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("robot.json")).unwrap())
            .unwrap();
    assert_eq!(
        active,
        [sink["AccessKeyId"].as_str().unwrap()],
        "active keys against the sink's"
    );
    assert!(!lock_exists(&emu).await, "a lock was left behind");
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the applies");
}
