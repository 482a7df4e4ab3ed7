//! `aws` (`AwsIamStrategy`, contract 5.3): an EKS token presigned with credentials resolved the
//! way Backstage's `DefaultAwsCredentialsManager` resolves them (contract 5.3.1), but with
//! base and assumed-role credentials and tokens cached (design, caching table: aws row):
//!
//! - credentials per source (main account, configured account, role ARN + external id on top
//!   of its master), refreshed 5 minutes before they expire, single-flight;
//! - tokens per (cluster id, region, FIPS or not, role, external id, account), reused for at most
//!   `token_ttl` and never past the signing credentials' expiry minus one minute.
//!
//! With everything cached, `get_credential` completes without awaiting anything.

pub mod config;
pub mod presign;
pub mod sts;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;

use self::config::{Account, AccountDefaults, AwsIntegrationConfig};
use self::presign::{check_cluster_id, presign_token, sts_host, AwsCredentials, DEFAULT_REGION};
use self::sts::{AssumeRole, SdkSource, Sts};
use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::{system_clock, SharedClock};
use crate::error::{AuthError, InputError};
use crate::http::DEFAULT_TIMEOUT;
use crate::secret::Secret;
use crate::strategy::AuthenticationStrategy;
use crate::types::{
    ClusterDetails, InputSpec, KubernetesCredential, RequestAuth, ANNOTATION_AWS_ACCOUNT_ID,
    ANNOTATION_AWS_ASSUME_ROLE, ANNOTATION_AWS_CLUSTER_ID, ANNOTATION_AWS_EXTERNAL_ID,
};

/// Default token reuse: 10 minutes (STS accepts a presigned URL for 15 minutes).
pub const DEFAULT_TOKEN_CACHE: Duration = Duration::from_secs(600);
/// The longest a token may be reused: STS refuses it 15 minutes after X-Amz-Date.
pub const MAX_TOKEN_CACHE: Duration = Duration::from_secs(14 * 60);
const CREDENTIAL_REFRESH_EARLY_MS: u64 = 5 * 60 * 1000;
const TOKEN_CREDENTIAL_MARGIN_MS: u64 = 60 * 1000;
/// Credentials without an expiry (environment, static) are re-read this often.
const NON_EXPIRING_REFRESH_MS: u64 = 15 * 60 * 1000;
/// How much later than an upstream call's own bound the caches give up (see `cache` in `new`).
const CACHE_TIMEOUT_MARGIN: Duration = Duration::from_millis(250);
/// `RoleSessionName` of roles assumed for the `kubernetes.io/aws-assume-role` annotation.
pub const ANNOTATION_ROLE_SESSION: &str = "backstage-kubernetes";
/// `RoleSessionName` of `accounts[].roleName` roles, as `integration-aws-node`.
const ACCOUNT_ROLE_SESSION: &str = "backstage";
pub const NO_INTEGRATION: &str = "There is no AWS integration that matches";

#[derive(Clone)]
pub struct AwsOptions {
    pub config: AwsIntegrationConfig,
    /// `Duration::ZERO` turns the token cache off.
    pub token_cache: Duration,
    pub timeout: Duration,
    /// `false`: no credential or token caching at all, as Backstage.
    pub cache: bool,
    pub clock: SharedClock,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            config: AwsIntegrationConfig::default(),
            token_cache: DEFAULT_TOKEN_CACHE,
            timeout: DEFAULT_TIMEOUT,
            cache: true,
            clock: system_clock(),
        }
    }
}

/// Where credentials come from. `id` keys the credential cache.
enum Source {
    Static(AwsCredentials),
    Sdk {
        id: String,
        source: SdkSource,
    },
    Role {
        id: String,
        master: Arc<Source>,
        role_arn: String,
        session_name: &'static str,
        external_id: Option<String>,
        region: String,
    },
    WebIdentity {
        id: String,
        token_file: String,
        role_arn: String,
        region: String,
    },
}

impl Source {
    fn id(&self) -> &str {
        match self {
            Source::Static(c) => &c.access_key_id,
            Source::Sdk { id, .. } | Source::Role { id, .. } | Source::WebIdentity { id, .. } => id,
        }
    }
}

fn static_credentials(access_key_id: &str, secret: &Secret) -> AwsCredentials {
    AwsCredentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: secret.clone(),
        session_token: None,
        expires_at_ms: None,
    }
}

fn account_source(account: &Account, main: &Arc<Source>) -> Arc<Source> {
    let id = format!("account:{}", account.account_id);
    if let Some(role_arn) = account.role_arn() {
        let region = account
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        if let Some(token_file) = &account.web_identity_token_file {
            return Arc::new(Source::WebIdentity {
                id,
                token_file: token_file.clone(),
                role_arn,
                region,
            });
        }
        let master = match (&account.access_key_id, &account.secret_access_key) {
            (Some(key), Some(secret)) => Arc::new(Source::Static(static_credentials(key, secret))),
            _ => Arc::clone(main),
        };
        return Arc::new(Source::Role {
            id,
            master,
            role_arn,
            session_name: ACCOUNT_ROLE_SESSION,
            external_id: account.external_id.clone(),
            region,
        });
    }
    match (&account.access_key_id, &account.secret_access_key) {
        (Some(key), Some(secret)) => Arc::new(Source::Static(static_credentials(key, secret))),
        _ => Arc::new(Source::Sdk {
            id,
            source: match &account.profile {
                Some(profile) => SdkSource::profile(profile, account.region.as_deref()),
                None => SdkSource::chain(account.region.as_deref()),
            },
        }),
    }
}

/// The account id of an ARN, as `@aws-sdk/util-arn-parser` reads it.
pub fn arn_account_id(arn: &str) -> Result<&str, AuthError> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return Err(AuthError::contract("Malformed ARN"));
    }
    Ok(parts[4])
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    cluster_id: String,
    region: String,
    /// `AWS_USE_FIPS_ENDPOINT=true`: with the region, fixes the STS host.
    fips: bool,
    assume_role: Option<String>,
    external_id: Option<String>,
    account_id: Option<String>,
}

struct Inner {
    main: Arc<Source>,
    main_region: String,
    accounts: HashMap<String, Arc<Source>>,
    defaults: AccountDefaults,
    sts: Sts,
    timeout: Duration,
    credentials: ExpiringCache<String, AwsCredentials>,
    main_account_id: ExpiringCache<(), String>,
    tokens: ExpiringCache<TokenKey, Secret>,
    token_ttl_ms: u64,
    clock: SharedClock,
}

pub struct AwsIamStrategy {
    inner: Arc<Inner>,
}

impl AwsIamStrategy {
    pub fn new(options: AwsOptions) -> Self {
        let AwsIntegrationConfig {
            main_account,
            accounts,
            account_defaults,
        } = options.config;
        let main = Arc::new(
            match (&main_account.access_key_id, &main_account.secret_access_key) {
                (Some(key), Some(secret)) => Source::Static(static_credentials(key, secret)),
                _ => Source::Sdk {
                    id: "main".to_string(),
                    source: match &main_account.profile {
                        Some(profile) => {
                            SdkSource::profile(profile, main_account.region.as_deref())
                        }
                        None => SdkSource::chain(main_account.region.as_deref()),
                    },
                },
            },
        );
        let accounts = accounts
            .iter()
            .map(|a| (a.account_id.clone(), account_source(a, &main)))
            .collect();
        let cache = |capacity: usize, what: &'static str| CacheConfig {
            capacity: if options.cache { capacity } else { 0 },
            // Each upstream call is bounded by `timeout` and names its upstream when it runs
            // out; the caches' own bound (the last resort) comes after, not at the same time.
            fetch_timeout: options.timeout + CACHE_TIMEOUT_MARGIN,
            owner: "aws",
            what,
            clock: Arc::clone(&options.clock),
        };
        let token_ttl = options.token_cache.min(MAX_TOKEN_CACHE);
        AwsIamStrategy {
            inner: Arc::new(Inner {
                main,
                main_region: main_account
                    .region
                    .unwrap_or_else(|| DEFAULT_REGION.to_string()),
                accounts,
                defaults: account_defaults,
                sts: Sts::new(options.timeout),
                timeout: options.timeout,
                credentials: ExpiringCache::new(cache(256, "credentials (STS)")),
                // The main account id is discovered once (a failure is not kept).
                main_account_id: ExpiringCache::new(CacheConfig {
                    capacity: 1,
                    ..cache(1, "STS GetCallerIdentity")
                }),
                tokens: ExpiringCache::new(cache(
                    if token_ttl.is_zero() { 0 } else { 1024 },
                    "EKS token",
                )),
                token_ttl_ms: token_ttl.as_millis() as u64,
                clock: options.clock,
            }),
        }
    }
}

fn credential_entry(c: AwsCredentials, now: u64) -> Expiring<AwsCredentials> {
    let (refresh_at_ms, expires_at_ms) = match c.expires_at_ms {
        Some(exp) => (exp.saturating_sub(CREDENTIAL_REFRESH_EARLY_MS), exp),
        None => (now.saturating_add(NON_EXPIRING_REFRESH_MS), u64::MAX),
    };
    Expiring {
        value: c,
        refresh_at_ms,
        expires_at_ms,
    }
}

impl Inner {
    /// Credentials of `source`, from the cache when fresh (no await), else one shared fetch.
    fn credentials(
        self: &Arc<Self>,
        source: Arc<Source>,
    ) -> BoxFuture<'static, Result<AwsCredentials, AuthError>> {
        if let Source::Static(c) = &*source {
            return futures::future::ready(Ok(c.clone())).boxed();
        }
        let inner = Arc::clone(self);
        async move {
            let key = source.id().to_string();
            let fetcher = Arc::clone(&inner);
            inner
                .credentials
                .get_or_fetch(key, move || async move {
                    let c = fetcher.fetch(&source).await?;
                    Ok(credential_entry(c, fetcher.clock.now_ms()))
                })
                .await
        }
        .boxed()
    }

    async fn fetch(self: &Arc<Self>, source: &Source) -> Result<AwsCredentials, AuthError> {
        match source {
            Source::Static(c) => Ok(c.clone()),
            Source::Sdk { source, .. } => source.credentials(self.timeout).await,
            Source::Role {
                master,
                role_arn,
                session_name,
                external_id,
                region,
                ..
            } => {
                let m = self.credentials(Arc::clone(master)).await?;
                self.sts
                    .assume_role(
                        &m,
                        AssumeRole {
                            role_arn,
                            session_name,
                            external_id: external_id.as_deref(),
                            region,
                        },
                    )
                    .await
            }
            Source::WebIdentity {
                token_file,
                role_arn,
                region,
                ..
            } => {
                self.sts
                    .assume_role_with_web_identity(
                        token_file,
                        role_arn,
                        ACCOUNT_ROLE_SESSION,
                        region,
                    )
                    .await
            }
        }
    }

    async fn main_account_id(self: &Arc<Self>) -> Result<String, AuthError> {
        let inner = Arc::clone(self);
        self.main_account_id
            .get_or_fetch((), move || async move {
                let creds = inner.credentials(Arc::clone(&inner.main)).await?;
                let id = inner.sts.account_id(&creds, &inner.main_region).await?;
                Ok(Expiring {
                    value: id,
                    refresh_at_ms: u64::MAX,
                    expires_at_ms: u64::MAX,
                })
            })
            .await
    }

    /// `DefaultAwsCredentialsManager.getCredentialProvider({ accountId })`.
    async fn account(self: &Arc<Self>, account_id: &str) -> Result<Arc<Source>, AuthError> {
        if account_id.is_empty() {
            return Ok(Arc::clone(&self.main));
        }
        if let Some(source) = self.accounts.get(account_id) {
            return Ok(Arc::clone(source));
        }
        if let Some(role_name) = &self.defaults.role_name {
            let d = &self.defaults;
            let account = Account {
                account_id: account_id.to_string(),
                role_name: Some(role_name.clone()),
                partition: d.partition.clone(),
                region: d.region.clone(),
                external_id: d.external_id.clone(),
                web_identity_token_file: d.web_identity_token_file.clone(),
                ..Account::default()
            };
            return Ok(account_source(&account, &self.main));
        }
        if self.main_account_id().await? == account_id {
            return Ok(Arc::clone(&self.main));
        }
        Err(AuthError::contract(format!(
            "{NO_INTEGRATION} {account_id}. Please add a configuration for this AWS account."
        )))
    }

    async fn signing_credentials(
        self: &Arc<Self>,
        key: &TokenKey,
    ) -> Result<AwsCredentials, AuthError> {
        let master = if let Some(account_id) = &key.account_id {
            // 0.21.13+: a configured account's credentials, no fallback.
            self.account(account_id).await?
        } else if let Some(arn) = &key.assume_role {
            match self.account(arn_account_id(arn)?).await {
                Ok(source) => source,
                Err(AuthError::Contract(m)) if m.contains(NO_INTEGRATION) => Arc::clone(&self.main),
                Err(e) => return Err(e),
            }
        } else {
            Arc::clone(&self.main)
        };
        let source = match &key.assume_role {
            Some(arn) => Arc::new(Source::Role {
                id: format!(
                    "{}>{arn}#{}",
                    master.id(),
                    key.external_id.as_deref().unwrap_or("")
                ),
                master,
                role_arn: arn.clone(),
                session_name: ANNOTATION_ROLE_SESSION,
                external_id: key.external_id.clone(),
                region: key.region.clone(),
            }),
            None => master,
        };
        self.credentials(source).await
    }

    /// A token from one shared mint (token cache on), or freshly minted (off).
    fn token(self: &Arc<Self>, key: TokenKey) -> BoxFuture<'static, Result<Secret, AuthError>> {
        let inner = Arc::clone(self);
        async move {
            if !inner.tokens.is_enabled() {
                return inner.mint(&key).await.map(|e| e.value);
            }
            let minter = Arc::clone(&inner);
            let k = key.clone();
            inner
                .tokens
                .get_or_fetch(key, move || async move { minter.mint(&k).await })
                .await
        }
        .boxed()
    }

    async fn mint(self: &Arc<Self>, key: &TokenKey) -> Result<Expiring<Secret>, AuthError> {
        let creds = self.signing_credentials(key).await?;
        let now = self.clock.now_ms();
        let host = sts_host(&key.region, key.fips);
        let token = presign_token(&creds, &key.region, &host, &key.cluster_id, now)?;
        let (refresh_at_ms, expires_at_ms) =
            token_deadlines(now, self.token_ttl_ms, creds.expires_at_ms);
        Ok(Expiring {
            value: token,
            refresh_at_ms,
            expires_at_ms,
        })
    }
}

/// When a token signed at `now` is no longer reused (`ttl`), and when it is no longer served
/// even while a refresh fails (STS accepts it 15 minutes after signing): never later than one
/// minute before the signing credentials expire.
fn token_deadlines(now: u64, ttl_ms: u64, credentials_expire_at: Option<u64>) -> (u64, u64) {
    let limit =
        credentials_expire_at.map_or(u64::MAX, |e| e.saturating_sub(TOKEN_CREDENTIAL_MARGIN_MS));
    (
        now.saturating_add(ttl_ms).min(limit),
        now.saturating_add(MAX_TOKEN_CACHE.as_millis() as u64)
            .min(limit),
    )
}

fn metadata_string<'a>(
    cluster: &'a ClusterDetails,
    key: &'static str,
    truthy: bool,
) -> Result<Option<&'a str>, InputError> {
    match cluster.auth_metadata.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if truthy && s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Bool(false)) if truthy => Ok(None),
        Some(_) => Err(InputError::new(
            format!("clusterDetails.authMetadata['{key}']"),
            "a string",
        )),
    }
}

/// `AWS_REGION`, read on every call as Backstage does (`AWS_DEFAULT_REGION` is ignored).
pub fn current_region() -> String {
    std::env::var("AWS_REGION").unwrap_or_else(|_| DEFAULT_REGION.to_string())
}

pub fn use_fips() -> bool {
    std::env::var_os("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[async_trait]
impl AuthenticationStrategy for AwsIamStrategy {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            cluster_name: true,
            metadata_keys: &[
                ANNOTATION_AWS_CLUSTER_ID,
                ANNOTATION_AWS_ASSUME_ROLE,
                ANNOTATION_AWS_EXTERNAL_ID,
                ANNOTATION_AWS_ACCOUNT_ID,
            ],
            ..InputSpec::default()
        }
    }

    /// A bad annotation, or a cached token.
    fn credential_now(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        let key = match token_key(cluster) {
            Ok(key) => key,
            Err(err) => return Some(Err(err.into())),
        };
        let token = self.inner.tokens.get_fresh(&key)?;
        Some(Ok(KubernetesCredential::BearerToken { token }))
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let key = token_key(cluster)?;
        // The cache hit stays small and inline; everything else is one boxed future, so the
        // hit path does not build (and move) the large state of the STS and signing paths.
        let token = match self.inner.tokens.get_fresh(&key) {
            Some(token) => token,
            None => self.inner.token(key).await?,
        };
        Ok(KubernetesCredential::BearerToken { token })
    }
}

/// What a token is cached under: the cluster's annotations and the region settings.
fn token_key(cluster: &ClusterDetails) -> Result<TokenKey, InputError> {
    // `?? clusterDetails.name`: only a missing or null id falls back; `''` is used as-is.
    let (cluster_id, field) = match metadata_string(cluster, ANNOTATION_AWS_CLUSTER_ID, false)? {
        Some(id) => (
            id,
            "clusterDetails.authMetadata['kubernetes.io/x-k8s-aws-id']",
        ),
        None => (cluster.name.as_str(), "clusterDetails.name"),
    };
    check_cluster_id(cluster_id, field)?;
    Ok(TokenKey {
        cluster_id: cluster_id.to_string(),
        region: current_region(),
        fips: use_fips(),
        assume_role: metadata_string(cluster, ANNOTATION_AWS_ASSUME_ROLE, true)?
            .map(str::to_string),
        external_id: metadata_string(cluster, ANNOTATION_AWS_EXTERNAL_ID, true)?
            .map(str::to_string),
        account_id: metadata_string(cluster, ANNOTATION_AWS_ACCOUNT_ID, true)?.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parsing_matches_util_arn_parser() {
        assert_eq!(
            arn_account_id("arn:aws:iam::123456789012:role/x").unwrap(),
            "123456789012"
        );
        assert_eq!(arn_account_id("arn:aws:iam:::role/x").unwrap(), "");
        assert_eq!(
            arn_account_id("SomeRole").unwrap_err().to_string(),
            "Malformed ARN"
        );
        assert!(arn_account_id("arn:aws:iam::1").is_err());
    }

    #[test]
    fn token_reuse_never_outlives_the_signing_credentials() {
        let min = 60_000;
        // Static credentials: the TTL, and 14 minutes at most.
        assert_eq!(token_deadlines(0, 10 * min, None), (10 * min, 14 * min));
        // Credentials expiring in 5 minutes: reuse stops 1 minute before.
        assert_eq!(
            token_deadlines(0, 10 * min, Some(5 * min)),
            (4 * min, 4 * min)
        );
        // Credentials expiring in 30 minutes: the TTL rules.
        assert_eq!(
            token_deadlines(0, 10 * min, Some(30 * min)),
            (10 * min, 14 * min)
        );
        // Credentials about to expire: not reusable at all.
        assert_eq!(token_deadlines(100_000, 10 * min, Some(30_000)), (0, 0));
    }

    #[test]
    fn credentials_refresh_five_minutes_early() {
        let c = |exp| AwsCredentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("s"),
            session_token: None,
            expires_at_ms: exp,
        };
        let e = credential_entry(c(Some(3_600_000)), 0);
        assert_eq!((e.refresh_at_ms, e.expires_at_ms), (3_300_000, 3_600_000));
        let e = credential_entry(c(None), 1_000);
        assert_eq!((e.refresh_at_ms, e.expires_at_ms), (901_000, u64::MAX));
    }

    #[tokio::test]
    async fn static_credentials_sign_without_io_and_tokens_are_cached() {
        let clock = crate::clock::ManualClock::at(1_704_164_645_000);
        let config = config::read(Some(&serde_json::json!({
            "mainAccount": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
        })))
        .unwrap();
        let s = AwsIamStrategy::new(AwsOptions {
            config,
            clock: clock.clone(),
            ..AwsOptions::default()
        });
        let cluster = ClusterDetails {
            name: "test-cluster".into(),
            ..ClusterDetails::default()
        };
        std::env::remove_var("AWS_REGION");
        std::env::remove_var("AWS_USE_FIPS_ENDPOINT");
        let token = |c: KubernetesCredential| match c {
            KubernetesCredential::BearerToken { token } => token.into_exposed(),
            other => panic!("{other:?}"),
        };
        let first = token(
            s.get_credential(&cluster, &RequestAuth::new())
                .await
                .unwrap(),
        );
        let expected = presign_token(
            &static_credentials(
                "AKIDEXAMPLE",
                &Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ),
            "us-east-1",
            "sts.us-east-1.amazonaws.com",
            "test-cluster",
            1_704_164_645_000,
        )
        .unwrap();
        assert_eq!(first, expected.expose());
        clock.set(1_704_164_645_000 + 599_000);
        assert_eq!(
            token(
                s.get_credential(&cluster, &RequestAuth::new())
                    .await
                    .unwrap()
            ),
            first
        );
        clock.set(1_704_164_645_000 + 601_000);
        assert_ne!(
            token(
                s.get_credential(&cluster, &RequestAuth::new())
                    .await
                    .unwrap()
            ),
            first
        );
    }
}
