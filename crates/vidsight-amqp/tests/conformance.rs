//! The queue and store conformance suites with RabbitMQ carrying the jobs (the machine's
//! broker, `TEST_AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`), each test on
//! queues of its own, over a SQLite database.
use std::sync::Arc;
use std::time::Duration;
use vidsight_amqp::{AmqpQueue, AmqpSettings};
use vidsight_store::{JobQueue, SqliteStore, Store};

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub fn test_settings() -> AmqpSettings {
    AmqpSettings {
        url: amqp_url(),
        prefix: format!("vidsight-test-{}", uuid::Uuid::new_v4().simple()),
        prefetch: 8,
        claim_wait: Duration::from_millis(100),
        republish_after: Duration::from_secs(300),
        queue_expiry: Some(Duration::from_secs(120)),
        consume: true,
    }
}

async fn fresh() -> (Arc<dyn Store>, Arc<dyn JobQueue>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = SqliteStore::connect(&format!("sqlite://{}/vidsight.db", dir.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let queue = AmqpQueue::new(store.clone(), test_settings());
    // fail with a clear message when the broker is not there
    queue.stats().await.unwrap();
    if let Err(error) = queue.claim("probe", Duration::from_secs(1)).await {
        panic!(
            "RabbitMQ is not reachable at {} ({error}); .ci/run starts it",
            amqp_url()
        );
    }
    (store, Arc::new(queue))
}

vidsight_store::store_conformance_tests!(fresh());
vidsight_store::queue_conformance_tests!(fresh());
