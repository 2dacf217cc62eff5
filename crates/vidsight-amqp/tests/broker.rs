//! What only a broker-carried queue has to prove: duplicates are harmless, dead jobs reach
//! the dead-letter queue, and an outage of RabbitMQ loses no job.
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;
use vidsight_amqp::{AmqpQueue, AmqpSettings};
use vidsight_domain::{ErrorCode, JobPayload, JobState};
use vidsight_store::{JobQueue, SqliteStore};

fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn settings(url: &str, prefix: &str) -> AmqpSettings {
    AmqpSettings {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        prefetch: 8,
        claim_wait: Duration::from_millis(150),
        republish_after: Duration::from_secs(300),
        queue_expiry: Some(Duration::from_secs(120)),
        consume: true,
    }
}

async fn database() -> Arc<SqliteStore> {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = SqliteStore::connect(&format!("sqlite://{}/vidsight.db", dir.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

fn prefix() -> String {
    format!("vidsight-test-{}", uuid::Uuid::new_v4().simple())
}

fn noop(tag: &str) -> JobPayload {
    JobPayload::Noop {
        tag: tag.to_owned(),
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_redelivered_message_for_a_finished_job_is_acknowledged_not_rerun() {
    let store = database().await;
    let queue = AmqpQueue::new(store.clone(), settings(&amqp_url(), &prefix()));
    let job = queue.enqueue(noop("once"), 3).await.unwrap();
    // a crash between publishing and marking: the relay publishes the same job again
    sqlx::query("UPDATE jobs SET published_at = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(queue.relay_once().await.unwrap(), 1);

    let lease = queue.claim("w", LEASE).await.unwrap().expect("the job");
    queue.complete(&lease).await.unwrap();
    assert!(
        queue.claim("w", LEASE).await.unwrap().is_none(),
        "the duplicate is swallowed"
    );
    let stored = queue.get_job(job.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.attempts), (JobState::Done, 1));
}

#[tokio::test]
async fn dead_jobs_go_to_the_dead_letter_queue() {
    let store = database().await;
    let prefix = prefix();
    let queue = AmqpQueue::new(store.clone(), settings(&amqp_url(), &prefix));
    queue.enqueue(noop("doomed"), 1).await.unwrap();
    let lease = queue.claim("w", LEASE).await.unwrap().unwrap();
    let after = queue.retry(&lease, "boom", Duration::ZERO).await.unwrap();
    assert_eq!(after.state, JobState::Dead);

    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let dead = channel
            .queue_declare(
                &format!("{prefix}.jobs.dead"),
                passive,
                FieldTable::default(),
            )
            .await
            .unwrap();
        if dead.message_count() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message reached the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_broker_outage_loses_no_job() {
    let store = database().await;
    let prefix = prefix();
    // nothing listens on port 1: the broker is "down"
    let cut_off = AmqpQueue::new(
        store.clone(),
        settings("amqp://guest:guest@127.0.0.1:1/%2f", &prefix),
    );
    let job = cut_off
        .enqueue(noop("kept"), 3)
        .await
        .expect("enqueueing does not need the broker");
    let error = cut_off
        .claim("w", LEASE)
        .await
        .expect_err("claims fail fast");
    assert_eq!(error.code, ErrorCode::QueueUnavailable);
    assert_eq!(
        cut_off.get_job(job.id).await.unwrap().unwrap().state,
        JobState::Ready
    );

    // the broker is back: the outbox publishes the job and a worker gets it
    let restored = AmqpQueue::new(store.clone(), settings(&amqp_url(), &prefix));
    let lease = restored
        .claim("w", LEASE)
        .await
        .unwrap()
        .expect("the kept job");
    assert_eq!(lease.job.id, job.id);
    restored.complete(&lease).await.unwrap();
}
