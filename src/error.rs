//! Errors. Every message says what failed and where, and never holds a secret: secrets are
//! `Secret` values, which the messages below never format.

use thiserror::Error;

/// Input that does not have the shape the contract requires. Surfaces in JS as a `TypeError`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{field} must be {expected}")]
pub struct InputError {
    pub field: String,
    pub expected: &'static str,
}

impl InputError {
    pub fn new(field: impl Into<String>, expected: &'static str) -> Self {
        InputError {
            field: field.into(),
            expected,
        }
    }
}

/// Why a credential could not be produced. Cloneable because one failed fetch is shared by
/// every caller waiting on it (single-flight).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// A rejection whose text the Backstage contract fixes; the message is used verbatim.
    #[error("{0}")]
    Contract(String),
    /// A local resource (a token file) could not be read.
    #[error("{strategy}: cannot read {what} {path}: {reason}")]
    Io {
        strategy: &'static str,
        what: &'static str,
        path: String,
        reason: String,
    },
    /// An upstream endpoint failed or answered something unusable.
    #[error("{strategy}: {endpoint}: {reason}")]
    Upstream {
        strategy: &'static str,
        endpoint: String,
        reason: String,
    },
    #[error("{strategy}: {what} did not complete within {timeout_ms} ms")]
    Timeout {
        strategy: &'static str,
        what: String,
        timeout_ms: u64,
    },
    #[error("{0}")]
    Config(String),
    /// The TLS inputs are needed but were not read yet (see `ClusterDetails::require_tls`);
    /// the napi layer answers it by reading them, so it never reaches a caller.
    #[error("internal error: the cluster's TLS settings were not read")]
    TlsDeferred,
}

impl AuthError {
    pub fn contract(message: impl Into<String>) -> Self {
        AuthError::Contract(message.into())
    }

    pub fn is_input(&self) -> bool {
        matches!(self, AuthError::Input(_))
    }
}
