//! Test harness: a real emulator per test (started with `localstack/up` on a free port,
//! stopped on drop) and helpers to run the built binary against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Emulator {
    pub flavor: String,
    pub port: String,
    pub env: Vec<(String, String)>,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Emulator {
    /// Starts an emulator; a test that needs one and cannot get it fails here, loudly.
    pub fn start(flavor: &str) -> Emulator {
        Self::start_with(flavor, &[])
    }

    pub fn start_with(flavor: &str, extra: &[&str]) -> Emulator {
        let out = Command::new(repo().join("localstack/up"))
            .args(["--flavor", flavor, "--port", "0"])
            .args(extra)
            .output()
            .expect("cannot run localstack/up");
        assert!(
            out.status.success(),
            "the {flavor} emulator could not be started by localstack/up, and this test needs it:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(kv) = line.strip_prefix("export ")
                && let Some((k, v)) = kv.split_once('=')
            {
                env.push((k.to_string(), v.to_string()));
            }
        }
        let port = env
            .iter()
            .find(|(k, _)| k == "IAMPLAN_EMULATOR_PORT")
            .map(|(_, v)| v.clone())
            .expect("localstack/up printed no port");
        Emulator {
            flavor: flavor.to_string(),
            port,
            env,
        }
    }

    pub fn endpoint(&self) -> String {
        self.var("AWS_ENDPOINT_URL")
    }

    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Runs `iamplan ARGS` against this emulator.
    pub fn iamplan(&self, args: &[&str]) -> Run {
        self.iamplan_env(args, &[])
    }

    /// `iamplan ARGS` set up to reach this emulator, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = iamplan_command(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn iamplan_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("cannot run the iamplan binary");
        Run::from(out)
    }

    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(
            &self
                .sdk_config(
                    &self.var("AWS_ACCESS_KEY_ID"),
                    &self.var("AWS_SECRET_ACCESS_KEY"),
                )
                .await,
        )
    }

    pub async fn sdk_config(&self, key: &str, secret: &str) -> aws_config::SdkConfig {
        let creds = aws_credential_types::Credentials::new(key, secret, None, None, "test");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("localstack/down"))
            .args(["--port", &self.port])
            .output();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it is not the expected one.
    pub fn expect(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code, code,
            "{what}: expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `iamplan ARGS` without the caller's profile or session token, and without colour.
pub fn iamplan_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iamplan"));
    cmd.args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("NO_COLOR", "1");
    cmd
}

/// A helper process from tests/support, stopped when dropped.
pub struct Helper(std::process::Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `python3 tests/support/forward.py ARGS`, which prints the port it listens on.
pub fn start_forwarder(args: &[&str]) -> (Helper, String) {
    start_support("forward.py", args)
}

/// Starts `python3 tests/support/SCRIPT ARGS`, which prints the port it listens on.
pub fn start_support(script: &str, args: &[&str]) -> (Helper, String) {
    start_script(&repo().join("tests/support").join(script), args)
}

/// Starts a Python helper that prints the port it listens on first.
pub fn start_script(script: &Path, args: &[&str]) -> (Helper, String) {
    use std::io::BufRead;
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3, for tests/support");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the forwarder's port");
    (Helper(child), line.trim().to_string())
}

/// API calls by operation, from the `API calls:` line `--stats` prints.
pub fn api_calls(stderr: &str) -> std::collections::BTreeMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("API calls:"))
        .unwrap_or_else(|| panic!("no API calls line in:\n{stderr}"));
    line.trim_start_matches("API calls: ")
        .split(" (total")
        .next()
        .unwrap_or("")
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a count")))
        .collect()
}

/// A standard output whose reader is already gone, as `| head -1` leaves it once `head`
/// has read its line: every write gets EPIPE, at once and every time.
pub fn closed_stdout() -> std::process::Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe()");
    unsafe { libc::close(fds[0]) };
    std::process::Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
}

/// Runs `cmd` twice, with its standard output read and with it closed, and checks that
/// a closed output changes nothing but the output: the same exit code, no panic, no
/// complaint about the pipe.
pub fn same_with_closed_stdout(mut cmd: Command, what: &str) -> Output {
    let read = cmd.output().expect("run iamplan");
    let closed = cmd
        .stdout(closed_stdout())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run iamplan");
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(
        closed.status.code(),
        read.status.code(),
        "{what} with its output closed: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.to_lowercase().contains("broken pipe"),
        "{what} with its output closed: {stderr}"
    );
    read
}
