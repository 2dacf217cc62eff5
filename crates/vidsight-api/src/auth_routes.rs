//! `/api/v1/auth/*`: registration, sign-in, refresh, sign-out, the gateway's verify
//! endpoint, the JWKS document, password change and TOTP.
use crate::auth::{
    authorize, check_csrf, cookie, Auth, Context, MaybeAuth, ACCESS_COOKIE, CSRF_COOKIE,
    REFRESH_COOKIE,
};
use crate::{no_content, ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use vidsight_auth::{IssuedTokens, Principal};
use vidsight_domain::{ErrorCode, Scope, User};

/// A JSON body, or `bad-request` naming what is wrong with it.
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json: Result<Json<T>, JsonRejection> = Json::from_request(request, state).await;
        json.map(|Json(value)| Body(value))
            .map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))
    }
}

/// A JSON body already read (for handlers that must check something before the body, or
/// whose body is optional), or `bad-request` naming what is wrong with it, as [`Body`] says.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("Failed to deserialize the JSON body into the target type: {error}"),
        )
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// At least 10 characters.
    pub password: String,
}

/// Creates an account (open registration, or the first account when invite-only). The first
/// account becomes admin.
#[utoipa::path(post, path = "/api/v1/auth/register", security(()), tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 400, body = ErrorBody, description = "`invalid-input`: bad email or weak password"),
        (status = 403, body = ErrorBody, description = "`registration-closed`"),
        (status = 409, body = ErrorBody, description = "`email-taken`"),
        (status = 429, body = ErrorBody, description = "`rate-limited`")
    ))]
pub async fn register(
    State(state): State<AppState>,
    Context(context): Context,
    Body(body): Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state
        .auth
        .register(&body.email, &body.password, &context)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// A TOTP code, or a recovery code, when the account has two-factor authentication.
    pub totp: Option<String>,
    /// Browsers: set the session as httpOnly cookies (`vs_access`, `vs_refresh`) plus the
    /// `vs_csrf` cookie, and leave the refresh token out of the body.
    #[serde(default)]
    pub cookie: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// EdDSA-signed JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; trade it at /api/v1/auth/refresh (each works once). Absent with `cookie`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub token_type: &'static str,
}

fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    http_only: bool,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if state.settings.tls {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).expect("cookie values are token characters")
}

fn token_response(state: &AppState, tokens: IssuedTokens, cookies: bool) -> Response {
    let body = TokenResponse {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone().filter(|_| !cookies),
        expires_in: tokens.expires_in,
        token_type: "Bearer",
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if cookies {
        let csrf = vidsight_auth::secrets::random_token();
        let mut values = vec![cookie_header(
            state,
            ACCESS_COOKIE,
            &tokens.access_token,
            "/",
            tokens.expires_in,
            true,
        )];
        if let Some(refresh) = &tokens.refresh_token {
            values.push(cookie_header(
                state,
                REFRESH_COOKIE,
                refresh,
                "/api/v1/auth",
                tokens.refresh_expires_in,
                true,
            ));
        }
        values.push(cookie_header(
            state,
            CSRF_COOKIE,
            &csrf,
            "/",
            tokens.refresh_expires_in,
            false,
        ));
        for value in values {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Signs in. With two-factor authentication on, send `totp` too (else `mfa-required`).
/// Repeated failures lock the account out for exponentially longer (429 with Retry-After).
#[utoipa::path(post, path = "/api/v1/auth/login", security(()), tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "`invalid-credentials`, `mfa-required`, `invalid-mfa-code`"),
        (status = 403, body = ErrorBody, description = "`account-disabled`"),
        (status = 429, body = ErrorBody, description = "`rate-limited`: too many attempts")
    ))]
pub async fn login(
    State(state): State<AppState>,
    Context(context): Context,
    Body(body): Body<LoginRequest>,
) -> ApiResult<Response> {
    let tokens = state
        .auth
        .login(&body.email, &body.password, body.totp.as_deref(), &context)
        .await?;
    Ok(token_response(&state, tokens, body.cookie))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// The refresh token; browsers send none and use the `vs_refresh` cookie.
    pub refresh_token: Option<String>,
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the JSON body is not valid: {error}"),
        )
    })
}

/// Trades a refresh token for new tokens. Each refresh token works once: a reused one
/// revokes its whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", security(()), tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "`unauthorized`: unknown, expired, spent or revoked"),
        (status = 403, body = ErrorBody, description = "`csrf-failed` (cookie refresh without the header)")
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request: RefreshRequest = optional_body(&body)?;
    let (token, cookies) = match request.refresh_token {
        Some(token) => (token, false),
        None => {
            let token = cookie(&headers, REFRESH_COOKIE).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "send `refresh_token` (or the vs_refresh cookie)",
                )
            })?;
            check_csrf(&headers)?;
            (token.to_owned(), true)
        }
    };
    let tokens = state.auth.refresh(&token, &context).await?;
    Ok(token_response(&state, tokens, cookies))
}

/// Signs out this session: its access and refresh tokens stop working, and the cookies are
/// cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", security(()), tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out.")))]
pub async fn logout(
    State(state): State<AppState>,
    Context(context): Context,
    MaybeAuth(principal): MaybeAuth,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request: RefreshRequest = optional_body(&body)?;
    let from_cookie = request.refresh_token.is_none() && cookie(&headers, REFRESH_COOKIE).is_some();
    if from_cookie {
        // a cross-site form must not be able to sign someone out
        check_csrf(&headers)?;
    }
    let refresh = request
        .refresh_token
        .or_else(|| cookie(&headers, REFRESH_COOKIE).map(str::to_owned));
    if matches!(
        principal.as_ref().map(|p| &p.credential),
        Some(vidsight_auth::Credential::Cookie { .. })
    ) {
        check_csrf(&headers)?;
    }
    state
        .auth
        .logout(principal.as_ref(), refresh.as_deref(), &context)
        .await?;
    let mut response = no_content();
    for (name, path) in [
        (ACCESS_COOKIE, "/"),
        (REFRESH_COOKIE, "/api/v1/auth"),
        (CSRF_COOKIE, "/"),
    ] {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie_header(&state, name, "", path, 0, name != CSRF_COOKIE),
        );
    }
    Ok(response)
}

/// Ends every session of the account, on every device.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    responses((status = 204, description = "Every session ended."), (status = 401, body = ErrorBody)))]
pub async fn logout_all(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
) -> ApiResult<Response> {
    require_session(&principal, "ending every session")?;
    state
        .auth
        .logout_everywhere(principal.user_id, &context)
        .await?;
    Ok(no_content())
}

/// For the gateway (`nginx auth_request`): 200 with `X-User-Id`, `X-User-Role` and
/// `X-User-Scopes` for a valid credential, else 401. The original method and URI
/// (`X-Original-Method`, `X-Original-URI`) are authorized as the API would.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "auth",
    params(("X-Original-Method" = Option<String>, Header, description = "The method of the request being authorized"),
           ("X-Original-URI" = Option<String>, Header, description = "Its path")),
    responses(
        (status = 200, description = "Valid; identity in the headers.", headers(("X-User-Id" = String), ("X-User-Role" = String), ("X-User-Scopes" = String))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
pub async fn verify(Auth(principal): Auth, headers: HeaderMap) -> ApiResult<Response> {
    let method = headers
        .get("x-original-method")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| Method::from_str(text).ok());
    let uri = headers
        .get("x-original-uri")
        .and_then(|value| value.to_str().ok())
        .map(|uri| uri.split('?').next().unwrap_or(uri).to_owned());
    if let (Some(method), Some(uri)) = (method, uri) {
        authorize(&principal, &method, &uri, &headers)?;
    }
    let mut response = no_content();
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        "x-user-id",
        HeaderValue::from_str(&principal.user_id.to_string()).expect("uuid"),
    );
    headers.insert(
        "x-user-role",
        HeaderValue::from_static(principal.role.as_str()),
    );
    let scopes = if principal.scopes.is_empty() {
        "none".to_owned()
    } else {
        Scope::join(&principal.scopes)
    };
    headers.insert(
        "x-user-scopes",
        HeaderValue::from_str(&scopes).expect("ascii"),
    );
    let api_key = matches!(
        principal.credential,
        vidsight_auth::Credential::ApiKey { .. }
            | vidsight_auth::Credential::Gateway { api_key: true }
    );
    headers.insert(
        "x-user-credential",
        HeaderValue::from_static(if api_key { "api-key" } else { "session" }),
    );
    Ok(response)
}

/// The public keys that sign access tokens (JWK Set), for services verifying tokens.
#[utoipa::path(get, path = "/api/v1/auth/jwks.json", security(()), tag = "auth",
    responses((status = 200, description = "RFC 7517 JWK Set.", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.auth.keys().jwks().await).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the password; every session ends (sign in again).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204, description = "Changed."), (status = 400, body = ErrorBody, description = "`invalid-input`: weak password"),
        (status = 401, body = ErrorBody, description = "`invalid-credentials`: the current password is wrong")))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Body(body): Body<PasswordChange>,
) -> ApiResult<Response> {
    require_session(&principal, "changing the password")?;
    state
        .auth
        .change_password(
            principal.user_id,
            &body.current_password,
            &body.new_password,
            &context,
        )
        .await?;
    Ok(no_content())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG document).
    pub qr_svg: String,
}

/// Starts TOTP enrollment: scan the QR code, then confirm with a code.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp", tag = "auth",
    responses((status = 200, body = TotpEnrollment), (status = 400, body = ErrorBody, description = "`invalid-input`: already on")))]
pub async fn mfa_enroll(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Response> {
    require_session(&principal, "two-factor set-up")?;
    let enrollment = state.auth.mfa_enroll(principal.user_id).await?;
    let mut response = Json(TotpEnrollment {
        secret: enrollment.secret,
        otpauth_uri: enrollment.otpauth_uri,
        qr_svg: enrollment.qr_svg,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpConfirm {
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Ten one-time codes, shown once; each signs in instead of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// Confirms enrollment with a current code; from now on sign-in needs a code.
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/confirm", tag = "auth", request_body = TotpConfirm,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody, description = "`invalid-mfa-code`")))]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Body(body): Body<TotpConfirm>,
) -> ApiResult<Response> {
    require_session(&principal, "two-factor set-up")?;
    let codes = state
        .auth
        .mfa_confirm(principal.user_id, &body.code, &context)
        .await?;
    let mut response = Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpDisable {
    pub password: String,
    /// A current TOTP code or a recovery code.
    pub code: String,
}

/// Turns two-factor authentication off (password and a code needed).
#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/disable", tag = "auth", request_body = TotpDisable,
    responses((status = 204, description = "Off."), (status = 401, body = ErrorBody, description = "`invalid-credentials`, `invalid-mfa-code`")))]
pub async fn mfa_disable(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Context(context): Context,
    Body(body): Body<TotpDisable>,
) -> ApiResult<Response> {
    require_session(&principal, "turning two-factor off")?;
    state
        .auth
        .mfa_disable(principal.user_id, &body.password, &body.code, &context)
        .await?;
    Ok(no_content())
}

/// Whether the principal came with a session (not an API key or the gateway).
pub(crate) fn require_session(principal: &Principal, what: &str) -> ApiResult<()> {
    match principal.credential {
        vidsight_auth::Credential::Bearer { .. }
        | vidsight_auth::Credential::Cookie { .. }
        | vidsight_auth::Credential::Gateway { api_key: false } => Ok(()),
        vidsight_auth::Credential::ApiKey { .. }
        | vidsight_auth::Credential::Gateway { api_key: true } => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("{what} needs a signed-in session, not an API key"),
        )),
    }
}
