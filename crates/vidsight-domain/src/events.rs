//! What an account's live event stream (`GET /api/v1/events`) carries.
use crate::{AnalysisId, FailureInfo, VideoId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The kinds of event, as the SSE `event:` field.
pub mod kinds {
    pub const VIDEO_UPLOADED: &str = "video.uploaded";
    pub const VIDEO_READY: &str = "video.ready";
    pub const VIDEO_FAILED: &str = "video.failed";
    pub const VIDEO_DELETED: &str = "video.deleted";
    pub const ANALYSIS_QUEUED: &str = "analysis.queued";
    pub const ANALYSIS_STARTED: &str = "analysis.started";
    pub const ANALYSIS_PROGRESS: &str = "analysis.progress";
    pub const ANALYSIS_SUCCEEDED: &str = "analysis.succeeded";
    pub const ANALYSIS_FAILED: &str = "analysis.failed";
}

/// One event about one of the account's videos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserEvent {
    /// `video.uploaded|ready|failed|deleted`, `analysis.queued|started|progress|succeeded|failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub video_id: VideoId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_id: Option<AnalysisId>,
    /// 0–100, on `analysis.progress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// On the `failed` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureInfo>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl UserEvent {
    pub fn new(kind: &str, video_id: VideoId, analysis_id: Option<AnalysisId>) -> Self {
        Self {
            kind: kind.to_owned(),
            video_id,
            analysis_id,
            progress: None,
            error: None,
            at: OffsetDateTime::now_utc(),
        }
    }

    pub fn with_progress(mut self, progress: u8) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn with_error(mut self, error: Option<FailureInfo>) -> Self {
        self.error = error;
        self
    }

    /// The event-log stream of an account.
    pub fn stream_of(owner: crate::UserId) -> String {
        format!("user:{owner}")
    }
}
