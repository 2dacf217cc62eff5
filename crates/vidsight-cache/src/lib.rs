//! A cache for hot reads behind the small [`Cache`] trait, chosen by URL scheme:
//! `memory://` (one process) or `redis://` (shared by every process). A cache is only ever
//! an accelerator: callers treat any cache error as a miss.
//!
//! The in-memory cache is written by hand (a map with expiry and a size bound, evicting
//! the entries nearest expiry) because it is a few dozen lines; a crate such as moka would
//! add far more build time than it saves here.

pub mod eventlog;
pub mod events;
mod redis_cache;

pub use eventlog::{EventLog, LoggedEvent};
pub use events::Events;
pub use redis_cache::RedisCache;

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vidsight_domain::{Error, ErrorCode, Result};

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Deletes every key starting with `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// Adds `by` to the counter at `key` and returns the new value. A new counter lives for
    /// `window` (fixed-window rate limits count this way, shared by every process on Redis).
    async fn increment(&self, key: &str, by: i64, window: Duration) -> Result<i64>;

    /// Takes one token from the bucket at `key`, which refills at `per_second` and holds at
    /// most `burst` (GCRA: one timestamp per key, updated atomically). `None` when the request
    /// may go ahead, or how long until it may.
    async fn take_token(&self, key: &str, per_second: f64, burst: u32) -> Result<Option<Duration>>;
}

/// One GCRA step: given the stored theoretical arrival time (ms), returns the new one, or how
/// many ms until a token is available. Shared by the in-memory cache; the Redis cache runs
/// the same arithmetic in a Lua script.
pub fn gcra(stored_tat: Option<f64>, now_ms: f64, per_second: f64, burst: u32) -> Result<f64, f64> {
    let interval = 1000.0 / per_second.max(1e-9);
    let tat = stored_tat.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + interval;
    let allow_at = new_tat - burst.max(1) as f64 * interval;
    if now_ms < allow_at {
        Err(allow_at - now_ms)
    } else {
        Ok(new_tat)
    }
}

pub(crate) fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Opens the cache named by `url`.
pub fn open(url: &str) -> Result<Arc<dyn Cache>> {
    open_with_namespace(url, "vidsight:")
}

/// Opens the cache named by `url`; on Redis every key starts with `namespace`.
pub fn open_with_namespace(url: &str, namespace: &str) -> Result<Arc<dyn Cache>> {
    if url.starts_with("memory://") {
        return Ok(Arc::new(MemoryCache::new(64 * 1024 * 1024)));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisCache::new(url, namespace)?));
    }
    let scheme = url.split(':').next().unwrap_or_default();
    Err(Error::new(
        ErrorCode::Internal,
        format!("cache scheme `{scheme}` is not supported (use memory:// or redis://)"),
    ))
}

struct Entry {
    value: Bytes,
    expires: Instant,
}

/// An in-process cache bounded by the total size of its values.
pub struct MemoryCache {
    capacity_bytes: usize,
    inner: Mutex<(HashMap<String, Entry>, usize)>,
    counters: Mutex<HashMap<String, (i64, Instant)>>,
    buckets: Mutex<HashMap<String, f64>>,
}

impl MemoryCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            inner: Mutex::new((HashMap::new(), 0)),
            counters: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, used) = &mut *guard;
        match map.get(key) {
            Some(entry) if entry.expires > Instant::now() => Ok(Some(entry.value.clone())),
            Some(_) => {
                if let Some(entry) = map.remove(key) {
                    *used -= entry.value.len();
                }
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        if value.len() > self.capacity_bytes {
            return Ok(());
        }
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, used) = &mut *guard;
        if let Some(old) = map.remove(key) {
            *used -= old.value.len();
        }
        let now = Instant::now();
        if *used + value.len() > self.capacity_bytes {
            map.retain(|_, entry| entry.expires > now);
            *used = map.values().map(|entry| entry.value.len()).sum();
        }
        while *used + value.len() > self.capacity_bytes {
            let Some(victim) = map
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(entry) = map.remove(&victim) {
                *used -= entry.value.len();
            }
        }
        *used += value.len();
        map.insert(
            key.to_owned(),
            Entry {
                value,
                expires: now + ttl,
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, used) = &mut *guard;
        if let Some(entry) = map.remove(key) {
            *used -= entry.value.len();
        }
        Ok(())
    }

    async fn increment(&self, key: &str, by: i64, window: Duration) -> Result<i64> {
        let now = Instant::now();
        let mut counters = self.counters.lock().expect("counter lock");
        if counters.len() > 100_000 {
            counters.retain(|_, (_, expires)| *expires > now);
        }
        let counter = counters.entry(key.to_owned()).or_insert((0, now + window));
        if counter.1 <= now {
            *counter = (0, now + window);
        }
        counter.0 += by;
        Ok(counter.0)
    }

    async fn take_token(&self, key: &str, per_second: f64, burst: u32) -> Result<Option<Duration>> {
        let now = unix_ms();
        let mut buckets = self.buckets.lock().expect("bucket lock");
        if buckets.len() > 100_000 {
            // a full bucket's timestamp is in the past: forgetting it changes nothing
            buckets.retain(|_, tat| *tat > now);
        }
        match gcra(buckets.get(key).copied(), now, per_second, burst) {
            Ok(tat) => {
                buckets.insert(key.to_owned(), tat);
                Ok(None)
            }
            Err(wait_ms) => Ok(Some(Duration::from_secs_f64(wait_ms / 1000.0))),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, used) = &mut *guard;
        map.retain(|key, _| !key.starts_with(prefix));
        *used = map.values().map(|entry| entry.value.len()).sum();
        Ok(())
    }
}

/// The cache conformance suite: every [`Cache`] must pass it. Run it with
/// [`cache_conformance_tests!`](crate::cache_conformance_tests).
pub mod conformance {
    use super::*;

    pub async fn set_get_delete_and_expiry(cache: Arc<dyn Cache>) {
        assert_eq!(cache.get("k").await.unwrap(), None);
        cache
            .set("k", Bytes::from_static(b"v1"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        cache
            .set("k", Bytes::from_static(b"v2"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
        cache.delete("k").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
        cache
            .set("short", Bytes::from_static(b"x"), Duration::from_millis(20))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            cache.get("short").await.unwrap(),
            None,
            "expired entries are not served"
        );
    }

    pub async fn counters_count_within_a_window(cache: Arc<dyn Cache>) {
        let window = Duration::from_millis(300);
        assert_eq!(cache.increment("hits", 1, window).await.unwrap(), 1);
        assert_eq!(cache.increment("hits", 2, window).await.unwrap(), 3);
        assert_eq!(cache.increment("other", 1, window).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(
            cache.increment("hits", 1, window).await.unwrap(),
            1,
            "a new window starts at zero"
        );
    }

    pub async fn token_buckets_limit_and_refill(cache: Arc<dyn Cache>) {
        // a burst of 3, refilling at 10 per second
        for _ in 0..3 {
            assert_eq!(cache.take_token("bucket", 10.0, 3).await.unwrap(), None);
        }
        let wait = cache
            .take_token("bucket", 10.0, 3)
            .await
            .unwrap()
            .expect("the 4th request of the burst waits");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(
            cache.take_token("another", 10.0, 3).await.unwrap(),
            None,
            "buckets are per key"
        );
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        assert_eq!(
            cache.take_token("bucket", 10.0, 3).await.unwrap(),
            None,
            "a token came back"
        );
        assert!(cache.take_token("bucket", 10.0, 3).await.unwrap().is_some());
        // concurrent takers share the bucket exactly
        let takers = (0..20).map(|_| {
            let cache = cache.clone();
            async move {
                cache
                    .take_token("shared", 0.001, 5)
                    .await
                    .unwrap()
                    .is_none()
            }
        });
        let allowed = futures::future::join_all(takers)
            .await
            .into_iter()
            .filter(|allowed| *allowed)
            .count();
        assert_eq!(allowed, 5);
    }

    pub async fn delete_by_prefix(cache: Arc<dyn Cache>) {
        for key in ["video:1:meta", "video:1:insights", "video:2:meta"] {
            cache
                .set(key, Bytes::from_static(b"x"), Duration::from_secs(60))
                .await
                .unwrap();
        }
        cache.delete_prefix("video:1:").await.unwrap();
        assert_eq!(cache.get("video:1:meta").await.unwrap(), None);
        assert_eq!(cache.get("video:1:insights").await.unwrap(), None);
        assert!(cache.get("video:2:meta").await.unwrap().is_some());
    }
}

/// Generates one test per conformance check; `$make` is an async expression returning a
/// fresh `Arc<dyn Cache>`.
#[macro_export]
macro_rules! cache_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn cache_set_get_delete_and_expiry() {
            $crate::conformance::set_get_delete_and_expiry($make.await).await;
        }
        #[tokio::test]
        async fn cache_counters_count_within_a_window() {
            $crate::conformance::counters_count_within_a_window($make.await).await;
        }
        #[tokio::test]
        async fn cache_token_buckets_limit_and_refill() {
            $crate::conformance::token_buckets_limit_and_refill($make.await).await;
        }
        #[tokio::test]
        async fn cache_delete_by_prefix() {
            $crate::conformance::delete_by_prefix($make.await).await;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::cache_conformance_tests!(async { open("memory://").unwrap() });

    #[tokio::test]
    async fn memory_cache_stays_within_its_capacity() {
        let cache = MemoryCache::new(10);
        for index in 0..5 {
            cache
                .set(
                    &format!("k{index}"),
                    Bytes::from_static(b"1234"),
                    Duration::from_secs(index + 1),
                )
                .await
                .unwrap();
        }
        // 10 bytes hold two 4-byte values: the two newest (latest expiry) survive
        assert!(cache.get("k4").await.unwrap().is_some());
        assert!(cache.get("k3").await.unwrap().is_some());
        assert!(cache.get("k0").await.unwrap().is_none());
        assert!(cache.get("k2").await.unwrap().is_none());
    }
}
