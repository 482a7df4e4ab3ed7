//! The shapes of `@backstage/plugin-kubernetes-node`'s contract, as plain Rust.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::AuthError;
use crate::http::TlsSettings;
use crate::secret::Secret;

/// `authMetadata`: typed as `Record<string, string>` by Backstage, but config can put any JSON
/// value there, so values stay JSON and each reader decides what a non-string means. A
/// B-tree: strategies read a handful of keys, where comparing them is cheaper than SipHash
/// (the hashing was a tenth of an `oidc` call).
pub type AuthMetadata = BTreeMap<String, Value>;

/// The `auth` object of a request (`KubernetesRequestAuth`): provider key to JSON value.
pub type RequestAuth = serde_json::Map<String, Value>;

pub const ANNOTATION_AUTH_PROVIDER: &str = "kubernetes.io/auth-provider";
pub const ANNOTATION_OIDC_TOKEN_PROVIDER: &str = "kubernetes.io/oidc-token-provider";
pub const ANNOTATION_AWS_ASSUME_ROLE: &str = "kubernetes.io/aws-assume-role";
pub const ANNOTATION_AWS_EXTERNAL_ID: &str = "kubernetes.io/aws-external-id";
pub const ANNOTATION_AWS_CLUSTER_ID: &str = "kubernetes.io/x-k8s-aws-id";
pub const ANNOTATION_AWS_ACCOUNT_ID: &str = "kubernetes.io/aws-account-id";
/// Not an annotation: the literal key the config locator copies `serviceAccountToken` into.
pub const SERVICE_ACCOUNT_TOKEN_KEY: &str = "serviceAccountToken";

/// The part of `ClusterDetails` a strategy can read. The napi layer fills only what the
/// strategy's [`InputSpec`] asks for, so unread fields cost nothing per call.
#[derive(Debug, Clone, Default)]
pub struct ClusterDetails {
    pub name: String,
    pub url: String,
    pub auth_metadata: AuthMetadata,
    pub skip_tls_verify: bool,
    pub ca_data: Option<String>,
    pub ca_file: Option<String>,
    /// The TLS fields were left unread (the napi layer reads them only when a strategy needs
    /// them: `caData` is ~1.5 KB a call that a cache hit never uses). See [`Self::require_tls`].
    pub tls_deferred: bool,
}

impl ClusterDetails {
    /// A metadata value read the way JS truthiness reads it: missing, `null`, `false`, `0`
    /// and `''` are absent. A present non-string value is reported as such.
    pub fn annotation(&self, key: &str) -> AnnotationValue<'_> {
        annotation(&self.auth_metadata, key)
    }

    /// Call before anything that will use the TLS fields; fails with
    /// [`AuthError::TlsDeferred`] while they are unread, and the napi layer then reads them
    /// and calls `get_credential` again. It must come before the first await.
    pub fn require_tls(&self) -> Result<(), AuthError> {
        if self.tls_deferred {
            return Err(AuthError::TlsDeferred);
        }
        Ok(())
    }

    /// The cluster's TLS settings for an HTTP client.
    pub fn tls_settings(&self) -> Result<TlsSettings, AuthError> {
        self.require_tls()?;
        Ok(TlsSettings {
            ca_data: self.ca_data.clone(),
            ca_file: self.ca_file.clone(),
            skip_tls_verify: self.skip_tls_verify,
        })
    }
}

pub enum AnnotationValue<'a> {
    Absent,
    Str(&'a str),
    /// Truthy but not a string (a number, an object...): a config mistake.
    NotString,
}

pub fn annotation<'a>(metadata: &'a AuthMetadata, key: &str) -> AnnotationValue<'a> {
    match metadata.get(key) {
        None => AnnotationValue::Absent,
        Some(v) if !is_truthy(v) => AnnotationValue::Absent,
        Some(Value::String(s)) => AnnotationValue::Str(s),
        Some(_) => AnnotationValue::NotString,
    }
}

/// JavaScript truthiness of a JSON value (`NaN` cannot be represented in JSON).
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// What `getCredential` resolves to; the JS `type` strings are fixed by the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesCredential {
    BearerToken { token: Secret },
    X509ClientCertificate { cert: Arc<str>, key: Secret },
    Anonymous,
}

impl KubernetesCredential {
    pub fn bearer(token: impl Into<String>) -> Self {
        KubernetesCredential::BearerToken {
            token: Secret::new(token),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            KubernetesCredential::BearerToken { .. } => "bearer token",
            KubernetesCredential::X509ClientCertificate { .. } => "x509 client certificate",
            KubernetesCredential::Anonymous => "anonymous",
        }
    }
}

/// Which inputs a strategy reads. The napi layer converts exactly these from the JS objects:
/// converting a whole `clusterDetails` per call would cost more than most strategies' work.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputSpec {
    /// `clusterDetails.name`.
    pub cluster_name: bool,
    /// `clusterDetails.url`.
    pub cluster_url: bool,
    /// `skipTLSVerify`, `caData`, `caFile`.
    pub cluster_tls: bool,
    /// The `authMetadata` keys read.
    pub metadata_keys: &'static [&'static str],
    /// The `requestAuth` keys read, whole; `"a.b"` reads only `b` inside `a` (as
    /// `{a: {b}}`), when `a` is an object.
    pub request_auth_keys: &'static [&'static str],
    /// `(a, m)`: reads only `requestAuth[a][p]`, where `p` is the string in `authMetadata[m]`
    /// (as `{a: {p}}`), when `a` is an object; `m` must be among `metadata_keys`. Reading all
    /// of `a` would copy every provider's token to use one.
    pub request_auth_by_metadata: Option<(&'static str, &'static str)>,
}
