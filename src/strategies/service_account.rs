//! `serviceAccount`: the cluster's configured `serviceAccountToken`, else the in-cluster
//! projected token file (contract 5.8). Backstage re-reads the file synchronously on every
//! call; Kubernetes rotates it about hourly, so we read it asynchronously, at most once per
//! `reload_interval`, and keep serving the last good token if a read fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::supplied_token;
use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::{system_clock, SharedClock};
use crate::error::{AuthError, InputError};
use crate::http::DEFAULT_TIMEOUT;
use crate::secret::Secret;
use crate::strategy::AuthenticationStrategy;
use crate::types::{
    ClusterDetails, InputSpec, KubernetesCredential, RequestAuth, SERVICE_ACCOUNT_TOKEN_KEY,
};

pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// client-go and kube-rs re-read projected tokens once a minute; so do we.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ServiceAccountOptions {
    pub token_path: PathBuf,
    pub reload_interval: Duration,
    pub timeout: Duration,
    /// `false`: read the file on every call, as Backstage does.
    pub cache: bool,
    pub clock: SharedClock,
}

impl Default for ServiceAccountOptions {
    fn default() -> Self {
        ServiceAccountOptions {
            token_path: PathBuf::from(DEFAULT_TOKEN_PATH),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            cache: true,
            clock: system_clock(),
        }
    }
}

pub struct ServiceAccountStrategy {
    token_path: Arc<PathBuf>,
    reload_interval_ms: u64,
    token_file: ExpiringCache<(), Secret>,
    clock: SharedClock,
}

impl ServiceAccountStrategy {
    pub fn new(options: ServiceAccountOptions) -> Self {
        ServiceAccountStrategy {
            token_path: Arc::new(options.token_path),
            reload_interval_ms: options.reload_interval.as_millis() as u64,
            token_file: ExpiringCache::new(CacheConfig {
                capacity: usize::from(options.cache),
                fetch_timeout: options.timeout,
                owner: "serviceAccount",
                what: "token file read",
                clock: Arc::clone(&options.clock),
            }),
            clock: options.clock,
        }
    }

    async fn in_cluster_token(&self) -> Result<Secret, AuthError> {
        if let Some(token) = self.token_file.get_fresh(&()) {
            return Ok(token);
        }
        let path = Arc::clone(&self.token_path);
        let clock = Arc::clone(&self.clock);
        let interval = self.reload_interval_ms;
        self.token_file
            .get_or_fetch((), move || async move {
                let bytes = tokio::fs::read(path.as_path())
                    .await
                    .map_err(|e| AuthError::Io {
                        strategy: "serviceAccount",
                        what: "token file",
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                // Backstage returns the file as read (`toString()`, not trimmed); so do we.
                let token = Secret::new(String::from_utf8_lossy(&bytes).into_owned());
                Ok(Expiring {
                    value: token,
                    refresh_at_ms: clock.now_ms().saturating_add(interval),
                    // The last good token stays usable: a failed re-read falls back to it.
                    expires_at_ms: u64::MAX,
                })
            })
            .await
    }
}

impl Default for ServiceAccountStrategy {
    fn default() -> Self {
        Self::new(ServiceAccountOptions::default())
    }
}

/// `authMetadata.serviceAccountToken`, when set.
fn configured_token(cluster: &ClusterDetails) -> Result<Option<&str>, InputError> {
    supplied_token(cluster.auth_metadata.get(SERVICE_ACCOUNT_TOKEN_KEY), || {
        format!("clusterDetails.authMetadata.{SERVICE_ACCOUNT_TOKEN_KEY}")
    })
}

#[async_trait]
impl AuthenticationStrategy for ServiceAccountStrategy {
    fn name(&self) -> &'static str {
        "serviceAccount"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            metadata_keys: &[SERVICE_ACCOUNT_TOKEN_KEY],
            ..InputSpec::default()
        }
    }

    /// A configured token, or the in-cluster file's while its cached read is fresh.
    fn credential_now(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        match configured_token(cluster) {
            Ok(Some(token)) => Some(Ok(KubernetesCredential::bearer(token))),
            Ok(None) => (self.token_file.get_fresh(&()))
                .map(|token| Ok(KubernetesCredential::BearerToken { token })),
            Err(err) => Some(Err(err.into())),
        }
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let token = match configured_token(cluster)? {
            Some(token) => Secret::new(token),
            None => self.in_cluster_token().await?,
        };
        Ok(KubernetesCredential::BearerToken { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn rereads_after_interval_and_keeps_last_good_token() {
        let dir = std::env::temp_dir().join(format!("sa-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "one\n").unwrap();
        let clock = ManualClock::at(1_000);
        let s = ServiceAccountStrategy::new(ServiceAccountOptions {
            token_path: path.clone(),
            clock: clock.clone(),
            ..Default::default()
        });
        let get = || async {
            match s
                .get_credential(&ClusterDetails::default(), &RequestAuth::new())
                .await
                .unwrap()
            {
                KubernetesCredential::BearerToken { token } => token.into_exposed(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(get().await, "one\n");
        std::fs::write(&path, "two").unwrap();
        assert_eq!(
            get().await,
            "one\n",
            "within the interval the file is not re-read"
        );
        clock.set(61_001);
        assert_eq!(get().await, "two");
        std::fs::remove_file(&path).unwrap();
        clock.set(200_000);
        assert_eq!(
            get().await,
            "two",
            "a failed re-read keeps the last good token"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
