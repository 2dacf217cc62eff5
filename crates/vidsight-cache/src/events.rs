//! Events across processes: publish on a topic, every subscriber (in any process) receives
//! it. In memory for one process (`memory://`), Redis pub/sub when the cache is Redis.
//! Delivery is at most once and only to subscribers connected at the time: events announce,
//! the database remains the truth.
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use vidsight_domain::{Error, ErrorCode, Result};

#[async_trait]
pub trait Events: Send + Sync + 'static {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()>;
    /// The events published on `topic` from now on.
    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Bytes>>;
}

/// Opens the event bus that goes with the cache named by `url`.
pub fn open(url: &str) -> Result<Arc<dyn Events>> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisEvents::new(url, "vidsight:events:")?));
    }
    Ok(Arc::new(MemoryEvents::default()))
}

/// Events within one process.
#[derive(Default)]
pub struct MemoryEvents {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl MemoryEvents {
    fn sender(&self, topic: &str) -> broadcast::Sender<Bytes> {
        let mut topics = self.topics.lock().expect("topics lock");
        topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }
}

#[async_trait]
impl Events for MemoryEvents {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        // no subscriber is not an error
        let _ = self.sender(topic).send(payload);
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Bytes>> {
        let receiver = self.sender(topic).subscribe();
        Ok(
            futures::stream::unfold(receiver, |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(payload) => return Some((payload, receiver)),
                        // a slow subscriber skips what it missed
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            })
            .boxed(),
        )
    }
}

/// Events across processes through Redis pub/sub.
pub struct RedisEvents {
    client: redis::Client,
    namespace: String,
}

impl RedisEvents {
    pub fn new(url: &str, namespace: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|error| {
            Error::new(ErrorCode::Internal, format!("invalid cache URL: {error}"))
        })?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
        })
    }
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorCode::Internal, "the event bus is unavailable").with_source(error)
}

#[async_trait]
impl Events for RedisEvents {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<()> {
        let work = async {
            let mut connection = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH")
                .arg(format!("{}{topic}", self.namespace))
                .arg(payload.as_ref())
                .query_async::<()>(&mut connection)
                .await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(1), work).await {
            Ok(result) => result.map_err(unavailable),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Bytes>> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub
            .subscribe(format!("{}{topic}", self.namespace))
            .await
            .map_err(unavailable)?;
        Ok(pubsub
            .into_on_message()
            .map(|message| Bytes::from(message.get_payload_bytes().to_vec()))
            .boxed())
    }
}

/// The conformance suite of [`Events`]; see [`events_conformance_tests!`](crate::events_conformance_tests).
pub mod conformance {
    use super::*;
    use std::time::Duration;

    pub async fn every_subscriber_gets_what_is_published(events: Arc<dyn Events>) {
        let mut first = events.subscribe("videos").await.unwrap();
        let mut second = events.subscribe("videos").await.unwrap();
        let mut elsewhere = events.subscribe("other").await.unwrap();
        events
            .publish("videos", Bytes::from_static(b"ready"))
            .await
            .unwrap();
        for stream in [&mut first, &mut second] {
            let got = tokio::time::timeout(Duration::from_secs(3), stream.next())
                .await
                .expect("delivered in time");
            assert_eq!(got.as_deref(), Some(&b"ready"[..]));
        }
        let nothing = tokio::time::timeout(Duration::from_millis(200), elsewhere.next()).await;
        assert!(nothing.is_err(), "another topic hears nothing");
        events
            .publish("nobody-listens", Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
}

/// Generates the events conformance tests; `$make` is an async expression returning a fresh
/// `Arc<dyn Events>`.
#[macro_export]
macro_rules! events_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn events_every_subscriber_gets_what_is_published() {
            $crate::events::conformance::every_subscriber_gets_what_is_published($make.await).await;
        }
    };
}

#[cfg(test)]
mod tests {
    crate::events_conformance_tests!(async { super::open("memory://").unwrap() });
}
