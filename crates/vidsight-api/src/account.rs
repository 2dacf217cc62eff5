//! The signed-in account (`/api/v1/users/me…`: profile, usage, GDPR export and erasure) and
//! its API keys (`/api/v1/api-keys`).
use crate::auth::{Auth, Context};
use crate::auth_routes::{require_session, Body};
use crate::{no_content, parse_id, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vidsight_auth::UsageReport;
use vidsight_blob::keys;
use vidsight_domain::{ApiKey, ApiKeyId, AuditEvent, ErrorCode, Scope, User, UserId, Video};
use vidsight_store::{AuditQuery, StoredAnalysis};

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "account",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Json<User>> {
    Ok(Json(state.auth.user(principal.user_id).await?.user))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// The month the analysis figures are for, `YYYY-MM` (UTC).
    pub period: String,
    pub storage_bytes: i64,
    /// Absent when unlimited.
    pub storage_limit_bytes: Option<i64>,
    pub videos: i64,
    pub analysis_minutes: f64,
    /// Absent when unlimited.
    pub analysis_limit_minutes: Option<i64>,
    /// Tokens spent with analysis providers (Gemini, OpenAI-compatible) this month.
    pub provider_tokens: i64,
    /// What they cost, US dollars, from the configured price table.
    pub provider_cost_usd: f64,
    /// Absent when unlimited.
    pub provider_tokens_limit: Option<i64>,
}

impl From<UsageReport> for UsageResponse {
    fn from(report: UsageReport) -> Self {
        Self {
            period: report.period,
            storage_bytes: report.storage_bytes,
            storage_limit_bytes: report.storage_limit_bytes,
            videos: report.videos,
            analysis_minutes: (report.analysis_seconds as f64 / 60.0 * 100.0).round() / 100.0,
            analysis_limit_minutes: report.analysis_limit_minutes,
            provider_tokens: report.provider_tokens,
            provider_cost_usd: report.provider_cost_usd,
            provider_tokens_limit: report.provider_tokens_limit,
        }
    }
}

/// Storage and analysis minutes used this month, against the account's limits.
#[utoipa::path(get, path = "/api/v1/users/me/usage", tag = "account",
    responses((status = 200, body = UsageResponse), (status = 401, body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<UsageResponse>> {
    let user = state.auth.user(principal.user_id).await?.user;
    Ok(Json(state.auth.usage(&user).await?.into()))
}

/// Every video id of an account.
pub(crate) async fn videos_of(state: &AppState, owner: UserId) -> ApiResult<Vec<Video>> {
    let mut videos = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .store
            .list_videos(Some(owner), cursor.as_deref(), 200)
            .await?;
        videos.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(videos),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportedVideo {
    pub video: Video,
    /// Every analysis, oldest first, with its insights document when it succeeded.
    #[schema(value_type = Vec<Object>)]
    pub analyses: Vec<serde_json::Value>,
    /// Where to download the media and derived files (with the same credentials).
    pub links: ExportLinks,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportLinks {
    pub content: String,
    pub insights: String,
    pub keyframes: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountExport {
    pub format: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: time::OffsetDateTime,
    pub account: User,
    pub usage: UsageResponse,
    pub api_keys: Vec<ApiKey>,
    pub videos: Vec<ExportedVideo>,
    /// Security events about the account.
    pub audit: Vec<AuditEvent>,
}

fn analysis_json(stored: &StoredAnalysis) -> serde_json::Value {
    let mut value = serde_json::to_value(&stored.analysis).unwrap_or_default();
    if let (Some(object), Some(insights)) = (value.as_object_mut(), &stored.insights) {
        object.insert("insights".into(), insights.clone());
    }
    value
}

/// Everything the service holds about the account (GDPR Art. 15/20, CCPA): account, usage,
/// API keys, videos' metadata with every analysis and its insights, audit entries, and links
/// to the media.
#[utoipa::path(get, path = "/api/v1/users/me/export", tag = "account",
    responses((status = 200, body = AccountExport), (status = 401, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
) -> ApiResult<Response> {
    let id = principal.user_id;
    let account = state.auth.user(id).await?.user;
    let usage = state.auth.usage(&account).await?.into();
    let api_keys = state.auth.accounts().list_api_keys(id).await?;
    let mut videos = Vec::new();
    for video in videos_of(&state, id).await? {
        let analyses = state.store.list_analyses(video.id).await?;
        let keyframes = analyses
            .iter()
            .rev()
            .find_map(|stored| stored.insights.as_ref())
            .and_then(|insights| insights.get("shots"))
            .and_then(|shots| shots.as_array())
            .map(|shots| {
                shots
                    .iter()
                    .filter_map(|shot| shot.get("keyframe").and_then(|name| name.as_str()))
                    .map(|name| format!("/api/v1/videos/{}/keyframes/{name}", video.id))
                    .collect()
            })
            .unwrap_or_default();
        videos.push(ExportedVideo {
            links: ExportLinks {
                content: format!("/api/v1/videos/{}/content", video.id),
                insights: format!("/api/v1/videos/{}/insights", video.id),
                keyframes,
            },
            analyses: analyses.iter().map(analysis_json).collect(),
            video,
        });
    }
    let mut audit = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = state
            .auth
            .accounts()
            .list_audit(AuditQuery {
                user_id: Some(id),
                before: before.clone(),
                limit: 500,
                ..AuditQuery::default()
            })
            .await?;
        audit.extend(page.items);
        match page.next_cursor {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    state
        .auth
        .audit(
            "data.exported",
            Some(id),
            None,
            &context,
            serde_json::json!({ "videos": videos.len() }),
        )
        .await;
    let export = AccountExport {
        format: "vidsight.account-export/v1",
        exported_at: time::OffsetDateTime::now_utc(),
        account,
        usage,
        api_keys,
        videos,
        audit,
    };
    let mut response = Json(export).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"vidsight-export.json\""),
    );
    Ok(response)
}

/// Erases an account: the objects of its videos first (so a failure leaves the account to
/// retry, not unreferenced objects), then every row (videos, analyses, queued jobs, keys,
/// recovery codes, usage, audit entries) and its sessions, then the objects of any video
/// the rows held that the first listing missed (a replica's lag, an upload in between).
pub(crate) async fn erase_account(state: &AppState, id: UserId) -> ApiResult<bool> {
    crate::tus::delete_uploads_of(state, id).await?;
    let listed = videos_of(state, id).await?;
    for video in &listed {
        state
            .blobs
            .delete_prefix(&keys::video_prefix(video.id))
            .await?;
    }
    let Some(erased) = state.auth.erase_user(id).await? else {
        return Ok(false);
    };
    for video_id in &erased {
        if !listed.iter().any(|video| video.id == *video_id) {
            if let Err(error) = state
                .blobs
                .delete_prefix(&keys::video_prefix(*video_id))
                .await
            {
                tracing::error!(video = %video_id, error = ?error, "deleting an erased account's objects failed; they are orphaned");
            }
        }
        let _ = state
            .cache
            .delete_prefix(&format!("video:{video_id}:"))
            .await;
    }
    Ok(true)
}

/// Deletes the account and everything of it (GDPR Art. 17, CCPA). Needs a signed-in
/// session (not an API key).
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "account",
    responses((status = 204, description = "Erased."), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`forbidden`: with an API key")))]
pub async fn delete_me(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
) -> ApiResult<Response> {
    require_session(&principal, "deleting the account")?;
    erase_account(&state, principal.user_id).await?;
    // nothing identifying the erased account is kept: not even its address or browser
    let _ = context;
    state
        .auth
        .audit(
            "user.deleted",
            None,
            None,
            &vidsight_auth::RequestContext::default(),
            serde_json::json!({ "by": "self" }),
        )
        .await;
    Ok(no_content())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewKeyRequest {
    pub name: String,
    /// `read`, `write`, `admin` (admin only for administrators). Default: read and write.
    pub scopes: Option<Vec<Scope>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The whole key, shown this once: send as `Authorization: Bearer vsk_…`.
    pub secret: String,
}

/// Creates an API key. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "account", request_body = NewKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody, description = "`invalid-input`"),
        (status = 403, body = ErrorBody, description = "`forbidden`: admin scope for a member, or created with an API key")))]
pub async fn create_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Body(body): Body<NewKeyRequest>,
) -> ApiResult<Response> {
    require_session(&principal, "creating API keys")?;
    let scopes = body
        .scopes
        .unwrap_or_else(|| vec![Scope::Read, Scope::Write]);
    let mut scopes: Vec<Scope> = scopes;
    scopes.sort();
    scopes.dedup();
    let (key, secret) = state
        .auth
        .create_api_key(&principal, &body.name, scopes, &context)
        .await?;
    let mut response = (StatusCode::CREATED, Json(CreatedKey { key, secret })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The account's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "account",
    responses((status = 200, body = Vec<ApiKey>), (status = 401, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(
        state
            .auth
            .accounts()
            .list_api_keys(principal.user_id)
            .await?,
    ))
}

/// Revokes one of the account's keys.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "account",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody, description = "`not-found`")))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let id: ApiKeyId = parse_id(&id, "API key")?;
    Ok(Json(
        state.auth.revoke_api_key(&principal, id, &context).await?,
    ))
}

/// An account's own video, or `not-found` (another member's video does not exist for them).
pub(crate) fn check_owner(principal: &vidsight_auth::Principal, video: &Video) -> ApiResult<()> {
    if principal.is_admin() || video.owner_id == Some(principal.user_id) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "video not found"))
    }
}
