//! Reading and writing whole videos with their analyses, for `vidsight migrate-data`. The
//! statements are shared by both SQL backends (`?N` placeholders; `$N` for PostgreSQL).
use crate::rows::*;
use crate::sql::{as_is, dollar_placeholders};
use crate::traits::*;
use crate::{PostgresStore, SqliteStore};
use time::OffsetDateTime;
use vidsight_domain::{AnalysisStatus, JobPayload, Result, Video};

fn millis(time: OffsetDateTime) -> i64 {
    (time.unix_timestamp_nanos() / 1_000_000) as i64
}

const ANALYSES_OF_VIDEO: &str = "SELECT id, video_id, status, progress, attempts, error_code, error_message, \
     created_at, started_at, finished_at, insights_json FROM analyses WHERE video_id = ?1 ORDER BY id";
const INSERT_VIDEO: &str =
    "INSERT INTO videos (id, filename, content_type, size_bytes, sha256, status, progress, \
     error_code, error_message, media_json, latest_analysis_id, created_at, updated_at, owner_id, \
     duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (id) DO NOTHING";
const INSERT_ANALYSIS: &str =
    "INSERT INTO analyses (id, video_id, status, progress, attempts, error_code, \
     error_message, insights_json, created_at, started_at, finished_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const INSERT_JOB: &str =
    "INSERT INTO jobs (id, payload_json, unique_key, video_id, state, attempts, max_attempts, \
     run_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'ready', 0, ?5, ?6, ?6, ?6)";

macro_rules! impl_copy {
    ($store:ty, $sql:path) => {
        impl $store {
            pub(crate) async fn analyses_of(
                &self,
                video_id: vidsight_domain::VideoId,
            ) -> Result<Vec<StoredAnalysis>> {
                let rows = sqlx::query(&$sql(ANALYSES_OF_VIDEO))
                    .bind(video_id.to_string())
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        let insights = row
                            .optional_text("insights_json")?
                            .map(|text| {
                                serde_json::from_str(&text).map_err(|_| corrupt("insights"))
                            })
                            .transpose()?;
                        Ok(StoredAnalysis {
                            analysis: analysis_from_row(row)?,
                            insights,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn import(
                &self,
                video: &Video,
                analyses: &[StoredAnalysis],
                max_attempts: u32,
            ) -> Result<bool> {
                let mut tx = begin(self.pool()).await?;
                let media =
                    serde_json::to_string(&video.media).map_err(|_| corrupt("media facts"))?;
                let inserted = sqlx::query(&$sql(INSERT_VIDEO))
                    .bind(video.id.to_string())
                    .bind(&video.filename)
                    .bind(&video.content_type)
                    .bind(video.size_bytes)
                    .bind(&video.sha256)
                    .bind(video.status.as_str())
                    .bind(video.progress as i64)
                    .bind(video.error.as_ref().map(|error| error.code.as_str()))
                    .bind(video.error.as_ref().map(|error| error.message.clone()))
                    .bind(media)
                    .bind(video.latest_analysis_id.map(|id| id.to_string()))
                    .bind(millis(video.created_at))
                    .bind(millis(video.updated_at))
                    .bind(video.owner_id.map(|id| id.to_string()))
                    .bind((video.media.duration.max(0.0) * 1000.0).round() as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if inserted.rows_affected() == 0 {
                    return Ok(false);
                }
                let now = now_ms();
                for stored in analyses {
                    let analysis = &stored.analysis;
                    let unfinished = !analysis.status.is_finished();
                    let status = if unfinished {
                        AnalysisStatus::Queued
                    } else {
                        analysis.status
                    };
                    let insights = stored
                        .insights
                        .as_ref()
                        .map(|insights| {
                            serde_json::to_string(insights).map_err(|_| corrupt("insights"))
                        })
                        .transpose()?;
                    sqlx::query(&$sql(INSERT_ANALYSIS))
                        .bind(analysis.id.to_string())
                        .bind(analysis.video_id.to_string())
                        .bind(status.as_str())
                        .bind(if unfinished {
                            0
                        } else {
                            analysis.progress as i64
                        })
                        .bind(analysis.attempts as i64)
                        .bind(analysis.error.as_ref().map(|error| error.code.as_str()))
                        .bind(analysis.error.as_ref().map(|error| error.message.clone()))
                        .bind(insights)
                        .bind(millis(analysis.created_at))
                        .bind(analysis.started_at.map(millis))
                        .bind(analysis.finished_at.map(millis))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    if unfinished {
                        let payload = JobPayload::Analyze {
                            video_id: video.id,
                            analysis_id: analysis.id,
                            // the options live only in the job: a copied job re-runs
                            // with the configured defaults
                            options: None,
                        };
                        sqlx::query(&$sql(INSERT_JOB))
                            .bind(vidsight_domain::JobId::new().to_string())
                            .bind(
                                serde_json::to_string(&payload)
                                    .map_err(|_| corrupt("job payload"))?,
                            )
                            .bind(payload.unique_key())
                            .bind(video.id.to_string())
                            .bind(max_attempts.max(1) as i64)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                let mut entries = vec![crate::search::SearchEntry {
                    kind: "title".into(),
                    start: None,
                    end: None,
                    text: video.filename.clone(),
                }];
                if let Some(insights) = video
                    .latest_analysis_id
                    .and_then(|latest| analyses.iter().find(|stored| stored.analysis.id == latest))
                    .and_then(|stored| stored.insights.as_ref())
                {
                    entries.extend(crate::search::entries_from_insights(insights));
                }
                Self::index_text(&mut tx, video.id, video.owner_id, &entries).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }
        }
    };
}

impl_copy!(SqliteStore, as_is);
impl_copy!(PostgresStore, dollar_placeholders);
