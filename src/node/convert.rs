//! JS values to core types, and core results back to JS. Conversions are bounded (depth and
//! node count) so that cyclic or huge inputs end in an error naming the field, never in a
//! stack overflow, and only the fields a strategy reads are touched.
// napi's registration is compiled out of the lib-test target, where the glue then looks unused.
#![cfg_attr(test, allow(dead_code))]

use std::ffi::{CStr, CString};
use std::ptr;

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{sys, Env, JsValue, Unknown};
use serde_json::{Map, Number, Value};

use crate::error::InputError;
use crate::types::{AuthMetadata, ClusterDetails, InputSpec, KubernetesCredential, RequestAuth};

const MAX_DEPTH: usize = 16;
const MAX_NODES: usize = 10_000;

/// A property name prepared once as a C string, so a read allocates nothing for it.
pub struct Key {
    pub name: &'static str,
    c: CString,
}

impl Key {
    fn new(name: &'static str) -> Self {
        // Our keys are literals without NUL bytes; an impossible NUL degrades to an empty name.
        Key {
            name,
            c: CString::new(name).unwrap_or_default(),
        }
    }
}

/// One value a strategy reads per call. The JS layer reads them (see `plan`) and passes them
/// as arguments, in this order, when each is a string or `undefined`; V8 reads a property in
/// a few nanoseconds where an N-API read costs ~100 ns.
pub enum Input {
    Name,
    Url,
    Metadata(Key),
    Auth(Key),
    /// `requestAuth[a][b]`.
    AuthInner(Key, Key),
    /// `requestAuth[a][authMetadata[m]]` (see `InputSpec::request_auth_by_metadata`).
    AuthByMetadata(Key, &'static str),
}

/// The property names a strategy reads, prepared at construction.
pub struct PreparedInputs {
    pub spec: InputSpec,
    pub inputs: Vec<Input>,
}

impl PreparedInputs {
    pub fn new(spec: InputSpec) -> Self {
        let mut inputs = Vec::new();
        if spec.cluster_name {
            inputs.push(Input::Name);
        }
        if spec.cluster_url {
            inputs.push(Input::Url);
        }
        inputs.extend(
            spec.metadata_keys
                .iter()
                .map(|k| Input::Metadata(Key::new(k))),
        );
        inputs.extend(
            (spec.request_auth_keys.iter()).map(|path| match path.split_once('.') {
                Some((outer, inner)) => Input::AuthInner(Key::new(outer), Key::new(inner)),
                None => Input::Auth(Key::new(path)),
            }),
        );
        if let Some((outer, metadata)) = spec.request_auth_by_metadata {
            inputs.push(Input::AuthByMetadata(Key::new(outer), metadata));
        }
        PreparedInputs { spec, inputs }
    }

    /// The inputs as `[kind, ...names]` rows for the JS layer's reader.
    pub fn plan(&self) -> impl Iterator<Item = Vec<&'static str>> + '_ {
        self.inputs.iter().map(|input| match input {
            Input::Name => vec!["name"],
            Input::Url => vec!["url"],
            Input::Metadata(k) => vec!["metadata", k.name],
            Input::Auth(k) => vec!["auth", k.name],
            Input::AuthInner(a, b) => vec!["authInner", a.name, b.name],
            Input::AuthByMetadata(a, m) => vec!["authByMetadata", a.name, m],
        })
    }

    /// The inputs from what the JS layer read: `values[i]` for `inputs[i]`, written into
    /// `read`, a previous call's inputs whose strings and map nodes are reused (a pass-through
    /// call then allocates almost nothing). Every input sets or removes its entries, so after
    /// `true` the maps hold this call's values and nothing else. `false` when a value is
    /// neither a string nor `undefined`, or a required one is missing: the caller then reads
    /// the objects itself, which reports the field.
    pub fn read_values(
        &self,
        env: sys::napi_env,
        values: &[sys::napi_value],
        read: &mut (ClusterDetails, RequestAuth),
    ) -> bool {
        if values.len() != self.inputs.len() {
            return false;
        }
        let (cd, auth) = read;
        cd.tls_deferred = self.spec.cluster_tls;
        for (input, &v) in self.inputs.iter().zip(values) {
            let undefined = matches!(type_of(env, v), Some(sys::ValueType::napi_undefined));
            let ok = match input {
                Input::Name => !undefined && read_string_into(env, v, &mut cd.name),
                Input::Url => !undefined && read_string_into(env, v, &mut cd.url),
                Input::Metadata(k) if undefined => {
                    cd.auth_metadata.remove(k.name);
                    true
                }
                Input::Metadata(k) => match cd.auth_metadata.get_mut(k.name) {
                    Some(slot) => set_string(env, v, slot),
                    None => insert_string(env, v, |s| {
                        cd.auth_metadata.insert(k.name.to_string(), s);
                    }),
                },
                Input::Auth(k) if undefined => {
                    auth.remove(k.name);
                    true
                }
                Input::Auth(k) => match auth.get_mut(k.name) {
                    Some(slot) => set_string(env, v, slot),
                    None => insert_string(env, v, |s| {
                        auth.insert(k.name.to_string(), s);
                    }),
                },
                Input::AuthInner(a, _) | Input::AuthByMetadata(a, _) if undefined => {
                    auth.remove(a.name);
                    true
                }
                Input::AuthInner(a, b) => set_inner(env, v, auth, a.name, b.name),
                Input::AuthByMetadata(a, m) => match cd.auth_metadata.get(*m) {
                    Some(Value::String(p)) => set_inner(env, v, auth, a.name, p),
                    _ => {
                        auth.remove(a.name);
                        true
                    }
                },
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// The string `inputs[i]` was read as, if it was one (see `read_values`).
    pub fn value_of<'a>(
        &self,
        i: usize,
        cd: &'a ClusterDetails,
        auth: &'a RequestAuth,
    ) -> Option<&'a str> {
        let v = match self.inputs.get(i)? {
            Input::Name => return Some(&cd.name),
            Input::Url => return Some(&cd.url),
            Input::Metadata(k) => cd.auth_metadata.get(k.name)?,
            Input::Auth(k) => auth.get(k.name)?,
            Input::AuthInner(a, b) => auth.get(a.name)?.get(b.name)?,
            Input::AuthByMetadata(a, m) => {
                let p = cd.auth_metadata.get(*m)?.as_str()?;
                auth.get(a.name)?.get(p)?
            }
        };
        v.as_str()
    }
}

/// Clears an exception a getter or proxy trap left pending, so the error we report is ours.
fn clear_pending(env: sys::napi_env) {
    let mut pending = false;
    unsafe {
        if sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending {
            let mut ignored = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut ignored);
        }
    }
}

fn type_of(env: sys::napi_env, v: sys::napi_value) -> Option<sys::napi_valuetype> {
    let mut t = 0;
    (unsafe { sys::napi_typeof(env, v, &mut t) } == sys::Status::napi_ok).then_some(t)
}

fn get_property(env: sys::napi_env, obj: sys::napi_value, key: &CStr) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    if unsafe { sys::napi_get_named_property(env, obj, key.as_ptr(), &mut out) }
        == sys::Status::napi_ok
    {
        Some(out)
    } else {
        clear_pending(env);
        None
    }
}

/// `obj[key]`; `None` when a getter or proxy trap threw (the exception is cleared).
fn get_key(env: sys::napi_env, obj: sys::napi_value, key: &Key) -> Option<sys::napi_value> {
    get_property(env, obj, &key.c)
}

/// The JS string `v`, or `None` if it is not a string.
pub fn read_string(env: sys::napi_env, v: sys::napi_value) -> Option<String> {
    let mut s = String::new();
    read_string_into(env, v, &mut s).then_some(s)
}

/// Reads the JS string `v` into `dest`, reusing its buffer (see `PreparedInputs::read_values`);
/// `false` if `v` is not a string. Most strings we read (tokens aside) are short: one call
/// into a stack buffer reads them; only longer ones need the length first.
fn read_string_into(env: sys::napi_env, v: sys::napi_value, dest: &mut String) -> bool {
    let mut small = [0u8; 256];
    let mut written = 0usize;
    let read = |buf: *mut u8, cap: usize, written: &mut usize| unsafe {
        sys::napi_get_value_string_utf8(env, v, buf.cast(), cap, written) == sys::Status::napi_ok
    };
    if !read(small.as_mut_ptr(), small.len(), &mut written) {
        return false;
    }
    // Room to spare: the string was not truncated (a cut needs 4 bytes of slack at most).
    // Node hands out UTF-8 (lone surrogates become U+FFFD), so the checks below do not fail.
    if written < small.len() - 4 {
        let Ok(s) = std::str::from_utf8(&small[..written]) else {
            return false;
        };
        dest.clear();
        dest.push_str(s);
        return true;
    }
    let mut len = 0usize;
    if !read(ptr::null_mut(), 0, &mut len) {
        return false;
    }
    let mut buf = vec![0u8; len + 1];
    if !read(buf.as_mut_ptr(), len + 1, &mut written) {
        return false;
    }
    buf.truncate(written);
    match String::from_utf8(buf) {
        Ok(s) => {
            *dest = s;
            true
        }
        Err(_) => false,
    }
}

/// Sets a map entry's value to the JS string `v`, in place when it holds a string already.
fn set_string(env: sys::napi_env, v: sys::napi_value, slot: &mut Value) -> bool {
    if let Value::String(s) = slot {
        return read_string_into(env, v, s);
    }
    let mut s = String::new();
    let ok = read_string_into(env, v, &mut s);
    *slot = Value::String(s);
    ok
}

/// Reads the JS string `v` and hands it to `insert` as a JSON string.
fn insert_string(env: sys::napi_env, v: sys::napi_value, insert: impl FnOnce(Value)) -> bool {
    let mut s = String::new();
    let ok = read_string_into(env, v, &mut s);
    if ok {
        insert(Value::String(s));
    }
    ok
}

/// `auth[outer]` becomes `{ inner: v }`, reusing the object when it has that one key.
fn set_inner(
    env: sys::napi_env,
    v: sys::napi_value,
    auth: &mut RequestAuth,
    outer: &str,
    inner: &str,
) -> bool {
    if let Some(Value::Object(map)) = auth.get_mut(outer) {
        if map.len() == 1 {
            if let Some(slot) = map.get_mut(inner) {
                return set_string(env, v, slot);
            }
        }
        map.clear();
        return insert_string(env, v, |s| {
            map.insert(inner.to_string(), s);
        });
    }
    let mut map = Map::new();
    let ok = insert_string(env, v, |s| {
        map.insert(inner.to_string(), s);
    });
    auth.insert(outer.to_string(), Value::Object(map));
    ok
}

fn own_keys(env: sys::napi_env, obj: sys::napi_value) -> Option<Vec<(String, sys::napi_value)>> {
    unsafe {
        let mut names = ptr::null_mut();
        if sys::napi_get_all_property_names(
            env,
            obj,
            sys::KeyCollectionMode::own_only,
            sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
            sys::KeyConversion::numbers_to_strings,
            &mut names,
        ) != sys::Status::napi_ok
        {
            clear_pending(env);
            return None;
        }
        let mut len = 0u32;
        if sys::napi_get_array_length(env, names, &mut len) != sys::Status::napi_ok {
            return None;
        }
        let mut out = Vec::with_capacity(len.min(1024) as usize);
        for i in 0..len {
            let mut name = ptr::null_mut();
            if sys::napi_get_element(env, names, i, &mut name) != sys::Status::napi_ok {
                clear_pending(env);
                return None;
            }
            let key = read_string(env, name)?;
            let mut value = ptr::null_mut();
            if sys::napi_get_property(env, obj, name, &mut value) != sys::Status::napi_ok {
                clear_pending(env);
                return None;
            }
            out.push((key, value));
        }
        Some(out)
    }
}

struct Budget(usize);

/// `undefined` (and functions, symbols: what JSON.stringify drops) read as `None`.
fn to_json(
    env: sys::napi_env,
    v: sys::napi_value,
    field: &dyn Fn() -> String,
    depth: usize,
    budget: &mut Budget,
) -> Result<Option<Value>, InputError> {
    budget.0 = budget.0.saturating_sub(1);
    if budget.0 == 0 || depth > MAX_DEPTH {
        return Err(InputError::new(
            field(),
            "JSON data at most 16 levels deep and 10000 values large",
        ));
    }
    let unreadable = || InputError::new(field(), "readable JSON data");
    let Some(t) = type_of(env, v) else {
        return Err(unreadable());
    };
    Ok(Some(match t {
        sys::ValueType::napi_undefined
        | sys::ValueType::napi_function
        | sys::ValueType::napi_symbol
        | sys::ValueType::napi_external => return Ok(None),
        sys::ValueType::napi_null => Value::Null,
        sys::ValueType::napi_boolean => {
            let mut b = false;
            unsafe { sys::napi_get_value_bool(env, v, &mut b) };
            Value::Bool(b)
        }
        sys::ValueType::napi_number => {
            let mut f = 0f64;
            unsafe { sys::napi_get_value_double(env, v, &mut f) };
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        sys::ValueType::napi_bigint => {
            return Err(InputError::new(field(), "JSON data (not a BigInt)"));
        }
        sys::ValueType::napi_string => Value::String(read_string(env, v).ok_or_else(unreadable)?),
        sys::ValueType::napi_object => {
            let mut is_array = false;
            unsafe { sys::napi_is_array(env, v, &mut is_array) };
            if is_array {
                let mut len = 0u32;
                unsafe { sys::napi_get_array_length(env, v, &mut len) };
                let mut items = Vec::new();
                for i in 0..len {
                    let mut item = ptr::null_mut();
                    if unsafe { sys::napi_get_element(env, v, i, &mut item) }
                        != sys::Status::napi_ok
                    {
                        clear_pending(env);
                        return Err(unreadable());
                    }
                    let sub = || format!("{}[{i}]", field());
                    items.push(to_json(env, item, &sub, depth + 1, budget)?.unwrap_or(Value::Null));
                }
                Value::Array(items)
            } else {
                let entries = own_keys(env, v).ok_or_else(unreadable)?;
                let mut map = Map::new();
                for (key, value) in entries {
                    let sub = || format!("{}.{key}", field());
                    if let Some(json) = to_json(env, value, &sub, depth + 1, budget)? {
                        map.insert(key, json);
                    }
                }
                Value::Object(map)
            }
        }
        _ => return Err(unreadable()),
    }))
}

/// Any JS value as JSON, bounded; `field` names it in errors.
pub fn json(env: &Env, v: &Unknown, field: &str) -> Result<Option<Value>, InputError> {
    to_json(
        env.raw(),
        v.raw(),
        &|| field.to_string(),
        0,
        &mut Budget(MAX_NODES),
    )
}

fn is_nullish(env: sys::napi_env, v: sys::napi_value) -> bool {
    matches!(
        type_of(env, v),
        Some(sys::ValueType::napi_undefined | sys::ValueType::napi_null)
    )
}

fn require_object(env: sys::napi_env, v: sys::napi_value, field: &str) -> Result<(), InputError> {
    match type_of(env, v) {
        Some(sys::ValueType::napi_object | sys::ValueType::napi_function) => Ok(()),
        _ => Err(InputError::new(field, "an object")),
    }
}

fn read_key(
    env: sys::napi_env,
    obj: sys::napi_value,
    key: &CStr,
    field: &dyn Fn() -> String,
) -> Result<Option<Value>, InputError> {
    let v = get_property(env, obj, key).ok_or_else(|| InputError::new(field(), "readable"))?;
    to_json(env, v, field, 1, &mut Budget(MAX_NODES))
}

fn optional_string(
    env: sys::napi_env,
    obj: sys::napi_value,
    key: &CStr,
    field: &str,
) -> Result<Option<String>, InputError> {
    let v = get_property(env, obj, key).ok_or_else(|| InputError::new(field, "readable"))?;
    match type_of(env, v) {
        Some(sys::ValueType::napi_undefined | sys::ValueType::napi_null) => Ok(None),
        Some(sys::ValueType::napi_string) => Ok(read_string(env, v)),
        _ => Err(InputError::new(field, "a string")),
    }
}

/// An options object reduced to `keys`: `undefined`/`null` read as `None`, a non-object is
/// refused, other keys are never touched.
pub fn options(env: &Env, v: &Unknown, keys: &[&'static str]) -> Result<Option<Value>, InputError> {
    let (env, v) = (env.raw(), v.raw());
    if is_nullish(env, v) {
        return Ok(None);
    }
    require_object(env, v, "options")?;
    let mut map = Map::new();
    for name in keys {
        let key = Key::new(name);
        let field = || format!("options.{name}");
        if let Some(value) = read_key(env, v, &key.c, &field)? {
            map.insert(name.to_string(), value);
        }
    }
    Ok(Some(Value::Object(map)))
}

/// `clusterDetails`, reading only what `inputs` names.
pub fn cluster_details(
    env: &Env,
    v: &Unknown,
    inputs: &PreparedInputs,
) -> Result<ClusterDetails, InputError> {
    cluster_details_raw(env.raw(), v.raw(), inputs, true)
}

/// `clusterDetails`, reading only what `inputs` names. `authMetadata` may be missing (read as
/// empty), but when present it must be an object. Without `tls`, the TLS fields are left for
/// later (`ClusterDetails::tls_deferred`).
pub fn cluster_details_raw(
    env: sys::napi_env,
    v: sys::napi_value,
    inputs: &PreparedInputs,
    tls: bool,
) -> Result<ClusterDetails, InputError> {
    let mut cd = ClusterDetails::default();
    let spec = inputs.spec;
    if !spec.cluster_name && !spec.cluster_url && !spec.cluster_tls && spec.metadata_keys.is_empty()
    {
        return Ok(cd);
    }
    require_object(env, v, "clusterDetails")?;
    if spec.cluster_name {
        cd.name = optional_string(env, v, c"name", "clusterDetails.name")?
            .ok_or_else(|| InputError::new("clusterDetails.name", "a string"))?;
    }
    if spec.cluster_url {
        cd.url = optional_string(env, v, c"url", "clusterDetails.url")?
            .ok_or_else(|| InputError::new("clusterDetails.url", "a string"))?;
    }
    if spec.cluster_tls && !tls {
        cd.tls_deferred = true;
    } else if spec.cluster_tls {
        cd.ca_data = optional_string(env, v, c"caData", "clusterDetails.caData")?;
        cd.ca_file = optional_string(env, v, c"caFile", "clusterDetails.caFile")?;
        let skip = get_property(env, v, c"skipTLSVerify")
            .ok_or_else(|| InputError::new("clusterDetails.skipTLSVerify", "readable"))?;
        cd.skip_tls_verify = match type_of(env, skip) {
            Some(sys::ValueType::napi_undefined | sys::ValueType::napi_null) => false,
            Some(sys::ValueType::napi_boolean) => {
                let mut b = false;
                unsafe { sys::napi_get_value_bool(env, skip, &mut b) };
                b
            }
            _ => return Err(InputError::new("clusterDetails.skipTLSVerify", "a boolean")),
        };
    }
    if !spec.metadata_keys.is_empty() {
        let md = get_property(env, v, c"authMetadata")
            .ok_or_else(|| InputError::new("clusterDetails.authMetadata", "readable"))?;
        if !is_nullish(env, md) {
            require_object(env, md, "clusterDetails.authMetadata")?;
            for input in &inputs.inputs {
                let Input::Metadata(key) = input else {
                    continue;
                };
                let field = || format!("clusterDetails.authMetadata['{}']", key.name);
                if let Some(value) = read_key(env, md, &key.c, &field)? {
                    cd.auth_metadata.insert(key.name.to_string(), value);
                }
            }
        }
    }
    Ok(cd)
}

/// `requestAuth`, reading only the keys `inputs` names; `cd` is the cluster already read (its
/// metadata names the key `Input::AuthByMetadata` reads). `undefined`/`null` read as `{}`
/// (Backstage throws a TypeError there; see the README).
pub fn request_auth_raw(
    env: sys::napi_env,
    v: sys::napi_value,
    inputs: &PreparedInputs,
    cd: &ClusterDetails,
) -> Result<RequestAuth, InputError> {
    let mut auth = RequestAuth::new();
    let reads_auth = (inputs.inputs.iter()).any(|i| {
        matches!(
            i,
            Input::Auth(_) | Input::AuthInner(..) | Input::AuthByMetadata(..)
        )
    });
    if !reads_auth || is_nullish(env, v) {
        return Ok(auth);
    }
    require_object(env, v, "requestAuth")?;
    for input in &inputs.inputs {
        let (outer, inner) = match input {
            Input::Auth(key) => {
                let field = || format!("requestAuth.{}", key.name);
                if let Some(value) = read_key(env, v, &key.c, &field)? {
                    auth.insert(key.name.to_string(), value);
                }
                continue;
            }
            Input::AuthInner(outer, inner) => (outer, inner.name.to_string()),
            Input::AuthByMetadata(outer, metadata) => match cd.auth_metadata.get(*metadata) {
                Some(Value::String(p)) => (outer, p.clone()),
                _ => continue,
            },
            _ => continue,
        };
        // `a.b`: only `a.b` is read; a non-object `a` reads as absent, as the strategies
        // would treat it.
        let field = || format!("requestAuth.{}", outer.name);
        let outer_value =
            get_key(env, v, outer).ok_or_else(|| InputError::new(field(), "readable"))?;
        if !matches!(type_of(env, outer_value), Some(sys::ValueType::napi_object)) {
            continue;
        }
        let field = || format!("requestAuth.{}.{inner}", outer.name);
        let Ok(inner_c) = CString::new(inner.as_str()) else {
            continue;
        };
        let mut map = Map::new();
        if let Some(value) = read_key(env, outer_value, &inner_c, &field)? {
            map.insert(inner, value);
        }
        auth.insert(outer.name.to_string(), Value::Object(map));
    }
    Ok(auth)
}

/// A whole `authMetadata` object, for `validateCluster` and `presentAuthMetadata`.
pub fn auth_metadata(env: &Env, v: &Unknown) -> Result<AuthMetadata, InputError> {
    if is_nullish(env.raw(), v.raw()) {
        return Ok(AuthMetadata::new());
    }
    match json(env, v, "authMetadata")? {
        Some(Value::Object(map)) => Ok(map.into_iter().collect()),
        _ => Err(InputError::new("authMetadata", "an object")),
    }
}

/// A credential as the JS object the contract defines; absent fields are not set at all.
pub struct JsCredential(pub KubernetesCredential);

impl ToNapiValue for JsCredential {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let env = Env::from_raw(env);
        let mut obj = Object::new(&env)?;
        obj.set_named_property("type", val.0.type_name())?;
        match val.0 {
            KubernetesCredential::BearerToken { token } => {
                obj.set_named_property("token", token.into_exposed())?;
            }
            KubernetesCredential::X509ClientCertificate { cert, key } => {
                obj.set_named_property("cert", cert.to_string())?;
                obj.set_named_property("key", key.into_exposed())?;
            }
            KubernetesCredential::Anonymous => {}
        }
        Ok(obj.raw())
    }
}
