//! STS calls (AssumeRole, AssumeRoleWithWebIdentity, GetCallerIdentity) through one
//! `aws-sdk-sts` client per strategy, and the credential sources of the default chain and
//! profiles through `aws-config`. Errors name STS, the operation and the AWS error code.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::OnceCell;

use super::presign::AwsCredentials;
use crate::error::AuthError;
use crate::secret::Secret;

/// Builds the STS client on first use (loading the SDK's environment settings, including
/// `AWS_ENDPOINT_URL_STS`) and reuses it, so every STS call shares one connection pool.
pub struct Sts {
    client: OnceCell<aws_sdk_sts::Client>,
    timeout: Duration,
}

fn sdk_credentials(c: &AwsCredentials) -> Credentials {
    Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.expose().to_string(),
        c.session_token.as_ref().map(|t| t.expose().to_string()),
        c.expires_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        "backstage-kubernetes-auth-native",
    )
}

pub fn from_sdk_credentials(c: &Credentials) -> AwsCredentials {
    AwsCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: c.session_token().map(Secret::new),
        expires_at_ms: c.expiry().and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as u64)
        }),
    }
}

/// The cause chain of an SDK error. Some SDK errors embed the raw HTTP response (`Debug` of
/// its headers and body) in their text: that part is cut, since a body can hold credentials
/// and can be large; a cause is also capped in length.
fn chain(err: &dyn StdError) -> String {
    let clean = |text: String| {
        let text = match text.find(" Response {") {
            Some(at) => text[..at].trim_end().to_string(),
            None => text,
        };
        if text.chars().count() > MAX_CAUSE_CHARS {
            format!(
                "{}…",
                text.chars().take(MAX_CAUSE_CHARS).collect::<String>()
            )
        } else {
            text
        }
    };
    let mut parts = vec![clean(err.to_string())];
    let mut source = err.source();
    while let Some(s) = source {
        let text = clean(s.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

const MAX_CAUSE_CHARS: usize = 300;

fn sts_error<E>(operation: &'static str, target: &str, err: SdkError<E>) -> AuthError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let reason = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                // Not an STS error document. The parser's detail is left out: it could quote
                // a fragment of the body, and a body can hold credentials.
                (None, _) => format!("unreadable response, no AWS error code (HTTP {status})"),
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(_) => format!("request failed: {}", chain(&err)),
        SdkError::ResponseError(_) => "unreadable response".to_string(),
        _ => chain(&err),
    };
    upstream(operation, target, reason)
}

fn missing(operation: &'static str, target: &str, what: &str) -> AuthError {
    upstream(operation, target, format!("the response has no {what}"))
}

/// An STS failure, named by operation and (when there is one) the role it was for.
fn upstream(operation: &'static str, target: &str, reason: String) -> AuthError {
    AuthError::Upstream {
        strategy: "aws",
        endpoint: if target.is_empty() {
            format!("STS {operation}")
        } else {
            format!("STS {operation} {target}")
        },
        reason,
    }
}

/// Temporary credentials from a response. The SDK's XML reader tolerates a truncated body and
/// fills required fields with defaults, so an unusable answer is refused here.
fn temporary(
    operation: &'static str,
    target: &str,
    c: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<AwsCredentials, AuthError> {
    let c = c.ok_or_else(|| missing(operation, target, "Credentials"))?;
    let expiry = c.expiration();
    if c.access_key_id().is_empty()
        || c.secret_access_key().is_empty()
        || c.session_token().is_empty()
        || expiry.secs() <= 0
    {
        return Err(missing(
            operation,
            target,
            "usable Credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)",
        ));
    }
    Ok(AwsCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Some(Secret::new(c.session_token())),
        expires_at_ms: Some(
            (expiry.secs().max(0) as u64)
                .saturating_mul(1000)
                .saturating_add(u64::from(expiry.subsec_nanos() / 1_000_000)),
        ),
    })
}

pub struct AssumeRole<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub external_id: Option<&'a str>,
    pub region: &'a str,
}

impl Sts {
    pub fn new(timeout: Duration) -> Self {
        Sts {
            client: OnceCell::new(),
            timeout,
        }
    }

    /// Over a given client instead of one configured from the environment: the parser
    /// fuzzers (fuzz/) give it an HTTP client that answers with arbitrary bytes.
    pub fn with_client(client: aws_sdk_sts::Client, timeout: Duration) -> Self {
        Sts {
            client: OnceCell::new_with(Some(client)),
            timeout,
        }
    }

    async fn client(&self) -> &aws_sdk_sts::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::defaults(BehaviorVersion::latest())
                    .no_credentials()
                    .region(Region::new("us-east-1"))
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(self.timeout)
                            .connect_timeout(self.timeout)
                            .build(),
                    )
                    // One quick retry for transient failures; the caller's timeout bounds all.
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(2)
                            .with_initial_backoff(Duration::from_millis(100)),
                    )
                    .load()
                    .await;
                aws_sdk_sts::Client::new(&config)
            })
            .await
    }

    fn signed_with(master: &AwsCredentials, region: &str) -> aws_sdk_sts::config::Builder {
        aws_sdk_sts::config::Builder::default()
            .credentials_provider(sdk_credentials(master))
            .region(Region::new(region.to_string()))
    }

    pub async fn assume_role(
        &self,
        master: &AwsCredentials,
        params: AssumeRole<'_>,
    ) -> Result<AwsCredentials, AuthError> {
        let out = self
            .client()
            .await
            .assume_role()
            .role_arn(params.role_arn)
            .role_session_name(params.session_name)
            .set_external_id(params.external_id.map(str::to_string))
            .customize()
            .config_override(Self::signed_with(master, params.region))
            .send()
            .await
            .map_err(|e| sts_error("AssumeRole", params.role_arn, e))?;
        temporary("AssumeRole", params.role_arn, out.credentials())
    }

    pub async fn assume_role_with_web_identity(
        &self,
        token_file: &str,
        role_arn: &str,
        session_name: &str,
        region: &str,
    ) -> Result<AwsCredentials, AuthError> {
        let token = tokio::fs::read_to_string(token_file)
            .await
            .map_err(|e| AuthError::Io {
                strategy: "aws",
                what: "web identity token file",
                path: token_file.to_string(),
                reason: e.to_string(),
            })?;
        let out = self
            .client()
            .await
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .web_identity_token(token.trim())
            .customize()
            .config_override(
                aws_sdk_sts::config::Builder::default().region(Region::new(region.to_string())),
            )
            .send()
            .await
            .map_err(|e| sts_error("AssumeRoleWithWebIdentity", role_arn, e))?;
        temporary("AssumeRoleWithWebIdentity", role_arn, out.credentials())
    }

    pub async fn account_id(
        &self,
        master: &AwsCredentials,
        region: &str,
    ) -> Result<String, AuthError> {
        let out = self
            .client()
            .await
            .get_caller_identity()
            .customize()
            .config_override(Self::signed_with(master, region))
            .send()
            .await
            .map_err(|e| sts_error("GetCallerIdentity", "", e))?;
        out.account()
            .map(str::to_string)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("GetCallerIdentity", "", "Account"))
    }
}

/// A credential source of `aws-config`: the default chain (environment, shared files and
/// profiles incl. SSO and `credential_process`, web identity, ECS, IMDSv2) or one profile.
pub enum SdkSource {
    Chain {
        region: String,
        /// Built on first use; dropped after a failure, so the next call starts afresh. The
        /// chain's IMDS client keeps its session token for hours, and a token garbled in
        /// transit (a truncated answer) would otherwise fail every call until it expires.
        chain: std::sync::Mutex<Option<Arc<DefaultCredentialsChain>>>,
    },
    Profile {
        name: String,
        provider: aws_config::profile::ProfileFileCredentialsProvider,
    },
}

/// What the default chain ends with, for errors: its network sources (ECS container
/// credentials, IMDS) are what fail or hang, and an operator needs to know which was asked.
/// The endpoint is shown without its query.
fn chain_description() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let no_query = |u: String| u.split(['?', '#']).next().unwrap_or_default().to_string();
    let last = if let Some(uri) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        format!("ECS container credentials at {}", no_query(uri))
    } else if let Some(path) = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        format!(
            "ECS container credentials at http://169.254.170.2{}",
            no_query(path)
        )
    } else if var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return "AWS credential chain".to_string();
    } else {
        format!(
            "IMDS at {}",
            no_query(
                var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                    .unwrap_or_else(|| "http://169.254.169.254".to_string())
            )
        )
    };
    format!("AWS credential chain (last source: {last})")
}

impl SdkSource {
    pub fn chain(region: Option<&str>) -> Self {
        SdkSource::Chain {
            region: region.unwrap_or("us-east-1").to_string(),
            chain: std::sync::Mutex::new(None),
        }
    }

    pub fn profile(name: &str, region: Option<&str>) -> Self {
        let config =
            ProviderConfig::default().with_region(region.map(|r| Region::new(r.to_string())));
        SdkSource::Profile {
            name: name.to_string(),
            provider: aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&config)
                .profile_name(name)
                .build(),
        }
    }

    /// Names the source in errors.
    pub fn describe(&self) -> String {
        match self {
            SdkSource::Chain { .. } => chain_description(),
            SdkSource::Profile { name, .. } => format!("AWS profile {name}"),
        }
    }

    /// Credentials, or an error naming the source, within `timeout`: the SDK's own metadata
    /// clients retry with their own time limits, which could outlast the caller's.
    pub async fn credentials(&self, timeout: Duration) -> Result<AwsCredentials, AuthError> {
        let upstream = |reason: String| AuthError::Upstream {
            strategy: "aws",
            endpoint: self.describe(),
            reason,
        };
        let result = match tokio::time::timeout(timeout, self.provide()).await {
            Ok(result) => result
                .map(|c| from_sdk_credentials(&c))
                .map_err(|e| upstream(chain(&e))),
            Err(_) => Err(upstream(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        };
        if result.is_err() {
            self.forget_chain();
        }
        result
    }

    fn forget_chain(&self) {
        if let SdkSource::Chain { chain, .. } = self {
            if let Ok(mut slot) = chain.lock() {
                *slot = None;
            }
        }
    }

    async fn provide(&self) -> aws_credential_types::provider::Result {
        match self {
            SdkSource::Chain { region, chain } => {
                let current = chain.lock().map(|c| c.clone()).unwrap_or_default();
                let built = match current {
                    Some(built) => built,
                    None => {
                        let built = Arc::new(
                            DefaultCredentialsChain::builder()
                                .region(Region::new(region.clone()))
                                .build()
                                .await,
                        );
                        if let Ok(mut slot) = chain.lock() {
                            *slot = Some(Arc::clone(&built));
                        }
                        built
                    }
                };
                built.provide_credentials().await
            }
            SdkSource::Profile { provider, .. } => provider.provide_credentials().await,
        }
    }
}
