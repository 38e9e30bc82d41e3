//! `iamplan fmt [--check] FILES...`: the canonical layout of plan files (`crate::fmtplan`),
//! written in place, or with `--check` only reported (exit 1 when a file would change).

use super::{EXIT_ERROR, EXIT_OK};
use crate::fmtplan;
use crate::spec::SpecError;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct FmtArgs {
    pub files: Vec<PathBuf>,
    pub check: bool,
}

pub fn run(args: FmtArgs) -> Result<i32> {
    let mut paths = Vec::new();
    for p in &args.files {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            paths.extend(found);
        } else {
            paths.push(p.clone());
        }
    }
    let mut failed = false;
    for path in paths {
        let source = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let formatted = match fmtplan::format(&source) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "error: {}\n",
                    SpecError::at(&path, &source, e.span, e.message)
                );
                failed = true;
                continue;
            }
        };
        if formatted == source {
            continue;
        }
        if args.check {
            println!("{} is not formatted", path.display());
            failed = true;
        } else {
            // The file keeps its permissions.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o7777;
            crate::fsutil::write_atomic(&path, formatted.as_bytes(), mode)?;
            println!("formatted {}", path.display());
        }
    }
    Ok(if failed { EXIT_ERROR } else { EXIT_OK })
}
