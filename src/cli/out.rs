//! Standard output for every command. A reader that goes away (`iamplan explain ... |
//! head -1`) ends the output, not the command: `println!` panics on the closed pipe, and
//! restoring SIGPIPE's default action instead would kill an apply between two writes to
//! IAM (and the SDK's own socket writes would raise it too).

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output failed: the rest of the output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to standard output; after the first failure, nothing more is written, and the
/// command carries on to its usual exit code.
pub fn write(args: fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        closed(e);
    }
}

/// Flushes standard output (a prompt without a newline), with the same rule as `write`.
pub fn flush() {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().flush() {
        closed(e);
    }
}

fn closed(e: std::io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    // A closed pipe is how a reader says it has read enough; anything else (a full disk)
    // the user should hear about, once.
    if e.kind() != ErrorKind::BrokenPipe {
        eprintln!("warning: standard output cannot be written ({e}); the rest of it is dropped");
    }
}
