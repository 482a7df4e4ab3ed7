//! `azure` (`AzureIdentityStrategy`, contract 5.4) and `microsoftEntraId`
//! (`MicrosoftEntraIdStrategy`, the unreleased Backstage strategy for clusters that trust an
//! Entra ID application other than AKS's).
//!
//! Both keep Backstage's token rules on the one `ExpiringCache`: a token is reused until 15
//! minutes before it expires; then one fetch (10 s limit) is shared by every caller; if it
//! fails while the old token is still valid, the old token is served and the next call tries
//! again. Unlike Backstage, a failure with no valid token is not sticky: callers in the
//! following second or so (jittered) share it, then the next call fetches again.

pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use self::sources::{AzureEnv, ChainSource, Native, SharedTokenSource, TokenSource};
use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::{system_clock, SharedClock};
use crate::error::{AuthError, InputError};
use crate::http::DEFAULT_TIMEOUT;
use crate::log::{no_logger, Level, SharedLogger};
use crate::options::Options;
use crate::secret::Secret;
use crate::strategy::AuthenticationStrategy;
use crate::types::{
    annotation, AnnotationValue, AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential,
    RequestAuth,
};

/// The AKS AAD server application's default scope.
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
pub const ANNOTATION_ENTRA_ID_SCOPE: &str = "kubernetes.io/microsoft-entra-id-scope";
pub const REFRESH_BEFORE_EXPIRY_MS: u64 = 15 * 60 * 1000;
/// How long callers share a failed fetch (jittered to half..all of it) before the next try.
pub const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
const ENTRA_CACHE_SIZE: usize = 256;
/// Time a source gets beyond `timeout` to report its own, more precise, timeout error.
const SOURCE_GRACE: Duration = Duration::from_millis(250);

/// Backstage's log lines.
pub const AZURE_FETCHING: &str = "Fetching new Azure token for AKS";
pub const AZURE_FAILED: &str = "Unable to fetch Azure token";
pub const ENTRA_FETCHING: &str = "Fetching new Microsoft Entra ID token";
pub const ENTRA_FAILED: &str = "Unable to fetch Microsoft Entra ID token";

/// What both strategies are built from (constructor options plus what the host injects).
#[derive(Clone)]
pub struct AzureOptions {
    pub timeout: Duration,
    pub failure_backoff: Duration,
    /// `false`: every call fetches (no cache, no single-flight), as a plain TokenCredential.
    pub cache: bool,
    pub clock: SharedClock,
    pub logger: SharedLogger,
    /// A host-provided credential (a JS `TokenCredential`); the native chain otherwise.
    pub source: Option<SharedTokenSource>,
    /// The environment the native chain reads; the process environment otherwise.
    pub env: Option<AzureEnv>,
}

impl Default for AzureOptions {
    fn default() -> Self {
        AzureOptions {
            timeout: DEFAULT_TIMEOUT,
            failure_backoff: DEFAULT_FAILURE_BACKOFF,
            cache: true,
            clock: system_clock(),
            logger: no_logger(),
            source: None,
            env: None,
        }
    }
}

impl AzureOptions {
    /// `{ timeoutMs?, failureBackoffMs?, cache?, env? }` (the JSON part of the options).
    pub fn read(&mut self, opts: &Options<'_>) -> Result<(), InputError> {
        if let Some(t) = opts.millis("timeoutMs")? {
            self.timeout = t;
        }
        if let Some(b) = opts.millis("failureBackoffMs")? {
            self.failure_backoff = b;
        }
        if let Some(c) = opts.boolean("cache")? {
            self.cache = c;
        }
        if let Some(env) = opts.value("env") {
            let serde_json::Value::Object(map) = env else {
                return Err(InputError::new("options.env", "an object of strings"));
            };
            let mut vars = std::collections::HashMap::new();
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) => {
                        vars.insert(k.clone(), s.clone());
                    }
                    serde_json::Value::Null => {}
                    _ => return Err(InputError::new(format!("options.env.{k}"), "a string")),
                }
            }
            self.env = Some(AzureEnv::from_map(vars));
        }
        Ok(())
    }

    fn env(&self) -> AzureEnv {
        self.env.clone().unwrap_or_else(AzureEnv::process)
    }
}

/// A source that could not be set up: every fetch reports why (a bad `AZURE_AUTHORITY_HOST`
/// must not stop a Backstage backend from starting; it fails the `azure` clusters only).
struct Broken(AuthError);

#[async_trait]
impl TokenSource for Broken {
    async fn get_token(
        &self,
        _scope: &str,
        _timeout: Duration,
    ) -> Result<sources::AccessToken, AuthError> {
        Err(self.0.clone())
    }
}

fn source_or_broken(result: Result<impl TokenSource, AuthError>) -> SharedTokenSource {
    match result {
        Ok(source) => Arc::new(source),
        Err(e) => Arc::new(Broken(e)),
    }
}

/// Tokens per scope from one source, under Backstage's rules (module comment).
struct TokenCache {
    source: SharedTokenSource,
    tokens: ExpiringCache<String, Secret>,
    logger: SharedLogger,
    timeout: Duration,
    owner: &'static str,
    fetching: &'static str,
    failed: &'static str,
}

impl TokenCache {
    fn new(
        owner: &'static str,
        capacity: usize,
        source: SharedTokenSource,
        options: &AzureOptions,
        (fetching, failed): (&'static str, &'static str),
    ) -> Self {
        TokenCache {
            source,
            tokens: ExpiringCache::new(CacheConfig {
                capacity: if options.cache { capacity } else { 0 },
                // The fetch bounds itself (and logs its timeout); this is the backstop.
                fetch_timeout: options.timeout + SOURCE_GRACE + Duration::from_millis(500),
                owner,
                what: "access token",
                clock: Arc::clone(&options.clock),
            })
            .with_failure_backoff(options.failure_backoff),
            logger: Arc::clone(&options.logger),
            timeout: options.timeout,
            owner,
            fetching,
            failed,
        }
    }

    fn fresh(&self, scope: &str) -> Option<KubernetesCredential> {
        let token = self.tokens.get_fresh(scope)?;
        Some(KubernetesCredential::BearerToken { token })
    }

    /// Completes without awaiting anything when the token is fresh.
    async fn token(&self, scope: &str) -> Result<Secret, AuthError> {
        let source = Arc::clone(&self.source);
        let logger = Arc::clone(&self.logger);
        let (timeout, owner, fetching, failed) =
            (self.timeout, self.owner, self.fetching, self.failed);
        let scope_owned = scope.to_string();
        self.tokens
            .get_or_fetch(scope.to_string(), move || async move {
                logger.log(Level::Info, fetching, None);
                // Sources bound their own requests by `timeout` and name the endpoint that did
                // not answer; this outer bound only catches what they do not (a JS credential).
                let outer = timeout + SOURCE_GRACE;
                let fetched = match tokio::time::timeout(
                    outer,
                    source.get_token(&scope_owned, timeout),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(AuthError::Timeout {
                        strategy: owner,
                        what: format!("fetching a token for {scope_owned}"),
                        timeout_ms: outer.as_millis() as u64,
                    }),
                };
                match fetched {
                    Ok(t) => Ok(Expiring {
                        value: t.token,
                        refresh_at_ms: t.expires_on_ms.saturating_sub(REFRESH_BEFORE_EXPIRY_MS),
                        expires_at_ms: t.expires_on_ms,
                    }),
                    Err(e) => {
                        logger.log(Level::Error, failed, Some(&e));
                        Err(e)
                    }
                }
            })
            .await
    }
}

/// `AzureIdentityStrategy`: one token for the AKS scope, shared by every `azure` cluster.
pub struct AzureIdentityStrategy {
    tokens: TokenCache,
}

impl AzureIdentityStrategy {
    pub fn new(options: AzureOptions) -> Self {
        let source = match &options.source {
            Some(source) => Arc::clone(source),
            None => source_or_broken(ChainSource::from_env("azure", &options.env(), true)),
        };
        AzureIdentityStrategy {
            tokens: TokenCache::new("azure", 1, source, &options, (AZURE_FETCHING, AZURE_FAILED)),
        }
    }
}

#[async_trait]
impl AuthenticationStrategy for AzureIdentityStrategy {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec::default()
    }

    fn credential_now(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        self.tokens.fresh(AKS_SCOPE).map(Ok)
    }

    async fn get_credential(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let token = self.tokens.token(AKS_SCOPE).await?;
        Ok(KubernetesCredential::BearerToken { token })
    }

    fn cached_entries(&self) -> usize {
        self.tokens.tokens.len()
    }
}

/// The `microsoftEntraId` options beyond `AzureOptions`.
#[derive(Clone, Default)]
pub struct EntraOptions {
    pub azure: AzureOptions,
    /// For clusters without the scope annotation.
    pub default_scope: Option<String>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub authority_host: Option<String>,
}

impl EntraOptions {
    /// `{ scope?, tenantId?, clientId?, clientSecret?, authorityHost?, ...AzureOptions }`.
    pub fn read(&mut self, opts: &Options<'_>) -> Result<(), InputError> {
        self.azure.read(opts)?;
        let text = |k: &str| -> Result<Option<String>, InputError> {
            Ok(opts
                .string(k)?
                .filter(|s| !s.is_empty())
                .map(str::to_string))
        };
        self.default_scope = text("scope")?;
        self.tenant_id = text("tenantId")?;
        self.client_id = text("clientId")?;
        self.client_secret = text("clientSecret")?.map(Secret::new);
        self.authority_host = text("authorityHost")?;
        Ok(())
    }

    /// Client secret from the options when given (all three together), else the service part
    /// of the chain: environment, workload identity, managed identity.
    fn source(&self) -> Result<ChainSource, AuthError> {
        const OWNER: &str = "microsoftEntraId";
        match (&self.tenant_id, &self.client_id, &self.client_secret) {
            (None, None, None) => {
                if self.authority_host.is_some() {
                    return Err(AuthError::Config(format!(
                        "{OWNER}: authorityHost applies to tenantId/clientId/clientSecret; for the environment chain set AZURE_AUTHORITY_HOST"
                    )));
                }
                ChainSource::from_env(OWNER, &self.azure.env(), false)
            }
            (Some(tenant), Some(client), Some(secret)) => {
                let authority = sources::authority_host(
                    OWNER,
                    self.authority_host
                        .as_deref()
                        .or(self.azure.env().get("AZURE_AUTHORITY_HOST")),
                )?;
                Ok(ChainSource::single(
                    OWNER,
                    Native::ClientSecret {
                        app: sources::App {
                            tenant_id: tenant.clone(),
                            client_id: client.clone(),
                            authority,
                        },
                        secret: secret.clone(),
                    },
                ))
            }
            _ => Err(AuthError::Config(format!(
                "{OWNER}: tenantId, clientId and clientSecret must be given together"
            ))),
        }
    }
}

/// `MicrosoftEntraIdStrategy`: a token per scope (the cluster's annotation, else the default).
pub struct MicrosoftEntraIdStrategy {
    tokens: TokenCache,
    default_scope: Option<String>,
}

pub const NO_SCOPE: &str = "has no Microsoft Entra ID scope: set authMetadata['kubernetes.io/microsoft-entra-id-scope'] or the strategy's default scope (kubernetes.auth.providers.microsoft.<env>.scope)";

impl MicrosoftEntraIdStrategy {
    pub fn new(options: EntraOptions) -> Self {
        let source = match &options.azure.source {
            Some(source) => Arc::clone(source),
            None => source_or_broken(options.source()),
        };
        MicrosoftEntraIdStrategy {
            tokens: TokenCache::new(
                "microsoftEntraId",
                ENTRA_CACHE_SIZE,
                source,
                &options.azure,
                (ENTRA_FETCHING, ENTRA_FAILED),
            ),
            default_scope: options.default_scope,
        }
    }

    fn scope<'a>(&'a self, metadata: &'a AuthMetadata) -> Result<Option<&'a str>, InputError> {
        match annotation(metadata, ANNOTATION_ENTRA_ID_SCOPE) {
            AnnotationValue::Str(s) => Ok(Some(s)),
            AnnotationValue::Absent => Ok(self.default_scope.as_deref()),
            AnnotationValue::NotString => Err(InputError::new(
                format!("authMetadata['{ANNOTATION_ENTRA_ID_SCOPE}']"),
                "a string",
            )),
        }
    }

    /// The scope a cluster's token is for: its annotation, else the default scope.
    fn cluster_scope<'a>(&'a self, cluster: &'a ClusterDetails) -> Result<&'a str, AuthError> {
        self.scope(&cluster.auth_metadata)
            .map_err(|e| InputError::new(format!("clusterDetails.{}", e.field), e.expected))?
            .ok_or_else(|| {
                AuthError::Config(format!(
                    "microsoftEntraId: cluster '{}' {NO_SCOPE}",
                    cluster.name
                ))
            })
    }
}

#[async_trait]
impl AuthenticationStrategy for MicrosoftEntraIdStrategy {
    fn name(&self) -> &'static str {
        "microsoftEntraId"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            cluster_name: true,
            metadata_keys: &[ANNOTATION_ENTRA_ID_SCOPE],
            ..InputSpec::default()
        }
    }

    /// A missing or bad scope, or a fresh token for it.
    fn credential_now(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        match self.cluster_scope(cluster) {
            Ok(scope) => self.tokens.fresh(scope).map(Ok),
            Err(err) => Some(Err(err)),
        }
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let scope = self.cluster_scope(cluster)?;
        let token = self.tokens.token(scope).await?;
        Ok(KubernetesCredential::BearerToken { token })
    }

    fn validate_cluster(&self, metadata: &AuthMetadata) -> Vec<AuthError> {
        match self.scope(metadata) {
            Ok(Some(_)) => Vec::new(),
            Ok(None) => vec![AuthError::Config(format!(
                "microsoftEntraId: the cluster {NO_SCOPE}"
            ))],
            Err(e) => vec![e.into()],
        }
    }

    fn cached_entries(&self) -> usize {
        self.tokens.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::sources::{AccessToken, FnSource};
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::log::RecordingLogger;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MIN: u64 = 60_000;

    /// Backstage's `StaticTokenCredential`: `MY_TOKEN_<n>` expiring `expiry` after now; the
    /// third call fails.
    fn static_credential(
        clock: Arc<ManualClock>,
        expiry: u64,
    ) -> (SharedTokenSource, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let source = FnSource(move |_scope: &str| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                return Err(AuthError::contract("Third time never works."));
            }
            Ok(AccessToken {
                token: Secret::new(format!("MY_TOKEN_{n}")),
                expires_on_ms: clock.now_ms() + expiry,
            })
        });
        (Arc::new(source), count)
    }

    fn strategy(
        clock: &Arc<ManualClock>,
        expiry: u64,
        logger: Arc<RecordingLogger>,
    ) -> AzureIdentityStrategy {
        let (source, _) = static_credential(Arc::clone(clock), expiry);
        AzureIdentityStrategy::new(AzureOptions {
            clock: Arc::clone(clock) as SharedClock,
            logger,
            source: Some(source),
            failure_backoff: Duration::ZERO,
            ..AzureOptions::default()
        })
    }

    async fn token(s: &AzureIdentityStrategy) -> Result<String, AuthError> {
        match s
            .get_credential(&ClusterDetails::default(), &RequestAuth::new())
            .await?
        {
            KubernetesCredential::BearerToken { token } => Ok(token.into_exposed()),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn backstage_reuse_refresh_stale_and_expiry_rules() {
        let clock = ManualClock::at(1_000_000);
        let logger = Arc::new(RecordingLogger::default());
        let s = strategy(&clock, 16 * MIN, Arc::clone(&logger));
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_1");
        clock.set(1_000_000 + 2 * MIN);
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_2");
        clock.set(1_000_000 + 4 * MIN);
        // The third fetch fails; MY_TOKEN_2 is still valid, so it is served...
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_2");
        // ...and the next call fetches again.
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_4");
        let lines = logger.0.lock().unwrap().clone();
        assert_eq!(lines.iter().filter(|l| l.1 == AZURE_FETCHING).count(), 4);
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.0 == Level::Error && l.1 == AZURE_FAILED)
                .map(|l| l.2.clone().unwrap())
                .collect::<Vec<_>>(),
            ["Third time never works."]
        );
    }

    #[tokio::test]
    async fn refresh_starts_exactly_fifteen_minutes_before_expiry() {
        let clock = ManualClock::at(0);
        let s = strategy(&clock, 20 * MIN, Arc::new(RecordingLogger::default()));
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_1");
        clock.set(5 * MIN - 1);
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_1");
        clock.set(5 * MIN);
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_2");
    }

    #[tokio::test]
    async fn a_failure_after_expiry_is_not_sticky() {
        let clock = ManualClock::at(0);
        let s = strategy(&clock, 16 * MIN, Arc::new(RecordingLogger::default()));
        token(&s).await.unwrap();
        clock.set(2 * MIN);
        token(&s).await.unwrap();
        clock.set(19 * MIN);
        assert_eq!(
            token(&s).await.unwrap_err(),
            AuthError::contract("Third time never works.")
        );
        // Backstage would reject with the same error forever; we fetch again.
        assert_eq!(token(&s).await.unwrap(), "MY_TOKEN_4");
    }

    #[tokio::test]
    async fn entra_caches_per_scope_and_validates_the_scope() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let source = FnSource(move |scope: &str| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken {
                token: Secret::new(format!("T_{scope}")),
                expires_on_ms: u64::MAX / 2,
            })
        });
        let s = MicrosoftEntraIdStrategy::new(EntraOptions {
            azure: AzureOptions {
                source: Some(Arc::new(source)),
                ..AzureOptions::default()
            },
            default_scope: Some("default/.default".into()),
            ..EntraOptions::default()
        });
        let cluster = |scope: Option<&str>| ClusterDetails {
            name: "c".into(),
            auth_metadata: scope
                .map(|s| AuthMetadata::from([(ANNOTATION_ENTRA_ID_SCOPE.to_string(), s.into())]))
                .unwrap_or_default(),
            ..ClusterDetails::default()
        };
        for _ in 0..3 {
            for scope in [Some("a/.default"), Some(""), None, Some("b/x")] {
                let expected = format!(
                    "T_{}",
                    scope
                        .filter(|s| !s.is_empty())
                        .unwrap_or("default/.default")
                );
                match s
                    .get_credential(&cluster(scope), &RequestAuth::new())
                    .await
                    .unwrap()
                {
                    KubernetesCredential::BearerToken { token } => {
                        assert_eq!(token.expose(), expected)
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(s.cached_entries(), 3);
        assert!(s.validate_cluster(&AuthMetadata::new()).is_empty());

        let bare = MicrosoftEntraIdStrategy::new(EntraOptions::default());
        let errors = bare.validate_cluster(&AuthMetadata::new());
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .to_string()
            .contains("has no Microsoft Entra ID scope"));
        let bad = AuthMetadata::from([(ANNOTATION_ENTRA_ID_SCOPE.to_string(), 5.into())]);
        assert_eq!(
            bare.validate_cluster(&bad)[0].to_string(),
            "authMetadata['kubernetes.io/microsoft-entra-id-scope'] must be a string"
        );
    }
}
