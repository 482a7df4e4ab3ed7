//! Builds a strategy from its kind and options: the one place that knows every strategy.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{AuthError, InputError};
use crate::options::Options;
use crate::strategies::{
    aks::AksStrategy,
    anonymous::AnonymousStrategy,
    aws::{AwsIamStrategy, AwsOptions},
    google::GoogleStrategy,
    google_service_account::{GoogleServiceAccountOptions, GoogleServiceAccountStrategy},
    oidc::OidcStrategy,
    pinniped::{PinnipedOptions, PinnipedStrategy},
    service_account::{ServiceAccountOptions, ServiceAccountStrategy},
};
use crate::strategy::AuthenticationStrategy;

/// The option keys `build` reads for `kind`; the napi layer converts only these, so options
/// objects that also carry a Backstage `logger` or `config` are never walked.
pub fn option_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "serviceAccount" => &["tokenPath", "reloadIntervalMs", "timeoutMs", "cache"],
        "pinniped" => &[
            "authenticator",
            "tokenCredentialRequestApiGroup",
            "cacheSize",
            "cache",
            "timeoutMs",
        ],
        #[cfg(feature = "test-panics")]
        "testPanic" => &["at"],
        // `aws` is the JSON of the root config's `aws` key (the JS layer extracts it).
        "aws" => &["aws", "tokenCacheSeconds", "timeoutMs", "cache"],
        // `credentials` is the JSON text of `kubernetes.googleServiceAccountCredentials`.
        "googleServiceAccount" => &["credentials", "timeoutMs", "cache", "metadataHost"],
        _ => &[],
    }
}

pub fn build(
    kind: &str,
    options: Option<&Value>,
) -> Result<Arc<dyn AuthenticationStrategy>, AuthError> {
    let opts = Options::new(options, "options")?;
    Ok(match kind {
        "aks" => Arc::new(AksStrategy),
        "localKubectlProxy" => Arc::new(AnonymousStrategy),
        "aws" => {
            let mut o = AwsOptions {
                config: crate::strategies::aws::config::read(opts.value("aws"))?,
                ..AwsOptions::default()
            };
            if let Some(seconds) = opts.seconds("tokenCacheSeconds", 840)? {
                o.token_cache = seconds;
            }
            if let Some(timeout) = opts.millis("timeoutMs")? {
                o.timeout = timeout;
            }
            if let Some(cache) = opts.boolean("cache")? {
                o.cache = cache;
            }
            Arc::new(AwsIamStrategy::new(o))
        }
        "google" => Arc::new(GoogleStrategy),
        "googleServiceAccount" => {
            let mut o = GoogleServiceAccountOptions {
                credentials: opts.string("credentials")?.map(crate::secret::Secret::new),
                metadata_host: opts.string("metadataHost")?.map(str::to_string),
                ..GoogleServiceAccountOptions::default()
            };
            if let Some(timeout) = opts.millis("timeoutMs")? {
                o.timeout = timeout;
            }
            if let Some(cache) = opts.boolean("cache")? {
                o.cache = cache;
            }
            Arc::new(GoogleServiceAccountStrategy::new(o))
        }
        "oidc" => Arc::new(OidcStrategy),
        "serviceAccount" => {
            let mut o = ServiceAccountOptions::default();
            if let Some(path) = opts.string("tokenPath")? {
                o.token_path = path.into();
            }
            if let Some(interval) = opts.millis("reloadIntervalMs")? {
                o.reload_interval = interval;
            }
            if let Some(timeout) = opts.millis("timeoutMs")? {
                o.timeout = timeout;
            }
            if let Some(cache) = opts.boolean("cache")? {
                o.cache = cache;
            }
            Arc::new(ServiceAccountStrategy::new(o))
        }
        "pinniped" => Arc::new(PinnipedStrategy::new(PinnipedOptions::from_options(
            &opts,
        )?)?),
        #[cfg(feature = "test-panics")]
        "testPanic" => {
            use crate::strategies::test_panic::{PanicAt, TestPanicStrategy};
            #[allow(clippy::panic)]
            let at = match opts.string("at")? {
                Some("constructor") => panic!("test panic in the constructor"),
                Some("afterAwait") => PanicAt::AfterAwait,
                Some("inCacheFetch") => PanicAt::InCacheFetch,
                Some("validate") => PanicAt::Validate,
                Some("present") => PanicAt::Present,
                _ => PanicAt::FirstPoll,
            };
            Arc::new(TestPanicStrategy::new(at))
        }
        _ => return Err(InputError::new("kind", "a known strategy kind").into()),
    })
}
