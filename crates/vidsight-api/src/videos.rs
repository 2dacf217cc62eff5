use crate::account::check_owner;
use crate::auth::Auth;
use crate::range::{self, RangeRequest};
use crate::{no_content, parse_id, vtt, ApiError, ApiResult, AppState, ErrorBody};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use vidsight_blob::keys;
use vidsight_domain::insights::Storyboard;
use vidsight_domain::{ErrorCode, Insights, Video, VideoId, VideoStatus};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Administrators: `all` lists every account's videos, a user id one account's. Others
    /// always see their own.
    pub owner: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoList {
    /// Newest first.
    pub items: Vec<Video>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists videos, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/videos", tag = "videos", params(ListQuery),
    responses((status = 200, body = VideoList), (status = 400, body = ErrorBody, description = "`bad-request`, `invalid-cursor`")))]
pub async fn list_videos(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<VideoList>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "limit must be between 1 and 100",
        ));
    }
    let owner = match query.owner.as_deref() {
        None => Some(principal.user_id),
        Some(_) if !principal.is_admin() => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only administrators list other accounts' videos",
            ))
        }
        Some("all") => None,
        Some(id) => Some(parse_id(id, "user")?),
    };
    let page = state
        .store
        .list_videos(owner, query.after.as_deref(), limit)
        .await?;
    Ok(Json(VideoList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Video metadata is polled while a video is processed: cached briefly, so that many clients
/// polling cost one database read a second per video, and progress shows within a second.
const VIDEO_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The video if the caller may see it (its owner, or an administrator); otherwise
/// `not-found`, exactly as for a video that does not exist.
pub(crate) async fn owned_video(
    state: &AppState,
    principal: &vidsight_auth::Principal,
    id: &str,
) -> ApiResult<Video> {
    let video = load_video(state, id).await?;
    check_owner(principal, &video)?;
    Ok(video)
}

pub(crate) async fn load_video(state: &AppState, id: &str) -> ApiResult<Video> {
    let video_id: VideoId = parse_id(id, "video")?;
    let key = format!("video:{video_id}:meta");
    if let Ok(Some(cached)) = state.cache.get(&key).await {
        if let Ok(video) = serde_json::from_slice::<Video>(&cached) {
            return Ok(video);
        }
    }
    let video = state
        .store
        .get_video(video_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "video not found"))?;
    if let Ok(json) = serde_json::to_vec(&video) {
        let _ = state
            .cache
            .set(&key, Bytes::from(json), VIDEO_CACHE_TTL)
            .await;
    }
    Ok(video)
}

/// One video: its status (`uploaded`, `processing`, `ready`, `failed`), progress and facts.
#[utoipa::path(get, path = "/api/v1/videos/{id}", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses((status = 200, body = Video), (status = 404, body = ErrorBody, description = "`not-found`")))]
pub async fn get_video(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Video>> {
    Ok(Json(owned_video(&state, &principal, &id).await?))
}

/// Deletes the video with its analyses, keyframes and stored file.
#[utoipa::path(delete, path = "/api/v1/videos/{id}", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses((status = 204, description = "Deleted."), (status = 404, body = ErrorBody, description = "`not-found`")))]
pub async fn delete_video(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let video = owned_video(&state, &principal, &id).await?;
    let video_id = video.id;
    if !state.store.delete_video(video_id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "video not found"));
    }
    vidsight_cache::eventlog::announce(
        &*state.event_log,
        video.owner_id,
        &vidsight_domain::UserEvent::new(
            vidsight_domain::events::kinds::VIDEO_DELETED,
            video_id,
            None,
        ),
    )
    .await;
    // the rows are gone first, so a failure here leaves unreferenced objects, never a
    // video whose file is missing
    if let Err(error) = state
        .blobs
        .delete_prefix(&keys::video_prefix(video_id))
        .await
    {
        tracing::error!(video = %video_id, error = ?error, "deleting the video's objects failed; they are orphaned");
    }
    let _ = state
        .cache
        .delete_prefix(&format!("video:{video_id}:"))
        .await;
    Ok(no_content())
}

/// The uploaded file, with HTTP Range support for seeking in a player.
#[utoipa::path(get, path = "/api/v1/videos/{id}/content", tag = "videos",
    params(("id" = String, Path, description = "Video id"),
           ("Range" = Option<String>, Header, description = "e.g. `bytes=0-1023`")),
    responses(
        (status = 200, description = "The whole file.", content_type = "video/*", body = Vec<u8>),
        (status = 206, description = "The requested range.", content_type = "video/*", body = Vec<u8>),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 416, body = ErrorBody, description = "`range-not-satisfiable`")
    ))]
pub async fn get_content(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let video = owned_video(&state, &principal, &id).await?;
    let key = keys::original(video.id);
    let size = state.blobs.size(&key).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "the video's file is missing from storage",
        )
    })?;
    let requested = range::parse(
        headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok()),
        size,
    );
    let (status, range) = match requested {
        RangeRequest::Whole => (StatusCode::OK, None),
        RangeRequest::Part(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the range is outside the {size}-byte file"),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(response);
        }
    };
    let read = state.blobs.read(&key, range).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "the video's file is missing from storage",
        )
    })?;
    let length = read.range.end - read.range.start;
    let body = Body::from_stream(
        read.stream
            .map(|chunk| chunk.map_err(std::io::Error::other)),
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, &video.content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{}\"", video.sha256))
        .header(header::CACHE_CONTROL, "private, max-age=3600");
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                read.range.start,
                read.range.end - 1,
                read.total_size
            ),
        );
    }
    Ok(response.body(body).expect("valid response"))
}

/// The latest successful insights document as JSON bytes, through the cache.
async fn insights_bytes(
    state: &AppState,
    video: &Video,
) -> ApiResult<(vidsight_domain::AnalysisId, Bytes)> {
    let cache_key = format!("video:{}:insights", video.id);
    if let Ok(Some(cached)) = state.cache.get(&cache_key).await {
        if cached.len() > 36 {
            if let Ok(analysis_id) = std::str::from_utf8(&cached[..36]).unwrap_or("").parse() {
                return Ok((analysis_id, cached.slice(36..)));
            }
        }
    }
    let Some(stored) = state.store.latest_insights(video.id).await? else {
        let message =
            match video.status {
                VideoStatus::Failed => format!(
                "the analysis failed ({}); start a new one with POST /api/v1/videos/{}/analyses",
                video.error.as_ref().map(|error| error.code.as_str()).unwrap_or("unknown"),
                video.id
            ),
                _ => format!(
                    "the video is {} ({}%); poll GET /api/v1/videos/{} until it is ready",
                    video.status.as_str(),
                    video.progress,
                    video.id
                ),
            };
        return Err(ApiError::new(ErrorCode::VideoNotReady, message));
    };
    let json = serde_json::to_vec(&stored.insights)
        .map_err(|error| vidsight_domain::Error::internal("insights").with_source(error))?;
    let mut entry = stored.analysis_id.to_string().into_bytes();
    entry.extend_from_slice(&json);
    let _ = state
        .cache
        .set(&cache_key, Bytes::from(entry), state.settings.cache_ttl)
        .await;
    Ok((stored.analysis_id, Bytes::from(json)))
}

/// The latest successful insights document, parsed.
pub(crate) async fn parsed_insights(
    state: &AppState,
    video: &Video,
) -> ApiResult<(vidsight_domain::AnalysisId, Insights)> {
    let (analysis_id, json) = insights_bytes(state, video).await?;
    let insights = serde_json::from_slice(&json)
        .map_err(|error| vidsight_domain::Error::internal("stored insights").with_source(error))?;
    Ok((analysis_id, insights))
}

/// The insights document (`vidsight.insights/v1`) of the latest successful analysis.
#[utoipa::path(get, path = "/api/v1/videos/{id}/insights", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, body = Insights),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`: not analysed yet, or the analysis failed.")
    ))]
pub async fn get_insights(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let video = owned_video(&state, &principal, &id).await?;
    let (_, json) = insights_bytes(&state, &video).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// The shots as WebVTT chapters, for a player's chapter track.
#[utoipa::path(get, path = "/api/v1/videos/{id}/insights.vtt", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, content_type = "text/vtt", body = String),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_insights_vtt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let video = owned_video(&state, &principal, &id).await?;
    let (_, insights) = parsed_insights(&state, &video).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/vtt; charset=utf-8")],
        vtt::chapters(&insights.shots),
    )
        .into_response())
}

/// Which caption track to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaptionQuery {
    /// The track's `stream` index in the insights; the first track when absent.
    pub track: Option<u32>,
}

async fn caption_cues(
    state: &AppState,
    principal: &vidsight_auth::Principal,
    id: &str,
    track: Option<u32>,
) -> ApiResult<(Video, Vec<vidsight_domain::insights::Cue>)> {
    let video = owned_video(state, principal, id).await?;
    let (_, insights) = parsed_insights(state, &video).await?;
    let found = match track {
        Some(stream) => insights.captions.into_iter().find(|t| t.stream == stream),
        None => insights.captions.into_iter().next(),
    };
    match found {
        Some(track) => Ok((video, track.cues)),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            match track {
                Some(stream) => format!("this video has no caption track from stream {stream}; the insights' `captions` list the tracks"),
                None => "this video has no captions: the file carried no text subtitle track".to_owned(),
            },
        )),
    }
}

fn download_name(video: &Video, extension: &str) -> String {
    let stem: String = video
        .filename
        .rsplit_once('.')
        .map(|(stem, _)| stem)
        .unwrap_or(&video.filename)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("attachment; filename=\"{stem}.{extension}\"")
}

/// A caption track the file carried, as WebVTT (for a player's `<track kind="captions">`).
#[utoipa::path(get, path = "/api/v1/videos/{id}/captions.vtt", tag = "videos",
    params(("id" = String, Path, description = "Video id"), CaptionQuery),
    responses(
        (status = 200, content_type = "text/vtt", body = String),
        (status = 404, body = ErrorBody, description = "`not-found`: no such video, or it has no (such) caption track"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_captions_vtt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    query: Result<Query<CaptionQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let (_, cues) = caption_cues(&state, &principal, &id, query.track).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/vtt; charset=utf-8")],
        vtt::captions_vtt(&cues),
    )
        .into_response())
}

/// A caption track the file carried, as SubRip (`.srt`), downloaded as a file.
#[utoipa::path(get, path = "/api/v1/videos/{id}/captions.srt", tag = "videos",
    params(("id" = String, Path, description = "Video id"), CaptionQuery),
    responses(
        (status = 200, content_type = "application/x-subrip", body = String),
        (status = 404, body = ErrorBody, description = "`not-found`: no such video, or it has no (such) caption track"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_captions_srt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    query: Result<Query<CaptionQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let (video, cues) = caption_cues(&state, &principal, &id, query.track).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/x-subrip; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, download_name(&video, "srt")),
        ],
        vtt::captions_srt(&cues),
    )
        .into_response())
}

/// Every timed finding as CSV (`kind,start,end,text`), for spreadsheets and scripts.
#[utoipa::path(get, path = "/api/v1/videos/{id}/insights.csv", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 404, body = ErrorBody, description = "`not-found`"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_insights_csv(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let video = owned_video(&state, &principal, &id).await?;
    let (_, insights) = parsed_insights(&state, &video).await?;
    let csv = vtt::insights_csv(&insights)
        .map_err(|error| vidsight_domain::Error::internal("writing CSV").with_source(error))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, download_name(&video, "csv")),
        ],
        csv,
    )
        .into_response())
}

/// Which size of a keyframe to serve.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyframeSize {
    /// The analysis frame size (`analysis.frame_width` on the longer side, 480 by default).
    #[default]
    Large,
    /// The thumbnail, 160 pixels wide (`shots[].thumbnail`).
    Small,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyframeQuery {
    /// `large` (the default) or `small`.
    #[param(inline)]
    pub size: Option<KeyframeSize>,
}

/// A keyframe image named in the insights (`shots[].keyframe`), or its thumbnail
/// (`shots[].thumbnail`, also served for `?size=small`).
#[utoipa::path(get, path = "/api/v1/videos/{id}/keyframes/{name}", tag = "videos",
    params(("id" = String, Path, description = "Video id"), ("name" = String, Path, description = "e.g. `shot-0001.jpg`, or its thumbnail `shot-0001-small.jpg`"), KeyframeQuery),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, body = ErrorBody, description = "`bad-request`: `size` is neither `large` nor `small`"),
        (status = 404, body = ErrorBody, description = "`not-found`: no such video or keyframe, or the analysis predates thumbnails (analyse again)"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_keyframe(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, name)): Path<(String, String)>,
    query: Result<Query<KeyframeQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let video = owned_video(&state, &principal, &id).await?;
    let (analysis_id, insights) = parsed_insights(&state, &video).await?;
    // only names the insights list are served, so a name can never reach another object
    let shot = insights.shots.iter().find(|shot| {
        shot.keyframe.as_deref() == Some(name.as_str())
            || shot.thumbnail.as_deref() == Some(name.as_str())
    });
    let Some(shot) = shot else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no keyframe named `{name}`"),
        ));
    };
    let object = match query.size.unwrap_or_default() {
        KeyframeSize::Large => name,
        KeyframeSize::Small => shot.thumbnail.clone().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "this analysis has no thumbnails: it predates them (analyse the video again)",
            )
        })?,
    };
    let bytes = state
        .blobs
        .get_bytes(&keys::keyframe(video.id, analysis_id, &object))
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, "the keyframe is missing from storage")
        })?;
    Ok(jpeg_response(bytes))
}

fn jpeg_response(bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        bytes,
    )
        .into_response()
}

async fn storyboard_of(
    state: &AppState,
    principal: &vidsight_auth::Principal,
    id: &str,
) -> ApiResult<(Video, vidsight_domain::AnalysisId, Storyboard)> {
    let video = owned_video(state, principal, id).await?;
    let (analysis_id, insights) = parsed_insights(state, &video).await?;
    let storyboard = insights.storyboard.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this analysis has no storyboard: it predates storyboards (analyse the video again)",
        )
    })?;
    Ok((video, analysis_id, storyboard))
}

/// Seek-bar previews as a WebVTT thumbnails track: one cue per storyboard tile, whose payload
/// is `storyboard/{sheet}#xywh=x,y,w,h` (relative to this URL: the sheet is served by the
/// route below, the fragment is the tile's rectangle in it).
#[utoipa::path(get, path = "/api/v1/videos/{id}/storyboard.vtt", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, content_type = "text/vtt", body = String),
        (status = 404, body = ErrorBody, description = "`not-found`: no such video, or its analysis predates storyboards (analyse again)"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_storyboard_vtt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_, _, storyboard) = storyboard_of(&state, &principal, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/vtt; charset=utf-8")],
        vtt::storyboard_vtt(&storyboard),
    )
        .into_response())
}

/// A storyboard sprite sheet named in the insights (`storyboard.sheets`): JPEG tiles,
/// `storyboard.columns` to a row.
#[utoipa::path(get, path = "/api/v1/videos/{id}/storyboard/{sheet}", tag = "videos",
    params(("id" = String, Path, description = "Video id"), ("sheet" = String, Path, description = "e.g. `sheet-000.jpg`")),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, body = ErrorBody, description = "`not-found`: no such video or sheet"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`")
    ))]
pub async fn get_storyboard_sheet(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, sheet)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (video, analysis_id, storyboard) = storyboard_of(&state, &principal, &id).await?;
    // only names the insights list are served, so a name can never reach another object
    if !storyboard.sheets.contains(&sheet) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no storyboard sheet named `{sheet}`"),
        ));
    }
    let bytes = state
        .blobs
        .get_bytes(&keys::storyboard(video.id, analysis_id, &sheet))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the sheet is missing from storage"))?;
    Ok(jpeg_response(bytes))
}
