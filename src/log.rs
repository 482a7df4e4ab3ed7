//! A logging hook for strategies whose Backstage counterparts log (Azure: `Fetching new Azure
//! token for AKS`). The napi layer forwards to the Backstage `LoggerService` it was given;
//! without one nothing is logged. Messages never hold secrets: errors are formatted from
//! `AuthError`, whose texts never include one.

use std::sync::Arc;

use crate::error::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

pub trait Logger: Send + Sync + 'static {
    /// `error` becomes the Backstage logger's second argument (an `Error`), as in
    /// `logger.error('Unable to fetch Azure token', err)`.
    fn log(&self, level: Level, message: &str, error: Option<&AuthError>);
}

pub type SharedLogger = Arc<dyn Logger>;

/// Logs nothing.
pub struct NoLogger;

impl Logger for NoLogger {
    fn log(&self, _level: Level, _message: &str, _error: Option<&AuthError>) {}
}

pub fn no_logger() -> SharedLogger {
    Arc::new(NoLogger)
}

/// Records lines, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct RecordingLogger(pub std::sync::Mutex<Vec<(Level, String, Option<String>)>>);

#[cfg(test)]
impl Logger for RecordingLogger {
    fn log(&self, level: Level, message: &str, error: Option<&AuthError>) {
        self.0
            .lock()
            .unwrap()
            .push((level, message.to_string(), error.map(|e| e.to_string())));
    }
}
