//! A crash at each point of a key rotation (tests kill the process there with
//! `IAMPLAN_TEST_KILL_AT`, as SIGKILL would): afterwards a working key is in the sink, and
//! one more apply converges (the next plan is empty).

mod common;

use common::{Emulator, write};
use std::path::Path;

const DAY: i64 = 86_400;
/// 2030-01-01T00:00:00Z: simulated time, far from the real clock.
const T0: i64 = 1_893_456_000;

const PLAN: &str = r#"
[stack]
name = "kills"
[user.robot]
path = "/robots/"
[user.robot.inline.whoami]
[[user.robot.inline.whoami.statement]]
action = "sts:GetCallerIdentity"
resource = "*"
[user.robot.access_keys]
rotate_after_days = 90
deactivate_after_days = 7
delete_after_days = 7
in_use_hours = 24
sink = { type = "json", path = "robot.json" }
"#;

fn at(days: i64) -> String {
    jiff::Timestamp::from_second(T0 + days * DAY)
        .unwrap()
        .to_string()
}

/// The sink's key works: STS answers it as the robot.
async fn sink_key_works(emu: &Emulator, sink: &Path) -> bool {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sink).unwrap()).unwrap();
    let (id, secret) = (
        v["AccessKeyId"].as_str().unwrap(),
        v["SecretAccessKey"].as_str().unwrap(),
    );
    let sts = aws_sdk_sts::Client::new(&emu.sdk_config(id, secret).await);
    match sts.get_caller_identity().send().await {
        Ok(out) => out.arn().unwrap_or("").ends_with(":user/robots/robot"),
        Err(_) => false,
    }
}

/// What one crash test runs: the commands before the crash (each must succeed), the
/// command that is killed at `point`, and the one run after it, which must converge.
struct Case<'a> {
    point: &'a str,
    before: &'a [&'a [&'a str]],
    crashed: &'a [&'a str],
    after: &'a [&'a str],
    /// The sink held a working key before the crash (not so for the very first key).
    had_key: bool,
    /// The run after the crash must issue a new key (it is a rotation).
    rotates: bool,
    /// The key goes to a command (which writes it to store.json) instead of a file sink.
    command: bool,
}

fn sink_id(sink: &Path) -> Option<String> {
    let text = std::fs::read_to_string(sink).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["AccessKeyId"].as_str().map(str::to_string)
}

/// `PLAN` is substituted for the plan file's path in the commands.
async fn crash(case: Case<'_>) {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join(if case.command {
        "store.json"
    } else {
        "robot.json"
    });
    let text = if case.command {
        PLAN.replace(
            r#"sink = { type = "json", path = "robot.json" }"#,
            &format!(
                r#"sink = {{ type = "command", argv = ["sh", "-c", "cat > {}"] }}"#,
                sink.display()
            ),
        )
    } else {
        PLAN.to_string()
    };
    let plan = write(dir.path(), "plan.toml", &text);
    let p = plan.to_str().unwrap();
    let args = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .map(|a| {
                if *a == "PLAN" {
                    p.to_string()
                } else {
                    a.to_string()
                }
            })
            .collect()
    };
    let run = |cmd: &[&str], env: &[(&str, &str)]| {
        let a = args(cmd);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        emu.iamplan_env(&a, env)
    };
    let point = case.point;
    for cmd in case.before {
        let out = run(cmd, &[]);
        assert_eq!(
            out.code, 0,
            "{point}: {cmd:?}\n{}\n{}",
            out.stdout, out.stderr
        );
    }
    // IAM's key creation times have one-second steps: a key made in the same second as the
    // one before it cannot be told apart from it by time (see keys::plan_keys).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let crashed = run(case.crashed, &[("IAMPLAN_TEST_KILL_AT", point)]);
    assert_eq!(
        crashed.code, -1,
        "{point}: not killed\n{}\n{}",
        crashed.stdout, crashed.stderr
    );
    if case.had_key {
        assert!(
            sink_key_works(&emu, &sink).await,
            "{point}: no working key in the sink after the crash"
        );
    }
    let held = sink_id(&sink);
    if case.command {
        // Being recorded as "delivering" proves nothing: the command may never have run.
        let plan = run(&["plan", "PLAN"], &[]);
        assert!(
            !plan.stdout.contains("counts as delivered"),
            "{point}: an unconfirmed key counted as delivered\n{}",
            plan.stdout
        );
    }
    let again = run(case.after, &[]);
    assert_eq!(
        again.code, 0,
        "{point}: the apply after the crash\n{}\n{}",
        again.stdout, again.stderr
    );
    let mut check: Vec<&str> = vec!["plan", "PLAN", "--detailed-exitcode"];
    check.extend(case.after.iter().skip_while(|a| **a != "--now"));
    let plan = run(&check, &[]);
    assert_eq!(
        plan.code, 0,
        "{point}: one apply after the crash did not converge\n{}\n{}",
        plan.stdout, plan.stderr
    );
    assert!(
        sink_key_works(&emu, &sink).await,
        "{point}: no working key in the sink at the end"
    );
    if case.rotates {
        assert_ne!(
            sink_id(&sink),
            held,
            "{point}: the run after the crash did not rotate\n{}",
            again.stdout
        );
    }
    let iam = emu.iam().await;
    let keys = iam
        .list_access_keys()
        .user_name("robot")
        .send()
        .await
        .unwrap();
    let active = keys
        .access_key_metadata()
        .iter()
        .filter(|k| k.status() == Some(&aws_sdk_iam::types::StatusType::Active))
        .count();
    assert!(active <= 2, "{point}: {active} active keys");
    if case.command && point == "access-key-created" {
        // The command never ran: the key it held before the crash is not taken back.
        let held = held.expect("the store held a key before the crash");
        assert!(
            keys.access_key_metadata()
                .iter()
                .any(|k| k.access_key_id() == Some(held.as_str())
                    && k.status() == Some(&aws_sdk_iam::types::StatusType::Active)),
            "{point}: the key the command held ({held}) is no longer active\n{}",
            again.stdout
        );
    }
}

const APPLY: &[&str] = &["apply", "PLAN", "--auto-approve"];
const ROTATE: &[&str] = &["rotate", "PLAN", "--user", "robot", "--auto-approve"];

// Issue and rotation in real time (`rotate`): a new key's age is then its real age.

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_the_first_key_was_created() {
    crash(Case {
        point: "access-key-created",
        before: &[],
        crashed: APPLY,
        after: APPLY,
        had_key: false,
        rotates: false,
        command: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_a_new_key_was_created() {
    crash(Case {
        point: "access-key-created",
        before: &[APPLY],
        crashed: ROTATE,
        after: APPLY,
        had_key: true,
        rotates: false,
        command: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_a_new_key_was_created_with_the_rotation_still_due() {
    // The next run is a rotation again: the crash's key must not block the new one.
    crash(Case {
        point: "access-key-created",
        before: &[APPLY],
        crashed: ROTATE,
        after: ROTATE,
        had_key: true,
        rotates: true,
        command: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_a_new_key_was_delivered() {
    crash(Case {
        point: "access-key-delivered",
        before: &[APPLY],
        crashed: ROTATE,
        after: APPLY,
        had_key: true,
        rotates: false,
        command: false,
    })
    .await;
}

// Deactivation and deletion come days later: simulated with --now.

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_the_old_key_was_deactivated() {
    let (d0, d90, d97) = (at(0), at(90), at(97));
    let before: &[&[&str]] = &[
        &["apply", "PLAN", "--auto-approve", "--now", &d0],
        &["apply", "PLAN", "--auto-approve", "--now", &d90],
    ];
    let day97: &[&str] = &["apply", "PLAN", "--auto-approve", "--now", &d97];
    crash(Case {
        point: "access-key-deactivated",
        before,
        crashed: day97,
        after: day97,
        had_key: true,
        rotates: false,
        command: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_the_old_key_was_deleted() {
    let (d0, d90, d97, d104) = (at(0), at(90), at(97), at(104));
    let before: &[&[&str]] = &[
        &["apply", "PLAN", "--auto-approve", "--now", &d0],
        &["apply", "PLAN", "--auto-approve", "--now", &d90],
        &["apply", "PLAN", "--auto-approve", "--now", &d97],
    ];
    let day104: &[&str] = &["apply", "PLAN", "--auto-approve", "--now", &d104];
    crash(Case {
        point: "access-key-deleted",
        before,
        crashed: day104,
        after: day104,
        had_key: true,
        rotates: false,
        command: false,
    })
    .await;
}

/// A command cannot be asked what it received: a crash after it got the key and before
/// that was recorded must not make the next run deactivate or delete the key it holds.
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_a_new_key_was_handed_to_a_command() {
    crash(Case {
        point: "access-key-delivered",
        before: &[APPLY],
        crashed: ROTATE,
        after: APPLY,
        had_key: true,
        rotates: false,
        command: true,
    })
    .await;
}

/// A crash after the key was made and before the command ran (the run had recorded the
/// key it was making): the command still holds the old key. The next run must not count
/// the new key as delivered nor retire the old one for it; it hands the command a key whose
/// delivery it sees succeed.
#[tokio::test(flavor = "multi_thread")]
async fn crash_before_a_new_key_reached_a_command() {
    crash(Case {
        point: "access-key-created",
        before: &[APPLY],
        crashed: ROTATE,
        after: APPLY,
        had_key: true,
        rotates: true,
        command: true,
    })
    .await;
}

/// A crash just after a rotation's key was made, with no pause before it: IAM's creation
/// times have one-second steps, so the new key often shares the sink key's second. The run
/// that takes the lock over must still know it for the dead run's leftover: one apply
/// leaves exactly the sink's key, and the plan is empty.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_the_same_second_as_the_sink_key_needs_one_apply() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let iam = emu.iam().await;
    let mut same_second = 0;
    const TRIALS: usize = 4;
    for n in 0..TRIALS {
        let text = PLAN
            .replace("name = \"kills\"", &format!("name = \"same-{n}\""))
            .replace("[user.robot", &format!("[user.robot{n}"))
            .replace("robot.json", &format!("robot{n}.json"));
        let plan = write(dir.path(), &format!("p{n}.toml"), &text);
        let p = plan.to_str().unwrap();
        emu.iamplan(&["apply", p, "--auto-approve"])
            .expect(0, "first key");
        let killed = emu.iamplan_env(
            &[
                "rotate",
                p,
                "--user",
                &format!("robot{n}"),
                "--auto-approve",
            ],
            &[("IAMPLAN_TEST_KILL_AT", "access-key-created")],
        );
        assert_eq!(killed.code, -1, "trial {n}: not killed\n{}", killed.stderr);
        let user = format!("robot{n}");
        let listed = iam
            .list_access_keys()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        let created: Vec<i64> = listed
            .access_key_metadata()
            .iter()
            .map(|k| k.create_date().unwrap().secs())
            .collect();
        if created.len() == 2 && created[0] == created[1] {
            same_second += 1;
        }
        emu.iamplan(&["apply", p, "--auto-approve"])
            .expect(0, &format!("trial {n}: the apply after the crash"));
        emu.iamplan(&["plan", p, "--detailed-exitcode"])
            .expect(0, &format!("trial {n}: one apply did not converge"));
        let sink = sink_id(&dir.path().join(format!("robot{n}.json"))).unwrap();
        let left: Vec<String> = iam
            .list_access_keys()
            .user_name(&user)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| k.access_key_id().unwrap().to_string())
            .collect();
        assert_eq!(left, vec![sink], "trial {n}: keys left besides the sink's");
    }
    eprintln!("{same_second} of {TRIALS} trials made the new key in the sink key's second");
}

/// Every kill point the code has is exercised above.
#[test]
fn every_kill_point_has_a_test() {
    let source = std::fs::read_to_string(file!()).unwrap();
    for point in iamplan::killpoint::POINTS {
        assert!(
            source.contains(&format!("point: \"{point}\"")),
            "no crash test for {point}"
        );
    }
}

/// A crash after each step of a whole stack's creation (policies, roles with trust, inline
/// policies and attachments, an instance profile, a group, a user in it with a key): one
/// more apply converges every time.
#[tokio::test(flavor = "multi_thread")]
async fn crash_after_each_step_of_an_apply() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let stack = |n: usize| {
        format!(
            r#"
[stack]
name = "steps-{n}"
[policy.p{n}]
[[policy.p{n}.statement]]
action = "lambda:InvokeFunction"
resource = "*"
[role.r{n}]
managed_policies = ["p{n}"]
instance_profile = true
[role.r{n}.trust]
services = ["ec2.amazonaws.com"]
[role.r{n}.inline.logs]
document = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}}]}}'
[group.g{n}]
managed_policies = ["p{n}"]
[user.u{n}]
groups = ["g{n}"]
[user.u{n}.access_keys]
sink = {{ type = "json", path = "u{n}.json" }}
"#
        )
    };
    // How many steps the stack takes, from a plan without a crash.
    let probe = write(dir.path(), "probe.toml", &stack(0));
    let out = emu
        .iamplan(&["apply", probe.to_str().unwrap(), "--auto-approve"])
        .expect(0, "probe");
    let steps: usize = out
        .stdout
        .split(" API operations)")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step count in\n{}", out.stdout));
    assert!(steps >= 8, "{steps} steps\n{}", out.stdout);
    for n in 1..steps {
        let plan = write(dir.path(), &format!("s{n}.toml"), &stack(n));
        let p = plan.to_str().unwrap();
        let killed = emu.iamplan_env(
            &["apply", p, "--auto-approve"],
            &[("IAMPLAN_TEST_KILL_AT", &format!("after-steps:{n}"))],
        );
        assert_eq!(
            killed.code, -1,
            "after {n} steps: not killed\n{}\n{}",
            killed.stdout, killed.stderr
        );
        let again = emu.iamplan(&["apply", p, "--auto-approve"]);
        assert_eq!(
            again.code, 0,
            "after {n} steps: the next apply\n{}\n{}",
            again.stdout, again.stderr
        );
        emu.iamplan(&["plan", p, "--detailed-exitcode"]).expect(
            0,
            &format!("after a crash after {n} steps: plan after one more apply"),
        );
    }
}
