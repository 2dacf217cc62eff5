//! A bounded, resumable log of events per stream (one stream per account): the server side
//! of Server-Sent Events with `Last-Event-ID`. Each entry gets an id that orders the stream;
//! a reader asks for what came after the last id it saw and waits when there is nothing yet.
//!
//! - [`MemoryEventLog`]: one process (embedded), a ring of the newest entries per stream.
//! - [`RedisEventLog`]: every API and worker process shares it: a Redis stream per account
//!   (`XADD … MAXLEN ~`, `XREAD BLOCK`), so a client resumes on any API instance.
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use vidsight_domain::{Error, ErrorCode, Result};

/// One entry of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Orders the stream (`<ms>-<seq>`); what a client sends back as `Last-Event-ID`.
    pub id: String,
    pub payload: Bytes,
}

/// How many entries each stream keeps (older ones are dropped).
pub const KEEP_PER_STREAM: usize = 1000;

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends an entry and returns its id.
    async fn append(&self, stream: &str, payload: Bytes) -> Result<String>;

    /// The id of the newest entry (`0-0` for an empty stream): where a new reader starts.
    async fn last_id(&self, stream: &str) -> Result<String>;

    /// Entries after `after`, oldest first (at most `limit`), waiting up to `wait` for one
    /// when there is none yet (an empty answer then). An `after` older than what is kept
    /// returns from the oldest entry kept.
    async fn read_after(
        &self,
        stream: &str,
        after: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<LoggedEvent>>;
}

/// Opens the event log that goes with the cache named by `url`; on Redis, keys start with
/// `namespace`.
pub fn open(url: &str, namespace: &str) -> Result<Arc<dyn EventLog>> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisEventLog::new(url, namespace)?));
    }
    Ok(Arc::new(MemoryEventLog::default()))
}

/// Appends an event to its owner's stream; best effort (a failure is logged: the database
/// stays the truth, and clients re-read it when they reconnect).
pub async fn announce(
    log: &dyn EventLog,
    owner: Option<vidsight_domain::UserId>,
    event: &vidsight_domain::UserEvent,
) {
    let Some(owner) = owner else { return };
    let Ok(payload) = serde_json::to_vec(event) else {
        return;
    };
    if let Err(error) = log
        .append(
            &vidsight_domain::UserEvent::stream_of(owner),
            Bytes::from(payload),
        )
        .await
    {
        tracing::warn!(error = %error, kind = %event.kind, "recording an event failed");
    }
}

/// `<ms>-<seq>` ids compare as pairs of numbers.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[derive(Default)]
struct Stream {
    entries: VecDeque<((u64, u64), Bytes)>,
    last: (u64, u64),
}

/// The event log of one process.
#[derive(Default)]
pub struct MemoryEventLog {
    streams: Mutex<HashMap<String, Stream>>,
    appended: Notify,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl MemoryEventLog {
    fn after(&self, stream: &str, after: (u64, u64), limit: usize) -> Vec<LoggedEvent> {
        let streams = self.streams.lock().expect("event log lock");
        let Some(entries) = streams.get(stream) else {
            return Vec::new();
        };
        entries
            .entries
            .iter()
            .filter(|(id, _)| *id > after)
            .take(limit)
            .map(|((ms, seq), payload)| LoggedEvent {
                id: format!("{ms}-{seq}"),
                payload: payload.clone(),
            })
            .collect()
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append(&self, stream: &str, payload: Bytes) -> Result<String> {
        let id = {
            let mut streams = self.streams.lock().expect("event log lock");
            let entries = streams.entry(stream.to_owned()).or_default();
            let now = now_ms();
            let id = if now > entries.last.0 {
                (now, 0)
            } else {
                (entries.last.0, entries.last.1 + 1)
            };
            entries.last = id;
            entries.entries.push_back((id, payload));
            while entries.entries.len() > KEEP_PER_STREAM {
                entries.entries.pop_front();
            }
            id
        };
        self.appended.notify_waiters();
        Ok(format!("{}-{}", id.0, id.1))
    }

    async fn last_id(&self, stream: &str) -> Result<String> {
        let streams = self.streams.lock().expect("event log lock");
        let last = streams
            .get(stream)
            .map(|entries| entries.last)
            .unwrap_or((0, 0));
        Ok(format!("{}-{}", last.0, last.1))
    }

    async fn read_after(
        &self,
        stream: &str,
        after: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<LoggedEvent>> {
        let after = parse_id(after).unwrap_or((0, 0));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // register before looking, so an append in between is not missed
            let appended = self.appended.notified();
            let found = self.after(stream, after, limit);
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}

/// The event log on Redis streams, shared by every process.
pub struct RedisEventLog {
    client: redis::Client,
    namespace: String,
    /// For appends and short reads (blocking reads open their own).
    shared: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorCode::Internal, "the event log is unavailable").with_source(error)
}

impl RedisEventLog {
    pub fn new(url: &str, namespace: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|error| {
            Error::new(ErrorCode::Internal, format!("invalid cache URL: {error}"))
        })?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            shared: tokio::sync::Mutex::new(None),
        })
    }

    async fn connection(
        &self,
    ) -> std::result::Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let mut shared = self.shared.lock().await;
        if let Some(connection) = shared.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self.client.get_multiplexed_async_connection().await?;
        *shared = Some(connection.clone());
        Ok(connection)
    }

    async fn forget_connection(&self) {
        *self.shared.lock().await = None;
    }

    fn key(&self, stream: &str) -> String {
        format!("{}log:{stream}", self.namespace)
    }
}

/// `(id, [(field, value)])` entries of a stream.
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
type StreamReply = Vec<(String, Entries)>;

fn entries_of(reply: Entries) -> Vec<LoggedEvent> {
    reply
        .into_iter()
        .filter_map(|(id, fields)| {
            let payload = fields.into_iter().find(|(name, _)| name == "e")?.1;
            Some(LoggedEvent {
                id,
                payload: Bytes::from(payload),
            })
        })
        .collect()
}

#[async_trait]
impl EventLog for RedisEventLog {
    async fn append(&self, stream: &str, payload: Bytes) -> Result<String> {
        let key = self.key(stream);
        let work = async {
            let mut connection = self.connection().await?;
            let (id, ()): (String, ()) = redis::pipe()
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(KEEP_PER_STREAM)
                .arg("*")
                .arg("e")
                .arg(payload.as_ref())
                // an idle account's log goes after a day
                .cmd("EXPIRE")
                .arg(&key)
                .arg(86_400)
                .ignore()
                .query_async::<(String,)>(&mut connection)
                .await
                .map(|(id,)| (id, ()))?;
            Ok::<_, redis::RedisError>(id)
        };
        match tokio::time::timeout(Duration::from_secs(2), work).await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(error)) => {
                self.forget_connection().await;
                Err(unavailable(error))
            }
            Err(elapsed) => {
                self.forget_connection().await;
                Err(unavailable(elapsed))
            }
        }
    }

    async fn last_id(&self, stream: &str) -> Result<String> {
        let mut connection = self.connection().await.map_err(unavailable)?;
        let reply: Entries = redis::cmd("XREVRANGE")
            .arg(self.key(stream))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(reply
            .into_iter()
            .next()
            .map(|(id, _)| id)
            .unwrap_or_else(|| "0-0".to_owned()))
    }

    async fn read_after(
        &self,
        stream: &str,
        after: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<LoggedEvent>> {
        let after = parse_id(after)
            .map(|(ms, seq)| format!("{ms}-{seq}"))
            .unwrap_or_else(|| "0-0".to_owned());
        // a blocking read holds its connection while it waits: one of its own then
        let mut connection = if wait.is_zero() {
            self.connection().await.map_err(unavailable)?
        } else {
            self.client
                .get_multiplexed_async_connection()
                .await
                .map_err(unavailable)?
        };
        let mut command = redis::cmd("XREAD");
        command.arg("COUNT").arg(limit.max(1));
        if !wait.is_zero() {
            command.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
        }
        command.arg("STREAMS").arg(self.key(stream)).arg(after);
        let reply: Option<StreamReply> = tokio::time::timeout(
            wait + Duration::from_secs(2),
            command.query_async(&mut connection),
        )
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
        Ok(reply
            .and_then(|streams| streams.into_iter().next())
            .map(|(_, entries)| entries_of(entries))
            .unwrap_or_default())
    }
}

/// The conformance suite of [`EventLog`]; see
/// [`eventlog_conformance_tests!`](crate::eventlog_conformance_tests).
pub mod conformance {
    use super::*;
    use std::time::Instant;

    pub async fn entries_are_ordered_resumable_and_bounded(log: Arc<dyn EventLog>) {
        assert_eq!(parse_id(&log.last_id("empty").await.unwrap()), Some((0, 0)));
        let start = log.last_id("user-a").await.unwrap();
        let mut ids = Vec::new();
        for index in 0..5 {
            ids.push(
                log.append("user-a", Bytes::from(format!("event {index}")))
                    .await
                    .unwrap(),
            );
        }
        log.append("user-b", Bytes::from_static(b"not yours"))
            .await
            .unwrap();
        let parsed: Vec<_> = ids.iter().map(|id| parse_id(id).unwrap()).collect();
        assert!(parsed.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert_eq!(log.last_id("user-a").await.unwrap(), ids[4]);

        let all = log
            .read_after("user-a", &start, 100, Duration::ZERO)
            .await
            .unwrap();
        let payloads: Vec<&[u8]> = all.iter().map(|event| event.payload.as_ref()).collect();
        assert_eq!(
            payloads,
            [
                &b"event 0"[..],
                b"event 1",
                b"event 2",
                b"event 3",
                b"event 4"
            ]
        );
        // resuming after the third
        let rest = log
            .read_after("user-a", &ids[2], 100, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            rest.iter()
                .map(|event| event.id.clone())
                .collect::<Vec<_>>(),
            ids[3..]
        );
        let limited = log
            .read_after("user-a", &start, 2, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(limited.len(), 2);

        // a reader waits for the next entry, and wakes when it comes
        let waiting = {
            let log = log.clone();
            let after = ids[4].clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let got = log
                    .read_after("user-a", &after, 10, Duration::from_secs(5))
                    .await
                    .unwrap();
                (got, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.append("user-a", Bytes::from_static(b"later"))
            .await
            .unwrap();
        let (got, waited) = waiting.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload.as_ref(), b"later");
        assert!(
            waited < Duration::from_secs(4),
            "woke on the append: {waited:?}"
        );
        // nothing new: an empty answer after the wait
        let last = log.last_id("user-a").await.unwrap();
        let nothing = log
            .read_after("user-a", &last, 10, Duration::from_millis(100))
            .await
            .unwrap();
        assert!(nothing.is_empty());

        // bounded: the oldest entries go
        for index in 0..(KEEP_PER_STREAM + 300) {
            log.append("busy", Bytes::from(index.to_string()))
                .await
                .unwrap();
        }
        let kept = log
            .read_after("busy", "0-0", KEEP_PER_STREAM * 2, Duration::ZERO)
            .await
            .unwrap();
        assert!(
            kept.len() >= KEEP_PER_STREAM && kept.len() < KEEP_PER_STREAM + 300,
            "{}",
            kept.len()
        );
        assert_eq!(
            kept.last().unwrap().payload.as_ref(),
            (KEEP_PER_STREAM + 299).to_string().as_bytes()
        );
    }
}

/// Generates the event-log conformance tests; `$make` is an async expression returning a
/// fresh `Arc<dyn EventLog>`.
#[macro_export]
macro_rules! eventlog_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn eventlog_entries_are_ordered_resumable_and_bounded() {
            $crate::eventlog::conformance::entries_are_ordered_resumable_and_bounded($make.await)
                .await;
        }
    };
}

#[cfg(test)]
mod tests {
    crate::eventlog_conformance_tests!(async { super::open("memory://", "x:").unwrap() });
}
