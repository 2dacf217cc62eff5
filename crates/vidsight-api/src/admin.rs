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
