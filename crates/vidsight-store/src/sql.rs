//! The `Store` and `JobQueue` implementations both SQL backends share: every statement is
//! written once, with `?N` placeholders (PostgreSQL gets them as `$N`); a claim on PostgreSQL
//! adds `FOR UPDATE SKIP LOCKED`. Each backend keeps only its connection set-up.
use crate::rows::*;
use crate::traits::*;
use crate::{PostgresStore, SqliteStore};
use async_trait::async_trait;
use sqlx::Row;
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;
use vidsight_domain::{
    Analysis, AnalysisId, Error, ErrorCode, FailureInfo, Job, JobId, JobLease, JobPayload,
    JobState, Result, UserId, Video, VideoId,
};

/// PostgreSQL's placeholders: `?N` becomes `$N` (no statement here has another `?`).
pub(crate) fn dollar_placeholders(sql: &str) -> Cow<'_, str> {
    Cow::Owned(sql.replace('?', "$"))
}

/// SQLite takes `?N` as written.
pub(crate) fn as_is(sql: &str) -> Cow<'_, str> {
    Cow::Borrowed(sql)
}

macro_rules! impl_sql_store {
    ($store:ty, $connection:ty, $sql:path, $claim_lock:literal, $fold:path) => {
        impl $store {
            async fn insert_job(
                connection: &mut $connection,
                payload: &JobPayload,
                video_id: Option<VideoId>,
                max_attempts: u32,
                now: i64,
            ) -> Result<Job> {
                let id = JobId::new();
                let payload_json = serde_json::to_string(payload)
                    .map_err(|error| Error::internal("job payload").with_source(error))?;
                sqlx::query(&$sql("INSERT INTO jobs (id, payload_json, unique_key, video_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, 'ready', 0, ?5, ?6, ?6, ?6)",))
                .bind(id.to_string())
                .bind(payload_json)
                .bind(payload.unique_key())
                .bind(video_id.map(|id| id.to_string()))
                .bind(max_attempts.max(1) as i64)
                .bind(now)
                .execute(&mut *connection)
                .await
                .map_err(db_error)?;
                Ok(Job {
                    id,
                    payload: payload.clone(),
                    state: JobState::Ready,
                    attempts: 0,
                    max_attempts: max_attempts.max(1),
                    last_error: None,
                })
            }

            /// Adds search entries for a video.
            pub(crate) async fn index_text(
                connection: &mut $connection,
                video_id: VideoId,
                owner: Option<UserId>,
                entries: &[crate::search::SearchEntry],
            ) -> Result<()> {
                for entry in entries {
                    sqlx::query(&$sql("INSERT INTO search_index (text, video_id, owner_id, kind, start_s, end_s, folded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
                        .bind(&entry.text)
                        .bind(video_id.to_string())
                        .bind(owner.map(|id| id.to_string()))
                        .bind(&entry.kind)
                        .bind(entry.start)
                        .bind(entry.end)
                        .bind($fold(&entry.text))
                        .execute(&mut *connection)
                        .await
                        .map_err(db_error)?;
                }
                Ok(())
            }

            /// Replaces the video's insights entries with those of a new insights document.
            async fn reindex_insights(
                connection: &mut $connection,
                analysis_id: AnalysisId,
                insights: &serde_json::Value,
            ) -> Result<()> {
                let row = sqlx::query(&$sql("SELECT v.id AS id, v.owner_id AS owner_id FROM videos v \
                     JOIN analyses a ON a.video_id = v.id WHERE a.id = ?1 AND v.latest_analysis_id = ?1"))
                    .bind(analysis_id.to_string())
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(()) };
                let video_id: VideoId = parse_id(&row.text("id")?, "video id")?;
                let owner = row
                    .optional_text("owner_id")?
                    .map(|text| parse_id(&text, "user id"))
                    .transpose()?;
                sqlx::query(&$sql("DELETE FROM search_index WHERE video_id = ?1 AND kind <> 'title'"))
                    .bind(video_id.to_string())
                    .execute(&mut *connection)
                    .await
                    .map_err(db_error)?;
                let entries = crate::search::entries_from_insights(insights);
                Self::index_text(connection, video_id, owner, &entries).await
            }

            /// Adds the video's duration to its owner's analysis minutes of this month.
            async fn charge_analysis(
                connection: &mut $connection,
                video_id: VideoId,
                now: i64,
            ) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO usage_ledger (user_id, period, analysis_ms) \
                     SELECT owner_id, ?2, duration_ms FROM videos WHERE id = ?1 AND owner_id IS NOT NULL \
                     ON CONFLICT (user_id, period) DO UPDATE SET analysis_ms = usage_ledger.analysis_ms + excluded.analysis_ms"))
                .bind(video_id.to_string())
                .bind(crate::accounts::period_of(now))
                .execute(&mut *connection)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn charge_provider_usage_on(
                &self,
                video_id: VideoId,
                tokens: i64,
                cost_micros: i64,
            ) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO usage_ledger (user_id, period, provider_tokens, provider_cost_micros) \
                     SELECT owner_id, ?2, ?3, ?4 FROM videos WHERE id = ?1 AND owner_id IS NOT NULL \
                     ON CONFLICT (user_id, period) DO UPDATE SET \
                     provider_tokens = usage_ledger.provider_tokens + excluded.provider_tokens, \
                     provider_cost_micros = usage_ledger.provider_cost_micros + excluded.provider_cost_micros"))
                .bind(video_id.to_string())
                .bind(crate::accounts::period_of(now_ms()))
                .bind(tokens)
                .bind(cost_micros)
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn analysis_row(&self, id: AnalysisId) -> Result<Option<Analysis>> {
                let row = sqlx::query(&$sql(&format!(
                    "SELECT {ANALYSIS_COLUMNS} FROM analyses WHERE id = ?1"
                )))
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
                row.as_ref().map(analysis_from_row).transpose()
            }

            async fn fail_analysis_rows(
                tx: &mut $connection,
                analysis_id: AnalysisId,
                reason: &FailureInfo,
                now: i64,
            ) -> Result<()> {
                sqlx::query(&$sql("UPDATE analyses SET status = 'failed', error_code = ?2, error_message = ?3, finished_at = ?4 WHERE id = ?1",))
                .bind(analysis_id.to_string())
                .bind(reason.code.as_str())
                .bind(&reason.message)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query(&$sql("UPDATE videos SET status = 'failed', error_code = ?2, error_message = ?3, updated_at = ?4 \
                     WHERE latest_analysis_id = ?1",))
                .bind(analysis_id.to_string())
                .bind(reason.code.as_str())
                .bind(&reason.message)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<()> {
                sqlx::query(&$sql("SELECT 1"))
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn create_video(&self, video: NewVideo, max_attempts: u32) -> Result<(Video, Analysis)> {
                let now = now_ms();
                let analysis_id = AnalysisId::new();
                let media_json = serde_json::to_string(&video.media)
                    .map_err(|error| Error::internal("media facts").with_source(error))?;
                let mut tx = begin(self.pool()).await?;
                sqlx::query(&$sql(&format!(
                    "INSERT INTO videos ({VIDEO_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 'uploaded', 0, NULL, NULL, ?6, ?7, ?8, ?8, ?9, ?10)"
                )))
                .bind(video.id.to_string())
                .bind(&video.filename)
                .bind(&video.content_type)
                .bind(video.size_bytes)
                .bind(&video.sha256)
                .bind(media_json)
                .bind(analysis_id.to_string())
                .bind(now)
                .bind(video.owner_id.map(|id| id.to_string()))
                .bind((video.media.duration.max(0.0) * 1000.0).round() as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                Self::charge_analysis(&mut tx, video.id, now).await?;
                Self::index_text(
                    &mut tx,
                    video.id,
                    video.owner_id,
                    &[crate::search::SearchEntry { kind: "title".into(), start: None, end: None, text: video.filename.clone() }],
                )
                .await?;
                sqlx::query(&$sql("INSERT INTO analyses (id, video_id, status, created_at) VALUES (?1, ?2, 'queued', ?3)",))
                .bind(analysis_id.to_string())
                .bind(video.id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let payload = JobPayload::Analyze {
                    video_id: video.id,
                    analysis_id,
                    options: None,
                };
                Self::insert_job(&mut tx, &payload, Some(video.id), max_attempts, now).await?;
                tx.commit().await.map_err(db_error)?;
                let stored = self
                    .get_video(video.id)
                    .await?
                    .ok_or_else(|| Error::internal("video vanished after insert"))?;
                let analysis = self
                    .analysis_row(analysis_id)
                    .await?
                    .ok_or_else(|| Error::internal("analysis vanished after insert"))?;
                Ok((stored, analysis))
            }

            async fn get_video(&self, id: VideoId) -> Result<Option<Video>> {
                let row = sqlx::query(&$sql(&format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE id = ?1")))
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(video_from_row).transpose()
            }

            async fn list_videos(
                &self,
                owner: Option<UserId>,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Page<Video>> {
                let after = match after {
                    Some(cursor) => Some(VideoId::from_str(cursor).map_err(|_| {
                        Error::new(
                            ErrorCode::InvalidCursor,
                            "the cursor is not one this API gave out; start without it",
                        )
                    })?),
                    None => None,
                };
                let limit = limit.clamp(1, 200);
                let rows = sqlx::query(&$sql(&format!(
                    "SELECT {VIDEO_COLUMNS} FROM videos WHERE (CAST(?1 AS TEXT) IS NULL OR id < ?1) \
                     AND (CAST(?3 AS TEXT) IS NULL OR owner_id = ?3) ORDER BY id DESC LIMIT ?2"
                )))
                .bind(after.map(|id| id.to_string()))
                .bind(limit as i64 + 1)
                .bind(owner.map(|id| id.to_string()))
                .fetch_all(self.read_pool())
                .await
                .map_err(db_error)?;
                let mut items = rows
                    .iter()
                    .map(video_from_row)
                    .collect::<Result<Vec<_>>>()?;
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|video| video.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            }

            async fn delete_video(&self, id: VideoId) -> Result<bool> {
                // analyses and jobs go with it (ON DELETE CASCADE); its search entries too
                let mut tx = begin(self.pool()).await?;
                let result = sqlx::query(&$sql("DELETE FROM videos WHERE id = ?1"))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(&$sql("DELETE FROM search_index WHERE video_id = ?1"))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn create_analysis(
                &self,
                video_id: VideoId,
                max_attempts: u32,
                options: Option<vidsight_domain::AnalysisOptions>,
            ) -> Result<Analysis> {
                let now = now_ms();
                let analysis_id = AnalysisId::new();
                let mut tx = begin(self.pool()).await?;
                let updated = sqlx::query(&$sql("UPDATE videos SET latest_analysis_id = ?2, status = 'processing', progress = 0, \
                     error_code = NULL, error_message = NULL, updated_at = ?3 WHERE id = ?1",))
                .bind(video_id.to_string())
                .bind(analysis_id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(Error::not_found("video"));
                }
                let payload = JobPayload::Analyze {
                    video_id,
                    analysis_id,
                    options: options.map(Box::new),
                };
                Self::insert_job(&mut tx, &payload, Some(video_id), max_attempts, now).await?;
                Self::charge_analysis(&mut tx, video_id, now).await?;
                sqlx::query(&$sql("INSERT INTO analyses (id, video_id, status, created_at) VALUES (?1, ?2, 'queued', ?3)",))
                .bind(analysis_id.to_string())
                .bind(video_id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.analysis_row(analysis_id)
                    .await?
                    .ok_or_else(|| Error::internal("analysis vanished after insert"))
            }

            async fn charge_provider_usage(
                &self,
                video_id: VideoId,
                tokens: i64,
                cost_micros: i64,
            ) -> Result<()> {
                self.charge_provider_usage_on(video_id, tokens, cost_micros).await
            }

            async fn get_analysis(&self, id: AnalysisId) -> Result<Option<Analysis>> {
                self.analysis_row(id).await
            }

            async fn start_analysis(&self, lease: &JobLease, analysis_id: AnalysisId) -> Result<()> {
                let now = now_ms();
                let mut tx = begin(self.pool()).await?;
                let updated = sqlx::query(&$sql("UPDATE analyses SET status = 'running', attempts = ?2, progress = 0, \
                     started_at = COALESCE(started_at, ?3) WHERE id = ?1",))
                .bind(analysis_id.to_string())
                .bind(lease.job.attempts as i64)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(Error::not_found("analysis"));
                }
                sqlx::query(&$sql("UPDATE videos SET status = 'processing', progress = 0, updated_at = ?2 \
                     WHERE latest_analysis_id = ?1",))
                .bind(analysis_id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn set_progress(&self, analysis_id: AnalysisId, progress: u8) -> Result<()> {
                let progress = progress.min(100) as i64;
                let mut tx = begin(self.pool()).await?;
                sqlx::query(&$sql("UPDATE analyses SET progress = ?2 WHERE id = ?1 AND status = 'running'"))
                    .bind(analysis_id.to_string())
                    .bind(progress)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(&$sql("UPDATE videos SET progress = ?2, updated_at = ?3 WHERE latest_analysis_id = ?1 AND status = 'processing'",))
                .bind(analysis_id.to_string())
                .bind(progress)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn analysis_will_retry(
                &self,
                analysis_id: AnalysisId,
                reason: &FailureInfo,
            ) -> Result<()> {
                sqlx::query(&$sql("UPDATE analyses SET status = 'queued', progress = 0, error_code = ?2, error_message = ?3 \
                     WHERE id = ?1 AND status IN ('queued', 'running')",))
                .bind(analysis_id.to_string())
                .bind(reason.code.as_str())
                .bind(&reason.message)
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn finish_analysis(
                &self,
                lease: &JobLease,
                analysis_id: AnalysisId,
                outcome: AnalysisOutcome,
            ) -> Result<()> {
                let now = now_ms();
                let mut tx = begin(self.pool()).await?;
                let (job_state, last_error) = match &outcome {
                    AnalysisOutcome::Succeeded { .. } => ("done", None),
                    AnalysisOutcome::Failed(reason) => {
                        ("dead", Some(format!("{}: {}", reason.code, reason.message)))
                    }
                };
                let ended = sqlx::query(&$sql("UPDATE jobs SET state = ?3, lease_token = NULL, lease_until = NULL, last_error = COALESCE(?4, last_error), \
                     updated_at = ?5 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",))
                .bind(lease.job.id.to_string())
                .bind(&lease.token)
                .bind(job_state)
                .bind(last_error)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if ended.rows_affected() == 0 {
                    return Err(lease_lost());
                }
                match outcome {
                    AnalysisOutcome::Succeeded { insights } => {
                        let insights_json = serde_json::to_string(&insights)
                            .map_err(|error| Error::internal("insights").with_source(error))?;
                        Self::reindex_insights(&mut tx, analysis_id, &insights).await?;
                        sqlx::query(&$sql("UPDATE analyses SET status = 'succeeded', progress = 100, error_code = NULL, error_message = NULL, \
                             insights_json = ?2, finished_at = ?3 WHERE id = ?1",))
                        .bind(analysis_id.to_string())
                        .bind(insights_json)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        sqlx::query(&$sql("UPDATE videos SET status = 'ready', progress = 100, error_code = NULL, error_message = NULL, \
                             updated_at = ?2 WHERE latest_analysis_id = ?1",))
                        .bind(analysis_id.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    }
                    AnalysisOutcome::Failed(reason) => {
                        Self::fail_analysis_rows(&mut tx, analysis_id, &reason, now).await?;
                    }
                }
                tx.commit().await.map_err(db_error)
            }

            async fn fail_orphaned_analysis(
                &self,
                analysis_id: AnalysisId,
                reason: &FailureInfo,
            ) -> Result<()> {
                let mut tx = begin(self.pool()).await?;
                Self::fail_analysis_rows(&mut tx, analysis_id, reason, now_ms()).await?;
                tx.commit().await.map_err(db_error)
            }

            async fn list_analyses(&self, video_id: VideoId) -> Result<Vec<StoredAnalysis>> {
                self.analyses_of(video_id).await
            }

            async fn import_video(
                &self,
                video: &Video,
                analyses: &[StoredAnalysis],
                max_attempts: u32,
            ) -> Result<bool> {
                self.import(video, analyses, max_attempts).await
            }

            async fn dead_jobs(&self, limit: u32) -> Result<Vec<DeadJob>> {
                let rows = sqlx::query(&$sql(&format!(
                    "SELECT {JOB_COLUMNS}, video_id, updated_at FROM jobs WHERE state = 'dead' ORDER BY updated_at DESC LIMIT ?1"
                )))
                .bind(limit.clamp(1, 500) as i64)
                .fetch_all(self.pool())
                .await
                .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(DeadJob {
                            job: job_from_row(row)?,
                            video_id: row
                                .optional_text("video_id")?
                                .map(|id| parse_id(&id, "video id"))
                                .transpose()?,
                            updated_at_ms: row.int("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn create_upload(&self, upload: &ResumableUpload) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO uploads (id, owner_id, length, upload_offset, filename, metadata, video_id, created_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))
                .bind(&upload.id)
                .bind(upload.owner_id.to_string())
                .bind(upload.length)
                .bind(upload.offset)
                .bind(&upload.filename)
                .bind(&upload.metadata)
                .bind(upload.video_id.map(|id| id.to_string()))
                .bind(upload.created_at_ms)
                .bind(upload.expires_at_ms)
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn get_upload(&self, id: &str) -> Result<Option<ResumableUpload>> {
                let row = sqlx::query(&$sql("SELECT id, owner_id, length, upload_offset, filename, metadata, video_id, created_at, expires_at \
                     FROM uploads WHERE id = ?1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(ResumableUpload {
                    id: row.text("id")?,
                    owner_id: parse_id(&row.text("owner_id")?, "user id")?,
                    length: row.int("length")?,
                    offset: row.int("upload_offset")?,
                    filename: row.text("filename")?,
                    metadata: row.text("metadata")?,
                    video_id: row.optional_text("video_id")?.map(|id| parse_id(&id, "video id")).transpose()?,
                    created_at_ms: row.int("created_at")?,
                    expires_at_ms: row.int("expires_at")?,
                }))
            }

            async fn advance_upload(&self, id: &str, from: i64, to: i64) -> Result<bool> {
                let updated = sqlx::query(&$sql("UPDATE uploads SET upload_offset = ?3 WHERE id = ?1 AND upload_offset = ?2 AND video_id IS NULL"))
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(updated.rows_affected() == 1)
            }

            async fn finish_upload(&self, id: &str, video_id: VideoId) -> Result<()> {
                sqlx::query(&$sql("UPDATE uploads SET video_id = ?2 WHERE id = ?1"))
                    .bind(id)
                    .bind(video_id.to_string())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn delete_upload(&self, id: &str) -> Result<bool> {
                let deleted = sqlx::query(&$sql("DELETE FROM uploads WHERE id = ?1"))
                    .bind(id)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(deleted.rows_affected() > 0)
            }

            async fn expired_uploads(&self, now_ms: i64, limit: u32) -> Result<Vec<String>> {
                sqlx::query_scalar(&$sql("SELECT id FROM uploads WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2"))
                    .bind(now_ms)
                    .bind(limit.max(1) as i64)
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)
            }

            async fn uploads_of(&self, owner: UserId) -> Result<Vec<String>> {
                sqlx::query_scalar(&$sql("SELECT id FROM uploads WHERE owner_id = ?1"))
                    .bind(owner.to_string())
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)
            }

            async fn search(&self, owner: Option<UserId>, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
                self.search_text(owner, query, limit).await
            }

            async fn worker_seen(&self, worker_id: &str, in_flight: u32) -> Result<()> {
                self.record_worker(worker_id, in_flight).await
            }

            async fn workers_alive(&self, within: Duration) -> Result<WorkersAlive> {
                self.count_workers(within).await
            }

            async fn latest_insights(&self, video_id: VideoId) -> Result<Option<StoredInsights>> {
                let row = sqlx::query(&$sql("SELECT id, insights_json FROM analyses WHERE video_id = ?1 AND status = 'succeeded' \
                     ORDER BY id DESC LIMIT 1",))
                .bind(video_id.to_string())
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let id: String = row.try_get("id").map_err(|_| corrupt("analysis"))?;
                let json: String = row
                    .try_get("insights_json")
                    .map_err(|_| corrupt("insights"))?;
                Ok(Some(StoredInsights {
                    analysis_id: parse_id(&id, "analysis id")?,
                    insights: serde_json::from_str(&json).map_err(|_| corrupt("insights"))?,
                }))
            }
        }


        #[async_trait]
        impl JobQueue for $store {
            async fn enqueue(&self, payload: JobPayload, max_attempts: u32) -> Result<Job> {
                let mut connection = self.pool().acquire().await.map_err(db_error)?;
                let video_id = match &payload {
                    JobPayload::Analyze { video_id, .. } => Some(*video_id),
                    JobPayload::Noop { .. } => None,
                };
                Self::insert_job(&mut connection, &payload, video_id, max_attempts, now_ms()).await
            }

            async fn claim(&self, worker_id: &str, lease: Duration) -> Result<Option<JobLease>> {
                let now = now_ms();
                let token = uuid::Uuid::new_v4().to_string();
                let row = sqlx::query(&$sql(&format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?1, lease_until = ?2, \
                     worker_id = ?3, updated_at = ?4 \
                     WHERE id = (SELECT id FROM jobs WHERE state = 'ready' AND run_at <= ?4 ORDER BY run_at, id LIMIT 1 {claim_lock}) \
                     RETURNING {JOB_COLUMNS}",
                    claim_lock = $claim_lock
                )))
                .bind(&token)
                .bind(now + lease.as_millis() as i64)
                .bind(worker_id)
                .bind(now)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(JobLease {
                    job: job_from_row(&row)?,
                    token,
                    worker_id: worker_id.to_owned(),
                }))
            }

            async fn heartbeat(&self, lease: &JobLease, extend: Duration) -> Result<()> {
                let now = now_ms();
                let updated = sqlx::query(&$sql("UPDATE jobs SET lease_until = ?3, updated_at = ?4 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",))
                .bind(lease.job.id.to_string())
                .bind(&lease.token)
                .bind(now + extend.as_millis() as i64)
                .bind(now)
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(lease_lost());
                }
                Ok(())
            }

            async fn complete(&self, lease: &JobLease) -> Result<()> {
                let updated = sqlx::query(&$sql("UPDATE jobs SET state = 'done', lease_token = NULL, lease_until = NULL, updated_at = ?3 \
                     WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",))
                .bind(lease.job.id.to_string())
                .bind(&lease.token)
                .bind(now_ms())
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(lease_lost());
                }
                Ok(())
            }

            async fn retry(&self, lease: &JobLease, error: &str, delay: Duration) -> Result<Job> {
                let now = now_ms();
                let row = sqlx::query(&$sql(&format!(
                    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'ready' END, published_at = NULL, \
                     run_at = ?3, lease_token = NULL, lease_until = NULL, worker_id = NULL, last_error = ?4, updated_at = ?5 \
                     WHERE id = ?1 AND lease_token = ?2 AND state = 'running' RETURNING {JOB_COLUMNS}"
                )))
                .bind(lease.job.id.to_string())
                .bind(&lease.token)
                .bind(now + delay.as_millis() as i64)
                .bind(error)
                .bind(now)
                .fetch_optional(self.pool())
                .await
                .map_err(db_error)?;
                match row {
                    Some(row) => job_from_row(&row),
                    None => Err(lease_lost()),
                }
            }

            async fn kill(&self, lease: &JobLease, error: &str) -> Result<()> {
                let updated = sqlx::query(&$sql("UPDATE jobs SET state = 'dead', lease_token = NULL, lease_until = NULL, last_error = ?3, updated_at = ?4 \
                     WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",))
                .bind(lease.job.id.to_string())
                .bind(&lease.token)
                .bind(error)
                .bind(now_ms())
                .execute(self.pool())
                .await
                .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(lease_lost());
                }
                Ok(())
            }

            async fn reclaim_expired(&self) -> Result<Reclaimed> {
                let now = now_ms();
                let rows = sqlx::query(&$sql(&format!(
                    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'ready' END, published_at = NULL, \
                     run_at = ?1, lease_token = NULL, lease_until = NULL, worker_id = NULL, \
                     last_error = 'lease expired: the worker stopped heartbeating (crashed or was killed)', updated_at = ?1 \
                     WHERE state = 'running' AND lease_until < ?1 RETURNING {JOB_COLUMNS}"
                )))
                .bind(now)
                .fetch_all(self.pool())
                .await
                .map_err(db_error)?;
                let mut reclaimed = Reclaimed::default();
                for row in &rows {
                    let job = job_from_row(row)?;
                    if job.state == JobState::Dead {
                        reclaimed.dead.push(job);
                    } else {
                        reclaimed.requeued.push(job);
                    }
                }
                Ok(reclaimed)
            }

            async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
                let row = sqlx::query(&$sql(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1")))
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(job_from_row).transpose()
            }

            async fn stats(&self) -> Result<QueueStats> {
                let now = now_ms();
                let rows = sqlx::query(&$sql("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"))
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)?;
                let mut stats = QueueStats::default();
                for row in &rows {
                    let state: String = row.try_get("state").map_err(|_| corrupt("job"))?;
                    let count = row
                        .try_get::<i64, _>("n")
                        .map_err(|_| corrupt("job"))?
                        .max(0) as u64;
                    match JobState::parse(&state) {
                        Some(JobState::Ready) => stats.ready = count,
                        Some(JobState::Running) => stats.running = count,
                        Some(JobState::Done) => stats.done = count,
                        Some(JobState::Dead) => stats.dead = count,
                        None => {}
                    }
                }
                let oldest: Option<i64> = sqlx::query_scalar(&$sql("SELECT MIN(run_at) FROM jobs WHERE state = 'ready' AND run_at <= ?1",))
                .bind(now)
                .fetch_one(self.pool())
                .await
                .map_err(db_error)?;
                stats.oldest_ready_age_ms = oldest
                    .map(|run_at| (now - run_at).max(0) as u64)
                    .unwrap_or(0);
                Ok(stats)
            }
        }
    };
}

impl_sql_store!(
    SqliteStore,
    sqlx::SqliteConnection,
    as_is,
    "",
    crate::search::no_fold
);
impl_sql_store!(
    PostgresStore,
    sqlx::PgConnection,
    dollar_placeholders,
    "FOR UPDATE SKIP LOCKED",
    crate::search::fold_for_index
);
