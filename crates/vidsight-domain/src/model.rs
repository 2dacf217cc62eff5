use crate::{AnalysisId, ErrorCode, JobId, MediaInfo, UserId, VideoId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a video is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    /// Stored and validated; its analysis waits in the queue.
    Uploaded,
    /// A worker is analysing it.
    Processing,
    /// The latest analysis succeeded; insights are available.
    Ready,
    /// The latest analysis failed; see `error`.
    Failed,
}

impl VideoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoStatus::Uploaded => "uploaded",
            VideoStatus::Processing => "processing",
            VideoStatus::Ready => "ready",
            VideoStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "uploaded" => VideoStatus::Uploaded,
            "processing" => VideoStatus::Processing,
            "ready" => VideoStatus::Ready,
            "failed" => VideoStatus::Failed,
            _ => return None,
        })
    }
}

/// Where one analysis run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl AnalysisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Queued => "queued",
            AnalysisStatus::Running => "running",
            AnalysisStatus::Succeeded => "succeeded",
            AnalysisStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => AnalysisStatus::Queued,
            "running" => AnalysisStatus::Running,
            "succeeded" => AnalysisStatus::Succeeded,
            "failed" => AnalysisStatus::Failed,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(self, AnalysisStatus::Succeeded | AnalysisStatus::Failed)
    }
}

/// Why something failed, as stored and as shown to clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailureInfo {
    pub code: ErrorCode,
    pub message: String,
}

/// An uploaded video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Video {
    pub id: VideoId,
    /// The account that uploaded it; `None` for videos from before accounts existed (only
    /// administrators see those).
    pub owner_id: Option<UserId>,
    /// The client's file name, sanitised (no directories).
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the uploaded bytes, computed while streaming.
    pub sha256: String,
    pub status: VideoStatus,
    /// 0–100, the progress of the latest analysis.
    pub progress: u8,
    /// Set when `status` is `failed`.
    pub error: Option<FailureInfo>,
    /// The ffprobe facts, known from upload on.
    pub media: MediaInfo,
    pub latest_analysis_id: Option<AnalysisId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One analysis run of a video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub id: AnalysisId,
    pub video_id: VideoId,
    pub status: AnalysisStatus,
    pub progress: u8,
    pub error: Option<FailureInfo>,
    /// How many times a worker started this analysis.
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// What a background job asks a worker to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    /// Run the local analyzer over a video, then the provider the options name.
    Analyze {
        video_id: VideoId,
        analysis_id: AnalysisId,
        /// Absent (jobs queued before providers existed, uploads) = the configured defaults.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<Box<crate::ai::AnalysisOptions>>,
    },
    /// Does nothing; used by tests and benchmarks of the queue itself. Its unique key is
    /// its tag.
    Noop { tag: String },
}

impl JobPayload {
    /// The key that keeps two jobs for the same thing from being active at once.
    pub fn unique_key(&self) -> Option<String> {
        match self {
            JobPayload::Analyze { video_id, .. } => Some(format!("analyze:{video_id}")),
            JobPayload::Noop { tag } => Some(format!("noop:{tag}")),
        }
    }
}

/// The state of a job in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Ready,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Ready => "ready",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ready" => JobState::Ready,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A job as the queue holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub payload: JobPayload,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
}

/// A claimed job: the worker holds it until `lease_until` and must heartbeat to keep it.
/// The token changes on every claim, so a worker whose lease was reclaimed cannot complete
/// the job behind its successor's back.
#[derive(Clone, Debug, PartialEq)]
pub struct JobLease {
    pub job: Job,
    pub token: String,
    pub worker_id: String,
}
