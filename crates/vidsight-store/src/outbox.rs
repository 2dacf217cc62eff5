//! [`Outbox`] for both SQL backends. The statements are written once with `?N` placeholders;
//! PostgreSQL gets them as `$N`.
use crate::rows::*;
use crate::traits::*;
use crate::{PostgresStore, SqliteStore};
use async_trait::async_trait;
use std::time::Duration;
use vidsight_domain::{JobId, JobLease, JobState, Result};

use crate::sql::{as_is, dollar_placeholders};

const CLAIM_BY_ID: &str =
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?1, \
     lease_until = ?2, worker_id = ?3, updated_at = ?4 \
     WHERE id = ?5 AND ((state = 'ready' AND run_at <= ?4) \
        OR (state = 'running' AND lease_until < ?4 AND attempts < max_attempts)) \
     RETURNING id, payload_json, state, attempts, max_attempts, last_error";
const JOB_TIMES: &str = "SELECT state, run_at, lease_until FROM jobs WHERE id = ?1";
const UNPUBLISHED: &str = "SELECT id, run_at, updated_at FROM jobs WHERE state = 'ready' \
     AND (published_at IS NULL OR (published_at < ?1 AND run_at < ?1)) ORDER BY run_at, id LIMIT ?2";
const WORKER_SEEN: &str = "INSERT INTO workers (id, in_flight, last_seen) VALUES (?1, ?2, ?3) \
     ON CONFLICT (id) DO UPDATE SET in_flight = ?2, last_seen = ?3";
const WORKERS_ALIVE: &str =
    "SELECT COUNT(*) AS workers, CAST(COALESCE(SUM(in_flight), 0) AS BIGINT) AS in_flight \
     FROM workers WHERE last_seen >= ?1";
const FORGET_WORKERS: &str = "DELETE FROM workers WHERE last_seen < ?1";
const MARK_PUBLISHED: &str = "UPDATE jobs SET published_at = ?1 WHERE id = ?2 AND updated_at = ?3";

macro_rules! impl_outbox {
    ($store:ty, $sql:path) => {
        #[async_trait]
        impl Outbox for $store {
            async fn claim_job(
                &self,
                id: JobId,
                worker_id: &str,
                lease: Duration,
            ) -> Result<ClaimById> {
                let now = now_ms();
                let token = uuid::Uuid::new_v4().to_string();
                let row = sqlx::query(&$sql(CLAIM_BY_ID))
                    .bind(&token)
                    .bind(now + lease.as_millis() as i64)
                    .bind(worker_id)
                    .bind(now)
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                if let Some(row) = row {
                    let job = job_from_row(&row)?;
                    return Ok(ClaimById::Claimed(JobLease {
                        job,
                        token,
                        worker_id: worker_id.to_owned(),
                    }));
                }
                let row = sqlx::query(&$sql(JOB_TIMES))
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else {
                    return Ok(ClaimById::Missing);
                };
                let state =
                    JobState::parse(&row.text("state")?).ok_or_else(|| corrupt("job state"))?;
                Ok(match state {
                    JobState::Done | JobState::Dead => ClaimById::Finished,
                    JobState::Ready => ClaimById::NotYet {
                        retry_at_ms: row.int("run_at")?.max(now),
                    },
                    JobState::Running => ClaimById::NotYet {
                        // an exhausted job past its lease waits for the reclaimer to bury it
                        retry_at_ms: row.optional_int("lease_until")?.unwrap_or(now).max(now)
                            + 1000,
                    },
                })
            }

            async fn unpublished(
                &self,
                limit: u32,
                stale_after: Duration,
            ) -> Result<Vec<OutboxEntry>> {
                let rows = sqlx::query(&$sql(UNPUBLISHED))
                    .bind(now_ms() - stale_after.as_millis() as i64)
                    .bind(limit as i64)
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(OutboxEntry {
                            id: parse_id(&row.text("id")?, "job id")?,
                            run_at_ms: row.int("run_at")?,
                            version: row.int("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn mark_published(&self, entries: &[OutboxEntry]) -> Result<()> {
                let now = now_ms();
                let mut tx = begin(self.pool()).await?;
                for entry in entries {
                    sqlx::query(&$sql(MARK_PUBLISHED))
                        .bind(now)
                        .bind(entry.id.to_string())
                        .bind(entry.version)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            }
        }
    };
}

impl_outbox!(SqliteStore, as_is);
impl_outbox!(PostgresStore, dollar_placeholders);

/// The workers table, the same for both SQL backends (the `Store` impls delegate here).
macro_rules! impl_workers {
    ($store:ty, $sql:path) => {
        impl $store {
            pub(crate) async fn record_worker(
                &self,
                worker_id: &str,
                in_flight: u32,
            ) -> Result<()> {
                let now = now_ms();
                sqlx::query(&$sql(WORKER_SEEN))
                    .bind(worker_id)
                    .bind(in_flight as i64)
                    .bind(now)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                // a day without news: gone
                sqlx::query(&$sql(FORGET_WORKERS))
                    .bind(now - 86_400_000)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            pub(crate) async fn count_workers(&self, within: Duration) -> Result<WorkersAlive> {
                let row = sqlx::query(&$sql(WORKERS_ALIVE))
                    .bind(now_ms() - within.as_millis() as i64)
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(WorkersAlive {
                    workers: row.int("workers")?.max(0) as u64,
                    in_flight: row.int("in_flight")?.max(0) as u64,
                })
            }
        }
    };
}

impl_workers!(SqliteStore, as_is);
impl_workers!(PostgresStore, dollar_placeholders);
