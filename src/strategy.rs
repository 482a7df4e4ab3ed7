//! The one strategy trait. Strategies are plain async Rust; the napi layer converts the
//! inputs named by `inputs()` and drives `get_credential` (see `node::drive`).

use async_trait::async_trait;

use crate::error::AuthError;
use crate::types::{AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

#[async_trait]
pub trait AuthenticationStrategy: Send + Sync + 'static {
    /// The name Backstage registers it under (`aks`, `serviceAccount`...), used in messages.
    fn name(&self) -> &'static str;

    /// What `get_credential` reads from its arguments; nothing else is converted.
    fn inputs(&self) -> InputSpec;

    /// Resolves without awaiting anything when no I/O is needed (pass-through strategies,
    /// cache hits): the napi layer then settles the promise on the JS thread.
    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError>;

    /// The credential when it needs no waiting at all (pass-through strategies, configured
    /// tokens): the napi layer asks this first, on the JS thread, and builds and polls the
    /// `get_credential` future only on `None`. It must agree with `get_credential`.
    fn credential_now(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        None
    }

    fn validate_cluster(&self, _metadata: &AuthMetadata) -> Vec<AuthError> {
        Vec::new()
    }

    fn present_auth_metadata(&self, _metadata: &AuthMetadata) -> AuthMetadata {
        AuthMetadata::new()
    }

    /// How many derived credentials the strategy holds in its cache (for operators and tests).
    fn cached_entries(&self) -> usize {
        0
    }
}
