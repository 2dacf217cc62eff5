//! Persistence behind two small traits:
//! - [`Store`]: videos and their analyses;
//! - [`JobQueue`]: the durable job queue (claim with a lease, heartbeat, reclaim of stale
//!   leases, retries with backoff, a dead state, unique keys).
//!
//! Both are implemented by [`SqliteStore`] (embedded); a backend is chosen by the URL
//! scheme with [`open`]. Every implementation must pass the suites in [`conformance`].

pub mod conformance;
mod sqlite;
mod traits;

pub use sqlite::SqliteStore;
pub use traits::*;

use std::sync::Arc;
use vidsight_domain::{Error, ErrorCode, Result};

/// The database backends, chosen by URL scheme.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
}

/// Opens the database named by `url` and applies pending migrations when `migrate` is set.
pub async fn open(url: &str, migrate: bool) -> Result<Backends> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let store = Arc::new(SqliteStore::connect(url).await?);
            if migrate {
                store.migrate().await?;
            }
            Ok(Backends {
                store: store.clone(),
                queue: store,
            })
        }
        other => Err(Error::new(
            ErrorCode::DatabaseUnavailable,
            format!("database scheme `{other}` is not supported by this build (use sqlite://)"),
        )),
    }
}
