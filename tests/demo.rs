//! The README's first command, `localstack/demo`, which CI runs from a clean clone.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The demo runs the binary cargo builds, wherever the target directory is: it used to
/// run target/debug/iamplan, which does not exist when CARGO_TARGET_DIR points elsewhere.
#[test]
fn the_demo_runs_the_binary_cargo_builds_wherever_the_target_dir_is() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_iamplan"));
    // This test's own target directory: with the default one, the demo must find it too.
    let target = bin.parent().and_then(|d| d.parent()).unwrap();
    let out = Command::new(common::repo().join("localstack/demo"))
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run localstack/demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{} plan plans/ably-lambda", bin.display())),
        "{stdout}"
    );
    assert!(stdout.contains("apply"), "{stdout}");
}
