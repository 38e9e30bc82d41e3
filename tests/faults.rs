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
        {"action": "CreatePolicy", "fault": "drop_after", "times": 1},
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
