//! Plain N-API functions that own Rust state, for the per-call paths: napi-rs's class-method
//! glue (receiver type checks, borrow tracking) costs ~1 us a call on Node 20, more than a
//! pass-through strategy's whole call.

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::{check_status, sys};

/// What a bound function calls: its state, the first `N` arguments (those not passed read as
/// `undefined`) and how many were passed.
pub type Call<T> = fn(&Env, &T, &[sys::napi_value], usize) -> Result<sys::napi_value>;

struct Bound<T> {
    state: T,
    call: Call<T>,
    /// Named in the error a caught panic becomes: `internal error in <what>`.
    what: &'static str,
}

/// A JS function named `name` that runs `call` with `state`, which it owns: `state` is dropped
/// when the function is collected. A panic becomes a thrown `Error`, never an abort.
pub fn function<'e, T: 'static, const N: usize>(
    env: &'e Env,
    name: &CStr,
    what: &'static str,
    state: T,
    call: Call<T>,
) -> Result<Unknown<'e>> {
    let data = Box::into_raw(Box::new(Bound { state, call, what }));
    let mut f = ptr::null_mut();
    let mut status = unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr(),
            name.count_bytes() as isize,
            Some(trampoline::<T, N>),
            data.cast(),
            &mut f,
        )
    };
    if status == sys::Status::napi_ok {
        status = unsafe {
            sys::napi_add_finalizer(
                env.raw(),
                f,
                data.cast(),
                Some(drop_bound::<T>),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
    }
    if status != sys::Status::napi_ok {
        // No finalizer owns it: ours to free.
        drop(unsafe { Box::from_raw(data) });
        return Err(Error::new(
            Status::GenericFailure,
            "cannot make a native function",
        ));
    }
    // From here the function's finalizer frees the box.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), f) })
}

unsafe extern "C" fn trampoline<T: 'static, const N: usize>(
    raw_env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let env = Env::from_raw(raw_env);
    let mut what = "a native function";
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut argc = N;
        let mut argv = [ptr::null_mut(); N];
        let mut data = ptr::null_mut();
        check_status!(unsafe {
            sys::napi_get_cb_info(
                raw_env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                &mut data,
            )
        })?;
        // The box `function` attached: alive as long as this function is.
        let bound = unsafe { data.cast::<Bound<T>>().as_ref() }
            .ok_or_else(|| Error::new(Status::InvalidArg, "not a bound function"))?;
        what = bound.what;
        (bound.call)(&env, &bound.state, &argv, argc)
    }));
    let err = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err,
        Err(_) => Error::new(Status::GenericFailure, format!("internal error in {what}")),
    };
    unsafe { JsError::from(err).throw_into(raw_env) };
    ptr::null_mut()
}

unsafe extern "C" fn drop_bound<T>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // Runs once, when the function is collected; `data` is the box `function` leaked.
    drop(unsafe { Box::from_raw(data.cast::<Bound<T>>()) });
}
