//! Runs a plan's steps: phase by phase, steps of a phase concurrently (bounded), stopping
//! before the next phase if anything failed so that nothing runs on a broken premise.
//! Progress goes to an `Observer`; this module writes nothing to the terminal.

use crate::aws::{Account, StepError};
use crate::ops::Step;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Report {
    pub done: usize,
    pub failed: Vec<(Step, StepError)>,
    /// Steps not started because an earlier phase failed or apply was interrupted.
    pub skipped: usize,
    /// Apply was interrupted (Ctrl-C): steps in flight finished, no new one started.
    pub interrupted: bool,
}

/// What an apply tells the outside world while it runs.
pub trait Observer: Sync {
    /// Before the first step, with the number of steps.
    fn started(&self, _total: usize) {}
    /// Each step as it starts.
    fn step_started(&self, _step: &Step) {}
    /// Each step as it finishes, in completion order.
    fn step_finished(&self, step: &Step, outcome: &Result<(), StepError>, elapsed: Duration);
    fn finished(&self, _report: &Report) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn step_finished(&self, _: &Step, _: &Result<(), StepError>, _: Duration) {}
}

/// Runs the steps, at most `parallelism` at once (each call within them also waits for
/// its API's adaptive limit, `aws::limit`). Once `interrupt` is set, no new step starts; those running finish
/// (a key already created is delivered to its sink or deleted again).
pub async fn apply(
    steps: &[Step],
    accounts: &BTreeMap<String, Account>,
    parallelism: usize,
    observer: &dyn Observer,
    interrupt: &AtomicBool,
) -> Report {
    observer.started(steps.len());
    let mut report = Report::default();
    for (start, batch) in phases(steps) {
        let results: Vec<(usize, Option<Result<(), StepError>>)> =
            futures::stream::iter(batch.iter().enumerate())
                .map(|(j, step)| async move {
                    if interrupt.load(Ordering::SeqCst) {
                        return (j, None);
                    }
                    observer.step_started(step);
                    let started = Instant::now();
                    let r = accounts[&step.account].run(&step.op).await;
                    observer.step_finished(step, &r, started.elapsed());
                    crate::killpoint::step_finished();
                    (j, Some(r))
                })
                .buffer_unordered(parallelism.max(1))
                .collect()
                .await;
        for (j, r) in results {
            match r {
                Some(Ok(())) => report.done += 1,
                Some(Err(e)) => report.failed.push((batch[j].clone(), e)),
                None => report.skipped += 1,
            }
        }
        let later = steps.len() - start - batch.len();
        if interrupt.load(Ordering::SeqCst) {
            report.interrupted = true;
            report.skipped += later;
            break;
        }
        if !report.failed.is_empty() {
            report.skipped += later;
            break;
        }
    }
    observer.finished(&report);
    report
}

/// The steps (sorted by phase) cut into phases, each with the index of its first step.
fn phases(steps: &[Step]) -> impl Iterator<Item = (usize, &[Step])> {
    let mut start = 0;
    steps.chunk_by(|a, b| a.phase == b.phase).map(move |batch| {
        let at = start;
        start += batch.len();
        (at, batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Op, Phase};

    #[test]
    fn phases_cut_sorted_steps_where_the_phase_changes() {
        let step =
            |name: &str| Step::new("default", "role.x", Op::DeleteRole { name: name.into() });
        let mut early = step("a");
        early.phase = Phase::MakeRoom;
        let steps = vec![early, step("b"), step("c")];
        let cut: Vec<(usize, usize)> = phases(&steps).map(|(i, b)| (i, b.len())).collect();
        assert_eq!(cut, vec![(0, 1), (1, 2)]);
    }
}
