//! `iamplan plan`: read, compare, print; optionally save the plan for `apply`.

use super::{Common, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, make_plan};
use crate::plan::{Style, render};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct PlanArgs {
    pub files: Vec<PathBuf>,
    pub common: Common,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub detailed_exitcode: bool,
    /// List unchanged resources in the JSON plan, as `["no-op"]`.
    pub include_unchanged: bool,
    /// Fail when access widens without the plan files' acknowledgement.
    pub deny_widening: bool,
}

pub async fn run(args: PlanArgs) -> Result<i32> {
    // Before anything is read: a plan that cannot be saved is not worth the account's time.
    if let Some(out) = &args.out {
        crate::plan::saved::check_out(out)?;
    }
    let wants = super::Wants {
        smoke: false,
        snapshots: args.json || args.out.is_some(),
        include_unchanged: args.include_unchanged,
        lint: true,
        lock: false,
    };
    let mut planned = make_plan(&args.files, &args.common, wants).await?;
    super::lint::warn(&planned.findings);
    if args.out.is_some() {
        planned.seal();
    }
    let plan = &planned.plan;
    let started = Instant::now();
    if args.json {
        outln!("{}", crate::plan::json::JsonPlan::new(plan).pretty());
    } else {
        out!("{}", render(plan, Style::detect()));
    }
    planned.session.timing.render = started.elapsed();
    // After the plan is shown, as Terraform reports a failed policy check: the reader sees
    // what widens. A refused plan is not saved, so that it cannot be applied as it is.
    let refused = if args.deny_widening {
        plan.deny_widening().err()
    } else {
        None
    };
    if let Some(e) = &refused {
        eprintln!("error: {e}");
    }
    if let Some(out) = args.out.as_ref().filter(|_| refused.is_none()) {
        crate::plan::saved::save(plan, out)?;
        if !args.json {
            outln!(
                "\nSaved the plan to {}. To apply exactly this plan, run:\n    iamplan apply {}",
                out.display(),
                out.display()
            );
        }
    }
    if args.common.stats {
        planned.session.print_stats();
    }
    if refused.is_some() {
        return Ok(EXIT_ERROR);
    }
    if !plan.conflicts.is_empty() {
        eprintln!(
            "error: {} conflict(s): the plan cannot be applied until they are resolved",
            plan.conflicts.len()
        );
        return Ok(EXIT_ERROR);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
