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

/// The group's ownership marker (an inline policy named after the stack), read without the
/// proxy.
async fn group_marked(emu: &Emulator, group: &str, stack: &str) -> bool {
    let iam = emu.iam().await;
    let listed = iam
        .list_group_policies()
        .group_name(group)
        .send()
        .await
        .unwrap();
    listed
        .policy_names()
        .iter()
        .any(|n| n == &format!("iamplan-stack-{stack}"))
}

/// A lost CreateGroup answer, then one failed read of the group while the apply checks
/// whether the group is its own: the read is retried, the group counts as this apply's,
/// and its ownership marker is written (without it every later apply is refused).
#[tokio::test]
async fn a_lost_create_group_answer_and_a_failed_read_still_mark_the_group() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"faults\"\n[group.deployers]\n",
    );
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(
        r#"{"rules": [
        {"action": "CreateGroup", "fault": "drop_after", "times": 1},
        {"action": "GetGroup", "fault": "500_before", "times": 1}
    ]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    let fired = faults.fired();
    for f in ["drop_after CreateGroup", "500_before GetGroup"] {
        assert!(fired.contains(f), "{f} did not happen: {fired}");
    }
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        group_marked(&emu, "deployers", "faults").await,
        "the group has no ownership marker\n{}",
        apply.stderr
    );
    faults.set(r#"{"rules": []}"#);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
}

/// After a lost create answer, the read that asks whether the entity is this apply's
/// fails too (a 500, a dropped connection): it is retried like any other read, and the
/// apply goes on (it used to fail with EntityAlreadyExists, later phases never started).
#[tokio::test]
async fn failed_ownership_reads_after_lost_create_answers_are_retried() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", STACK);
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    // The first CreatePolicy and GetPolicy are the stack lock's.
    faults.set(
        r#"{"rules": [
        {"action": "CreatePolicy", "fault": "drop_after", "times": 2},
        {"action": "CreateRole", "fault": "drop_after", "times": 1},
        {"action": "CreateUser", "fault": "drop_after", "times": 1},
        {"action": "CreateGroup", "fault": "500_after", "times": 1},
        {"action": "GetPolicy", "fault": "500_before", "times": 2},
        {"action": "GetRole", "fault": "drop_before", "times": 1},
        {"action": "GetRole", "fault": "500_before", "times": 1},
        {"action": "GetUser", "fault": "drop_before", "times": 1},
        {"action": "GetGroup", "fault": "drop_before", "times": 1},
        {"action": "ListGroupPolicies", "fault": "500_before", "times": 1}
    ]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    let fired = faults.fired();
    for f in [
        "drop_after CreateRole",
        "drop_after CreateUser",
        "500_after CreateGroup",
        "drop_before GetRole",
        "500_before GetRole",
        "drop_before GetUser",
        "drop_before GetGroup",
    ] {
        assert!(fired.contains(f), "{f} did not happen: {fired}");
    }
    assert_eq!(
        apply.code, 0,
        "faults: {fired}\n{}\n{}",
        apply.stdout, apply.stderr
    );
    assert!(!lock_left(&emu).await, "the stack lock was left behind");
    assert!(group_marked(&emu, "deployers", "faults").await);
    faults.set(r#"{"rules": []}"#);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after one apply");
}

const POLICY: &str = r#"
[stack]
name = "versions"

[policy.invoke]
[[policy.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:${partition}:lambda:${region}:${account_id}:function:FUNCTION"
"#;

/// The policy's versions (id, default), oldest first, read without the proxy.
async fn versions(emu: &Emulator, arn: &str) -> Vec<(String, bool)> {
    let iam = emu.iam().await;
    let listed = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap();
    let mut v: Vec<(String, bool)> = listed
        .versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap_or_default().to_string(),
                v.is_default_version(),
            )
        })
        .collect();
    v.sort_by_key(|(id, _)| id.trim_start_matches('v').parse::<u32>().unwrap_or(0));
    v
}

/// A lost CreatePolicyVersion answer at IAM's five versions: the version was made, so
/// sending it again would fail with LimitExceeded (or, below five, leave an extra version).
/// The apply finds the newest version holding the document and counts it as done.
#[tokio::test]
async fn a_lost_create_policy_version_answer_makes_no_extra_version() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        &POLICY.replace("FUNCTION", "first"),
    );
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "first apply");
    let arn = "arn:aws:iam::000000000000:policy/invoke";
    // Four more versions, not the default: the policy is at IAM's five.
    let iam = emu.iam().await;
    for i in 0..4 {
        iam.create_policy_version()
            .policy_arn(arn)
            .policy_document(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:old{i}"}}]}}"#
            ))
            .set_as_default(false)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(versions(&emu, arn).await.len(), 5);
    std::fs::write(&plan, POLICY.replace("FUNCTION", "second")).unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(
        r#"{"rules": [{"action": "CreatePolicyVersion", "fault": "drop_after", "times": 1}]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    assert!(
        faults.fired().contains("drop_after CreatePolicyVersion"),
        "{}",
        faults.fired()
    );
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let after = versions(&emu, arn).await;
    // The oldest non-default version made room for the new one, and nothing more.
    assert_eq!(after.len(), 5, "{after:?}");
    assert!(
        after.last().unwrap().1,
        "the newest is not the default: {after:?}"
    );
    faults.set(r#"{"rules": []}"#);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
}

/// A lost AddRoleToInstanceProfile answer: sent again, IAM says the profile already holds
/// a role (LimitExceeded). It holds this role: the step succeeded.
#[tokio::test]
async fn a_lost_add_role_to_instance_profile_answer_is_success() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"profiles\"\n[role.box]\ninstance_profile = true\n[role.box.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    let p = plan.to_str().unwrap();
    let faults = Faults::start(&emu, dir.path());
    faults.set(
        r#"{"rules": [{"action": "AddRoleToInstanceProfile", "fault": "drop_after", "times": 1}]}"#,
    );
    let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
    assert!(
        faults
            .fired()
            .contains("drop_after AddRoleToInstanceProfile"),
        "{}",
        faults.fired()
    );
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    faults.set(r#"{"rules": []}"#);
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
}

/// Each call: 10% lose their connection (5% before IAM saw them, 5% after), 10% get an
/// HTTP 500 (5% before, 5% after the write), 30% are throttled. Rules fire in order, so
/// each rate is of what the rules before it let through.
const NOISE: &str = r#"{"seed": SEED, "rules": [
    {"fault": "drop_before", "rate": 0.05},
    {"fault": "drop_after", "rate": 0.05263},
    {"fault": "500_before", "rate": 0.05556},
    {"fault": "500_after", "rate": 0.05882},
    {"fault": "throttle", "rate": 0.375}
]}"#;

/// A stack of every kind (policies, roles with instance profiles and inline policies,
/// groups, users with groups and keys); `generation` changes every policy document.
fn every_kind(generation: u32) -> String {
    let mut text = String::from("[stack]\nname = \"noisy\"\n");
    for i in 0..3 {
        text += &format!(
            "[policy.p{i}]\n[[policy.p{i}.statement]]\naction = \"lambda:InvokeFunction\"\nresource = \"arn:${{partition}}:lambda:${{region}}:${{account_id}}:function:f{i}-{generation}\"\n\
             [role.r{i}]\ninstance_profile = true\nmanaged_policies = [\"p{i}\"]\n[role.r{i}.trust]\nservices = [\"ec2.amazonaws.com\"]\n\
             [role.r{i}.inline.logs]\ndocument = '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"logs:PutLogEvents\",\"Resource\":\"arn:aws:logs:*:*:log-group:g{generation}\"}}]}}'\n\
             [group.g{i}]\nmanaged_policies = [\"p{i}\"]\n\
             [user.u{i}]\ngroups = [\"g{i}\"]\n[user.u{i}.access_keys]\nsink = {{ type = \"json\", path = \"secrets/u{i}.json\" }}\n"
        );
    }
    text
}

/// One apply converges under 10% dropped connections, 10% HTTP 500s and 30% throttling on
/// every call: creating a stack of every kind, then changing every policy document. After
/// each, every user has one active key, its sink's, and the next plan (through the same
/// faults) is empty.
#[tokio::test]
async fn one_apply_converges_under_drops_500s_and_throttling() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::start(&emu, dir.path());
    for generation in 0..2 {
        let plan = write(dir.path(), "plan.toml", &every_kind(generation));
        let p = plan.to_str().unwrap();
        faults.set(&NOISE.replace("SEED", &(11 + generation).to_string()));
        let before = faults.fired().lines().count();
        let apply = faults.iamplan(&emu, &["apply", p, "--auto-approve"]);
        let fired = faults.fired();
        let injected = fired.lines().count() - before;
        assert!(injected >= 10, "too few faults to mean anything: {fired}");
        assert_eq!(
            apply.code, 0,
            "generation {generation}: faults: {fired}\n{}\n{}",
            apply.stdout, apply.stderr
        );
        for i in 0..3 {
            let (keys, held) = keys(
                &emu,
                &format!("u{i}"),
                &dir.path().join(format!("secrets/u{i}.json")),
            )
            .await;
            let active: Vec<&String> = keys.iter().filter(|k| k.1).map(|k| &k.0).collect();
            assert_eq!(active.len(), 1, "u{i}: {keys:?}");
            assert_eq!(Some(active[0].clone()), held, "u{i}: not the sink's key");
        }
        assert!(!lock_left(&emu).await, "the stack lock was left behind");
        faults
            .iamplan(&emu, &["plan", p, "--detailed-exitcode"])
            .expect(0, "plan after one apply, through the same faults");
    }
}
