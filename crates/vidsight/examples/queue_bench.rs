//! Jobs per second through a queue transport: N no-op jobs enqueued, then claimed and
//! completed by W concurrent consumers. Run by `make bench` (scripts/bench.sh):
//!
//!   cargo run --release --example queue_bench -- postgres|amqp [JOBS] [CONSUMERS]
//!
//! Uses the machine's PostgreSQL (TEST_POSTGRES_URL) and RabbitMQ (TEST_AMQP_URL), in a
//! schema and on queues of its own.
use std::sync::Arc;
use std::time::{Duration, Instant};
use vidsight_domain::JobPayload;
use vidsight_store::{JobQueue, PostgresOptions, PostgresStore};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    let transport = arguments
        .get(1)
        .map(String::as_str)
        .unwrap_or("postgres")
        .to_owned();
    let jobs: usize = arguments
        .get(2)
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000);
    let consumers: usize = arguments
        .get(3)
        .and_then(|text| text.parse().ok())
        .unwrap_or(8);
    let postgres = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let amqp = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("vs_bench_{tag}");
    let store = Arc::new(
        PostgresStore::connect(
            &postgres,
            PostgresOptions {
                schema: Some(schema.clone()),
                max_connections: 32,
                ..PostgresOptions::default()
            },
        )
        .await?,
    );
    store.migrate().await?;
    let queue: Arc<dyn JobQueue> = match transport.as_str() {
        "postgres" => store.clone(),
        "amqp" => Arc::new(vidsight_amqp::AmqpQueue::new(
            store.clone(),
            vidsight_amqp::AmqpSettings {
                url: amqp,
                prefix: format!("vidsight-bench-{tag}"),
                prefetch: consumers as u16 * 4,
                claim_wait: Duration::from_millis(200),
                republish_after: Duration::from_secs(300),
                queue_expiry: Some(Duration::from_secs(60)),
                consume: true,
            },
        )),
        other => anyhow::bail!("unknown transport {other}: use postgres or amqp"),
    };

    let started = Instant::now();
    let mut producers = Vec::new();
    for producer in 0..consumers {
        let queue = queue.clone();
        producers.push(tokio::spawn(async move {
            for index in (producer..jobs).step_by(consumers) {
                queue
                    .enqueue(
                        JobPayload::Noop {
                            tag: format!("bench-{index}"),
                        },
                        3,
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for producer in producers {
        producer.await??;
    }
    let enqueued = started.elapsed();

    let draining = Instant::now();
    let mut workers = Vec::new();
    for consumer in 0..consumers {
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut idle = 0;
            loop {
                match queue
                    .claim(&format!("bench-{consumer}"), Duration::from_secs(60))
                    .await?
                {
                    Some(lease) => {
                        queue.complete(&lease).await?;
                        done += 1;
                        idle = 0;
                    }
                    None => {
                        idle += 1;
                        if idle >= 3 {
                            return anyhow::Ok(done);
                        }
                    }
                }
            }
        }));
    }
    let mut completed = 0;
    for worker in workers {
        completed += worker.await??;
    }
    let drained = draining.elapsed();
    anyhow::ensure!(completed == jobs, "completed {completed} of {jobs}");
    let stats = queue.stats().await?;
    anyhow::ensure!(stats.done as usize == jobs, "{stats:?}");

    let pool = sqlx::PgPool::connect(&postgres).await?;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await?;
    println!(
        "{transport}: {jobs} jobs, {consumers} producers/consumers: enqueue {:.0} jobs/s, claim+complete {:.0} jobs/s, end to end {:.0} jobs/s",
        jobs as f64 / enqueued.as_secs_f64(),
        jobs as f64 / drained.as_secs_f64(),
        jobs as f64 / (enqueued + drained).as_secs_f64()
    );
    Ok(())
}
