//! Faults between iamplan and IAM (tests/support/fault.py in front of the emulator): lost
//! answers, dropped connections, HTTP 500 before and after the write, throttling.

mod common;

use common::{Emulator, Helper, start_support, write};
use std::path::{Path, PathBuf};

/// The fault proxy in front of an emulator, with its rules and log files.
struct Faults {
    _proxy: Helper,
    endpoint: String,
    rules: PathBuf,
    log: PathBuf,
}

impl Faults {
    fn start(emu: &Emulator, dir: &Path) -> Faults {
        let rules = dir.join("faults.json");
        let log = dir.join("faults.log");
        std::fs::write(&rules, "{\"rules\": []}").unwrap();
        let (proxy, port) = start_support(
            "fault.py",
            &[
                &emu.endpoint(),
                rules.to_str().unwrap(),
                log.to_str().unwrap(),
            ],
        );
        Faults {
            _proxy: proxy,
            endpoint: format!("http://127.0.0.1:{port}"),
            rules,
            log,
        }
    }

    fn set(&self, rules: &str) {
        std::fs::write(&self.rules, rules).unwrap();
    }

    fn fired(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `iamplan ARGS` through the proxy.
    fn iamplan(&self, emu: &Emulator, args: &[&str]) -> common::Run {
        emu.iamplan_env(args, &[("AWS_ENDPOINT_URL", &self.endpoint)])
    }
}

const ROBOT: &str = r#"
[stack]
name = "faults"

[user.robot]
path = "/robots/"
[user.robot.access_keys]
sink = { type = "json", path = "secrets/robot.json" }
"#;

/// The keys IAM has for a user (read without the proxy), and the key the sink holds.
async fn keys(emu: &Emulator, user: &str, sink: &Path) -> (Vec<(String, bool)>, Option<String>) {
    let iam = emu.iam().await;
    let listed = iam.list_access_keys().user_name(user).send().await.unwrap();
    let keys = listed
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap_or_default().to_string(),
                k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
            )
        })
        .collect();
    let held = std::fs::read_to_string(sink).ok().map(|t| {
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        v["AccessKeyId"].as_str().unwrap().to_string()
    });
    (keys, held)
}

/// CreateAccessKey is not idempotent: when its answer is lost (the key was made, the
/// caller never heard), a retry makes a second key that nobody else knows of. After the
/// apply, the user must have exactly one key, and it must be the sink's.
#[tokio::test]
async fn a_lost_create_access_key_answer_leaves_no_orphan_key() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", ROBOT);
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(r#"{"rules": [{"action": "CreateAccessKey", "fault": "drop_after", "times": 1}]}"#);
    let first = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    assert!(
        faults.fired().contains("drop_after CreateAccessKey"),
        "{}",
        faults.fired()
    );
    let sink = dir.path().join("secrets/robot.json");
    let (keys, held) = keys(&emu, "robot", &sink).await;
    assert_eq!(
        keys.len(),
        1,
        "keys after the apply: {keys:?}\n{}\n{}",
        first.stdout,
        first.stderr
    );
    assert_eq!(Some(keys[0].0.clone()), held, "the key is not the sink's");
    assert!(keys[0].1, "the key is not active");
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    faults
        .iamplan(&emu, &["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
}

const STACK: &str = r#"
[stack]
name = "faults"

[policy.invoke]
[[policy.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:${partition}:lambda:${region}:${account_id}:function:f"

[role.worker]
managed_policies = ["invoke"]
[role.worker.trust]
services = ["lambda.amazonaws.com"]
[role.worker.inline.logs]
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}'

[group.deployers]
managed_policies = ["invoke"]

[user.deployer]
groups = ["deployers"]
"#;

/// A create whose answer is lost is sent again and meets "already exists" from its own
/// earlier success; a write whose connection drops before or after it reached IAM is sent
/// again. One apply must still make everything, and the next plan must be empty.
#[tokio::test]
async fn lost_answers_and_dropped_connections_on_idempotent_writes_converge_in_one_apply() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", STACK);
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(
        r#"{"rules": [
        {"action": "CreatePolicy", "fault": "drop_after", "times": 2},
        {"action": "CreateRole", "fault": "drop_after", "times": 1},
        {"action": "CreateGroup", "fault": "drop_after", "times": 1},
        {"action": "CreateUser", "fault": "500_after", "times": 1},
        {"action": "PutRolePolicy", "fault": "drop_before", "times": 1},
        {"action": "AttachRolePolicy", "fault": "drop_after", "times": 1},
        {"action": "AddUserToGroup", "fault": "500_before", "times": 1}
    ]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    let fired = faults.fired();
    // The first CreatePolicy is the stack lock's: its lost answer must not lock the run
    // out of its own stack, nor leave the lock behind.
    assert!(!lock_left(&emu).await, "the stack lock was left behind");
    for f in [
        "drop_after CreatePolicy",
        "drop_after CreateRole",
        "drop_after CreateGroup",
        "500_after CreateUser",
        "drop_before PutRolePolicy",
    ] {
        assert!(fired.contains(f), "{f} did not happen: {fired}");
    }
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    faults.set(r#"{"rules": []}"#);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after one apply");
}

/// A sink that cannot take a key (a path under /proc, a command that does not exist) is
/// found before the first write: nothing is applied, not even the user.
#[tokio::test]
async fn an_unwritable_sink_is_refused_before_anything_is_written() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    for (name, sink) in [
        (
            "proc",
            r#"{ type = "json", path = "/proc/iamplan-cannot-write-here/robot.json" }"#,
        ),
        (
            "command",
            r#"{ type = "command", argv = ["iamplan-no-such-secret-store", "robot"] }"#,
        ),
    ] {
        let plan = write(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                "[stack]\nname = \"sink-{name}\"\n[user.robot-{name}]\n[user.robot-{name}.access_keys]\nsink = {sink}\n"
            ),
        );
        let out = emu.iamplan(&["apply", plan.to_str().unwrap(), "--auto-approve"]);
        assert_eq!(out.code, 1, "{name}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("cannot take a key"),
            "{name}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("nothing was applied"),
            "{name}: {}",
            out.stderr
        );
        let iam = emu.iam().await;
        let user = iam
            .get_user()
            .user_name(format!("robot-{name}"))
            .send()
            .await;
        assert!(user.is_err(), "{name}: the user was created");
    }
}

/// 10% of calls lose their connection (half before IAM saw them, half after), 10% get an
/// HTTP 500 (half before, half after the write), and a fifth of the rest are throttled: one
/// apply succeeds, and then every user has exactly one active key, the one its sink holds,
/// and the next plan is empty.
#[tokio::test]
async fn with_ten_percent_drops_and_ten_percent_500s_one_apply_converges() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[stack]\nname = \"noisy\"\n");
    for i in 0..4 {
        text += &format!(
            "[role.r{i}.trust]\nservices = [\"lambda.amazonaws.com\"]\n[role.r{i}.inline.logs]\ndocument = '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"logs:PutLogEvents\",\"Resource\":\"*\"}}]}}'\n\
             [user.u{i}.access_keys]\nsink = {{ type = \"json\", path = \"secrets/u{i}.json\" }}\n"
        );
    }
    let plan = write(dir.path(), "plan.toml", &text);
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(
        r#"{"seed": 7, "rules": [
        {"fault": "drop_before", "rate": 0.05},
        {"fault": "drop_after", "rate": 0.0527},
        {"fault": "500_before", "rate": 0.0556},
        {"fault": "500_after", "rate": 0.0588},
        {"fault": "throttle", "rate": 0.2}
    ]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    let fired = faults.fired();
    assert!(
        fired.lines().count() >= 3,
        "too few faults to mean anything: {fired}"
    );
    assert_eq!(
        apply.code, 0,
        "faults: {fired}\n{}\n{}",
        apply.stdout, apply.stderr
    );
    for i in 0..4 {
        let (keys, held) = keys(
            &emu,
            &format!("u{i}"),
            &dir.path().join(format!("secrets/u{i}.json")),
        )
        .await;
        let active: Vec<&String> = keys.iter().filter(|k| k.1).map(|k| &k.0).collect();
        assert_eq!(active.len(), 1, "u{i}: {keys:?} (faults: {fired})");
        assert_eq!(
            Some(active[0].clone()),
            held,
            "u{i}: the active key is not the sink's"
        );
    }
    faults
        .iamplan(&emu, &["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after one apply, through the same faults");
}

async fn lock_left(emu: &Emulator) -> bool {
    let iam = emu.iam().await;
    let listed = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap();
    listed.policies().iter().any(|p| {
        p.policy_name()
            .is_some_and(|n| n.starts_with("iamplan-lock-"))
    })
}
