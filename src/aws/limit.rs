//! How many calls of each IAM API run at once in one account: found by trying, not fixed.
//!
//! IAM throttles per API with token buckets whose sizes AWS does not publish, so no fixed
//! concurrency is right for every account and API: too low wastes time on latency, too
//! high earns `Throttling` errors and backoff. Each API of an account gets its own limit,
//! which grows while calls succeed and halves on throttling (AIMD, as TCP's congestion
//! control): from 4 it doubles every round trip until the first throttle ("slow start"),
//! then grows by one per four round trips. `--parallelism` bounds it.
//!
//! The SDK's own adaptive retry mode rate-limits a whole client: a throttled CreateRole
//! would slow every other API of the account, whose buckets are separate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The default bound (`--parallelism`): above what IAM's buckets are known to sustain
/// at tens of milliseconds per call, so that the limit, not the bound, decides.
pub const DEFAULT_PARALLELISM: u16 = 32;

/// Where each API's limit starts (the fixed default before adaptive limits).
const INITIAL: f64 = 4.0;

/// How fast a limit grows after the first throttle: by one per 1/PROBE round trips. Slow,
/// because near an empty bucket every step up is a throttle.
const PROBE: f64 = 0.25;

/// Throttles within this long of a cut are the same congestion event (the calls in
/// flight when the bucket emptied), not a reason to cut again.
const CUT_INTERVAL: Duration = Duration::from_millis(250);

/// The per-API limits of one account.
pub struct Limits {
    max: usize,
    apis: Mutex<HashMap<&'static str, Arc<Aimd>>>,
}

impl Limits {
    /// Limits that never let more than `max` calls of one API run at once.
    pub fn new(max: usize) -> Limits {
        Limits {
            max: max.max(1),
            apis: Mutex::new(HashMap::new()),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Waits until a call of `api` may start.
    pub async fn start(&self, api: &'static str) -> Permit {
        let aimd = {
            let mut apis = self.apis.lock().expect("limits lock");
            apis.entry(api)
                .or_insert_with(|| Arc::new(Aimd::new(self.max)))
                .clone()
        };
        aimd.acquire().await;
        Permit {
            aimd,
            outcome: Outcome::Failed,
        }
    }

    /// The current limit of `api` (for the statistics and the tests).
    pub fn current(&self, api: &str) -> Option<f64> {
        let apis = self.apis.lock().expect("limits lock");
        apis.get(api)
            .map(|a| a.state.lock().expect("aimd lock").limit)
    }
}

/// What became of a call, for its API's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Throttled,
    /// Any other failure: says nothing about the API's capacity.
    Failed,
}

/// One running call; its slot is given back when dropped, with the outcome it was told.
pub struct Permit {
    aimd: Arc<Aimd>,
    outcome: Outcome,
}

impl Permit {
    pub fn finish(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.aimd.release(self.outcome);
    }
}

struct Aimd {
    /// One permit per call that may start; the count follows the limit.
    slots: Semaphore,
    max: usize,
    state: Mutex<State>,
}

struct State {
    limit: f64,
    /// Permits in existence: taken or available.
    issued: usize,
    slow_start: bool,
    last_cut: Option<Instant>,
}

impl Aimd {
    fn new(max: usize) -> Aimd {
        let limit = INITIAL.min(max as f64);
        Aimd {
            slots: Semaphore::new(limit as usize),
            max,
            state: Mutex::new(State {
                limit,
                issued: limit as usize,
                slow_start: true,
                last_cut: None,
            }),
        }
    }

    async fn acquire(&self) {
        // The semaphore is never closed, so acquire cannot fail; the permit is managed by
        // hand so that a lowered limit can retire it instead of giving it back.
        if let Ok(p) = self.slots.acquire().await {
            p.forget();
        }
    }

    fn release(&self, outcome: Outcome) {
        let mut s = self.state.lock().expect("aimd lock");
        match outcome {
            Outcome::Succeeded if s.slow_start => s.limit += 1.0,
            Outcome::Succeeded => s.limit += PROBE / s.limit,
            Outcome::Throttled => {
                let recent = s.last_cut.is_some_and(|t| t.elapsed() < CUT_INTERVAL);
                if !recent {
                    s.limit = (s.limit / 2.0).max(1.0);
                    s.slow_start = false;
                    s.last_cut = Some(Instant::now());
                }
            }
            Outcome::Failed => {}
        }
        s.limit = s.limit.min(self.max as f64);
        let want = (s.limit.floor() as usize).max(1);
        if s.issued > want {
            // This call's permit is retired.
            s.issued -= 1;
        } else {
            let add = 1 + (want - s.issued);
            s.issued = want;
            self.slots.add_permits(add);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(limits: &Limits, outcome: Outcome) {
        limits.start("CreateRole").await.finish(outcome);
    }

    #[tokio::test]
    async fn grows_while_calls_succeed_up_to_the_bound() {
        let limits = Limits::new(32);
        for _ in 0..4 {
            run(&limits, Outcome::Succeeded).await;
        }
        // Slow start: one more per success.
        assert_eq!(limits.current("CreateRole"), Some(8.0));
        for _ in 0..100 {
            run(&limits, Outcome::Succeeded).await;
        }
        assert_eq!(limits.current("CreateRole"), Some(32.0));
    }

    #[tokio::test]
    async fn halves_on_throttling_once_per_congestion_event() {
        let limits = Limits::new(32);
        for _ in 0..12 {
            run(&limits, Outcome::Succeeded).await;
        }
        assert_eq!(limits.current("CreateRole"), Some(16.0));
        run(&limits, Outcome::Throttled).await;
        run(&limits, Outcome::Throttled).await;
        assert_eq!(limits.current("CreateRole"), Some(8.0));
        // After the cut, growth is additive: one per four limits' worth of successes.
        for _ in 0..32 {
            run(&limits, Outcome::Succeeded).await;
        }
        let l = limits.current("CreateRole").unwrap();
        assert!((8.9..9.1).contains(&l), "{l}");
        // Other failures say nothing about capacity; other APIs have their own limit.
        run(&limits, Outcome::Failed).await;
        assert_eq!(limits.current("CreateRole"), Some(l));
        assert_eq!(limits.current("PutRolePolicy"), None);
    }

    #[tokio::test]
    async fn never_more_calls_in_flight_than_the_limit() {
        let limits = Arc::new(Limits::new(32));
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (limits, in_flight, most) = (limits.clone(), in_flight.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let permit = limits.start("ListAccessKeys").await;
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                permit.finish(Outcome::Throttled);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Started at 4 and only ever cut: never more than 4 at once.
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 4);
        assert!(limits.current("ListAccessKeys").unwrap() <= 2.0);
    }

    #[tokio::test]
    async fn the_bound_caps_the_start() {
        let limits = Limits::new(1);
        run(&limits, Outcome::Succeeded).await;
        assert_eq!(limits.current("CreateRole"), Some(1.0));
    }
}
