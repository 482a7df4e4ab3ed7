//! One file per strategy. Names follow Backstage's classes; behaviour and messages follow the
//! contract unless the README says otherwise.

pub mod aks;
pub mod anonymous;
pub mod aws;
pub mod azure;
pub mod dispatch;
pub mod google;
pub mod google_service_account;
pub mod oidc;
pub mod pinniped;
pub mod service_account;
#[cfg(feature = "test-panics")]
pub mod test_panic;

use serde_json::Value;

use crate::error::InputError;
use crate::types::is_truthy;

/// A caller-supplied token: JS-falsy values count as absent (as in Backstage); a truthy
/// non-string is refused instead of being sent as `Bearer [object Object]`.
pub(crate) fn supplied_token(
    value: Option<&Value>,
    field: impl FnOnce() -> String,
) -> Result<Option<&str>, InputError> {
    match value {
        None => Ok(None),
        Some(v) if !is_truthy(v) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InputError::new(field(), "a string")),
    }
}
