//! Where Azure access tokens come from: a `TokenSource` (a JS `TokenCredential` through the
//! napi layer, or one of the native sources below) asked for one scope at a time. Caching is
//! not done here: the strategies put every source behind the one `ExpiringCache`.
//!
//! The native sources are `DefaultAzureCredential`'s, in its order: environment (client secret,
//! client certificate), workload identity, managed identity (App Service, then IMDS), Azure
//! CLI, Azure Developer CLI. They are small OAuth2 / metadata calls written here rather than
//! taken from the `azure_identity` crate, because every upstream call must go through our one
//! HTTP client factory (TLS rules, pooling, body limits, timeouts), the IMDS address must be
//! overridable (tests, pod identity), and that crate has no `DefaultAzureCredential`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::error::AuthError;
use crate::http::{shared_factory, TlsSettings, Upstream};
use crate::secret::Secret;

pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
pub const DEFAULT_IMDS_HOST: &str = "http://169.254.169.254";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// How long the IMDS probe waits before deciding there is no IMDS (as DefaultAzureCredential).
const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Lifetime of our client assertions (Entra accepts up to 10 minutes).
const ASSERTION_LIFETIME_S: u64 = 600;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An access token and when it expires (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_on_ms: u64,
}

#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A token for `scope`; `timeout` bounds the whole call.
    async fn get_token(&self, scope: &str, timeout: Duration) -> Result<AccessToken, AuthError>;
}

/// The environment the native sources read: a snapshot of the process environment taken at
/// construction (as `DefaultAzureCredential` reads it once), or a map given instead of it
/// (`env` option), which also becomes the whole environment of `az`/`azd`.
#[derive(Debug, Clone, Default)]
pub struct AzureEnv {
    vars: HashMap<String, String>,
    hermetic: bool,
}

impl AzureEnv {
    pub fn process() -> Self {
        AzureEnv {
            vars: std::env::vars().collect(),
            hermetic: false,
        }
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        AzureEnv {
            vars,
            hermetic: true,
        }
    }

    /// A set, non-empty variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// `AZURE_AUTHORITY_HOST` (or the default) checked and without a trailing slash. Plain HTTP
/// is accepted for loopback hosts only (local stand-ins); anything else must be HTTPS.
pub fn authority_host(owner: &'static str, value: Option<&str>) -> Result<String, AuthError> {
    let raw = value.unwrap_or(DEFAULT_AUTHORITY_HOST);
    let url = reqwest::Url::parse(raw).map_err(|e| {
        AuthError::Config(format!(
            "{owner}: the authority host {raw:?} is not a URL: {e}"
        ))
    })?;
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(AuthError::Config(format!(
            "{owner}: the authority host {raw} must use https (http only for a loopback address)"
        )));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// The v1 `resource` of a v2 scope (managed identity and `az` want a resource).
pub fn scope_to_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn upstream(owner: &'static str, endpoint: &str, reason: impl Into<String>) -> AuthError {
    AuthError::Upstream {
        strategy: owner,
        endpoint: endpoint.to_string(),
        reason: reason.into(),
    }
}

/// A number given as a JSON number or a numeric string (managed identity sends strings).
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as u64),
        _ => None,
    }
}

/// Why an OAuth2 / managed-identity error answer failed, without its trace ids: the AADSTS
/// code where there is one, the `error` code, and the first sentence of the description.
fn oauth_error(status: u16, answer: &Value) -> String {
    let error = answer.get("error").and_then(|e| match e {
        Value::String(s) => Some(s.clone()),
        // App Service answers `{"error": {"code": ..., "message": ...}}`.
        Value::Object(o) => o.get("code").and_then(Value::as_str).map(str::to_string),
        _ => None,
    });
    let description = answer
        .get("error_description")
        .or_else(|| answer.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let aadsts = description
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.starts_with("AADSTS") && w.len() > 6)
        .map(str::to_string)
        .or_else(|| {
            answer
                .get("error_codes")
                .and_then(Value::as_array)
                .and_then(|codes| codes.first())
                .and_then(Value::as_u64)
                .map(|c| format!("AADSTS{c}"))
        });
    let sentence = description
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("AADSTS"))
        .map_or(description, |(_, rest)| rest);
    let sentence: String = sentence
        .split(['\r', '\n'])
        .next()
        .unwrap_or("")
        .split_inclusive(". ")
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect();
    let mut parts = vec![format!("HTTP {status}")];
    parts.extend(aadsts);
    parts.extend(error);
    let head = parts.join(" ");
    if sentence.is_empty() {
        head
    } else {
        format!("{head}: {sentence}")
    }
}

/// Reads a token answer: `access_token` plus `expires_in` (seconds from now) or `expires_on`
/// (epoch seconds).
fn parse_token_answer(
    owner: &'static str,
    endpoint: &str,
    status: u16,
    bytes: &[u8],
) -> Result<AccessToken, AuthError> {
    let answer: Value = serde_json::from_slice(bytes).map_err(|_| {
        upstream(
            owner,
            endpoint,
            format!("HTTP {status}: the answer is not JSON"),
        )
    })?;
    if !(200..300).contains(&status) {
        return Err(upstream(owner, endpoint, oauth_error(status, &answer)));
    }
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            upstream(
                owner,
                endpoint,
                format!("HTTP {status}: the answer has no access_token"),
            )
        })?;
    let expires_on_ms = match (
        number(answer.get("expires_on")),
        number(answer.get("expires_in")),
    ) {
        (Some(on), _) => on.saturating_mul(1000),
        (None, Some(secs)) => now_ms().saturating_add(secs.saturating_mul(1000)),
        (None, None) => {
            return Err(upstream(
                owner,
                endpoint,
                format!("HTTP {status}: the answer has neither expires_in nor expires_on"),
            ))
        }
    };
    Ok(AccessToken {
        token: Secret::new(token),
        expires_on_ms,
    })
}

async fn send(
    owner: &'static str,
    endpoint: &str,
    client: &Upstream,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<AccessToken, AuthError> {
    let (status, bytes) = client
        .exchange(request, timeout, MAX_RESPONSE_BYTES)
        .await
        .map_err(|reason| upstream(owner, endpoint, reason))?;
    parse_token_answer(owner, endpoint, status, &bytes)
}

/// A client-credentials request to `{authority}/{tenant}/oauth2/v2.0/token`.
async fn client_credentials(
    owner: &'static str,
    token_url: &str,
    client_id: &str,
    scope: &str,
    secret_field: (&str, &str),
    assertion_type: bool,
    timeout: Duration,
) -> Result<AccessToken, AuthError> {
    let endpoint = format!("Entra token endpoint {token_url}");
    let body = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("scope", scope);
        if assertion_type {
            form.append_pair("client_assertion_type", JWT_BEARER);
        }
        form.append_pair(secret_field.0, secret_field.1);
        form.finish()
    };
    let client = shared_factory().client(owner, &TlsSettings::default())?;
    let request = client
        .post(token_url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    send(owner, &endpoint, &client, request, timeout).await
}

/// An Entra application: tenant, client id and the token endpoint.
#[derive(Debug, Clone)]
pub struct App {
    pub tenant_id: String,
    pub client_id: String,
    pub authority: String,
}

impl App {
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id)
    }
}

/// A client certificate: the PEM file holding the certificate and its RSA private key.
#[derive(Debug, Clone)]
pub struct CertificateFile {
    pub path: PathBuf,
}

struct LoadedCertificate {
    key: aws_lc_rs::signature::RsaKeyPair,
    x5t: String,
}

impl CertificateFile {
    fn load(&self, owner: &'static str) -> Result<LoadedCertificate, AuthError> {
        let io = |reason: String| AuthError::Io {
            strategy: owner,
            what: "client certificate",
            path: self.path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&self.path).map_err(|e| io(e.to_string()))?;
        let mut cert_der = None;
        let mut key = None;
        for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
            let pem = pem.map_err(|_| io("it is not a PEM file".into()))?;
            match pem.label.as_str() {
                "CERTIFICATE" if cert_der.is_none() => cert_der = Some(pem.contents),
                "PRIVATE KEY" => {
                    key = Some(
                        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pem.contents)
                            .map_err(|_| io("the private key is not an RSA PKCS#8 key".into()))?,
                    )
                }
                "RSA PRIVATE KEY" => {
                    key = Some(
                        aws_lc_rs::signature::RsaKeyPair::from_der(&pem.contents)
                            .map_err(|_| io("the RSA private key cannot be read".into()))?,
                    )
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(io(
                        "encrypted private keys are not supported (use an unencrypted PEM)".into(),
                    ))
                }
                _ => {}
            }
        }
        let cert_der = cert_der.ok_or_else(|| io("it holds no CERTIFICATE block".into()))?;
        let key = key.ok_or_else(|| io("it holds no RSA private key".into()))?;
        let thumbprint =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
        Ok(LoadedCertificate {
            key,
            x5t: URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
        })
    }
}

/// The client assertion Entra expects for certificate credentials: an RS256 JWT with the
/// certificate's SHA-1 thumbprint as `x5t`, audience the token endpoint.
fn client_assertion(
    owner: &'static str,
    cert: &LoadedCertificate,
    client_id: &str,
    token_url: &str,
) -> Result<Secret, AuthError> {
    let now = now_ms() / 1000;
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti)
        .map_err(|e| AuthError::Config(format!("{owner}: no randomness for a JWT id: {e}")))?;
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5t": cert.x5t });
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_S,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; cert.key.public_modulus_len()];
    cert.key
        .sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| AuthError::Config(format!("{owner}: signing the client assertion failed")))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

/// A managed-identity token request (App Service, IMDS): `base` with the API version, the
/// resource `scope` names and, for a user-assigned identity, its client id.
fn managed_identity_url(
    base: &str,
    api_version: &str,
    scope: &str,
    client_id: Option<&str>,
) -> Result<reqwest::Url, url::ParseError> {
    let mut url = reqwest::Url::parse(base)?;
    url.query_pairs_mut()
        .append_pair("api-version", api_version)
        .append_pair("resource", scope_to_resource(scope));
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    Ok(url)
}

/// A native source. Each knows its `DefaultAzureCredential` name for messages.
#[derive(Debug, Clone)]
pub enum Native {
    ClientSecret {
        app: App,
        secret: Secret,
    },
    ClientCertificate {
        app: App,
        certificate: CertificateFile,
    },
    WorkloadIdentity {
        app: App,
        token_file: PathBuf,
    },
    AppService {
        endpoint: String,
        header: Secret,
        client_id: Option<String>,
    },
    Imds {
        host: String,
        client_id: Option<String>,
        /// In a chain, a short probe first decides whether there is an IMDS at all.
        probe: bool,
    },
    AzureCli {
        env: AzureEnv,
    },
    AzureDeveloperCli {
        env: AzureEnv,
        tenant_id: Option<String>,
    },
}

/// The outcome of one source in a chain.
enum Attempt {
    /// Not configured or not present here: the chain moves on.
    Unavailable(String),
    /// Configured and failed: the chain stops with this error, as DefaultAzureCredential does.
    Failed(AuthError),
}

impl From<AuthError> for Attempt {
    fn from(e: AuthError) -> Self {
        Attempt::Failed(e)
    }
}

impl Native {
    pub fn name(&self) -> &'static str {
        match self {
            Native::ClientSecret { .. } | Native::ClientCertificate { .. } => {
                "EnvironmentCredential"
            }
            Native::WorkloadIdentity { .. } => "WorkloadIdentityCredential",
            Native::AppService { .. } | Native::Imds { .. } => "ManagedIdentityCredential",
            Native::AzureCli { .. } => "AzureCliCredential",
            Native::AzureDeveloperCli { .. } => "AzureDeveloperCliCredential",
        }
    }

    /// One token request. `selected`: the chain chose this source already, so IMDS is known
    /// to be there and is not probed again (as `DefaultAzureCredential` probes once).
    async fn attempt(
        &self,
        owner: &'static str,
        scope: &str,
        timeout: Duration,
        selected: bool,
    ) -> Result<AccessToken, Attempt> {
        match self {
            Native::ClientSecret { app, secret } => Ok(client_credentials(
                owner,
                &app.token_url(),
                &app.client_id,
                scope,
                ("client_secret", secret.expose()),
                false,
                timeout,
            )
            .await?),
            Native::ClientCertificate { app, certificate } => {
                let token_url = app.token_url();
                let loaded = certificate.load(owner)?;
                let assertion = client_assertion(owner, &loaded, &app.client_id, &token_url)?;
                Ok(client_credentials(
                    owner,
                    &token_url,
                    &app.client_id,
                    scope,
                    ("client_assertion", assertion.expose()),
                    true,
                    timeout,
                )
                .await?)
            }
            Native::WorkloadIdentity { app, token_file } => {
                // Re-read every time: the kubelet rotates the projected token.
                let assertion =
                    tokio::fs::read_to_string(token_file)
                        .await
                        .map_err(|e| AuthError::Io {
                            strategy: owner,
                            what: "federated token file",
                            path: token_file.display().to_string(),
                            reason: e.to_string(),
                        })?;
                let assertion = Secret::new(assertion.trim());
                Ok(client_credentials(
                    owner,
                    &app.token_url(),
                    &app.client_id,
                    scope,
                    ("client_assertion", assertion.expose()),
                    true,
                    timeout,
                )
                .await?)
            }
            Native::AppService {
                endpoint,
                header,
                client_id,
            } => {
                let name = format!("App Service managed identity endpoint {endpoint}");
                let url = managed_identity_url(
                    endpoint,
                    APP_SERVICE_API_VERSION,
                    scope,
                    client_id.as_deref(),
                )
                .map_err(|e| {
                    AuthError::Config(format!("{owner}: IDENTITY_ENDPOINT is not a URL: {e}"))
                })?;
                let client = shared_factory().client(owner, &TlsSettings::default())?;
                let request = client
                    .get(url)
                    .header("X-IDENTITY-HEADER", header.expose())
                    .header(reqwest::header::ACCEPT, "application/json");
                Ok(send(owner, &name, &client, request, timeout).await?)
            }
            Native::Imds {
                host,
                client_id,
                probe,
            } => {
                let base = format!(
                    "{}/metadata/identity/oauth2/token",
                    host.trim_end_matches('/')
                );
                let name = format!("IMDS {base}");
                let url =
                    managed_identity_url(&base, IMDS_API_VERSION, scope, client_id.as_deref())
                        .map_err(|e| {
                            AuthError::Config(format!(
                                "{owner}: the IMDS address is not a URL: {e}"
                            ))
                        })?;
                let client = shared_factory().client(owner, &TlsSettings::default())?;
                let probe = *probe && !selected;
                if probe {
                    // Any answer (IMDS says 400 without the Metadata header) means it is there.
                    let wait = IMDS_PROBE_TIMEOUT.min(timeout);
                    if let Err(reason) = client.probe(client.get(url.clone()), wait).await {
                        return Err(Attempt::Unavailable(format!(
                            "no IMDS at {host} ({reason})"
                        )));
                    }
                }
                let request = client
                    .get(url)
                    .header("Metadata", "true")
                    .header(reqwest::header::ACCEPT, "application/json");
                match send(owner, &name, &client, request, timeout).await {
                    // In a chain, "no identity assigned" means this source is not for us.
                    Err(AuthError::Upstream { reason, .. })
                        if probe && reason.starts_with("HTTP 400") =>
                    {
                        Err(Attempt::Unavailable(format!(
                            "IMDS at {host} has no identity for this host ({reason})"
                        )))
                    }
                    other => Ok(other?),
                }
            }
            Native::AzureCli { env } => {
                let args = [
                    "account",
                    "get-access-token",
                    "--output",
                    "json",
                    "--resource",
                    scope_to_resource(scope),
                ];
                let out = run_cli(owner, "az", "Azure CLI", env, &args, timeout).await?;
                let answer: Value = serde_json::from_slice(&out).map_err(|_| {
                    upstream(
                        owner,
                        "az CLI",
                        "`az account get-access-token` did not print JSON",
                    )
                })?;
                let token = answer
                    .get("accessToken")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| upstream(owner, "az CLI", "the output has no accessToken"))?;
                let expires = number(answer.get("expires_on")).ok_or_else(|| {
                    upstream(
                        owner,
                        "az CLI",
                        "the output has no expires_on (Azure CLI 2.54 or later is needed)",
                    )
                })?;
                Ok(AccessToken {
                    token: Secret::new(token),
                    expires_on_ms: expires.saturating_mul(1000),
                })
            }
            Native::AzureDeveloperCli { env, tenant_id } => {
                let mut args = vec!["auth", "token", "--output", "json", "--scope", scope];
                if let Some(t) = tenant_id {
                    args.extend(["--tenant-id", t.as_str()]);
                }
                let out = run_cli(owner, "azd", "Azure Developer CLI", env, &args, timeout).await?;
                let answer: Value = serde_json::from_slice(&out).map_err(|_| {
                    upstream(owner, "azd CLI", "`azd auth token` did not print JSON")
                })?;
                let token = answer
                    .get("token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| upstream(owner, "azd CLI", "the output has no token"))?;
                let expires = answer
                    .get("expiresOn")
                    .and_then(Value::as_str)
                    .and_then(|s| {
                        time::OffsetDateTime::parse(
                            s,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
                    .ok_or_else(|| {
                        upstream(owner, "azd CLI", "the output has no RFC 3339 expiresOn")
                    })?;
                Ok(AccessToken {
                    token: Secret::new(token),
                    expires_on_ms: expires.saturating_mul(1000),
                })
            }
        }
    }
}

/// Runs `program args`, bounded by `timeout` (the child is killed when it runs over), and
/// returns its standard output. A missing program or a "please log in" failure makes the
/// source unavailable; other failures name the program and quote its first error line.
async fn run_cli(
    owner: &'static str,
    program: &'static str,
    what: &'static str,
    env: &AzureEnv,
    args: &[&str],
    timeout: Duration,
) -> Result<Vec<u8>, Attempt> {
    let endpoint = format!("{program} CLI");
    let mut command = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.arg("/c").arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if env.hermetic {
        command.env_clear().envs(&env.vars);
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Attempt::Unavailable(format!(
                "{what} ({program}) not found on PATH"
            )))
        }
        Err(e) => {
            return Err(Attempt::Failed(upstream(
                owner,
                &endpoint,
                format!("cannot start {program}: {e}"),
            )))
        }
    };
    // Dropping the future on timeout drops the child, which kills it (`kill_on_drop`).
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(Attempt::Failed(upstream(
                owner,
                &endpoint,
                format!("waiting for {program} failed: {e}"),
            )))
        }
        Err(_) => {
            return Err(Attempt::Failed(upstream(
                owner,
                &endpoint,
                format!(
                    "{program} did not finish within {} ms and was killed",
                    timeout.as_millis()
                ),
            )))
        }
    };
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first: String = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("az login")
        || lower.contains("azd auth login")
        || lower.contains("not logged in")
        // Windows `cmd /c` when the program is not installed.
        || lower.contains("is not recognized as an internal or external command")
    {
        return Err(Attempt::Unavailable(format!(
            "{what} is not logged in ({first})"
        )));
    }
    Err(Attempt::Failed(upstream(
        owner,
        &endpoint,
        format!("{program} exited with {}: {first}", output.status),
    )))
}

/// A source the chain knows about but cannot use here, and why.
#[derive(Debug, Clone)]
pub enum Candidate {
    Ready(Native),
    Unavailable { name: &'static str, reason: String },
}

/// `DefaultAzureCredential`: the first source that is available answers; once one has
/// answered it is the only one used (as `DefaultAzureCredential` remembers its choice). A
/// source that is configured but fails stops the chain with its own error.
pub struct ChainSource {
    owner: &'static str,
    candidates: Vec<Candidate>,
    selected: AtomicUsize,
}

impl std::fmt::Debug for ChainSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainSource")
            .field("candidates", &self.candidates)
            .finish()
    }
}

const NOT_SELECTED: usize = usize::MAX;

/// Which credentials `AZURE_TOKEN_CREDENTIALS` allows.
fn allowed(owner: &'static str, value: Option<&str>) -> Result<Vec<&'static str>, AuthError> {
    const PROD: [&str; 3] = [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
    ];
    const DEV: [&str; 2] = ["AzureCliCredential", "AzureDeveloperCliCredential"];
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(PROD.iter().chain(DEV.iter()).copied().collect());
    };
    match value.to_ascii_lowercase().as_str() {
        "prod" => return Ok(PROD.to_vec()),
        "dev" => return Ok(DEV.to_vec()),
        _ => {}
    }
    if let Some(name) = PROD
        .iter()
        .chain(DEV.iter())
        .find(|n| n.eq_ignore_ascii_case(value))
    {
        return Ok(vec![name]);
    }
    let unsupported = ["VisualStudioCodeCredential", "AzurePowerShellCredential"];
    if unsupported.iter().any(|n| n.eq_ignore_ascii_case(value)) {
        return Err(AuthError::Config(format!(
            "{owner}: AZURE_TOKEN_CREDENTIALS={value} is not available natively; pass a TokenCredential instead"
        )));
    }
    Err(AuthError::Config(format!(
        "{owner}: AZURE_TOKEN_CREDENTIALS={value} is not one of prod, dev, {}, {}",
        PROD.join(", "),
        DEV.join(", ")
    )))
}

impl ChainSource {
    /// The chain as `env` configures it. `dev_tools: false` leaves out the CLIs (Entra ID
    /// strategy: service credentials only).
    pub fn from_env(
        owner: &'static str,
        env: &AzureEnv,
        dev_tools: bool,
    ) -> Result<Self, AuthError> {
        let allowed = allowed(owner, env.get("AZURE_TOKEN_CREDENTIALS"))?;
        let authority = authority_host(owner, env.get("AZURE_AUTHORITY_HOST"))?;
        let tenant = env.get("AZURE_TENANT_ID");
        let client = env.get("AZURE_CLIENT_ID");
        let app = |tenant: &str, client: &str| App {
            tenant_id: tenant.to_string(),
            client_id: client.to_string(),
            authority: authority.clone(),
        };
        let mut candidates = Vec::new();
        if allowed.contains(&"EnvironmentCredential") {
            candidates.push(match (tenant, client) {
                (Some(t), Some(c)) => {
                    if let Some(secret) = env.get("AZURE_CLIENT_SECRET") {
                        Candidate::Ready(Native::ClientSecret {
                            app: app(t, c),
                            secret: Secret::new(secret),
                        })
                    } else if let Some(path) = env.get("AZURE_CLIENT_CERTIFICATE_PATH") {
                        if env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD").is_some() {
                            return Err(AuthError::Config(format!(
                                "{owner}: password-protected certificates (AZURE_CLIENT_CERTIFICATE_PASSWORD) are not supported; use an unencrypted PEM file"
                            )));
                        }
                        Candidate::Ready(Native::ClientCertificate {
                            app: app(t, c),
                            certificate: CertificateFile { path: path.into() },
                        })
                    } else {
                        Candidate::Unavailable {
                            name: "EnvironmentCredential",
                            reason: "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is not set"
                                .into(),
                        }
                    }
                }
                _ => Candidate::Unavailable {
                    name: "EnvironmentCredential",
                    reason: "AZURE_TENANT_ID and AZURE_CLIENT_ID are not set".into(),
                },
            });
        }
        if allowed.contains(&"WorkloadIdentityCredential") {
            candidates.push(match (tenant, client, env.get("AZURE_FEDERATED_TOKEN_FILE")) {
                (Some(t), Some(c), Some(file)) => Candidate::Ready(Native::WorkloadIdentity {
                    app: app(t, c),
                    token_file: file.into(),
                }),
                _ => Candidate::Unavailable {
                    name: "WorkloadIdentityCredential",
                    reason: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE are not all set"
                        .into(),
                },
            });
        }
        if allowed.contains(&"ManagedIdentityCredential") {
            let client_id = client.map(str::to_string);
            candidates.push(Candidate::Ready(
                match (env.get("IDENTITY_ENDPOINT"), env.get("IDENTITY_HEADER")) {
                    (Some(endpoint), Some(header)) => Native::AppService {
                        endpoint: endpoint.to_string(),
                        header: Secret::new(header),
                        client_id,
                    },
                    _ => Native::Imds {
                        // Pod identity (and tests) point IMDS elsewhere, as @azure/identity.
                        host: env
                            .get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                            .unwrap_or(DEFAULT_IMDS_HOST)
                            .to_string(),
                        client_id,
                        probe: allowed.len() > 1,
                    },
                },
            ));
        }
        if dev_tools && allowed.contains(&"AzureCliCredential") {
            candidates.push(Candidate::Ready(Native::AzureCli { env: env.clone() }));
        }
        if dev_tools && allowed.contains(&"AzureDeveloperCliCredential") {
            candidates.push(Candidate::Ready(Native::AzureDeveloperCli {
                env: env.clone(),
                tenant_id: tenant.map(str::to_string),
            }));
        }
        Ok(ChainSource::new(owner, candidates))
    }

    pub fn new(owner: &'static str, candidates: Vec<Candidate>) -> Self {
        ChainSource {
            owner,
            candidates,
            selected: AtomicUsize::new(NOT_SELECTED),
        }
    }

    /// One source, used alone (explicit options).
    pub fn single(owner: &'static str, native: Native) -> Self {
        let chain = ChainSource::new(owner, vec![Candidate::Ready(native)]);
        chain.selected.store(0, Ordering::SeqCst);
        chain
    }
}

#[async_trait]
impl TokenSource for ChainSource {
    async fn get_token(&self, scope: &str, timeout: Duration) -> Result<AccessToken, AuthError> {
        let selected = self.selected.load(Ordering::SeqCst);
        if let Some(Candidate::Ready(native)) = self.candidates.get(selected) {
            return match native.attempt(self.owner, scope, timeout, true).await {
                Ok(token) => Ok(token),
                Err(Attempt::Failed(e)) => Err(e),
                Err(Attempt::Unavailable(reason)) => Err(upstream(
                    self.owner,
                    native.name(),
                    format!("no longer available: {reason}"),
                )),
            };
        }
        let mut reasons = Vec::new();
        for (i, candidate) in self.candidates.iter().enumerate() {
            match candidate {
                Candidate::Unavailable { name, reason } => {
                    reasons.push(format!("{name}: {reason}"))
                }
                Candidate::Ready(native) => {
                    match native.attempt(self.owner, scope, timeout, false).await {
                        Ok(token) => {
                            self.selected.store(i, Ordering::SeqCst);
                            return Ok(token);
                        }
                        Err(Attempt::Unavailable(reason)) => {
                            reasons.push(format!("{}: {reason}", native.name()))
                        }
                        Err(Attempt::Failed(e)) => return Err(e),
                    }
                }
            }
        }
        Err(upstream(
            self.owner,
            "DefaultAzureCredential",
            format!(
                "no credential source is available ({})",
                if reasons.is_empty() {
                    "AZURE_TOKEN_CREDENTIALS allows none".to_string()
                } else {
                    reasons.join("; ")
                }
            ),
        ))
    }
}

/// A fixed source for tests.
#[cfg(test)]
pub struct FnSource<F>(pub F);

#[cfg(test)]
#[async_trait]
impl<F> TokenSource for FnSource<F>
where
    F: Fn(&str) -> Result<AccessToken, AuthError> + Send + Sync + 'static,
{
    async fn get_token(&self, scope: &str, _timeout: Duration) -> Result<AccessToken, AuthError> {
        (self.0)(scope)
    }
}

pub type SharedTokenSource = Arc<dyn TokenSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_name_the_aadsts_code_and_not_the_trace() {
        let answer = serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: abc\r\nCorrelation ID: def",
            "error_codes": [7000215]
        });
        assert_eq!(
            oauth_error(401, &answer),
            "HTTP 401 AADSTS7000215 invalid_client: Invalid client secret provided."
        );
        assert_eq!(
            oauth_error(500, &serde_json::json!({"error_codes": [50001]})),
            "HTTP 500 AADSTS50001"
        );
    }

    #[test]
    fn token_answers_need_a_token_and_an_expiry() {
        let ok = parse_token_answer(
            "azure",
            "e",
            200,
            br#"{"access_token":"t","expires_on":"1700000000"}"#,
        )
        .unwrap();
        assert_eq!(ok.expires_on_ms, 1_700_000_000_000);
        let err = parse_token_answer("azure", "e", 200, br#"{"access_token":"t"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither expires_in nor expires_on"), "{err}");
        let err = parse_token_answer("azure", "e", 200, b"nope")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "azure: e: HTTP 200: the answer is not JSON");
    }

    #[test]
    fn authority_hosts_must_be_https_except_on_loopback() {
        assert!(authority_host("azure", Some("http://127.0.0.1:8080/")).is_ok());
        assert!(authority_host("azure", Some("http://localhost:1")).is_ok());
        assert!(authority_host("azure", Some("http://example.com")).is_err());
        assert_eq!(
            authority_host("azure", None).unwrap(),
            "https://login.microsoftonline.com"
        );
    }

    #[test]
    fn token_credentials_selects_the_chain() {
        let env = |v: &str| {
            AzureEnv::from_map(HashMap::from([(
                "AZURE_TOKEN_CREDENTIALS".to_string(),
                v.to_string(),
            )]))
        };
        let names = |c: &ChainSource| {
            c.candidates
                .iter()
                .map(|c| match c {
                    Candidate::Ready(n) => n.name(),
                    Candidate::Unavailable { name, .. } => name,
                })
                .collect::<Vec<_>>()
        };
        let dev = ChainSource::from_env("azure", &env("dev"), true).unwrap();
        assert_eq!(
            names(&dev),
            ["AzureCliCredential", "AzureDeveloperCliCredential"]
        );
        let one = ChainSource::from_env("azure", &env("managedidentitycredential"), true).unwrap();
        assert_eq!(names(&one), ["ManagedIdentityCredential"]);
        let err = ChainSource::from_env("azure", &env("nope"), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not one of prod, dev"), "{err}");
    }
}
