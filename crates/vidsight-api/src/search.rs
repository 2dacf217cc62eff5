//! `GET /api/v1/search?q=`: the account's videos whose title or insights text match, with
//! the time ranges that matched (SQLite FTS5 embedded, PostgreSQL full-text in production).
use crate::auth::Auth;
use crate::{parse_id, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use vidsight_domain::{ErrorCode, Video};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find (every word must match; the last may be the start of a word).
    pub q: String,
    /// Videos to return, 1–50 (default 20).
    pub limit: Option<u32>,
    /// Administrators: `all` searches every account's videos.
    pub owner: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchMatch {
    /// `title`, or where in the insights (`transcript`, `labels`, `ocr`, `summary`, …).
    pub kind: String,
    /// Seconds; absent for a title or a whole-video text.
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// The matching text, matched words in `[` `]`.
    pub snippet: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub video: Video,
    /// Best first.
    pub matches: Vec<SearchMatch>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub query: String,
    /// Best first.
    pub items: Vec<SearchResult>,
}

/// Finds videos by title and by what their insights say, with the matching time ranges.
#[utoipa::path(get, path = "/api/v1/search", tag = "videos", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody, description = "`bad-request`: no `q`")))]
pub async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchResults>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    if query.q.trim().is_empty() || query.q.len() > 500 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "give `q`: one or more words, at most 500 characters",
        ));
    }
    let owner = match query.owner.as_deref() {
        None => Some(principal.user_id),
        Some("all") if principal.is_admin() => None,
        Some(id) if principal.is_admin() => Some(parse_id(id, "user")?),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only administrators search other accounts' videos",
            ))
        }
    };
    let limit = query.limit.unwrap_or(20).clamp(1, 50) as usize;
    let hits = state.store.search(owner, &query.q, 500).await?;
    let mut items: Vec<SearchResult> = Vec::new();
    for hit in hits {
        if let Some(item) = items.iter_mut().find(|item| item.video.id == hit.video_id) {
            if item.matches.len() < 20 {
                item.matches.push(SearchMatch {
                    kind: hit.kind,
                    start: hit.start,
                    end: hit.end,
                    snippet: hit.snippet,
                });
            }
            continue;
        }
        if items.len() >= limit {
            continue;
        }
        let Some(video) = state.store.get_video(hit.video_id).await? else {
            continue;
        };
        items.push(SearchResult {
            video,
            matches: vec![SearchMatch {
                kind: hit.kind,
                start: hit.start,
                end: hit.end,
                snippet: hit.snippet,
            }],
        });
    }
    Ok(Json(SearchResults {
        query: query.q,
        items,
    }))
}
