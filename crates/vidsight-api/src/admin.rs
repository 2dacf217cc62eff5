//! `/api/v1/admin/*`: user management and the audit log (administrators only: the auth
//! middleware refuses everyone else with 403 before these run).
use crate::account::erase_account;
use crate::auth::{Auth, Context};
use crate::auth_routes::Body;
use crate::{no_content, parse_id, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use vidsight_domain::{AuditEvent, ErrorCode, Role, User, UserId};
use vidsight_store::{AuditQuery, UserChanges};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

/// Every account, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(PageQuery),
    responses((status = 200, body = UserList), (status = 403, body = ErrorBody, description = "`forbidden`")))]
pub async fn list_users(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<UserList>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let page = state
        .auth
        .accounts()
        .list_users(
            query.after.as_deref(),
            query.limit.unwrap_or(50).clamp(1, 200),
        )
        .await?;
    Ok(Json(UserList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    pub email: String,
    pub password: String,
    /// Default `member`.
    pub role: Option<Role>,
}

/// Creates an account (how people join when registration is invite-only).
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "`email-taken`")))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Body(body): Body<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state
        .auth
        .create_user(
            &body.email,
            &body.password,
            body.role.unwrap_or(Role::Member),
            false,
        )
        .await?;
    state
        .auth
        .audit(
            "user.created",
            Some(user.id),
            Some(principal.user_id),
            &context,
            serde_json::json!({ "role": user.role }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(user)))
}

fn user_id(id: &str) -> ApiResult<UserId> {
    parse_id(id, "user")
}

/// One account.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.auth.user(user_id(&id)?).await?.user))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateUserRequest {
    pub role: Option<Role>,
    /// Disabling ends every session of the account at once.
    pub disabled: Option<bool>,
    /// Bytes; `null` returns to the configured default, 0 = unlimited.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub quota_storage_bytes: Option<Option<i64>>,
    /// Minutes per month; `null` returns to the default, 0 = unlimited.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub quota_analysis_minutes: Option<Option<i64>>,
}

/// Absent → `None`; `null` → `Some(None)`.
fn double_option<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::<i64>::deserialize(deserializer)?))
}

/// Changes an account's role, disables or enables it, sets its quotas.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", request_body = UpdateUserRequest,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Path(id): Path<String>,
    Body(body): Body<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let id = user_id(&id)?;
    if id == principal.user_id && (body.disabled == Some(true) || body.role == Some(Role::Member)) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "administrators cannot disable or demote themselves",
        ));
    }
    let negative = |quota: &Option<Option<i64>>| quota.flatten().is_some_and(|value| value < 0);
    if negative(&body.quota_storage_bytes) || negative(&body.quota_analysis_minutes) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "quotas cannot be negative",
        ));
    }
    let detail = serde_json::json!({
        "role": body.role,
        "disabled": body.disabled,
        "quota_storage_bytes": body.quota_storage_bytes,
        "quota_analysis_minutes": body.quota_analysis_minutes,
    });
    let user = state
        .auth
        .update_user(
            id,
            UserChanges {
                role: body.role,
                disabled: body.disabled,
                quota_storage_bytes: body.quota_storage_bytes,
                quota_analysis_minutes: body.quota_analysis_minutes,
            },
        )
        .await?;
    let event = match body.disabled {
        Some(true) => "user.disabled",
        Some(false) => "user.enabled",
        None => "user.updated",
    };
    state
        .auth
        .audit(event, Some(id), Some(principal.user_id), &context, detail)
        .await;
    Ok(Json(user))
}

/// Deletes an account with everything of it (as the account's own erasure does).
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Erased."), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    if id == principal.user_id {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "delete your own account with DELETE /api/v1/users/me",
        ));
    }
    state.auth.user(id).await?;
    erase_account(&state, id).await?;
    state
        .auth
        .audit(
            "user.deleted",
            None,
            Some(principal.user_id),
            &context,
            serde_json::json!({ "by": "admin" }),
        )
        .await;
    Ok(no_content())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Events about, or by, this account.
    pub user_id: Option<String>,
    /// e.g. `login.failed`.
    pub event: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
    /// 1–500 (default 100).
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// The audit log of security events, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<AuditList>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let user_id = query.user_id.as_deref().map(user_id).transpose()?;
    let page = state
        .auth
        .accounts()
        .list_audit(AuditQuery {
            user_id,
            event: query.event,
            before: query.before,
            limit: query.limit.unwrap_or(100).clamp(1, 500),
        })
        .await?;
    Ok(Json(AuditList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueOverview {
    pub ready: u64,
    pub running: u64,
    pub done: u64,
    pub dead: u64,
    /// How long the oldest due job has waited.
    pub oldest_ready_age_seconds: f64,
    /// Worker processes seen in the last minute, and the jobs they said they were running.
    pub workers: u64,
    pub jobs_in_flight: u64,
}

/// The job queue and the worker pool.
#[utoipa::path(get, path = "/api/v1/admin/queue", tag = "admin",
    responses((status = 200, body = QueueOverview), (status = 403, body = ErrorBody)))]
pub async fn queue(State(state): State<AppState>) -> ApiResult<Json<QueueOverview>> {
    let stats = state.queue.stats().await?;
    let workers = state
        .store
        .workers_alive(std::time::Duration::from_secs(60))
        .await?;
    Ok(Json(QueueOverview {
        ready: stats.ready,
        running: stats.running,
        done: stats.done,
        dead: stats.dead,
        oldest_ready_age_seconds: stats.oldest_ready_age_ms as f64 / 1000.0,
        workers: workers.workers,
        jobs_in_flight: workers.in_flight,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FailedJob {
    pub id: String,
    pub video_id: Option<String>,
    pub attempts: u32,
    /// The last error, as the worker recorded it.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: time::OffsetDateTime,
}

/// Jobs out of attempts (their analyses failed), newest first.
#[utoipa::path(get, path = "/api/v1/admin/jobs/failed", tag = "admin",
    responses((status = 200, body = Vec<FailedJob>), (status = 403, body = ErrorBody)))]
pub async fn failed_jobs(State(state): State<AppState>) -> ApiResult<Json<Vec<FailedJob>>> {
    let jobs = state.store.dead_jobs(100).await?;
    Ok(Json(
        jobs.into_iter()
            .map(|dead| FailedJob {
                id: dead.job.id.to_string(),
                video_id: dead.video_id.map(|id| id.to_string()),
                attempts: dead.job.attempts,
                last_error: dead.job.last_error,
                failed_at: time::OffsetDateTime::from_unix_timestamp_nanos(
                    dead.updated_at_ms as i128 * 1_000_000,
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            })
            .collect(),
    ))
}

/// Runs a failed job's analysis again (a new analysis of its video).
#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 202, body = vidsight_domain::Analysis), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`analysis-in-progress`, or the job has not failed")))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<vidsight_domain::Analysis>)> {
    let job_id: vidsight_domain::JobId = parse_id(&id, "job")?;
    let job = state
        .queue
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "job not found"))?;
    if job.state != vidsight_domain::JobState::Dead {
        return Err(ApiError::new(
            ErrorCode::AnalysisInProgress,
            "only a failed (dead) job can be retried",
        ));
    }
    let vidsight_domain::JobPayload::Analyze { video_id, .. } = job.payload else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "this job does not analyse a video",
        ));
    };
    let analysis = state
        .store
        .create_analysis(video_id, state.settings.max_attempts, None)
        .await?;
    let _ = state
        .cache
        .delete_prefix(&format!("video:{video_id}:"))
        .await;
    Ok((StatusCode::ACCEPTED, Json(analysis)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountUsage {
    pub user: User,
    pub usage: crate::account::UsageResponse,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageList {
    pub items: Vec<AccountUsage>,
    pub next_cursor: Option<String>,
}

/// Every account's usage against its limits, a page at a time.
#[utoipa::path(get, path = "/api/v1/admin/usage", tag = "admin", params(PageQuery),
    responses((status = 200, body = UsageList), (status = 403, body = ErrorBody)))]
pub async fn usage_by_account(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<UsageList>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let page = state
        .auth
        .accounts()
        .list_users(
            query.after.as_deref(),
            query.limit.unwrap_or(50).clamp(1, 200),
        )
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for user in page.items {
        let usage = state.auth.usage(&user).await?.into();
        items.push(AccountUsage { user, usage });
    }
    Ok(Json(UsageList {
        items,
        next_cursor: page.next_cursor,
    }))
}
