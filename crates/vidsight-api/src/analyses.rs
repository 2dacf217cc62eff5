use crate::account::check_owner;
use crate::auth::Auth;
use crate::videos::owned_video;
use crate::{parse_id, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use vidsight_domain::{Analysis, AnalysisId, AnalysisOptions, ErrorCode};

/// Analyses the video again: the local analyzer, and, when the body names one, a provider
/// (`gemini`, `openai`) for summaries, chapters, transcripts, labels, on-screen text, topics,
/// moderation or a custom prompt answered in your JSON Schema — grounded on the local
/// analysis. Without a body: the configured defaults.
#[utoipa::path(post, path = "/api/v1/videos/{id}/analyses", tag = "analyses",
    params(("id" = String, Path, description = "Video id")),
    request_body(content = Option<AnalysisOptions>, description = "What to ask for (optional)"),
    responses(
        (status = 202, body = Analysis, description = "Queued."),
        (status = 400, body = ErrorBody, description = "`bad-request`: a body that is not AnalysisOptions JSON (an unknown provider, feature or field); `invalid-input`: a custom feature without prompt, an unusable schema, a provider not configured"),
        (status = 403, body = ErrorBody, description = "`quota_exceeded`: the monthly analysis minutes, or the monthly provider-token budget (by the estimate), would be exceeded"),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`analysis-in-progress`: one is already queued or running.")
    ))]
pub async fn create_analysis(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Analysis>)> {
    let video = owned_video(&state, &principal, &id).await?;
    let video_id = video.id;
    // the body is optional: none (or whitespace) means the configured defaults
    let options: Option<AnalysisOptions> = if body.trim_ascii().is_empty() {
        None
    } else {
        Some(crate::auth_routes::parse_body(&body)?)
    };
    // everything checkable is checked now, before anything is queued or sent
    let resolved = state.providers.resolve(options.as_ref())?;
    if let Some(owner) = video.owner_id {
        // the owner is charged, whoever asks
        state
            .auth
            .check_quota(owner, 0, video.media.duration)
            .await?;
        if let Some(resolved) = &resolved {
            let insights = crate::videos::parsed_insights(&state, &video)
                .await
                .ok()
                .map(|(_, insights)| insights);
            let estimate = state
                .providers
                .estimate(resolved, &video, insights.as_ref())
                .await?;
            state.token_budget.check(owner, estimate).await?;
        }
    }
    let analysis = state
        .store
        .create_analysis(video_id, state.settings.max_attempts, options)
        .await?;
    let _ = state
        .cache
        .delete_prefix(&format!("video:{video_id}:"))
        .await;
    vidsight_cache::eventlog::announce(
        &*state.event_log,
        video.owner_id,
        &vidsight_domain::UserEvent::new(
            vidsight_domain::events::kinds::ANALYSIS_QUEUED,
            video_id,
            Some(analysis.id),
        ),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(analysis)))
}

/// One analysis run: status, progress, attempts, error.
#[utoipa::path(get, path = "/api/v1/analyses/{id}", tag = "analyses",
    params(("id" = String, Path, description = "Analysis id")),
    responses((status = 200, body = Analysis), (status = 404, body = ErrorBody, description = "`not-found`")))]
pub async fn get_analysis(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Analysis>> {
    let analysis_id: AnalysisId = parse_id(&id, "analysis")?;
    let analysis = state
        .store
        .get_analysis(analysis_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "analysis not found"))?;
    let video = state
        .store
        .get_video(analysis.video_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "analysis not found"))?;
    check_owner(&principal, &video)
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "analysis not found"))?;
    Ok(Json(analysis))
}
