//! REST API v1 (axum). Each resource module exposes its handlers; [`router`] merges them,
//! generates the OpenAPI 3.1 document from the handlers' annotations (utoipa), and wraps
//! everything in request ids, tracing, metrics and panic recovery.

mod account;
mod admin;
mod analyses;
mod ask;
pub mod auth;
mod auth_routes;
mod duplicates;
mod error;
mod health;
mod live;
mod range;
mod search;
pub mod tus;
mod upload;
mod videos;
mod vtt;
pub mod web;

pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;
use vidsight_blob::BlobStore;
use vidsight_cache::Cache;
use vidsight_domain::ErrorCode;
use vidsight_media::MediaTools;
use vidsight_store::{JobQueue, Store};
use vidsight_telemetry::names;
use vidsight_telemetry::PrometheusHandle;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    pub tools: MediaTools,
    /// Analysis providers (Gemini, OpenAI-compatible) and the accounts' token budgets.
    pub providers: Arc<vidsight_providers::engine::Engine>,
    pub token_budget: Arc<dyn vidsight_providers::engine::TokenBudget>,
    pub metrics: PrometheusHandle,
    pub auth: Arc<vidsight_auth::AuthService>,
    /// Each account's events, for `GET /api/v1/events`.
    pub event_log: Arc<dyn vidsight_cache::EventLog>,
    pub settings: Arc<ApiSettings>,
}

/// API tuning, from the configuration.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub max_upload_bytes: u64,
    /// Where uploads are spooled while they are hashed and validated.
    pub tmp_dir: PathBuf,
    /// Attempts given to each analysis job.
    pub max_attempts: u32,
    /// How long hot reads stay cached.
    pub cache_ttl: Duration,
    /// How long a resumable upload may stay unfinished.
    pub resumable_expiry: Duration,
    /// The gateway's shared secret; `None` trusts no identity headers.
    pub gateway_secret: Option<String>,
    /// The public URL is https: Secure cookies, HSTS.
    pub tls: bool,
    /// Serve the web app from this directory instead of the files built into the binary.
    pub web_dir: Option<PathBuf>,
    /// Origins allowed cross-origin (CORS); empty = closed.
    pub cors_origins: Vec<String>,
    pub rate_limit: vidsight_config::RateLimitConfig,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vidsight",
        version = "1.0.0",
        description = "Self-hosted video intelligence: upload videos, get back shots, keyframes, black and silent segments, loudness; with an analysis provider (Gemini, OpenAI-compatible), summaries, chapters, transcripts, labels and answers to questions, grounded on the video.\n\nErrors are always `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}`; match on `code`.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "videos", description = "Upload, list, play and delete videos; read their insights."),
        (name = "analyses", description = "Analysis runs of a video."),
        (name = "auth", description = "Accounts, sign-in, sessions, two-factor authentication, the gateway's verify endpoint."),
        (name = "account", description = "The signed-in account: profile, usage, API keys, data export and erasure."),
        (name = "admin", description = "User management and the audit log (administrators)."),
        (name = "operations", description = "Health, readiness and metrics.")
    ),
    // the events of `POST …/ask` are not a JSON response, so their shapes are named here
    components(schemas(ErrorBody, ErrorDetail, vidsight_domain::ErrorCode, ask::AskDone, ask::Citation)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(upload::upload_video, videos::list_videos))
        .routes(routes!(videos::get_video, videos::delete_video))
        .routes(routes!(videos::get_content))
        .routes(routes!(videos::get_insights))
        .routes(routes!(videos::get_insights_vtt))
        .routes(routes!(videos::get_insights_csv))
        .routes(routes!(videos::get_captions_vtt))
        .routes(routes!(videos::get_captions_srt))
        .routes(routes!(duplicates::get_duplicates))
        .routes(routes!(ask::ask))
        .routes(routes!(ask::providers))
        .routes(routes!(videos::get_keyframe))
        .routes(routes!(videos::get_storyboard_vtt))
        .routes(routes!(videos::get_storyboard_sheet))
        .routes(routes!(analyses::create_analysis))
        .routes(routes!(analyses::get_analysis))
        .routes(routes!(auth_routes::register))
        .routes(routes!(auth_routes::login))
        .routes(routes!(auth_routes::refresh))
        .routes(routes!(auth_routes::logout))
        .routes(routes!(auth_routes::logout_all))
        .routes(routes!(auth_routes::verify))
        .routes(routes!(auth_routes::jwks))
        .routes(routes!(auth_routes::change_password))
        .routes(routes!(auth_routes::mfa_enroll))
        .routes(routes!(auth_routes::mfa_confirm))
        .routes(routes!(auth_routes::mfa_disable))
        .routes(routes!(account::me, account::delete_me))
        .routes(routes!(live::events))
        .routes(routes!(search::search))
        .routes(routes!(tus::create, tus::options))
        .routes(routes!(tus::head, tus::patch, tus::terminate))
        .routes(routes!(account::usage))
        .routes(routes!(account::export))
        .routes(routes!(account::create_key, account::list_keys))
        .routes(routes!(account::revoke_key))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(
            admin::get_user,
            admin::update_user,
            admin::delete_user
        ))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::queue))
        .routes(routes!(admin::failed_jobs))
        .routes(routes!(admin::retry_job))
        .routes(routes!(admin::usage_by_account))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, openapi) = api_routes().split_for_parts();
    openapi
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let request_id = HeaderName::from_static("x-request-id");
    api.merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi))
        .fallback(
            |State(state): State<AppState>, method: axum::http::Method, uri: axum::http::Uri| async move {
                match web::serve(state.settings.web_dir.as_deref(), &method, &uri).await {
                    Some(page) => page,
                    None => ApiError::new(ErrorCode::NotFound, "no such route; see /api/docs")
                        .into_response(),
                }
            },
        )
        // uploads enforce upload.max_bytes themselves, while streaming
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
        .layer(cors(&state.settings.cors_origins))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::security_headers))
        .layer(axum::middleware::from_fn(track_metrics))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(ErrorCode::Internal, "internal error").into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// CORS for the configured origins (credentials allowed); none configured = no CORS
/// headers at all, so browsers keep other origins out.
fn cors(
    origins: &[String],
) -> tower::util::Either<tower_http::cors::CorsLayer, tower::layer::util::Identity> {
    use axum::http::{header, HeaderValue, Method};
    if origins.is_empty() {
        return tower::util::Either::Right(tower::layer::util::Identity::new());
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok())
        .collect();
    tower::util::Either::Left(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::RANGE,
                HeaderName::from_static(auth::CSRF_HEADER),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::LOCATION,
                header::CONTENT_RANGE,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token, or an API key (vsk_…)")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::ACCESS_COOKIE))),
        );
    }
}

async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!(names::HTTP_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Parses a video id from the path, or answers `invalid-id`.
pub(crate) fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> ApiResult<T> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidId,
            format!("`{text}` is not a {what} id (ids are UUIDs)"),
        )
    })
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    /// Clients generate code from the document (the web app does): operation ids must be
    /// unique, and a path parameter must be in its path (query structs declare `in: query`).
    #[test]
    fn the_openapi_document_is_sound_for_code_generators() {
        let document = serde_json::to_value(super::openapi()).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let Some(id) = operation.get("operationId").and_then(|id| id.as_str()) else {
                    continue;
                };
                assert!(
                    ids.insert(id.to_owned()),
                    "operationId `{id}` is used twice ({method} {path})"
                );
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] == "path" {
                        let name = parameter["name"].as_str().unwrap();
                        assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{method} {path}: `{name}` is declared in the path but is not in it"
                        );
                    }
                }
            }
        }
    }
}
