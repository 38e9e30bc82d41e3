//! `iamplan fmt [--check] FILES...`: the canonical layout of plan files (`crate::fmtplan`),
//! written in place, or with `--check` only reported (exit 1 when a file would change).

use super::{EXIT_ERROR, EXIT_OK};
use crate::fmtplan;
use crate::spec::SpecError;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct FmtArgs {
    pub files: Vec<PathBuf>,
    pub check: bool,
}

pub fn run(args: FmtArgs) -> Result<i32> {
    let mut paths = Vec::new();
    for p in &args.files {
        collect(p, &mut paths)?;
    }
    if paths.is_empty() {
        anyhow::bail!("no plan files (*.toml) in {}", display(&args.files));
    }
    let mut failed = false;
    for path in paths {
        let source = match crate::spec::read_source(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}\n");
                failed = true;
                continue;
            }
        };
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
            outln!("{} is not formatted", path.display());
            failed = true;
        } else {
            // The file keeps its permissions.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o7777;
            crate::fsutil::write_atomic(&path, formatted.as_bytes(), mode)?;
            outln!("formatted {}", path.display());
        }
    }
    Ok(if failed { EXIT_ERROR } else { EXIT_OK })
}

/// A file as given, or the `*.toml` files under a directory, at any depth (formatting is
/// per file, so `iamplan fmt plans` formats every plan), sorted.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect(&e, out)?;
        } else if e.extension().is_some_and(|x| x == "toml") {
            out.push(e);
        }
    }
    Ok(())
}

fn display(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
