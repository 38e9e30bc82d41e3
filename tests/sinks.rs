//! Hostile command sinks against MiniStack: one that hangs (time-out, and SIGTERM to
//! iamplan while it runs), one that prints its input on standard error, one that exits with
//! success without reading its input. Each must leave no key nobody holds, give back the
//! stack's lock, and keep the secret off iamplan's output.

mod common;

use common::{Emulator, Run, write};
use std::path::Path;

fn plan_text(sink: &str) -> String {
    format!(
        r#"
[stack]
name = "sinks"
[user.robot]
[user.robot.access_keys]
sink = {sink}
"#
    )
}

async fn keys(emu: &Emulator) -> Vec<String> {
    let out = emu
        .iam()
        .await
        .list_access_keys()
        .user_name("robot")
        .send()
        .await
        .unwrap();
    out.access_key_metadata()
        .iter()
        .map(|m| m.access_key_id().unwrap().to_string())
        .collect()
}

/// The lock is free: an apply with a sink that works goes through, and leaves one key.
async fn lock_is_free_and_apply_converges(emu: &Emulator, dir: &Path) {
    let good = dir.join("good.json");
    let plan = write(
        dir,
        "plan.toml",
        &plan_text(&format!(
            r#"{{ type = "json", path = "{}" }}"#,
            good.display()
        )),
    );
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"]).expect(
        0,
        "an apply after the failed delivery (is the lock still held?)",
    );
    emu.iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after the apply");
    assert_eq!(keys(emu).await.len(), 1);
}

fn command_sink(argv: &[&str], extra: &str) -> String {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "{{ type = \"command\", argv = [{}]{extra} }}",
        argv.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_command_times_out_its_key_is_deleted_and_the_lock_given_back() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(&command_sink(
            &["sh", "-c", "cat > /dev/null; sleep 600"],
            ", timeout_seconds = 1",
        )),
    );
    let out = emu
        .iamplan(&["apply", plan.to_str().unwrap(), "--auto-approve"])
        .expect(1, "apply with a command that hangs");
    assert!(
        out.stderr
            .contains("did not finish within 1 seconds and was killed"),
        "{}",
        out.stderr
    );
    assert!(keys(&emu).await.is_empty(), "the undelivered key was left");
    lock_is_free_and_apply_converges(&emu, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_hanging_command_ends_it_and_gives_back_the_lock() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let script = format!(
        "echo $$ > {}; cat > /dev/null; exec sleep 600",
        started.display()
    );
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(&command_sink(&["sh", "-c", &script], "")),
    );
    let mut child = emu
        .command(&["apply", plan.to_str().unwrap(), "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The command writes its pid once it runs (a condition, not a time).
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&started)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("apply ended before its sink ran: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = Run::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 130, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("apply was interrupted"),
        "{}",
        out.stderr
    );
    // The command (its own process group) is gone, not left hanging.
    assert_eq!(
        unsafe { libc::kill(pid, 0) },
        -1,
        "the sink command {pid} still runs"
    );
    assert!(keys(&emu).await.is_empty(), "the undelivered key was left");
    lock_is_free_and_apply_converges(&emu, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_prints_its_input_on_stderr_does_not_leak_the_secret() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.json");
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(&command_sink(
            &[
                "sh",
                "-c",
                &format!("tee {} >&2; echo refused >&2", store.display()),
            ],
            "",
        )),
    );
    let out = emu.iamplan_env(
        &["apply", plan.to_str().unwrap(), "--auto-approve"],
        &[("RUST_LOG", "trace")],
    );
    let out = out.expect(0, "apply with a command that echoes its input");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let secret = v["SecretAccessKey"].as_str().unwrap();
    assert!(!secret.is_empty());
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains(secret), "the secret is on iamplan's {name}");
    }
    // What the command said is still shown, cleaned.
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    assert!(out.stderr.contains("<redacted>"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_exits_without_reading_its_input_fails_the_delivery() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        &plan_text(&command_sink(&["true"], "")),
    );
    let out = emu
        .iamplan(&["apply", plan.to_str().unwrap(), "--auto-approve"])
        .expect(1, "apply with a command that reads nothing");
    assert!(
        out.stderr.contains("without reading its input"),
        "{}",
        out.stderr
    );
    assert!(keys(&emu).await.is_empty(), "the undelivered key was left");
    // Nothing was recorded as delivered: the next apply with a working sink converges.
    lock_is_free_and_apply_converges(&emu, dir.path()).await;
}
