//! The store and queue conformance suites against SQLite, in memory and on disk.
use std::sync::Arc;
use vidsight_store::{Accounts, JobQueue, SqliteStore, Store};

async fn open(url: &str) -> (Arc<dyn Store>, Arc<dyn JobQueue>) {
    let store = Arc::new(SqliteStore::connect(url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    (store.clone(), store)
}

async fn open_accounts(url: &str) -> (Arc<dyn Store>, Arc<dyn Accounts>) {
    let store = Arc::new(SqliteStore::connect(url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    (store.clone(), store)
}

mod in_memory {
    use super::*;
    vidsight_store::store_conformance_tests!(open("sqlite::memory:"));
    vidsight_store::queue_conformance_tests!(open("sqlite::memory:"));
    vidsight_store::accounts_conformance_tests!(open_accounts("sqlite::memory:"));
}

mod on_disk {
    use super::*;

    async fn fresh() -> (Arc<dyn Store>, Arc<dyn JobQueue>) {
        // the directory is left for the OS to clean: the pool may outlive the test body
        let dir = tempfile::tempdir().expect("tempdir").keep();
        open(&format!("sqlite://{}/vidsight.db", dir.display())).await
    }

    vidsight_store::store_conformance_tests!(fresh());
    vidsight_store::queue_conformance_tests!(fresh());

    async fn fresh_accounts() -> (Arc<dyn Store>, Arc<dyn Accounts>) {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        open_accounts(&format!("sqlite://{}/vidsight.db", dir.display())).await
    }

    vidsight_store::accounts_conformance_tests!(fresh_accounts());
}
