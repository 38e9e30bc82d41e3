//! Crash points for the tests: with `IAMPLAN_TEST_KILL_AT=NAME`, the process dies at once
//! when it reaches the point NAME, as under SIGKILL (no unwinding, no cleanup, no message),
//! so that a test can check what a crash at exactly that moment leaves behind and that one
//! more apply converges. `IAMPLAN_TEST_KILL_AT=after-steps:N` dies once N apply steps have
//! finished. Without the variable a point costs one environment lookup.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The named points, in the order a rotation passes them.
pub const POINTS: [&str; 4] = [
    "access-key-created",
    "access-key-delivered",
    "access-key-deactivated",
    "access-key-deleted",
];

pub fn hit(name: &str) {
    debug_assert!(POINTS.contains(&name), "unknown kill point {name}");
    if std::env::var_os("IAMPLAN_TEST_KILL_AT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// Counts a finished apply step; dies after the N-th with `IAMPLAN_TEST_KILL_AT=after-steps:N`.
pub fn step_finished() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    let done = DONE.fetch_add(1, Ordering::SeqCst) + 1;
    let Some(v) = std::env::var_os("IAMPLAN_TEST_KILL_AT") else {
        return;
    };
    let n = v
        .to_str()
        .and_then(|v| v.strip_prefix("after-steps:"))
        .and_then(|n| n.parse::<usize>().ok());
    if n == Some(done) {
        std::process::abort();
    }
}
