//! What the benchmarks share: an emulator per run, the release binary run with its peak
//! RSS and statistics, and the generated stacks.
#![allow(dead_code)]

use aws_sdk_iam::Client;
use futures::StreamExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub struct Emulator {
    pub port: String,
    pub env: Vec<(String, String)>,
}

impl Emulator {
    pub fn start() -> Emulator {
        let out = Command::new("localstack/up")
            .args(["--port", "0", "--no-functions"])
            .output()
            .expect("localstack/up");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.strip_prefix("export ")?
                    .split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let port = env
            .iter()
            .find(|(k, _)| k == "IAMPLAN_EMULATOR_PORT")
            .unwrap()
            .1
            .clone();
        Emulator { port, env }
    }
    pub fn endpoint(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .unwrap()
            .1
            .clone()
    }
    pub async fn iam(&self) -> Client {
        let creds = aws_credential_types::Credentials::new("test", "test", None, None, "bench");
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .load()
            .await;
        Client::new(&conf)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new("localstack/down")
            .args(["--port", &self.port])
            .output();
    }
}

/// One run of the iamplan binary: wall time, peak RSS, API calls and local time.
pub struct Run {
    pub code: i32,
    pub secs: f64,
    pub rss_mb: f64,
    pub calls: String,
    pub total_calls: u64,
    /// Throttling errors iamplan saw (its --stats).
    pub throttled: u64,
    pub local_ms: f64,
    /// Of the local work: classifying what policy changes do to access.
    pub access_ms: f64,
}

pub fn iamplan(emu: &Emulator, args: &[&str]) -> Run {
    iamplan_env(&emu.env, args)
}

/// Runs the release binary with these environment variables (an emulator's, possibly
/// pointed at a proxy).
// The child is reaped with wait4 (for its own peak RSS), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn iamplan_env(env: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd = Command::new("target/release/iamplan");
    cmd.args(args).arg("--stats").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = cmd
        .spawn()
        .expect("target/release/iamplan (run cargo build --release)");
    let pid = child.id() as i32;
    // wait4 gives this child's own peak RSS.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let stderr = child.stderr;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    let stderr = reader.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && matches!(libc::WEXITSTATUS(status), 0 | 2),
        "iamplan {args:?} failed:\n{stderr}"
    );
    let calls_line = stderr
        .lines()
        .find(|l| l.starts_with("API calls:"))
        .unwrap_or("")
        .to_string();
    let total_calls = calls_line
        .rsplit("total ")
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .unwrap_or(0);
    let calls = calls_line
        .trim_start_matches("API calls: ")
        .split(" (total")
        .next()
        .unwrap_or("")
        .to_string();
    let local_ms = stderr
        .lines()
        .find(|l| l.starts_with("time:"))
        .map(|l| {
            ["parse", "diff", "render"]
                .iter()
                .filter_map(|k| {
                    l.split(&format!("{k} "))
                        .nth(1)?
                        .split(' ')
                        .next()?
                        .parse::<f64>()
                        .ok()
                })
                .sum()
        })
        .unwrap_or(0.0);
    let throttled = stderr
        .lines()
        .find_map(|l| l.strip_prefix("throttled: "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let access_ms = stderr
        .lines()
        .find(|l| l.starts_with("time:"))
        .and_then(|l| l.split("(access ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    Run {
        code: libc::WEXITSTATUS(status),
        throttled,
        access_ms,
        secs,
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
        calls,
        total_calls,
        local_ms,
    }
}

pub fn generate(dir: &Path, n: usize) {
    use std::fmt::Write;
    let policies = (n / 10).max(1);
    let users = (n / 5).max(1);
    let mut t = String::from("[stack]\nname = \"bench\"\n");
    for p in 0..policies {
        let _ = write!(
            t,
            "[policy.bp{p}]\n[[policy.bp{p}.statement]]\naction = \"s3:GetObject\"\nresource = \"arn:aws:s3:::bench-{p}/*\"\n"
        );
    }
    for r in 0..n {
        let _ = write!(
            t,
            "[role.br{r}]\nmanaged_policies = [\"bp{}\"]\n[role.br{r}.trust]\naccounts = [\"111122223333\"]\n\
             [role.br{r}.inline.own]\n[[role.br{r}.inline.own.statement]]\naction = \"sqs:SendMessage\"\nresource = \"arn:aws:sqs:us-east-1:111122223333:q{r}\"\n",
            r % policies
        );
    }
    for u in 0..users {
        let _ = write!(
            t,
            "[user.bu{u}]\n[user.bu{u}.access_keys]\nsink = {{ type = \"json\", path = \"keys/bu{u}.json\" }}\n"
        );
    }
    std::fs::write(dir.join("plan.toml"), t).unwrap();
}

/// Runs `f(0..n)` with `concurrency` in flight; the seconds it took.
pub async fn concurrently<F, Fut>(n: usize, concurrency: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    futures::stream::iter((0..n).map(f))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    started.elapsed().as_secs_f64()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The unavoidable calls of a create: one per resource and attachment, `concurrency` at once.
pub async fn floor_create(iam: &Client, n: usize, concurrency: usize) -> f64 {
    let (policies, users) = ((n / 10).max(1), (n / 5).max(1));
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    let mut secs = concurrently(policies, concurrency, |p| async move {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bench-{p}/*"}}]}}"#);
        iam.create_policy().policy_name(format!("fp{p}")).policy_document(doc).send().await.unwrap();
    })
    .await;
    secs += concurrently(n + users, concurrency, |i| async move {
        if i < n {
            iam.create_role()
                .role_name(format!("fr{i}"))
                .assume_role_policy_document(trust)
                .send()
                .await
                .unwrap();
        } else {
            iam.create_user()
                .user_name(format!("fu{}", i - n))
                .send()
                .await
                .unwrap();
        }
    })
    .await;
    secs += concurrently(2 * n + users, concurrency, |i| async move {
        if i < n {
            let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:q{i}"}}]}}"#);
            iam.put_role_policy().role_name(format!("fr{i}")).policy_name("own").policy_document(doc).send().await.unwrap();
        } else if i < 2 * n {
            let r = i - n;
            let arn = format!("arn:aws:iam::000000000000:policy/fp{}", r % policies);
            iam.attach_role_policy().role_name(format!("fr{r}")).policy_arn(arn).send().await.unwrap();
        } else {
            iam.create_access_key().user_name(format!("fu{}", i - 2 * n)).send().await.unwrap();
        }
    })
    .await;
    secs
}

/// Reads every GetAccountAuthorizationDetails page; whether every policy came with its
/// description (MiniStack leaves them out, and a tool must then list the policies too).
pub async fn authorization_pages(iam: &Client) -> bool {
    let mut marker = None;
    let mut described = true;
    loop {
        let page = iam
            .get_account_authorization_details()
            .max_items(1000)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        described &= page.policies().iter().all(|p| p.description().is_some());
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => return described,
        }
    }
}
