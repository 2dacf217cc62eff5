//! The cache conformance suite against a real Redis (`TEST_REDIS_URL`, by default
//! this machine's `redis://127.0.0.1:6379/0`), each test under a namespace of its own.
use std::sync::Arc;
use std::time::{Duration, Instant};
use vidsight_cache::{Cache, RedisCache};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

async fn fresh() -> Arc<dyn Cache> {
    let namespace = format!("vidsight-test:{}:", uuid::Uuid::new_v4().simple());
    let cache = RedisCache::new(&redis_url(), &namespace).unwrap();
    cache.get("probe").await.unwrap_or_else(|error| {
        panic!("Redis is not reachable at {} ({error:?}); start it (see .ci/run) or set TEST_REDIS_URL", redis_url())
    });
    Arc::new(cache)
}

vidsight_cache::cache_conformance_tests!(fresh());

mod events {
    use super::*;
    use vidsight_cache::events::{Events, RedisEvents};

    async fn fresh() -> Arc<dyn Events> {
        let namespace = format!("vidsight-test:{}:", uuid::Uuid::new_v4().simple());
        Arc::new(RedisEvents::new(&redis_url(), &namespace).unwrap())
    }

    vidsight_cache::events_conformance_tests!(fresh());
}

#[tokio::test]
async fn a_down_redis_fails_fast_and_never_hangs() {
    // nothing listens on port 1
    let cache = RedisCache::new("redis://127.0.0.1:1/0", "x:").unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        assert!(cache.get("k").await.is_err());
        assert!(cache
            .set("k", bytes::Bytes::from_static(b"v"), Duration::from_secs(1))
            .await
            .is_err());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn prefixes_with_glob_characters_match_literally() {
    let cache = fresh().await;
    cache
        .set(
            "a*:1",
            bytes::Bytes::from_static(b"x"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    cache
        .set(
            "ab:1",
            bytes::Bytes::from_static(b"y"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    cache.delete_prefix("a*").await.unwrap();
    assert!(cache.get("a*:1").await.unwrap().is_none());
    assert!(cache.get("ab:1").await.unwrap().is_some());
}

mod eventlog {
    use super::*;
    use vidsight_cache::eventlog::{EventLog, RedisEventLog};

    async fn fresh() -> Arc<dyn EventLog> {
        let namespace = format!("vidsight-test:{}:", uuid::Uuid::new_v4().simple());
        Arc::new(RedisEventLog::new(&redis_url(), &namespace).unwrap())
    }

    vidsight_cache::eventlog_conformance_tests!(fresh());
}
