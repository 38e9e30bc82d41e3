//! Saved plans: the plan value as a JSON file that `apply` runs later, exactly. The file
//! names its format version; a plan saved by an incompatible iamplan is refused.

use super::{FORMAT_VERSION, Plan};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the plan to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a saved plan (invalid JSON: {source})")]
    NotJson {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path} is the JSON plan (`plan --json`), which other programs read; it cannot be applied: save a plan to apply with `iamplan plan FILES --out PLAN.json`"
    )]
    JsonPlan { path: String },
    #[error("{path} is JSON but not a saved plan (no format_version)")]
    NoVersion { path: String },
    #[error(
        "{path} was saved by an iamplan with plan format {found}; this one reads format {FORMAT_VERSION}: run plan again"
    )]
    OtherVersion { path: String, found: u64 },
    #[error("{path} is not a valid saved plan: {source}")]
    Invalid {
        path: String,
        source: serde_json::Error,
    },
}

/// Whether `files` is one saved plan (JSON) rather than plan files (TOML), and if so the
/// plan it holds.
pub fn load(files: &[std::path::PathBuf]) -> Result<Option<Plan>, SavedPlanError> {
    let [path] = files else { return Ok(None) };
    if path.is_dir() {
        return Ok(None);
    }
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
        path: shown.clone(),
        source,
    })?;
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    parse(&text, &shown).map(Some)
}

pub fn parse(text: &str, path: &str) -> Result<Plan, SavedPlanError> {
    let path = path.to_string();
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| SavedPlanError::NotJson {
            path: path.clone(),
            source,
        })?;
    if value.get("resource_changes").is_some() && value.get("iamplan_version").is_some() {
        return Err(SavedPlanError::JsonPlan { path });
    }
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(found) => return Err(SavedPlanError::OtherVersion { path, found }),
        None => return Err(SavedPlanError::NoVersion { path }),
    }
    // From the text again: documents are kept as raw JSON, which only a text parser gives.
    drop(value);
    serde_json::from_str(text).map_err(|source| SavedPlanError::Invalid { path, source })
}

pub fn to_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("a plan always serialises")
}

pub fn save(plan: &Plan, path: &Path) -> Result<(), SavedPlanError> {
    crate::fsutil::write_atomic(path, to_json(plan).as_bytes(), 0o644).map_err(|source| {
        SavedPlanError::Write {
            path: path.display().to_string(),
            source,
        }
    })
}
