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
    #[error(
        "--out {path}: {path} {what}, and a saved plan would replace it; nothing was read or written: give --out a new file, e.g. --out plan.json (or remove {path} first)"
    )]
    WouldReplace { path: String, what: &'static str },
}

/// Refuses to write a saved plan where it would destroy something else: `--out main.toml`
/// once replaced a plan file with the saved plan's JSON. Only an earlier saved plan (of
/// any format version) is replaced; a new `.toml` file is refused too, since the next
/// `plan` of its directory would read the JSON as a plan file.
pub fn check_out(path: &Path) -> Result<(), SavedPlanError> {
    let shown = || path.display().to_string();
    let refuse = |what| {
        Err(SavedPlanError::WouldReplace {
            path: shown(),
            what,
        })
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            {
                refuse("would be read as a plan file (it ends in .toml)")
            } else {
                Ok(())
            };
        }
        Err(source) => {
            return Err(SavedPlanError::Read {
                path: shown(),
                source,
            });
        }
    };
    if meta.is_dir() {
        return refuse("is a directory");
    }
    if !meta.is_file() {
        return refuse("is not a regular file");
    }
    let text = std::fs::read(path).map_err(|source| SavedPlanError::Read {
        path: shown(),
        source,
    })?;
    let saved = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("format_version").is_some() && v.get("iamplan_version").is_none());
    if saved {
        Ok(())
    } else if text.is_empty() {
        // An empty file holds nothing to lose (`mktemp`, or a plan saved by a run killed
        // before writing).
        Ok(())
    } else if serde_json::from_slice::<serde_json::Value>(&text).is_ok() {
        refuse("is JSON but not a saved plan")
    } else {
        refuse("is not a saved plan (a plan file?)")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &Path) -> String {
        match check_out(path) {
            Err(e @ SavedPlanError::WouldReplace { .. }) => e.to_string(),
            other => panic!("{} was not refused: {other:?}", path.display()),
        }
    }

    #[test]
    fn out_replaces_only_a_saved_plan() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("main.toml");
        std::fs::write(&toml, "[stack]\nname = \"s\"\n").unwrap();
        let e = refused(&toml);
        assert!(e.contains("is not a saved plan (a plan file?)"), "{e}");
        assert!(e.contains("--out plan.json"), "{e}");
        // The same TOML under a name that does not say so.
        let other = dir.path().join("plan");
        std::fs::copy(&toml, &other).unwrap();
        refused(&other);

        let json_plan = dir.path().join("plan-view.json");
        std::fs::write(
            &json_plan,
            r#"{"format_version":"1.0","iamplan_version":"0.1"}"#,
        )
        .unwrap();
        assert!(refused(&json_plan).contains("is JSON but not a saved plan"));
        assert!(refused(dir.path()).contains("is a directory"));
        assert!(refused(&dir.path().join("new.toml")).contains("ends in .toml"));

        let saved = dir.path().join("plan.json");
        std::fs::write(&saved, r#"{"format_version": 1, "stack": "s"}"#).unwrap();
        check_out(&saved).unwrap();
        check_out(&dir.path().join("new.json")).unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        check_out(&empty).unwrap();
    }
}
