//! What the SQL backends share: time and id conversions, error mapping, and turning rows
//! into domain values. Each backend implements [`Columns`] for its row type; the mapping
//! itself is written once.
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use vidsight_domain::{
    Analysis, AnalysisStatus, Error, ErrorCode, FailureInfo, Job, JobState, Result, Video,
    VideoStatus,
};

pub(crate) const VIDEO_COLUMNS: &str = "id, filename, content_type, size_bytes, sha256, status, \
     progress, error_code, error_message, media_json, latest_analysis_id, created_at, updated_at, \
     owner_id, duration_ms";
pub(crate) const ANALYSIS_COLUMNS: &str = "id, video_id, status, progress, attempts, error_code, \
     error_message, created_at, started_at, finished_at";
pub(crate) const JOB_COLUMNS: &str = "id, payload_json, state, attempts, max_attempts, last_error";

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Maps a driver error: unique violations are the one-active-job rule, foreign-key
/// violations a missing video, anything else an unavailable database.
pub(crate) fn db_error(error: sqlx::Error) -> Error {
    if let sqlx::Error::Database(database_error) = &error {
        if database_error.is_unique_violation() {
            return Error::new(
                ErrorCode::AnalysisInProgress,
                "an analysis of this video is already queued or running",
            );
        }
        if database_error.is_foreign_key_violation() {
            return Error::not_found("video");
        }
    }
    Error::new(
        ErrorCode::DatabaseUnavailable,
        "the database is unavailable",
    )
    .with_source(error)
}

/// Starts a transaction that a cancelled caller cannot leave open on a pooled connection.
///
/// sqlx 0.8.6 (and 0.9.0) sends PostgreSQL's `BEGIN` and raises the depth its roll-back-on-drop
/// guard looks at only once the answer is read; a future dropped in between (an aborted task,
/// a client that hung up, a `select!`) leaves the session inside a transaction that the pool
/// hands to the next borrower, whose statements then hold their locks and are never committed
/// (launchbadge/sqlx#2054, transact-rs/sqlx#4393). Begun on a task of its own, `BEGIN`
/// always completes; when the caller is gone the transaction is dropped there with its depth
/// raised, and rolled back before the connection is lent again.
pub(crate) async fn begin<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::Transaction<'static, DB>> {
    let pool = pool.clone();
    match tokio::spawn(async move { pool.begin().await }).await {
        Ok(begun) => begun.map_err(db_error),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(Error::internal("starting a transaction").with_source(error)),
    }
}

pub(crate) fn corrupt(what: &str) -> Error {
    Error::internal(format!("stored {what} cannot be read"))
}

pub(crate) fn parse_id<T: FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse().map_err(|_| corrupt(what))
}

fn failure(code: Option<String>, message: Option<String>) -> Option<FailureInfo> {
    let code = code?;
    let code =
        serde_json::from_value(serde_json::Value::String(code)).unwrap_or(ErrorCode::Internal);
    Some(FailureInfo {
        code,
        message: message.unwrap_or_default(),
    })
}

/// Typed column access, implemented per driver row type.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> Result<String>;
    fn optional_text(&self, name: &str) -> Result<Option<String>>;
    fn int(&self, name: &str) -> Result<i64>;
    fn optional_int(&self, name: &str) -> Result<Option<i64>>;
    fn optional_float(&self, name: &str) -> Result<Option<f64>>;
}

macro_rules! impl_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, name: &str) -> Result<String> {
                sqlx::Row::try_get(self, name).map_err(|_| corrupt(name))
            }
            fn optional_text(&self, name: &str) -> Result<Option<String>> {
                sqlx::Row::try_get(self, name).map_err(|_| corrupt(name))
            }
            fn int(&self, name: &str) -> Result<i64> {
                sqlx::Row::try_get(self, name).map_err(|_| corrupt(name))
            }
            fn optional_int(&self, name: &str) -> Result<Option<i64>> {
                sqlx::Row::try_get(self, name).map_err(|_| corrupt(name))
            }
            fn optional_float(&self, name: &str) -> Result<Option<f64>> {
                sqlx::Row::try_get(self, name).map_err(|_| corrupt(name))
            }
        }
    };
}

impl_columns!(sqlx::sqlite::SqliteRow);
impl_columns!(sqlx::postgres::PgRow);

pub(crate) fn video_from_row(row: &impl Columns) -> Result<Video> {
    Ok(Video {
        id: parse_id(&row.text("id")?, "video id")?,
        owner_id: row
            .optional_text("owner_id")?
            .map(|text| parse_id(&text, "user id"))
            .transpose()?,
        filename: row.text("filename")?,
        content_type: row.text("content_type")?,
        size_bytes: row.int("size_bytes")?,
        sha256: row.text("sha256")?,
        status: VideoStatus::parse(&row.text("status")?).ok_or_else(|| corrupt("video status"))?,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        error: failure(
            row.optional_text("error_code")?,
            row.optional_text("error_message")?,
        ),
        media: serde_json::from_str(&row.text("media_json")?)
            .map_err(|_| corrupt("media facts"))?,
        latest_analysis_id: row
            .optional_text("latest_analysis_id")?
            .map(|text| parse_id(&text, "analysis id"))
            .transpose()?,
        created_at: to_time(row.int("created_at")?),
        updated_at: to_time(row.int("updated_at")?),
    })
}

pub(crate) fn analysis_from_row(row: &impl Columns) -> Result<Analysis> {
    Ok(Analysis {
        id: parse_id(&row.text("id")?, "analysis id")?,
        video_id: parse_id(&row.text("video_id")?, "video id")?,
        status: AnalysisStatus::parse(&row.text("status")?)
            .ok_or_else(|| corrupt("analysis status"))?,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        error: failure(
            row.optional_text("error_code")?,
            row.optional_text("error_message")?,
        ),
        attempts: row.int("attempts")?.max(0) as u32,
        created_at: to_time(row.int("created_at")?),
        started_at: row.optional_int("started_at")?.map(to_time),
        finished_at: row.optional_int("finished_at")?.map(to_time),
    })
}

pub(crate) fn job_from_row(row: &impl Columns) -> Result<Job> {
    Ok(Job {
        id: parse_id(&row.text("id")?, "job id")?,
        payload: serde_json::from_str(&row.text("payload_json")?)
            .map_err(|_| corrupt("job payload"))?,
        state: JobState::parse(&row.text("state")?).ok_or_else(|| corrupt("job state"))?,
        attempts: row.int("attempts")?.max(0) as u32,
        max_attempts: row.int("max_attempts")?.max(0) as u32,
        last_error: row.optional_text("last_error")?,
    })
}
