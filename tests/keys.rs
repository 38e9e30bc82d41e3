//! Access keys against MiniStack with IAM enforcement on: a full rotation cycle driven by
//! --now, sink failure, the two-key limit, and secrets kept out of every output.

mod common;

use common::{Emulator, Run, write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DAY: i64 = 86_400;
/// 2030-01-01T00:00:00Z: simulated time, far from the real clock.
const T0: i64 = 1_893_456_000;

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

fn plan_text(sink: &str) -> String {
    format!(
        r#"
[stack]
name = "keys"
[user.robot]
path = "/robots/"
[user.robot.inline.whoami]
[[user.robot.inline.whoami.statement]]
action = "sts:GetCallerIdentity"
resource = "*"
[user.robot.access_keys]
count = 1
rotate_after_days = 90
deactivate_after_days = 7
delete_after_days = 7
in_use_hours = 24
sink = {sink}
"#
    )
}

fn sink_key(path: &Path) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (
        v["AccessKeyId"].as_str().unwrap().to_string(),
        v["SecretAccessKey"].as_str().unwrap().to_string(),
    )
}

async fn authenticates(emu: &Emulator, id: &str, secret: &str) -> bool {
    let sts = aws_sdk_sts::Client::new(&emu.sdk_config(id, secret).await);
    match sts.get_caller_identity().send().await {
        Ok(out) => out.arn().unwrap_or("").ends_with(":user/robots/robot"),
        Err(_) => false,
    }
}

async fn key_ids(emu: &Emulator) -> Vec<(String, bool)> {
    let iam = emu.iam().await;
    let out = iam
        .list_access_keys()
        .user_name("robot")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<(String, bool)> = out
        .access_key_metadata()
        .iter()
        .map(|m| {
            (
                m.access_key_id().unwrap().to_string(),
                m.status().map(|s| s.as_str()) == Some("Active"),
            )
        })
        .collect();
    keys.sort();
    keys
}

struct Log(Vec<Run>);

impl Log {
    fn run(&mut self, emu: &Emulator, args: &[&str], code: i32, what: &str) -> String {
        let run = emu
            .iamplan_env(args, &[("RUST_LOG", "trace")])
            .expect(code, what);
        let out = run.stdout.clone();
        self.0.push(run);
        out
    }
    /// No output of any command, at trace level, contains a secret.
    fn assert_no_secret(&self, secrets: &[String]) {
        for run in &self.0 {
            for s in secrets {
                assert!(
                    !run.stdout.contains(s.as_str()) && !run.stderr.contains(s.as_str()),
                    "a secret access key was printed"
                );
            }
        }
    }
}

/// An emulator and a plan whose robot user's key goes to `robot.json` beside the plan.
fn robot_with_json_sink() -> (Emulator, tempfile::TempDir, std::path::PathBuf) {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(r#"{ type = "json", path = "robot.json" }"#),
    );
    (emu, dir, plan)
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_cycle_with_now() {
    let (emu, dir, plan) = robot_with_json_sink();
    let sink = dir.path().join("robot.json");
    let p = plan.to_str().unwrap();
    let mut log = Log(vec![]);
    let mut secrets = Vec::new();
    let at = |days: i64| rfc3339(T0 + days * DAY);

    // Day 0: the user and its first key; the secret is in the sink, mode 0600.
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &at(0)],
        0,
        "issue",
    );
    let (a, a_secret) = sink_key(&sink);
    secrets.push(a_secret.clone());
    assert_eq!(
        std::fs::metadata(&sink).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        authenticates(&emu, &a, &a_secret).await,
        "the first key works"
    );
    let quiet = log.run(
        &emu,
        &["plan", p, "--detailed-exitcode", "--now", &at(89)],
        0,
        "nothing due at day 89",
    );
    // A no-change plan still shows each key and when it rotates.
    assert!(
        quiet.contains("Access keys (nothing to do now):"),
        "{quiet}"
    );
    assert!(
        quiet.contains(&format!("access key {a}: Active, 89 days old")),
        "{quiet}"
    );
    assert!(quiet.contains("rotates on 2030-04-01"), "{quiet}");

    // Day 90: rotation. The new key is in the sink; the old one still works (jobs that
    // read keys at start keep running).
    let out = log.run(&emu, &["plan", p, "--now", &at(90)], 0, "plan rotation");
    assert!(
        out.contains(&format!("access key {a}: Active, 90 days old")),
        "{out}"
    );
    assert!(out.contains("rotate now (older than 90 days)"), "{out}");
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &at(90)],
        0,
        "rotate",
    );
    let (b, b_secret) = sink_key(&sink);
    secrets.push(b_secret.clone());
    assert_ne!(a, b);
    // The JSON plan and a saved plan of the next step hold no secret either (checked with
    // every other output below).
    let saved = dir.path().join("next.plan");
    let json = log.run(
        &emu,
        &[
            "plan",
            p,
            "--now",
            &at(97),
            "--json",
            "--out",
            saved.to_str().unwrap(),
        ],
        0,
        "JSON plan of the deactivation",
    );
    assert!(json.contains("\"kind\": \"access_key\""), "{json}");
    let saved_text = std::fs::read_to_string(&saved).unwrap();
    for s in &secrets {
        assert!(
            !saved_text.contains(s.as_str()),
            "a secret in the saved plan"
        );
    }
    assert!(
        authenticates(&emu, &b, &b_secret).await,
        "the new key works"
    );
    assert!(
        authenticates(&emu, &a, &a_secret).await,
        "the previous key still works"
    );
    log.run(
        &emu,
        &["plan", p, "--detailed-exitcode", "--now", &at(96)],
        0,
        "nothing due at day 96",
    );

    // Day 97: the previous key is deactivated and stops working.
    let out = log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &at(97)],
        0,
        "deactivate",
    );
    assert!(
        out.contains("deactivate now (its successor is old enough)"),
        "{out}"
    );
    assert!(
        !authenticates(&emu, &a, &a_secret).await,
        "a deactivated key must not authenticate"
    );
    assert!(authenticates(&emu, &b, &b_secret).await);
    assert_eq!(
        key_ids(&emu).await,
        sorted(vec![(a.clone(), false), (b.clone(), true)])
    );

    // Day 104: deleted, seven days after deactivation.
    log.run(
        &emu,
        &["plan", p, "--detailed-exitcode", "--now", &at(103)],
        0,
        "nothing due at day 103",
    );
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &at(104)],
        0,
        "delete",
    );
    assert_eq!(key_ids(&emu).await, vec![(b.clone(), true)]);
    assert!(authenticates(&emu, &b, &b_secret).await);
    log.run(
        &emu,
        &["plan", p, "--detailed-exitcode", "--now", &at(105)],
        0,
        "converged",
    );
    log.assert_no_secret(&secrets);
}

fn sorted(mut v: Vec<(String, bool)>) -> Vec<(String, bool)> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_at_two_keys_rotates_without_limit_errors() {
    let (emu, dir, plan) = robot_with_json_sink();
    let sink = dir.path().join("robot.json");
    let p = plan.to_str().unwrap();
    let mut log = Log(vec![]);
    let day = |d: i64| rfc3339(T0 + d * DAY);
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &day(0)],
        0,
        "issue",
    );
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &day(90)],
        0,
        "rotate",
    );
    log.run(
        &emu,
        &["apply", p, "--auto-approve", "--now", &day(97)],
        0,
        "deactivate",
    );
    let (b, _) = sink_key(&sink);
    assert_eq!(
        key_ids(&emu).await.len(),
        2,
        "one inactive and one active key"
    );

    // `rotate` now: the inactive key is deleted first to make room, then a new key issued.
    let out = log.run(
        &emu,
        &[
            "rotate",
            p,
            "--user",
            "robot",
            "--auto-approve",
            "--now",
            &day(98),
        ],
        0,
        "rotate at two keys",
    );
    assert!(
        out.contains("delete now, to make room for the new key"),
        "{out}"
    );
    let (c, c_secret) = sink_key(&sink);
    assert_ne!(b, c);
    assert_eq!(
        key_ids(&emu).await,
        sorted(vec![(b.clone(), true), (c.clone(), true)])
    );
    assert!(authenticates(&emu, &c, &c_secret).await);
    // (The SDK's trace output lists "LimitExceeded" among its retryable codes: look for
    // the error itself.)
    for run in &log.0 {
        assert!(
            !run.stderr.contains("AccessKeysPerUser") && !run.stderr.contains("LimitExceeded:"),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_sink_leaves_no_new_key_and_the_old_key_active() {
    let (emu, dir, plan) = robot_with_json_sink();
    let p = plan.to_str().unwrap();
    let mut log = Log(vec![]);
    log.run(&emu, &["apply", p, "--auto-approve"], 0, "issue");
    let (a, a_secret) = sink_key(&dir.path().join("robot.json"));

    // The sink moves somewhere unwritable (even for root): a new key is due, but its
    // secret cannot be handed over.
    write(
        dir.path(),
        "plan.toml",
        &plan_text(r#"{ type = "json", path = "/proc/self/robot.json" }"#),
    );
    let out = log.run(&emu, &["plan", p], 0, "plan with a new sink");
    assert!(out.contains("the sink holds no key of this user"), "{out}");
    let run = emu
        .iamplan_env(&["apply", p, "--auto-approve"], &[("RUST_LOG", "trace")])
        .expect(1, "apply with a failing sink");
    // The sink is tried before anything is written (a scratch file where the key would go),
    // so the apply stops before it makes a key at all.
    assert!(
        run.stderr.contains("cannot take a key") && run.stderr.contains("nothing was applied"),
        "{}",
        run.stderr
    );
    log.0.push(run);
    assert_eq!(
        key_ids(&emu).await,
        vec![(a.clone(), true)],
        "no new key left behind; the old key still active"
    );
    assert!(authenticates(&emu, &a, &a_secret).await);
    log.assert_no_secret(&[a_secret]);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_sink_keeps_other_profiles_and_colon_sink_has_ablys_form() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let creds = write(
        dir.path(),
        "credentials",
        "[default]\naws_access_key_id = KEEP\naws_secret_access_key = ME\n",
    );
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(r#"{ type = "credentials", path = "credentials", profile = "robot" }"#),
    );
    emu.iamplan(&["apply", plan.to_str().unwrap(), "--auto-approve"])
        .expect(0, "apply with a credentials sink");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(
        text.starts_with("[default]\naws_access_key_id = KEEP\naws_secret_access_key = ME\n"),
        "{text}"
    );
    assert!(text.contains("[robot]\naws_access_key_id = AKIA"), "{text}");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    emu.iamplan(&["plan", plan.to_str().unwrap(), "--detailed-exitcode"])
        .expect(0, "the credentials sink is read back");

    let colon = dir.path().join("ably.key");
    write(
        dir.path(),
        "plan.toml",
        &plan_text(r#"{ type = "colon", path = "ably.key" }"#)
            .replace("rotate_after_days = 90\n", ""),
    );
    emu.iamplan(&["apply", plan.to_str().unwrap(), "--auto-approve"])
        .expect(0, "apply with a colon sink");
    let text = std::fs::read_to_string(&colon).unwrap();
    let (id, secret) = text.trim().split_once(':').unwrap();
    assert!(id.starts_with("AKIA") && secret.len() >= 20, "{id}");
    assert!(authenticates(&emu, id, secret).await);
}
