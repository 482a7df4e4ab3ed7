//! `aks`: the user's AKS token from `requestAuth.aks`, passed through (contract 5.1).

use async_trait::async_trait;

use super::supplied_token;
use crate::error::AuthError;
use crate::strategy::AuthenticationStrategy;
use crate::types::{ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

#[derive(Debug, Default)]
pub struct AksStrategy;

impl AksStrategy {
    fn pass_through(&self, auth: &RequestAuth) -> Result<KubernetesCredential, AuthError> {
        Ok(
            match supplied_token(auth.get("aks"), || "requestAuth.aks".into())? {
                Some(token) => KubernetesCredential::bearer(token),
                None => KubernetesCredential::Anonymous,
            },
        )
    }
}

#[async_trait]
impl AuthenticationStrategy for AksStrategy {
    fn name(&self) -> &'static str {
        "aks"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            request_auth_keys: &["aks"],
            ..InputSpec::default()
        }
    }

    fn credential_now(
        &self,
        _cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        Some(self.pass_through(auth))
    }

    async fn get_credential(
        &self,
        _cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        self.pass_through(auth)
    }
}
