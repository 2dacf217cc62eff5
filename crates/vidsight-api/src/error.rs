//! The API's error answer: `{"error":{"code":"…","message":"…"}}` with the code's status.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vidsight_domain::{Error, ErrorCode};

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code (kebab-case); match on this, not on the message.
    pub code: ErrorCode,
    /// What went wrong and what to change, for people.
    pub message: String,
}

/// Wraps the domain error so handlers can use `?`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(Error::new(code, message))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status.is_server_error() {
            // internals are logged, never sent
            tracing::error!(code = %error.code, error = ?error, "request failed");
            match error.code {
                ErrorCode::StorageUnavailable
                | ErrorCode::DatabaseUnavailable
                | ErrorCode::QueueUnavailable => format!("{}; retry shortly", error.message),
                ErrorCode::Internal => "an internal error occurred; it has been logged".to_owned(),
                _ => error.message.clone(),
            }
        } else {
            error.message.clone()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: error.code,
                message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        // the code as a header too: a gateway (nginx auth_request) can pass it on
        response.headers_mut().insert(
            "x-error-code",
            HeaderValue::from_static(error.code.as_str()),
        );
        if let Some(seconds) = error.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
