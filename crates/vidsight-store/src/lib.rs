//! Persistence behind two small traits:
//! - [`Store`]: videos and their analyses;
//! - [`JobQueue`]: the durable job queue (claim with a lease, heartbeat, reclaim of stale
//!   leases, retries with backoff, a dead state, unique keys).
//!
//! Both are implemented by [`SqliteStore`] (embedded); a backend is chosen by the URL
//! scheme with [`open`]. Every implementation must pass the suites in [`conformance`].

pub mod accounts;
pub mod conformance;
mod copy;
mod outbox;
mod postgres;
mod rows;
pub mod search;
mod sql;
mod sqlite;
mod traits;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;
pub use traits::*;

use std::sync::Arc;
use vidsight_domain::{Error, ErrorCode, Result};

/// The database backends, chosen by URL scheme.
pub struct Backends {
    pub store: Arc<dyn Store>,
    /// The queue in the database.
    pub queue: Arc<dyn JobQueue>,
    /// The same jobs table as an outbox, for a broker to carry the jobs.
    pub outbox: Arc<dyn Outbox>,
    pub accounts: Arc<dyn Accounts>,
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and applies pending
/// migrations when `migrate` is set. `options` applies to PostgreSQL.
pub async fn open(url: &str, options: &PostgresOptions, migrate: bool) -> Result<Backends> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let store = Arc::new(SqliteStore::connect(url).await?);
            if migrate {
                store.migrate().await?;
            }
            Ok(Backends {
                store: store.clone(),
                queue: store.clone(),
                outbox: store.clone(),
                accounts: store,
            })
        }
        "postgres" | "postgresql" => {
            let store = Arc::new(PostgresStore::connect(url, options.clone()).await?);
            if migrate {
                store.migrate().await?;
            }
            Ok(Backends {
                store: store.clone(),
                queue: store.clone(),
                outbox: store.clone(),
                accounts: store,
            })
        }
        other => Err(Error::new(
            ErrorCode::DatabaseUnavailable,
            format!("database scheme `{other}` is not supported (use sqlite:// or postgres://)"),
        )),
    }
}
