//! Values that belong to the caller's JS realm. Jest runs each test file in its own `vm`
//! context, where an Error made by native code fails `instanceof Error` and a plain object
//! made by native code is not `toStrictEqual` to a literal (its `constructor` differs). The JS
//! layer hands every instance three factories evaluated in the caller's realm; every value
//! we return (credentials, metadata objects, errors) is built through them, on the JS thread.
//! One JS call per value: no more than setting the properties natively would cost.

use std::sync::Arc;

use napi::bindgen_prelude::{
    Array, FnArgs, FromNapiValue, FunctionRef, JsObjectValue, Object, ToNapiValue, Unknown,
};
use napi::{Env, JsValue, Status};
use serde_json::Value;

use super::convert::JsCredential;
use crate::error::{AuthError, InputError};
use crate::types::KubernetesCredential;

type ErrorFactory = FunctionRef<FnArgs<(String, bool)>, Unknown<'static>>;
type CredentialFactory =
    FunctionRef<FnArgs<(&'static str, Option<String>, Option<String>)>, Unknown<'static>>;
type ObjectFactory = FunctionRef<FnArgs<(Array<'static>,)>, Unknown<'static>>;

struct Factories {
    error: ErrorFactory,
    credential: CredentialFactory,
    object: ObjectFactory,
}

#[derive(Clone, Default)]
pub struct Realm {
    factories: Option<Arc<Factories>>,
}

impl Realm {
    /// `realm` is `{ makeError(message, isTypeError), makeCredential(type, a, b),
    /// makeObject(entries) }`; without it (the raw binding), values are native.
    pub fn from_js(realm: Option<Object>) -> napi::Result<Self> {
        let Some(realm) = realm else {
            return Ok(Realm::default());
        };
        Ok(Realm {
            factories: Some(Arc::new(Factories {
                error: realm.get_named_property("makeError")?,
                credential: realm.get_named_property("makeCredential")?,
                object: realm.get_named_property("makeObject")?,
            })),
        })
    }

    /// A JS error of the caller's realm, carried in a `napi::Error` that napi-rs throws or
    /// rejects with verbatim. Falls back to a native error if the factory itself fails.
    pub fn error(&self, env: &Env, message: String, type_error: bool) -> napi::Error {
        if let Some(f) = &self.factories {
            if let Ok(made) = f
                .error
                .borrow_back(env)
                .and_then(|make| make.call(FnArgs::from((message.clone(), type_error))))
            {
                return napi::Error::from(made);
            }
        }
        let status = if type_error {
            Status::InvalidArg
        } else {
            Status::GenericFailure
        };
        napi::Error::new(status, message)
    }

    pub fn auth(&self, env: &Env, err: AuthError) -> napi::Error {
        let type_error = err.is_input();
        self.error(env, err.to_string(), type_error)
    }

    pub fn input(&self, env: &Env, err: InputError) -> napi::Error {
        self.error(env, err.to_string(), true)
    }

    pub fn credential<'e>(
        &self,
        env: &'e Env,
        credential: KubernetesCredential,
    ) -> napi::Result<Unknown<'e>> {
        let Some(f) = &self.factories else {
            return unsafe { raw_unknown(env, JsCredential(credential)) };
        };
        let kind = credential.type_name();
        let (a, b) = match credential {
            KubernetesCredential::BearerToken { token } => (Some(token.into_exposed()), None),
            KubernetesCredential::X509ClientCertificate { cert, key } => {
                (Some(cert.to_string()), Some(key.into_exposed()))
            }
            KubernetesCredential::Anonymous => (None, None),
        };
        let made = f
            .credential
            .borrow_back(env)?
            .call(FnArgs::from((kind, a, b)))?;
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), made.raw()) })
    }

    /// A plain object of string-keyed JSON values.
    pub fn object<'e>(
        &self,
        env: &'e Env,
        map: serde_json::Map<String, Value>,
    ) -> napi::Result<Unknown<'e>> {
        let Some(f) = &self.factories else {
            return unsafe { raw_unknown(env, map) };
        };
        let mut entries = env.create_array(map.len() as u32)?;
        for (i, (k, v)) in map.into_iter().enumerate() {
            let mut pair = env.create_array(2)?;
            pair.set(0, k)?;
            pair.set(1, v)?;
            entries.set(i as u32, pair)?;
        }
        let entries = unsafe { Array::from_napi_value(env.raw(), entries.raw())? };
        let made = f.object.borrow_back(env)?.call(FnArgs::from((entries,)))?;
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), made.raw()) })
    }
}

unsafe fn raw_unknown<'e, T: ToNapiValue>(env: &'e Env, value: T) -> napi::Result<Unknown<'e>> {
    let raw = unsafe { T::to_napi_value(env.raw(), value)? };
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
}
