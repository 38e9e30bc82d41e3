//! Runs a plan's steps: phase by phase, steps of a phase concurrently (bounded), stopping
//! before the next phase if anything failed so that nothing runs on a broken premise.

use crate::aws::Account;
use crate::ops::Step;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The default number of concurrent IAM writes: low enough that a real account's
/// per-API token buckets do not throttle, high enough to hide latency.
pub const DEFAULT_PARALLELISM: usize = 4;

#[derive(Debug, Default)]
pub struct Report {
    pub done: usize,
    pub failed: Vec<(Step, String)>,
    /// Steps not started because an earlier phase failed.
    pub skipped: usize,
}

pub async fn apply(
    steps: &[Step],
    accounts: &BTreeMap<String, Account>,
    parallelism: usize,
) -> Report {
    let total = steps.len();
    let progress = Progress::new(total);
    let mut report = Report::default();
    let mut i = 0;
    while i < steps.len() {
        let phase = steps[i].phase;
        let end = steps[i..]
            .iter()
            .position(|s| s.phase != phase)
            .map_or(steps.len(), |n| i + n);
        let batch = &steps[i..end];
        let results: Vec<(usize, Result<(), String>)> =
            futures::stream::iter(batch.iter().enumerate())
                .map(|(j, step)| {
                    let progress = &progress;
                    async move {
                        let account = &accounts[&step.account];
                        let started = Instant::now();
                        let r = account.run(&step.op).await;
                        match &r {
                            Ok(()) => tracing::info!(
                                "{} ({:.0} ms)",
                                step.op,
                                started.elapsed().as_secs_f64() * 1000.0
                            ),
                            Err(e) => tracing::warn!("{} failed: {e}", step.op),
                        }
                        progress.tick(&step.op.to_string());
                        (j, r)
                    }
                })
                .buffer_unordered(parallelism.max(1))
                .collect()
                .await;
        for (j, r) in results {
            match r {
                Ok(()) => report.done += 1,
                Err(e) => report.failed.push((batch[j].clone(), e)),
            }
        }
        i = end;
        if !report.failed.is_empty() {
            report.skipped = steps.len() - end;
            break;
        }
    }
    progress.finish();
    report
}

/// A one-line progress display on a terminal (stderr); silent otherwise.
struct Progress {
    total: usize,
    done: AtomicUsize,
    enabled: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: AtomicUsize::new(0),
            enabled: std::io::stderr().is_terminal() && total > 1,
        }
    }
    fn tick(&self, what: &str) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.enabled {
            let mut line = format!("[{n}/{}] {what}", self.total);
            line.truncate(100);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }
    fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
