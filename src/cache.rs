//! The one cache primitive: expiring, single-flight, bounded. Every strategy that keeps a
//! credential (token files today; STS credentials, access tokens and Pinniped certificates
//! next) goes through it, so the rules below hold everywhere:
//!
//! - An entry is *fresh* until `refresh_at_ms`: served with no I/O and no await.
//! - Between `refresh_at_ms` and `expires_at_ms` it is *stale but valid*: callers wait for one
//!   refresh; if that refresh fails, they get the stale value instead of the error.
//! - After `expires_at_ms` it is never served.
//! - One fetch per key at a time. The fetch runs as its own task, so its in-flight marker is
//!   cleared on success, error, timeout and panic alike, even if every waiter went away:
//!   a failure is never cached and never sticks.
//! - At most `capacity` entries (LRU eviction); `capacity == 0` turns caching off entirely.
//! - Optionally (`with_failure_backoff`), a failed fetch is shared with the callers that arrive
//!   within a short jittered window after it (half to all of the backoff, on the monotonic
//!   clock), so a dead endpoint sees one request per window instead of one per caller. The
//!   first call after the window fetches again: the failure still never sticks.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;

use crate::clock::SharedClock;
use crate::error::AuthError;

/// A fetched value and its two deadlines (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct Expiring<V> {
    pub value: V,
    pub refresh_at_ms: u64,
    pub expires_at_ms: u64,
}

#[derive(Clone)]
pub struct CacheConfig {
    /// Maximum number of entries; 0 disables caching (every call fetches).
    pub capacity: usize,
    /// Upper bound on one fetch; a fetch that takes longer fails with `AuthError::Timeout`.
    pub fetch_timeout: Duration,
    /// Names the owner in timeout errors (`serviceAccount`, `aws`...).
    pub owner: &'static str,
    /// Names what is fetched in timeout errors (`token file read`...).
    pub what: &'static str,
    pub clock: SharedClock,
}

type SharedFetch<V> = Shared<BoxFuture<'static, Result<V, AuthError>>>;

struct Inner<K: Hash + Eq, V> {
    entries: Option<LruCache<K, Expiring<V>>>,
    inflight: HashMap<K, SharedFetch<V>>,
    /// Recent failures and until when they are shared (only with a failure backoff).
    failures: HashMap<K, (Instant, AuthError)>,
}

pub struct ExpiringCache<K: Hash + Eq, V> {
    inner: Arc<Mutex<Inner<K, V>>>,
    config: CacheConfig,
    failure_backoff: Duration,
}

fn lock<K: Hash + Eq, V>(m: &Mutex<Inner<K, V>>) -> MutexGuard<'_, Inner<K, V>> {
    // A panic while holding the lock cannot leave the maps half-updated in a way that matters
    // (each update is a single insert or remove), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the in-flight marker when the fetch task ends by any path, panics included.
struct InflightGuard<K: Hash + Eq + Clone, V> {
    inner: Arc<Mutex<Inner<K, V>>>,
    key: K,
}

impl<K: Hash + Eq + Clone, V> Drop for InflightGuard<K, V> {
    fn drop(&mut self) {
        lock(&self.inner).inflight.remove(&self.key);
    }
}

impl<K, V> ExpiringCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(config: CacheConfig) -> Self {
        let entries = NonZeroUsize::new(config.capacity).map(LruCache::new);
        ExpiringCache {
            inner: Arc::new(Mutex::new(Inner {
                entries,
                inflight: HashMap::new(),
                failures: HashMap::new(),
            })),
            config,
            failure_backoff: Duration::ZERO,
        }
    }

    /// Shares a failed fetch's error with callers arriving within a jittered window of half
    /// to all of `backoff` after it (see the module comment). Zero (the default) turns it off.
    pub fn with_failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self
    }

    pub fn is_enabled(&self) -> bool {
        self.config.capacity > 0
    }

    pub fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// The value if it is fresh: the no-I/O path, callable from the JS thread.
    pub fn get_fresh<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.now_ms();
        let mut inner = lock(&self.inner);
        let entry = inner.entries.as_mut()?.get(key)?;
        (now < entry.refresh_at_ms).then(|| entry.value.clone())
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).entries.as_ref().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fresh value, or the result of one shared fetch for `key`. `fetch` is called only by
    /// the caller that starts the fetch. Must be awaited inside a Tokio runtime.
    pub async fn get_or_fetch<F, Fut>(&self, key: K, fetch: F) -> Result<V, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Expiring<V>, AuthError>> + Send + 'static,
    {
        if !self.is_enabled() {
            return with_timeout(&self.config, fetch()).await.map(|e| e.value);
        }
        let shared = {
            let now = self.now_ms();
            let mut inner = lock(&self.inner);
            if let Some(entry) = inner.entries.as_mut().and_then(|e| e.get(&key)) {
                if now < entry.refresh_at_ms {
                    return Ok(entry.value.clone());
                }
            }
            match inner.inflight.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    if let Some((until, err)) = inner.failures.get(&key) {
                        if Instant::now() < *until {
                            return Err(err.clone());
                        }
                        inner.failures.remove(&key);
                    }
                    let shared = self.start_fetch(key.clone(), fetch());
                    inner.inflight.insert(key, shared.clone());
                    shared
                }
            }
        };
        shared.await
    }

    fn start_fetch<Fut>(&self, key: K, fut: Fut) -> SharedFetch<V>
    where
        Fut: Future<Output = Result<Expiring<V>, AuthError>> + Send + 'static,
    {
        let config = self.config.clone();
        let inner = Arc::clone(&self.inner);
        let backoff = self.failure_backoff;
        let task = tokio::spawn(async move {
            let guard = InflightGuard {
                inner: Arc::clone(&inner),
                key: key.clone(),
            };
            let result = with_timeout(&config, fut).await;
            let now = config.clock.now_ms();
            let mut locked = lock(&inner);
            // Store before the guard clears the marker (same lock), so no caller sees neither.
            let outcome = match result {
                Ok(fetched) => {
                    let value = fetched.value.clone();
                    locked.failures.remove(&key);
                    if let Some(entries) = locked.entries.as_mut() {
                        entries.put(key, fetched);
                    }
                    Ok(value)
                }
                Err(err) => match locked.entries.as_mut().and_then(|e| e.get(&key)) {
                    Some(stale) if now < stale.expires_at_ms => Ok(stale.value.clone()),
                    _ => {
                        if !backoff.is_zero() {
                            let started = Instant::now();
                            locked.failures.retain(|_, (until, _)| *until > started);
                            locked
                                .failures
                                .insert(key, (started + jittered(backoff), err.clone()));
                        }
                        Err(err)
                    }
                },
            };
            drop(locked);
            drop(guard);
            outcome
        });
        let owner = self.config.owner;
        let what = self.config.what;
        async move {
            task.await.unwrap_or_else(|_| {
                Err(AuthError::Upstream {
                    strategy: owner,
                    endpoint: what.to_string(),
                    reason: "internal error while fetching".to_string(),
                })
            })
        }
        .boxed()
        .shared()
    }

    /// Synchronous get-or-create for values built without I/O (HTTP clients per TLS setup).
    pub fn get_or_try_insert<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<Expiring<V>, E>,
    ) -> Result<V, E> {
        let now = self.now_ms();
        let mut inner = lock(&self.inner);
        let Some(entries) = inner.entries.as_mut() else {
            return make().map(|e| e.value);
        };
        if let Some(entry) = entries.get(&key) {
            if now < entry.refresh_at_ms {
                return Ok(entry.value.clone());
            }
        }
        let made = make()?;
        let value = made.value.clone();
        entries.put(key, made);
        Ok(value)
    }
}

/// Half to all of `backoff`, at random, so that many processes failing together do not retry
/// in lockstep.
fn jittered(backoff: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let r = match getrandom::fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes) as f64 / u32::MAX as f64,
        Err(_) => 1.0,
    };
    backoff.mul_f64(0.5 + 0.5 * r)
}

async fn with_timeout<V, Fut>(config: &CacheConfig, fut: Fut) -> Result<Expiring<V>, AuthError>
where
    Fut: Future<Output = Result<Expiring<V>, AuthError>>,
{
    match tokio::time::timeout(config.fetch_timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(AuthError::Timeout {
            strategy: config.owner,
            what: config.what.to_string(),
            timeout_ms: config.fetch_timeout.as_millis() as u64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cache(capacity: usize, clock: Arc<ManualClock>) -> ExpiringCache<String, u64> {
        ExpiringCache::new(CacheConfig {
            capacity,
            fetch_timeout: Duration::from_millis(200),
            owner: "test",
            what: "value",
            clock,
        })
    }

    fn value(v: u64, refresh: u64, expires: u64) -> Result<Expiring<u64>, AuthError> {
        Ok(Expiring {
            value: v,
            refresh_at_ms: refresh,
            expires_at_ms: expires,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let clock = ManualClock::at(0);
        let c = Arc::new(cache(8, clock));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..100 {
            let c = Arc::clone(&c);
            let calls = Arc::clone(&calls);
            handles.push(tokio::spawn(async move {
                c.get_or_fetch("k".to_string(), || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    value(7, 1000, 2000)
                })
                .await
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.get_fresh(&"k".to_string()), Some(7));
    }

    #[tokio::test]
    async fn failure_is_not_sticky_and_stale_value_covers_it() {
        let clock = ManualClock::at(0);
        let c = cache(8, Arc::clone(&clock));
        let k = "k".to_string();
        let err = || async { Err::<Expiring<u64>, _>(AuthError::contract("boom")) };
        assert_eq!(
            c.get_or_fetch(k.clone(), err).await,
            Err(AuthError::contract("boom"))
        );
        // The next call fetches again.
        assert_eq!(
            c.get_or_fetch(k.clone(), || async { value(1, 100, 200) })
                .await,
            Ok(1)
        );
        clock.set(150);
        assert_eq!(c.get_fresh(&k), None);
        // Refresh fails while the entry is still valid: the stale value is served.
        assert_eq!(c.get_or_fetch(k.clone(), err).await, Ok(1));
        clock.set(250);
        // Past its hard expiry the stale value is never served.
        assert_eq!(
            c.get_or_fetch(k.clone(), err).await,
            Err(AuthError::contract("boom"))
        );
    }

    #[tokio::test]
    async fn timeout_clears_inflight() {
        let clock = ManualClock::at(0);
        let c = cache(8, clock);
        let k = "k".to_string();
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            value(1, 10, 10)
        };
        let err = c.get_or_fetch(k.clone(), slow).await.unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::Timeout {
                    timeout_ms: 200,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            c.get_or_fetch(k, || async { value(2, 10, 10) }).await,
            Ok(2)
        );
    }

    #[tokio::test]
    async fn panic_in_fetch_becomes_error_and_clears_inflight() {
        let clock = ManualClock::at(0);
        let c = cache(8, clock);
        let k = "k".to_string();
        let r = c
            .get_or_fetch(k.clone(), || async {
                if std::hint::black_box(true) {
                    panic!("fetch exploded");
                }
                value(0, 0, 0)
            })
            .await;
        assert!(r.is_err());
        assert_eq!(
            c.get_or_fetch(k, || async { value(3, 10, 10) }).await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn failure_backoff_shares_a_failure_briefly_then_retries() {
        let clock = ManualClock::at(0);
        let c = cache(8, clock).with_failure_backoff(Duration::from_millis(200));
        let k = "k".to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = |calls: Arc<AtomicUsize>| {
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<Expiring<u64>, _>(AuthError::contract("down"))
            }
        };
        for _ in 0..5 {
            assert_eq!(
                c.get_or_fetch(k.clone(), failing(Arc::clone(&calls))).await,
                Err(AuthError::contract("down"))
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert_eq!(
            c.get_or_fetch(k.clone(), || async { value(5, 100, 100) })
                .await,
            Ok(5)
        );
        // Other keys are not affected by a key's failure.
        assert_eq!(
            c.get_or_fetch("other".to_string(), || async { value(6, 100, 100) })
                .await,
            Ok(6)
        );
    }

    #[tokio::test]
    async fn bounded_by_capacity() {
        let clock = ManualClock::at(0);
        let c = cache(3, clock);
        for i in 0..10u64 {
            c.get_or_fetch(format!("k{i}"), move || async move { value(i, 100, 100) })
                .await
                .unwrap();
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get_fresh(&"k9".to_string()), Some(9));
        assert_eq!(c.get_fresh(&"k0".to_string()), None);
    }

    #[tokio::test]
    async fn capacity_zero_disables_caching() {
        let clock = ManualClock::at(0);
        let c = cache(0, clock);
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let calls = Arc::clone(&calls);
            c.get_or_fetch("k".to_string(), move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                value(1, 100, 100)
            })
            .await
            .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
