//! Commands: each reads plain options (never clap types) and returns an exit code.

pub mod apply;
pub mod plan;

use crate::aws::{self, Account, Stats, Target};
use crate::diff::{self, Options};
use crate::model::{Desired, Live};
use crate::plan::Plan;
use crate::spec::{self, AccountSpec, Spec};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit codes, as Terraform's `-detailed-exitcode`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;

/// Options every command that reads the account shares.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub target: Target,
    pub stats: bool,
    pub adopt: bool,
}

/// Time spent outside API calls, for `--stats`.
#[derive(Debug, Default)]
pub struct Timing {
    pub parse: Duration,
    pub diff: Duration,
    pub render: Duration,
    pub network: Duration,
}

/// Everything a command learns before acting: the plan files, the accounts, the plan.
pub struct Session {
    pub accounts: BTreeMap<String, Account>,
    pub stats: Arc<Stats>,
    pub timing: Timing,
}

impl Session {
    /// Connects to every account the plan names (concurrently).
    pub async fn connect(
        specs: &BTreeMap<String, AccountSpec>,
        target: &Target,
    ) -> Result<Session> {
        let stats = Arc::new(Stats::default());
        let started = Instant::now();
        let conns = futures::future::join_all(
            specs
                .iter()
                .map(|(alias, s)| aws::connect(alias, target, s, stats.clone())),
        )
        .await;
        let mut accounts = BTreeMap::new();
        for c in conns {
            let a = c?;
            accounts.insert(a.ctx.alias.clone(), a);
        }
        Ok(Session {
            accounts,
            stats,
            timing: Timing {
                network: started.elapsed(),
                ..Timing::default()
            },
        })
    }

    pub async fn read_live(&mut self) -> Result<Live> {
        let started = Instant::now();
        let mut live = Live::default();
        let reads = futures::future::join_all(self.accounts.values().map(|a| async move {
            let mut l = Live::default();
            aws::read_live(a, &mut l).await.map(|()| l)
        }))
        .await;
        for r in reads {
            live.resources.extend(r?.resources);
        }
        self.timing.network += started.elapsed();
        Ok(live)
    }

    pub fn contexts(&self) -> BTreeMap<String, crate::model::AccountContext> {
        self.accounts
            .iter()
            .map(|(k, a)| (k.clone(), a.ctx.clone()))
            .collect()
    }

    /// Prints the API calls made and the time spent on local work, to stderr.
    pub fn print_stats(&self) {
        let calls = self.stats.snapshot();
        let list: Vec<String> = calls.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "API calls: {} (total {})",
            list.join(" "),
            self.stats.total()
        );
        let t = &self.timing;
        eprintln!(
            "time: network {:.1} ms, parse {:.1} ms, diff {:.1} ms, render {:.1} ms",
            ms(t.network),
            ms(t.parse),
            ms(t.diff),
            ms(t.render)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Plan files -> (spec, accounts) -> live -> plan.
pub struct Planned {
    pub session: Session,
    pub desired: Desired,
    pub plan: Plan,
}

pub async fn make_plan(files: &[PathBuf], common: &Common) -> Result<Planned> {
    let started = Instant::now();
    let spec: Spec = spec::load(files)?;
    let account_specs = spec.accounts()?;
    spec.stack_name()?;
    let parse = started.elapsed();
    let mut session = Session::connect(&account_specs, &common.target).await?;
    let started = Instant::now();
    let desired = spec.build(&session.contexts())?;
    session.timing.parse = parse + started.elapsed();
    let live = session.read_live().await?;
    let started = Instant::now();
    let d = diff::diff(
        &desired,
        &live,
        &Options {
            adopt_all: common.adopt,
        },
    );
    let fingerprint = diff::live_fingerprint(&desired.stack, desired.resources.keys(), &live);
    let mut plan = Plan::new(
        desired.stack.clone(),
        session
            .accounts
            .iter()
            .map(|(k, a)| (k.clone(), a.ctx.account_id.clone()))
            .collect(),
        fingerprint,
        d,
    );
    plan.account_specs = account_specs;
    plan.declared = desired.resources.keys().cloned().collect();
    session.timing.diff = started.elapsed();
    Ok(Planned {
        session,
        desired,
        plan,
    })
}

/// Renders an error for the user: plan-file errors as they are, others with their causes.
pub fn report_error(e: &anyhow::Error) {
    if let Some(se) = e.downcast_ref::<spec::SpecError>() {
        eprintln!("error: {se}");
        return;
    }
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
