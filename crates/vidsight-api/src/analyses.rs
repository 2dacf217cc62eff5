use crate::{parse_id, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use vidsight_domain::{Analysis, AnalysisId, ErrorCode, VideoId};

/// Analyses the video again (for example after an upgrade of the analyzer).
#[utoipa::path(post, path = "/api/v1/videos/{id}/analyses", tag = "analyses",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 202, body = Analysis, description = "Queued."),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`analysis-in-progress`: one is already queued or running.")
    ))]
pub async fn create_analysis(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Analysis>)> {
    let video_id: VideoId = parse_id(&id, "video")?;
    let analysis = state
        .store
        .create_analysis(video_id, state.settings.max_attempts)
        .await?;
    let _ = state
        .cache
        .delete_prefix(&format!("video:{video_id}:"))
        .await;
    Ok((StatusCode::ACCEPTED, Json(analysis)))
}

/// One analysis run: status, progress, attempts, error.
#[utoipa::path(get, path = "/api/v1/analyses/{id}", tag = "analyses",
    params(("id" = String, Path, description = "Analysis id")),
    responses((status = 200, body = Analysis), (status = 404, body = ErrorBody, description = "`not-found`")))]
pub async fn get_analysis(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Analysis>> {
    let analysis_id: AnalysisId = parse_id(&id, "analysis")?;
    let analysis = state
        .store
        .get_analysis(analysis_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "analysis not found"))?;
    Ok(Json(analysis))
}
