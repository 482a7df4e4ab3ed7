//! `google`: the user's Google OAuth token from `requestAuth.google` (contract 5.5).

use async_trait::async_trait;

use super::supplied_token;
use crate::error::AuthError;
use crate::strategy::AuthenticationStrategy;
use crate::types::{ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

pub const TOKEN_NOT_FOUND: &str = "Google token not found under auth.google in request body";

#[derive(Debug, Default)]
pub struct GoogleStrategy;

impl GoogleStrategy {
    fn pass_through(&self, auth: &RequestAuth) -> Result<KubernetesCredential, AuthError> {
        match supplied_token(auth.get("google"), || "requestAuth.google".into())? {
            Some(token) => Ok(KubernetesCredential::bearer(token)),
            None => Err(AuthError::contract(TOKEN_NOT_FOUND)),
        }
    }
}

#[async_trait]
impl AuthenticationStrategy for GoogleStrategy {
    fn name(&self) -> &'static str {
        "google"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            request_auth_keys: &["google"],
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
