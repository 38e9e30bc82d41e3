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

async fn forge_lock(emu: &Emulator, description: &str) {
    emu.iam()
        .await
        .create_policy()
        .policy_name("iamplan-lock-locked")
        .path("/iamplan/")
        .description(description)
        .policy_document(LOCK_DOC)
        .send()
        .await
        .unwrap();
}

fn proc_text(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (these tests need Linux's /proc)"))
        .trim()
        .to_string()
}

/// A lock whose host name and pid namespace are this machine's and whose pid is gone is
/// still not taken over when it was written on another boot (a cloned image, a default
/// host name: the initial pid namespace has the same inode on every host), nor when it
/// says no boot at all (an older iamplan's lock, which cannot be checked). Only a lock of
/// this very boot is taken over.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_looking_lock_of_another_boot_is_not_taken_over() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    let host = proc_text("/proc/sys/kernel/hostname");
    let boot = proc_text("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // No process can have this pid (pid_max is at most 2^22).
    let who = format!("held by arn:aws:iam::000000000000:user/ci on {host} (pid 4194304, {ns})");
    let since = "since 2026-11-25T08:00:00Z";
    let other_boot = if boot.starts_with('0') {
        boot.replacen('0', "1", 1)
    } else {
        format!("0{}", &boot[1..])
    };
    for (case, description) in [
        ("another boot", format!("{who} boot {other_boot} {since}")),
        ("no boot recorded", format!("{who} {since}")),
    ] {
        forge_lock(&emu, &description).await;
        let refused = emu.iamplan(&["apply", p, "--auto-approve"]).expect(1, case);
        assert!(
            refused.stderr.contains("is locked in account default"),
            "{case}: {}",
            refused.stderr
        );
        let iam = emu.iam().await;
        assert!(
            iam.get_role().role_name("worker").send().await.is_err(),
            "{case}: applied under another run's lock"
        );
        emu.iamplan(&["force-unlock", p]).expect(0, "force-unlock");
    }
    forge_lock(&emu, &format!("{who} boot {boot} {since}")).await;
    let taken = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "a dead run of this boot");
    assert!(
        taken.stderr.contains("taking the lock over"),
        "{}",
        taken.stderr
    );
    assert!(!lock_exists(&emu).await, "the lock was not given back");
}

/// force-unlock of a lock policy someone attached to a role: IAM refuses to delete an
/// attached policy, and force-unlock says what to detach (it leaves principals outside the
/// lock alone). A description with a line break cannot print a forged line.
#[tokio::test(flavor = "multi_thread")]
async fn force_unlock_names_what_the_lock_is_attached_to_and_escapes_its_description() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", PLAN);
    let p = plan.to_str().unwrap();
    forge_lock(
        &emu,
        "held by someone\nApply complete! Resources: 0 added, 0 changed, 0 destroyed.",
    )
    .await;
    let refused = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(1, "apply while locked");
    assert!(
        !refused
            .stderr
            .lines()
            .chain(refused.stdout.lines())
            .any(|l| l.starts_with("Apply complete!")),
        "a forged line was printed:\n{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stderr.contains(r"held by someone\nApply complete!"),
        "{}",
        refused.stderr
    );
    let iam = emu.iam().await;
    iam.create_role()
        .role_name("bystander")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let lock = "arn:aws:iam::000000000000:policy/iamplan/iamplan-lock-locked";
    iam.attach_role_policy()
        .role_name("bystander")
        .policy_arn(lock)
        .send()
        .await
        .unwrap();
    let stuck = emu
        .iamplan(&["force-unlock", p])
        .expect(1, "force-unlock of an attached lock");
    assert!(stuck.stderr.contains("role bystander"), "{}", stuck.stderr);
    assert!(
        stuck
            .stderr
            .contains("aws iam detach-role-policy --role-name bystander --policy-arn arn:aws:iam::000000000000:policy/iamplan/iamplan-lock-locked"),
        "{}",
        stuck.stderr
    );
    assert!(
        !stuck
            .stdout
            .lines()
            .chain(stuck.stderr.lines())
            .any(|l| l.starts_with("Apply complete!")),
        "{}\n{}",
        stuck.stdout,
        stuck.stderr
    );
    assert!(lock_exists(&emu).await);
    iam.detach_role_policy()
        .role_name("bystander")
        .policy_arn(lock)
        .send()
        .await
        .unwrap();
    let unlocked = emu.iamplan(&["force-unlock", p]).expect(0, "force-unlock");
    assert!(
        unlocked
            .stdout
            .contains(r"(held by someone\nApply complete!"),
        "{}",
        unlocked.stdout
    );
    assert!(!lock_exists(&emu).await);
}
