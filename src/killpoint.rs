//! Crash points for the tests: with `IAMPLAN_TEST_KILL_AT=NAME`, the process dies at once
//! when it reaches the point NAME, as under SIGKILL (no unwinding, no cleanup, no message),
//! so that a test can check what a crash at exactly that moment leaves behind and that one
//! more apply converges. Without the variable a point costs one environment lookup.

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
