//! Builds a strategy from its kind and options: the one place that knows every strategy.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::SharedClock;
use crate::error::{AuthError, InputError};
use crate::log::SharedLogger;
use crate::options::Options;
use crate::strategies::{
    aks::AksStrategy,
    anonymous::AnonymousStrategy,
    aws::{AwsIamStrategy, AwsOptions},
    azure::{
        sources::SharedTokenSource, AzureIdentityStrategy, AzureOptions, EntraOptions,
        MicrosoftEntraIdStrategy,
    },
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
        "azure" => &["timeoutMs", "failureBackoffMs", "cache", "env"],
        "microsoftEntraId" => &[
            "timeoutMs",
            "failureBackoffMs",
            "cache",
            "env",
            "scope",
            "tenantId",
            "clientId",
            "clientSecret",
            "authorityHost",
        ],
        _ => &[],
    }
}

/// What the host injects besides the JSON options (the napi layer: a JS `now` function, a
/// Backstage logger, a JS `TokenCredential`). Strategies that cannot use a part ignore it.
#[derive(Clone, Default)]
pub struct BuildContext {
    pub clock: Option<SharedClock>,
    pub logger: Option<SharedLogger>,
    pub token_source: Option<SharedTokenSource>,
}

pub fn build(
    kind: &str,
    options: Option<&Value>,
) -> Result<Arc<dyn AuthenticationStrategy>, AuthError> {
    build_with(kind, options, &BuildContext::default())
}

pub fn build_with(
    kind: &str,
    options: Option<&Value>,
    ctx: &BuildContext,
) -> Result<Arc<dyn AuthenticationStrategy>, AuthError> {
    let opts = Options::new(options, "options")?;
    let azure = || -> Result<AzureOptions, InputError> {
        let mut o = AzureOptions::default();
        o.read(&opts)?;
        if let Some(clock) = &ctx.clock {
            o.clock = Arc::clone(clock);
        }
        if let Some(logger) = &ctx.logger {
            o.logger = Arc::clone(logger);
        }
        o.source = ctx.token_source.clone();
        Ok(o)
    };
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
            if let Some(clock) = &ctx.clock {
                o.clock = Arc::clone(clock);
            }
            Arc::new(AwsIamStrategy::new(o))
        }
        "azure" => Arc::new(AzureIdentityStrategy::new(azure()?)),
        "microsoftEntraId" => {
            let mut o = EntraOptions {
                azure: azure()?,
                ..EntraOptions::default()
            };
            o.read(&opts)?;
            Arc::new(MicrosoftEntraIdStrategy::new(o))
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
        "pinniped" => {
            let mut o = PinnipedOptions::from_options(&opts)?;
            if let Some(clock) = &ctx.clock {
                o.clock = Arc::clone(clock);
            }
            Arc::new(PinnipedStrategy::new(o)?)
        }
        #[cfg(feature = "test-panics")]
        "testPanic" => {
            use crate::strategies::test_panic::{PanicAt, TestPanicStrategy};
            #[allow(clippy::panic)]
            let at = match opts.string("at")? {
                Some("constructor") => panic!("test panic in the constructor"),
                Some("credentialNow") => PanicAt::CredentialNow,
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
