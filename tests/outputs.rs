//! Outputs, references, the JSON plan, `show` and `list`, against the default emulator
//! (MiniStack with IAM enforcement on).

mod common;

use common::{Emulator, repo, write};

/// A copy of an example plan directory, so that nothing is written into the repository.
fn copy_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("plans").join(name)).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    dir
}

/// The Ably example's role ARN, as `iamplan output ... --raw` prints it from live IAM, is
/// the ARN a partner can assume: a smoke check assumes exactly that string.
#[test]
fn output_role_arn_is_the_role_a_partner_assumes() {
    let emu = Emulator::start("ministack");
    let plan = copy_example("ably-lambda");
    let p = plan.path().to_str().unwrap();

    // Before apply, the role does not exist: output says so and fails.
    let missing = emu
        .iamplan(&["output", p, "role_arn", "--raw"])
        .expect(1, "output before apply");
    assert!(
        missing
            .stderr
            .contains("role.ably-integration does not exist"),
        "{}",
        missing.stderr
    );

    let applied = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    assert!(applied.stdout.contains("Outputs:"), "{}", applied.stdout);
    assert!(
        applied
            .stdout
            .contains("role_arn = \"arn:aws:iam::000000000000:role/ably-integration\""),
        "{}",
        applied.stdout
    );

    let raw = emu
        .iamplan(&["output", p, "role_arn", "--raw"])
        .expect(0, "output --raw");
    assert_eq!(
        raw.stdout,
        "arn:aws:iam::000000000000:role/ably-integration"
    );
    let all = emu
        .iamplan(&["output", p, "--json"])
        .expect(0, "output --json");
    let json: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(json["external_id"]["value"], "a1b2c3.demo-app");
    assert_eq!(json["role_arn"]["value"], raw.stdout.as_str());

    // A plan of its own whose only check assumes that exact ARN from Ably's account.
    let check = tempfile::tempdir().unwrap();
    let file = write(
        check.path(),
        "check.toml",
        &format!(
            r#"
[stack]
name = "output-check"
[smoke.assume-the-output]
from_profile = "ably"
[[smoke.assume-the-output.assume]]
role = "{}"
external_id = "a1b2c3.demo-app"
[smoke.assume-the-output.expect]
result = "allow"
"#,
            raw.stdout
        ),
    );
    let smoke = emu
        .iamplan(&["smoke", file.to_str().unwrap(), "--json"])
        .expect(0, "smoke with the output's ARN");
    let results: serde_json::Value = serde_json::from_str(&smoke.stdout).unwrap();
    assert_eq!(results[0]["passed"], true, "{results}");
}

#[test]
fn list_shows_what_the_stack_owns_and_what_the_plan_dropped() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let two = r#"
[stack]
name = "owned"
[role.kept]
[role.kept.trust]
services = ["ec2.amazonaws.com"]
[role.dropped]
[role.dropped.trust]
services = ["ec2.amazonaws.com"]
"#;
    let plan = write(dir.path(), "plan.toml", two);
    let p = plan.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    write(
        dir.path(),
        "plan.toml",
        &two.replace(
            "[role.dropped]\n[role.dropped.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
            "",
        ),
    );
    let listed = emu.iamplan(&["list", p]).expect(0, "list");
    assert!(
        listed
            .stdout
            .contains("role  kept     arn:aws:iam::000000000000:role/kept\n"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains(
            "role  dropped  arn:aws:iam::000000000000:role/dropped  (not in the plan files: the next apply deletes it)"
        ),
        "{}",
        listed.stdout
    );
    let json = emu.iamplan(&["list", p, "--json"]).expect(0, "list --json");
    let owned: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(owned.as_array().unwrap().len(), 2);
}

#[test]
fn saved_plans_show_and_refuse_what_they_cannot_apply() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[stack]
name = "saved"
[role.app]
description = "first"
[role.app.trust]
services = ["ec2.amazonaws.com"]
[output.arn]
value = "${role.app.arn}"
"#;
    let plan = write(dir.path(), "plan.toml", text);
    let p = plan.to_str().unwrap();
    let saved = dir.path().join("plan.bin.json");
    let s = saved.to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    write(dir.path(), "plan.toml", &text.replace("first", "second"));
    emu.iamplan(&["plan", p, "--out", s])
        .expect(0, "plan --out");

    // show renders the saved plan, as text and as the JSON plan.
    let shown = emu.iamplan(&["show", s]).expect(0, "show");
    assert!(
        shown
            .stdout
            .contains("~ description = \"first\" -> \"second\""),
        "{}",
        shown.stdout
    );
    let json = emu.iamplan(&["show", s, "--json"]).expect(0, "show --json");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["format_version"], "1.1");
    assert_eq!(v["resource_changes"][0]["address"], "role.app");
    assert_eq!(v["resource_changes"][0]["change"]["actions"][0], "update");
    assert_eq!(
        v["resource_changes"][0]["change"]["before"]["description"],
        "first"
    );
    assert_eq!(
        v["resource_changes"][0]["change"]["after"]["description"],
        "second"
    );

    // The JSON plan is for reading; applying it says so.
    let json_file = write(dir.path(), "plan.json", &json.stdout);
    let refused = emu
        .iamplan(&["apply", json_file.to_str().unwrap()])
        .expect(1, "apply a JSON plan");
    assert!(
        refused.stderr.contains("is the JSON plan (`plan --json`)"),
        "{}",
        refused.stderr
    );

    // A change out of band: the refusal names the resource.
    write(dir.path(), "plan.toml", &text.replace("first", "third"));
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "out-of-band change");
    let stale = emu.iamplan(&["apply", s]).expect(1, "apply a stale plan");
    assert!(
        stale.stderr.contains("role.app (changed)"),
        "{}",
        stale.stderr
    );
    // A saved plan without changes says so (it used to print nothing at all).
    emu.iamplan(&["plan", p, "--out", s])
        .expect(0, "plan --out, nothing to change");
    let none = emu
        .iamplan(&["apply", s])
        .expect(0, "apply a plan without changes");
    assert!(
        none.stdout
            .contains("No changes. Live IAM matches the saved plan for stack \"saved\""),
        "{}",
        none.stdout
    );
}

/// `${instance_profile.NAME.arn}` is the instance profile's ARN, from live IAM too: it used
/// to read back the role's, so `output` printed the wrong ARN and every plan of
/// plans/cross-account showed the same change to its outputs.
#[test]
fn an_instance_profile_output_is_the_profile_and_plans_converge() {
    let emu = Emulator::start("ministack");
    let plan = copy_example("cross-account");
    let p = plan.path().to_str().unwrap();
    emu.iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    let raw = emu
        .iamplan(&["output", p, "deployer_instance_profile_arn", "--raw"])
        .expect(0, "output --raw");
    assert_eq!(
        raw.stdout,
        "arn:aws:iam::000000000000:instance-profile/deployer"
    );
    let again = emu
        .iamplan(&["plan", p, "--detailed-exitcode"])
        .expect(0, "plan after apply");
    assert!(
        !again.stdout.contains("Changes to Outputs"),
        "{}",
        again.stdout
    );
}

/// Every command that reads the account ends as it would have when its output is closed
/// (`iamplan plan DIR | head -1`); apply still applies.
#[test]
fn account_commands_end_quietly_when_their_output_is_closed() {
    let emu = Emulator::start("ministack");
    let plan = copy_example("ably-lambda");
    let p = plan.path().to_str().unwrap();
    let apply = emu.command(&["apply", p, "--auto-approve"]);
    let mut closed = apply;
    let out = closed
        .stdout(common::closed_stdout())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for args in [
        &["plan", p, "--detailed-exitcode"][..],
        &["plan", p, "--json"],
        &["list", p],
        &["output", p],
        &["output", p, "role_arn", "--raw"],
    ] {
        let read = common::same_with_closed_stdout(emu.command(args), &args.join(" "));
        assert!(!read.stdout.is_empty(), "{}", args.join(" "));
    }
}
