//! `localKubectlProxy`: no credential at all (contract 5.2).

use async_trait::async_trait;

use crate::error::AuthError;
use crate::strategy::AuthenticationStrategy;
use crate::types::{ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

#[derive(Debug, Default)]
pub struct AnonymousStrategy;

#[async_trait]
impl AuthenticationStrategy for AnonymousStrategy {
    fn name(&self) -> &'static str {
        "localKubectlProxy"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec::default()
    }

    fn credential_now(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        Some(Ok(KubernetesCredential::Anonymous))
    }

    async fn get_credential(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        Ok(KubernetesCredential::Anonymous)
    }
}
