//! The shared cache: Redis. Every key lives under a namespace (default `vidsight:`).
//!
//! Redis is only an accelerator. Each operation has a short deadline; when Redis is down at
//! start-up or later, operations fail fast (callers treat that as a miss) and the connection
//! is retried at most once a second, so an outage costs latency, never wrong answers.
use crate::Cache;
use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use vidsight_domain::{Error, ErrorCode, Result};

/// KEYS[1] = bucket; ARGV = now (ms), emission interval (ms), burst. Returns the wait in
/// ms as a string ("0" = allowed), since Lua numbers become integers in replies.
const TAKE_TOKEN_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then return tostring(allow_at - now) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return "0"
"#;

const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

pub struct RedisCache {
    client: redis::Client,
    namespace: String,
    connection: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorCode::Internal, "the cache is unavailable").with_source(error)
}

/// Escapes Redis glob characters so a prefix matches literally.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

impl RedisCache {
    /// A cache on the server named by `url` (`redis://host:6379/0`); keys go under
    /// `namespace`. Does not fail when Redis is down: it connects on first use.
    pub fn new(url: &str, namespace: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|error| {
            Error::new(ErrorCode::Internal, format!("invalid cache URL: {error}"))
        })?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            connection: Mutex::new((None, None)),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager> {
        let mut guard = self.connection.lock().await;
        if let Some(connection) = &guard.0 {
            return Ok(connection.clone());
        }
        if guard.1.is_some_and(|last| last.elapsed() < RECONNECT_EVERY) {
            return Err(Error::new(
                ErrorCode::Internal,
                "the cache is unavailable (reconnecting)",
            ));
        }
        guard.1 = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(OPERATION_TIMEOUT)
            .set_response_timeout(OPERATION_TIMEOUT)
            .set_number_of_retries(1);
        let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(OPERATION_TIMEOUT * 2, connecting).await {
            Ok(Ok(connection)) => {
                guard.0 = Some(connection.clone());
                Ok(connection)
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "redis cache unavailable; serving without it");
                Err(unavailable(error))
            }
            Err(elapsed) => {
                tracing::warn!("redis cache did not answer; serving without it");
                Err(unavailable(elapsed))
            }
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(OPERATION_TIMEOUT, command.query_async(&mut connection)).await {
            Ok(result) => result.map_err(unavailable),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(key));
        let value: Option<Vec<u8>> = self.run(command).await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.run::<()>(command).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(key));
        self.run::<()>(command).await
    }

    async fn increment(&self, key: &str, by: i64, window: Duration) -> Result<i64> {
        let key = self.key(key);
        let mut connection = self.connection().await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("PX")
            .arg(window.as_millis().max(1) as u64)
            .arg("NX")
            .ignore()
            .cmd("INCRBY")
            .arg(&key)
            .arg(by);
        match tokio::time::timeout(
            OPERATION_TIMEOUT,
            pipe.query_async::<(i64,)>(&mut connection),
        )
        .await
        {
            Ok(Ok((value,))) => Ok(value),
            Ok(Err(error)) => Err(unavailable(error)),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    async fn take_token(&self, key: &str, per_second: f64, burst: u32) -> Result<Option<Duration>> {
        // the same GCRA step as `crate::gcra`, atomic on the server; the time comes from the
        // caller so the in-memory and Redis buckets behave the same
        let mut command = redis::cmd("EVAL");
        command
            .arg(TAKE_TOKEN_SCRIPT)
            .arg(1)
            .arg(self.key(key))
            .arg(crate::unix_ms())
            .arg(1000.0 / per_second.max(1e-9))
            .arg(burst.max(1));
        let wait_ms: f64 = self.run::<String>(command).await?.parse().unwrap_or(0.0);
        Ok((wait_ms > 0.0).then(|| Duration::from_secs_f64(wait_ms / 1000.0)))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500);
            let (next, keys): (u64, Vec<String>) = self.run(scan).await?;
            if !keys.is_empty() {
                let mut delete = redis::cmd("DEL");
                delete.arg(keys);
                self.run::<()>(delete).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_escaped() {
        assert_eq!(glob_escape("video:1:*?[x]\\"), "video:1:\\*\\?\\[x\\]\\\\");
    }
}
