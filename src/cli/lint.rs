//! `iamplan lint FILES...`: findings about policies IAM accepts but that are probably wrong
//! or risky (see `crate::lint`), offline. Exit 1 on an error finding (or any finding with
//! `--deny-warnings`), or when the files themselves have errors.

use super::validate::print_all;
use super::{EXIT_ERROR, EXIT_OK};
use crate::lint::{self, Finding, Severity};
use crate::spec;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct LintArgs {
    pub files: Vec<PathBuf>,
    pub json: bool,
    /// Fail on warnings and suggestions too (for CI).
    pub deny_warnings: bool,
}

/// `iamplan lint --json`: versioned, documented in the README ("Lint").
#[derive(Serialize)]
struct JsonLint<'a> {
    format_version: &'static str,
    findings: &'a [Finding],
}

pub fn run(args: LintArgs) -> Result<i32> {
    let (checked, found) = spec::check(&args.files);
    print_all("warning", &found.warnings);
    print_all("error", &found.errors);
    let Some((_, desired)) = checked.filter(|_| found.errors.is_empty()) else {
        eprintln!("lint needs plan files without errors: fix them first (`iamplan validate`)");
        return Ok(EXIT_ERROR);
    };
    let findings = lint::lint(&desired);
    if args.json {
        let out = JsonLint {
            format_version: "1",
            findings: &findings,
        };
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for f in &findings {
            outln!("{}\n  help: {}", f.one_line(), f.help);
        }
        outln!("{}", summary(&findings));
    }
    let fails = findings
        .iter()
        .any(|f| f.severity == Severity::Error || args.deny_warnings);
    Ok(if fails { EXIT_ERROR } else { EXIT_OK })
}

/// `2 findings: 1 error, 1 security warning` or `no findings`.
pub fn summary(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings".into();
    }
    let mut parts = Vec::new();
    for s in [
        Severity::Error,
        Severity::SecurityWarning,
        Severity::Warning,
        Severity::Suggestion,
    ] {
        let n = findings.iter().filter(|f| f.severity == s).count();
        if n > 0 {
            parts.push(format!(
                "{n} {}{}",
                s.as_str(),
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    format!(
        "{} finding{}: {}",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// The findings as warnings on stderr, for `plan` and `apply` (which go on regardless;
/// `iamplan lint` is the gate).
pub fn warn(findings: &[Finding]) {
    // A few lines say enough next to a plan; `iamplan lint` lists them all.
    const SHOWN: usize = 10;
    for f in findings.iter().take(SHOWN) {
        eprintln!("warning: {}", f.one_line());
    }
    if findings.len() > SHOWN {
        eprintln!("warning: ... and {} more", findings.len() - SHOWN);
    }
    if !findings.is_empty() {
        eprintln!("({}; `iamplan lint` explains each)\n", summary(findings));
    }
}
