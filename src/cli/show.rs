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
        bail!(
            "{} is not a saved plan: save one with `iamplan plan FILES --out {}`",
            args.plan.display(),
            args.plan.display()
        );
    };
    if args.json {
        println!("{}", JsonPlan::new(&plan).pretty());
    } else {
        print!("{}", render(&plan, Style::detect()));
    }
    Ok(EXIT_OK)
}
