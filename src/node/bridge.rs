//! What a JS host injects into a core strategy besides JSON options: a `now()` clock, a
//! Backstage logger and an Azure `TokenCredential`. index.js hands these over as plain
//! functions (`now`, `log`, `getToken`) that never throw, so this layer only converts.

use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use serde_json::Value;

use crate::error::AuthError;
use crate::log::{Level, Logger};
use crate::secret::Secret;
use crate::strategies::azure::sources::{AccessToken, TokenSource};

/// `options[name]` when it is a function.
pub fn function_option(env: &Env, options: &Unknown, name: &CStr) -> Option<sys::napi_value> {
    let raw = options.raw();
    let mut t = sys::ValueType::napi_undefined;
    unsafe { sys::napi_typeof(env.raw(), raw, &mut t) };
    if t != sys::ValueType::napi_object {
        return None;
    }
    let mut out = ptr::null_mut();
    let ok = unsafe { sys::napi_get_named_property(env.raw(), raw, name.as_ptr(), &mut out) }
        == sys::Status::napi_ok;
    if !ok {
        let mut pending = false;
        let mut ignored = ptr::null_mut();
        unsafe {
            sys::napi_is_exception_pending(env.raw(), &mut pending);
            if pending {
                sys::napi_get_and_clear_last_exception(env.raw(), &mut ignored);
            }
        }
        return None;
    }
    let mut t = sys::ValueType::napi_undefined;
    unsafe { sys::napi_typeof(env.raw(), out, &mut t) };
    (t == sys::ValueType::napi_function).then_some(out)
}

// Weak: a pending log line or token request must not keep Node alive on its own.
type GetTokenFn =
    ThreadsafeFunction<(String, f64), Promise<Value>, FnArgs<(String, f64)>, Status, false, true>;
type LogArgs = (String, String, Option<String>);
type LogFn = ThreadsafeFunction<LogArgs, Option<bool>, FnArgs<LogArgs>, Status, false, true>;

/// A JS `TokenCredential`, called through index.js's `getToken(scope, timeoutMs)` wrapper,
/// which resolves `{ token, expiresOnTimestamp }`, `{ error }` or `null` and never rejects.
pub struct JsTokenSource {
    owner: &'static str,
    get_token: GetTokenFn,
}

impl JsTokenSource {
    pub fn new(env: &Env, owner: &'static str, func: sys::napi_value) -> Result<Self> {
        let func =
            unsafe { Function::<(String, f64), Promise<Value>>::from_napi_value(env.raw(), func) }?;
        Ok(JsTokenSource {
            owner,
            // `FnArgs` spreads the tuple into arguments (a bare tuple arrives as one array).
            get_token: func
                .build_threadsafe_function()
                .weak::<true>()
                .build_callback(|ctx| Ok(FnArgs::from(ctx.value)))?,
        })
    }

    fn failed(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Upstream {
            strategy: self.owner,
            endpoint: "TokenCredential.getToken".into(),
            reason: reason.into(),
        }
    }
}

#[async_trait]
impl TokenSource for JsTokenSource {
    async fn get_token(
        &self,
        scope: &str,
        timeout: Duration,
    ) -> std::result::Result<AccessToken, AuthError> {
        let promise = self
            .get_token
            .call_async_catch((scope.to_string(), timeout.as_millis() as f64))
            .await
            .map_err(|e| self.failed(format!("cannot call it: {}", e.reason)))?;
        let answer = promise
            .await
            .map_err(|e| self.failed(format!("cannot read its answer: {}", e.reason)))?;
        match answer {
            Value::Null => Err(AuthError::contract("AccessToken is null")),
            Value::Object(map) => {
                if let Some(message) = map.get("error") {
                    return Err(self.failed(message.as_str().unwrap_or("failed").to_string()));
                }
                let token = map
                    .get("token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.failed("the AccessToken has no string token"))?;
                let expires = map
                    .get("expiresOnTimestamp")
                    .and_then(Value::as_f64)
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| {
                        self.failed("the AccessToken has no numeric expiresOnTimestamp")
                    })?;
                Ok(AccessToken {
                    token: Secret::new(token),
                    expires_on_ms: expires.max(0.0) as u64,
                })
            }
            _ => Err(self.failed("it resolved to something other than an AccessToken")),
        }
    }
}

/// The Backstage `LoggerService`, through index.js's `log(level, message, errorMessage?)`.
pub struct JsLogger {
    log: LogFn,
}

impl JsLogger {
    pub fn new(env: &Env, func: sys::napi_value) -> Result<Arc<Self>> {
        let func = unsafe {
            Function::<(String, String, Option<String>), Option<bool>>::from_napi_value(
                env.raw(),
                func,
            )
        }?;
        Ok(Arc::new(JsLogger {
            log: func
                .build_threadsafe_function()
                .weak::<true>()
                .build_callback(|ctx| Ok(FnArgs::from(ctx.value)))?,
        }))
    }
}

impl Logger for JsLogger {
    fn log(&self, level: Level, message: &str, error: Option<&AuthError>) {
        // A full queue or a closing environment only loses the log line.
        let _ = self.log.call(
            (
                level.as_str().to_string(),
                message.to_string(),
                error.map(|e| e.to_string()),
            ),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}
