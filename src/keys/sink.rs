//! Where a secret access key goes: the only place it is ever written. Files are written
//! atomically with mode 0600; a command gets it on standard input.

use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sink {
    /// `{"AccessKeyId": ..., "SecretAccessKey": ..., "UserName": ...}`
    Json { path: PathBuf },
    /// The AWS shared-credentials format, under `[profile]`, merged into the file.
    Credentials { path: PathBuf, profile: String },
    /// `access_key_id:secret_access_key` (the form the Ably dashboard takes).
    Colon { path: PathBuf },
    /// A command that reads the JSON form on standard input (to hand the key to a secret
    /// store). It cannot be read back: the delivered key ID is recorded in a user tag.
    Command { argv: Vec<String> },
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Json { path } => write!(f, "json file {}", path.display()),
            Sink::Credentials { path, profile } => {
                write!(f, "credentials file {} [{profile}]", path.display())
            }
            Sink::Colon { path } => write!(f, "key:secret file {}", path.display()),
            Sink::Command { argv } => write!(f, "command `{}`", argv.join(" ")),
        }
    }
}

/// Why a sink could not be read or could not take a secret. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sink command is empty")]
    EmptyCommand,
    #[error("a command sink cannot be read back")]
    NotReadable,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot write to `{program}`: {source}")]
    Pipe {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` exited with {status}")]
    CommandFailed {
        program: String,
        status: std::process::ExitStatus,
    },
}

/// A sink file's directory, made (0700: it holds secrets) if it is missing.
fn make_dir(dir: &Path) -> Result<(), SinkError> {
    if dir.exists() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SinkError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// The executable a command names: a path as given, or the first match on PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| executable(p))
    })
}

/// A new key with its secret. Debug and Display never show the secret.
pub struct Secret {
    pub user: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Secret {{ user: {:?}, access_key_id: {:?}, secret_access_key: <redacted> }}",
            self.user, self.access_key_id
        )
    }
}

impl Sink {
    /// The file the sink writes, if it is a file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Sink::Json { path } | Sink::Colon { path } | Sink::Credentials { path, .. } => {
                Some(path)
            }
            Sink::Command { .. } => None,
        }
    }

    /// The git work tree the sink file is in, when git does not ignore the file there: a
    /// secret that could end up in a commit. `None` when it is ignored, outside any work
    /// tree, or git cannot tell.
    pub fn unignored_in_git(&self) -> Option<PathBuf> {
        let file = self.file()?;
        let tree = file
            .ancestors()
            .skip(1)
            .find(|d| d.join(".git").exists())?
            .to_path_buf();
        let status = Command::new("git")
            .arg("-C")
            .arg(&tree)
            .args(["check-ignore", "-q", "--no-index"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        // check-ignore: 0 ignored, 1 not ignored, anything else an error.
        (status.code() == Some(1)).then_some(tree)
    }

    /// Whether the key ID the sink holds can be read back (files) or must be recorded.
    pub fn readable(&self) -> bool {
        !matches!(self, Sink::Command { .. })
    }

    /// The access key ID the sink holds now, if any. Never returns the secret.
    pub fn held_key(&self) -> Result<Option<String>, SinkError> {
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SinkError::Read {
                path: p.to_path_buf(),
                source,
            }),
        };
        match self {
            Sink::Json { path } => Ok(read(path)?.and_then(|s| {
                serde_json::from_str::<serde_json::Value>(&s)
                    .ok()
                    .and_then(|v| {
                        v.get("AccessKeyId")
                            .and_then(|x| x.as_str())
                            .map(str::to_string)
                    })
            })),
            Sink::Colon { path } => Ok(
                read(path)?.and_then(|s| s.trim().split_once(':').map(|(id, _)| id.to_string()))
            ),
            Sink::Credentials { path, profile } => {
                Ok(read(path)?.and_then(|s| ini_get(&s, profile, "aws_access_key_id")))
            }
            Sink::Command { .. } => Ok(None),
        }
    }

    /// The key ID and secret a file sink holds, for smoke checks that start from a plan
    /// user's key. The secret stays in memory and is never printed.
    pub fn held_secret(&self) -> Result<Option<(String, String)>, SinkError> {
        let text = match self {
            Sink::Json { path } | Sink::Colon { path } | Sink::Credentials { path, .. } => {
                match std::fs::read_to_string(path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(SinkError::Read {
                            path: path.clone(),
                            source,
                        });
                    }
                }
            }
            Sink::Command { .. } => return Err(SinkError::NotReadable),
        };
        Ok(match self {
            Sink::Json { .. } => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    Some((
                        v.get("AccessKeyId")?.as_str()?.to_string(),
                        v.get("SecretAccessKey")?.as_str()?.to_string(),
                    ))
                }),
            Sink::Colon { .. } => text
                .trim()
                .split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string())),
            Sink::Credentials { profile, .. } => ini_get(&text, profile, "aws_access_key_id")
                .zip(ini_get(&text, profile, "aws_secret_access_key")),
            Sink::Command { .. } => None,
        })
    }

    /// Whether the sink can take a secret, found before anything is written to IAM: a file
    /// sink's directory is created (0700) and a scratch file written and removed there; a
    /// command sink's program must exist and be executable. A sink that fails only after a
    /// user was created leaves a half-applied stack.
    pub fn preflight(&self) -> Result<(), SinkError> {
        match self {
            Sink::Json { path } | Sink::Colon { path } | Sink::Credentials { path, .. } => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                make_dir(dir)?;
                let scratch = dir.join(format!(".iamplan-check-{}", std::process::id()));
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&scratch)
                    .and_then(|mut f| f.write_all(b"check"));
                let _ = std::fs::remove_file(&scratch);
                written.map_err(|source| SinkError::Write {
                    path: path.clone(),
                    source,
                })?;
                // An existing file must be replaceable too (the credentials sink reads it).
                if path.exists() {
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(path)
                        .map_err(|source| SinkError::Write {
                            path: path.clone(),
                            source,
                        })?;
                }
                Ok(())
            }
            Sink::Command { argv } => {
                let program = argv.first().ok_or(SinkError::EmptyCommand)?;
                if find_program(program).is_some() {
                    Ok(())
                } else {
                    Err(SinkError::Spawn {
                        program: program.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no such executable (on PATH, or at that path)",
                        ),
                    })
                }
            }
        }
    }

    /// Hands the secret over. On error nothing partial is left in a file sink.
    pub fn deliver(&self, secret: &Secret) -> Result<(), SinkError> {
        let json = || {
            serde_json::json!({
                "UserName": secret.user,
                "AccessKeyId": secret.access_key_id,
                "SecretAccessKey": secret.secret_access_key,
            })
            .to_string()
        };
        let write = |path: &Path, text: String| {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                make_dir(dir)?;
            }
            write_atomic(path, text.as_bytes(), 0o600).map_err(|source| SinkError::Write {
                path: path.to_path_buf(),
                source,
            })
        };
        match self {
            Sink::Json { path } => write(path, json() + "\n"),
            Sink::Colon { path } => write(
                path,
                format!("{}:{}\n", secret.access_key_id, secret.secret_access_key),
            ),
            Sink::Credentials { path, profile } => {
                let existing = match std::fs::read_to_string(path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(source) => {
                        return Err(SinkError::Read {
                            path: path.clone(),
                            source,
                        });
                    }
                };
                let merged = ini_set(
                    &existing,
                    profile,
                    &[
                        ("aws_access_key_id", &secret.access_key_id),
                        ("aws_secret_access_key", &secret.secret_access_key),
                    ],
                );
                write(path, merged)
            }
            Sink::Command { argv } => {
                let (prog, args) = argv.split_first().ok_or(SinkError::EmptyCommand)?;
                let program = || prog.clone();
                let mut child = Command::new(prog)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|source| SinkError::Spawn {
                        program: program(),
                        source,
                    })?;
                // Spawned with a piped stdin, so it is there.
                let written = match child.stdin.take() {
                    Some(mut stdin) => stdin.write_all(json().as_bytes()),
                    None => Ok(()),
                };
                let status = child.wait().map_err(|source| SinkError::Spawn {
                    program: program(),
                    source,
                })?;
                // A command that failed may have exited before reading: its exit status
                // says more than the broken pipe.
                if !status.success() {
                    return Err(SinkError::CommandFailed {
                        program: program(),
                        status,
                    });
                }
                written.map_err(|source| SinkError::Pipe {
                    program: program(),
                    source,
                })
            }
        }
    }
}

/// The value of `key` in `[section]` of an INI text.
fn ini_get(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            inside = t[1..t.len() - 1].trim() == section;
        } else if inside
            && let Some((k, v)) = t.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Sets keys in `[section]`, keeping every other line of the file as it was.
fn ini_set(text: &str, section: &str, values: &[(&str, &str)]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut inside = false;
    let mut found = false;
    let mut pending: Vec<(&str, &str)> = Vec::new();
    let flush = |out: &mut Vec<String>, pending: &mut Vec<(&str, &str)>| {
        // Insert missing keys right after the section's last non-blank line.
        let at = out
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map_or(out.len(), |i| i + 1);
        for (k, v) in pending.drain(..).rev() {
            out.insert(at, format!("{k} = {v}"));
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            if inside {
                flush(&mut out, &mut pending);
            }
            inside = t[1..t.len() - 1].trim() == section;
            if inside {
                found = true;
                pending = values.to_vec();
            }
            out.push(line.to_string());
            continue;
        }
        if inside
            && let Some((k, _)) = t.split_once('=')
            && let Some(i) = pending.iter().position(|(pk, _)| *pk == k.trim())
        {
            let (pk, v) = pending.remove(i);
            out.push(format!("{pk} = {v}"));
            continue;
        }
        out.push(line.to_string());
    }
    if inside {
        flush(&mut out, &mut pending);
    }
    if !found {
        if out.last().is_some_and(|l| !l.trim().is_empty()) {
            out.push(String::new());
        }
        out.push(format!("[{section}]"));
        for (k, v) in values {
            out.push(format!("{k} = {v}"));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret() -> Secret {
        Secret {
            user: "robot".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "s3cr3t/+x".into(),
        }
    }

    #[test]
    fn credentials_merge_keeps_other_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[robot]\naws_access_key_id = OLD\nregion = eu-west-1\n\n[other]\nx = 1\n").unwrap();
        let sink = Sink::Credentials {
            path: path.clone(),
            profile: "robot".into(),
        };
        sink.deliver(&secret()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[robot]\naws_access_key_id = AKIAEXAMPLE\nregion = eu-west-1\naws_secret_access_key = s3cr3t/+x\n\n[other]\nx = 1\n"
        );
        assert_eq!(sink.held_key().unwrap().as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn credentials_new_profile_is_appended() {
        assert_eq!(
            ini_set("[a]\nx = 1\n", "b", &[("k", "v")]),
            "[a]\nx = 1\n\n[b]\nk = v\n"
        );
        assert_eq!(ini_set("", "b", &[("k", "v")]), "[b]\nk = v\n");
    }

    #[test]
    fn json_and_colon_sinks_read_back_the_key_id() {
        let dir = tempfile::tempdir().unwrap();
        for sink in [
            Sink::Json {
                path: dir.path().join("k.json"),
            },
            Sink::Colon {
                path: dir.path().join("k.txt"),
            },
        ] {
            assert_eq!(sink.held_key().unwrap(), None);
            sink.deliver(&secret()).unwrap();
            assert_eq!(sink.held_key().unwrap().as_deref(), Some("AKIAEXAMPLE"));
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("k.txt")).unwrap(),
            "AKIAEXAMPLE:s3cr3t/+x\n"
        );
    }

    #[test]
    fn command_sink_gets_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let sink = Sink::Command {
            argv: vec!["sh".into(), "-c".into(), format!("cat > {}", out.display())],
        };
        sink.deliver(&secret()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["SecretAccessKey"], "s3cr3t/+x");
        let failing = Sink::Command {
            argv: vec!["false".into()],
        };
        let err = failing.deliver(&secret()).unwrap_err();
        assert!(matches!(err, SinkError::CommandFailed { .. }), "{err}");
    }

    #[test]
    fn unwritable_sink_fails_and_debug_hides_the_secret() {
        let sink = Sink::Json {
            path: PathBuf::from("/proc/version/k.json"),
        };
        let err = sink.deliver(&secret()).unwrap_err();
        assert!(matches!(
            err,
            SinkError::CreateDir { .. } | SinkError::Write { .. }
        ));
        assert!(!err.to_string().contains("s3cr3t"));
        assert!(!format!("{err:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", secret()).contains("s3cr3t"));
    }
}
