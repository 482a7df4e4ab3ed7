//! Fuzz targets for every parser of untrusted bytes in the addon. Each target takes any bytes
//! and must not panic; what it returns is checked for the properties the addon promises
//! (errors name the upstream, secrets stay out of messages). Run by tests/loops.rs (stable,
//! bounded) and by fuzz_targets/ (libFuzzer).

use std::collections::HashMap;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use backstage_kubernetes_auth_native::http::{decode_base64_lenient, parse_ca_bundle};
use backstage_kubernetes_auth_native::secret::Secret;
use backstage_kubernetes_auth_native::strategies::aws::config;
use backstage_kubernetes_auth_native::strategies::aws::presign::AwsCredentials;
use backstage_kubernetes_auth_native::strategies::aws::sts::{AssumeRole, Sts};
use backstage_kubernetes_auth_native::strategies::pinniped::{
    cache_until_ms, parse_token_credential_response,
};

/// In every secret the targets plant; it must never reach an error message.
pub const MARK: &str = "LEAKCANARY";

/// An HTTP status from the first byte (mostly the interesting ones) and the rest as body.
fn split_status(data: &[u8]) -> (u16, &[u8]) {
    const STATUSES: [u16; 8] = [200, 201, 400, 401, 403, 404, 429, 500];
    match data.split_first() {
        Some((b, rest)) => (
            STATUSES
                .get(usize::from(*b))
                .copied()
                .unwrap_or(100 + u16::from(*b) * 2),
            rest,
        ),
        None => (200, data),
    }
}

/// The Concierge's TokenCredentialRequest answer, then the certificate's NotAfter (x509).
pub fn concierge(data: &[u8]) {
    let endpoint =
        "https://127.0.0.1:1/apis/login.concierge.pinniped.dev/v1alpha1/tokencredentialrequests";
    let (status, body) = split_status(data);
    match parse_token_credential_response(endpoint, status, body) {
        Ok(certs) => {
            let _ = cache_until_ms(&certs);
            let shown = format!("{:?}", certs.key);
            assert!(!shown.contains(MARK), "a key shows in Debug: {shown}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(endpoint),
                "does not name the endpoint: {message}"
            );
        }
    }
}

/// A CA bundle as `caData` (lenient base64, as Node decodes it) and as raw PEM bytes.
pub fn pem(data: &[u8]) {
    for (source, bytes) in [
        (
            "caData",
            decode_base64_lenient(&String::from_utf8_lossy(data)),
        ),
        ("caFile /fuzz/ca.pem", data.to_vec()),
    ] {
        if let Err(e) = parse_ca_bundle("fuzz", source, &bytes) {
            let message = e.to_string();
            assert!(
                message.contains(source),
                "does not name the source: {message}"
            );
        }
    }
}

/// The root config's `aws` key (JSON from the app config), then every strategy's options.
pub fn aws_integration_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = config::read(Some(&value));
    for kind in ["aws", "pinniped", "serviceAccount", "aks", "nope"] {
        let wrapped =
            serde_json::json!({ "aws": value, "authenticator": value, "timeoutMs": value });
        let _ = backstage_kubernetes_auth_native::registry::build(kind, Some(&value));
        let _ = backstage_kubernetes_auth_native::registry::build(kind, Some(&wrapped));
    }
}

/// One current-thread runtime for the targets that drive the SDK's async parsers, made on
/// first use (libFuzzer and the loops call the targets many times in one process).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime")
    })
}

/// Shared AWS config and credentials files (split at the first 0xFF byte), through the SDK's
/// profile parser as the addon's profile sources use it.
pub fn aws_config_files(data: &[u8]) {
    let (config_file, credentials_file) = match data.iter().position(|b| *b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let fs = aws_types::os_shim_internal::Fs::from_map(HashMap::from([
        ("/fuzz/config".to_string(), config_file.to_vec()),
        ("/fuzz/credentials".to_string(), credentials_file.to_vec()),
    ]));
    let env = aws_types::os_shim_internal::Env::from_slice(&[
        ("AWS_CONFIG_FILE", "/fuzz/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/fuzz/credentials"),
        ("HOME", "/fuzz"),
    ]);
    runtime().block_on(async {
        // The SDK's own alias of EnvConfigFiles; naming it avoids a direct aws-runtime dependency.
        #[allow(deprecated)]
        let files = aws_config::profile::profile_file::ProfileFiles::default();
        if let Ok(set) = aws_config::profile::load(&fs, &env, &files, None).await {
            for name in set.profiles() {
                if let Some(p) = set.get_profile(name) {
                    let _ = p.get("aws_access_key_id");
                    let _ = p.get("role_arn");
                    let _ = p.get("credential_process");
                }
            }
        }
    });
}

#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    body: Vec<u8>,
}

impl HttpConnector for Canned {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let status = StatusCode::try_from(self.status)
            .or_else(|_| StatusCode::try_from(200))
            .map_err(|e| {
                aws_smithy_runtime_api::client::result::ConnectorError::other(e.into(), None)
            });
        HttpConnectorFuture::ready(
            status.map(|s| Response::new(s, SdkBody::from(self.body.clone()))),
        )
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// Secrets an STS body carries (`SecretAccessKey`, `SessionToken`) that are distinctive
/// enough to look for in a message: at least 8 bytes, found once in the body.
fn body_secrets(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in ["SecretAccessKey", "SessionToken"] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut rest = body;
        while let Some(at) = rest.find(&open) {
            rest = &rest[at + open.len()..];
            let end = rest.find(&close).unwrap_or(rest.len());
            let value = &rest[..end];
            if value.len() >= 8 && body.matches(value).count() == 1 {
                found.push(value.to_string());
            }
        }
    }
    found
}

/// An STS answer (status and XML body) through the SDK's deserializer and the addon's checks
/// of AssumeRole and GetCallerIdentity. Messages name STS and the operation, and carry
/// neither the signing secret nor a secret from the body.
pub fn sts_xml(data: &[u8]) {
    let (status, body) = split_status(data);
    let mut secrets = body_secrets(&String::from_utf8_lossy(body));
    secrets.push(format!("fuzzSecret/{MARK}"));
    secrets.push(format!("fuzzSession{MARK}"));
    let check = |message: &str, operation: &str| {
        assert!(message.contains(operation), "{message}");
        for s in &secrets {
            assert!(!message.contains(s.as_str()), "a secret in: {message}");
        }
    };
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .http_client(Canned {
            status,
            body: body.to_vec(),
        })
        .build();
    let sts = Sts::with_client(
        aws_sdk_sts::Client::from_conf(config),
        Duration::from_secs(5),
    );
    let master = AwsCredentials {
        access_key_id: "AKIAFUZZEXAMPLE00001".to_string(),
        secret_access_key: Secret::new(format!("fuzzSecret/{MARK}")),
        session_token: Some(Secret::new(format!("fuzzSession{MARK}"))),
        expires_at_ms: None,
    };
    runtime().block_on(async {
        let role = "arn:aws:iam::123456789012:role/fuzz";
        match sts
            .assume_role(
                &master,
                AssumeRole {
                    role_arn: role,
                    session_name: "fuzz",
                    external_id: None,
                    region: "us-east-1",
                },
            )
            .await
        {
            Ok(c) => assert!(!c.access_key_id.is_empty()),
            Err(e) => check(&e.to_string(), "STS AssumeRole"),
        }
        if let Err(e) = sts.account_id(&master, "us-east-1").await {
            check(&e.to_string(), "STS GetCallerIdentity");
        }
    });
}
