//! The store and queue conformance suites against a real PostgreSQL server, each test in a
//! schema of its own. The server is `TEST_POSTGRES_URL`, by default the one this
//! machine runs (`postgres://postgres@127.0.0.1:5432/test`); `.ci/run` starts it when down.
use std::sync::Arc;
use vidsight_store::{JobQueue, PostgresOptions, PostgresStore, Store};

pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Drops test schemas older than an hour (left by earlier runs).
async fn drop_old_schemas(now: u64) {
    let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await else {
        return;
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'vs_test_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    for name in names {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|part| part.parse().ok())
            .unwrap_or(0);
        if created + 3600 < now {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&pool)
                .await;
        }
    }
    pool.close().await;
}

async fn fresh() -> (Arc<dyn Store>, Arc<dyn JobQueue>) {
    let store = fresh_store().await;
    (store.clone(), store)
}

async fn fresh_store() -> Arc<PostgresStore> {
    store_with_connections(8).await
}

async fn store_with_connections(max_connections: u32) -> Arc<PostgresStore> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    drop_old_schemas(now).await;
    let schema = format!("vs_test_{now}_{}", uuid::Uuid::new_v4().simple());
    let options = PostgresOptions {
        schema: Some(schema),
        max_connections,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect(&postgres_url(), options).await.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is not reachable at {} ({error:?}); start it (see .ci/run) or set TEST_POSTGRES_URL",
            postgres_url()
        )
    });
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

vidsight_store::store_conformance_tests!(fresh());
vidsight_store::queue_conformance_tests!(fresh());

async fn fresh_accounts() -> (Arc<dyn Store>, Arc<dyn vidsight_store::Accounts>) {
    let store = fresh_store().await;
    (store.clone(), store)
}

vidsight_store::accounts_conformance_tests!(fresh_accounts());

/// A store operation dropped at any point of its transaction (an aborted task, a client that
/// hung up) leaves no connection inside a transaction: with one connection in the pool, every
/// later statement would otherwise run inside the abandoned one, hold its locks and never be
/// committed (the sqlx bug `rows::begin` works around).
#[tokio::test]
async fn a_cancelled_transaction_leaves_no_connection_inside_it() {
    use std::future::Future;
    use std::task::Poll;
    let store = store_with_connections(1).await;
    let analysis = vidsight_domain::AnalysisId::new();
    let observer = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    for polls in 1..=12 {
        for _ in 0..4 {
            let mut operation = Box::pin(store.set_progress(analysis, 1));
            for _ in 0..polls {
                // poll once (never again once it is done), then give other tasks a turn
                let done =
                    std::future::poll_fn(|cx| Poll::Ready(operation.as_mut().poll(cx).is_ready()))
                        .await;
                if done {
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(operation);
            // the state another session sees of the pool's one connection, once it is idle
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(&observer)
                    .await
                    .unwrap();
            let inside = state.as_deref() != Some("idle");
            assert!(!inside, "the connection was left {state:?} ({polls} polls)");
        }
    }
}
