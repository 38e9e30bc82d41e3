//! `iamplan show PLANFILE`: a saved plan, as text or as the JSON plan.

use super::EXIT_OK;
use crate::plan::json::JsonPlan;
use crate::plan::{Style, render};
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ShowArgs {
    pub plan: PathBuf,
    pub json: bool,
}

pub async fn run(args: ShowArgs) -> Result<i32> {
    let Some(plan) = crate::plan::saved::load(std::slice::from_ref(&args.plan))? else {
        // Never suggest `--out` of the path given: it is plan files, which would be lost.
        bail!(
            "{} is plan files, not a saved plan: `iamplan plan {}` shows what they would change; to save a plan for show and apply, `iamplan plan {} --out plan.json`",
            args.plan.display(),
            args.plan.display(),
            args.plan.display()
        );
    };
    if args.json {
        outln!("{}", JsonPlan::new(&plan).pretty());
    } else {
        out!("{}", render(&plan, Style::detect()));
    }
    Ok(EXIT_OK)
}
