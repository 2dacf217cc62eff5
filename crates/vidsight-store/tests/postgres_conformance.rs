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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    drop_old_schemas(now).await;
    let schema = format!("vs_test_{now}_{}", uuid::Uuid::new_v4().simple());
    let options = PostgresOptions {
        schema: Some(schema),
        max_connections: 8,
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
