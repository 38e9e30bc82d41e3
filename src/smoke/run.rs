//! Runs smoke checks: concurrently, each retried while fresh roles and keys propagate.

use super::diagnose::{Stage, diagnose};
use super::{From, Reason, SmokeCheck};
use crate::aws::Target;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_types::Blob;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub expected: String,
    pub outcome: String,
    pub passed: bool,
    pub seconds: f64,
    /// For checks that passed after retries: how long until the chain became usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usable_after_seconds: Option<f64>,
    /// Which link broke and what to look at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// The equivalent signed HTTP request, secrets redacted (`--show-request`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// What one attempt of the chain produced.
enum Attempt {
    Allowed {
        status: i32,
        function_error: Option<String>,
        payload: String,
    },
    Denied {
        stage: Stage,
        code: String,
        message: String,
        caller: String,
    },
    /// Not a permission answer: a setup problem (unreadable sink, unreachable endpoint).
    Broken(String),
}

pub async fn run_checks(
    checks: &[SmokeCheck],
    base: &BTreeMap<String, SdkConfig>,
    target: &Target,
    show_request: bool,
) -> Vec<CheckResult> {
    let runs = checks
        .iter()
        .map(|c| run_check(c, &base[&c.account], target, show_request));
    futures::future::join_all(runs).await
}

async fn run_check(
    check: &SmokeCheck,
    base: &SdkConfig,
    target: &Target,
    show_request: bool,
) -> CheckResult {
    let started = Instant::now();
    let budget = Duration::from_secs(check.retry_seconds);
    let mut delay = Duration::from_millis(250);
    let mut retried = false;
    let attempt = loop {
        let a = attempt(check, base, target).await;
        // A denial may be IAM's eventual consistency for fresh roles and keys: retry a
        // check that should pass, until its budget is spent. A denial expected is final.
        let retry = check.expect.allow
            && matches!(a, Attempt::Denied { .. })
            && started.elapsed() + delay <= budget;
        if !retry {
            break a;
        }
        retried = true;
        tracing::info!(
            "smoke {}: denied, retrying in {:.1}s",
            check.name,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut result = CheckResult {
        name: check.name.clone(),
        expected: check.expect.describe(),
        outcome: String::new(),
        passed: false,
        seconds,
        usable_after_seconds: None,
        diagnosis: None,
        request: show_request.then(|| signed_request(check, base)).flatten(),
    };
    match attempt {
        Attempt::Broken(msg) => {
            result.outcome = "error".into();
            result.diagnosis = Some(msg);
        }
        Attempt::Allowed {
            status,
            function_error,
            payload,
        } => {
            result.outcome = match &function_error {
                Some(e) => format!("allowed, status {status}, function error {e}"),
                None if check.invoke.is_some() => format!("allowed, status {status}"),
                None => "allowed".into(),
            };
            let e = &check.expect;
            let mut problems = Vec::new();
            if !e.allow {
                problems.push(format!(
                    "expected a denial ({}) but every call was allowed",
                    e.reason.map_or("any", Reason::name)
                ));
            }
            if let Some(want) = e.status
                && want != status
            {
                problems.push(format!("status {status}, expected {want}"));
            }
            if let Some(f) = function_error {
                problems.push(format!("the function failed ({f}): {}", truncate(&payload)));
            }
            if let Some(want) = &e.payload_contains
                && !payload.contains(want.as_str())
            {
                problems.push(format!(
                    "the response does not contain {want:?}: {}",
                    truncate(&payload)
                ));
            }
            result.passed = problems.is_empty();
            if !problems.is_empty() {
                result.diagnosis = Some(problems.join("; "));
            } else if retried {
                result.usable_after_seconds = Some(seconds);
            }
        }
        Attempt::Denied {
            stage,
            code,
            message,
            caller,
        } => {
            let (reason, why) = diagnose(check, &stage, &code, &message, &caller);
            result.outcome = format!("denied ({})", reason.name());
            let e = &check.expect;
            result.passed = !e.allow && e.reason.is_none_or(|r| r == reason);
            if !result.passed {
                result.diagnosis = Some(if e.allow {
                    why
                } else {
                    format!(
                        "denied for another reason than {}: {why}",
                        e.reason.map_or("expected", Reason::name)
                    )
                });
            } else {
                result.diagnosis = Some(why);
            }
        }
    }
    result
}

fn truncate(s: &str) -> String {
    if s.len() > 300 {
        format!("{}...", &s[..s.floor_char_boundary(300)])
    } else {
        s.to_string()
    }
}

/// Error code and message of a service error (the SDK error types are shared by the
/// IAM, STS and Lambda clients).
/// A failed call of the chain: a denial when AWS answered with an error code (the
/// diagnosis reads it), otherwise a broken check (the call never got an answer).
fn failed<E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_sts::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    stage: Stage,
    call: String,
    caller: String,
) -> Attempt {
    use aws_sdk_sts::error::SdkError;
    match e {
        SdkError::ServiceError(se) => Attempt::Denied {
            stage,
            code: se.err().code().unwrap_or("Unknown").to_string(),
            message: se.err().message().unwrap_or("").to_string(),
            caller,
        },
        _ => Attempt::Broken(format!("{call}: {}", crate::aws::error_text(e))),
    }
}

async fn start_config(
    check: &SmokeCheck,
    base: &SdkConfig,
    target: &Target,
) -> Result<SdkConfig, String> {
    let creds = match &check.from {
        From::Caller => return Ok(base.clone()),
        From::Profile(p) => {
            let spec = crate::spec::AccountSpec {
                profile: Some(p.clone()),
                ..Default::default()
            };
            return crate::aws::sdk_config(target, &spec)
                .await
                .map_err(|e| format!("profile {p}: {e}"));
        }
        From::User { name, sink } => {
            let (id, secret) = sink
                .held_secret()
                .map_err(|e| format!("user {name}: cannot read its key from the {sink}: {e}"))?
                .ok_or_else(|| format!("user {name}: the {sink} holds no key (run apply first)"))?;
            Credentials::new(id, secret, None, None, "iamplan-sink")
        }
    };
    Ok(base
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build())
}

async fn attempt(check: &SmokeCheck, base: &SdkConfig, target: &Target) -> Attempt {
    let mut config = match start_config(check, base, target).await {
        Ok(c) => c,
        Err(e) => return Attempt::Broken(e),
    };
    // Who is calling, for messages (and to tell a bad key from a denial).
    let sts = aws_sdk_sts::Client::new(&config);
    let mut caller = match sts.get_caller_identity().send().await {
        Ok(who) => who.arn().unwrap_or("?").to_string(),
        Err(e) => {
            let call = "cannot reach STS".to_string();
            return failed(&e, Stage::Start, call, "?".into());
        }
    };
    for (i, a) in check.assume.iter().enumerate() {
        let sts = aws_sdk_sts::Client::new(&config);
        let mut req = sts
            .assume_role()
            .role_arn(&a.role_arn)
            .role_session_name(&a.session_name)
            .set_external_id(a.external_id.clone())
            .set_duration_seconds(a.duration_seconds);
        for (k, v) in &a.tags {
            req = req.tags(
                aws_sdk_sts::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value set"),
            );
        }
        match req.send().await {
            Ok(out) => {
                let Some(c) = out.credentials() else {
                    return Attempt::Broken(format!(
                        "AssumeRole {} returned no credentials",
                        a.role_arn
                    ));
                };
                let creds = Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    None,
                    "assumed-role",
                );
                config = config
                    .to_builder()
                    .credentials_provider(
                        aws_credential_types::provider::SharedCredentialsProvider::new(creds),
                    )
                    .build();
                caller = out
                    .assumed_role_user()
                    .map(|u| u.arn().to_string())
                    .unwrap_or_else(|| a.role_arn.clone());
            }
            Err(e) => {
                let call = format!("AssumeRole {}", a.role_arn);
                return failed(&e, Stage::Assume(i), call, caller);
            }
        }
    }
    let Some(inv) = &check.invoke else {
        return Attempt::Allowed {
            status: 200,
            function_error: None,
            payload: String::new(),
        };
    };
    let mut lconf = aws_sdk_lambda::config::Builder::from(&config);
    if let Some(r) = &inv.region {
        lconf = lconf.region(aws_config::Region::new(r.clone()));
    }
    let lambda = aws_sdk_lambda::Client::from_conf(lconf.build());
    let result = lambda
        .invoke()
        .function_name(&inv.function)
        .set_qualifier(inv.qualifier.clone())
        .invocation_type(InvocationType::RequestResponse)
        .log_type(LogType::None)
        .payload(Blob::new(inv.payload.as_bytes()))
        .send()
        .await;
    match result {
        Ok(out) => Attempt::Allowed {
            status: out.status_code(),
            function_error: out.function_error().map(str::to_string),
            payload: out
                .payload()
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                .unwrap_or_default(),
        },
        Err(e) => failed(
            &e,
            Stage::Invoke,
            format!("Invoke {}", inv.function),
            caller,
        ),
    }
}

/// The SigV4-signed HTTP request that the invoke amounts to (seed 004), with every
/// secret and the signature redacted, so a user can reproduce it with their own tools.
fn signed_request(check: &SmokeCheck, base: &SdkConfig) -> Option<String> {
    let inv = check.invoke.as_ref()?;
    let region = inv
        .region
        .clone()
        .or_else(|| base.region().map(|r| r.to_string()))
        .unwrap_or_else(|| "us-east-1".into());
    let host = base
        .endpoint_url()
        .map(|u| {
            u.trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .to_string()
        })
        .unwrap_or_else(|| format!("lambda.{region}.amazonaws.com"));
    // RFC 3986 unreserved characters stay as they are; everything else (':' in an ARN) is encoded.
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let name = percent_encoding::utf8_percent_encode(&inv.function, PATH).to_string();
    let query = inv
        .qualifier
        .as_ref()
        .map(|q| format!("?Qualifier={q}"))
        .unwrap_or_default();
    let token = if check.assume.is_empty() && !matches!(check.from, From::Caller) {
        ""
    } else {
        "X-Amz-Security-Token: <redacted: session token>\n"
    };
    let signed = if token.is_empty() {
        "content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type"
    } else {
        "content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type;x-amz-security-token"
    };
    Some(format!(
        "POST /2015-03-31/functions/{name}/invocations{query} HTTP/1.1\n\
         Host: {host}\n\
         Content-Type: application/json\n\
         X-Amz-Invocation-Type: RequestResponse\n\
         X-Amz-Log-Type: None\n\
         X-Amz-Date: <YYYYMMDDTHHMMSSZ>\n\
         {token}\
         Authorization: AWS4-HMAC-SHA256 Credential=<redacted: access key id>/<YYYYMMDD>/{region}/lambda/aws4_request, SignedHeaders={signed}, Signature=<redacted>\n\
         \n\
         {}",
        inv.payload
    ))
}
