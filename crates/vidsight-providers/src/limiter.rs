//! The client-side limiter every worker shares: requests per minute (a GCRA bucket) and
//! tokens per minute (a counter per minute window), kept in the [`Cache`] — in memory on one
//! machine, in Redis when many workers share one provider project.

use std::sync::Arc;
use std::time::Duration;
use vidsight_cache::Cache;
use vidsight_domain::Result;

/// Limits for one provider; `None` = unlimited.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

#[derive(Clone)]
pub struct Limiter {
    cache: Arc<dyn Cache>,
    name: String,
    limits: Limits,
}

impl Limiter {
    /// `name` keeps providers (and projects) apart, e.g. `gemini`.
    pub fn new(cache: Arc<dyn Cache>, name: &str, limits: Limits) -> Self {
        Self {
            cache,
            name: name.to_owned(),
            limits,
        }
    }

    /// Waits until a request estimated at `tokens` may be sent. A request larger than the
    /// whole per-minute allowance waits for a fresh window and then goes alone.
    pub async fn acquire(&self, tokens: u64) -> Result<()> {
        if let Some(rpm) = self.limits.requests_per_minute.filter(|rpm| *rpm > 0) {
            let key = format!("limit:{}:rpm", self.name);
            while let Some(wait) = self
                .cache
                .take_token(&key, rpm as f64 / 60.0, rpm.clamp(1, 10))
                .await?
            {
                tracing::debug!(provider = %self.name, wait_ms = wait.as_millis() as u64, "waiting for the requests-per-minute limit");
                tokio::time::sleep(wait).await;
            }
        }
        if let Some(tpm) = self.limits.tokens_per_minute.filter(|tpm| *tpm > 0) {
            let tokens = tokens.max(1) as i64;
            loop {
                let minute = unix_seconds() / 60;
                let key = format!("limit:{}:tpm:{minute}", self.name);
                let used = self
                    .cache
                    .increment(&key, tokens, Duration::from_secs(61))
                    .await?;
                if used <= tpm as i64 || used == tokens {
                    break;
                }
                // over: give the reservation back and wait for the next window
                self.cache
                    .increment(&key, -tokens, Duration::from_secs(61))
                    .await?;
                let wait = 60 - unix_seconds() % 60;
                tracing::debug!(provider = %self.name, wait_s = wait, "waiting for the tokens-per-minute limit");
                tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
            }
        }
        Ok(())
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_beyond_the_rate_wait() {
        let cache = vidsight_cache::open("memory://").unwrap();
        // 600 a minute = one every 100 ms, a burst of 10
        let limiter = Limiter::new(
            cache,
            "test",
            Limits {
                requests_per_minute: Some(600),
                tokens_per_minute: None,
            },
        );
        let started = std::time::Instant::now();
        for _ in 0..13 {
            limiter.acquire(1).await.unwrap();
        }
        // the burst goes at once; the three after it wait ~100 ms each
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn token_windows_are_shared_through_the_cache() {
        let cache = vidsight_cache::open("memory://").unwrap();
        let limits = Limits {
            requests_per_minute: None,
            tokens_per_minute: Some(1_000),
        };
        let a = Limiter::new(cache.clone(), "shared", limits.clone());
        let b = Limiter::new(cache.clone(), "shared", limits);
        a.acquire(600).await.unwrap();
        // b sees a's 600: 600 more would go over, so b must wait for the next minute
        let waited = tokio::time::timeout(Duration::from_millis(300), b.acquire(600)).await;
        if unix_seconds() % 60 < 59 {
            assert!(waited.is_err(), "the second request should wait");
        }
        // a request that fits goes at once
        tokio::time::timeout(Duration::from_millis(300), b.acquire(300))
            .await
            .expect("fits in the window")
            .unwrap();
    }
}
