//! The benchmark under real-AWS conditions (BENCHMARKS.md, "Real-AWS conditions"): every
//! call of iamplan and of the floor goes through `tools/realaws/proxy.py`, which adds a
//! round trip (60 ms +- 15 by default) and answers `Throttling` from per-account, per-API
//! token buckets. Stacks as in `bench` (N roles, N/10 policies, N/5 users with a key).
//!
//!     cargo build --release && cargo run --release --example realaws
//!     cargo run --release --example realaws -- --sizes 10,100 --accounts 1,10 --latency-ms 60
//!     cargo run --release --example realaws -- --reads-only     # no creates through the proxy
//!
//! The floor is a raw SDK client (the SDK's standard retry mode, so it survives throttling)
//! making only the calls the operation cannot avoid, at the fixed concurrency that was
//! fastest for it among 2, 4, 8 and 16 (tried on up to 100 roles). Creates above 1,000 roles
//! are not run through the proxy (they take minutes under the modelled buckets): those
//! stacks are made directly at the emulator and only read through the proxy.
//!
//! Prints a Markdown table and writes it to target/realaws.md.

mod support;

use aws_sdk_iam::Client;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use support::{Emulator, Run, generate, iamplan, iamplan_env, median};

/// The fixed concurrencies tried for the floor.
const FLOOR_CONCURRENCY: [usize; 4] = [2, 4, 8, 16];
/// Above this, creates are not measured through the proxy.
const MAX_PROXIED_CREATE: usize = 1000;
/// Roles per account in the many-accounts rows.
const ACCOUNT_ROLES: usize = 200;

struct Proxy {
    child: Child,
    port: String,
}

impl Proxy {
    fn start(upstream: &str, latency_ms: &str) -> Proxy {
        let mut child = Command::new("python3")
            .args([
                "tools/realaws/proxy.py",
                upstream,
                "--latency-ms",
                latency_ms,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 tools/realaws/proxy.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Proxy {
            child,
            port: line.trim().to_string(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, method: &str, path: &str) -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{}", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).unwrap()
    }

    /// (requests, throttled) since the last reset, every action and account together.
    fn counts(&self) -> (u64, u64) {
        let v = self.control("GET", "/_realaws/stats");
        let sum = |k: &str| {
            v[k].as_object()
                .map(|m| m.values().filter_map(|x| x.as_u64()).sum())
                .unwrap_or(0)
        };
        (sum("requests"), sum("throttled"))
    }

    fn reset(&self) {
        self.control("POST", "/_realaws/reset");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator's environment with every call sent through the proxy.
fn via(emu: &Emulator, proxy: &Proxy) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = emu
        .env
        .iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .cloned()
        .collect();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
    env
}

/// A raw SDK client through the proxy, as a well-tuned script would make it: the SDK's
/// standard retry mode, with attempts enough to outlast throttling.
async fn raw_client(endpoint: &str, key: &str) -> Client {
    let creds = aws_credential_types::Credentials::new(key, "test", None, None, "floor");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(30))
        .load()
        .await;
    Client::new(&conf)
}

/// The unavoidable reads of a no-change plan: the GetAccountAuthorizationDetails pages
/// and, alongside, a credential report for every user's keys.
async fn floor_read(iam: &Client) -> f64 {
    let started = Instant::now();
    let gaad = async {
        let described = support::authorization_pages(iam).await;
        // MiniStack's pages leave out policy descriptions (where ownership is marked):
        // on it, a tool must list the policies too. AWS's pages have them.
        if !described {
            iam.list_policies()
                .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                .max_items(1000)
                .send()
                .await
                .unwrap();
        }
    };
    let report = async {
        iam.generate_credential_report().send().await.unwrap();
        iam.get_credential_report().send().await.unwrap();
    };
    tokio::join!(gaad, report);
    started.elapsed().as_secs_f64()
}

struct Row {
    what: String,
    iamplan: f64,
    floor: f64,
    floor_note: String,
    throttled: u64,
    floor_throttled: u64,
    calls: u64,
    rss: f64,
}

/// Seconds and throttles of a floor create of `n` roles at concurrency `c`, on a fresh
/// emulator behind its own proxy.
async fn floor_create_at(n: usize, c: usize, latency: &str) -> (f64, u64) {
    let emu = Emulator::start();
    let proxy = Proxy::start(&emu.endpoint(), latency);
    let iam = raw_client(&proxy.url(), "test").await;
    let secs = support::floor_create(&iam, n, c).await;
    let (_, throttled) = proxy.counts();
    eprintln!("  floor create {n} at concurrency {c}: {secs:.2} s, {throttled} throttled");
    (secs, throttled)
}

/// Seconds and throttles of the best fixed concurrency for a create of `n` roles. The
/// concurrencies are tried at up to SWEEP roles (a full sweep at 1,000 roles would take
/// most of an hour under the modelled buckets); the best is then run at full size.
async fn best_floor_create(n: usize, latency: &str) -> (f64, u64, usize) {
    const SWEEP: usize = 100;
    let mut best = (f64::MAX, 0, 0);
    for c in FLOOR_CONCURRENCY {
        let (secs, throttled) = floor_create_at(n.min(SWEEP), c, latency).await;
        if secs < best.0 {
            best = (secs, throttled, c);
        }
    }
    if n > SWEEP {
        let (secs, throttled) = floor_create_at(n, best.2, latency).await;
        best = (secs, throttled, best.2);
    }
    best
}

async fn size_rows(n: usize, latency: &str, skip_create: bool, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), n);
    let plan = dir.path().to_str().unwrap().to_string();
    let emu = Emulator::start();
    let proxy = Proxy::start(&emu.endpoint(), latency);
    let env = via(&emu, &proxy);

    if n <= MAX_PROXIED_CREATE && !skip_create {
        let create = iamplan_env(&env, &["apply", &plan, "--auto-approve"]);
        let (floor, floor_throttled, c) = best_floor_create(n, latency).await;
        rows.push(Row {
            what: format!("{n} roles: apply (create all)"),
            iamplan: create.secs,
            floor,
            floor_note: format!("concurrency {c}"),
            throttled: create.throttled,
            floor_throttled,
            calls: create.total_calls,
            rss: create.rss_mb,
        });
    } else {
        // Made at the emulator directly; only the reads go through the proxy.
        iamplan(&emu, &["apply", &plan, "--auto-approve"]);
    }

    let plans: Vec<Run> = (0..3)
        .map(|_| iamplan_env(&env, &["plan", &plan, "--detailed-exitcode"]))
        .collect();
    assert!(
        plans.iter().all(|r| r.code == 0),
        "the plan after apply is not clean"
    );
    // The floor reads the same account (its report and pages are the same size).
    let raw = raw_client(&proxy.url(), "test").await;
    let mut floors = Vec::new();
    let mut floor_throttled = 0;
    for _ in 0..3 {
        proxy.reset();
        floors.push(floor_read(&raw).await);
        floor_throttled += proxy.counts().1;
    }
    rows.push(Row {
        what: format!("{n} roles: plan (no changes)"),
        iamplan: median(plans.iter().map(|r| r.secs).collect()),
        floor: median(floors),
        floor_note: "pages + report".into(),
        throttled: plans.iter().map(|r| r.throttled).max().unwrap_or(0),
        floor_throttled: floor_throttled / 3,
        calls: plans[0].total_calls,
        rss: plans.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
    });
    eprintln!("size {n} done");
}

/// A plan of `accounts` accounts (profiles whose 12-digit access key MiniStack takes for
/// that account's root), each with the `bench` stack of ACCOUNT_ROLES roles.
fn generate_accounts(dir: &Path, accounts: usize) -> Vec<(String, String)> {
    use std::fmt::Write;
    let n = ACCOUNT_ROLES;
    let (policies, users) = (n / 10, n / 5);
    let mut t = String::from("[stack]\nname = \"bench\"\n");
    let (mut config, mut creds) = (String::new(), String::new());
    for a in 0..accounts {
        let id = format!("{:012}", 100_000_000_000u64 + a as u64);
        let _ = write!(config, "[profile a{a}]\nregion = us-east-1\n");
        let _ = write!(
            creds,
            "[a{a}]\naws_access_key_id = {id}\naws_secret_access_key = test\n"
        );
        let _ = write!(t, "[accounts.a{a}]\nprofile = \"a{a}\"\n");
        for p in 0..policies {
            let _ = write!(
                t,
                "[policy.a{a}p{p}]\naccount = \"a{a}\"\n[[policy.a{a}p{p}.statement]]\naction = \"s3:GetObject\"\nresource = \"arn:aws:s3:::bench-{p}/*\"\n"
            );
        }
        for r in 0..n {
            let _ = write!(
                t,
                "[role.a{a}r{r}]\naccount = \"a{a}\"\nmanaged_policies = [\"a{a}p{}\"]\n[role.a{a}r{r}.trust]\naccounts = [\"111122223333\"]\n\
                 [role.a{a}r{r}.inline.own]\n[[role.a{a}r{r}.inline.own.statement]]\naction = \"sqs:SendMessage\"\nresource = \"arn:aws:sqs:us-east-1:111122223333:q{r}\"\n",
                r % policies
            );
        }
        for u in 0..users {
            let _ = write!(
                t,
                "[user.a{a}u{u}]\naccount = \"a{a}\"\n[user.a{a}u{u}.access_keys]\nsink = {{ type = \"json\", path = \"keys/a{a}-bu{u}.json\" }}\n"
            );
        }
    }
    std::fs::write(dir.join("plan.toml"), t).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("credentials"), creds).unwrap();
    vec![
        (
            "AWS_CONFIG_FILE".into(),
            dir.join("config").to_string_lossy().into_owned(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            dir.join("credentials").to_string_lossy().into_owned(),
        ),
    ]
}

async fn account_rows(accounts: &[usize], latency: &str, rows: &mut Vec<Row>) {
    let mut one_account_floor = None;
    for &a in accounts {
        let dir = tempfile::tempdir().unwrap();
        let files = generate_accounts(dir.path(), a);
        let plan = dir.path().join("plan.toml");
        let plan = plan.to_str().unwrap();
        let emu = Emulator::start();
        let mut direct: Vec<(String, String)> = emu
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("AWS_CONFIG") && !k.starts_with("AWS_SHARED"))
            .cloned()
            .collect();
        direct.extend(files.iter().cloned());
        let made = iamplan_env(&direct, &["apply", plan, "--auto-approve"]);
        assert_eq!(made.code, 0, "apply of {a} accounts");
        let proxy = Proxy::start(&emu.endpoint(), latency);
        let mut env: Vec<(String, String)> = direct
            .iter()
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
            .cloned()
            .collect();
        env.push(("AWS_ENDPOINT_URL".into(), proxy.url()));
        let plans: Vec<Run> = (0..3)
            .map(|_| {
                proxy.reset();
                iamplan_env(&env, &["plan", plan, "--detailed-exitcode"])
            })
            .collect();
        assert!(plans.iter().all(|r| r.code == 0), "{a} accounts: not clean");
        if one_account_floor.is_none() {
            let raw = raw_client(&proxy.url(), &format!("{:012}", 100_000_000_000u64)).await;
            let mut floors = Vec::new();
            for _ in 0..3 {
                proxy.reset();
                floors.push(floor_read(&raw).await);
            }
            one_account_floor = Some(median(floors));
        }
        let floor = one_account_floor.unwrap();
        rows.push(Row {
            what: format!("{a} accounts x {ACCOUNT_ROLES} roles: plan (no changes)"),
            iamplan: median(plans.iter().map(|r| r.secs).collect()),
            floor,
            floor_note: "one account's read".into(),
            throttled: plans.iter().map(|r| r.throttled).max().unwrap_or(0),
            floor_throttled: 0,
            calls: plans[0].total_calls,
            rss: plans.iter().map(|r| r.rss_mb).fold(0.0, f64::max),
        });
        eprintln!("{a} accounts done");
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn list(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse().expect("comma-separated numbers"))
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes = list(&arg(&args, "--sizes", "10,100,1000,5000"));
    let accounts = list(&arg(&args, "--accounts", "1,10,50"));
    let latency = arg(&args, "--latency-ms", "60");
    // Only the reads: the stacks are made at the emulator directly (creates through the
    // proxy take most of the run).
    let skip_create = args.iter().any(|a| a == "--reads-only");
    assert!(
        Path::new("target/release/iamplan").exists(),
        "run `cargo build --release` first"
    );
    let mut rows = Vec::new();
    for n in sizes {
        size_rows(n, &latency, skip_create, &mut rows).await;
    }
    account_rows(&accounts, &latency, &mut rows).await;
    let mut md = format!(
        "Through tools/realaws/proxy.py: {latency} ms +- 15 round trip, per-API token buckets (see the proxy).\n\n\
         | stack | iamplan (s) | floor (s) | ratio | throttled: iamplan / floor | API calls | peak RSS (MB) | floor |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} / {} | {} | {:.1} | {} |\n",
            r.what,
            r.iamplan,
            r.floor,
            r.iamplan / r.floor.max(1e-9),
            r.throttled,
            r.floor_throttled,
            r.calls,
            r.rss,
            r.floor_note
        ));
    }
    println!("{md}");
    std::fs::write("target/realaws.md", &md).unwrap();
}
