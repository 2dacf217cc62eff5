use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable, machine-readable error codes. Clients match on these strings; never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    // --- client errors: request shape
    BadRequest,
    InvalidMultipart,
    MissingFile,
    InvalidFilename,
    InvalidCursor,
    InvalidId,
    /// A field of a JSON body is missing or malformed (e.g. a weak password).
    InvalidInput,
    // --- identity and access
    /// No credentials, or credentials that are not valid (bad, expired, revoked token).
    Unauthorized,
    /// Wrong email or password (deliberately not saying which).
    InvalidCredentials,
    /// The account has two-factor authentication: send `totp` (a code or a recovery code).
    MfaRequired,
    /// The two-factor code is wrong or was already used.
    InvalidMfaCode,
    /// Signed in, but not allowed to do this (a member on an admin route, a read-only key).
    Forbidden,
    /// The account was disabled by an administrator.
    AccountDisabled,
    /// An account with this email exists.
    EmailTaken,
    /// Registration is by invitation: an administrator creates accounts.
    RegistrationClosed,
    /// A cookie-authenticated write without the matching `X-CSRF-Token` header.
    CsrfFailed,
    /// Too many requests; retry after the `Retry-After` seconds.
    RateLimited,
    /// The account's storage or monthly analysis minutes would go over its limit.
    /// (Spelled with an underscore: the contract clients were promised.)
    #[serde(rename = "quota_exceeded")]
    QuotaExceeded,
    // --- client errors: uploaded media
    EmptyFile,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotAVideo,
    TruncatedMedia,
    UndecodableMedia,
    // --- resources
    NotFound,
    VideoNotReady,
    AnalysisInProgress,
    RangeNotSatisfiable,
    /// A resumable upload's chunk does not start where the upload is (HEAD it first).
    UploadOffsetMismatch,
    /// A worker's claim on a job ended (another worker reclaimed it, or it was removed).
    LeaseLost,
    // --- analysis providers (Gemini, OpenAI-compatible); spelled with underscores like
    // `quota_exceeded`
    /// The provider's rate limit or quota is used up for now (retried with its delay).
    #[serde(rename = "provider_quota_exceeded")]
    ProviderQuotaExceeded,
    /// The provider failed or is overloaded (5xx, timeouts) after every retry.
    #[serde(rename = "provider_unavailable")]
    ProviderUnavailable,
    /// The provider refused the prompt or the answer (safety, blocklist…); the message says why.
    #[serde(rename = "provider_blocked")]
    ProviderBlocked,
    /// The answer was cut off (MAX_TOKENS) before it was complete.
    #[serde(rename = "provider_truncated")]
    ProviderTruncated,
    /// The answer is not the JSON that was asked for, or fails its schema.
    #[serde(rename = "provider_bad_output")]
    ProviderBadOutput,
    /// The provider rejected the API key (missing, invalid, not allowed).
    #[serde(rename = "provider_auth")]
    ProviderAuth,
    /// The provider does not know the model (retired, misspelled) or the file.
    #[serde(rename = "provider_not_found")]
    ProviderNotFound,
    // --- server side
    MediaToolFailed,
    MediaTimeout,
    StorageUnavailable,
    DatabaseUnavailable,
    QueueUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::InvalidMultipart => "invalid-multipart",
            ErrorCode::MissingFile => "missing-file",
            ErrorCode::InvalidFilename => "invalid-filename",
            ErrorCode::InvalidCursor => "invalid-cursor",
            ErrorCode::InvalidId => "invalid-id",
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid-credentials",
            ErrorCode::MfaRequired => "mfa-required",
            ErrorCode::InvalidMfaCode => "invalid-mfa-code",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AccountDisabled => "account-disabled",
            ErrorCode::EmailTaken => "email-taken",
            ErrorCode::RegistrationClosed => "registration-closed",
            ErrorCode::CsrfFailed => "csrf-failed",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::EmptyFile => "empty-file",
            ErrorCode::PayloadTooLarge => "payload-too-large",
            ErrorCode::UnsupportedMediaType => "unsupported-media-type",
            ErrorCode::NotAVideo => "not-a-video",
            ErrorCode::TruncatedMedia => "truncated-media",
            ErrorCode::UndecodableMedia => "undecodable-media",
            ErrorCode::NotFound => "not-found",
            ErrorCode::VideoNotReady => "video-not-ready",
            ErrorCode::AnalysisInProgress => "analysis-in-progress",
            ErrorCode::RangeNotSatisfiable => "range-not-satisfiable",
            ErrorCode::UploadOffsetMismatch => "upload-offset-mismatch",
            ErrorCode::LeaseLost => "lease-lost",
            ErrorCode::ProviderQuotaExceeded => "provider_quota_exceeded",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderBlocked => "provider_blocked",
            ErrorCode::ProviderTruncated => "provider_truncated",
            ErrorCode::ProviderBadOutput => "provider_bad_output",
            ErrorCode::ProviderAuth => "provider_auth",
            ErrorCode::ProviderNotFound => "provider_not_found",
            ErrorCode::MediaToolFailed => "media-tool-failed",
            ErrorCode::MediaTimeout => "media-timeout",
            ErrorCode::StorageUnavailable => "storage-unavailable",
            ErrorCode::DatabaseUnavailable => "database-unavailable",
            ErrorCode::QueueUnavailable => "queue-unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::InvalidMultipart
            | ErrorCode::MissingFile
            | ErrorCode::InvalidFilename
            | ErrorCode::InvalidCursor
            | ErrorCode::InvalidId
            | ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthorized
            | ErrorCode::InvalidCredentials
            | ErrorCode::MfaRequired
            | ErrorCode::InvalidMfaCode => 401,
            ErrorCode::Forbidden
            | ErrorCode::AccountDisabled
            | ErrorCode::RegistrationClosed
            | ErrorCode::CsrfFailed
            | ErrorCode::QuotaExceeded => 403,
            ErrorCode::EmailTaken => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::EmptyFile
            | ErrorCode::NotAVideo
            | ErrorCode::TruncatedMedia
            | ErrorCode::UndecodableMedia => 422,
            ErrorCode::NotFound => 404,
            ErrorCode::VideoNotReady
            | ErrorCode::AnalysisInProgress
            | ErrorCode::LeaseLost
            | ErrorCode::UploadOffsetMismatch => 409,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::ProviderQuotaExceeded => 429,
            ErrorCode::ProviderBlocked => 422,
            ErrorCode::ProviderUnavailable => 503,
            ErrorCode::ProviderTruncated
            | ErrorCode::ProviderBadOutput
            | ErrorCode::ProviderAuth
            | ErrorCode::ProviderNotFound => 502,
            ErrorCode::StorageUnavailable
            | ErrorCode::DatabaseUnavailable
            | ErrorCode::QueueUnavailable => 503,
            ErrorCode::MediaToolFailed | ErrorCode::MediaTimeout | ErrorCode::Internal => 500,
        }
    }

    /// Whether the fault lies with the input (it will fail the same way on retry).
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.http_status())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type: a stable code and a human message saying what to change.
///
/// Internal details (the `source`) are logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// For `rate-limited`: seconds until a retry may succeed (the `Retry-After` header).
    pub retry_after_seconds: Option<u64>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            retry_after_seconds: None,
        }
    }

    /// Sets the seconds a client should wait before retrying.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds.max(1));
        self
    }

    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Whether retrying the same work later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::StorageUnavailable
                | ErrorCode::DatabaseUnavailable
                | ErrorCode::QueueUnavailable
                | ErrorCode::MediaTimeout
                | ErrorCode::MediaToolFailed
                | ErrorCode::Internal
                | ErrorCode::ProviderUnavailable
                | ErrorCode::ProviderQuotaExceeded
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
