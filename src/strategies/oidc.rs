//! `oidc`: the user's token from `requestAuth.oidc[<provider>]`, where the provider comes from
//! the cluster's `kubernetes.io/oidc-token-provider` (contract 5.7).

use async_trait::async_trait;
use serde_json::Value;

use super::supplied_token;
use crate::error::{AuthError, InputError};
use crate::strategy::AuthenticationStrategy;
use crate::types::{
    annotation, AnnotationValue, AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential,
    RequestAuth, ANNOTATION_OIDC_TOKEN_PROVIDER,
};

pub const PROVIDER_NOT_CONFIGURED: &str =
    "oidc authProvider requires a configured oidcTokenProvider";
pub const MUST_SPECIFY_PROVIDER: &str = "Must specify a token provider for 'oidc' strategy";

#[derive(Debug, Default)]
pub struct OidcStrategy;

fn provider_not_string() -> InputError {
    InputError::new(
        format!("clusterDetails.authMetadata['{ANNOTATION_OIDC_TOKEN_PROVIDER}']"),
        "a string",
    )
}

impl OidcStrategy {
    fn pass_through(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let provider = match cluster.annotation(ANNOTATION_OIDC_TOKEN_PROVIDER) {
            AnnotationValue::Str(p) => p,
            AnnotationValue::Absent => return Err(AuthError::contract(PROVIDER_NOT_CONFIGURED)),
            AnnotationValue::NotString => return Err(provider_not_string().into()),
        };
        // A non-object `oidc` holds no provider keys, as `authConfig.oidc?.[p]` reads it.
        let supplied = match auth.get("oidc") {
            Some(Value::Object(by_provider)) => by_provider.get(provider),
            _ => None,
        };
        match supplied_token(supplied, || format!("requestAuth.oidc.{provider}"))? {
            Some(token) => Ok(KubernetesCredential::bearer(token)),
            None => Err(AuthError::contract(format!(
                "Auth token not found under oidc.{provider} in request body"
            ))),
        }
    }
}

#[async_trait]
impl AuthenticationStrategy for OidcStrategy {
    fn name(&self) -> &'static str {
        "oidc"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            metadata_keys: &[ANNOTATION_OIDC_TOKEN_PROVIDER],
            request_auth_by_metadata: Some(("oidc", ANNOTATION_OIDC_TOKEN_PROVIDER)),
            ..InputSpec::default()
        }
    }

    fn credential_now(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        Some(self.pass_through(cluster, auth))
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        self.pass_through(cluster, auth)
    }

    fn validate_cluster(&self, metadata: &AuthMetadata) -> Vec<AuthError> {
        match annotation(metadata, ANNOTATION_OIDC_TOKEN_PROVIDER) {
            AnnotationValue::Str(_) => Vec::new(),
            AnnotationValue::Absent => vec![AuthError::contract(MUST_SPECIFY_PROVIDER)],
            AnnotationValue::NotString => vec![provider_not_string().into()],
        }
    }
}
