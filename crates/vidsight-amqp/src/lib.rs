//! RabbitMQ as the job transport, in front of the database queue.
//!
//! The jobs table stays the source of truth and doubles as the outbox: a job is recorded in
//! the same transaction as the state change that creates it, and a relay publishes what is
//! not yet published (with publisher confirms, as a persistent message on a durable queue),
//! then marks it. A crash between the two publishes twice at worst, and consumers are
//! idempotent: a delivery claims its job by id in the database, so a message for a job that
//! already finished is acknowledged, not run again.
//!
//! - Workers consume with manual acks and a prefetch equal to their concurrency; a message is
//!   acknowledged only once the job's outcome is recorded.
//! - Retries wait in per-delay queues (`<prefix>.jobs.delay.<ms>`, message TTL, dead-lettered
//!   back to the jobs exchange): per-attempt backoff without a plugin.
//! - A job out of attempts is rejected to the dead-letter exchange (`<prefix>.jobs.dead`).
//! - Each message carries a W3C `traceparent` header.
//! - When RabbitMQ is down, enqueueing still succeeds (the outbox keeps the job) and claims
//!   fail fast; the connection is re-established on next use.

use async_trait::async_trait;
use futures::StreamExt;
use lapin::acker::Acker;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use vidsight_domain::{Error, ErrorCode, Job, JobId, JobLease, JobPayload, JobState, Result};
use vidsight_store::{ClaimById, JobQueue, Outbox, QueueStats, Reclaimed};

/// How the broker queue behaves.
#[derive(Clone, Debug)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/vhost`
    pub url: String,
    /// Exchange and queue names start with this (tests use one of their own).
    pub prefix: String,
    /// Unacknowledged deliveries this process holds: the worker's concurrency.
    pub prefetch: u16,
    /// How long `claim` waits for a message before answering "nothing".
    pub claim_wait: Duration,
    /// A published job still ready this long after it was due is published again.
    pub republish_after: Duration,
    /// Queues unused this long are deleted by the broker (`x-expires`); for tests.
    pub queue_expiry: Option<Duration>,
    /// Whether this process claims jobs (workers). Others only publish.
    pub consume: bool,
}

const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Delay queues exist for these waits (ms); a retry waits in the first one at least as long
/// as its backoff, so a message is never early, and at most ~2.5x late on short waits.
const DELAY_LADDER_MS: [u64; 15] = [
    100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000, 7_200_000,
];

#[derive(Serialize, Deserialize)]
struct Message {
    job_id: JobId,
}

struct Link {
    connection: Connection,
    publisher: Channel,
    /// Only processes that claim jobs consume: an API process must not hold deliveries.
    consumer: Option<(Channel, Arc<Mutex<Consumer>>)>,
    delay_queues: Arc<Mutex<HashSet<u64>>>,
}

impl Link {
    /// The connection and every channel are open (the broker closes a channel on a
    /// protocol error, or a consumer whose delivery stays unacknowledged past its
    /// consumer timeout).
    fn alive(&self) -> bool {
        self.connection.status().connected()
            && self.publisher.status().connected()
            && self
                .consumer
                .as_ref()
                .is_none_or(|(channel, _)| channel.status().connected())
    }
}

/// The broker-carried [`JobQueue`].
pub struct AmqpQueue {
    db: Arc<dyn Outbox>,
    settings: AmqpSettings,
    link: Mutex<(Option<Link>, Option<Instant>)>,
    /// The delivery behind each lease, acknowledged when the job ends.
    deliveries: std::sync::Mutex<HashMap<String, Acker>>,
    relaying: Mutex<()>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::QueueUnavailable,
        format!("the message broker is unavailable ({what}: {error})"),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(text.into())
}

/// A W3C trace context for the job's message: the trace id is the job id, so every
/// delivery and attempt of one job shares a trace.
pub fn traceparent(job: JobId) -> String {
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{}-{}-01", job.as_uuid().simple(), &span[..16])
}

impl AmqpQueue {
    pub fn new(db: Arc<dyn Outbox>, settings: AmqpSettings) -> Self {
        Self {
            db,
            settings,
            link: Mutex::new((None, None)),
            deliveries: std::sync::Mutex::new(HashMap::new()),
            relaying: Mutex::new(()),
        }
    }

    fn exchange(&self) -> String {
        format!("{}.jobs", self.settings.prefix)
    }

    fn queue(&self) -> String {
        format!("{}.jobs", self.settings.prefix)
    }

    fn dead_exchange(&self) -> String {
        format!("{}.jobs.dead", self.settings.prefix)
    }

    /// Arguments every queue gets.
    fn queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if let Some(expiry) = self.settings.queue_expiry {
            arguments.insert(
                "x-expires".into(),
                AMQPValue::LongUInt(expiry.as_millis() as u32),
            );
        }
        arguments
    }

    fn delay_queue(&self, ms: u64) -> String {
        format!("{}.jobs.delay.{ms}", self.settings.prefix)
    }

    async fn connect(&self) -> Result<Link> {
        let connecting = async {
            let connection =
                Connection::connect(&self.settings.url, ConnectionProperties::default())
                    .await
                    .map_err(|error| unavailable("connect", error))?;
            let publisher = connection
                .create_channel()
                .await
                .map_err(|error| unavailable("channel", error))?;
            publisher
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|error| unavailable("confirms", error))?;
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            };
            publisher
                .exchange_declare(
                    &self.exchange(),
                    ExchangeKind::Direct,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|error| unavailable("declare", error))?;
            publisher
                .exchange_declare(
                    &self.dead_exchange(),
                    ExchangeKind::Fanout,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|error| unavailable("declare", error))?;
            let durable_queue = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            let mut arguments = self.queue_arguments();
            arguments.insert(
                "x-dead-letter-exchange".into(),
                long_string(&self.dead_exchange()),
            );
            publisher
                .queue_declare(&self.queue(), durable_queue, arguments)
                .await
                .map_err(|error| unavailable("declare", error))?;
            publisher
                .queue_bind(
                    &self.queue(),
                    &self.exchange(),
                    "job",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| unavailable("bind", error))?;
            let dead_queue = format!("{}.jobs.dead", self.settings.prefix);
            publisher
                .queue_declare(&dead_queue, durable_queue, self.queue_arguments())
                .await
                .map_err(|error| unavailable("declare", error))?;
            publisher
                .queue_bind(
                    &dead_queue,
                    &self.dead_exchange(),
                    "",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| unavailable("bind", error))?;

            let consumer = if self.settings.consume {
                let consuming = connection
                    .create_channel()
                    .await
                    .map_err(|error| unavailable("channel", error))?;
                consuming
                    .basic_qos(self.settings.prefetch.max(1), BasicQosOptions::default())
                    .await
                    .map_err(|error| unavailable("qos", error))?;
                let tag = format!("vidsight-{}", uuid::Uuid::new_v4().simple());
                let consumer = consuming
                    .basic_consume(
                        &self.queue(),
                        &tag,
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|error| unavailable("consume", error))?;
                Some((consuming, Arc::new(Mutex::new(consumer))))
            } else {
                None
            };
            Ok::<_, Error>(Link {
                connection,
                publisher,
                consumer,
                delay_queues: Arc::new(Mutex::new(HashSet::new())),
            })
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, connecting).await {
            Ok(result) => result,
            Err(_) => Err(unavailable("connect", "timed out")),
        }
    }

    /// The live link's publishing channel, consumer and declared delay queues, connecting
    /// (at most once a second) when needed.
    #[allow(clippy::type_complexity)]
    async fn link(
        &self,
    ) -> Result<(
        Channel,
        Option<Arc<Mutex<Consumer>>>,
        Arc<Mutex<HashSet<u64>>>,
    )> {
        let mut guard = self.link.lock().await;
        let alive = guard.0.as_ref().is_some_and(Link::alive);
        if !alive {
            if let Some(dead) = guard.0.take() {
                tracing::warn!("message broker connection or channel lost; reconnecting");
                // unacknowledged deliveries go back to the queue when the connection closes
                tokio::spawn(async move {
                    let _ = dead.connection.close(0, "reconnecting").await;
                });
            }
            if guard.1.is_some_and(|last| last.elapsed() < RECONNECT_EVERY) {
                return Err(unavailable("connect", "waiting to reconnect"));
            }
            guard.1 = Some(Instant::now());
            guard.0 = Some(self.connect().await?);
            tracing::info!(prefix = %self.settings.prefix, "connected to the message broker");
        }
        let link = guard.0.as_ref().expect("link is set");
        Ok((
            link.publisher.clone(),
            link.consumer.as_ref().map(|(_, consumer)| consumer.clone()),
            link.delay_queues.clone(),
        ))
    }

    /// Sends a job's message, to be delivered after `delay`; the returned confirm resolves
    /// when the broker has it (persisted).
    async fn send(
        &self,
        job: JobId,
        delay: Duration,
    ) -> Result<lapin::publisher_confirm::PublisherConfirm> {
        let payload = serde_json::to_vec(&Message { job_id: job }).expect("message serialises");
        let delay_ms = delay.as_millis() as u64;
        let bucket = (delay_ms > 0).then(|| {
            DELAY_LADDER_MS
                .iter()
                .copied()
                .find(|step| *step >= delay_ms)
                .unwrap_or(DELAY_LADDER_MS[DELAY_LADDER_MS.len() - 1])
        });
        let mut headers = FieldTable::default();
        headers.insert("traceparent".into(), long_string(&traceparent(job)));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(job.to_string().into())
            .with_headers(headers);
        let (publisher, _, delay_queues) = self.link().await?;
        let publishing = async {
            let (exchange, routing_key) = match bucket {
                None => (self.exchange(), "job".to_owned()),
                Some(ms) => {
                    let name = self.delay_queue(ms);
                    let mut declared = delay_queues.lock().await;
                    if !declared.contains(&ms) {
                        let mut arguments = self.queue_arguments();
                        arguments.insert("x-message-ttl".into(), AMQPValue::LongUInt(ms as u32));
                        arguments.insert(
                            "x-dead-letter-exchange".into(),
                            long_string(&self.exchange()),
                        );
                        arguments.insert("x-dead-letter-routing-key".into(), long_string("job"));
                        let options = QueueDeclareOptions {
                            durable: true,
                            ..QueueDeclareOptions::default()
                        };
                        publisher
                            .queue_declare(&name, options, arguments)
                            .await
                            .map_err(|error| unavailable("declare", error))?;
                        declared.insert(ms);
                    }
                    (String::new(), name)
                }
            };
            publisher
                .basic_publish(
                    &exchange,
                    &routing_key,
                    // an unroutable message comes back instead of vanishing
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &payload,
                    properties,
                )
                .await
                .map_err(|error| unavailable("publish", error))
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, publishing).await {
            Ok(result) => result,
            Err(_) => Err(unavailable("publish", "timed out")),
        }
    }

    /// Publishes a job's message, to be delivered after `delay`. Waits for the confirm.
    async fn publish(&self, job: JobId, delay: Duration) -> Result<()> {
        let confirm = self.send(job, delay).await?;
        Self::confirmed(confirm).await
    }

    async fn confirmed(confirm: lapin::publisher_confirm::PublisherConfirm) -> Result<()> {
        match tokio::time::timeout(OPERATION_TIMEOUT, confirm).await {
            Ok(Ok(lapin::publisher_confirm::Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(lapin::publisher_confirm::Confirmation::Ack(Some(_)))) => Err(unavailable(
                "publish",
                "the message could not be routed to a queue",
            )),
            Ok(Ok(_)) => Err(unavailable("confirm", "the broker refused the message")),
            Ok(Err(error)) => Err(unavailable("confirm", error)),
            Err(_) => Err(unavailable("confirm", "timed out")),
        }
    }

    /// Publishes every job the outbox holds; returns how many went. One relay runs at a
    /// time in a process; it sends a batch, then waits for the broker's confirms together.
    pub async fn relay_once(&self) -> Result<usize> {
        let one_at_a_time = self.relaying.lock().await;
        self.relay_holding(one_at_a_time).await
    }

    /// Relays unless a relay is already running in this process (it, or the next one, will
    /// carry what is waiting).
    async fn relay_if_idle(&self) -> Result<usize> {
        match self.relaying.try_lock() {
            Ok(one_at_a_time) => self.relay_holding(one_at_a_time).await,
            Err(_) => Ok(0),
        }
    }

    /// Relays every `period` until `shutdown`: a bound on how long a job waits in the
    /// outbox when no worker happens to be idle.
    pub fn spawn_relay(
        self: &Arc<Self>,
        period: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let queue = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = queue.relay_once().await {
                    tracing::debug!(error = %error, "outbox relay failed; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
            }
        });
    }

    async fn relay_holding(
        &self,
        _one_at_a_time: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<usize> {
        let entries = self
            .db
            .unpublished(500, self.settings.republish_after)
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut sent = Vec::with_capacity(entries.len());
        let mut failure = None;
        for entry in entries {
            let delay = Duration::from_millis((entry.run_at_ms - now).max(0) as u64);
            match self.send(entry.id, delay).await {
                Ok(confirm) => sent.push((entry, confirm)),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let outcomes = futures::future::join_all(
            sent.into_iter()
                .map(|(entry, confirm)| async move { (entry, Self::confirmed(confirm).await) }),
        )
        .await;
        let mut published = Vec::with_capacity(outcomes.len());
        for (entry, outcome) in outcomes {
            match outcome {
                Ok(()) => published.push(entry),
                Err(error) => failure = Some(error),
            }
        }
        self.db.mark_published(&published).await?;
        match failure {
            Some(error) if published.is_empty() => Err(error),
            _ => Ok(published.len()),
        }
    }

    async fn next_delivery(&self, wait: Duration) -> Result<Option<lapin::message::Delivery>> {
        let (_, consumer, _) = self.link().await?;
        let consumer = consumer.ok_or_else(|| {
            Error::internal("this process does not consume jobs (AmqpSettings::consume is off)")
        })?;
        let mut consumer = consumer.lock().await;
        let result = match tokio::time::timeout(wait, consumer.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => Err(unavailable("consume", "the consumer was cancelled")),
            Ok(Some(Err(error))) => Err(unavailable("consume", error)),
            Ok(Some(Ok(delivery))) => return Ok(Some(delivery)),
        };
        drop(consumer);
        // a cancelled consumer or a broken channel: start over on the next call
        self.drop_link().await;
        result
    }

    async fn drop_link(&self) {
        let mut guard = self.link.lock().await;
        if let Some(dead) = guard.0.take() {
            tokio::spawn(async move {
                let _ = dead.connection.close(0, "reconnecting").await;
            });
        }
    }

    fn remember(&self, lease: &JobLease, acker: Acker) {
        self.deliveries
            .lock()
            .expect("deliveries lock")
            .insert(lease.token.clone(), acker);
    }

    /// Acknowledges (or, when the job is dead, rejects to the dead-letter exchange) the
    /// delivery behind a lease. A delivery from a lost connection cannot be acknowledged;
    /// the broker has put it back and its redelivery will find the job finished.
    async fn settle(&self, lease: &JobLease, dead: bool) {
        let acker = self
            .deliveries
            .lock()
            .expect("deliveries lock")
            .remove(&lease.token);
        let Some(acker) = acker else { return };
        let result = if dead {
            acker
                .nack(BasicNackOptions {
                    requeue: false,
                    multiple: false,
                })
                .await
        } else {
            acker.ack(BasicAckOptions::default()).await
        };
        if let Err(error) = result {
            tracing::debug!(job = %lease.job.id, error = %error, "settling a delivery failed; it will be redelivered");
        }
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn enqueue(&self, payload: JobPayload, max_attempts: u32) -> Result<Job> {
        let job = self.db.enqueue(payload, max_attempts).await?;
        // the job is safe in the outbox; publishing now only saves the relay a round
        if let Err(error) = self.relay_if_idle().await {
            tracing::warn!(job = %job.id, error = %error, "publishing deferred to the relay");
        }
        Ok(job)
    }

    async fn claim(&self, worker_id: &str, lease: Duration) -> Result<Option<JobLease>> {
        let deadline = Instant::now() + self.settings.claim_wait;
        let mut relayed = false;
        loop {
            // what is already delivered first; when nothing is, publish what the outbox
            // holds (jobs created in a database transaction, like uploads) and wait
            let mut delivery = self.next_delivery(Duration::ZERO).await?;
            if delivery.is_none() && !relayed {
                relayed = true;
                self.relay_once().await?;
            }
            if delivery.is_none() {
                let wait = deadline.saturating_duration_since(Instant::now());
                delivery = self.next_delivery(wait).await?;
            }
            let Some(delivery) = delivery else {
                return Ok(None);
            };
            let job_id = match serde_json::from_slice::<Message>(&delivery.data) {
                Ok(message) => message.job_id,
                Err(_) => {
                    tracing::warn!("rejecting a message that is not a job");
                    let _ = delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: false,
                            multiple: false,
                        })
                        .await;
                    continue;
                }
            };
            // on any error the delivery goes back to the queue: a dropped acker would hold a
            // prefetch slot until the channel closes
            let requeue = BasicNackOptions {
                requeue: true,
                multiple: false,
            };
            let claimed = match self.db.claim_job(job_id, worker_id, lease).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    let _ = delivery.acker.nack(requeue).await;
                    return Err(error);
                }
            };
            match claimed {
                ClaimById::Claimed(claimed) => {
                    self.remember(&claimed, delivery.acker);
                    return Ok(Some(claimed));
                }
                ClaimById::NotYet { retry_at_ms } => {
                    let delay = Duration::from_millis((retry_at_ms - now_ms()).max(1) as u64);
                    if let Err(error) = self.publish(job_id, delay).await {
                        let _ = delivery.acker.nack(requeue).await;
                        return Err(error);
                    }
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
                ClaimById::Finished | ClaimById::Missing => {
                    // a redelivery of a job that already ended: acknowledged, not rerun
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn heartbeat(&self, lease: &JobLease, extend: Duration) -> Result<()> {
        self.db.heartbeat(lease, extend).await
    }

    async fn complete(&self, lease: &JobLease) -> Result<()> {
        let result = self.db.complete(lease).await;
        self.settle(lease, false).await;
        result
    }

    async fn retry(&self, lease: &JobLease, error: &str, delay: Duration) -> Result<Job> {
        let job = match self.db.retry(lease, error, delay).await {
            Ok(job) => job,
            Err(error) => {
                self.settle(lease, false).await;
                return Err(error);
            }
        };
        if job.state == JobState::Ready {
            // published now, or by the relay if the broker is down
            if self.relay_once().await.is_err() {
                tracing::warn!(job = %job.id, "retry publishing deferred to the relay");
            }
        }
        self.settle(lease, job.state == JobState::Dead).await;
        Ok(job)
    }

    async fn kill(&self, lease: &JobLease, error: &str) -> Result<()> {
        let result = self.db.kill(lease, error).await;
        self.settle(lease, result.is_ok()).await;
        result
    }

    async fn reclaim_expired(&self) -> Result<Reclaimed> {
        let reclaimed = self.db.reclaim_expired().await?;
        if !reclaimed.requeued.is_empty() {
            if let Err(error) = self.relay_once().await {
                tracing::warn!(error = %error, "republishing reclaimed jobs deferred to the relay");
            }
        }
        Ok(reclaimed)
    }

    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        self.db.get_job(id).await
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.db.stats().await
    }

    async fn finished(&self, lease: &JobLease) -> Result<()> {
        let dead = matches!(self.db.get_job(lease.job.id).await, Ok(Some(job)) if job.state == JobState::Dead);
        self.settle(lease, dead).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_w3c_shaped_and_keyed_by_job() {
        let job = JobId::new();
        let header = traceparent(job);
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], job.as_uuid().simple().to_string());
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
    }
}
