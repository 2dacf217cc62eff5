//! Authentication and authorization for every route, as one middleware, so that a new
//! route is protected by default:
//! 1. the client IP (the socket, or `X-Forwarded-For` from the trusted gateway) and its
//!    token bucket, a much smaller bucket on the sign-in/registration/MFA routes;
//! 2. the credential: identity headers from the gateway (only with the shared secret),
//!    `Authorization: Bearer` (an access token or an API key), or the session cookie;
//! 3. routes outside [`PUBLIC_ROUTES`] need one (401), admin routes need the admin role and
//!    scope (403), writes need the `write` scope (403), cookie-authenticated writes need the
//!    CSRF header (403);
//! 4. the account's token bucket.
//!
//! Handlers take [`Auth`] to get the [`Principal`]; ownership checks (another member's video
//! is a 404) are in the resource handlers.
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::str::FromStr;
use vidsight_auth::{Principal, RequestContext};
use vidsight_domain::{Error, ErrorCode, Role, Scope, UserId};

/// Routes anyone may call. Everything else needs a credential.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/jwks.json",
];

/// Paths under these prefixes are public too (the Swagger UI's files).
pub const PUBLIC_PREFIXES: &[&str] = &["/api/docs"];

/// Paths under this prefix need the admin role (and, for API keys, the admin scope).
pub const ADMIN_PREFIX: &str = "/api/v1/admin/";

/// The routes with the small per-IP bucket (guessing passwords and codes).
const SENSITIVE_ROUTES: &[&str] = &[
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/mfa/totp/confirm",
    "/api/v1/auth/mfa/totp/disable",
    "/api/v1/auth/password",
];

pub const ACCESS_COOKIE: &str = "vs_access";
pub const REFRESH_COOKIE: &str = "vs_refresh";
pub const CSRF_COOKIE: &str = "vs_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const GATEWAY_SECRET_HEADER: &str = "x-gateway-secret";
pub const VERIFY_ROUTE: &str = "/api/v1/auth/verify";

pub fn is_public(path: &str) -> bool {
    // outside /api/ is the web app's files (no data): public
    !path.starts_with("/api/") && !matches!(path, "/healthz" | "/readyz" | "/metrics")
        || PUBLIC_ROUTES.contains(&path)
        || PUBLIC_PREFIXES
            .iter()
            .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// The caller, for handlers. Missing (a public route without credentials) → 401.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "sign in first"))
    }
}

/// The caller when there may be none (public routes).
pub struct MaybeAuth(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuth(parts.extensions.get::<Principal>().cloned()))
    }
}

/// IP and user agent, for the audit log.
#[derive(Clone, Debug)]
pub struct Context(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Context(
            parts
                .extensions
                .get::<RequestContext>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

/// A cookie's value from the `Cookie` header. (Parsed by hand: three fixed names with
/// token-safe values do not need a cookie crate.)
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Whether the request carries the gateway's shared secret.
pub fn from_gateway(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(secret) = state.settings.gateway_secret.as_deref() else {
        return false;
    };
    header_text(headers, GATEWAY_SECRET_HEADER).is_some_and(|sent| {
        vidsight_auth::secrets::constant_time_eq(sent.as_bytes(), secret.as_bytes())
    })
}

fn client_ip(request: &Request, trusted: bool) -> String {
    if trusted {
        // the last entry is the one our gateway added (earlier ones are the client's word)
        if let Some(forwarded) = header_text(request.headers(), "x-forwarded-for") {
            if let Some(last) = forwarded.rsplit(',').next().map(str::trim) {
                if !last.is_empty() {
                    return last.to_owned();
                }
            }
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The rate-limit key of an address: IPv6 clients by their /64 (one host usually has a whole
/// /64 to pick addresses from).
fn bucket_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
        _ => ip.to_owned(),
    }
}

fn rate_limited(wait: std::time::Duration) -> Response {
    ApiError(
        Error::new(
            ErrorCode::RateLimited,
            "too many requests; slow down and retry after the Retry-After seconds",
        )
        .with_retry_after(wait.as_secs_f64().ceil() as u64),
    )
    .into_response()
}

/// Takes a token; a cache failure lets the request through (a limiter must not take the
/// API down with it).
async fn take(state: &AppState, key: &str, per_second: f64, burst: u32) -> Option<Response> {
    match state.cache.take_token(key, per_second, burst).await {
        Ok(Some(wait)) => Some(rate_limited(wait)),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(error = %error, "rate limiter unavailable; letting the request through");
            None
        }
    }
}

/// Resolves the credential, if any. `Ok(None)`: none was sent.
async fn credential(
    state: &AppState,
    headers: &HeaderMap,
    trusted: bool,
) -> Result<Option<Principal>, Error> {
    if trusted {
        if let Some(user) = header_text(headers, "x-user-id") {
            let user_id = UserId::from_str(user).map_err(|_| {
                Error::new(ErrorCode::Unauthorized, "bad X-User-Id from the gateway")
            })?;
            let role = header_text(headers, "x-user-role")
                .and_then(|role| Role::from_str(role).ok())
                .unwrap_or(Role::Member);
            // no (or an unreadable) scope header grants nothing
            let scopes = header_text(headers, "x-user-scopes")
                .and_then(|scopes| Scope::parse_list(scopes).ok())
                .unwrap_or_default();
            let api_key = header_text(headers, "x-user-credential") != Some("session");
            return state
                .auth
                .gateway_principal(user_id, role, scopes, api_key)
                .await
                .map(Some);
        }
    }
    if let Some(authorization) = header_text(headers, header::AUTHORIZATION.as_str()) {
        let Some((scheme, token)) = authorization.split_once(' ') else {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                "use `Authorization: Bearer <token or API key>`",
            ));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                "use `Authorization: Bearer <token or API key>`",
            ));
        }
        let token = token.trim();
        return if token.starts_with("vsk_") {
            state.auth.authenticate_api_key(token).await.map(Some)
        } else {
            state.auth.authenticate_token(token, false).await.map(Some)
        };
    }
    if let Some(token) = cookie(headers, ACCESS_COOKIE) {
        return state.auth.authenticate_token(token, true).await.map(Some);
    }
    Ok(None)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks what the principal may do with `method` on `path` (also used by the gateway's
/// verify endpoint for the original request).
pub fn authorize(
    principal: &Principal,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Error> {
    if path.starts_with(ADMIN_PREFIX) && !principal.is_admin() {
        return Err(Error::new(
            ErrorCode::Forbidden,
            if principal.role == Role::Admin {
                "this API key lacks the admin scope"
            } else {
                "administrators only"
            },
        ));
    }
    if is_safe(method) && !principal.scopes.contains(&Scope::Read) {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "this API key cannot read (it lacks the read scope)",
        ));
    }
    if !is_safe(method) && !principal.can_write() {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "this API key is read-only (it lacks the write scope)",
        ));
    }
    if matches!(
        principal.credential,
        vidsight_auth::Credential::Cookie { .. }
    ) && !is_safe(method)
    {
        check_csrf(headers)?;
    }
    Ok(())
}

/// Double-submit check: the `X-CSRF-Token` header must equal the `vs_csrf` cookie (a page
/// on another site can neither read the cookie nor set the header).
pub fn check_csrf(headers: &HeaderMap) -> Result<(), Error> {
    let cookie_value = cookie(headers, CSRF_COOKIE);
    let header_value = header_text(headers, CSRF_HEADER);
    match (cookie_value, header_value) {
        (Some(expected), Some(sent))
            if vidsight_auth::secrets::constant_time_eq(expected.as_bytes(), sent.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(Error::new(
            ErrorCode::CsrfFailed,
            "a signed-in browser request that changes something needs the X-CSRF-Token header (the value of the vs_csrf cookie)",
        )),
    }
}

pub async fn middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let trusted = from_gateway(&state, request.headers());
    let ip = client_ip(&request, trusted);
    let path = request.uri().path().to_owned();
    let limits = &state.settings.rate_limit;
    // the gateway's verify calls are not counted: the request they authorize is, once, when
    // it reaches an API process
    let counted = !(trusted && path == VERIFY_ROUTE);
    if request.method() != Method::OPTIONS && counted {
        let bucket = bucket_of(&ip);
        if let Some(limited) = take(
            &state,
            &format!("rl:ip:{bucket}"),
            limits.ip_per_second,
            limits.ip_burst,
        )
        .await
        {
            return limited;
        }
        if SENSITIVE_ROUTES.contains(&path.as_str()) && request.method() == Method::POST {
            if let Some(limited) = take(
                &state,
                &format!("rl:auth:{bucket}"),
                limits.auth_per_minute / 60.0,
                limits.auth_burst,
            )
            .await
            {
                return limited;
            }
        }
    }
    let context = RequestContext {
        ip: Some(ip),
        user_agent: header_text(request.headers(), header::USER_AGENT.as_str()).map(str::to_owned),
    };
    request.extensions_mut().insert(context);

    let public = is_public(&path);
    let principal = match credential(&state, request.headers(), trusted).await {
        Ok(principal) => principal,
        // a stale credential does not stop a public route (signing in again, say)
        Err(_) if public => None,
        Err(error) => return ApiError(error).into_response(),
    };
    let Some(principal) = principal else {
        if public || request.method() == Method::OPTIONS {
            return next.run(request).await;
        }
        let mut response = ApiError::new(
            ErrorCode::Unauthorized,
            "sign in: send `Authorization: Bearer <access token or API key>` (POST /api/v1/auth/login gives a token)",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vidsight\""),
        );
        return response;
    };
    // the verify route authorizes the request it is asked about (X-Original-Method/URI), not
    // its own GET; behind the gateway the request is authorized again here with the scopes
    // verify passed on (CSRF was checked by verify)
    if !public && path != VERIFY_ROUTE {
        if let Err(error) = authorize(&principal, request.method(), &path, request.headers()) {
            return ApiError(error).into_response();
        }
    }
    if !counted {
        request.extensions_mut().insert(principal);
        return next.run(request).await;
    }
    if let Some(limited) = take(
        &state,
        &format!("rl:user:{}", principal.user_id),
        limits.account_per_second,
        limits.account_burst,
    )
    .await
    {
        return limited;
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Security headers on every response; HSTS when the public URL is https.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let docs = request.uri().path().starts_with("/api/docs");
    let api = request.uri().path().starts_with("/api/") && !docs;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let csp = if api {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    } else if docs {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    };
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", csp);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "cross-origin-opener-policy", "same-origin");
    if state.settings.tls {
        set(
            headers,
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64s_bucket() {
        assert_eq!(bucket_of("192.0.2.7"), "192.0.2.7");
        assert_eq!(bucket_of("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(bucket_of("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_ne!(bucket_of("2001:db8:1:3::1"), bucket_of("2001:db8:1:2::1"));
        assert_eq!(bucket_of("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(bucket_of("unknown"), "unknown");
    }

    #[test]
    fn public_routes_are_exact() {
        assert!(is_public("/api/v1/auth/login"));
        assert!(is_public("/api/docs/"));
        assert!(!is_public("/api/v1/auth/login/extra"));
        assert!(!is_public("/api/docsx"));
        assert!(!is_public("/api/v1/videos"));
    }
}
