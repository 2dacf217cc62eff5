//! Near-duplicate search: the caller's videos whose keyframe fingerprints share most pictures
//! with this one's (re-encoded, resized, trimmed copies).
//!
//! Compares against every ready video of the owner, loading each one's insights through the
//! same cache the insights route uses: fine for libraries of thousands of videos; past that an
//! index of the hashes (a BK-tree or a hash-prefix table) is the next step.
use crate::auth::Auth;
use crate::videos::{owned_video, parsed_insights};
use crate::{ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use vidsight_domain::insights::fingerprint_similarity;
use vidsight_domain::{ErrorCode, Video, VideoStatus};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesQuery {
    /// Smallest similarity (0–1) to report; default 0.5.
    pub min_score: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Duplicate {
    pub video: Video,
    /// Share of keyframes the two videos have in common (both ways averaged), 0–1.
    pub score: f64,
    /// How many of this video's keyframes were found in the other.
    pub matched_shots: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Duplicates {
    /// Most similar first.
    pub items: Vec<Duplicate>,
    /// Videos compared (ready, with a fingerprint).
    pub compared: usize,
}

/// At most this many of the owner's videos are compared.
const MAX_COMPARED: usize = 10_000;

/// Near-duplicates of a video among its owner's videos.
#[utoipa::path(get, path = "/api/v1/videos/{id}/duplicates", tag = "videos",
    params(("id" = String, Path, description = "Video id"), DuplicatesQuery),
    responses(
        (status = 200, body = Duplicates),
        (status = 400, body = ErrorBody, description = "`bad-request`"),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`: not analysed yet, or analysed before fingerprints existed (analyse it again)")
    ))]
pub async fn get_duplicates(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    query: Result<Query<DuplicatesQuery>, QueryRejection>,
) -> ApiResult<Json<Duplicates>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let min_score = query.min_score.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&min_score) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "min_score must be between 0 and 1",
        ));
    }
    let video = owned_video(&state, &principal, &id).await?;
    let (_, insights) = parsed_insights(&state, &video).await?;
    let mine = insights.fingerprint;
    if mine.is_empty() {
        return Err(ApiError::new(
            ErrorCode::VideoNotReady,
            format!(
                "video {} has no fingerprint: its analysis predates fingerprints (analyse it again) or its keyframes are all flat pictures",
                video.id
            ),
        ));
    }
    // the owner's library (a video from before accounts existed: the caller's)
    let owner = video.owner_id.unwrap_or(principal.user_id);
    let mut items = Vec::new();
    let mut compared = 0;
    let mut after: Option<String> = None;
    'pages: loop {
        let page = state
            .store
            .list_videos(Some(owner), after.as_deref(), 100)
            .await?;
        for other in page.items {
            if other.id == video.id || other.status != VideoStatus::Ready {
                continue;
            }
            if compared >= MAX_COMPARED {
                break 'pages;
            }
            let theirs = parsed_insights(&state, &other).await?.1.fingerprint;
            if theirs.is_empty() {
                continue;
            }
            compared += 1;
            let (score, matched_shots) = fingerprint_similarity(&mine, &theirs);
            if score >= min_score && score > 0.0 {
                items.push(Duplicate {
                    video: other,
                    score,
                    matched_shots,
                });
            }
        }
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    items.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(Json(Duplicates { items, compared }))
}
