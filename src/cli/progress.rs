//! How apply's progress is shown: a one-line counter redrawn on a terminal (stderr), and
//! each step logged (`-v`).

use crate::apply::{Observer, Report};
use crate::aws::StepError;
use crate::ops::Step;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The widest progress line, in characters.
const WIDTH: usize = 100;

pub struct TerminalProgress {
    total: AtomicUsize,
    done: AtomicUsize,
    terminal: bool,
}

impl TerminalProgress {
    pub fn new() -> Self {
        TerminalProgress {
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn enabled(&self) -> bool {
        self.terminal && self.total.load(Ordering::Relaxed) > 1
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for TerminalProgress {
    fn started(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn step_finished(&self, step: &Step, outcome: &Result<(), StepError>, elapsed: Duration) {
        match outcome {
            Ok(()) => tracing::info!("{} ({:.0} ms)", step.op, elapsed.as_secs_f64() * 1000.0),
            Err(e) => tracing::warn!("{} failed: {e}", step.op),
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.enabled() {
            let line = progress_line(n, self.total.load(Ordering::Relaxed), &step.op.to_string());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }

    fn finished(&self, _report: &Report) {
        if self.enabled() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `[n/total] what`, cut to `WIDTH` characters (never inside a character: names and
/// paths may be any Unicode).
fn progress_line(n: usize, total: usize, what: &str) -> String {
    format!("[{n}/{total}] {what}")
        .chars()
        .take(WIDTH)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_cuts_at_a_character_boundary() {
        // A multi-byte character straddling byte 100 used to panic (String::truncate).
        let what = format!("{}é{}", "a".repeat(93), "b".repeat(20));
        let line = progress_line(1, 2, &what);
        assert_eq!(line.chars().count(), WIDTH);
        assert!(line.starts_with("[1/2] aaa"));
        assert!(line.contains('é'));
    }
}
