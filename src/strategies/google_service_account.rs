//! `googleServiceAccount` (`GoogleServiceAccountStrategy`, contract 5.6): a Google OAuth2
//! access token for the scope `cloud-platform`, from the service-account key in Backstage's
//! `kubernetes.googleServiceAccountCredentials`, else from Application Default Credentials in
//! Google's order:
//!
//! 1. the file named by `GOOGLE_APPLICATION_CREDENTIALS`;
//! 2. the gcloud ADC file (`$CLOUDSDK_CONFIG` or `~/.config/gcloud`,
//!    `application_default_credentials.json`);
//! 3. the metadata server (`GCE_METADATA_HOST`, default `169.254.169.254`).
//!
//! Backstage builds a new client and fetches a new token on every call; we keep the token in
//! the shared cache until 5 minutes before it expires (google-auth-library's
//! `eagerRefreshThresholdMillis`), with one fetch at a time and no sticky failures. The
//! credential source is resolved again on every fetch, so a rotated key file is picked up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::cache::{CacheConfig, Expiring, ExpiringCache};
use crate::clock::{system_clock, SharedClock};
use crate::error::AuthError;
use crate::http::{shared_factory, TlsSettings, DEFAULT_TIMEOUT};
use crate::secret::Secret;
use crate::strategy::AuthenticationStrategy;
use crate::types::{ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

const NAME: &str = "googleServiceAccount";
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The token endpoint of keys that name none (the value Google writes into keys today).
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_METADATA_HOST: &str = "169.254.169.254";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// google-auth-library's `eagerRefreshThresholdMillis` default.
const REFRESH_EARLY_MS: u64 = 5 * 60 * 1000;
/// The lifetime we ask for in the assertion, and assume when an answer gives none.
const TOKEN_LIFETIME_S: u64 = 3600;
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// A credentials file larger than this is not a credentials file.
const MAX_CREDENTIAL_FILE_BYTES: u64 = 1 << 20;
/// Upstream `error_description` texts are cut to this many characters in our errors.
const MAX_DESCRIPTION_CHARS: usize = 200;

pub const CONFIG_PARSE_PREFIX: &str =
    "Failed to parse Google Service Account credentials from config: ";
pub const NO_TOKEN: &str = "Unable to obtain access token for Google Cloud authentication. Check your credentials configuration.";

#[derive(Clone)]
pub struct GoogleServiceAccountOptions {
    /// The JSON text of `kubernetes.googleServiceAccountCredentials`.
    pub credentials: Option<Secret>,
    pub timeout: Duration,
    /// `false`: fetch a token on every call, as Backstage does.
    pub cache: bool,
    /// Overrides `GCE_METADATA_HOST` (`host[:port]` or a URL).
    pub metadata_host: Option<String>,
    pub clock: SharedClock,
}

impl Default for GoogleServiceAccountOptions {
    fn default() -> Self {
        GoogleServiceAccountOptions {
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
            cache: true,
            metadata_host: None,
            clock: system_clock(),
        }
    }
}

/// A credentials file or config value, parsed.
#[derive(Clone)]
enum Credentials {
    ServiceAccount {
        client_email: String,
        private_key: Secret,
        private_key_id: Option<String>,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
        token_uri: String,
    },
}

struct Inner {
    /// From config: parsed once; a parse error is what every call rejects with (as Backstage,
    /// which parses per call, would).
    configured: Option<Result<Credentials, AuthError>>,
    timeout: Duration,
    metadata_host: Option<String>,
    clock: SharedClock,
}

pub struct GoogleServiceAccountStrategy {
    inner: Arc<Inner>,
    tokens: ExpiringCache<(), Secret>,
}

impl GoogleServiceAccountStrategy {
    pub fn new(options: GoogleServiceAccountOptions) -> Self {
        // Backstage tests the string for truthiness: '' means "not configured".
        let configured = options
            .credentials
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                parse_credentials(c.expose())
                    .map_err(|reason| AuthError::Config(format!("{CONFIG_PARSE_PREFIX}{reason}")))
            });
        GoogleServiceAccountStrategy {
            tokens: ExpiringCache::new(CacheConfig {
                capacity: usize::from(options.cache),
                // The request's own timeout fires first and names the endpoint; this bounds
                // the whole fetch (file reads included).
                fetch_timeout: options.timeout + Duration::from_secs(1),
                owner: NAME,
                what: "access token fetch",
                clock: Arc::clone(&options.clock),
            }),
            inner: Arc::new(Inner {
                configured,
                timeout: options.timeout,
                metadata_host: options.metadata_host,
                clock: options.clock,
            }),
        }
    }
}

impl Default for GoogleServiceAccountStrategy {
    fn default() -> Self {
        Self::new(GoogleServiceAccountOptions::default())
    }
}

#[async_trait]
impl AuthenticationStrategy for GoogleServiceAccountStrategy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inputs(&self) -> InputSpec {
        InputSpec::default()
    }

    /// A configuration error, or a fresh token.
    fn credential_now(
        &self,
        _cluster: &ClusterDetails,
        _auth: &RequestAuth,
    ) -> Option<Result<KubernetesCredential, AuthError>> {
        if let Some(Err(err)) = &self.inner.configured {
            return Some(Err(err.clone()));
        }
        let token = self.tokens.get_fresh(&())?;
        Some(Ok(KubernetesCredential::BearerToken { token }))
    }

    async fn get_credential(
        &self,
        cluster: &ClusterDetails,
        auth: &RequestAuth,
    ) -> Result<KubernetesCredential, AuthError> {
        if let Some(done) = self.credential_now(cluster, auth) {
            return done;
        }
        let inner = Arc::clone(&self.inner);
        let token = self
            .tokens
            .get_or_fetch((), move || async move { inner.fetch().await })
            .await?;
        Ok(KubernetesCredential::BearerToken { token })
    }

    fn cached_entries(&self) -> usize {
        self.tokens.len()
    }
}

impl Inner {
    async fn fetch(&self) -> Result<Expiring<Secret>, AuthError> {
        let answer = match &self.configured {
            Some(Ok(credentials)) => self.exchange(credentials).await?,
            Some(Err(err)) => return Err(err.clone()),
            None => self.application_default().await?,
        };
        let now = self.clock.now_ms();
        let expires_at_ms = now.saturating_add(answer.expires_in_s.saturating_mul(1000));
        Ok(Expiring {
            value: answer.token,
            refresh_at_ms: expires_at_ms.saturating_sub(REFRESH_EARLY_MS),
            expires_at_ms,
        })
    }

    /// Application Default Credentials, in google-auth-library's order.
    async fn application_default(&self) -> Result<TokenAnswer, AuthError> {
        let env_path = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty());
        if let Some(path) = env_path {
            let path = PathBuf::from(path);
            let credentials =
                read_credentials_file(&path, "GOOGLE_APPLICATION_CREDENTIALS").await?;
            return self.exchange(&credentials).await;
        }
        let well_known = gcloud_adc_path();
        if let Some(path) = well_known.as_deref() {
            if tokio::fs::metadata(path).await.is_ok() {
                let credentials = read_credentials_file(path, "the gcloud ADC file").await?;
                return self.exchange(&credentials).await;
            }
        }
        self.metadata_token(well_known.as_deref()).await
    }

    async fn exchange(&self, credentials: &Credentials) -> Result<TokenAnswer, AuthError> {
        match credentials {
            Credentials::ServiceAccount {
                client_email,
                private_key,
                private_key_id,
                token_uri,
            } => {
                let assertion = sign_assertion(
                    client_email,
                    private_key,
                    private_key_id.as_deref(),
                    token_uri,
                    self.clock.now_ms() / 1000,
                )
                .map_err(|reason| upstream(&token_endpoint(token_uri), reason))?;
                self.post_form(
                    token_uri,
                    &[
                        ("grant_type", JWT_BEARER_GRANT),
                        ("assertion", assertion.expose()),
                    ],
                )
                .await
            }
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                self.post_form(
                    token_uri,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", client_id),
                        ("client_secret", client_secret.expose()),
                        ("refresh_token", refresh_token.expose()),
                    ],
                )
                .await
            }
        }
    }

    async fn post_form(
        &self,
        token_uri: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, AuthError> {
        let endpoint = token_endpoint(token_uri);
        let url = reqwest::Url::parse(token_uri)
            .map_err(|_| upstream(&endpoint, "token_uri is not a URL".to_string()))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let client = shared_factory().client(NAME, &TlsSettings::default())?;
        let request = client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        let (status, bytes) = client
            .exchange(request, self.timeout, MAX_RESPONSE_BYTES)
            .await
            .map_err(|reason| upstream(&endpoint, reason))?;
        parse_token_answer(&endpoint, status, &bytes)
    }

    /// The attached service account's token from the metadata server (GCE, GKE Workload
    /// Identity, Cloud Run...).
    async fn metadata_token(&self, well_known: Option<&Path>) -> Result<TokenAnswer, AuthError> {
        let base = metadata_base(self.metadata_host.as_deref());
        let endpoint = format!(
            "metadata server {base}/computeMetadata/v1/instance/service-accounts/default/token"
        );
        let not_found = || {
            format!(
                "Could not load the default credentials (GOOGLE_APPLICATION_CREDENTIALS is not set, no gcloud ADC file at {}, and the metadata server failed)",
                well_known.map_or_else(|| "$HOME/.config/gcloud".to_string(), |p| p.display().to_string())
            )
        };
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/computeMetadata/v1/instance/service-accounts/default/token"),
            &[("scopes", SCOPE)],
        )
        .map_err(|_| {
            upstream(
                &endpoint,
                "the metadata host does not form a URL".to_string(),
            )
        })?;
        let client = shared_factory().client(NAME, &TlsSettings::default())?;
        let request = client.get(url).header("Metadata-Flavor", "Google");
        // gcp-metadata's check: anything else answering on that address is not the server.
        let is_metadata_server = |response: &reqwest::Response| {
            let flavor = response
                .headers()
                .get("metadata-flavor")
                .and_then(|v| v.to_str().ok());
            if flavor == Some("Google") {
                return Ok(());
            }
            Err(format!(
                "HTTP {} without the header Metadata-Flavor: Google, so not a Google metadata server",
                response.status().as_u16()
            ))
        };
        let (status, bytes) = client
            .exchange_checked(
                request,
                self.timeout,
                MAX_RESPONSE_BYTES,
                is_metadata_server,
            )
            .await
            .map_err(|reason| upstream(&endpoint, format!("{reason}: {}", not_found())))?;
        parse_token_answer(&endpoint, status, &bytes)
    }
}

struct TokenAnswer {
    token: Secret,
    expires_in_s: u64,
}

fn upstream(endpoint: &str, reason: String) -> AuthError {
    AuthError::Upstream {
        strategy: NAME,
        endpoint: endpoint.to_string(),
        reason,
    }
}

/// The token endpoint as named in errors: origin and path only (no user info or query, which
/// could carry anything).
fn token_endpoint(token_uri: &str) -> String {
    match reqwest::Url::parse(token_uri) {
        Ok(url) => format!(
            "token endpoint {}{}",
            url.origin().ascii_serialization(),
            url.path()
        ),
        Err(_) => "token endpoint (token_uri is not a URL)".to_string(),
    }
}

/// `GCE_METADATA_HOST` as gcp-metadata reads it: a host (scheme `http`) or a URL.
fn metadata_base(option: Option<&str>) -> String {
    let host = option
        .map(str::to_string)
        .or_else(|| std::env::var("GCE_METADATA_HOST").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string());
    let host = host.trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("http://{host}")
    }
}

/// The gcloud ADC file: `$CLOUDSDK_CONFIG` (gcloud's own override, honoured by Google's Go and
/// Python libraries), else `$HOME/.config/gcloud` (`%APPDATA%\gcloud` on Windows).
fn gcloud_adc_path() -> Option<PathBuf> {
    const FILE: &str = "application_default_credentials.json";
    if let Some(dir) = std::env::var_os("CLOUDSDK_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join(FILE));
    }
    let base = if cfg!(windows) {
        PathBuf::from(std::env::var_os("APPDATA").filter(|d| !d.is_empty())?)
    } else {
        PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".config")
    };
    Some(base.join("gcloud").join(FILE))
}

async fn read_credentials_file(path: &Path, source: &str) -> Result<Credentials, AuthError> {
    let io = |reason: String| AuthError::Io {
        strategy: NAME,
        what: "the credentials file",
        path: format!("{} ({source})", path.display()),
        reason,
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| io(e.to_string()))?;
    if !meta.is_file() {
        return Err(io("not a file".to_string()));
    }
    if meta.len() > MAX_CREDENTIAL_FILE_BYTES {
        return Err(io(format!("larger than {MAX_CREDENTIAL_FILE_BYTES} bytes")));
    }
    let bytes = tokio::fs::read(path).await.map_err(|e| io(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| io("not UTF-8 text".to_string()))?;
    parse_credentials(&text).map_err(io)
}

/// Parses a credentials JSON text. Errors say what is wrong and where, never what is there:
/// the text holds a private key.
fn parse_credentials(text: &str) -> Result<Credentials, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| json_error_message(text, &e))?;
    let Value::Object(map) = value else {
        return Err("the credentials must be a JSON object".to_string());
    };
    let field = |name: &str| -> Result<String, String> {
        match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => Err(format!(
                "The incoming JSON object does not contain a {name} field"
            )),
            Some(_) => Err(format!("the {name} field must be a string")),
        }
    };
    let optional = |name: &str| -> Result<Option<String>, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(_) => field(name).map(Some),
        }
    };
    let token_uri = optional("token_uri")?.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
    let scheme_ok = reqwest::Url::parse(&token_uri)
        .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
    if !scheme_ok {
        return Err("the token_uri field must be an http(s) URL".to_string());
    }
    // google-auth-library treats a missing `type` as a service-account key.
    match optional("type")?.as_deref() {
        None | Some("service_account") => {
            let client_email = field("client_email")?;
            let private_key = Secret::new(field("private_key")?);
            // Checked here so that a broken key is a config error, not a failed request.
            jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes())
                .map_err(|_| "the private_key field is not a PEM RSA private key".to_string())?;
            Ok(Credentials::ServiceAccount {
                client_email,
                private_key,
                private_key_id: optional("private_key_id")?,
                token_uri,
            })
        }
        Some("authorized_user") => Ok(Credentials::AuthorizedUser {
            client_id: field("client_id")?,
            client_secret: Secret::new(field("client_secret")?),
            refresh_token: Secret::new(field("refresh_token")?),
            token_uri,
        }),
        Some(other) => Err(format!(
            "credential type '{}' is not supported (supported: service_account, authorized_user)",
            other.chars().take(64).collect::<String>()
        )),
    }
}

/// A V8-style `JSON.parse` message (Backstage's test matches `Unexpected token`), in Node 18's
/// form that gives a position instead of Node 20's, which quotes the text around the error:
/// that text could be part of the private key.
fn json_error_message(text: &str, e: &serde_json::Error) -> String {
    let position = byte_position(text, e.line(), e.column());
    let at = format!(
        "in JSON at position {position} (line {} column {})",
        e.line(),
        e.column()
    );
    let detail = e.to_string();
    if e.is_eof() {
        if detail.contains("parsing a string") {
            return format!("Unterminated string {at}");
        }
        return "Unexpected end of JSON input".to_string();
    }
    if detail.contains("control character") {
        return format!("Bad control character in string literal {at}");
    }
    if detail.contains("invalid escape") {
        return format!("Bad escaped character {at}");
    }
    if detail.contains("unicode") {
        return format!("Bad Unicode escape {at}");
    }
    if detail.contains("trailing characters") {
        return format!("Unexpected non-whitespace character after JSON at position {position}");
    }
    match text.get(position..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("Unexpected token '{}' {at}", c.escape_debug()),
        None => "Unexpected end of JSON input".to_string(),
    }
}

/// The byte offset serde_json's 1-based line and column point at.
fn byte_position(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let mut position = (line_start + column.saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(position) {
        position -= 1;
    }
    position
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The RS256 JWT-bearer assertion (RFC 7523) google-auth-library's gtoken signs.
fn sign_assertion(
    client_email: &str,
    private_key: &Secret,
    private_key_id: Option<&str>,
    token_uri: &str,
    now_s: u64,
) -> Result<Secret, String> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes())
        .map_err(|_| "the private_key is not a PEM RSA private key".to_string())?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = private_key_id.map(str::to_string);
    let claims = Claims {
        iss: client_email,
        scope: SCOPE,
        aud: token_uri,
        iat: now_s,
        exp: now_s + TOKEN_LIFETIME_S,
    };
    jsonwebtoken::encode(&header, &claims, &key)
        .map(Secret::new)
        .map_err(|_| "cannot sign the assertion with the private_key".to_string())
}

/// An OAuth2 token response (token endpoint or metadata server). Errors give the status and
/// the OAuth2 `error` code and description, never the body itself.
fn parse_token_answer(endpoint: &str, status: u16, bytes: &[u8]) -> Result<TokenAnswer, AuthError> {
    let answer: Option<Value> = serde_json::from_slice(bytes).ok();
    if !(200..300).contains(&status) {
        let code = answer
            .as_ref()
            .and_then(oauth_error)
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(upstream(endpoint, format!("HTTP {status}{code}")));
    }
    let Some(Value::Object(answer)) = answer else {
        return Err(upstream(
            endpoint,
            format!("HTTP {status}: the response is not a JSON object"),
        ));
    };
    let token = match answer.get("access_token") {
        Some(Value::String(t)) if !t.is_empty() => Secret::new(t.clone()),
        // Backstage's message for a falsy token, then what the endpoint did.
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(AuthError::contract(format!(
                "{NO_TOKEN} ({NAME}: {endpoint}: HTTP {status}: the response has no access_token)"
            )))
        }
        Some(_) => {
            return Err(upstream(
                endpoint,
                format!("HTTP {status}: access_token is not a string"),
            ))
        }
    };
    let expires_in_s = match answer.get("expires_in") {
        None | Some(Value::Null) => TOKEN_LIFETIME_S,
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s as u64)
            .ok_or_else(|| {
                upstream(
                    endpoint,
                    format!("HTTP {status}: expires_in is not a number of seconds"),
                )
            })?,
    };
    Ok(TokenAnswer {
        token,
        expires_in_s,
    })
}

/// `error` and a bounded `error_description` of an OAuth2 error answer (RFC 6749 5.2); the
/// metadata server and Google APIs use `{error: {code, status, message}}` instead.
fn oauth_error(answer: &Value) -> Option<String> {
    let bounded = |s: &str| s.chars().take(MAX_DESCRIPTION_CHARS).collect::<String>();
    match answer.get("error")? {
        Value::String(code) => Some(
            match answer.get("error_description").and_then(Value::as_str) {
                Some(d) => format!("{}: {}", bounded(code), bounded(d)),
                None => bounded(code),
            },
        ),
        Value::Object(e) => {
            let status = e.get("status").and_then(Value::as_str);
            let message = e.get("message").and_then(Value::as_str);
            match (status, message) {
                (Some(s), Some(m)) => Some(format!("{}: {}", bounded(s), bounded(m))),
                (Some(s), None) => Some(bounded(s)),
                (None, Some(m)) => Some(bounded(m)),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        match parse_credentials(text) {
            Err(m) => m,
            Ok(_) => panic!("parsed: {text}"),
        }
    }

    #[test]
    fn json_errors_read_like_v8_and_quote_no_content() {
        assert_eq!(
            message("invalid-json"),
            "Unexpected token 'i' in JSON at position 0 (line 1 column 1)"
        );
        assert_eq!(message(""), "Unexpected end of JSON input");
        assert_eq!(message("{\"a\": 1"), "Unexpected end of JSON input");
        assert_eq!(
            message("{} x"),
            "Unexpected non-whitespace character after JSON at position 3"
        );
        let key_with_raw_newline = "{\"private_key\": \"-----BEGIN LEAKCANARY\nabc\"}";
        let m = message(key_with_raw_newline);
        assert!(
            m.starts_with("Bad control character in string literal"),
            "{m}"
        );
        assert!(!m.contains("LEAKCANARY"), "{m}");
        let m = message("{\"private_key\": \"LEAKCANARY");
        assert!(m.starts_with("Unterminated string"), "{m}");
        assert!(!m.contains("LEAKCANARY"), "{m}");
        assert_eq!(message("[1]"), "the credentials must be a JSON object");
    }

    #[test]
    fn fields_are_named() {
        assert_eq!(
            message("{\"type\":\"service_account\"}"),
            "The incoming JSON object does not contain a client_email field"
        );
        assert_eq!(
            message("{\"client_email\":\"a@b\"}"),
            "The incoming JSON object does not contain a private_key field"
        );
        let m = message("{\"client_email\":\"a@b\",\"private_key\":\"LEAKCANARY not pem\"}");
        assert_eq!(m, "the private_key field is not a PEM RSA private key");
        assert_eq!(
            message("{\"type\":\"authorized_user\",\"client_id\":\"x\"}"),
            "The incoming JSON object does not contain a client_secret field"
        );
        assert!(message("{\"type\":\"external_account\"}").contains("not supported"));
    }

    #[test]
    fn token_endpoint_names_origin_and_path_only() {
        assert_eq!(
            token_endpoint("https://user:LEAKCANARY@oauth2.example.com/token?x=LEAKCANARY"),
            "token endpoint https://oauth2.example.com/token"
        );
    }

    #[test]
    fn metadata_base_accepts_host_or_url() {
        assert_eq!(
            metadata_base(Some("127.0.0.1:8080")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(metadata_base(Some("http://h:1/")), "http://h:1");
    }
}
