//! The scale benchmark (BENCHMARKS.md): stacks of N roles (trust policy, one inline policy,
//! one managed-policy attachment), N/10 managed policies and N/5 users with one access key
//! each, against MiniStack. For each size it measures iamplan's apply (create), no-change
//! plan, plan with 10% drift and apply (delete), and the floor: only the API calls the
//! operation cannot avoid, made directly with the SDK at the same concurrency.
//!
//!     cargo build --release && cargo run --release --example bench -- 10,100,1000,5000
//!
//! Prints a Markdown table (and writes it to target/bench.md).

use aws_sdk_iam::Client;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CONCURRENCY: usize = 4; // iamplan's default --parallelism

struct Emulator {
    port: String,
    env: Vec<(String, String)>,
}

impl Emulator {
    fn start() -> Emulator {
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
    fn endpoint(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .unwrap()
            .1
            .clone()
    }
    async fn iam(&self) -> Client {
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
struct Run {
    code: i32,
    secs: f64,
    rss_mb: f64,
    calls: String,
    total_calls: u64,
    local_ms: f64,
}

// The child is reaped with wait4 (for its own peak RSS), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn iamplan(emu: &Emulator, args: &[&str]) -> Run {
    let mut cmd = Command::new("target/release/iamplan");
    cmd.args(args).arg("--stats").env("NO_COLOR", "1");
    for (k, v) in &emu.env {
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
    Run {
        code: libc::WEXITSTATUS(status),
        secs,
        rss_mb: usage.ru_maxrss as f64 / 1024.0,
        calls,
        total_calls,
        local_ms,
    }
}

fn generate(dir: &Path, n: usize) {
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

async fn concurrently<F, Fut>(n: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    futures::stream::iter((0..n).map(f))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    started.elapsed().as_secs_f64()
}

/// The unavoidable calls of a create: one per resource and attachment, same concurrency.
async fn floor_create(iam: &Client, n: usize) -> f64 {
    let (policies, users) = ((n / 10).max(1), (n / 5).max(1));
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    let mut secs = concurrently(policies, |p| async move {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bench-{p}/*"}}]}}"#);
        iam.create_policy().policy_name(format!("fp{p}")).policy_document(doc).send().await.unwrap();
    })
    .await;
    secs += concurrently(n + users, |i| async move {
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
    secs += concurrently(2 * n + users, |i| async move {
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

/// The unavoidable calls of a no-change plan: GetAccountAuthorizationDetails pages and one
/// ListAccessKeys per managed user.
async fn floor_read(iam: &Client, users: usize) -> f64 {
    let started = Instant::now();
    let mut marker = None;
    loop {
        let page = iam
            .get_account_authorization_details()
            .max_items(1000)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let gaad = started.elapsed().as_secs_f64();
    gaad + concurrently(users, |u| async move {
        iam.list_access_keys()
            .user_name(format!("fu{u}"))
            .send()
            .await
            .unwrap();
    })
    .await
}

/// The unavoidable calls of a delete: detach, delete inline, delete keys, then the
/// roles, users and policies.
async fn floor_delete(iam: &Client, n: usize) -> f64 {
    let (policies, users) = ((n / 10).max(1), (n / 5).max(1));
    let keys: Vec<String> = futures::stream::iter(0..users)
        .map(|u| async move {
            let out = iam
                .list_access_keys()
                .user_name(format!("fu{u}"))
                .send()
                .await
                .unwrap();
            out.access_key_metadata()[0]
                .access_key_id()
                .unwrap()
                .to_string()
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let keys = &keys;
    let mut secs = concurrently(2 * n + users, |i| async move {
        if i < n {
            iam.delete_role_policy()
                .role_name(format!("fr{i}"))
                .policy_name("own")
                .send()
                .await
                .unwrap();
        } else if i < 2 * n {
            let r = i - n;
            let arn = format!("arn:aws:iam::000000000000:policy/fp{}", r % policies);
            iam.detach_role_policy()
                .role_name(format!("fr{r}"))
                .policy_arn(arn)
                .send()
                .await
                .unwrap();
        } else {
            let u = i - 2 * n;
            let _ = iam
                .delete_access_key()
                .user_name(format!("fu{u}"))
                .access_key_id(&keys[u])
                .send()
                .await;
        }
    })
    .await;
    secs += concurrently(n + users, |i| async move {
        if i < n {
            iam.delete_role()
                .role_name(format!("fr{i}"))
                .send()
                .await
                .unwrap();
        } else {
            iam.delete_user()
                .user_name(format!("fu{}", i - n))
                .send()
                .await
                .unwrap();
        }
    })
    .await;
    secs += concurrently(policies, |p| async move {
        iam.delete_policy()
            .policy_arn(format!("arn:aws:iam::000000000000:policy/fp{p}"))
            .send()
            .await
            .unwrap();
    })
    .await;
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Row {
    size: usize,
    op: &'static str,
    secs: f64,
    floor: f64,
    calls: u64,
    detail: String,
    rss: f64,
    local_ms: f64,
}

async fn bench_size(n: usize, rows: &mut Vec<Row>) {
    let runs = if n >= 5000 { 3 } else { 5 };
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), n);
    let plan = dir.path().to_str().unwrap().to_string();
    let tool = Emulator::start();
    let floor_emu = Emulator::start();
    let floor_iam = floor_emu.iam().await;
    let users = (n / 5).max(1);

    let create = iamplan(&tool, &["apply", &plan, "--auto-approve"]);
    let f_create = floor_create(&floor_iam, n).await;
    rows.push(Row {
        size: n,
        op: "apply (create all)",
        secs: create.secs,
        floor: f_create,
        calls: create.total_calls,
        detail: create.calls,
        rss: create.rss_mb,
        local_ms: create.local_ms,
    });

    let plans: Vec<Run> = (0..runs)
        .map(|_| iamplan(&tool, &["plan", &plan, "--detailed-exitcode"]))
        .collect();
    let mut floors = Vec::new();
    for _ in 0..runs {
        floors.push(floor_read(&floor_iam, users).await);
    }
    let last = plans.last().unwrap();
    rows.push(Row {
        size: n,
        op: "plan (no changes)",
        secs: median(plans.iter().map(|r| r.secs).collect()),
        floor: median(floors.clone()),
        calls: last.total_calls,
        detail: last.calls.clone(),
        rss: plans.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
        local_ms: median(plans.iter().map(|r| r.local_ms).collect()),
    });

    // Export what the stack owns, with the same read; the exported files must plan clean
    // (the round trip of a generated account).
    let out = dir.path().join("exported");
    let exports: Vec<Run> = (0..runs)
        .map(|i| {
            let out = out.join(i.to_string());
            iamplan(
                &tool,
                &[
                    "export",
                    "--stack",
                    "bench",
                    "--owned-by",
                    "bench",
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
        })
        .collect();
    let exported = out.join("0");
    let replan = iamplan(
        &tool,
        &["plan", exported.to_str().unwrap(), "--detailed-exitcode"],
    );
    assert_eq!(replan.code, 0, "the exported files do not plan clean");
    let last = exports.last().unwrap();
    rows.push(Row {
        size: n,
        op: "export (what the stack owns)",
        secs: median(exports.iter().map(|r| r.secs).collect()),
        floor: median(floors.clone()),
        calls: last.total_calls,
        detail: last.calls.clone(),
        rss: exports.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
        local_ms: median(exports.iter().map(|r| r.local_ms).collect()),
    });

    // 10% drift out of band: inline policies rewritten.
    let iam = tool.iam().await;
    let drift = (n / 10).max(1);
    concurrently(drift, |r| {
        let iam = iam.clone();
        async move {
            let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#;
            iam.put_role_policy().role_name(format!("br{r}")).policy_name("own").policy_document(doc).send().await.unwrap();
        }
    })
    .await;
    let drifted: Vec<Run> = (0..runs)
        .map(|_| iamplan(&tool, &["plan", &plan, "--detailed-exitcode"]))
        .collect();
    let last = drifted.last().unwrap();
    rows.push(Row {
        size: n,
        op: "plan (10% drifted)",
        secs: median(drifted.iter().map(|r| r.secs).collect()),
        floor: median(floors),
        calls: last.total_calls,
        detail: last.calls.clone(),
        rss: drifted.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
        local_ms: median(drifted.iter().map(|r| r.local_ms).collect()),
    });

    std::fs::write(dir.path().join("plan.toml"), "[stack]\nname = \"bench\"\n").unwrap();
    let delete = iamplan(
        &tool,
        &["apply", &plan, "--auto-approve", "--allow-delete-all"],
    );
    let f_delete = floor_delete(&floor_iam, n).await;
    rows.push(Row {
        size: n,
        op: "apply (delete all)",
        secs: delete.secs,
        floor: f_delete,
        calls: delete.total_calls,
        detail: delete.calls,
        rss: delete.rss_mb,
        local_ms: delete.local_ms,
    });

    // The speed-up of bounded concurrency over one call at a time (at 1,000 roles).
    if n == 1000 {
        generate(dir.path(), n);
        let serial = iamplan(
            &tool,
            &["apply", &plan, "--auto-approve", "--parallelism", "1"],
        );
        rows.push(Row {
            size: n,
            op: "apply (create all, --parallelism 1)",
            secs: serial.secs,
            floor: f_create,
            calls: serial.total_calls,
            detail: format!(
                "{} (speed-up of the default --parallelism 4: {:.2}x)",
                serial.calls,
                serial.secs / create.secs
            ),
            rss: serial.rss_mb,
            local_ms: serial.local_ms,
        });
    }
    eprintln!("size {n} done");
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10,100,1000,5000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes: comma-separated numbers"))
        .collect();
    assert!(
        Path::new("target/release/iamplan").exists(),
        "run `cargo build --release` first"
    );
    let mut rows = Vec::new();
    for n in sizes {
        bench_size(n, &mut rows).await;
    }
    let mut md = String::from(
        "| roles | operation | iamplan (s) | floor (s) | ratio | API calls | peak RSS (MB) | local work (ms) |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} | {} | {:.1} | {:.1} |\n",
            r.size,
            r.op,
            r.secs,
            r.floor,
            r.secs / r.floor.max(1e-9),
            r.calls,
            r.rss,
            r.local_ms
        ));
    }
    md.push_str("\nCalls by operation:\n\n");
    for r in &rows {
        md.push_str(&format!("- {} roles, {}: {}\n", r.size, r.op, r.detail));
    }
    println!("{md}");
    let out = PathBuf::from("target/bench.md");
    std::fs::write(&out, &md).unwrap();
}
