//! `pinniped`: exchanges the user's cluster-scoped ID token for a short-lived x509 client
//! certificate at the Pinniped Concierge (TokenCredentialRequest, contract 5.9), and caches it
//! per user. Backstage ships only a helper for this (`PinnipedHelper`), caches nothing, and
//! rejects with a string or `undefined` on failure; `PinnipedClient` is that helper done right.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use super::supplied_token;
use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::{system_clock, SharedClock};
use crate::error::{AuthError, InputError};
use crate::http::{shared_factory, DEFAULT_TIMEOUT};
use crate::options::Options;
use crate::secret::Secret;
use crate::strategy::AuthenticationStrategy;
use crate::types::{
    annotation, AnnotationValue, AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential,
    RequestAuth,
};

pub const DEFAULT_TOKEN_CREDENTIAL_REQUEST_API_GROUP: &str =
    "login.concierge.pinniped.dev/v1alpha1";
pub const DEFAULT_AUTHENTICATOR_API_GROUP: &str = "authentication.concierge.pinniped.dev";
pub const DEFAULT_AUTHENTICATOR_KIND: &str = "JWTAuthenticator";
pub const DEFAULT_AUTHENTICATOR_NAME: &str = "supervisor";

pub const ANNOTATION_AUDIENCE: &str = "kubernetes.io/x-pinniped-audience";
pub const ANNOTATION_AUTHENTICATOR_NAME: &str = "kubernetes.io/x-pinniped-authenticator-name";
pub const ANNOTATION_AUTHENTICATOR_KIND: &str = "kubernetes.io/x-pinniped-authenticator-kind";
pub const ANNOTATION_AUTHENTICATOR_API_GROUP: &str =
    "kubernetes.io/x-pinniped-authenticator-api-group";
pub const ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP: &str =
    "kubernetes.io/x-pinniped-token-credential-request-api-group";

/// A cached certificate is dropped this long before it expires, so that a request started
/// with it still reaches the API server while the certificate is valid.
pub const CERT_EXPIRY_MARGIN_MS: u64 = 30_000;
pub const DEFAULT_CACHE_SIZE: usize = 10_000;
/// Concierge answers are a few KB; anything far larger is not one.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

pub const TOKEN_NOT_FOUND: &str =
    "Pinniped cluster-scoped ID token not found under auth.pinniped.clusteridtoken in request body";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticator {
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator {
            api_group: DEFAULT_AUTHENTICATOR_API_GROUP.into(),
            kind: DEFAULT_AUTHENTICATOR_KIND.into(),
            name: DEFAULT_AUTHENTICATOR_NAME.into(),
        }
    }
}

/// Backstage's `PinnipedParameters`.
#[derive(Debug, Clone)]
pub struct PinnipedParams {
    pub cluster_scoped_id_token: Secret,
    pub authenticator: Authenticator,
    /// `tokenCredentialRequest.apiGroup`: group *and* version, as Backstage names it.
    pub api_group: String,
}

impl PinnipedParams {
    /// Reads Backstage's `PinnipedParameters` object.
    pub fn from_json(value: Option<&Value>) -> Result<Self, InputError> {
        let params = Options::new(value, "pinnipedParams")?;
        let token = params
            .string("clusterScopedIdToken")?
            .ok_or_else(|| InputError::new("pinnipedParams.clusterScopedIdToken", "a string"))?;
        let auth = Options::new(
            params.value("authenticator"),
            "pinnipedParams.authenticator",
        )?;
        let required = |key: &str| {
            auth.string(key)?.map(str::to_string).ok_or_else(|| {
                InputError::new(format!("pinnipedParams.authenticator.{key}"), "a string")
            })
        };
        let authenticator = Authenticator {
            api_group: required("apiGroup")?,
            kind: required("kind")?,
            name: required("name")?,
        };
        let tcr = Options::new(
            params.value("tokenCredentialRequest"),
            "pinnipedParams.tokenCredentialRequest",
        )?;
        Ok(PinnipedParams {
            cluster_scoped_id_token: Secret::new(token),
            authenticator,
            api_group: tcr
                .string("apiGroup")?
                .unwrap_or(DEFAULT_TOKEN_CREDENTIAL_REQUEST_API_GROUP)
                .to_string(),
        })
    }
}

/// Backstage's `PinnipedClientCerts`.
#[derive(Debug, Clone)]
pub struct ClientCerts {
    pub cert: Arc<str>,
    pub key: Secret,
    pub expiration_timestamp: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenCredentialRequest<'a> {
    api_version: &'a str,
    kind: &'static str,
    spec: TokenCredentialRequestSpec<'a>,
}

#[derive(Serialize)]
struct TokenCredentialRequestSpec<'a> {
    authenticator: &'a Authenticator,
    token: &'a str,
}

/// The TokenCredentialRequest call. Stateless; connection pools come from the shared factory.
#[derive(Debug, Clone)]
pub struct PinnipedClient {
    pub timeout: Duration,
}

impl Default for PinnipedClient {
    fn default() -> Self {
        PinnipedClient {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

fn upstream(endpoint: &str, reason: impl Into<String>) -> AuthError {
    AuthError::Upstream {
        strategy: "pinniped",
        endpoint: endpoint.to_string(),
        reason: reason.into(),
    }
}

impl PinnipedClient {
    /// `POST <cluster origin>/apis/<apiGroup>/tokencredentialrequests`, exactly as Backstage's
    /// helper sends it: the cluster URL's path is replaced (its query kept), JSON `Accept` and
    /// `Content-Type`, no `Authorization`, body keys in Backstage's order.
    pub async fn token_credential_request(
        &self,
        cluster: &ClusterDetails,
        params: &PinnipedParams,
    ) -> Result<ClientCerts, AuthError> {
        let mut url = reqwest::Url::parse(&cluster.url).map_err(|e| {
            AuthError::Input(InputError {
                field: format!("clusterDetails.url ({e})"),
                expected: "an absolute URL",
            })
        })?;
        url.set_path(&format!(
            "/apis/{}/tokencredentialrequests",
            params.api_group
        ));
        let endpoint = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let client = shared_factory().client("pinniped", &cluster.tls_settings()?)?;
        let body = serde_json::to_vec(&TokenCredentialRequest {
            api_version: &params.api_group,
            kind: "TokenCredentialRequest",
            spec: TokenCredentialRequestSpec {
                authenticator: &params.authenticator,
                token: params.cluster_scoped_id_token.expose(),
            },
        })
        .map_err(|e| upstream(&endpoint, format!("cannot encode the request: {e}")))?;
        let request = client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, bytes) = client
            .exchange(request, self.timeout, MAX_RESPONSE_BYTES)
            .await
            .map_err(|reason| upstream(&endpoint, reason))?;
        parse_token_credential_response(&endpoint, status, &bytes)
    }
}

/// The Concierge's answer to a TokenCredentialRequest (`status` and body bytes, untrusted):
/// the credential, or an error naming `endpoint` with the Concierge's own reason. Public so
/// the parser fuzzers (fuzz/) can feed it arbitrary bytes.
pub fn parse_token_credential_response(
    endpoint: &str,
    status: u16,
    bytes: &[u8],
) -> Result<ClientCerts, AuthError> {
    let answer: Value = serde_json::from_slice(bytes)
        .map_err(|_| upstream(endpoint, format!("HTTP {status}: the response is not JSON")))?;
    if let Some(credential) = answer
        .pointer("/status/credential")
        .filter(|c| c.is_object())
    {
        let field = |name: &str| {
            credential
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    upstream(
                        endpoint,
                        format!("HTTP {status}: status.credential.{name} is missing"),
                    )
                })
        };
        return Ok(ClientCerts {
            cert: field("clientCertificateData")?.into(),
            key: Secret::new(field("clientKeyData")?),
            expiration_timestamp: field("expirationTimestamp")?,
        });
    }
    // A Kubernetes `Status` (401, 403, 404...) carries its reason in `message`; a refused
    // token is a *successful* create with `status.message` ("authentication failed").
    let message = if answer.get("kind").and_then(Value::as_str) == Some("Status") {
        answer.get("message").and_then(Value::as_str)
    } else {
        answer.pointer("/status/message").and_then(Value::as_str)
    };
    Err(upstream(
        endpoint,
        match message {
            Some(m) => format!("{m} (HTTP {status})"),
            None => format!("HTTP {status}: no credential in the response"),
        },
    ))
}

/// Epoch milliseconds until which `certs` may be served: the earlier of the Concierge's
/// `expirationTimestamp` and the certificate's own NotAfter, minus the margin. `None` when
/// neither can be read (then nothing is cached).
pub fn cache_until_ms(certs: &ClientCerts) -> Option<u64> {
    let reported = time::OffsetDateTime::parse(
        &certs.expiration_timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
    .map(|t| t.unix_timestamp());
    let not_after = x509_parser::pem::parse_x509_pem(certs.cert.as_bytes())
        .ok()
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .ok()
                .map(|c| c.validity().not_after.timestamp())
        });
    let earliest = match (reported, not_after) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    u64::try_from(earliest)
        .ok()
        .map(|s| s.saturating_mul(1000).saturating_sub(CERT_EXPIRY_MARGIN_MS))
}

#[derive(Clone)]
pub struct PinnipedOptions {
    pub authenticator: Authenticator,
    pub api_group: String,
    /// Most certificates kept (LRU); 0 disables the cache.
    pub cache_size: usize,
    pub timeout: Duration,
    pub clock: SharedClock,
}

impl Default for PinnipedOptions {
    fn default() -> Self {
        PinnipedOptions {
            authenticator: Authenticator::default(),
            api_group: DEFAULT_TOKEN_CREDENTIAL_REQUEST_API_GROUP.into(),
            cache_size: DEFAULT_CACHE_SIZE,
            timeout: DEFAULT_TIMEOUT,
            clock: system_clock(),
        }
    }
}

impl PinnipedOptions {
    /// `{ authenticator?: {apiGroup?, kind?, name?}, tokenCredentialRequestApiGroup?,
    /// cacheSize?, cache?, timeoutMs? }`.
    pub fn from_options(opts: &Options<'_>) -> Result<Self, InputError> {
        let mut o = PinnipedOptions::default();
        let auth = Options::new(opts.value("authenticator"), "options.authenticator")?;
        if let Some(v) = auth.string("apiGroup")? {
            o.authenticator.api_group = v.into();
        }
        if let Some(v) = auth.string("kind")? {
            o.authenticator.kind = v.into();
        }
        if let Some(v) = auth.string("name")? {
            o.authenticator.name = v.into();
        }
        if let Some(v) = opts.string("tokenCredentialRequestApiGroup")? {
            o.api_group = v.into();
        }
        if let Some(n) = opts.count("cacheSize")? {
            o.cache_size = n;
        }
        if opts.boolean("cache")? == Some(false) {
            o.cache_size = 0;
        }
        if let Some(t) = opts.millis("timeoutMs")? {
            o.timeout = t;
        }
        Ok(o)
    }
}

type CacheKey = [u8; 32];

pub struct PinnipedStrategy {
    client: PinnipedClient,
    authenticator: Authenticator,
    api_group: String,
    /// Keyed with 32 random bytes per instance: cache keys reveal nothing about tokens and
    /// cannot be precomputed. Keyed once; each key starts from a clone of this state.
    keyed_mac: Hmac<Sha256>,
    certs: ExpiringCache<CacheKey, ClientCerts>,
    clock: SharedClock,
}

fn metadata_string(
    metadata: &AuthMetadata,
    key: &str,
    field_prefix: &str,
) -> Result<Option<String>, InputError> {
    match annotation(metadata, key) {
        AnnotationValue::Absent => Ok(None),
        AnnotationValue::Str(s) => Ok(Some(s.to_string())),
        AnnotationValue::NotString => Err(InputError::new(
            format!("{field_prefix}['{key}']"),
            "a string",
        )),
    }
}

impl PinnipedStrategy {
    pub fn new(options: PinnipedOptions) -> Result<Self, AuthError> {
        let mut hmac_key = [0u8; 32];
        getrandom::fill(&mut hmac_key)
            .map_err(|e| AuthError::Config(format!("pinniped: cannot seed the cache key: {e}")))?;
        let keyed_mac = Hmac::<Sha256>::new_from_slice(&hmac_key)
            .map_err(|e| AuthError::Config(format!("pinniped: cannot key the cache: {e}")))?;
        Ok(PinnipedStrategy {
            client: PinnipedClient {
                timeout: options.timeout,
            },
            authenticator: options.authenticator,
            api_group: options.api_group,
            keyed_mac,
            certs: ExpiringCache::new(CacheConfig {
                capacity: options.cache_size,
                // The client bounds each request; this bounds the whole exchange.
                fetch_timeout: options.timeout + Duration::from_secs(1),
                owner: "pinniped",
                what: "TokenCredentialRequest",
                clock: Arc::clone(&options.clock),
            }),
            clock: options.clock,
        })
    }

    /// The authenticator and API group for a cluster: annotations over constructor defaults.
    /// A call's token, authenticator and TokenCredentialRequest API group, and its cache key.
    fn request<'a>(
        &self,
        cluster: &ClusterDetails,
        auth: &'a RequestAuth,
    ) -> Result<(&'a str, Authenticator, String, CacheKey), AuthError> {
        // Proxy headers arrive lower-cased: `...-Pinniped-ClusterIDToken` is `clusteridtoken`.
        let supplied = match auth.get("pinniped") {
            Some(Value::Object(by_name)) => by_name.get("clusteridtoken"),
            _ => None,
        };
        let token = supplied_token(supplied, || "requestAuth.pinniped.clusteridtoken".into())?
            .ok_or_else(|| AuthError::contract(TOKEN_NOT_FOUND))?;
        let (authenticator, api_group) = self.cluster_params(cluster)?;
        let key = self.cache_key(token, &cluster.url, &authenticator, &api_group);
        Ok((token, authenticator, api_group, key))
    }

    fn cluster_params(
        &self,
        cluster: &ClusterDetails,
    ) -> Result<(Authenticator, String), InputError> {
        let md = &cluster.auth_metadata;
        let prefix = "clusterDetails.authMetadata";
        let mut authenticator = self.authenticator.clone();
        if let Some(v) = metadata_string(md, ANNOTATION_AUTHENTICATOR_API_GROUP, prefix)? {
            authenticator.api_group = v;
        }
        if let Some(v) = metadata_string(md, ANNOTATION_AUTHENTICATOR_KIND, prefix)? {
            authenticator.kind = v;
        }
        if let Some(v) = metadata_string(md, ANNOTATION_AUTHENTICATOR_NAME, prefix)? {
            authenticator.name = v;
        }
        let api_group = metadata_string(md, ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP, prefix)?
            .unwrap_or_else(|| self.api_group.clone());
        Ok((authenticator, api_group))
    }

    /// One user's certificate for one cluster and authenticator: the token and everything
    /// that changes what the Concierge would issue, length-prefixed so no two inputs collide.
    fn cache_key(
        &self,
        token: &str,
        url: &str,
        authenticator: &Authenticator,
        api_group: &str,
    ) -> CacheKey {
        let mut mac = self.keyed_mac.clone();
        for part in [
            token,
            url,
            &authenticator.api_group,
            &authenticator.kind,
            &authenticator.name,
            api_group,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

fn x509(certs: ClientCerts) -> KubernetesCredential {
    KubernetesCredential::X509ClientCertificate {
        cert: certs.cert,
        key: certs.key,
    }
}

#[async_trait]
impl AuthenticationStrategy for PinnipedStrategy {
    fn name(&self) -> &'static str {
        "pinniped"
    }

    fn inputs(&self) -> InputSpec {
        InputSpec {
            cluster_name: true,
            cluster_url: true,
            cluster_tls: true,
            metadata_keys: &[
                ANNOTATION_AUTHENTICATOR_API_GROUP,
                ANNOTATION_AUTHENTICATOR_KIND,
                ANNOTATION_AUTHENTICATOR_NAME,
                ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP,
            ],
            request_auth_keys: &["pinniped.clusteridtoken"],
            ..InputSpec::default()
        }
    }

    /// Bad input, or this user's cached certificate.
    fn credential_now(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        let (_, _, _, key) = match self.request(cluster, auth) {
            Ok(request) => request,
            Err(err) => return Some(Err(err)),
        };
        self.certs.get_fresh(&key).map(|certs| Ok(x509(certs)))
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        let (token, authenticator, api_group, key) = self.request(cluster, auth)?;
        if let Some(certs) = self.certs.get_fresh(&key) {
            return Ok(x509(certs));
        }
        cluster.require_tls()?;
        let client = self.client.clone();
        let clock = Arc::clone(&self.clock);
        let cluster = cluster.clone();
        let params = PinnipedParams {
            cluster_scoped_id_token: Secret::new(token),
            authenticator,
            api_group,
        };
        let certs = self
            .certs
            .get_or_fetch(key, move || async move {
                let certs = client.token_credential_request(&cluster, &params).await?;
                // An unreadable expiry caches nothing: the next call asks again.
                let until = cache_until_ms(&certs).unwrap_or_else(|| clock.now_ms());
                Ok(Expiring {
                    value: certs,
                    refresh_at_ms: until,
                    expires_at_ms: until,
                })
            })
            .await?;
        Ok(x509(certs))
    }

    fn validate_cluster(&self, metadata: &AuthMetadata) -> Vec<AuthError> {
        let mut errors = Vec::new();
        for key in [
            ANNOTATION_AUDIENCE,
            ANNOTATION_AUTHENTICATOR_API_GROUP,
            ANNOTATION_AUTHENTICATOR_KIND,
            ANNOTATION_AUTHENTICATOR_NAME,
            ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP,
        ] {
            if let Err(e) = metadata_string(metadata, key, "authMetadata") {
                errors.push(e.into());
            }
        }
        if let AnnotationValue::Str(group) =
            annotation(metadata, ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP)
        {
            if !group.contains('/') {
                errors.push(AuthError::Config(format!(
                    "{ANNOTATION_TOKEN_CREDENTIAL_REQUEST_API_GROUP} must be a group and version, like {DEFAULT_TOKEN_CREDENTIAL_REQUEST_API_GROUP}"
                )));
            }
        }
        errors
    }

    fn present_auth_metadata(&self, metadata: &AuthMetadata) -> AuthMetadata {
        match annotation(metadata, ANNOTATION_AUDIENCE) {
            AnnotationValue::Str(audience) => {
                AuthMetadata::from([("audience".to_string(), Value::String(audience.to_string()))])
            }
            _ => AuthMetadata::new(),
        }
    }

    fn cached_entries(&self) -> usize {
        self.certs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_separate_users_clusters_and_authenticators() {
        let s = PinnipedStrategy::new(PinnipedOptions::default()).unwrap();
        let a = Authenticator::default();
        let base = s.cache_key("alice", "https://c1", &a, "g/v1");
        assert_eq!(base, s.cache_key("alice", "https://c1", &a, "g/v1"));
        assert_ne!(base, s.cache_key("bob", "https://c1", &a, "g/v1"));
        assert_ne!(base, s.cache_key("alice", "https://c2", &a, "g/v1"));
        assert_ne!(base, s.cache_key("alice", "https://c1", &a, "h/v1"));
        // Length prefixes: moving bytes between fields changes the key.
        assert_ne!(
            s.cache_key("ab", "c", &a, "g/v1"),
            s.cache_key("a", "bc", &a, "g/v1")
        );
        let other = PinnipedStrategy::new(PinnipedOptions::default()).unwrap();
        assert_ne!(
            base,
            other.cache_key("alice", "https://c1", &a, "g/v1"),
            "per-instance random key"
        );
    }

    #[test]
    fn request_body_has_backstage_key_order() {
        let a = Authenticator::default();
        let body = serde_json::to_string(&TokenCredentialRequest {
            api_version: "login.concierge.pinniped.dev/v1alpha1",
            kind: "TokenCredentialRequest",
            spec: TokenCredentialRequestSpec {
                authenticator: &a,
                token: "t",
            },
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"apiVersion":"login.concierge.pinniped.dev/v1alpha1","kind":"TokenCredentialRequest","spec":{"authenticator":{"apiGroup":"authentication.concierge.pinniped.dev","kind":"JWTAuthenticator","name":"supervisor"},"token":"t"}}"#
        );
    }

    #[test]
    fn expiry_is_reported_time_minus_margin_without_a_parsable_cert() {
        let certs = ClientCerts {
            cert: "not a pem".into(),
            key: Secret::new("k"),
            expiration_timestamp: "2026-01-01T00:05:00Z".into(),
        };
        assert_eq!(
            cache_until_ms(&certs),
            Some(1_767_225_900_000 - CERT_EXPIRY_MARGIN_MS)
        );
        let none = ClientCerts {
            expiration_timestamp: "soon".into(),
            ..certs
        };
        assert_eq!(cache_until_ms(&none), None);
    }
}
