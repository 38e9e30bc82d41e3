//! The scale benchmark (BENCHMARKS.md): stacks of N roles (trust policy, one inline policy,
//! one managed-policy attachment), N/10 managed policies and N/5 users with one access key
//! each, against MiniStack. For each size it measures iamplan's apply (create), no-change
//! plan, plan with 10% drift and apply (delete), and the floor: only the API calls the
//! operation cannot avoid, made directly with the SDK at the same concurrency.
//!
//!     cargo build --release && cargo run --release --example bench -- 10,100,1000,5000
//!
//! Prints a Markdown table (and writes it to target/bench.md).

mod support;

use aws_sdk_iam::Client;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::{Emulator, Run, generate, iamplan, median};

const CONCURRENCY: usize = 4; // iamplan's default --parallelism

async fn concurrently<F, Fut>(n: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    support::concurrently(n, CONCURRENCY, f).await
}

/// The unavoidable calls of a no-change plan: GetAccountAuthorizationDetails pages and one
/// ListAccessKeys per managed user.
async fn floor_read(iam: &Client, users: usize) -> f64 {
    let started = Instant::now();
    support::authorization_pages(iam).await;
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
    let f_create = support::floor_create(&floor_iam, n, CONCURRENCY).await;
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
    let access = median(drifted.iter().map(|r| r.access_ms).collect());
    let local = median(drifted.iter().map(|r| r.local_ms).collect());
    rows.push(Row {
        size: n,
        op: "plan (10% drifted)",
        secs: median(drifted.iter().map(|r| r.secs).collect()),
        floor: median(floors),
        calls: last.total_calls,
        detail: format!(
            "{} (classifying the {drift} changed documents' access: {access:.1} ms of {local:.1} ms local work, {:.0}% added)",
            last.calls,
            100.0 * access / (local - access).max(1e-9)
        ),
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
                "{} (speed-up of the default, adaptive up to --parallelism 32: {:.2}x)",
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
