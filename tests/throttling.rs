//! IAM's throttling met for real: through the real-AWS proxy (`tools/realaws/proxy.py`) with
//! small per-API token buckets, an apply whose calls far outrun the buckets still succeeds
//! in one run (each API's limit backs off; throttled calls are retried), and converges.

mod common;

use common::{Emulator, repo, start_script, write};

fn plan_text() -> String {
    let mut t = String::from("[stack]\nname = \"throttled\"\n");
    for r in 0..16 {
        t.push_str(&format!(
            "[role.t{r}]\n[role.t{r}.trust]\nservices = [\"lambda.amazonaws.com\"]\n[role.t{r}.inline.own]\n[[role.t{r}.inline.own.statement]]\naction = \"sqs:SendMessage\"\nresource = \"*\"\n"
        ));
    }
    t
}

fn throttled(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("throttled: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no throttled line in:\n{stderr}"))
}

#[test]
fn an_apply_far_faster_than_the_buckets_succeeds_in_one_run() {
    let emu = Emulator::start("ministack");
    // Buckets a tenth of the modelled size: 2 calls at once, 1.5 a second per write API.
    let (_proxy, port) = start_script(
        &repo().join("tools/realaws/proxy.py"),
        &[
            &emu.endpoint(),
            "--latency-ms",
            "5",
            "--jitter-ms",
            "1",
            "--bucket-scale",
            "0.1",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.toml", &plan_text());
    let plan = plan.to_str().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let via_proxy = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let applied = emu
        .iamplan_env(&["apply", plan, "--auto-approve", "--stats"], &via_proxy)
        .expect(0, "apply through the throttling proxy");
    assert!(
        throttled(&applied.stderr) > 0,
        "the buckets were meant to throttle:\n{}",
        applied.stderr
    );
    emu.iamplan_env(&["plan", plan, "--detailed-exitcode"], &via_proxy)
        .expect(0, "the next plan is clean");
}
