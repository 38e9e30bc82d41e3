//! Commands: each reads plain options (never clap types) and returns an exit code.

/// `println!` for the commands' standard output (see out.rs: a closed pipe is not an error).
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the commands' standard output.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

pub mod apply;
pub mod explain;
pub mod export;
pub mod fmt;
pub mod lint;
pub mod list;
pub mod out;
pub mod output;
pub mod plan;
pub mod progress;
pub mod show;
pub mod smoke;
pub mod unlock;
pub mod validate;
pub mod who_can;

use crate::aws::{self, Account, Stats, Target};
use crate::diff::{self, Options};
use crate::keys::{Epoch, KeyContext, KeyHints, UserKeyHint};
use crate::model::{AccountSpec, Desired, Live, Resource};
use crate::plan::Plan;
use crate::spec;
use anyhow::{Result, anyhow};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit codes, as Terraform's `-detailed-exitcode`.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGES: i32 = 2;
/// `explain`: the request is denied (explicitly or implicitly).
pub const EXIT_DENIED: i32 = 3;
/// `explain`: the plan's policies cannot decide the request (the reasons are printed).
pub const EXIT_UNKNOWN: i32 = 4;

/// Options every command that reads the account shares.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub target: Target,
    pub stats: bool,
    pub adopt: bool,
    /// Evaluate key rotation rules as of this time (`--now`), else the clock.
    pub now: Option<Epoch>,
    /// Deactivate keys even if they were used recently.
    pub force: bool,
    /// Users to rotate now, whatever their keys' ages (`iamplan rotate`), lower-cased.
    pub rotate: BTreeSet<String>,
}

/// Time spent outside API calls, for `--stats`.
#[derive(Debug, Default)]
pub struct Timing {
    pub parse: Duration,
    /// Variables, validation and normalisation of the parsed files.
    pub build: Duration,
    pub diff: Duration,
    /// Of `diff`: classifying what policy changes do to access.
    pub access: Duration,
    pub render: Duration,
    pub network: Duration,
}

/// Accounts connected to or read at once. Each has its own API limits (IAM throttles per
/// account), so more accounts in flight cost only this machine's sockets and memory;
/// the bound keeps an Organization-wide plan from opening hundreds at once.
const ACCOUNTS_IN_FLIGHT: usize = 16;

/// The accounts a command works in, with the API-call and timing counters.
pub struct Session {
    pub accounts: BTreeMap<String, Account>,
    pub stats: Arc<Stats>,
    pub timing: Timing,
    /// The stack locks this run holds, by account alias (apply and rotate).
    locks: Vec<(String, aws::lock::Lock)>,
    /// A lock was taken over from a run of this host that died mid-apply, held since then.
    pub recovering: Option<i64>,
}

impl Session {
    /// Connects to every account the plan names (concurrently). An account in `optional`
    /// whose credentials do not work is left out, with a warning.
    pub async fn connect(
        specs: &BTreeMap<String, AccountSpec>,
        target: &Target,
        optional: &BTreeSet<String>,
    ) -> Result<Session> {
        Self::connect_reading(specs, target, optional, &|_| aws::Prefetch::No).await
    }

    /// Connects, reading each account's state meanwhile where `prefetch` says so.
    pub async fn connect_reading(
        specs: &BTreeMap<String, AccountSpec>,
        target: &Target,
        optional: &BTreeSet<String>,
        prefetch: &(dyn Fn(&str) -> aws::Prefetch + Sync),
    ) -> Result<Session> {
        let stats = Arc::new(Stats::default());
        let started = Instant::now();
        let conns: Vec<_> = futures::stream::iter(
            specs
                .iter()
                .map(|(alias, s)| aws::connect(alias, target, s, stats.clone(), prefetch(alias))),
        )
        .buffered(ACCOUNTS_IN_FLIGHT)
        .collect()
        .await;
        let mut accounts = BTreeMap::new();
        for (c, alias) in conns.into_iter().zip(specs.keys()) {
            match c {
                Ok(a) => {
                    accounts.insert(a.ctx.alias.clone(), a);
                }
                Err(e) if optional.contains(alias) => eprintln!(
                    "warning: account \"{alias}\" is not reachable, and nothing of the plan lives there, so it is not read (resources this stack may still own there are left alone): {e}"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(Session {
            accounts,
            stats,
            timing: Timing {
                network: started.elapsed(),
                ..Timing::default()
            },
            locks: Vec::new(),
            recovering: None,
        })
    }

    /// Takes the stack's lock in every account (in alias order); if one is held elsewhere,
    /// gives back those taken and says who holds it.
    pub async fn lock(&mut self, stack: &str) -> Result<()> {
        for (alias, account) in &self.accounts {
            match aws::lock::acquire(account, stack).await {
                Ok((lock, took_over)) => {
                    if let Some(since) = took_over {
                        self.recovering = Some(self.recovering.map_or(since, |s| s.min(since)));
                    }
                    self.locks.push((alias.clone(), lock));
                }
                Err(e) => {
                    self.unlock().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Gives back every lock this run holds.
    pub async fn unlock(&mut self) {
        for (alias, lock) in std::mem::take(&mut self.locks) {
            if let Some(account) = self.accounts.get(&alias) {
                lock.release(account).await;
            }
        }
    }

    pub async fn read_live(
        &mut self,
        stack: &str,
        hints: &BTreeMap<String, KeyHints>,
    ) -> Result<Live> {
        let started = Instant::now();
        let mut live = Live::default();
        let none = KeyHints::default();
        let reads: Vec<_> = futures::stream::iter(self.accounts.values().map(|a| {
            let hints = hints.get(&a.ctx.alias).unwrap_or(&none);
            async move {
                let mut l = Live::default();
                aws::read_live(a, stack, hints, &mut l).await.map(|()| l)
            }
        }))
        .buffer_unordered(ACCOUNTS_IN_FLIGHT)
        .collect()
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
        eprintln!("throttled: {}", self.stats.throttled());
        let t = &self.timing;
        eprintln!(
            "time: network {:.1} ms, parse {:.1} ms, build {:.1} ms, diff {:.1} ms (access {:.1} ms), render {:.1} ms",
            ms(t.network),
            ms(t.parse),
            ms(t.build),
            ms(t.diff),
            ms(t.access),
            ms(t.render)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Plan files -> (spec, accounts) -> live -> plan.
pub struct Planned {
    /// The plan files' smoke checks, when asked for (the files themselves are dropped
    /// once the desired state is built: for thousands of resources they are large).
    pub smoke: Option<Vec<crate::smoke::SmokeCheck>>,
    pub session: Session,
    pub desired: Desired,
    pub plan: Plan,
    /// The live state the plan was computed from (for the saved plan's fingerprint).
    pub live: Live,
    /// Lint findings, when asked for.
    pub findings: Vec<crate::lint::Finding>,
}

impl Planned {
    /// Records what the saved plan depends on; only needed when a plan is saved, and
    /// not free for thousands of resources.
    pub fn seal(&mut self) {
        self.plan.live_fingerprint = diff::live_fingerprint(
            &self.desired.stack,
            self.desired.resources.keys(),
            &self.live,
        );
    }
}

/// What a command needs from planning beyond the plan itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    /// The plan files' smoke checks.
    pub smoke: bool,
    /// Each changed resource whole, before and after (JSON plan, saved plan).
    pub snapshots: bool,
    /// Unchanged resources too, as no-op changes.
    pub include_unchanged: bool,
    /// Lint findings about the plan's documents (found while the account is read).
    pub lint: bool,
    /// Take the stack's lock before reading (apply and rotate; released by the caller).
    pub lock: bool,
}

/// Plan files -> the desired state, with a session on the accounts they name (and how to
/// reach each, for a saved plan). The files come back too: smoke checks are read from them.
async fn load_stack(
    files: &[PathBuf],
    common: &Common,
    prefetch: bool,
) -> Result<(Session, Desired, BTreeMap<String, AccountSpec>)> {
    let started = Instant::now();
    // Every check that needs no AWS runs before the first call, and reports every problem.
    let (checked, found) = spec::check(files);
    for w in found.into_result()? {
        eprintln!("warning: {w}\n");
    }
    let (spec, _) = checked.ok_or_else(|| anyhow!("the plan files cannot be read"))?;
    let account_specs = spec.accounts()?;
    let parse = started.elapsed();
    let users_with_keys = spec.users_with_keys();
    let read_while_connecting = |alias: &str| {
        if prefetch {
            aws::Prefetch::Yes {
                report: aws::read::wants_report(users_with_keys.get(alias).copied().unwrap_or(0)),
            }
        } else {
            aws::Prefetch::No
        }
    };
    let mut session = Session::connect_reading(
        &account_specs,
        &common.target,
        &spec.optional_accounts(),
        &read_while_connecting,
    )
    .await?;
    let started = Instant::now();
    let desired = spec.build(&session.contexts())?;
    session.timing.parse = parse;
    session.timing.build = started.elapsed();
    Ok((session, desired, account_specs))
}

pub async fn make_plan(files: &[PathBuf], common: &Common, wants: Wants) -> Result<Planned> {
    if wants.lint {
        // Lint needs the action database (about 15 ms to read): read it meanwhile.
        std::thread::spawn(|| {
            crate::lint::db::shared();
        });
    }
    // Without a lock to take first, the account is read while it is identified.
    let (mut session, desired, account_specs) = load_stack(files, common, !wants.lock).await?;
    if wants.lock {
        session.lock(&desired.stack).await?;
    }
    match plan_locked(session, desired, account_specs, common, wants).await {
        Ok(planned) => Ok(planned),
        Err((mut session, e)) => {
            session.unlock().await;
            Err(e)
        }
    }
}

/// The rest of `make_plan`: on error the session comes back, to give back its locks.
async fn plan_locked(
    mut session: Session,
    desired: Desired,
    account_specs: BTreeMap<String, AccountSpec>,
    common: &Common,
    wants: Wants,
) -> std::result::Result<Planned, (Session, anyhow::Error)> {
    macro_rules! try_ {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Err((session, e.into())),
            }
        };
    }
    let smoke = wants.smoke.then(|| desired.smoke.clone());
    let (hints, sink_keys) = try_!(key_hints(&desired));
    // Lint is local work: it runs on its own thread while the account is read.
    let read = if wants.lint {
        let desired = &desired;
        let session = &mut session;
        let hints = &hints;
        tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                let linting = s.spawn(|| crate::lint::lint(desired));
                let live = tokio::runtime::Handle::current()
                    .block_on(session.read_live(&desired.stack, hints));
                let findings = linting.join().unwrap_or_default();
                live.map(|l| (l, findings))
            })
        })
    } else {
        session
            .read_live(&desired.stack, &hints)
            .await
            .map(|l| (l, Vec::new()))
    };
    let (live, findings) = try_!(read);
    let started = Instant::now();
    for user in &common.rotate {
        let declared = desired.resources.iter().any(|(a, d)| {
            a.key == *user && matches!(&d.resource, Resource::User(u) if u.keys.is_some())
        });
        if !declared {
            return Err((
                session,
                anyhow!(
                    "cannot rotate \"{user}\": the plan declares no user of that name with access_keys"
                ),
            ));
        }
    }
    let opts = Options {
        adopt_all: common.adopt,
        keys: KeyContext {
            now: common.now.unwrap_or_else(now),
            rotate_now: false,
            force: common.force,
            simulated: common.now.is_some(),
            recovering_since: session.recovering,
        },
        rotate: common.rotate.clone(),
        sink_keys,
        snapshots: wants.snapshots,
        include_unchanged: wants.include_unchanged,
        recovering: session.recovering.is_some(),
    };
    let d = diff::diff(&desired, &live, &opts);
    session.timing.access = d.access_time;
    let fingerprint = BTreeMap::new();
    let mut plan = Plan::new(
        desired.stack.clone(),
        session
            .accounts
            .iter()
            .map(|(k, a)| crate::plan::PlanAccount {
                alias: k.clone(),
                account_id: a.ctx.account_id.clone(),
                caller_arn: a.caller.clone(),
            })
            .collect(),
        fingerprint,
        d,
    );
    // A saved plan reaches the accounts this plan did (an optional one may be left out).
    plan.account_specs = account_specs
        .into_iter()
        .filter(|(alias, _)| session.accounts.contains_key(alias))
        .collect();
    plan.declared = desired.resources.keys().cloned().collect();
    plan.key_hints = hints;
    plan.check_whole_stack(&live);
    let applied = live.has_stack(&desired.stack);
    plan.outputs = desired
        .outputs
        .iter()
        .map(|o| o.planned(&live, applied))
        .collect();
    session.timing.diff = started.elapsed();
    Ok(Planned {
        smoke,
        session,
        desired,
        plan,
        live,
        findings,
    })
}

/// The plan files' desired state and the live state, for commands that only read.
pub async fn read_stack(files: &[PathBuf], common: &Common) -> Result<(Desired, Session, Live)> {
    let (mut session, desired, _) = load_stack(files, common, false).await?;
    let live = session.read_live(&desired.stack, &BTreeMap::new()).await?;
    Ok((desired, session, live))
}

pub fn now() -> Epoch {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as Epoch)
}

/// What the live read needs to know about declared users' keys, and which key each file
/// sink holds (read from the sink itself: nothing about keys is kept elsewhere).
type SinkKeys = BTreeMap<crate::model::Address, Option<String>>;

fn key_hints(desired: &Desired) -> Result<(BTreeMap<String, KeyHints>, SinkKeys)> {
    let mut hints: BTreeMap<String, KeyHints> = BTreeMap::new();
    let mut sink_keys = BTreeMap::new();
    for (addr, d) in &desired.resources {
        if let Resource::ManagedPolicy(p) = &d.resource
            && d.adopt
        {
            hints
                .entry(addr.account.clone())
                .or_default()
                .adopted_policies
                .insert(p.name.to_ascii_lowercase());
        }
        let Resource::User(u) = &d.resource else {
            continue;
        };
        let Some(rule) = &u.keys else { continue };
        if let Some(tree) = rule.sink.unignored_in_git() {
            eprintln!(
                "warning: the {} of user {} is inside the git work tree {} and git does not ignore it: the secret could be committed; add it to .gitignore",
                rule.sink,
                u.name,
                tree.display()
            );
        }
        let held = if rule.sink.readable() {
            rule.sink
                .held_key()
                .map_err(|e| anyhow!("user {}: the key sink cannot be read: {e}", u.name))?
        } else {
            None
        };
        sink_keys.insert(addr.clone(), held.clone());
        hints.entry(addr.account.clone()).or_default().users.insert(
            addr.key.clone(),
            UserKeyHint {
                sink_key: held,
                rotating: rule.rotate_after_days.is_some(),
            },
        );
    }
    Ok((hints, sink_keys))
}

/// Renders an error for the user: plan-file errors as they are, others with their causes.
pub fn report_error(e: &anyhow::Error) {
    if let Some(se) = e.downcast_ref::<spec::SpecError>() {
        eprintln!("error: {se}");
        return;
    }
    if let Some(se) = e.downcast_ref::<spec::SpecErrors>() {
        eprintln!("error: {se}");
        return;
    }
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
