//! The production database: PostgreSQL through sqlx. Same tables and behaviour as the
//! SQLite backend; claims use `FOR UPDATE SKIP LOCKED`, so many workers claim concurrently
//! without waiting on each other, and read-only queries can go to a replica.
use crate::rows::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;
use vidsight_domain::{Error, ErrorCode, Result};

/// Pool settings of the PostgreSQL backend.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// A read replica for read-only queries (listing, fetching); writes and anything that
    /// must see its own writes use the primary.
    pub replica_url: Option<String>,
    /// The schema to use (created when missing); tests give each run its own.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            replica_url: None,
            schema: None,
        }
    }
}

/// PostgreSQL implementation of [`Store`] and [`JobQueue`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    read_pool: PgPool,
}

async fn pg_pool(url: &str, options: &PostgresOptions) -> Result<PgPool> {
    let mut connect = PgConnectOptions::from_str(url).map_err(|error| {
        Error::new(
            ErrorCode::DatabaseUnavailable,
            format!("invalid database URL: {error}"),
        )
    })?;
    if let Some(schema) = &options.schema {
        connect = connect.options([("search_path", schema.as_str())]);
    }
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(db_error)
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://user:password@host:5432/vidsight`).
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        if let Some(schema) = &options.schema {
            let valid = !schema.is_empty()
                && schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::internal(
                    "schema names are letters, digits and underscores",
                ));
            }
            let admin = pg_pool(
                url,
                &PostgresOptions {
                    max_connections: 1,
                    schema: None,
                    ..options.clone()
                },
            )
            .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await
                .map_err(db_error)?;
            admin.close().await;
        }
        let pool = pg_pool(url, &options).await?;
        let read_pool = match &options.replica_url {
            Some(replica) => pg_pool(replica, &options).await?,
            None => pool.clone(),
        };
        Ok(Self { pool, read_pool })
    }

    /// Applies the migrations in `migrations/` that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations-postgres")
            .run(&self.pool)
            .await
            .map_err(|error| {
                Error::new(ErrorCode::DatabaseUnavailable, "database migration failed")
                    .with_source(error)
            })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool read-only listings use (the replica, when there is one).
    pub fn read_pool(&self) -> &PgPool {
        &self.read_pool
    }
}
