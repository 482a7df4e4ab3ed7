//! `NativeStrategy`: one napi class for every core strategy. The JS layer subclasses it per
//! Backstage name (`class AksStrategy extends NativeStrategy`), so the binding stays small.
// napi's registration is compiled out of the lib-test target, where the glue then looks unused.
#![cfg_attr(test, allow(dead_code))]

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::*;
use napi::{check_status, sys};
use napi_derive::napi;
use serde_json::Value;

use super::bound;
use super::bridge::{function_option, JsLogger, JsTokenSource};
use super::convert::{self, PreparedInputs};
use super::realm::Realm;
use crate::clock::{Clock, SampledClock, SystemClock};
use crate::error::{AuthError, InputError};
use crate::registry::{self, BuildContext};
use crate::strategy::AuthenticationStrategy;
use crate::types::{ClusterDetails, KubernetesCredential, RequestAuth};

type CredentialFuture =
    Pin<Box<dyn Future<Output = std::result::Result<KubernetesCredential, AuthError>> + Send>>;

/// Polls `fut` once, here, on the JS thread, inside the Tokio runtime's context; a panic in
/// that poll comes back as `Err`.
fn poll_once(
    fut: &mut CredentialFuture,
) -> std::thread::Result<Poll<std::result::Result<KubernetesCredential, AuthError>>> {
    catch_unwind(AssertUnwindSafe(|| {
        napi::bindgen_prelude::within_runtime_if_available(|| {
            fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        })
    }))
}

/// Settles a polled future (see `poll_once`): pass-through strategies
/// and cache hits finish in that poll and come back as a primitive (token string, `null` for
/// anonymous, `[cert, key]`), which the JS layer wraps in a resolved promise of its own
/// realm. N-API promise and object creation cost ~0.5 us each on Node 20, more than the
/// strategies' work, so the fast path creates neither. Only a future that is really waiting
/// moves to the runtime and comes back as a promise.
fn finish<'e>(
    env: &'e Env,
    realm: &Realm,
    polled: std::thread::Result<Poll<std::result::Result<KubernetesCredential, AuthError>>>,
    fut: CredentialFuture,
) -> Result<Unknown<'e>> {
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
        KubernetesCredential::BearerToken { token } => string(env, token.expose()),
        KubernetesCredential::Anonymous => Ok(Null.into_unknown(env)?),
        KubernetesCredential::X509ClientCertificate { cert, key } => {
            let mut pair = env.create_array(2)?;
            pair.set(0, string(env, &cert)?)?;
            pair.set(1, string(env, key.expose())?)?;
            Ok(pair.to_unknown())
        }
    }
}

/// Tokens, certificates and keys are ASCII: as Latin-1 they are copied, not UTF-8 decoded
/// (an EKS token is ~1.5 KB).
fn string<'e>(env: &'e Env, s: &str) -> Result<Unknown<'e>> {
    if !s.is_ascii() {
        return Ok(env.create_string(s)?.to_unknown());
    }
    let mut out = ptr::null_mut();
    check_status!(unsafe {
        sys::napi_create_string_latin1(env.raw(), s.as_ptr().cast(), s.len() as isize, &mut out)
    })?;
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), out) })
}

/// What a strategy instance needs per call; shared by the class (validate, present) and by
/// its bound function (see `NativeStrategy::bind`).
struct Engine {
    strategy: Arc<dyn AuthenticationStrategy>,
    inputs: PreparedInputs,
    realm: Realm,
    /// Set when the options carry a `now` function: the JS layer samples it before each call.
    clock: Option<Arc<SampledClock>>,
    /// The last pass-through call's inputs, reused by the next (see `read_values`).
    scratch: std::sync::Mutex<Option<(ClusterDetails, RequestAuth)>>,
}

/// The name core errors use for a strategy kind (only the kinds that take a TokenCredential).
fn token_owner(kind: &str) -> &'static str {
    match kind {
        "microsoftEntraId" => "microsoftEntraId",
        _ => "azure",
    }
}

impl Engine {
    fn set_now(&self, env: &Env, ms: f64) -> Result<()> {
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

    /// One call of a strategy's bound function (see `NativeStrategy::bind`): `args` are
    /// `clusterDetails, requestAuth, now?`, then the values the JS layer read (see
    /// `PreparedInputs::read_values`), if it could. A credential whose token is one of those
    /// values comes back as that value's index: the JS layer has the string already, and
    /// copying a token back costs more than the rest of a pass-through call.
    fn call<'e>(&self, env: &'e Env, args: &[sys::napi_value]) -> Result<Unknown<'e>> {
        let [cluster_details, request_auth, now, values @ ..] = args else {
            return Err(self
                .realm
                .input(env, InputError::new("clusterDetails", "an object")));
        };
        let mut ms = 0f64;
        if unsafe { sys::napi_get_value_double(env.raw(), *now, &mut ms) } == sys::Status::napi_ok {
            self.set_now(env, ms)?;
        }
        // How many of `values` the inputs were built from: only those can be answered with
        // their index.
        let mut read = self.take_scratch();
        let mut passed = if self.inputs.read_values(env.raw(), values, &mut read) {
            values.len()
        } else {
            read = self.read(env, *cluster_details, *request_auth, false)?;
            0
        };
        // Pass-through strategies, configured tokens and cache hits: no future, no runtime.
        let strategy = &self.strategy;
        let settled = match catch_unwind(AssertUnwindSafe(|| {
            strategy.credential_now(&read.0, &read.1)
        })) {
            Ok(None) => None,
            Ok(Some(Ok(credential))) => Some(match self.index_of(passed, &read, &credential) {
                Some(i) => env.create_uint32(i as u32).map(|v| v.to_unknown()),
                None => immediate(env, credential),
            }),
            Ok(Some(Err(err))) => Some(Err(self.realm.auth(env, err))),
            Err(_) => Some(Err(self.realm.error(
                env,
                "internal error in getCredential".into(),
                false,
            ))),
        };
        if let Some(settled) = settled {
            if passed > 0 {
                self.put_scratch(read);
            }
            return settled;
        }
        let mut read = Arc::new(read);
        let mut fut = self.future(&read);
        let mut polled = poll_once(&mut fut);
        if matches!(polled, Ok(Poll::Ready(Err(AuthError::TlsDeferred)))) {
            read = Arc::new(self.read(env, *cluster_details, *request_auth, true)?);
            passed = 0;
            fut = self.future(&read);
            polled = poll_once(&mut fut);
        }
        if let Ok(Poll::Ready(Ok(credential))) = &polled {
            if let Some(i) = self.index_of(passed, &read, credential) {
                return Ok(env.create_uint32(i as u32)?.to_unknown());
            }
        }
        finish(env, &self.realm, polled, fut)
    }

    /// Which of the `passed` values the JS layer read is the credential's token, if any.
    fn index_of(
        &self,
        passed: usize,
        (cd, auth): &(ClusterDetails, RequestAuth),
        credential: &KubernetesCredential,
    ) -> Option<usize> {
        let KubernetesCredential::BearerToken { token } = credential else {
            return None;
        };
        let token = token.expose();
        (0..passed).find(|&i| self.inputs.value_of(i, cd, auth) == Some(token))
    }

    /// The inputs of an earlier call, for `read_values` to overwrite (see there).
    fn take_scratch(&self) -> (ClusterDetails, RequestAuth) {
        // A call made while another holds it (a getter calling back in) starts afresh.
        (self.scratch.try_lock().ok())
            .and_then(|mut s| s.take())
            .unwrap_or_default()
    }

    fn put_scratch(&self, read: (ClusterDetails, RequestAuth)) {
        if let Ok(mut s) = self.scratch.try_lock() {
            *s = Some(read);
        }
    }

    /// Reads the inputs from the JS objects themselves: the path for values the JS layer
    /// could not pass (anything but strings), and for the TLS fields.
    fn read(
        &self,
        env: &Env,
        cluster_details: sys::napi_value,
        request_auth: sys::napi_value,
        tls: bool,
    ) -> Result<(ClusterDetails, RequestAuth)> {
        let raw = env.raw();
        convert::cluster_details_raw(raw, cluster_details, &self.inputs, tls)
            .and_then(|cd| {
                convert::request_auth_raw(raw, request_auth, &self.inputs, &cd)
                    .map(|auth| (cd, auth))
            })
            .map_err(|err| self.realm.input(env, err))
    }

    fn future(&self, read: &Arc<(ClusterDetails, RequestAuth)>) -> CredentialFuture {
        let strategy = Arc::clone(&self.strategy);
        let read = Arc::clone(read);
        Box::pin(async move {
            let (cluster, auth) = &*read;
            strategy.get_credential(cluster, auth).await
        })
    }
}

#[napi]
pub struct NativeStrategy {
    engine: Arc<Engine>,
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
            engine: Arc::new(Engine {
                strategy,
                inputs,
                realm,
                clock,
                scratch: Default::default(),
            }),
        })
    }

    /// Stores what the `now` option returned; the next call measures time with it.
    #[napi(catch_unwind, js_name = "setNow")]
    pub fn set_now(&self, env: &Env, ms: f64) -> Result<()> {
        self.engine.set_now(env, ms)
    }

    /// This instance's `getCredential` without the promise, as a function of its own:
    /// `(clusterDetails, requestAuth, now?, ...values)`, where `values` are the inputs the
    /// JS layer read (see `inputPlan`). It returns a token string, `null` (anonymous),
    /// `[cert, key]`, the index of the value that is the token, or a promise of the
    /// credential; it throws on failure. A plain N-API function holding the engine as its
    /// data, rather than a `#[napi]` method: napi-rs's method glue (receiver type checks,
    /// borrow tracking) cost more per call than the strategies' own work.
    #[napi(catch_unwind, ts_return_type = "(...args: unknown[]) => unknown")]
    pub fn bind<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        bound::function::<_, MAX_ARGS>(
            env,
            c"credentialNow",
            "getCredential",
            Arc::clone(&self.engine),
            |env, engine, argv, argc| {
                // More than MAX_ARGS cannot be our JS layer's values, which are then read
                // natively.
                let args = if argc > MAX_ARGS {
                    &argv[..3]
                } else {
                    &argv[..argc.max(3)]
                };
                engine.call(env, args).map(|v| v.raw())
            },
        )
    }

    /// What the bound function's values are: one `[kind, ...names]` row per value, kinds
    /// `name`, `url`, `metadata`, `auth`, `authInner`, `authByMetadata`.
    #[napi(catch_unwind, ts_return_type = "string[][]")]
    pub fn input_plan(&self) -> Vec<Vec<&'static str>> {
        self.engine.inputs.plan().collect()
    }

    #[napi(catch_unwind, ts_return_type = "Error[]")]
    pub fn validate_cluster<'e>(
        &self,
        env: &'e Env,
        auth_metadata: Unknown<'e>,
    ) -> Result<Array<'e>> {
        let metadata = convert::auth_metadata(env, &auth_metadata)
            .map_err(|e| self.engine.realm.input(env, e))?;
        let errors = self.engine.strategy.validate_cluster(&metadata);
        let mut out = env.create_array(errors.len() as u32)?;
        for (i, err) in errors.into_iter().enumerate() {
            out.set(i as u32, self.engine.realm.auth(env, err))?;
        }
        Ok(out)
    }

    #[napi(catch_unwind, ts_return_type = "Record<string, string>")]
    pub fn present_auth_metadata<'e>(
        &self,
        env: &'e Env,
        auth_metadata: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        let metadata = convert::auth_metadata(env, &auth_metadata)
            .map_err(|e| self.engine.realm.input(env, e))?;
        let presented = self
            .engine
            .strategy
            .present_auth_metadata(&metadata)
            .into_iter()
            .collect();
        self.engine.realm.object(env, presented)
    }

    /// How many derived credentials (e.g. Pinniped certificates) the strategy has cached.
    #[napi(getter, catch_unwind)]
    pub fn cached_entries(&self) -> u32 {
        u32::try_from(self.engine.strategy.cached_entries()).unwrap_or(u32::MAX)
    }

    /// The Backstage name this instance was built for.
    #[napi(getter, catch_unwind)]
    pub fn kind(&self) -> String {
        self.engine.strategy.name().to_string()
    }
}

/// `clusterDetails, requestAuth, now`, then at most this many values less three; the most any
/// strategy reads is six (Pinniped).
const MAX_ARGS: usize = 16;

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
