//! `NativeStrategy`: one napi class for every core strategy. The JS layer subclasses it per
//! Backstage name (`class AksStrategy extends NativeStrategy`), so the binding stays small.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use super::bridge::{function_option, JsLogger, JsTokenSource};
use super::convert::{self, PreparedInputs};
use super::realm::Realm;
use crate::clock::{Clock, SampledClock, SystemClock};
use crate::error::{AuthError, InputError};
use crate::registry::{self, BuildContext};
use crate::strategy::AuthenticationStrategy;
use crate::types::KubernetesCredential;

type CredentialFuture =
    Pin<Box<dyn Future<Output = std::result::Result<KubernetesCredential, AuthError>> + Send>>;

/// Runs `fut` as far as it goes without waiting. It is polled once here, on the JS thread,
/// inside the Tokio runtime's context: pass-through strategies and cache hits finish in that
/// poll and come back as a primitive (token string, `null` for anonymous, `[cert, key]`), which
/// the JS layer wraps in a resolved promise of its own realm. N-API promise and object
/// creation cost ~0.5 us each on Node 20, more than the strategies' work, so the fast path
/// creates neither. Only a future that is really waiting moves to the runtime and comes back
/// as a promise. A panic in that poll becomes an error.
pub(super) fn settle<'e>(
    env: &'e Env,
    realm: &Realm,
    mut fut: CredentialFuture,
) -> Result<Unknown<'e>> {
    let polled = catch_unwind(AssertUnwindSafe(|| {
        napi::bindgen_prelude::within_runtime_if_available(|| {
            fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        })
    }));
    match polled {
        Ok(Poll::Ready(Ok(credential))) => immediate(env, credential),
        Ok(Poll::Ready(Err(err))) => Err(realm.auth(env, err)),
        Ok(Poll::Pending) => {
            let realm = realm.clone();
            let promise = env.spawn_future_with_callback(
                async move { Ok(fut.await) },
                move |env, result| match result {
                    Ok(credential) => realm.credential(env, credential),
                    Err(err) => Err(realm.auth(env, err)),
                },
            )?;
            Ok(promise.to_unknown())
        }
        Err(_) => Err(realm.error(env, "internal error in getCredential".to_string(), false)),
    }
}

/// The primitive form of a credential settled on the JS thread (see `settle`).
fn immediate(env: &Env, credential: KubernetesCredential) -> Result<Unknown<'_>> {
    match credential {
        KubernetesCredential::BearerToken { token } => {
            Ok(env.create_string(token.expose())?.to_unknown())
        }
        KubernetesCredential::Anonymous => Ok(Null.into_unknown(env)?),
        KubernetesCredential::X509ClientCertificate { cert, key } => {
            let mut pair = env.create_array(2)?;
            pair.set(0, cert)?;
            pair.set(1, key.into_exposed())?;
            Ok(pair.to_unknown())
        }
    }
}

#[napi]
pub struct NativeStrategy {
    strategy: Arc<dyn AuthenticationStrategy>,
    inputs: PreparedInputs,
    realm: Realm,
    /// Set when the options carry a `now` function: the JS layer samples it before each call.
    clock: Option<Arc<SampledClock>>,
}

/// The name core errors use for a strategy kind (only the kinds that take a TokenCredential).
fn token_owner(kind: &str) -> &'static str {
    match kind {
        "microsoftEntraId" => "microsoftEntraId",
        _ => "azure",
    }
}

#[napi]
impl NativeStrategy {
    /// `kind` is the Backstage registration name; `options` the strategy's options object;
    /// `realm` the caller's value factories (see `realm.rs`).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        kind: Unknown,
        options: Unknown,
        #[napi(ts_arg_type = "RealmFactories")] realm: Option<Object>,
    ) -> Result<Self> {
        let realm = Realm::from_js(realm)?;
        let kind = match convert::json(&env, &kind, "kind") {
            Ok(Some(Value::String(kind))) => kind,
            Ok(_) => return Err(realm.input(&env, InputError::new("kind", "a string"))),
            Err(err) => return Err(realm.input(&env, err)),
        };
        let json = convert::options(&env, &options, registry::option_keys(&kind))
            .map_err(|e| realm.input(&env, e))?;
        // Functions index.js adds for strategies that take them (see bridge.rs).
        let clock = function_option(&env, &options, c"now")
            .map(|_| SampledClock::new(SystemClock.now_ms()));
        let mut ctx = BuildContext {
            clock: clock.clone().map(|c| c as crate::clock::SharedClock),
            ..BuildContext::default()
        };
        if let Some(log) = function_option(&env, &options, c"log") {
            ctx.logger = Some(JsLogger::new(&env, log)?);
        }
        if let Some(get_token) = function_option(&env, &options, c"getToken") {
            ctx.token_source = Some(Arc::new(JsTokenSource::new(
                &env,
                token_owner(&kind),
                get_token,
            )?));
        }
        let strategy =
            registry::build_with(&kind, json.as_ref(), &ctx).map_err(|e| realm.auth(&env, e))?;
        let inputs = PreparedInputs::new(strategy.inputs());
        Ok(NativeStrategy {
            strategy,
            inputs,
            realm,
            clock,
        })
    }

    /// Stores what the `now` option returned; the next call measures time with it.
    #[napi(catch_unwind, js_name = "setNow")]
    pub fn set_now(&self, env: &Env, ms: f64) -> Result<()> {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(self.realm.input(
                env,
                InputError::new("options.now()", "a number of epoch milliseconds"),
            ));
        }
        if let Some(clock) = &self.clock {
            clock.set(ms as u64);
        }
        Ok(())
    }

    /// `getCredential` without the promise when no I/O was needed: a token string, `null`
    /// (anonymous), `[cert, key]`, or a promise of the credential. Throws on failure; the JS
    /// layer turns all of these into the promise `getCredential` returns.
    #[napi(
        catch_unwind,
        js_name = "credentialNow",
        ts_return_type = "string | null | [string, string] | Promise<KubernetesCredential>"
    )]
    pub fn credential_now<'e>(
        &self,
        env: &'e Env,
        cluster_details: Unknown<'e>,
        request_auth: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        let inputs =
            convert::cluster_details(env, &cluster_details, &self.inputs).and_then(|cluster| {
                convert::request_auth(env, &request_auth, &self.inputs).map(|auth| (cluster, auth))
            });
        let (cluster, auth) = match inputs {
            Ok(inputs) => inputs,
            Err(err) => return Err(self.realm.input(env, err)),
        };
        let strategy = Arc::clone(&self.strategy);
        settle(
            env,
            &self.realm,
            Box::pin(async move { strategy.get_credential(&cluster, &auth).await }),
        )
    }

    #[napi(catch_unwind, ts_return_type = "Error[]")]
    pub fn validate_cluster<'e>(
        &self,
        env: &'e Env,
        auth_metadata: Unknown<'e>,
    ) -> Result<Array<'e>> {
        let metadata =
            convert::auth_metadata(env, &auth_metadata).map_err(|e| self.realm.input(env, e))?;
        let errors = self.strategy.validate_cluster(&metadata);
        let mut out = env.create_array(errors.len() as u32)?;
        for (i, err) in errors.into_iter().enumerate() {
            out.set(i as u32, self.realm.auth(env, err))?;
        }
        Ok(out)
    }

    #[napi(catch_unwind, ts_return_type = "Record<string, string>")]
    pub fn present_auth_metadata<'e>(
        &self,
        env: &'e Env,
        auth_metadata: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        let metadata =
            convert::auth_metadata(env, &auth_metadata).map_err(|e| self.realm.input(env, e))?;
        let presented = self
            .strategy
            .present_auth_metadata(&metadata)
            .into_iter()
            .collect();
        self.realm.object(env, presented)
    }

    /// How many derived credentials (e.g. Pinniped certificates) the strategy has cached.
    #[napi(getter, catch_unwind)]
    pub fn cached_entries(&self) -> u32 {
        u32::try_from(self.strategy.cached_entries()).unwrap_or(u32::MAX)
    }

    /// The Backstage name this instance was built for.
    #[napi(getter, catch_unwind)]
    pub fn kind(&self) -> String {
        self.strategy.name().to_string()
    }
}

/// `presignEksToken(options)`: the EKS token for fixed inputs (see `presign_from_json`).
/// Errors carry `InvalidArg` for bad input; the JS layer rethrows them in the caller's realm.
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind, js_name = "presignEksToken")]
pub fn presign_eks_token(env: &Env, options: Unknown) -> Result<String> {
    let options = convert::json(env, &options, "options")
        .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
    crate::strategies::aws::presign::presign_from_json(options.as_ref()).map_err(|e| {
        let status = if e.is_input() {
            Status::InvalidArg
        } else {
            Status::GenericFailure
        };
        Error::new(status, e.to_string())
    })
}

/// Benchmark reference only: a native call that returns an already-resolved promise holding a
/// small object, the least any native `getCredential` can cost (`npm run bench`).
// napi's registration is compiled out of the lib-test target, where this then looks unused.
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub fn napi_floor(env: &Env) -> Result<PromiseRaw<'_, Object<'_>>> {
    let mut obj = Object::new(env)?;
    obj.set_named_property("type", "anonymous")?;
    PromiseRaw::resolve(env, obj)
}
