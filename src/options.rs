//! Reading strategy options (constructor arguments, Backstage config JSON) with errors that
//! name the field.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::InputError;

/// A view of an options object; `prefix` names it in errors (`options`, `config.aws`...).
pub struct Options<'a> {
    map: Option<&'a Map<String, Value>>,
    prefix: &'a str,
}

impl<'a> Options<'a> {
    /// `undefined`/`null` options are empty; anything else must be an object.
    pub fn new(value: Option<&'a Value>, prefix: &'a str) -> Result<Self, InputError> {
        match value {
            None | Some(Value::Null) => Ok(Options { map: None, prefix }),
            Some(Value::Object(map)) => Ok(Options {
                map: Some(map),
                prefix,
            }),
            Some(_) => Err(InputError::new(prefix, "an object")),
        }
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// A nested value, for a nested `Options` view.
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    /// A whole number from 0 to 10,000,000 (cache sizes).
    pub fn count(&self, key: &str) -> Result<Option<usize>, InputError> {
        const EXPECTED: &str = "a whole number from 0 to 10000000";
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && (0.0..=10_000_000.0).contains(&f) => {
                    Ok(Some(f as usize))
                }
                _ => Err(InputError::new(self.field(key), EXPECTED)),
            },
            Some(_) => Err(InputError::new(self.field(key), EXPECTED)),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(InputError::new(self.field(key), "a string")),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(InputError::new(self.field(key), "a boolean")),
        }
    }

    /// A duration given in milliseconds: a finite number from 0 to one day.
    pub fn millis(&self, key: &str) -> Result<Option<Duration>, InputError> {
        const MAX_MS: f64 = 86_400_000.0;
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(ms) if (0.0..=MAX_MS).contains(&ms) => {
                    Ok(Some(Duration::from_millis(ms as u64)))
                }
                _ => Err(InputError::new(
                    self.field(key),
                    "a number of milliseconds from 0 to 86400000",
                )),
            },
            Some(_) => Err(InputError::new(
                self.field(key),
                "a number of milliseconds from 0 to 86400000",
            )),
        }
    }

    /// A duration given in whole or fractional seconds, from 0 to `max` (840 for now, the
    /// only user: `tokenCacheSeconds`).
    pub fn seconds(&self, key: &str, max: u64) -> Result<Option<Duration>, InputError> {
        match self.get(key).map(|v| v.as_f64()) {
            None => Ok(None),
            Some(Some(s)) if (0.0..=max as f64).contains(&s) => {
                Ok(Some(Duration::from_millis((s * 1000.0) as u64)))
            }
            Some(_) => Err(InputError::new(
                self.field(key),
                "a number of seconds from 0 to 840",
            )),
        }
    }
}
