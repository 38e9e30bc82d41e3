//! Progress lines in CI, and Ctrl-C during apply: stop starting steps, finish those in
//! flight, say what was done, exit 130; the next apply converges and every user keeps a
//! working key in its sink. Against the default emulator (MiniStack, IAM enforcement on).

mod common;

use common::{Emulator, write};
use std::process::Stdio;
use std::time::Duration;

const USERS: usize = 6;

/// Many roles (so that apply takes a while), groups with members, users with keys.
fn big_plan(roles: usize) -> String {
    let mut p = String::from("[stack]\nname = \"int\"\n");
    for i in 0..roles {
        p.push_str(&format!(
            "[role.r{i}]\n[role.r{i}.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.r{i}.inline.p]\n[[role.r{i}.inline.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\n"
        ));
    }
    for g in 0..3 {
        p.push_str(&format!("[group.g{g}]\n"));
    }
    for u in 0..USERS {
        p.push_str(&format!(
            "[user.u{u}]\ngroups = [\"g{}\"]\n[user.u{u}.inline.whoami]\n[[user.u{u}.inline.whoami.statement]]\naction = \"sts:GetCallerIdentity\"\nresource = \"*\"\n[user.u{u}.access_keys]\nsink = {{ type = \"json\", path = \"secrets/u{u}.json\" }}\n",
            u % 3
        ));
    }
    p
}

/// Runs apply (with `-v`, which logs each write as it ends) and sends SIGINT `after` its
/// first write: timed from the start of the run, the signal could land before any step on
/// a slow machine, a different path. Returns the exit code and stderr.
fn interrupted_apply(emu: &Emulator, args: &[&str], after: Duration) -> (i32, String) {
    use std::io::BufRead;
    let mut child = emu
        .command(args)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (started, steps) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // A write's log line: " INFO CreateRole role r0 (10 ms)".
            if line.trim_end().ends_with(" ms)") {
                let _ = started.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // No write within a minute (or the run ended first): signal anyway.
    let _ = steps.recv_timeout(Duration::from_secs(60));
    std::thread::sleep(after);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

async fn keys_work(emu: &Emulator, dir: &std::path::Path) {
    for u in 0..USERS {
        let path = dir.join(format!("secrets/u{u}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("user u{u} has no key in its sink ({e})"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let conf = emu
            .sdk_config(
                v["AccessKeyId"].as_str().unwrap(),
                v["SecretAccessKey"].as_str().unwrap(),
            )
            .await;
        aws_sdk_sts::Client::new(&conf)
            .get_caller_identity()
            .send()
            .await
            .unwrap_or_else(|e| panic!("user u{u}'s key in its sink does not work: {e:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_applies_converge_and_keep_keys_working() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", &big_plan(150));
    let p = plan.to_str().unwrap();
    let mut interrupted = 0;
    for (trial, ms) in [20u64, 200, 500, 800].into_iter().enumerate() {
        // Interrupt the creation, then converge.
        write(dir.path(), "plan.toml", &big_plan(150));
        let (code, stderr) = interrupted_apply(
            &emu,
            &["apply", p, "--auto-approve"],
            Duration::from_millis(ms),
        );
        assert!(
            matches!(code, 0 | 130),
            "trial {trial}: exit {code}\n{stderr}"
        );
        if code == 130 {
            interrupted += 1;
            assert!(stderr.contains("Apply interrupted."), "{stderr}");
            assert!(stderr.contains("not started. Run apply again"), "{stderr}");
        }
        emu.iamplan(&["apply", p, "--auto-approve"])
            .expect(0, &format!("trial {trial}: apply after the interruption"));
        emu.iamplan(&["plan", p, "--detailed-exitcode"])
            .expect(0, &format!("trial {trial}: converged"));
        keys_work(&emu, dir.path()).await;

        // Interrupt the deletion of everything, then converge.
        write(dir.path(), "plan.toml", "[stack]\nname = \"int\"\n");
        let (code, stderr) = interrupted_apply(
            &emu,
            &["apply", p, "--auto-approve", "--allow-delete-all"],
            Duration::from_millis(ms),
        );
        assert!(
            matches!(code, 0 | 130),
            "trial {trial}: exit {code}\n{stderr}"
        );
        interrupted += usize::from(code == 130);
        // What is left is still the stack's own: no conflict, no adoption needed.
        let rest = emu
            .iamplan(&["plan", p])
            .expect(0, "plan after the interruption");
        assert!(!rest.stdout.contains("Conflicts"), "{}", rest.stdout);
        emu.iamplan(&["apply", p, "--auto-approve", "--allow-delete-all"])
            .expect(0, &format!("trial {trial}: delete after the interruption"));
        emu.iamplan(&["plan", p, "--detailed-exitcode"])
            .expect(0, &format!("trial {trial}: all deleted"));
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} of 8 applies were interrupted mid-way: the test did not test much"
    );
}

/// Without a terminal (CI), apply prints one line per resource as it is finished.
#[test]
fn ci_output_has_a_line_per_finished_resource() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"lines\"\n[role.app]\n[role.app.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.app.inline.p]\n[[role.app.inline.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\n[group.team]\n",
    );
    let p = plan.to_str().unwrap();
    let out = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    assert!(
        out.stderr.contains("role.app: Creation complete after ")
            && out
                .stderr
                .contains("[id=arn:aws:iam::000000000000:role/app]"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("group.team: Creation complete after "),
        "{}",
        out.stderr
    );
    write(dir.path(), "plan.toml", "[stack]\nname = \"lines\"\n");
    let gone = emu
        .iamplan(&["apply", p, "--auto-approve", "--allow-delete-all"])
        .expect(0, "delete");
    assert!(
        gone.stderr
            .contains("role.app: Destruction complete after "),
        "{}",
        gone.stderr
    );
}
