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
    Command {
        argv: Vec<String>,
        /// Seconds the command may take before it is killed and the delivery fails
        /// (`timeout_seconds`; `DEFAULT_COMMAND_TIMEOUT` when not given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
}

/// How long a command sink may take by default: a store that hangs must not hold the
/// stack's lock forever.
pub const DEFAULT_COMMAND_TIMEOUT: u64 = 60;

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
            Sink::Command { argv, .. } => write!(f, "command `{}`", argv.join(" ")),
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
    #[error(
        "`{program}` did not finish within {seconds} seconds and was killed (raise `timeout_seconds` in the sink if the store is slow)"
    )]
    TimedOut { program: String, seconds: u64 },
    #[error("`{program}` was killed: apply was interrupted")]
    Interrupted { program: String },
    #[error(
        "`{program}` exited with success without reading its input ({unread} of {total} bytes left unread): the key went nowhere"
    )]
    Unread {
        program: String,
        unread: usize,
        total: usize,
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

/// The file a write to `path` must replace: `path` itself, or, when it is a symbolic link
/// (a credentials sink pointing at `~/.aws/credentials`), the file the link leads to,
/// followed link by link. Renaming a new file over the link itself would turn it into a
/// copy that the real file never sees.
pub fn link_target(path: &Path) -> Result<PathBuf, SinkError> {
    let mut p = path.to_path_buf();
    // As the kernel does (ELOOP): a cycle of links is an error, not a loop.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|source| SinkError::Read {
                    path: p.clone(),
                    source,
                })?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(SinkError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other("too many levels of symbolic links"),
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
                let target = link_target(path)?;
                let dir = target
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
            Sink::Command { argv, .. } => {
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
            let path = link_target(path)?;
            let path = path.as_path();
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
            Sink::Command {
                argv,
                timeout_seconds,
            } => {
                remember_secret(&secret.secret_access_key);
                let timeout = timeout_seconds.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
                run_command(argv, json().as_bytes(), timeout, &secret.user)
            }
        }
    }
}

/// Secrets this process has handed to a sink (and the caller's own, from the environment):
/// a command's standard error is cleaned of all of them before it is shown, whichever
/// command prints them.
static KNOWN_SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn remember_secret(secret: &str) {
    if let Ok(mut known) = KNOWN_SECRETS.lock()
        && !known.iter().any(|k| k == secret)
    {
        known.push(secret.to_string());
    }
}

fn known_secrets() -> Vec<String> {
    let mut all = KNOWN_SECRETS.lock().map(|k| k.clone()).unwrap_or_default();
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            all.push(v);
        }
    }
    all
}

const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of each secret replaced, also as JSON may escape it
/// (`\/` for `/`), and with a trailing fragment that starts a secret (output cut short)
/// removed too.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), REDACTED);
        let escaped = s.replace('/', "\\/");
        if escaped != *s {
            out = out.replace(&escaped, REDACTED);
        }
    }
    // Four characters of a secret say little; more at the very end is a secret cut off.
    for s in secrets.iter().filter(|s| s.len() > 4) {
        for n in (5..s.len()).rev() {
            if let Some(prefix) = s.get(..n)
                && out.ends_with(prefix)
            {
                out.truncate(out.len() - n);
                out.push_str(REDACTED);
                break;
            }
        }
    }
    out
}

/// Set by the first Ctrl-C or SIGTERM: a command sink still running is killed, so that an
/// interrupted apply ends (the undelivered key is deleted) and gives back the lock.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Process groups of the command sinks running now.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Kills the command sinks running now and any started later in this process.
pub fn interrupt_commands() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Ok(running) = RUNNING.lock() {
        for &group in running.iter() {
            kill_group(group);
        }
    }
}

fn kill_group(group: i32) {
    // SAFETY: killpg only sends a signal; `group` is a process group this process made.
    unsafe {
        libc::killpg(group, libc::SIGKILL);
    }
}

/// Runs a command sink: the secret's JSON on its standard input, its standard error
/// captured (and shown without secrets), at most `timeout` seconds. It succeeds only when
/// the command exits with success having read its whole input.
fn run_command(argv: &[String], input: &[u8], timeout: u64, user: &str) -> Result<(), SinkError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let (prog, args) = argv.split_first().ok_or(SinkError::EmptyCommand)?;
    let program = || prog.clone();
    let spawn_err = |source| SinkError::Spawn {
        program: program(),
        source,
    };
    let (reader, mut writer) = std::io::pipe().map_err(spawn_err)?;
    // A read end of our own, to look once the command has ended for input it left unread
    // (holding it does not keep the command from seeing the end of its input).
    let mut unread = reader.try_clone().map_err(spawn_err)?;
    let mut command = Command::new(prog);
    command
        .args(args)
        .stdin(Stdio::from(reader))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a time-out kills what the command started too (a shell's
        // children), not only the shell.
        .process_group(0);
    let mut child = command.spawn().map_err(spawn_err)?;
    drop(command);
    let group = child.id() as i32;
    if let Ok(mut running) = RUNNING.lock() {
        running.push(group);
    }
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            // Bounded: a command that floods its standard error is not kept whole.
            const CAP: usize = 64 * 1024;
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            kept
        })
    });
    // The input is a few hundred bytes, less than any pipe holds: this does not block,
    // and a command that exits without reading does not make it fail (we hold a read end).
    let written = writer.write_all(input);
    drop(writer);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let ended = loop {
        match child.try_wait() {
            // Killed by `interrupt_commands` itself: say why.
            Ok(Some(status))
                if !status.success() && INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                break Err(SinkError::Interrupted { program: program() });
            }
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(source) => break Err(spawn_err(source)),
        }
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            kill_group(group);
            let _ = child.wait();
            break Err(SinkError::Interrupted { program: program() });
        }
        if std::time::Instant::now() >= deadline {
            kill_group(group);
            let _ = child.wait();
            break Err(SinkError::TimedOut {
                program: program(),
                seconds: timeout,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if let Ok(mut running) = RUNNING.lock() {
        running.retain(|g| *g != group);
    }
    if let Some(reading) = stderr {
        // A background process the command left may hold its standard error open: what
        // came within a moment is shown, the rest is not waited for.
        let waited = std::time::Instant::now();
        while !reading.is_finished() && waited.elapsed() < std::time::Duration::from_secs(1) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if reading.is_finished()
            && let Ok(bytes) = reading.join()
        {
            let text = redact(&String::from_utf8_lossy(&bytes), &known_secrets());
            for line in text.lines() {
                eprintln!("sink `{prog}` of user {user}: {line}");
            }
        }
    }
    let status = ended?;
    // A command that failed may have exited before reading: its exit status says more
    // than the broken pipe.
    if !status.success() {
        return Err(SinkError::CommandFailed {
            program: program(),
            status,
        });
    }
    written.map_err(|source| SinkError::Pipe {
        program: program(),
        source,
    })?;
    // The writer is closed, so this read cannot block: 0 means the command read it all.
    let mut rest = Vec::new();
    let left = unread.read_to_end(&mut rest).unwrap_or(0);
    if left > 0 {
        return Err(SinkError::Unread {
            program: program(),
            unread: left,
            total: input.len(),
        });
    }
    Ok(())
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

    /// A credentials sink whose path is a link to the real file (`~/.aws/credentials` from
    /// the plan directory): the real file gets the profile, the link stays a link.
    #[test]
    fn a_linked_sink_is_written_through_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("aws");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("credentials");
        std::fs::write(&real, "[default]\naws_access_key_id = A\n").unwrap();
        let link = dir.path().join("plan").join("credentials");
        std::fs::create_dir(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("../aws/credentials", &link).unwrap();
        let sink = Sink::Credentials {
            path: link.clone(),
            profile: "robot".into(),
        };
        sink.preflight().unwrap();
        sink.deliver(&secret()).unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(
            text.starts_with("[default]\naws_access_key_id = A\n"),
            "{text}"
        );
        assert!(
            text.contains("[robot]\naws_access_key_id = AKIAEXAMPLE"),
            "{text}"
        );
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Nothing else was left in either directory (the temporary file went to the target's).
        assert_eq!(std::fs::read_dir(&real_dir).unwrap().count(), 1);
        assert_eq!(
            std::fs::read_dir(link.parent().unwrap()).unwrap().count(),
            1
        );
        // A link to a file not yet written: the file is made where the link points.
        let dangling = dir.path().join("k.json");
        std::os::unix::fs::symlink("aws/k.json", &dangling).unwrap();
        let sink = Sink::Json {
            path: dangling.clone(),
        };
        sink.deliver(&secret()).unwrap();
        assert!(
            dangling
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(sink.held_key().unwrap().as_deref(), Some("AKIAEXAMPLE"));
        assert!(real_dir.join("k.json").is_file());
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
            timeout_seconds: None,
        };
        sink.deliver(&secret()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["SecretAccessKey"], "s3cr3t/+x");
        let failing = Sink::Command {
            argv: vec!["false".into()],
            timeout_seconds: None,
        };
        let err = failing.deliver(&secret()).unwrap_err();
        assert!(matches!(err, SinkError::CommandFailed { .. }), "{err}");
    }

    fn command(script: &str, timeout_seconds: Option<u64>) -> Sink {
        Sink::Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            timeout_seconds,
        }
    }

    #[test]
    fn a_command_that_leaves_its_input_unread_fails() {
        for script in ["true", "head -c 5 > /dev/null"] {
            let err = command(script, None).deliver(&secret()).unwrap_err();
            assert!(matches!(err, SinkError::Unread { .. }), "{script}: {err}");
        }
        command("cat > /dev/null", None).deliver(&secret()).unwrap();
    }

    #[test]
    fn a_command_that_hangs_is_killed_at_its_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        // The shell's child (sleep) must die too, not only the shell.
        let script = format!(
            "cat > /dev/null; sleep 600 & echo $! > {}; wait",
            pid.display()
        );
        let err = command(&script, Some(1)).deliver(&secret()).unwrap_err();
        assert!(
            matches!(err, SinkError::TimedOut { seconds: 1, .. }),
            "{err}"
        );
        let sleeper: i32 = std::fs::read_to_string(&pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL lands asynchronously and an orphan is reaped by init when it gets to it:
        // gone or a zombie, both dead (the bound only stops a broken test from hanging).
        let dead = || {
            let state =
                std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            state.is_empty() || state.split(' ').nth(2) == Some("Z")
        };
        let mut tries = 0;
        while !dead() && tries < 500 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            tries += 1;
        }
        assert!(dead(), "sleep {sleeper} still runs after the time-out");
    }

    #[test]
    fn redaction_removes_secrets_also_escaped_and_cut_off() {
        let secrets = vec!["s3cr3t/+xyz".to_string()];
        assert_eq!(
            redact("got {\"S\":\"s3cr3t/+xyz\"} and s3cr3t\\/+xyz", &secrets),
            "got {\"S\":\"<redacted>\"} and <redacted>"
        );
        assert_eq!(redact("cut: s3cr3t/", &secrets), "cut: <redacted>");
        assert_eq!(redact("plain s3cr", &secrets), "plain s3cr");
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
