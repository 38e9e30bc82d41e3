//! How apply's progress is shown. On a terminal: a progress bar (indicatif), with log lines
//! (`-v`) printed above it rather than through it. Elsewhere (CI): one line per resource
//! as it is finished, as Terraform prints them ("role.x: Creation complete after 0.4s").

use crate::apply::{Observer, Report};
use crate::aws::StepError;
use crate::ops::Step;
use crate::plan::{Action, Plan, resource_label};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The bar being drawn, if any: log lines go above it.
static BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn bar_slot() -> &'static Mutex<Option<ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

/// Writes one log line to stderr, above the progress bar when one is drawn.
#[derive(Default)]
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let bar = bar_slot().lock().ok().and_then(|b| b.clone());
        let write = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// What happens to one resource, and how far its steps are.
struct Tracker {
    verb: &'static str,
    arn: Option<String>,
    remaining: usize,
    started: Option<Instant>,
    failed: bool,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    resources: Mutex<BTreeMap<String, Tracker>>,
}

impl Progress {
    pub fn new(plan: &Plan) -> Self {
        let mut resources: BTreeMap<String, Tracker> = plan
            .changes()
            .map(|c| {
                let verb = match c.action {
                    Action::Create => "Creation",
                    Action::Delete => "Destruction",
                    Action::Replace => "Replacement",
                    Action::Update | Action::Adopt | Action::NoOp => "Modifications",
                };
                let tracker = Tracker {
                    verb,
                    arn: (c.action != Action::Delete)
                        .then(|| c.arn.clone())
                        .flatten(),
                    remaining: 0,
                    started: None,
                    failed: false,
                };
                (resource_label(&c.address, &c.name), tracker)
            })
            .collect();
        for s in &plan.steps {
            resources
                .entry(s.resource.clone())
                .or_insert(Tracker {
                    verb: "Modifications",
                    arn: None,
                    remaining: 0,
                    started: None,
                    failed: false,
                })
                .remaining += 1;
        }
        let bar = (std::io::stderr().is_terminal() && plan.steps.len() > 1).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(plan.steps.len() as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            resources: Mutex::new(resources),
        }
    }

    /// Prints a line above the bar, or on its own line when there is no bar.
    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Progress {
    fn started(&self, _total: usize) {
        if let (Some(bar), Ok(mut slot)) = (&self.bar, bar_slot().lock()) {
            *slot = Some(bar.clone());
        }
    }

    fn step_started(&self, step: &Step) {
        if let Ok(mut r) = self.resources.lock()
            && let Some(t) = r.get_mut(&step.resource)
        {
            t.started.get_or_insert_with(Instant::now);
        }
    }

    fn step_finished(&self, step: &Step, outcome: &Result<(), StepError>, elapsed: Duration) {
        match outcome {
            Ok(()) => tracing::info!("{} ({:.0} ms)", step.op, elapsed.as_secs_f64() * 1000.0),
            Err(e) => tracing::warn!("{} failed: {e}", step.op),
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(step.op.to_string());
        }
        let done = {
            let Ok(mut r) = self.resources.lock() else {
                return;
            };
            let Some(t) = r.get_mut(&step.resource) else {
                return;
            };
            t.failed |= outcome.is_err();
            t.remaining = t.remaining.saturating_sub(1);
            (t.remaining == 0).then(|| {
                let secs = t.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                completion_line(&step.resource, t, secs)
            })
        };
        if let Some(text) = done {
            self.line(text);
        }
    }

    fn finished(&self, _report: &Report) {
        if let Ok(mut slot) = bar_slot().lock() {
            *slot = None;
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `role.x: Creation complete after 0.4s [id=arn:...]`, or that it failed.
fn completion_line(resource: &str, t: &Tracker, secs: f64) -> String {
    if t.failed {
        return format!("{resource}: {} failed after {secs:.1}s", t.verb);
    }
    let id = t
        .arn
        .as_ref()
        .map(|a| format!(" [id={a}]"))
        .unwrap_or_default();
    format!("{resource}: {} complete after {secs:.1}s{id}", t.verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_lines_read_like_terraforms() {
        let t = Tracker {
            verb: "Creation",
            arn: Some("arn:aws:iam::000000000000:role/é".into()),
            remaining: 0,
            started: None,
            failed: false,
        };
        assert_eq!(
            completion_line("role.é", &t, 0.42),
            "role.é: Creation complete after 0.4s [id=arn:aws:iam::000000000000:role/é]"
        );
        let failed = Tracker { failed: true, ..t };
        assert_eq!(
            completion_line("role.é", &failed, 1.0),
            "role.é: Creation failed after 1.0s"
        );
    }
}
