//! Test-only (`--features test-panics`): a strategy that panics where it is told to, so the
//! tests can show that no panic anywhere aborts Node.

use std::time::Duration;

use async_trait::async_trait;

use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::system_clock;
use crate::error::AuthError;
use crate::strategy::AuthenticationStrategy;
use crate::types::{AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicAt {
    /// In `credential_now` (on the JS thread, before any future exists).
    CredentialNow,
    /// In `get_credential` before anything is awaited (the first poll, on the JS thread).
    FirstPoll,
    /// In `get_credential` after an await (on the Tokio runtime).
    AfterAwait,
    /// Inside a cache fetch (a spawned single-flight task).
    InCacheFetch,
    Validate,
    Present,
}

pub struct TestPanicStrategy {
    at: PanicAt,
    cache: ExpiringCache<(), u8>,
}

impl TestPanicStrategy {
    pub fn new(at: PanicAt) -> Self {
        TestPanicStrategy {
            at,
            cache: ExpiringCache::new(CacheConfig {
                capacity: 1,
                fetch_timeout: Duration::from_secs(5),
                owner: "testPanic",
                what: "fetch",
                clock: system_clock(),
            }),
        }
    }
}

#[allow(clippy::panic)]
#[async_trait]
impl AuthenticationStrategy for TestPanicStrategy {
    fn name(&self) -> &'static str {
        "testPanic"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec::default()
    }

    fn credential_now(
        &self,
        _c: &ClusterDetails,
        _a: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        if self.at == PanicAt::CredentialNow {
            panic!("test panic in credential_now");
        }
        None
    }

    async fn get_credential(
        &self,
        _c: &ClusterDetails,
        _a: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        match self.at {
            PanicAt::FirstPoll => panic!("test panic in the first poll"),
            PanicAt::AfterAwait => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                panic!("test panic after an await")
            }
            PanicAt::InCacheFetch => {
                self.cache
                    .get_or_fetch((), || async {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        if std::hint::black_box(true) {
                            panic!("test panic in a cache fetch");
                        }
                        Ok(Expiring {
                            value: 0,
                            refresh_at_ms: 0,
                            expires_at_ms: 0,
                        })
                    })
                    .await?;
                Ok(KubernetesCredential::Anonymous)
            }
            _ => Ok(KubernetesCredential::Anonymous),
        }
    }

    fn validate_cluster(&self, _m: &AuthMetadata) -> Vec<AuthError> {
        if self.at == PanicAt::Validate {
            panic!("test panic in validateCluster");
        }
        Vec::new()
    }

    fn present_auth_metadata(&self, _m: &AuthMetadata) -> AuthMetadata {
        if self.at == PanicAt::Present {
            panic!("test panic in presentAuthMetadata");
        }
        AuthMetadata::new()
    }
}
