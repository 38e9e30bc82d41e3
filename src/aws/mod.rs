//! The IAM edge: the only module that reads or writes IAM. Retries for throttling and
//! eventual consistency live here, once.

pub mod error;
pub mod limit;
pub mod lock;
pub mod read;
pub mod region;
pub mod report;
mod write;

pub use error::{AwsError, ErrorKind, error_text};
pub use write::StepError;

pub use read::read_live;

use crate::model::{AccountContext, AccountSpec};
use anyhow::{Result, anyhow, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where to connect: the standard chain, plus what the command line overrides.
#[derive(Debug, Clone)]
pub struct Target {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// The most calls of one IAM API that run at once in one account (`--parallelism`).
    pub parallelism: usize,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            profile: None,
            region: None,
            endpoint_url: None,
            parallelism: usize::from(limit::DEFAULT_PARALLELISM),
        }
    }
}

impl Target {
    /// Whether IAM is reached on this machine (an emulator): `--endpoint-url`, or
    /// AWS_ENDPOINT_URL(_IAM), naming a loopback host.
    pub fn is_local_emulator(&self) -> bool {
        let url = self
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_IAM").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        url.is_some_and(|u| is_loopback_url(&u))
    }
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// API calls made, by operation (attempts, so retries count), and the Throttling
/// errors among them.
#[derive(Debug, Default)]
pub struct Stats {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    throttled: std::sync::atomic::AtomicU64,
}

impl Stats {
    pub fn count(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .expect("stats lock")
            .entry(op)
            .or_default() += 1;
    }
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().expect("stats lock").clone()
    }
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
    pub fn throttled(&self) -> u64 {
        self.throttled.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub(crate) fn count_throttle(&self) {
        self.throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Clients for one account.
#[derive(Clone)]
pub struct Account {
    pub ctx: AccountContext,
    /// Who the credentials are: the caller ARN GetCallerIdentity gives.
    pub caller: String,
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub stats: Arc<Stats>,
    /// How many calls of each API may run at once (adaptive, bounded by --parallelism).
    pub limits: Arc<limit::Limits>,
    /// The account's state, read while it was being identified (`Prefetch`), until
    /// `read_live` takes it.
    pub prefetched: Arc<Mutex<Option<Result<read::Fetched>>>>,
}

/// Whether `connect` reads the account's state while it asks who the caller is: for a
/// plan, which holds no lock, this hides a round trip; apply reads only once it holds the
/// stack's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    No,
    /// With the credential report, or not (`read::wants_report`).
    Yes {
        report: bool,
    },
}

impl Account {
    /// Makes one API call: counted, within the API's concurrency limit, retried.
    pub async fn call<T, E, F, Fut>(
        &self,
        op: &'static str,
        call: F,
    ) -> Result<
        T,
        aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
        F: FnMut() -> Fut,
        Fut: Future<
            Output = Result<
                T,
                aws_sdk_iam::error::SdkError<
                    E,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >,
            >,
        >,
    {
        retry(&self.stats, &self.limits, op, call).await
    }
}

/// Clients whose failures come back to `retry` at once: it retries with the API's
/// limit in view, which the SDK's own retries would hide.
fn without_sdk_retries(config: &SdkConfig) -> SdkConfig {
    config
        .to_builder()
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build()
}

/// Builds the SDK configuration for one account of the plan.
pub async fn sdk_config(target: &Target, spec: &AccountSpec) -> Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let profile = spec.profile.as_ref().or(target.profile.as_ref());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = spec.region.as_ref().or(target.region.as_ref()) {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // A TLS-inspecting proxy's CA, as the AWS CLI takes it: AWS_CA_BUNDLE, else the
    // profile's ca_bundle. The same client serves the credential providers' own calls.
    let http = match ca_bundle(profile).await? {
        Some(path) => Some(https_client_trusting(&path)?),
        None => None,
    };
    if let Some(client) = &http {
        loader = loader.http_client(client.clone());
    }
    let mut base = loader.load().await;
    if let Some(r) = base.region() {
        region::check(r.as_ref())?;
    }
    if let Some(p) = profile {
        // A named profile wins over keys in the environment, which the default chain
        // tries first: `aws --profile` behaves so. The SDK's profile provider resolves
        // whatever the profile uses (keys, role_arn with source_profile or
        // credential_source, credential_process, SSO, web identity); it is given the
        // region, which an assumed role's STS call needs.
        let mut conf = aws_config::provider_config::ProviderConfig::default()
            .with_region(base.region().cloned());
        if let Some(client) = &http {
            conf = conf.with_http_client(client.clone());
        }
        let creds = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(p)
            .configure(&conf)
            .build();
        base = base
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            )
            .build();
    }
    let Some(role) = &spec.assume_role else {
        return Ok(base);
    };
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("iamplan")
        .configure(&base);
    if let Some(x) = &spec.external_id {
        provider = provider.external_id(x);
    }
    let provider = provider.build().await;
    Ok(base
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// The CA bundle to trust besides the system's roots: AWS_CA_BUNDLE, else `ca_bundle` in
/// the profile in use.
async fn ca_bundle(profile: Option<&String>) -> Result<Option<std::path::PathBuf>> {
    let profiles = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        profile.map(|p| std::borrow::Cow::Owned(p.clone())),
    )
    .await;
    // A profile named explicitly must exist (else the error would be about regions or
    // credentials). An unreadable config file is the credential chain's to report.
    if let (Some(p), Ok(set)) = (profile, &profiles)
        && set.get_profile(p).is_none()
    {
        let names: Vec<&str> = set.profiles().collect();
        let near = crate::spec::nearest(p, names.iter().copied())
            .map(|n| format!("did you mean \"{n}\"? "))
            .unwrap_or_default();
        bail!(
            "profile \"{p}\" is not in the AWS config or credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)\nhelp: {near}the files define: {}",
            if names.is_empty() {
                "no profiles".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    if let Some(p) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) {
        return Ok(Some(p.into()));
    }
    Ok(profiles
        .ok()
        .and_then(|set| set.get("ca_bundle").map(std::path::PathBuf::from)))
}

/// The SDK's default HTTPS client (rustls, proxies from HTTPS_PROXY/NO_PROXY), trusting
/// the certificates of `ca_bundle` as well as the system's roots.
fn https_client_trusting(
    ca_bundle: &std::path::Path,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    let pem = std::fs::read(ca_bundle).map_err(|e| {
        anyhow!(
            "cannot read the CA bundle {} (AWS_CA_BUNDLE or ca_bundle): {e}",
            ca_bundle.display()
        )
    })?;
    let trust = tls::TrustStore::default().with_pem_certificate(pem);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| anyhow!("the CA bundle {} is not usable: {e}", ca_bundle.display()))?;
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut conn = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            conn.set_connector_settings(settings.cloned());
            if let Some(c) = components {
                conn.set_sleep_impl(c.sleep_impl());
            }
            conn.set_proxy_config(Some(ProxyConfig::from_env()));
            conn.build()
        }),
    )
}

/// Why an account could not be reached, with the fix: credentials, certificates and
/// the network each get their own message.
/// `profile` is the profile in use, if one is named (--profile, the account's, AWS_PROFILE).
fn connect_error(alias: &str, host: &str, profile: Option<&str>, e: &AwsError) -> anyhow::Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let login = format!("aws sso login --profile {}", profile.unwrap_or("default"));
    // The SDK's codes for credentials past their expiry (STS, IAM, and a request signed
    // too long ago).
    let expired = matches!(
        e.code.as_deref(),
        Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired")
    ) || [
        "expiredtoken",
        "requestexpired",
        "token has expired",
        "token is expired",
    ]
    .iter()
    .any(|c| lower.contains(c));
    let help = if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "the TLS certificate of {host} is not trusted: behind a TLS-inspecting proxy, set AWS_CA_BUNDLE (or ca_bundle in the profile) to its CA certificate (PEM)"
        )
    } else if lower.contains("sso") && lower.contains("token") {
        format!("the SSO session has no valid token: run `{login}`")
    } else if expired {
        format!(
            "the credentials have expired: renew them (an SSO profile: `{login}`; session keys in the environment: get new ones, with AWS_SESSION_TOKEN)"
        )
    } else if e.kind == ErrorKind::Credentials && lower.contains("no credentials") {
        "no usable credentials: set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()
    } else if e.kind == ErrorKind::Credentials && lower.contains("profile") {
        "the profile is missing or incomplete in ~/.aws/config or ~/.aws/credentials (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE): check its name and settings".to_string()
    } else if e.kind == ErrorKind::Credentials {
        "no usable credentials: set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; expired session credentials must be renewed".to_string()
    } else if e.kind == ErrorKind::Network && is_loopback_url(host) {
        format!(
            "{host} cannot be reached: is the emulator running, and does AWS_ENDPOINT_URL point at it? (eval \"$(localstack/up)\")"
        )
    } else if e.kind == ErrorKind::Network {
        format!("{host} cannot be reached: check the network and HTTPS_PROXY/NO_PROXY")
    } else {
        "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, --profile)".to_string()
    };
    anyhow!(
        "cannot identify the caller for account \"{alias}\" (STS GetCallerIdentity at {host}): {text}\nhelp: {help}"
    )
}

/// Connects to one account and learns its ID and partition (one STS call).
pub async fn connect(
    alias: &str,
    target: &Target,
    spec: &AccountSpec,
    stats: Arc<Stats>,
    prefetch: Prefetch,
) -> Result<Account> {
    let limits = Arc::new(limit::Limits::new(target.parallelism));
    let config = sdk_config(target, spec).await?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| anyhow!("no AWS region for account \"{alias}\": set AWS_REGION, --region, or region in the profile"))?;
    let sts = aws_sdk_sts::Client::new(&without_sdk_retries(&config));
    let mut account = Account {
        // The ID comes from GetCallerIdentity below; the reads a prefetch makes meanwhile
        // need only the alias and the partition.
        ctx: AccountContext {
            alias: alias.to_string(),
            account_id: String::new(),
            partition: region::partition_of(&region).to_string(),
            region: region.clone(),
        },
        caller: String::new(),
        iam: aws_sdk_iam::Client::new(&without_sdk_retries(&config)),
        config,
        stats,
        limits,
        prefetched: Arc::default(),
    };
    let identify = retry(&account.stats, &account.limits, "GetCallerIdentity", || {
        sts.get_caller_identity().send()
    });
    let read = async {
        match prefetch {
            Prefetch::No => None,
            Prefetch::Yes { report } => Some(read::fetch(&account, report).await),
        }
    };
    let (who, fetched) = tokio::join!(identify, read);
    let who = who.map_err(|e| {
        let host = target
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_STS").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let profile = spec
            .profile
            .clone()
            .or_else(|| target.profile.clone())
            .or_else(|| std::env::var("AWS_PROFILE").ok());
        connect_error(alias, &host, profile.as_deref(), &AwsError::from_sdk(&e))
    })?;
    let arn = who.arn().unwrap_or_default().to_string();
    let partition = arn
        .split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
        .to_string();
    account.ctx.account_id = who
        .account()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("GetCallerIdentity returned no account ID"))?;
    // Read under another partition than the caller's: read again, under the right one.
    if partition == account.ctx.partition {
        *account.prefetched.lock().expect("prefetch lock") = fetched;
    }
    account.ctx.partition = partition;
    account.caller = arn;
    Ok(account)
}

/// How long retryable errors are retried: IAM's eventual consistency can last about a
/// minute; Terraform waits two.
pub const RETRY_BUDGET: Duration = Duration::from_secs(120);

/// Whether an error is worth retrying: throttling, transient service and network errors,
/// and the errors IAM gives while a just-created principal or policy is not yet visible.
/// An unreachable endpoint fails fast, with a clear message, rather than for two minutes.
pub fn is_retryable(e: &AwsError, unreachable: bool) -> bool {
    match e.kind {
        ErrorKind::Throttled | ErrorKind::Service => true,
        ErrorKind::Network => !unreachable,
        ErrorKind::Conflict => e.is("ConcurrentModification"),
        ErrorKind::InvalidInput => {
            e.is("MalformedPolicyDocument") && e.message.contains("Invalid principal")
        }
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or the retry budget is spent; each
/// attempt is counted and waits for a slot under the API's limit, and each retry is
/// logged (visible with -v).
pub async fn retry<T, E, F, Fut>(
    stats: &Stats,
    limits: &limit::Limits,
    what: &'static str,
    mut call: F,
) -> Result<
    T,
    aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
>
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<
        Output = Result<
            T,
            aws_sdk_iam::error::SdkError<
                E,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >,
    >,
{
    use aws_sdk_iam::error::SdkError;
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let slot = limits.start(what).await;
        stats.count(what);
        let e = match call().await {
            Ok(v) => {
                slot.finish(limit::Outcome::Succeeded);
                return Ok(v);
            }
            Err(e) => e,
        };
        let err = AwsError::from_sdk(&e);
        let throttled = err.kind == ErrorKind::Throttled;
        let outcome = if throttled {
            stats.count_throttle();
            limit::Outcome::Throttled
        } else {
            limit::Outcome::Failed
        };
        let unreachable = matches!(e, SdkError::DispatchFailure(_)) && is_unreachable(&err.message);
        if !is_retryable(&err, unreachable) || start.elapsed() + delay > RETRY_BUDGET {
            slot.finish(outcome);
            return Err(e);
        }
        tracing::info!(
            "retrying {what} in {:.1}s (attempt {attempt}): {err}",
            delay.as_secs_f64(),
        );
        if throttled {
            // A throttled call keeps its slot while it waits: when the API's bucket is
            // empty its rate falls with the waits, even at a limit of one.
            tokio::time::sleep(jitter(delay)).await;
            slot.finish(outcome);
        } else {
            slot.finish(outcome);
            tokio::time::sleep(jitter(delay)).await;
        }
        delay = (delay * 2).min(Duration::from_secs(10));
        attempt += 1;
    }
}

/// Whether a failure to send means the endpoint cannot be reached at all (fail fast, with
/// the message), rather than a connection that dropped mid-call (worth retrying).
fn is_unreachable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection refused",
        "dns error",
        "failed to lookup address",
        "no route to host",
        "network is unreachable",
        "certificate",
        "invalid peer",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// Up to 25% less than `d`, so that concurrent retries spread out. The randomness comes
/// from std's per-instance hasher keys: enough to de-synchronise retries.
pub(crate) fn jitter(d: Duration) -> Duration {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(d);
    let frac = (r % 250) as f64 / 1000.0;
    d.mul_f64(1.0 - frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_shortens_by_at_most_a_quarter() {
        let d = Duration::from_secs(4);
        let values: Vec<Duration> = (0..50).map(|_| jitter(d)).collect();
        assert!(values.iter().all(|j| *j <= d && *j >= d.mul_f64(0.75)));
        assert!(values.iter().any(|j| *j != values[0]), "jitter must vary");
    }

    /// The hints of a failed GetCallerIdentity: the emulator hint only for an endpoint on
    /// this machine, expired credentials called so, the SSO login naming the profile.
    #[test]
    fn connect_errors_hint_at_the_fix_for_this_endpoint_and_profile() {
        let err = |kind, code: Option<&str>, message: &str| AwsError {
            kind,
            code: code.map(str::to_string),
            message: message.into(),
        };
        let net = err(
            ErrorKind::Network,
            None,
            "dispatch failure: connection refused",
        );
        let real =
            connect_error("default", "https://sts.us-east-1.amazonaws.com", None, &net).to_string();
        assert!(!real.contains("localstack/up"), "{real}");
        assert!(real.contains("HTTPS_PROXY"), "{real}");
        let local = connect_error("default", "http://127.0.0.1:4566", None, &net).to_string();
        assert!(local.contains("(eval \"$(localstack/up)\")"), "{local}");

        for code in ["ExpiredToken", "ExpiredTokenException", "RequestExpired"] {
            let e = err(
                ErrorKind::from_code(code),
                Some(code),
                "The security token included in the request is expired",
            );
            let text =
                connect_error("default", "https://sts.amazonaws.com", Some("dev"), &e).to_string();
            assert!(
                text.contains("help: the credentials have expired"),
                "{code}: {text}"
            );
            assert!(text.contains("aws sso login --profile dev"), "{text}");
        }

        let sso = err(
            ErrorKind::Credentials,
            None,
            "the SSO token for profile prod-admin is missing or expired; failed to load token",
        );
        let text = connect_error(
            "default",
            "https://sts.amazonaws.com",
            Some("prod-admin"),
            &sso,
        )
        .to_string();
        assert!(
            text.contains("`aws sso login --profile prod-admin`"),
            "{text}"
        );
        assert!(!text.contains("NAME"), "{text}");
    }

    #[test]
    fn loopback_endpoints_are_emulators() {
        assert!(is_loopback_url("http://127.0.0.1:4566"));
        assert!(is_loopback_url("http://localhost:4566/"));
        assert!(is_loopback_url("http://[::1]:4566"));
        assert!(!is_loopback_url("https://iam.amazonaws.com"));
        assert!(!is_loopback_url("https://127.example.com"));
    }

    #[test]
    fn retryable_errors() {
        let e = |code: &str, message: &str| AwsError {
            kind: ErrorKind::from_code(code),
            code: Some(code.into()),
            message: message.into(),
        };
        assert!(is_retryable(&e("Throttling", ""), false));
        assert!(is_retryable(
            &e(
                "MalformedPolicyDocument",
                "Invalid principal in policy: \"AWS\":\"arn:aws:iam::1:role/x\""
            ),
            false
        ));
        assert!(!is_retryable(
            &e("MalformedPolicyDocument", "Syntax errors in policy."),
            false
        ));
        assert!(!is_retryable(&e("AccessDenied", ""), false));
        assert!(is_retryable(&e("ConcurrentModification", ""), false));
        let network = AwsError {
            kind: ErrorKind::Network,
            code: None,
            message: "cannot reach the endpoint".into(),
        };
        assert!(!is_retryable(&network, true));
        assert!(is_retryable(&network, false));
    }
}
