//! The embedded backend: SQLite through sqlx, in WAL mode with full sync, so a crash of the
//! process or the machine loses no committed upload or job.
//!
//! Every write transaction starts with a write statement, so SQLite takes the write lock
//! first and waits for it under `busy_timeout` instead of failing a read-to-write upgrade.
use crate::rows::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;
use vidsight_domain::{Error, ErrorCode, Result};

/// SQLite implementation of [`Store`] and [`JobQueue`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url`, e.g. `sqlite://./data/vidsight.db`
    /// or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| {
                Error::new(
                    ErrorCode::DatabaseUnavailable,
                    format!("invalid database URL: {error}"),
                )
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let filename = options.get_filename().to_owned();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            if let Some(parent) = filename
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|error| {
                    Error::new(
                        ErrorCode::DatabaseUnavailable,
                        format!("cannot create the database directory {}", parent.display()),
                    )
                    .with_source(error)
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            // an in-memory database lives in one connection
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self { pool })
    }

    /// Applies the migrations in `migrations/` that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|error| {
                Error::new(ErrorCode::DatabaseUnavailable, "database migration failed")
                    .with_source(error)
            })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool read-only listings use.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.pool
    }
}
