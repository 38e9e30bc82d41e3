//! `iamplan validate FILES...`: every check that needs no credentials and no network, every
//! problem of every file in one run.

use super::{EXIT_ERROR, EXIT_OK};
use crate::spec::{self, SpecError};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ValidateArgs {
    pub files: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> Result<i32> {
    let (checked, found) = spec::check(&args.files);
    print_all("warning", &found.warnings);
    print_all("error", &found.errors);
    let Some((spec, desired)) = checked.filter(|_| found.errors.is_empty()) else {
        summary(found.errors.len(), found.warnings.len());
        return Ok(EXIT_ERROR);
    };
    outln!(
        "valid: {} plan file{}, {} resource{}, {} smoke check{}{}",
        spec.files.len(),
        plural(spec.files.len()),
        desired.resources.len(),
        plural(desired.resources.len()),
        desired.smoke.len(),
        plural(desired.smoke.len()),
        match found.warnings.len() {
            0 => String::new(),
            n => format!(" ({n} warning{})", plural(n)),
        }
    );
    Ok(EXIT_OK)
}

pub(crate) fn print_all(label: &str, problems: &[SpecError]) {
    for p in problems {
        eprintln!("{label}: {p}\n");
    }
}

fn summary(errors: usize, warnings: usize) {
    let w = match warnings {
        0 => String::new(),
        n => format!(" and {n} warning{}", plural(n)),
    };
    eprintln!("{errors} error{}{w} in the plan files", plural(errors));
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
