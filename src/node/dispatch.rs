//! `DispatchStrategy` over JS strategy objects (ours or plain JS ones alike).

use std::collections::HashMap;
use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::bound;
use super::convert::{self, PreparedInputs};
use super::realm::Realm;
use crate::error::InputError;
use crate::strategies::dispatch::{provider_label, DispatchStrategy as CoreDispatch};
use crate::types::{InputSpec, ANNOTATION_AUTH_PROVIDER};

#[napi(custom_finalize)]
pub struct DispatchStrategy {
    /// The map's strategies, in the order of the chooser's indexes. The refs keep the objects
    /// alive; released in `finalize` with the instance.
    strategies: Vec<ObjectRef<false>>,
    /// Provider -> index into `strategies`, shared with the JS layer's `chooser()` function.
    chooser: Arc<Chooser>,
    realm: Realm,
}

/// Picks a strategy by index. No JS references: the function `chooser()` makes can own it.
struct Chooser {
    core: CoreDispatch<u32>,
    /// The one `clusterDetails` value read: the provider annotation.
    inputs: PreparedInputs,
    realm: Realm,
}

impl Chooser {
    /// The index of the strategy for `clusterDetails` (or for `provider`, the annotation the
    /// JS layer read as a string); an error of Backstage's words when none matches.
    fn choose(
        &self,
        env: &Env,
        cluster_details: sys::napi_value,
        provider: Option<String>,
    ) -> Result<u32> {
        let provider = match provider {
            Some(provider) => provider,
            None => {
                let cluster =
                    convert::cluster_details_raw(env.raw(), cluster_details, &self.inputs, true)
                        .map_err(|e| self.realm.input(env, e))?;
                provider_label(cluster.auth_metadata.get(ANNOTATION_AUTH_PROVIDER))
            }
        };
        (self.core.for_credential(&provider))
            .copied()
            .map_err(|e| self.realm.auth(env, e))
    }
}

impl ObjectFinalize for DispatchStrategy {
    fn finalize(self, env: Env) -> Result<()> {
        for strategy in self.strategies {
            strategy.unref(&env)?;
        }
        Ok(())
    }
}

fn type_of(env: &Env, v: sys::napi_value) -> sys::napi_valuetype {
    let mut t = sys::ValueType::napi_undefined;
    unsafe { sys::napi_typeof(env.raw(), v, &mut t) };
    t
}

fn is_object(env: &Env, v: sys::napi_value) -> bool {
    matches!(
        type_of(env, v),
        sys::ValueType::napi_object | sys::ValueType::napi_function
    )
}

/// `obj[name]`, or `None` if reading it threw (the exception is cleared).
fn property(env: &Env, obj: sys::napi_value, name: &CStr) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    let ok = unsafe { sys::napi_get_named_property(env.raw(), obj, name.as_ptr(), &mut out) }
        == sys::Status::napi_ok;
    if !ok {
        take_exception(env);
    }
    ok.then_some(out)
}

fn take_exception(env: &Env) -> Option<sys::napi_value> {
    let mut exception = ptr::null_mut();
    let mut pending = false;
    unsafe {
        sys::napi_is_exception_pending(env.raw(), &mut pending);
        if pending
            && sys::napi_get_and_clear_last_exception(env.raw(), &mut exception)
                == sys::Status::napi_ok
        {
            return Some(exception);
        }
    }
    None
}

impl DispatchStrategy {
    /// The strategy object at a chooser index.
    fn strategy<'e>(&self, env: &'e Env, index: u32) -> Result<Object<'e>> {
        (self.strategies.get(index as usize))
            .ok_or_else(|| self.realm.error(env, "no such strategy".into(), false))?
            .get_value(env)
    }

    /// Calls `obj[method](...args)`; what it returns is returned, what it throws is rethrown.
    fn call<'e>(
        &self,
        env: &'e Env,
        obj: sys::napi_value,
        method: &CStr,
        args: &[sys::napi_value],
    ) -> Result<Unknown<'e>> {
        let not_callable = || {
            self.realm.input(
                env,
                InputError::new(
                    format!("the strategy's {}", method.to_string_lossy()),
                    "a function",
                ),
            )
        };
        let func = property(env, obj, method).ok_or_else(not_callable)?;
        if type_of(env, func) != sys::ValueType::napi_function {
            return Err(not_callable());
        }
        let mut result = ptr::null_mut();
        let status = unsafe {
            sys::napi_call_function(env.raw(), obj, func, args.len(), args.as_ptr(), &mut result)
        };
        if status == sys::Status::napi_ok {
            return Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), result) });
        }
        match take_exception(env) {
            Some(thrown) => Err(napi::Error::from(unsafe {
                Unknown::from_raw_unchecked(env.raw(), thrown)
            })),
            None => Err(self
                .realm
                .error(env, "calling the strategy failed".into(), false)),
        }
    }

    fn provider(&self, env: &Env, metadata: &Unknown, field: &str) -> Result<String> {
        let metadata = convert::auth_metadata(env, metadata).map_err(|e| {
            self.realm.input(
                env,
                InputError::new(field.replacen("authMetadata", &e.field, 1), e.expected),
            )
        })?;
        Ok(provider_label(metadata.get(ANNOTATION_AUTH_PROVIDER)))
    }
}

#[napi]
impl DispatchStrategy {
    /// `{ authStrategyMap: { [provider]: AuthenticationStrategy } }`; the map's own keys are
    /// read once, as Backstage snapshots its registered map.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        options: Unknown,
        #[napi(ts_arg_type = "RealmFactories")] realm: Option<Object>,
    ) -> Result<Self> {
        let realm = Realm::from_js(realm)?;
        let invalid = |field: String, expected| realm.input(&env, InputError::new(field, expected));
        if !is_object(&env, options.raw()) {
            return Err(invalid("options".into(), "an object"));
        }
        let map = property(&env, options.raw(), c"authStrategyMap")
            .filter(|m| type_of(&env, *m) == sys::ValueType::napi_object)
            .ok_or_else(|| invalid("options.authStrategyMap".into(), "an object"))?;
        let map = Object::from_raw(env.raw(), map);
        let mut strategies: HashMap<String, ObjectRef<false>> = HashMap::new();
        let mut failure = None;
        // A proxy or getter that throws is the caller's input: it becomes an error naming the
        // field, never the trap's own exception.
        let keys = Object::keys(&map).map_err(|_| {
            take_exception(&env);
            invalid("options.authStrategyMap".into(), "readable")
        })?;
        for key in keys {
            let value = match map.has_own_property(&key).and_then(|own| {
                own.then(|| map.get_named_property::<Unknown>(&key))
                    .transpose()
            }) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(_) => {
                    take_exception(&env);
                    failure = Some(invalid(
                        format!("options.authStrategyMap.{key}"),
                        "readable",
                    ));
                    break;
                }
            };
            let has_get_credential = is_object(&env, value.raw())
                && property(&env, value.raw(), c"getCredential")
                    .is_some_and(|f| type_of(&env, f) == sys::ValueType::napi_function);
            if !has_get_credential {
                failure = Some(invalid(
                    format!("options.authStrategyMap.{key}"),
                    "an AuthenticationStrategy (an object with a getCredential method)",
                ));
                break;
            }
            let obj = Object::from_raw(env.raw(), value.raw());
            strategies.insert(key, obj.create_ref::<false>()?);
        }
        if let Some(err) = failure {
            for (_, r) in strategies {
                r.unref(&env)?;
            }
            return Err(err);
        }
        let (names, strategies): (Vec<String>, Vec<_>) = strategies.into_iter().unzip();
        let indexes = names.into_iter().zip(0u32..).collect();
        Ok(DispatchStrategy {
            strategies,
            chooser: Arc::new(Chooser {
                core: CoreDispatch::new(indexes),
                inputs: PreparedInputs::new(InputSpec {
                    metadata_keys: &[ANNOTATION_AUTH_PROVIDER],
                    ..InputSpec::default()
                }),
                realm: realm.clone(),
            }),
            realm,
        })
    }

    /// The map's strategies, in the order of the indexes `chooser()` returns.
    #[napi(catch_unwind, ts_return_type = "object[]")]
    pub fn strategies<'e>(&self, env: &'e Env) -> Result<Array<'e>> {
        let mut out = env.create_array(self.strategies.len() as u32)?;
        for (i, strategy) in self.strategies.iter().enumerate() {
            out.set(i as u32, strategy.get_value(env)?)?;
        }
        Ok(out)
    }

    /// `(clusterDetails, provider?) => index`: which strategy serves `clusterDetails`, by its
    /// `kubernetes.io/auth-provider` annotation (`provider`, when the JS layer read it as a
    /// string); throws when none matches, as Backstage's `getCredential` does
    /// (synchronously). The JS layer then calls that strategy's `getCredential` itself: from
    /// native code the call would cross the JS/native boundary twice more.
    #[napi(
        catch_unwind,
        ts_return_type = "(clusterDetails: unknown, provider?: string) => number"
    )]
    pub fn chooser<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        bound::function::<_, 2>(
            env,
            c"choose",
            "getCredential",
            Arc::clone(&self.chooser),
            |env, chooser, argv, _| {
                let provider = convert::read_string(env.raw(), argv[1]);
                let index = chooser.choose(env, argv[0], provider)?;
                env.create_uint32(index).map(|v| v.raw())
            },
        )
    }

    /// The chosen strategy's `getCredential(clusterDetails, requestAuth)`, all native;
    /// the JS layer uses it when the strategy's `getCredential` is not a function, for the
    /// error naming it.
    #[napi(catch_unwind, ts_return_type = "Promise<KubernetesCredential>")]
    pub fn get_credential<'e>(
        &self,
        env: &'e Env,
        cluster_details: Unknown<'e>,
        request_auth: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        let index = self.chooser.choose(env, cluster_details.raw(), None)?;
        let strategy = self.strategy(env, index)?;
        self.call(
            env,
            strategy.raw(),
            c"getCredential",
            &[cluster_details.raw(), request_auth.raw()],
        )
    }

    #[napi(catch_unwind, ts_return_type = "Error[]")]
    pub fn validate_cluster<'e>(
        &self,
        env: &'e Env,
        auth_metadata: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        let provider = self.provider(env, &auth_metadata, "authMetadata")?;
        match self.chooser.core.for_validation(&provider) {
            Ok(&index) => {
                let obj = self.strategy(env, index)?;
                match property(env, obj.raw(), c"validateCluster") {
                    Some(f) if type_of(env, f) == sys::ValueType::napi_function => {
                        self.call(env, obj.raw(), c"validateCluster", &[auth_metadata.raw()])
                    }
                    // A JS strategy without validateCluster has nothing to report.
                    _ => Ok(env.create_array(0)?.to_unknown()),
                }
            }
            Err(err) => {
                let mut errors = env.create_array(1)?;
                errors.set(0, self.realm.auth(env, err))?;
                Ok(errors.to_unknown())
            }
        }
    }

    #[napi(catch_unwind, ts_return_type = "Record<string, string>")]
    pub fn present_auth_metadata<'e>(
        &self,
        env: &'e Env,
        _auth_metadata: Unknown<'e>,
    ) -> Result<Unknown<'e>> {
        self.realm.object(env, serde_json::Map::new())
    }
}
