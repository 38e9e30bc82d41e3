//! `iamplan apply`: from plan files (plan, confirm, run) or from a saved plan (check the
//! account has not changed since, then run exactly those steps).

use super::{Common, EXIT_ERROR, EXIT_OK, Session, make_plan};
use crate::apply::{Report, apply};
use crate::diff;
use crate::plan::render::render_outputs;
use crate::plan::{Action, Plan, Style, render};
use anyhow::{Result, anyhow, bail};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Default)]
pub struct ApplyArgs {
    pub files: Vec<PathBuf>,
    pub common: Common,
    pub auto_approve: bool,
    /// Run the plan's smoke checks after a successful apply.
    pub smoke: bool,
    /// Apply a plan that deletes every resource of its stack.
    pub allow_delete_all: bool,
    /// Apply under `--now` against an endpoint that is not a local emulator.
    pub allow_simulated_time: bool,
    /// Apply nothing when access widens without the plan files' acknowledgement.
    pub deny_widening: bool,
}

pub async fn run(args: ApplyArgs) -> Result<i32> {
    if args.common.now.is_some()
        && !args.allow_simulated_time
        && !args.common.target.is_local_emulator()
    {
        bail!(
            "--now makes apply record keys as issued at a time that is not now; against real AWS that leaves keys whose recorded age is wrong. It is for previews (`iamplan plan --now`) and emulators. To apply under --now anyway, add --allow-simulated-time"
        );
    }
    let style = Style::detect();
    // Signals are handled from the start: the stack's lock is taken before the account is
    // read, and a Ctrl-C at any point must give it back.
    let applying = std::sync::Arc::new(AtomicBool::new(false));
    let interrupt = interrupt_on_signal(applying.clone());
    // Planning takes the stack's lock (in each account, before reading it); whatever
    // happens after, it is given back.
    let (planned, mut session) = prepare(&args).await?;
    let result = execute(&args, planned, &mut session, style, &applying, &interrupt).await;
    session.unlock().await;
    result
}

/// What apply runs: the plan, with what the plan files add (smoke checks, outputs).
struct Prepared {
    plan: Plan,
    /// The plan files' smoke checks, for `--smoke` (a saved plan carries none).
    smoke: Option<Vec<crate::smoke::SmokeCheck>>,
    outputs: Vec<crate::output::Output>,
    findings: Vec<crate::lint::Finding>,
    /// From plan files (shown and confirmed), not a saved plan.
    fresh: bool,
    /// The desired state, to predict the smoke checks (`--smoke`, plan files only).
    desired: Option<crate::model::Desired>,
}

async fn prepare(args: &ApplyArgs) -> Result<(Prepared, Session)> {
    match crate::plan::saved::load(&args.files)? {
        Some(plan) => {
            if args.smoke {
                bail!(
                    "--smoke needs the plan files (a saved plan has no smoke checks): run `iamplan smoke FILES` after applying it"
                );
            }
            let session = check_saved(&plan, &args.common, &args.files[0]).await?;
            let prepared = Prepared {
                plan,
                smoke: None,
                outputs: Vec::new(),
                findings: Vec::new(),
                fresh: false,
                desired: None,
            };
            Ok((prepared, session))
        }
        None => {
            let wants = super::Wants {
                smoke: args.smoke,
                lint: true,
                lock: true,
                ..super::Wants::default()
            };
            let planned = make_plan(&args.files, &args.common, wants).await?;
            let prepared = Prepared {
                plan: planned.plan,
                smoke: planned.smoke,
                outputs: planned.desired.outputs.clone(),
                findings: planned.findings,
                fresh: true,
                desired: args.smoke.then_some(planned.desired),
            };
            Ok((prepared, planned.session))
        }
    }
}

async fn execute(
    args: &ApplyArgs,
    prepared: Prepared,
    session: &mut Session,
    style: Style,
    applying: &AtomicBool,
    interrupt: &AtomicBool,
) -> Result<i32> {
    let Prepared {
        plan,
        smoke: loaded,
        outputs,
        findings,
        fresh,
        desired,
    } = prepared;
    if fresh {
        super::lint::warn(&findings);
        out!("{}", render(&plan, style));
        if !plan.conflicts.is_empty() {
            bail!("{} conflict(s): nothing was applied", plan.conflicts.len());
        }
    }
    if args.deny_widening {
        // A saved plan carries each change's classification and acknowledgement.
        plan.deny_widening()
            .map_err(|e| anyhow!("{e}\nNothing was applied."))?;
    }
    check_sinks(&plan)?;
    if fresh && plan.has_changes() && !args.auto_approve {
        confirm(&plan)?;
    }
    if let Some(n) = plan.deletes_whole_stack
        && !args.allow_delete_all
    {
        bail!(
            "this plan deletes every resource stack \"{}\" owns ({n}): nothing was applied. If this plan directory was copied from another, give it a [stack] name of its own; to delete the stack's resources on purpose, apply with --allow-delete-all",
            plan.stack
        );
    }
    let mut code = EXIT_OK;
    if plan.has_changes() {
        let started = std::time::Instant::now();
        let progress = super::progress::Progress::new(&plan);
        applying.store(true, Ordering::SeqCst);
        let report = apply(
            &plan.steps,
            &session.accounts,
            args.common.target.parallelism * session.accounts.len().max(1),
            &progress,
            interrupt,
        )
        .await;
        applying.store(false, Ordering::SeqCst);
        session.timing.network += started.elapsed();
        if args.common.stats {
            session.print_stats();
        }
        code = summarise(&plan, &report, style);
    }
    if !fresh && !plan.has_changes() {
        // A saved plan is not shown again: without changes, apply would print nothing.
        outln!(
            "No changes. Live IAM matches the saved plan for stack \"{}\" ({}).",
            plan.stack,
            written(&plan)
        );
    }
    if code == EXIT_OK {
        print_outputs(&plan, &outputs, session, style).await?;
    }
    if args.smoke
        && code == EXIT_OK
        && let Some(checks) = loaded
    {
        outln!();
        let out = super::smoke::Outputs::default();
        let run = super::smoke::RunFor {
            live: None,
            desired: desired.as_ref(),
        };
        code = super::smoke::run_for(checks, session, &args.common, out, run).await?;
    }
    Ok(code)
}

/// Every sink the apply will hand a key to, checked before the first write.
fn check_sinks(plan: &Plan) -> Result<()> {
    for step in &plan.steps {
        if let crate::ops::Op::CreateAccessKey { user, sink, .. } = &step.op {
            sink.preflight().map_err(|e| {
                anyhow::anyhow!(
                    "user {user}: the {sink} cannot take a key: {e}; nothing was applied"
                )
            })?;
        }
    }
    Ok(())
}

async fn check_saved(plan: &Plan, common: &Common, path: &Path) -> Result<Session> {
    if !plan.conflicts.is_empty() {
        bail!(
            "the saved plan {} has conflicts and cannot be applied",
            path.display()
        );
    }
    let mut session =
        Session::connect(&plan.account_specs, &common.target, &Default::default()).await?;
    for crate::plan::PlanAccount {
        alias,
        account_id: id,
        ..
    } in &plan.accounts
    {
        let now = session
            .accounts
            .get(alias)
            .map(|a| a.ctx.account_id.as_str());
        if now != Some(id.as_str()) {
            bail!(
                "the saved plan was made for account {id} (\"{alias}\"), but the credentials now reach {}: nothing was applied",
                now.unwrap_or("no account")
            );
        }
    }
    session.lock(&plan.stack).await?;
    let live = match session.read_live(&plan.stack, &plan.key_hints).await {
        Ok(live) => live,
        Err(e) => {
            session.unlock().await;
            return Err(e);
        }
    };
    let now = diff::live_fingerprint(&plan.stack, &plan.declared, &live);
    let changed = diff::fingerprint_changes(&plan.live_fingerprint, &now);
    if !changed.is_empty() {
        session.unlock().await;
        return Err(anyhow!(
            "the live account changed since {} was made: {}; nothing was applied; run `iamplan plan --out {}` again and review the new plan",
            path.display(),
            changed.join(", "),
            path.display()
        ));
    }
    Ok(session)
}

/// After a successful apply: the outputs (read back from live IAM only when one asks for
/// a unique ID: ARNs are the plan's), or, when the plan declares none, the ARN of each role
/// created or replaced (what a partner or another account needs next).
async fn print_outputs(
    plan: &Plan,
    outputs: &[crate::output::Output],
    session: &mut Session,
    style: Style,
) -> Result<()> {
    if !plan.outputs.is_empty() && !outputs.iter().any(|o| o.needs_live()) {
        // The values as planned are the values now (a saved plan has only these).
        out!("{}", render_outputs(&plan.outputs, style));
        return Ok(());
    }
    if !outputs.is_empty() {
        let live = session.read_live(&plan.stack, &plan.key_hints).await?;
        let values: Vec<_> = outputs
            .iter()
            .map(|o| {
                let mut v = o.planned(&live, true);
                v.value = o.live(&live).ok().or(v.value);
                v
            })
            .collect();
        out!("{}", render_outputs(&values, style));
        return Ok(());
    }
    let roles: Vec<&crate::plan::Change> = plan
        .changes
        .iter()
        .filter(|c| c.address.kind == crate::model::Kind::Role)
        .filter(|c| matches!(c.action, Action::Create | Action::Replace))
        .collect();
    if !roles.is_empty() {
        outln!("\nRoles created or replaced (give the ARN to whoever assumes the role):");
        for c in roles {
            outln!("  role.{} = {}", c.name, c.arn.as_deref().unwrap_or("?"));
        }
    }
    Ok(())
}

/// The accounts a plan writes, for the prompt and the summary.
fn written(plan: &Plan) -> String {
    let list: Vec<String> = plan.accounts.iter().map(|a| a.to_string()).collect();
    list.join(", ")
}

fn confirm(plan: &Plan) -> Result<()> {
    let stack = &plan.stack;
    if !std::io::stdin().is_terminal() {
        bail!(
            "apply needs confirmation, and standard input is not a terminal: review the plan and pass --auto-approve, or apply a saved plan"
        );
    }
    out!(
        "\nDo you want to perform these actions in stack \"{stack}\" ({})?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ",
        written(plan)
    );
    super::out::flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("apply cancelled: nothing was changed");
    }
    Ok(())
}

/// Exit code of an interrupted apply (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A flag set by the first Ctrl-C (SIGINT) or SIGTERM: apply starts no new step and lets
/// the calls in flight finish. A second signal exits at once.
/// Ctrl-C (or SIGTERM): while steps run, the first stops new operations and lets those in
/// flight finish; at any other time (reading, the prompt), and on a second signal, the
/// process gives back the stack's lock and ends.
fn interrupt_on_signal(applying: std::sync::Arc<AtomicBool>) -> std::sync::Arc<AtomicBool> {
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if !applying.load(Ordering::SeqCst) {
                crate::aws::lock::release_all_held().await;
                eprintln!("\nInterrupted: stopping; the stack's lock is given back.");
                std::process::exit(EXIT_INTERRUPTED);
            }
            if n > 0 {
                crate::aws::lock::release_all_held().await;
                eprintln!("\nInterrupted again: stopping now. Run apply again: it converges.");
                std::process::exit(EXIT_INTERRUPTED);
            }
            set.store(true, Ordering::SeqCst);
            // A command sink may hang: it is killed, so its key is deleted again and apply ends.
            crate::keys::sink::interrupt_commands();
            eprintln!(
                "\nInterrupted: no new operation starts; the ones in flight finish (a key already created is delivered to its sink or deleted again; a sink command still running is killed and its key deleted). Press Ctrl-C again to stop at once."
            );
        }
    });
    flag
}

fn summarise(plan: &Plan, report: &Report, style: Style) -> i32 {
    if report.interrupted {
        eprintln!("\n{}", style.yellow(&style.bold("Apply interrupted.")));
        for (step, e) in &report.failed {
            eprintln!("  {} {}: {e}", style.red("x"), step.op);
        }
        eprintln!(
            "{} operation(s) done, {} failed, {} not started. Run apply again: it plans from the live state and converges.",
            report.done,
            report.failed.len(),
            report.skipped
        );
        return EXIT_INTERRUPTED;
    }
    if report.failed.is_empty() {
        let s = plan.summary();
        outln!(
            "\n{} Resources: {} added, {} changed, {} destroyed ({} API operations) in {}.",
            style.green(&style.bold("Apply complete!")),
            s.add,
            s.change,
            s.destroy,
            report.done,
            written(plan)
        );
        return EXIT_OK;
    }
    eprintln!("\n{}", style.red(&style.bold("Apply failed.")));
    for (step, e) in &report.failed {
        eprintln!("  {} {}: {e}", style.red("x"), step.op);
    }
    eprintln!(
        "{} operation(s) succeeded, {} failed, {} not started. Fix the cause and run apply again: it plans from the live state and converges.",
        report.done,
        report.failed.len(),
        report.skipped
    );
    EXIT_ERROR
}
