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
    /// What the plan's policies predicted, evaluated offline before the check ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<super::Prediction>,
    /// The prediction and AWS's answer disagree: why that matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
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

/// What live IAM says before any check runs: evidence comes from AWS, never from the plan.
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {
    /// The accounts read, by ID, and the role ARNs each has.
    pub roles: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl LiveFacts {
    /// A role of a read account that does not exist.
    fn missing(&self, role_arn: &str) -> bool {
        let account = role_arn.split(':').nth(4).unwrap_or("");
        self.roles
            .get(account)
            .is_some_and(|arns| !arns.contains(role_arn))
    }
}

pub async fn run_checks(
    checks: &[SmokeCheck],
    base: &BTreeMap<String, SdkConfig>,
    target: &Target,
    show_request: bool,
    live: Option<&LiveFacts>,
    predictions: &[super::Prediction],
) -> Vec<CheckResult> {
    // A denial proves something only where IAM is enforced: probe each account's endpoint
    // once (with a made-up key) when a check expects one.
    let mut enforced: BTreeMap<&str, bool> = BTreeMap::new();
    for c in checks.iter().filter(|c| !c.expect.allow) {
        if !enforced.contains_key(c.account.as_str()) {
            let yes = enforces_iam(&base[&c.account]).await;
            enforced.insert(&c.account, yes);
        }
    }
    let enforced = &enforced;
    let runs = checks.iter().enumerate().map(|(i, c)| async move {
        let prediction = predictions.get(i).cloned();
        let missing = live.and_then(|l| c.assume.iter().find(|a| l.missing(&a.role_arn)));
        let mut result = if let Some(a) = missing {
            broken(c, format!("role {} not found (not applied yet?)", a.role_arn))
        } else if !c.expect.allow && enforced.get(c.account.as_str()) == Some(&false) {
            broken(
                c,
                "the endpoint does not enforce IAM (it accepted a made-up access key), so a denial cannot be observed here: run deny checks against AWS, or an emulator that enforces IAM (MiniStack with AUTH=true, as localstack/up starts it)".into(),
            )
        } else {
            run_check(c, &base[&c.account], target, show_request, prediction.as_ref()).await
        };
        result.prediction = prediction;
        result
    });
    futures::future::join_all(runs).await
}

/// A check that could not run, and why.
fn broken(check: &SmokeCheck, why: String) -> CheckResult {
    CheckResult {
        name: check.name.clone(),
        expected: check.expect.describe(),
        outcome: "error".into(),
        passed: false,
        seconds: 0.0,
        usable_after_seconds: None,
        diagnosis: Some(why),
        request: None,
        prediction: None,
        finding: None,
    }
}

/// Whether the endpoint refuses a made-up key (real IAM and enforcing emulators do).
async fn enforces_iam(base: &SdkConfig) -> bool {
    let probe = Credentials::new(
        "AKIAIAMPLANPROBE0000",
        "iamplan-probe-not-a-secret",
        None,
        None,
        "iamplan-probe",
    );
    let config = base
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(probe))
        .build();
    aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .is_err()
}

async fn run_check(
    check: &SmokeCheck,
    base: &SdkConfig,
    target: &Target,
    show_request: bool,
    prediction: Option<&super::Prediction>,
) -> CheckResult {
    let started = Instant::now();
    let budget = Duration::from_secs(check.retry_seconds);
    let mut delay = Duration::from_millis(250);
    let mut retried = false;
    let capture = show_request.then(CaptureRequest::default);
    let attempt = loop {
        let a = attempt(check, base, target, capture.as_ref()).await;
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
        request: capture
            .as_ref()
            .and_then(|c| c.0.lock().ok().and_then(|r| r.clone())),
        prediction: None,
        finding: None,
    };
    // Only an answer about permissions can disagree with the prediction: a missing
    // function or a refused key says nothing about the policies.
    let aws_allowed = match &attempt {
        Attempt::Allowed { .. } => Some(true),
        Attempt::Denied { .. } | Attempt::Broken(_) => None,
    };
    result.finding = prediction.and_then(|p| super::finding(p, aws_allowed));
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
            let permissions = !matches!(reason, Reason::NotFound | Reason::Key);
            if permissions {
                result.finding = prediction.and_then(|p| super::finding(p, Some(false)));
            }
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

async fn attempt(
    check: &SmokeCheck,
    base: &SdkConfig,
    target: &Target,
    capture: Option<&CaptureRequest>,
) -> Attempt {
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
    if let Some(c) = capture {
        lconf = lconf.interceptor(c.clone());
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

/// Records the invoke request as the SDK sends it, signed (`--show-request`, seed 004),
/// with the access key ID, the session token and the signature redacted.
#[derive(Debug, Clone, Default)]
struct CaptureRequest(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for CaptureRequest {
    fn name(&self) -> &'static str {
        "CaptureRequest"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = context.request();
        let uri = req.uri();
        let path = uri
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(uri);
        let mut text = format!("{} {path} HTTP/1.1\n", req.method());
        // The HTTP client adds Host from the URI; it is signed, so show it.
        if req.headers().get("host").is_none()
            && let Some(authority) = uri
                .split_once("://")
                .map(|(_, r)| r.split('/').next().unwrap_or(r))
        {
            text.push_str(&format!("host: {authority}\n"));
        }
        for (name, value) in req.headers().iter() {
            text.push_str(&format!("{name}: {}\n", redact_header(name, value)));
        }
        text.push('\n');
        if let Some(body) = req.body().bytes() {
            text.push_str(&String::from_utf8_lossy(body));
        }
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(text);
        }
        Ok(())
    }
}

/// A header's value as shown: secrets redacted, the rest (the signed headers list, the
/// scope's date, region and service) as sent.
fn redact_header(name: &str, value: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "x-amz-security-token" => "<redacted: session token>".into(),
        "authorization" => value
            .split(", ")
            .map(|part| {
                if let Some((head, cred)) = part.split_once("Credential=") {
                    let scope = cred.split_once('/').map_or("", |(_, s)| s);
                    format!("{head}Credential=<redacted: access key id>/{scope}")
                } else if part.starts_with("Signature=") {
                    "Signature=<redacted>".into()
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => value.to_string(),
    }
}
