//! Wall-clock time in epoch milliseconds, injectable so that tests (and Jest's fake timers,
//! through a JS `now` option) control expiry without sleeping.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

pub type SharedClock = Arc<dyn Clock>;

pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock tests set by hand.
#[cfg(test)]
pub struct ManualClock(pub std::sync::atomic::AtomicU64);

#[cfg(test)]
impl ManualClock {
    pub fn at(ms: u64) -> Arc<Self> {
        Arc::new(ManualClock(std::sync::atomic::AtomicU64::new(ms)))
    }

    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Time as last reported by the host (a JS `now` option, e.g. Jest's faked `Date.now`): the
/// napi layer stores a sample before each call, so every deadline in that call is measured on
/// the caller's clock, including timestamps the caller itself produced (a JS TokenCredential's
/// `expiresOnTimestamp`).
#[derive(Debug)]
pub struct SampledClock(std::sync::atomic::AtomicU64);

impl SampledClock {
    pub fn new(ms: u64) -> Arc<Self> {
        Arc::new(SampledClock(std::sync::atomic::AtomicU64::new(ms)))
    }

    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for SampledClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
