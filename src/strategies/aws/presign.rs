//! The EKS token: a SigV4 query-presigned `GET sts:GetCallerIdentity` URL, byte-identical to
//! what Backstage 0.21.11 emits (contract 5.3) for the same inputs. `aws-sigv4` computes the
//! signature; the URL is laid out here in Backstage's parameter order and with JS
//! `encodeURIComponent`, which is what makes the bytes match.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;

use crate::error::AuthError;
use crate::secret::Secret;

pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
pub const DEFAULT_REGION: &str = "us-east-1";

/// Signing credentials. The secret parts never reach a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// Epoch milliseconds; `None` for credentials that do not expire (static keys).
    pub expires_at_ms: Option<u64>,
}

/// How the STS host is chosen: Backstage's `sts.<region>.amazonaws.com` for the standard
/// partition; the China partition's domain for `cn-*` regions; `sts-fips.` when FIPS is on.
pub fn sts_host(region: &str, use_fips: bool) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    if use_fips && !region.starts_with("cn-") {
        // GovCloud's regional STS endpoints are FIPS endpoints already.
        if region.starts_with("us-gov-") {
            return format!("sts.{region}.{domain}");
        }
        return format!("sts-fips.{region}.{domain}");
    }
    format!("sts.{region}.{domain}")
}

/// `x-k8s-aws-id` as @smithy/signature-v4 canonicalises a header value: trimmed, and runs of
/// whitespace collapsed to one space (JS `\s`, which includes U+FEFF).
fn js_normalize_header(value: &str) -> String {
    let is_ws = |c: char| c.is_whitespace() || c == '\u{feff}';
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.trim_matches(is_ws).chars() {
        if is_ws(c) {
            pending_space = true;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// JS `encodeURIComponent` (unreserved: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`).
fn encode_uri_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// The cluster id travels as the `x-k8s-aws-id` header, which cannot carry control
/// characters: the signer would refuse it naming no input, so callers check it first and
/// name `field`.
pub fn check_cluster_id(cluster_id: &str, field: &str) -> Result<(), crate::error::InputError> {
    let control = |c: char| c.is_ascii_control() && c != '\t';
    if cluster_id.chars().any(control) {
        return Err(crate::error::InputError::new(
            field,
            "free of control characters (it is the x-k8s-aws-id header)",
        ));
    }
    Ok(())
}

fn sign_error(e: impl std::fmt::Display) -> AuthError {
    AuthError::Upstream {
        strategy: "aws",
        endpoint: "SigV4 presign".to_string(),
        reason: e.to_string(),
    }
}

/// The presigned URL (without the token prefix). `signing_time_ms` is epoch milliseconds.
pub fn presign_url(
    credentials: &AwsCredentials,
    region: &str,
    host: &str,
    cluster_id: &str,
    signing_time_ms: u64,
) -> Result<String, AuthError> {
    let identity: Identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "backstage-kubernetes-auth-native",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::ZERO);
    let time = UNIX_EPOCH + Duration::from_millis(signing_time_ms);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(sign_error)?
        .into();
    let unsigned = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let cluster_header = js_normalize_header(cluster_id);
    let request = SignableRequest::new(
        "GET",
        unsigned.as_str(),
        [("host", host), ("x-k8s-aws-id", cluster_header.as_str())].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(sign_error)?;
    let (instructions, _) = sign(request, &params).map_err(sign_error)?.into_parts();
    let signed: Vec<(&str, &str)> = instructions
        .params()
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .collect();
    let find = |name: &str| {
        signed
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    // Backstage's order: the request's own query, then what @smithy/signature-v4 adds.
    let mut ordered: Vec<(&str, &str)> =
        vec![("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    if credentials.session_token.is_some() {
        let token = find("X-Amz-Security-Token")
            .ok_or_else(|| sign_error("the signer did not add X-Amz-Security-Token"))?;
        ordered.push(("X-Amz-Security-Token", token));
    }
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let value =
            find(name).ok_or_else(|| sign_error(format!("the signer did not add {name}")))?;
        ordered.push((name, value));
    }
    let mut url = String::with_capacity(512);
    url.push_str("https://");
    url.push_str(host);
    url.push_str("/?");
    for (i, (k, v)) in ordered.iter().enumerate() {
        if i > 0 {
            url.push('&');
        }
        encode_uri_component(k, &mut url);
        url.push('=');
        encode_uri_component(v, &mut url);
    }
    Ok(url)
}

/// `k8s-aws-v1.` + unpadded base64url of the presigned URL.
pub fn presign_token(
    credentials: &AwsCredentials,
    region: &str,
    host: &str,
    cluster_id: &str,
    signing_time_ms: u64,
) -> Result<Secret, AuthError> {
    let url = presign_url(credentials, region, host, cluster_id, signing_time_ms)?;
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + url.len() * 4 / 3 + 4);
    token.push_str(TOKEN_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(url.as_bytes(), &mut token);
    Ok(Secret::new(token))
}

/// `presignEksToken({ clusterId, region?, credentials: { accessKeyId, secretAccessKey,
/// sessionToken? }, signingTime? })` with the options as JSON (the JS layer turns a `Date`
/// into epoch milliseconds). Region: `AWS_REGION`, else `us-east-1`; host as `getCredential`.
pub fn presign_from_json(options: Option<&serde_json::Value>) -> Result<String, AuthError> {
    use crate::error::InputError;
    use serde_json::Value;
    let Some(Value::Object(o)) = options else {
        return Err(InputError::new("options", "an object").into());
    };
    let string =
        |map: &serde_json::Map<String, Value>, key: &str, field: &str, required: bool| match map
            .get(key)
        {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            None | Some(Value::Null) if !required => Ok(None),
            _ => Err(InputError::new(field, "a string")),
        };
    let cluster_id = string(o, "clusterId", "options.clusterId", true)?.unwrap_or_default();
    let region = match string(o, "region", "options.region", false)? {
        Some(r) => r,
        None => std::env::var("AWS_REGION").unwrap_or_else(|_| DEFAULT_REGION.to_string()),
    };
    let Some(Value::Object(c)) = o.get("credentials") else {
        return Err(InputError::new("options.credentials", "an object").into());
    };
    let credentials = AwsCredentials {
        access_key_id: string(c, "accessKeyId", "options.credentials.accessKeyId", true)?
            .unwrap_or_default(),
        secret_access_key: Secret::new(
            string(
                c,
                "secretAccessKey",
                "options.credentials.secretAccessKey",
                true,
            )?
            .unwrap_or_default(),
        ),
        session_token: string(c, "sessionToken", "options.credentials.sessionToken", false)?
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expires_at_ms: None,
    };
    let signing_time_ms = match o.get("signingTime") {
        None => now_ms(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(ms) if (0.0..8.64e15).contains(&ms) => ms as u64,
            _ => {
                return Err(InputError::new(
                    "options.signingTime",
                    "a valid Date or epoch milliseconds",
                )
                .into())
            }
        },
        Some(_) => {
            return Err(InputError::new(
                "options.signingTime",
                "a valid Date or epoch milliseconds",
            )
            .into())
        }
    };
    let use_fips =
        std::env::var("AWS_USE_FIPS_ENDPOINT").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let host = sts_host(&region, use_fips);
    check_cluster_id(&cluster_id, "options.clusterId")?;
    presign_token(&credentials, &region, &host, &cluster_id, signing_time_ms)
        .map(Secret::into_exposed)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_704_164_645_000; // 2024-01-02T03:04:05.000Z

    fn example() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            expires_at_ms: None,
        }
    }

    fn sig(url: &str) -> &str {
        url.rsplit("X-Amz-Signature=").next().unwrap()
    }

    #[test]
    fn golden_vectors() {
        let c = example();
        let host = sts_host("us-east-1", false);
        let url = presign_url(&c, "us-east-1", &host, "test-cluster", T).unwrap();
        assert_eq!(url, "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240102T030405Z&X-Amz-Expires=0&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=08c162d985a7f477fe31d71bb9ac3d23a1cb7e5aec2b543bd0004c9448f9bf5f");
        assert_eq!(presign_token(&c, "us-east-1", &host, "test-cluster", T).unwrap().expose(), "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjQwMTAyJTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMDJUMDMwNDA1WiZYLUFtei1FeHBpcmVzPTAmWC1BbXotU2lnbmVkSGVhZGVycz1ob3N0JTNCeC1rOHMtYXdzLWlkJlgtQW16LVNpZ25hdHVyZT0wOGMxNjJkOTg1YTdmNDc3ZmUzMWQ3MWJiOWFjM2QyM2ExY2I3ZTVhZWMyYjU0M2JkMDAwNGM5NDQ4ZjliZjVm");
        let u = presign_url(&c, "us-east-1", &host, "other-name", T).unwrap();
        assert_eq!(
            sig(&u),
            "311847e75bf5bdbc6515b87477fc6a27d4ad94f1d2874de1f43b8cff731f1193"
        );
        let u = presign_url(
            &c,
            "eu-west-1",
            &sts_host("eu-west-1", false),
            "test-cluster",
            T,
        )
        .unwrap();
        assert_eq!(
            sig(&u),
            "da41c13f4ee6cc56229bc1a6d5c7f3f425d57803f3257166411bf4f750b45962"
        );
        let u = presign_url(&c, "us-east-1", &host, "a b/c+d=é", T).unwrap();
        assert_eq!(
            sig(&u),
            "4735db63b135c7ced204d244d9a85bebe871b939631b895ec521c7add178a60f"
        );
        let env = AwsCredentials {
            access_key_id: "ASIAENVKEY".into(),
            secret_access_key: Secret::new("envSecret"),
            session_token: Some(Secret::new("env/session+token=")),
            expires_at_ms: None,
        };
        let u = presign_url(&env, "us-east-1", &host, "c1", T).unwrap();
        assert!(u.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Security-Token=env%2Fsession%2Btoken%3D&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAENVKEY%2F20240102%2Fus-east-1%2Fsts%2Faws4_request&"), "{u}");
        assert_eq!(
            sig(&u),
            "7a27366e37390c81d5a29153cfb6ac85d123884567cf16721faf26ad5d993b3b"
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(sts_host("us-east-1", false), "sts.us-east-1.amazonaws.com");
        assert_eq!(
            sts_host("cn-north-1", false),
            "sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            sts_host("us-west-2", true),
            "sts-fips.us-west-2.amazonaws.com"
        );
        assert_eq!(
            sts_host("us-gov-west-1", true),
            "sts.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(sts_host("", false), "sts..amazonaws.com");
        assert_eq!(js_normalize_header("  a \t\n b  "), "a b");
    }
}
