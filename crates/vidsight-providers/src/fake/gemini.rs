//! A local imitation of Google's Gemini API (Generative Language API, v1beta), faithful to
//! the wire facts collected in `shared/reference/gemini-api.md`.
//!
//! What it imitates:
//!
//! - **Auth**: the key in header `x-goog-api-key` or query `?key=`; any other key is
//!   `400 INVALID_ARGUMENT` with an `ErrorInfo` detail of reason `API_KEY_INVALID`, and no key
//!   at all is `403 PERMISSION_DENIED` ("Method doesn't allow unregistered callers"), as
//!   Google's front end answers. Upload chunks are authorised by their `upload_id` alone.
//! - **Files API resumable upload** (`POST /upload/v1beta/files`): `start`, then `upload` /
//!   `upload, finalize` chunks at `X-Goog-Upload-Offset`, `query`, `cancel`; non-final chunks
//!   in multiples of the reported granularity; only sizes and a running SHA-256 are kept,
//!   never the bytes.
//! - **File resources** (`GET/DELETE /v1beta/files/<id>`, `GET /v1beta/files`): PROCESSING for a
//!   configurable number of polls, then ACTIVE (or FAILED with `error`); missing or deleted
//!   files are `403 PERMISSION_DENIED`.
//! - **`generateContent`, `streamGenerateContent` (`?alt=sse` or a JSON array) and
//!   `countTokens`** under `/v1beta/models/<model>:<method>`, with the service's request
//!   validation (file states, request size, schema options, `videoMetadata`) and its token
//!   accounting in `usageMetadata`.
//! - **Errors** as `{"error":{"code","message","status","details"?}}` with the RPC status
//!   names; `RetryInfo` and `QuotaFailure` details on quota errors.
//!
//! Answers come from a FIFO of scripted [`Reply`] values, then from a responder closure.
//! Faults are injected with [`FakeGemini::break_next_upload_chunk`],
//! [`FakeGemini::fail_processing`] and [`FakeGemini::push_error`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    event_stream, header_text, json_response, lock, query_param, random_id, split_for_stream,
    text_tokens, Bound, Recorded, Recorder, ServerHandle,
};

/// The one API key the fake accepts.
pub const API_KEY: &str = "fake-gemini-key-0123456789";

/// The chunk granularity the real service reports in `x-goog-upload-chunk-granularity` (8 MiB).
pub const DEFAULT_GRANULARITY: usize = 8 * 1024 * 1024;

/// The largest `generateContent` request body accepted (20 MiB, the service's
/// "Request payload size exceeds the limit: 20971520 bytes.").
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;

/// The models known until [`FakeGemini::set_models`] says otherwise.
pub const DEFAULT_MODELS: &[&str] = &["gemini-3.5-flash", "gemini-3.5-flash-lite"];

/// The Files API's per-file limit (2 GB).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Files are kept 48 hours.
const FILE_LIFETIME: time::Duration = time::Duration::hours(48);
/// Video tokens per sampled frame at default resolution, and at `MEDIA_RESOLUTION_LOW`.
const TOKENS_PER_FRAME: u64 = 258;
const TOKENS_PER_FRAME_LOW: u64 = 66;
/// Audio tokens per second (the audio track of a video, or an audio file).
const AUDIO_TOKENS_PER_SECOND: f64 = 32.0;
/// Tokens for one image, or one non-media document part.
const TOKENS_PER_IMAGE: u64 = 258;
/// Clips shorter than this give no VIDEO tokens at all (the model then invents content).
const MIN_VIDEO_SECONDS: f64 = 0.5;
/// `videoMetadata.fps` must lie in (0, MAX_FPS].
const MAX_FPS: f64 = 24.0;
/// How many text deltas a streamed answer is split into.
const STREAM_PIECES: usize = 3;
/// The largest JSON body accepted by an upload `start` (the metadata of one file).
const MAX_START_BODY_BYTES: usize = 1024 * 1024;
/// The largest body axum reads for the JSON routes; bigger `generateContent` requests are
/// still read (and refused with the service's own message) up to this size.
const MAX_JSON_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The fields a part may carry its data in; exactly one must be set (the proto's `data` oneof).
const PART_DATA_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

/// Top-level fields of a `GenerateContentRequest`.
const REQUEST_FIELDS: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
];

/// Fields of a `GenerationConfig`.
const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// The values `generationConfig.mediaResolution` accepts.
const MEDIA_RESOLUTIONS: &[&str] = &[
    "MEDIA_RESOLUTION_UNSPECIFIED",
    "MEDIA_RESOLUTION_LOW",
    "MEDIA_RESOLUTION_MEDIUM",
    "MEDIA_RESOLUTION_HIGH",
];

/// Finish reasons under which the service withholds the candidate's content.
const CONTENT_WITHHELD_REASONS: &[&str] = &[
    "SAFETY",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
];

/// The first sentence of the service's quota error.
const QUOTA_MESSAGE: &str = "You exceeded your current quota, please check your plan and \
     billing details. For more information on this error, head to: \
     https://ai.google.dev/gemini-api/docs/rate-limits.";

// ---------------------------------------------------------------------------------------------
// Scripted answers
// ---------------------------------------------------------------------------------------------

/// An error answer in Google's format: `{"error":{"code","message","status","details"?}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    /// The HTTP status (`429`).
    pub status: u16,
    /// The RPC status name (`"RESOURCE_EXHAUSTED"`).
    pub rpc_status: String,
    /// The message; with `retry_delay` the service's "Please retry in 2.0s." is appended.
    pub message: String,
    /// A protobuf duration (`"2s"`): adds `QuotaFailure`, `Help` and
    /// `RetryInfo{retryDelay}` details, as the service's 429 carries.
    pub retry_delay: Option<String>,
}

impl ErrorReply {
    /// An error with the RPC status that goes with `status` (400 → INVALID_ARGUMENT, ...).
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            rpc_status: rpc_status_for(status).to_owned(),
            message: message.into(),
            retry_delay: None,
        }
    }

    /// `503 UNAVAILABLE` "The model is overloaded. Please try again later."
    pub fn unavailable() -> Self {
        Self::new(503, "The model is overloaded. Please try again later.")
    }

    /// `429 RESOURCE_EXHAUSTED` with `RetryInfo{retryDelay: retry_delay}` (e.g. `"2s"`).
    pub fn quota(retry_delay: &str) -> Self {
        Self {
            retry_delay: Some(retry_delay.to_owned()),
            ..Self::new(429, QUOTA_MESSAGE)
        }
    }

    /// `500 INTERNAL`, frequent with video.
    pub fn internal() -> Self {
        Self::new(
            500,
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        )
    }

    /// `504 DEADLINE_EXCEEDED`.
    pub fn deadline_exceeded() -> Self {
        Self::new(504, "Deadline expired before operation could complete.")
    }

    /// The wire error; `model` goes into the `QuotaFailure` dimensions when known.
    fn to_google(&self, model: Option<&str>) -> GoogleError {
        let mut message = self.message.clone();
        let mut details = Vec::new();
        if let Some(delay) = &self.retry_delay {
            let seconds = parse_duration(delay)
                .map(|seconds| format!("{seconds:?}s"))
                .unwrap_or_else(|| delay.clone());
            message.push_str(&format!("\nPlease retry in {seconds}."));
            let mut dimensions = json!({"location": "global"});
            if let Some(model) = model {
                dimensions["model"] = json!(model);
            }
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": dimensions,
                    "quotaValue": "10"
                }]
            }));
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
                }]
            }));
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": delay
            }));
        }
        GoogleError {
            status: StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            rpc_status: self.rpc_status.clone(),
            message,
            details,
        }
    }
}

/// One scripted answer to `generateContent` / `streamGenerateContent`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A candidate with this text. Under `SAFETY`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`
    /// the candidate has no content (the text is ignored) and carries `safetyRatings`.
    Text {
        text: String,
        /// `STOP`, `MAX_TOKENS`, `SAFETY`, `RECITATION`, `OTHER`, ...
        finish_reason: String,
    },
    /// A blocked prompt: 200 with only `promptFeedback.blockReason` and `usageMetadata`,
    /// no `candidates`.
    Blocked {
        /// `SAFETY`, `OTHER`, `BLOCKLIST`, `PROHIBITED_CONTENT`, ...
        reason: String,
    },
    /// An HTTP error.
    Error(ErrorReply),
    /// On the streaming route: the partial text as deltas, then an `{"error":...}` event
    /// and the end of the stream, as when the service fails mid-answer. On
    /// `generateContent` it is the plain HTTP error.
    BrokenStream { partial: String, error: ErrorReply },
}

impl Reply {
    /// A complete answer (`finishReason: STOP`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::finished(text, "STOP")
    }

    /// An answer with any finish reason.
    pub fn finished(text: impl Into<String>, finish_reason: &str) -> Self {
        Self::Text {
            text: text.into(),
            finish_reason: finish_reason.to_owned(),
        }
    }

    /// An answer cut at the output limit (`MAX_TOKENS`): possibly broken JSON.
    pub fn truncated(partial: impl Into<String>) -> Self {
        Self::finished(partial, "MAX_TOKENS")
    }

    /// A candidate stopped by the safety filters (`finishReason: SAFETY`, no content).
    pub fn safety() -> Self {
        Self::finished("", "SAFETY")
    }

    /// A blocked prompt (`promptFeedback.blockReason`).
    pub fn blocked(reason: &str) -> Self {
        Self::Blocked {
            reason: reason.to_owned(),
        }
    }

    /// `503 UNAVAILABLE` "The model is overloaded. Please try again later."
    pub fn unavailable() -> Self {
        Self::Error(ErrorReply::unavailable())
    }

    /// `429 RESOURCE_EXHAUSTED` with `RetryInfo{retryDelay}` (e.g. `"2s"`).
    pub fn quota(retry_delay: &str) -> Self {
        Self::Error(ErrorReply::quota(retry_delay))
    }

    /// `500 INTERNAL`.
    pub fn internal() -> Self {
        Self::Error(ErrorReply::internal())
    }

    /// Any error, its RPC status derived from the HTTP status.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::Error(ErrorReply::new(status, message))
    }
}

/// The routes other than `generateContent` into which [`FakeGemini::push_error`] injects
/// errors (`generateContent` and `streamGenerateContent` take [`Reply::Error`] instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /upload/v1beta/files` with `X-Goog-Upload-Command: start`.
    UploadStart,
    /// An `upload` / `upload, finalize` chunk (nothing of it is kept).
    UploadChunk,
    /// `GET /v1beta/files/<id>`.
    GetFile,
    /// `GET /v1beta/files`.
    ListFiles,
    /// `DELETE /v1beta/files/<id>`.
    DeleteFile,
    /// `:countTokens`.
    CountTokens,
}

/// The processing state of an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Processing,
    Active,
    Failed,
}

impl FileState {
    /// The wire name (`"ACTIVE"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Active => "ACTIVE",
            Self::Failed => "FAILED",
        }
    }
}

/// What a test may check about an uploaded file: the bytes arrived intact, it was deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    /// `"files/<id>"`.
    pub name: String,
    pub display_name: Option<String>,
    pub mime_type: String,
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the received bytes.
    pub sha256_hex: String,
    pub state: FileState,
    /// Deleted through `DELETE /v1beta/files/<id>`.
    pub deleted: bool,
    /// Expired through [`FakeGemini::expire_file`].
    pub expired: bool,
    /// How many times `GET /v1beta/files/<id>` was answered for it.
    pub polls: u32,
}

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// A local Gemini API. Start it with [`FakeGemini::start`] inside a tokio runtime; it stops
/// when dropped.
pub struct FakeGemini {
    shared: Arc<Shared>,
    _server: ServerHandle,
}

impl std::fmt::Debug for FakeGemini {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FakeGemini")
            .field("base_url", &self.shared.origin)
            .finish_non_exhaustive()
    }
}

impl FakeGemini {
    /// The one API key the fake accepts (same as [`API_KEY`]).
    pub const API_KEY: &'static str = API_KEY;

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> Self {
        let bound = Bound::local().await;
        let shared = Arc::new(Shared {
            origin: bound.origin.clone(),
            recorder: Recorder::default(),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/upload/v1beta/files", post(upload))
            .route("/v1beta/files", get(list_files))
            .route("/v1beta/files/{id}", get(get_file).delete(delete_file))
            .route("/v1beta/models", get(list_models))
            .route("/v1beta/models/{*rest}", get(get_model).post(call_model))
            .fallback(unknown_route)
            .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
            .with_state(Arc::clone(&shared));
        let server = bound.serve(router);
        Self {
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: the stand-in for
    /// `https://generativelanguage.googleapis.com`.
    pub fn base_url(&self) -> String {
        self.shared.origin.clone()
    }

    /// Every request received so far, in order of completion.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorder.all()
    }

    /// The requests whose path contains `path_contains` (e.g. `":generateContent"`).
    pub fn requests_to(&self, path_contains: &str) -> Vec<Recorded> {
        self.shared.recorder.to_path(path_contains)
    }

    /// Forgets the recorded requests (files, uploads and settings stay).
    pub fn reset_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Queues an answer for the next `generateContent` / `streamGenerateContent` that passes
    /// validation (`countTokens` never consumes one).
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.shared.inner).replies.push_back(reply);
    }

    /// How many queued replies are still unused.
    pub fn pending_replies(&self) -> usize {
        lock(&self.shared.inner).replies.len()
    }

    /// Answers from `responder` (given the request body) once the queue is empty. The
    /// default responder answers `Reply::text("{}")`.
    pub fn set_responder(&self, responder: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        lock(&self.shared.inner).responder = Arc::new(responder);
    }

    /// Queues an error for the next request to `endpoint` that passes authentication.
    pub fn push_error(&self, endpoint: Endpoint, error: ErrorReply) {
        lock(&self.shared.inner)
            .injected
            .entry(endpoint)
            .or_default()
            .push_back(error);
    }

    /// The models that exist (`"gemini-3.5-flash"` or `"models/gemini-3.5-flash"`); any
    /// other is `404 NOT_FOUND`. Default: [`DEFAULT_MODELS`].
    pub fn set_models(&self, names: &[&str]) {
        lock(&self.shared.inner).models = names
            .iter()
            .map(|name| bare_model_name(name).to_owned())
            .collect();
    }

    /// How many `GET /v1beta/files/<id>` answers of each newly uploaded file say PROCESSING
    /// before it is ACTIVE (default 1; 0 makes uploads ACTIVE at once).
    pub fn set_processing_polls(&self, polls: u32) {
        lock(&self.shared.inner).processing_polls = polls;
    }

    /// Makes the next uploaded file end FAILED, its `error.message` being `message`.
    pub fn fail_processing(&self, message: &str) {
        lock(&self.shared.inner).fail_next_file = Some(message.to_owned());
    }

    /// The duration of every video (uploaded or inline) and audio file, in seconds: it sets
    /// `videoMetadata.videoDuration` and the token accounting (default 10).
    pub fn set_video_seconds(&self, seconds: f64) {
        assert!(
            seconds.is_finite() && seconds >= 0.0,
            "video seconds must be finite and not negative"
        );
        lock(&self.shared.inner).video_seconds = seconds;
    }

    /// The chunk granularity reported at `start` and enforced on non-final chunks, for
    /// uploads started from now on (default [`DEFAULT_GRANULARITY`], 8 MiB). Tests use a
    /// small one to exercise several chunks quickly.
    pub fn set_granularity(&self, bytes: usize) {
        assert!(
            bytes > 0,
            "the upload granularity must be at least one byte"
        );
        lock(&self.shared.inner).granularity = u64::try_from(bytes).unwrap_or(u64::MAX);
    }

    /// The `thoughtsTokenCount` of each answer (default 0, then omitted as the service does).
    pub fn set_thoughts_tokens(&self, tokens: u64) {
        lock(&self.shared.inner).thoughts_tokens = tokens;
    }

    /// Breaks the next upload chunk as a dropped connection would: only a prefix of it is
    /// kept (the largest multiple of the granularity shorter than the chunk, possibly 0)
    /// and the answer is a 503 without any `x-goog-upload-status` header, so the client
    /// must send `query` and resume from `x-goog-upload-size-received`.
    pub fn break_next_upload_chunk(&self) {
        lock(&self.shared.inner).break_next_chunk = true;
    }

    /// Every file created by a finished upload, in order, deleted ones included.
    pub fn uploaded_files(&self) -> Vec<FileSummary> {
        lock(&self.shared.inner)
            .files
            .iter()
            .map(StoredFile::summary)
            .collect()
    }

    /// Makes a file vanish as if its 48 hours had passed: later use is `403`.
    /// `name` is `"files/<id>"` or `"<id>"`; returns whether such a file existed.
    pub fn expire_file(&self, name: &str) -> bool {
        let id = name.strip_prefix("files/").unwrap_or(name);
        let mut inner = lock(&self.shared.inner);
        match inner.files.iter_mut().find(|file| file.id == id) {
            Some(file) => {
                file.expired = true;
                true
            }
            None => false,
        }
    }
}

/// What the handlers share.
struct Shared {
    origin: String,
    recorder: Recorder,
    inner: Mutex<Inner>,
}

/// The fake's mutable state: settings, scripted answers, uploads and files.
struct Inner {
    models: Vec<String>,
    processing_polls: u32,
    video_seconds: f64,
    granularity: u64,
    thoughts_tokens: u64,
    replies: VecDeque<Reply>,
    responder: Responder,
    injected: HashMap<Endpoint, VecDeque<ErrorReply>>,
    break_next_chunk: bool,
    fail_next_file: Option<String>,
    uploads: HashMap<String, UploadSession>,
    files: Vec<StoredFile>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            models: DEFAULT_MODELS
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            processing_polls: 1,
            video_seconds: 10.0,
            granularity: DEFAULT_GRANULARITY as u64,
            thoughts_tokens: 0,
            replies: VecDeque::new(),
            responder: Arc::new(|_| Reply::text("{}")),
            injected: HashMap::new(),
            break_next_chunk: false,
            fail_next_file: None,
            uploads: HashMap::new(),
            files: Vec::new(),
        }
    }
}

impl Inner {
    /// Answers with the next error injected for `endpoint`, if any.
    fn take_injected(&mut self, endpoint: Endpoint) -> Result<(), GoogleError> {
        match self
            .injected
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error.to_google(None)),
            None => Ok(()),
        }
    }

    /// A file that can still be used (neither deleted nor expired).
    fn live_file(&self, id: &str) -> Option<&StoredFile> {
        self.files
            .iter()
            .find(|file| file.id == id && file.is_live())
    }
}

/// One resumable upload in progress (or finished, or cancelled).
struct UploadSession {
    display_name: Option<String>,
    mime_type: String,
    /// `X-Goog-Upload-Header-Content-Length`.
    declared: u64,
    /// Bytes kept so far: the next chunk must start here.
    received: u64,
    /// SHA-256 of the bytes kept so far.
    hasher: Sha256,
    granularity: u64,
    phase: UploadPhase,
}

enum UploadPhase {
    Active,
    Final { file_id: String },
    Cancelled,
}

/// A file created by a finished upload.
struct StoredFile {
    id: String,
    display_name: Option<String>,
    mime_type: String,
    size: u64,
    sha256: Vec<u8>,
    create_time: OffsetDateTime,
    update_time: OffsetDateTime,
    /// How many more polls answer PROCESSING.
    processing_polls_left: u32,
    /// Set when processing ends FAILED.
    failure: Option<String>,
    duration_seconds: f64,
    deleted: bool,
    expired: bool,
    polls: u32,
}

impl StoredFile {
    fn state(&self) -> FileState {
        if self.processing_polls_left > 0 {
            FileState::Processing
        } else if self.failure.is_some() {
            FileState::Failed
        } else {
            FileState::Active
        }
    }

    fn is_live(&self) -> bool {
        !self.deleted && !self.expired
    }

    /// Counts one `GET`: the answer already given showed the state before it.
    fn count_poll(&mut self) {
        self.polls += 1;
        if self.processing_polls_left > 0 {
            self.processing_polls_left -= 1;
            if self.processing_polls_left == 0 {
                self.update_time = OffsetDateTime::now_utc();
            }
        }
    }

    /// The `File` resource, camelCase, as the service returns it.
    fn resource(&self, origin: &str) -> Value {
        let state = self.state();
        let mut file = Map::new();
        file.insert("name".into(), json!(format!("files/{}", self.id)));
        if let Some(display_name) = &self.display_name {
            file.insert("displayName".into(), json!(display_name));
        }
        file.insert("mimeType".into(), json!(self.mime_type));
        file.insert("sizeBytes".into(), json!(self.size.to_string()));
        file.insert("createTime".into(), json!(rfc3339(self.create_time)));
        file.insert("updateTime".into(), json!(rfc3339(self.update_time)));
        file.insert(
            "expirationTime".into(),
            json!(rfc3339(self.create_time + FILE_LIFETIME)),
        );
        // The service's sha256Hash is the base64 of the lower-case hex digest (text), not
        // of the raw 32 bytes: googleapis/js-genai#381 shows one decoding to hex.
        let hex_digest = hex::encode(&self.sha256);
        file.insert(
            "sha256Hash".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(hex_digest)),
        );
        file.insert(
            "uri".into(),
            json!(format!("{origin}/v1beta/files/{}", self.id)),
        );
        file.insert("state".into(), json!(state.as_str()));
        file.insert("source".into(), json!("UPLOADED"));
        if let (FileState::Failed, Some(message)) = (state, &self.failure) {
            // A google.rpc.Status: its code is a google.rpc.Code (3 = INVALID_ARGUMENT),
            // not an HTTP status.
            file.insert("error".into(), json!({"code": 3, "message": message}));
        }
        if state == FileState::Active && self.mime_type.starts_with("video/") {
            file.insert(
                "videoMetadata".into(),
                json!({"videoDuration": duration_text(self.duration_seconds)}),
            );
        }
        Value::Object(file)
    }

    fn summary(&self) -> FileSummary {
        FileSummary {
            name: format!("files/{}", self.id),
            display_name: self.display_name.clone(),
            mime_type: self.mime_type.clone(),
            size_bytes: self.size,
            sha256_hex: hex::encode(&self.sha256),
            state: self.state(),
            deleted: self.deleted,
            expired: self.expired,
            polls: self.polls,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error as the service sends it.
#[derive(Debug)]
struct GoogleError {
    status: StatusCode,
    rpc_status: String,
    message: String,
    details: Vec<Value>,
}

impl GoogleError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ErrorReply::new(status, message).to_google(None)
    }

    /// `400 INVALID_ARGUMENT`.
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// `403 PERMISSION_DENIED` for a file that does not exist (any more) or is someone else's.
    fn no_such_file(id: &str) -> Self {
        Self::new(
            403,
            format!("You do not have permission to access the File {id} or it may not exist."),
        )
    }

    /// `404 NOT_FOUND` for a model that does not exist or lacks the method.
    fn unknown_model(model: &str, method: &str) -> Self {
        Self::new(
            404,
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        )
    }

    fn body(&self) -> Value {
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "status": self.rpc_status,
        });
        // The service omits `details` when there are none.
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// The RPC status Google pairs with an HTTP status.
fn rpc_status_for(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        other if (400..500).contains(&other) => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// Where the request's API key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySource {
    Header,
    Query,
}

/// Checks the API key: header `x-goog-api-key` first, else query `key`.
fn authorize(headers: &HeaderMap, uri: &Uri) -> Result<KeySource, GoogleError> {
    let (key, source) = match header_text(headers, "x-goog-api-key") {
        Some(key) => (key.to_owned(), KeySource::Header),
        None => match query_param(uri.query().unwrap_or_default(), "key") {
            Some(key) => (key, KeySource::Query),
            None => {
                return Err(GoogleError::new(
                    403,
                    "Method doesn't allow unregistered callers (callers without established \
                     identity). Please use API Key or other form of API consumer identity to \
                     call this API.",
                ))
            }
        },
    };
    if key == API_KEY {
        return Ok(source);
    }
    let mut error = GoogleError::invalid("API key not valid. Please pass a valid API key.");
    error.details.push(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"}
    }));
    Err(error)
}

// ---------------------------------------------------------------------------------------------
// Routes: uploads
// ---------------------------------------------------------------------------------------------

/// `POST /upload/v1beta/files`: a `start` without `upload_id`, otherwise a command on the
/// session `upload_id` names.
async fn upload(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let record = Recorded::from_parts(&method, &uri, &headers);
    match query_param(uri.query().unwrap_or_default(), "upload_id") {
        Some(upload_id) => {
            let (response, body_len) = shared.upload_command(&upload_id, &headers, body).await;
            shared.recorder.push(Recorded { body_len, ..record });
            response
        }
        None => {
            let bytes = match axum::body::to_bytes(body, MAX_START_BODY_BYTES).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    shared.recorder.push(record);
                    return GoogleError::invalid("The upload metadata is too large.")
                        .into_response();
                }
            };
            shared.recorder.push(record.with_body(&bytes));
            shared
                .start_upload(&uri, &headers, &bytes)
                .unwrap_or_else(IntoResponse::into_response)
        }
    }
}

/// What to do with an upload command once its headers are checked.
enum ChunkPlan {
    /// Answer this (after draining the body).
    Answer(Response),
    /// Receive the body as the chunk described.
    Receive(ChunkReceipt),
}

/// The state an upload chunk starts from.
struct ChunkReceipt {
    offset: u64,
    hasher: Sha256,
    granularity: u64,
    finalize: bool,
    broken: bool,
}

impl Shared {
    /// Step 1 of the protocol: opens a session and returns its upload URL.
    fn start_upload(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, GoogleError> {
        let key_source = authorize(headers, uri)?;
        let mut inner = lock(&self.inner);
        inner.take_injected(Endpoint::UploadStart)?;

        let protocol = header_text(headers, "x-goog-upload-protocol").unwrap_or_default();
        if !protocol.eq_ignore_ascii_case("resumable") {
            return Err(GoogleError::invalid(format!(
                "X-Goog-Upload-Protocol must be \"resumable\", not {protocol:?}."
            )));
        }
        let command = header_text(headers, "x-goog-upload-command").unwrap_or_default();
        if !command.trim().eq_ignore_ascii_case("start") {
            return Err(GoogleError::invalid(format!(
                "A new upload needs X-Goog-Upload-Command: start, not {command:?}."
            )));
        }
        let declared = header_text(headers, "x-goog-upload-header-content-length")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                GoogleError::invalid(
                    "X-Goog-Upload-Header-Content-Length must be the file's size in bytes.",
                )
            })?;
        if declared > MAX_FILE_BYTES {
            return Err(GoogleError::invalid(format!(
                "The file has {declared} bytes; the Files API takes at most {MAX_FILE_BYTES}."
            )));
        }
        let mime_type = header_text(headers, "x-goog-upload-header-content-type")
            .map(str::trim)
            .filter(|value| value.contains('/'))
            .ok_or_else(|| {
                GoogleError::invalid(
                    "X-Goog-Upload-Header-Content-Type must be the file's MIME type.",
                )
            })?
            .to_owned();
        let display_name = start_display_name(body)?;

        let upload_id = random_id(32);
        let granularity = inner.granularity;
        inner.uploads.insert(
            upload_id.clone(),
            UploadSession {
                display_name,
                mime_type,
                declared,
                received: 0,
                hasher: Sha256::new(),
                granularity,
                phase: UploadPhase::Active,
            },
        );
        drop(inner);

        // A key given in the query is echoed into the upload URL, as the service does.
        let key = match key_source {
            KeySource::Query => format!("key={API_KEY}&"),
            KeySource::Header => String::new(),
        };
        let upload_url = format!(
            "{}/upload/v1beta/files?{key}upload_id={upload_id}&upload_protocol=resumable",
            self.origin
        );
        Ok(upload_response(
            "active",
            &[
                ("x-goog-upload-url", upload_url),
                ("x-goog-upload-chunk-granularity", granularity.to_string()),
                ("x-guploader-uploadid", upload_id),
            ],
            None,
        ))
    }

    /// Step 2: an `upload` / `upload, finalize` / `finalize` / `query` / `cancel` on a
    /// session. Returns the answer and the number of body bytes received.
    async fn upload_command(
        &self,
        upload_id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> (Response, usize) {
        let plan = self
            .plan_chunk(upload_id, headers)
            .unwrap_or_else(|error| ChunkPlan::Answer(error.into_response()));
        match plan {
            ChunkPlan::Answer(response) => {
                // Read the body anyway, so the client sees the answer rather than a reset.
                let mut digest = ChunkDigest::new(Sha256::new(), u64::MAX);
                let _ = receive(body, &mut digest).await;
                (response, to_usize(digest.len))
            }
            ChunkPlan::Receive(receipt) => {
                let mut digest = ChunkDigest::new(receipt.hasher.clone(), receipt.granularity);
                let complete = receive(body, &mut digest).await;
                let body_len = to_usize(digest.len);
                let response = self
                    .commit_chunk(upload_id, &receipt, digest, complete)
                    .unwrap_or_else(IntoResponse::into_response);
                (response, body_len)
            }
        }
    }

    /// Checks an upload command against its session before any body is read.
    fn plan_chunk(&self, upload_id: &str, headers: &HeaderMap) -> Result<ChunkPlan, GoogleError> {
        let commands: Vec<String> = header_text(headers, "x-goog-upload-command")
            .unwrap_or_default()
            .split(',')
            .map(|command| command.trim().to_ascii_lowercase())
            .filter(|command| !command.is_empty())
            .collect();
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let Some(session) = inner.uploads.get_mut(upload_id) else {
            return Err(GoogleError::new(
                404,
                format!("No upload session {upload_id}."),
            ));
        };
        if matches!(session.phase, UploadPhase::Cancelled) {
            return Err(GoogleError::new(
                404,
                format!("The upload session {upload_id} was cancelled."),
            ));
        }

        match commands.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["query"] => {
                let response = match &session.phase {
                    UploadPhase::Final { file_id } => {
                        let file = inner.files.iter().find(|file| &file.id == file_id);
                        let body = file.map(|file| json!({"file": file.resource(&self.origin)}));
                        upload_response(
                            "final",
                            &[("x-goog-upload-size-received", session.received.to_string())],
                            body,
                        )
                    }
                    _ => upload_response(
                        "active",
                        &[("x-goog-upload-size-received", session.received.to_string())],
                        None,
                    ),
                };
                return Ok(ChunkPlan::Answer(response));
            }
            ["cancel"] => {
                if matches!(session.phase, UploadPhase::Final { .. }) {
                    return Err(GoogleError::invalid("The upload is already finalized."));
                }
                session.phase = UploadPhase::Cancelled;
                return Ok(ChunkPlan::Answer(upload_response("cancelled", &[], None)));
            }
            ["upload"] | ["upload", "finalize"] | ["finalize", "upload"] | ["finalize"] => {}
            _ => {
                return Err(GoogleError::invalid(format!(
                    "X-Goog-Upload-Command must be upload, \"upload, finalize\", finalize, \
                     query or cancel; got {commands:?}."
                )))
            }
        }
        let uploads_bytes = commands.iter().any(|command| command == "upload");
        let finalize = commands.iter().any(|command| command == "finalize");

        if let Some(error) = inner
            .injected
            .get_mut(&Endpoint::UploadChunk)
            .and_then(VecDeque::pop_front)
        {
            return Err(error.to_google(None));
        }
        if matches!(session.phase, UploadPhase::Final { .. }) {
            return Err(GoogleError::invalid("The upload is already finalized."));
        }
        let offset = match header_text(headers, "x-goog-upload-offset") {
            Some(value) => value.trim().parse::<u64>().map_err(|_| {
                GoogleError::invalid(format!(
                    "X-Goog-Upload-Offset must be a byte count, not {value:?}."
                ))
            })?,
            // A bare `finalize` (no bytes) may leave the offset out.
            None if !uploads_bytes => session.received,
            None => {
                return Err(GoogleError::invalid(
                    "An upload chunk needs X-Goog-Upload-Offset.",
                ))
            }
        };
        if offset != session.received {
            return Err(GoogleError::invalid(format!(
                "X-Goog-Upload-Offset is {offset} but the server has received {} bytes of \
                 this upload; send X-Goog-Upload-Command: query and resume from \
                 X-Goog-Upload-Size-Received.",
                session.received
            )));
        }
        let broken = uploads_bytes && std::mem::take(&mut inner.break_next_chunk);
        Ok(ChunkPlan::Receive(ChunkReceipt {
            offset,
            hasher: session.hasher.clone(),
            granularity: session.granularity,
            finalize,
            broken,
        }))
    }

    /// Keeps a received chunk (or the part of it a fault allows) and answers.
    fn commit_chunk(
        &self,
        upload_id: &str,
        receipt: &ChunkReceipt,
        digest: ChunkDigest,
        complete: bool,
    ) -> Result<Response, GoogleError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let Some(session) = inner.uploads.get_mut(upload_id) else {
            return Err(GoogleError::new(
                404,
                format!("No upload session {upload_id}."),
            ));
        };
        if !matches!(session.phase, UploadPhase::Active) || session.received != receipt.offset {
            return Err(GoogleError::new(
                409,
                "Another request changed this upload while the chunk was being received.",
            ));
        }
        if !complete {
            // The client went away mid-body: keep whole granules, as the service does.
            let (kept, hasher) = digest.whole_granules();
            if receipt.offset + kept <= session.declared {
                session.received += kept;
                session.hasher = hasher;
            }
            return Err(GoogleError::invalid("The request body ended early."));
        }
        if receipt.broken {
            let (kept, hasher) = digest.broken_prefix();
            if receipt.offset + kept <= session.declared {
                session.received += kept;
                session.hasher = hasher;
            }
            // As a broken connection: no x-goog-upload-status header.
            return Err(GoogleError::new(
                503,
                "The service is currently unavailable.",
            ));
        }

        let length = digest.len;
        let total = receipt.offset + length;
        if !receipt.finalize {
            if !length.is_multiple_of(receipt.granularity) {
                return Err(GoogleError::invalid(format!(
                    "A chunk that does not finalize the upload must be a multiple of {} bytes \
                     (x-goog-upload-chunk-granularity); this one has {length} bytes.",
                    receipt.granularity
                )));
            }
            if total > session.declared {
                return Err(GoogleError::invalid(format!(
                    "The upload declared {} bytes (X-Goog-Upload-Header-Content-Length) but \
                     {total} were sent.",
                    session.declared
                )));
            }
            session.received = total;
            session.hasher = digest.hasher;
            return Ok(upload_response("active", &[], None));
        }
        if total != session.declared {
            return Err(GoogleError::invalid(format!(
                "The upload declared {} bytes (X-Goog-Upload-Header-Content-Length) but was \
                 finalized after {total}.",
                session.declared
            )));
        }

        let now = OffsetDateTime::now_utc();
        let file = StoredFile {
            id: random_id(12),
            display_name: session.display_name.clone(),
            mime_type: session.mime_type.clone(),
            size: total,
            sha256: digest.hasher.finalize().to_vec(),
            create_time: now,
            update_time: now,
            processing_polls_left: inner.processing_polls,
            failure: inner.fail_next_file.take(),
            duration_seconds: inner.video_seconds,
            deleted: false,
            expired: false,
            polls: 0,
        };
        session.received = total;
        session.phase = UploadPhase::Final {
            file_id: file.id.clone(),
        };
        let body = json!({"file": file.resource(&self.origin)});
        inner.files.push(file);
        Ok(upload_response(
            "final",
            &[("x-goog-upload-size-received", total.to_string())],
            Some(body),
        ))
    }
}

/// The display name of an upload `start` body `{"file":{"displayName"|"display_name"}}`.
fn start_display_name(body: &[u8]) -> Result<Option<String>, GoogleError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let metadata: Value = serde_json::from_slice(body)
        .map_err(|error| GoogleError::invalid(format!("Invalid JSON payload received. {error}")))?;
    let Some(file) = field(&metadata, "file") else {
        return Ok(None);
    };
    match field(file, "displayName") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.chars().count() <= 512 => Ok(Some(name.clone())),
        Some(Value::String(_)) => Err(GoogleError::invalid(
            "file.display_name must be at most 512 characters.",
        )),
        Some(other) => Err(GoogleError::invalid(format!(
            "Invalid value at 'file.display_name' (TYPE_STRING), {other}"
        ))),
    }
}

/// A 200 upload answer with `x-goog-upload-status` and the given headers.
fn upload_response(
    status: &'static str,
    headers: &[(&'static str, String)],
    body: Option<Value>,
) -> Response {
    let mut response = match body {
        Some(body) => json_response(StatusCode::OK, &body),
        None => StatusCode::OK.into_response(),
    };
    let response_headers = response.headers_mut();
    response_headers.insert(
        HeaderName::from_static("x-goog-upload-status"),
        HeaderValue::from_static(status),
    );
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// The running SHA-256 of one chunk, with snapshots at granule boundaries so that a
/// broken chunk can keep exactly a whole-granule prefix without holding the bytes.
struct ChunkDigest {
    hasher: Sha256,
    len: u64,
    granularity: u64,
    /// The last boundary reached (length, digest state), and the one before it.
    last_boundary: (u64, Sha256),
    previous_boundary: (u64, Sha256),
}

impl ChunkDigest {
    fn new(start: Sha256, granularity: u64) -> Self {
        Self {
            last_boundary: (0, start.clone()),
            previous_boundary: (0, start.clone()),
            hasher: start,
            len: 0,
            granularity: granularity.max(1),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let to_boundary = self.granularity - self.len % self.granularity;
            let take = usize::try_from(to_boundary)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let (piece, rest) = data.split_at(take);
            self.hasher.update(piece);
            self.len += piece.len() as u64;
            if self.len.is_multiple_of(self.granularity) {
                let reached = (self.len, self.hasher.clone());
                self.previous_boundary = std::mem::replace(&mut self.last_boundary, reached);
            }
            data = rest;
        }
    }

    /// The longest whole-granule prefix.
    fn whole_granules(self) -> (u64, Sha256) {
        self.last_boundary
    }

    /// The longest whole-granule prefix strictly shorter than the chunk (possibly empty).
    fn broken_prefix(self) -> (u64, Sha256) {
        if self.last_boundary.0 < self.len {
            self.last_boundary
        } else {
            self.previous_boundary
        }
    }
}

/// Feeds a request body into `digest`; false when the body broke off.
async fn receive(body: Body, digest: &mut ChunkDigest) -> bool {
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(bytes) => digest.update(&bytes),
            Err(_) => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Routes: files and models
// ---------------------------------------------------------------------------------------------

/// `GET /v1beta/files/<id>`: the bare `File`; each answer counts as one poll.
async fn get_file(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    let answer = (|| {
        authorize(&headers, &uri)?;
        let mut inner = lock(&shared.inner);
        inner.take_injected(Endpoint::GetFile)?;
        let file = inner
            .files
            .iter_mut()
            .find(|file| file.id == id && file.is_live())
            .ok_or_else(|| GoogleError::no_such_file(&id))?;
        let body = file.resource(&shared.origin);
        file.count_poll();
        Ok::<_, GoogleError>(json_response(StatusCode::OK, &body))
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /v1beta/files/<id>` → `{}`.
async fn delete_file(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    let answer = (|| {
        authorize(&headers, &uri)?;
        let mut inner = lock(&shared.inner);
        inner.take_injected(Endpoint::DeleteFile)?;
        let file = inner
            .files
            .iter_mut()
            .find(|file| file.id == id && file.is_live())
            .ok_or_else(|| GoogleError::no_such_file(&id))?;
        file.deleted = true;
        Ok::<_, GoogleError>(json_response(StatusCode::OK, &json!({})))
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1beta/files?pageSize=&pageToken=` → `{"files":[...],"nextPageToken"?}`; an empty
/// list is `{}`, as proto3 JSON omits empty fields.
async fn list_files(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    let answer = (|| {
        authorize(&headers, &uri)?;
        let query = uri.query().unwrap_or_default();
        let page_size = match query_param(query, "pageSize") {
            None => 10,
            Some(value) => value
                .parse::<usize>()
                .map_err(|_| GoogleError::invalid(format!("Invalid pageSize {value:?}.")))?
                .clamp(1, 100),
        };
        let start = match query_param(query, "pageToken").filter(|token| !token.is_empty()) {
            None => 0,
            Some(token) => token
                .strip_prefix("page-")
                .and_then(|offset| offset.parse::<usize>().ok())
                .ok_or_else(|| GoogleError::invalid("Invalid page token."))?,
        };
        let mut inner = lock(&shared.inner);
        inner.take_injected(Endpoint::ListFiles)?;
        let live: Vec<&StoredFile> = inner.files.iter().filter(|file| file.is_live()).collect();
        let page: Vec<Value> = live
            .iter()
            .skip(start)
            .take(page_size)
            .map(|file| file.resource(&shared.origin))
            .collect();
        let mut body = Map::new();
        if !page.is_empty() {
            body.insert("files".into(), Value::Array(page));
        }
        if start + page_size < live.len() {
            body.insert(
                "nextPageToken".into(),
                json!(format!("page-{}", start + page_size)),
            );
        }
        Ok::<_, GoogleError>(json_response(StatusCode::OK, &Value::Object(body)))
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1beta/models` → `{"models":[Model...]}`.
async fn list_models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    if let Err(error) = authorize(&headers, &uri) {
        return error.into_response();
    }
    let models: Vec<Value> = lock(&shared.inner)
        .models
        .iter()
        .map(|name| model_resource(name))
        .collect();
    json_response(StatusCode::OK, &json!({ "models": models }))
}

/// `GET /v1beta/models/<model>` → the `Model`.
async fn get_model(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    if let Err(error) = authorize(&headers, &uri) {
        return error.into_response();
    }
    let model = bare_model_name(&rest);
    if !lock(&shared.inner)
        .models
        .iter()
        .any(|known| known == model)
    {
        return GoogleError::unknown_model(model, "get").into_response();
    }
    json_response(StatusCode::OK, &model_resource(model))
}

fn model_resource(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "description": "A model of the local fake Gemini API.",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "thinking": true
    })
}

/// Any other path: `404 NOT_FOUND`.
async fn unknown_route(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers).with_body(&body));
    GoogleError::new(
        404,
        format!("{method} {} is not a route of the v1beta API.", uri.path()),
    )
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Routes: generateContent, streamGenerateContent, countTokens
// ---------------------------------------------------------------------------------------------

/// How an answer travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// `generateContent`: one JSON object.
    Json,
    /// `streamGenerateContent?alt=sse`: server-sent events.
    Sse,
    /// `streamGenerateContent` without `alt=sse`: one JSON array of the chunks.
    JsonArray,
}

/// `POST /v1beta/models/<model>:<method>`.
async fn call_model(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers).with_body(&body));
    shared
        .model_method(&rest, &uri, &headers, &body)
        .unwrap_or_else(IntoResponse::into_response)
}

impl Shared {
    fn model_method(
        &self,
        rest: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, GoogleError> {
        authorize(headers, uri)?;
        let Some((model, verb)) = rest.rsplit_once(':') else {
            return Err(GoogleError::new(
                404,
                format!("POST /v1beta/models/{rest} names no method (…:generateContent)."),
            ));
        };
        let model = bare_model_name(model);
        if !matches!(
            verb,
            "generateContent" | "streamGenerateContent" | "countTokens"
        ) {
            return Err(GoogleError::new(
                404,
                format!("The method {verb} does not exist."),
            ));
        }
        if !lock(&self.inner).models.iter().any(|known| known == model) {
            let method = if verb == "countTokens" {
                "countTokens"
            } else {
                "generateContent"
            };
            return Err(GoogleError::unknown_model(model, method));
        }
        if body.len() > MAX_REQUEST_BYTES {
            return Err(GoogleError::invalid(format!(
                "Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
            )));
        }
        let request: Value = serde_json::from_slice(body).map_err(|error| {
            GoogleError::invalid(format!("Invalid JSON payload received. {error}"))
        })?;
        match verb {
            "countTokens" => self.count_tokens(&request),
            "generateContent" => self.generate(model, &request, Delivery::Json),
            _ => {
                let sse =
                    query_param(uri.query().unwrap_or_default(), "alt").as_deref() == Some("sse");
                let delivery = if sse {
                    Delivery::Sse
                } else {
                    Delivery::JsonArray
                };
                self.generate(model, &request, delivery)
            }
        }
    }

    /// `generateContent` / `streamGenerateContent`: validate, then answer the next reply.
    fn generate(
        &self,
        model: &str,
        request: &Value,
        delivery: Delivery,
    ) -> Result<Response, GoogleError> {
        let (usage, scripted, responder, thoughts) = {
            let mut inner = lock(&self.inner);
            let usage = inspect_request(&inner, request, RequestKind::Generate)?;
            let scripted = inner.replies.pop_front();
            (
                usage,
                scripted,
                Arc::clone(&inner.responder),
                inner.thoughts_tokens,
            )
        };
        // The responder runs outside the lock: it may take its time.
        let reply = scripted.unwrap_or_else(|| responder(request));
        let answer = Answer {
            model,
            response_id: random_id(22),
            usage: &usage,
            thoughts,
        };
        answer.render(reply, delivery)
    }

    /// `countTokens`: `{"contents"}` or `{"generateContentRequest"}` →
    /// `{"totalTokens","promptTokensDetails"}`.
    fn count_tokens(&self, request: &Value) -> Result<Response, GoogleError> {
        let mut inner = lock(&self.inner);
        inner.take_injected(Endpoint::CountTokens)?;
        let Some(object) = request.as_object() else {
            return Err(GoogleError::invalid(
                "Invalid JSON payload received. Expected an object.",
            ));
        };
        reject_unknown_fields(object, &["contents", "generateContentRequest"], None)?;
        let usage = match (
            field(request, "contents"),
            field(request, "generateContentRequest"),
        ) {
            (Some(_), Some(_)) => {
                return Err(GoogleError::invalid(
                    "* CountTokensRequest: set either contents or generate_content_request, \
                     not both.\n",
                ))
            }
            (None, None) => {
                return Err(GoogleError::invalid(
                    "* CountTokensRequest.contents: contents is not specified\n",
                ))
            }
            (Some(_), None) => inspect_request(&inner, request, RequestKind::CountTokens)?,
            (None, Some(nested)) => inspect_request(&inner, nested, RequestKind::CountTokens)?,
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "totalTokens": usage.total(),
                "promptTokensDetails": usage.details(),
            }),
        ))
    }
}

/// `"models/gemini-3.5-flash"` → `"gemini-3.5-flash"`.
fn bare_model_name(name: &str) -> &str {
    name.strip_prefix("models/").unwrap_or(name)
}

/// One answer being rendered.
struct Answer<'a> {
    model: &'a str,
    response_id: String,
    usage: &'a PromptUsage,
    thoughts: u64,
}

impl Answer<'_> {
    fn render(&self, reply: Reply, delivery: Delivery) -> Result<Response, GoogleError> {
        let chunks = match reply {
            Reply::Error(error) => return Err(error.to_google(Some(self.model))),
            Reply::BrokenStream { partial, error } => {
                let error = error.to_google(Some(self.model));
                if delivery == Delivery::Json {
                    return Err(error);
                }
                let mut chunks: Vec<Value> = split_for_stream(&partial, STREAM_PIECES)
                    .iter()
                    .map(|piece| self.envelope(Some(candidate(Some(piece), None)), false, 0))
                    .collect();
                chunks.push(error.body());
                chunks
            }
            Reply::Blocked { reason } => vec![json!({
                "promptFeedback": {"blockReason": reason},
                "usageMetadata": self.usage_metadata(true, 0),
            })],
            Reply::Text {
                text,
                finish_reason,
            } => self.text_chunks(&text, &finish_reason, delivery),
        };
        Ok(match delivery {
            Delivery::Json => json_response(StatusCode::OK, chunks.first().unwrap_or(&Value::Null)),
            Delivery::JsonArray => json_response(StatusCode::OK, &Value::Array(chunks)),
            Delivery::Sse => event_stream(
                chunks
                    .iter()
                    .map(|chunk| format!("data: {chunk}\r\n\r\n"))
                    .collect(),
            ),
        })
    }

    /// The response(s) for a text answer: one for `generateContent`, deltas when streamed.
    fn text_chunks(&self, text: &str, finish_reason: &str, delivery: Delivery) -> Vec<Value> {
        if CONTENT_WITHHELD_REASONS.contains(&finish_reason) {
            return vec![self.envelope(Some(candidate(None, Some(finish_reason))), true, 0)];
        }
        let answer_tokens = text_tokens(text.chars().count());
        if delivery == Delivery::Json {
            return vec![self.envelope(
                Some(candidate(Some(text), Some(finish_reason))),
                true,
                answer_tokens,
            )];
        }
        let pieces = split_for_stream(text, STREAM_PIECES);
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(index, piece)| {
                let finished = index == last;
                let reason = finished.then_some(finish_reason);
                let tokens = if finished { answer_tokens } else { 0 };
                self.envelope(Some(candidate(Some(piece), reason)), finished, tokens)
            })
            .collect()
    }

    /// A `GenerateContentResponse`.
    fn envelope(&self, candidate: Option<Value>, finished: bool, answer_tokens: u64) -> Value {
        let mut response = Map::new();
        if let Some(candidate) = candidate {
            response.insert("candidates".into(), json!([candidate]));
        }
        response.insert(
            "usageMetadata".into(),
            self.usage_metadata(finished, answer_tokens),
        );
        response.insert("modelVersion".into(), json!(self.model));
        response.insert("responseId".into(), json!(self.response_id));
        Value::Object(response)
    }

    /// `usageMetadata`; zero counts are omitted as proto3 JSON does. Intermediate stream
    /// chunks carry only the prompt's counts.
    fn usage_metadata(&self, finished: bool, answer_tokens: u64) -> Value {
        let prompt = self.usage.total();
        let thoughts = if finished { self.thoughts } else { 0 };
        let mut usage = Map::new();
        usage.insert("promptTokenCount".into(), json!(prompt));
        if answer_tokens > 0 {
            usage.insert("candidatesTokenCount".into(), json!(answer_tokens));
        }
        usage.insert(
            "totalTokenCount".into(),
            json!(prompt + answer_tokens + thoughts),
        );
        usage.insert("promptTokensDetails".into(), json!(self.usage.details()));
        if thoughts > 0 {
            usage.insert("thoughtsTokenCount".into(), json!(thoughts));
        }
        Value::Object(usage)
    }
}

/// A candidate: the text (if any) as a model part, and the finish reason (if finished).
fn candidate(text: Option<&str>, finish_reason: Option<&str>) -> Value {
    let mut candidate = Map::new();
    if let Some(text) = text {
        candidate.insert(
            "content".into(),
            json!({"parts": [{"text": text}], "role": "model"}),
        );
    }
    if let Some(reason) = finish_reason {
        candidate.insert("finishReason".into(), json!(reason));
        if CONTENT_WITHHELD_REASONS.contains(&reason) {
            candidate.insert(
                "safetyRatings".into(),
                json!([
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                     "blocked": true}
                ]),
            );
        }
    }
    candidate.insert("index".into(), json!(0));
    Value::Object(candidate)
}

// ---------------------------------------------------------------------------------------------
// Request validation and token accounting
// ---------------------------------------------------------------------------------------------

/// Which method a request body is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Generate,
    /// `countTokens` does not accept `mediaResolution`.
    CountTokens,
}

/// The prompt's tokens per modality.
#[derive(Debug, Default)]
struct PromptUsage {
    video: u64,
    audio: u64,
    image: u64,
    document: u64,
    text_chars: usize,
}

impl PromptUsage {
    fn text(&self) -> u64 {
        text_tokens(self.text_chars)
    }

    fn total(&self) -> u64 {
        self.video + self.audio + self.image + self.document + self.text()
    }

    /// `promptTokensDetails`: one entry per modality present. A clip too short to sample
    /// has no VIDEO entry at all.
    fn details(&self) -> Vec<Value> {
        [
            ("VIDEO", self.video),
            ("AUDIO", self.audio),
            ("IMAGE", self.image),
            ("DOCUMENT", self.document),
            ("TEXT", self.text()),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(modality, count)| json!({"modality": modality, "tokenCount": count}))
        .collect()
    }
}

/// The `videoMetadata` of a part.
#[derive(Debug, Default, Clone, Copy)]
struct VideoClip {
    start: Option<f64>,
    end: Option<f64>,
    fps: Option<f64>,
}

/// Validates a `GenerateContentRequest` as the service does and counts its prompt tokens.
fn inspect_request(
    inner: &Inner,
    request: &Value,
    kind: RequestKind,
) -> Result<PromptUsage, GoogleError> {
    let Some(object) = request.as_object() else {
        return Err(GoogleError::invalid(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    reject_unknown_fields(object, REQUEST_FIELDS, None)?;

    let low_resolution = match field(request, "generationConfig") {
        Some(config) => inspect_generation_config(config, kind)?,
        None => false,
    };

    let mut usage = PromptUsage::default();
    if let Some(instruction) = field(request, "systemInstruction") {
        let parts = field(instruction, "parts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (index, part) in parts.iter().enumerate() {
            let at = format!("system_instruction.parts[{index}]");
            inspect_part(inner, part, &at, low_resolution, &mut usage)?;
        }
    }

    let contents = match field(request, "contents") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(contents)) => contents.as_slice(),
        Some(other) => {
            return Err(GoogleError::invalid(format!(
                "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.\
                 v1beta.Content), {other}"
            )))
        }
    };
    if contents.is_empty() {
        return Err(GoogleError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    for (content_index, content) in contents.iter().enumerate() {
        match field(content, "role").and_then(Value::as_str) {
            None | Some("user") | Some("model") | Some("") => {}
            Some(_) => {
                return Err(GoogleError::invalid(
                    "Please use a valid role: user, model.",
                ))
            }
        }
        let parts = field(content, "parts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(GoogleError::invalid(format!(
                "* GenerateContentRequest.contents[{content_index}].parts: contents.parts must \
                 not be empty.\n"
            )));
        }
        for (part_index, part) in parts.iter().enumerate() {
            let at = format!("contents[{content_index}].parts[{part_index}]");
            inspect_part(inner, part, &at, low_resolution, &mut usage)?;
        }
    }
    Ok(usage)
}

/// Validates `generationConfig`; returns whether `mediaResolution` is LOW.
fn inspect_generation_config(config: &Value, kind: RequestKind) -> Result<bool, GoogleError> {
    let Some(object) = config.as_object() else {
        return Err(GoogleError::invalid(format!(
            "Invalid value at 'generation_config' (type.googleapis.com/google.ai.\
             generativelanguage.v1beta.GenerationConfig), {config}"
        )));
    };
    reject_unknown_fields(object, GENERATION_CONFIG_FIELDS, Some("generation_config"))?;

    let schema = field(config, "responseSchema").is_some_and(|value| !value.is_null());
    let json_schema = ["responseJsonSchema", "_responseJsonSchema"]
        .iter()
        .any(|name| field(config, name).is_some_and(|value| !value.is_null()));
    if schema && json_schema {
        return Err(GoogleError::invalid(
            "* GenerateContentRequest.generation_config: response_schema and \
             response_json_schema cannot both be set.\n",
        ));
    }
    let mime_type = field(config, "responseMimeType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // `text/x.enum` also takes a responseSchema (an enum); JSON Schema needs JSON.
    let mime_fits = mime_type == "application/json" || (schema && mime_type == "text/x.enum");
    if (schema || json_schema) && !mime_fits {
        let which = if schema {
            "response_schema"
        } else {
            "response_json_schema"
        };
        return Err(GoogleError::invalid(format!(
            "* GenerateContentRequest.generation_config.{which}: only supported with \
             response_mime_type: application/json; got {mime_type:?}.\n"
        )));
    }

    match field(config, "mediaResolution") {
        None | Some(Value::Null) => Ok(false),
        Some(_) if kind == RequestKind::CountTokens => Err(GoogleError::invalid(
            "mediaResolution is not supported by countTokens; leave it out of \
             generate_content_request.generation_config.",
        )),
        Some(Value::String(value)) if MEDIA_RESOLUTIONS.contains(&value.as_str()) => {
            Ok(value == "MEDIA_RESOLUTION_LOW")
        }
        Some(other) => Err(GoogleError::invalid(format!(
            "Invalid value at 'generation_config.media_resolution' (type.googleapis.com/google.\
             ai.generativelanguage.v1beta.GenerationConfig.MediaResolution), {other}"
        ))),
    }
}

/// Validates one part and adds its tokens.
fn inspect_part(
    inner: &Inner,
    part: &Value,
    at: &str,
    low_resolution: bool,
    usage: &mut PromptUsage,
) -> Result<(), GoogleError> {
    let data: Vec<&str> = PART_DATA_FIELDS
        .iter()
        .copied()
        .filter(|name| field(part, name).is_some_and(|value| !value.is_null()))
        .collect();
    let kind = match data.as_slice() {
        [] => {
            return Err(GoogleError::invalid(format!(
                "* GenerateContentRequest.{at}.data: required oneof field 'data' must have one \
                 initialized field\n"
            )))
        }
        [kind] => *kind,
        [_, second, ..] => {
            return Err(GoogleError::invalid(format!(
                "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set \
                 '{second}'"
            )))
        }
    };
    let clip = match field(part, "videoMetadata") {
        Some(metadata) => parse_video_metadata(metadata, at)?,
        None => VideoClip::default(),
    };

    match kind {
        "text" => {
            let text = field(part, "text").and_then(Value::as_str).ok_or_else(|| {
                GoogleError::invalid(format!(
                    "Invalid value at '{at}.text' (TYPE_STRING): expected a string."
                ))
            })?;
            usage.text_chars += text.chars().count();
        }
        "inlineData" => {
            let inline = field(part, "inlineData").unwrap_or(&Value::Null);
            let mime_type = field(inline, "mimeType")
                .and_then(Value::as_str)
                .filter(|mime| mime.contains('/'))
                .ok_or_else(|| {
                    GoogleError::invalid(format!(
                        "* GenerateContentRequest.{at}.inline_data.mime_type: mime_type is not \
                         specified\n"
                    ))
                })?;
            let data = field(inline, "data")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if data.is_empty() || decode_proto_bytes(data).is_none() {
                return Err(GoogleError::invalid(format!(
                    "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding \
                     failed"
                )));
            }
            add_media(usage, mime_type, inner.video_seconds, clip, low_resolution);
        }
        "fileData" => {
            let file_data = field(part, "fileData").unwrap_or(&Value::Null);
            let uri = field(file_data, "fileUri")
                .and_then(Value::as_str)
                .filter(|uri| !uri.is_empty())
                .ok_or_else(|| {
                    GoogleError::invalid(format!(
                        "* GenerateContentRequest.{at}.file_data.file_uri: file_uri is not \
                         specified\n"
                    ))
                })?;
            let id = uri
                .rsplit_once("files/")
                .map(|(_, id)| id.trim_end_matches('/'))
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| {
                    GoogleError::invalid(format!("Invalid or unsupported file uri: {uri}"))
                })?;
            let file = inner
                .live_file(id)
                .ok_or_else(|| GoogleError::no_such_file(id))?;
            if file.state() != FileState::Active {
                return Err(GoogleError::invalid(format!(
                    "The File {id} is not in an ACTIVE state and usage is not allowed."
                )));
            }
            let mime_type = field(file_data, "mimeType")
                .and_then(Value::as_str)
                .unwrap_or(&file.mime_type);
            add_media(
                usage,
                mime_type,
                file.duration_seconds,
                clip,
                low_resolution,
            );
        }
        // Function calls and code parts hold no media; their tokens are not modelled.
        _ => {}
    }
    Ok(())
}

/// Adds the tokens of one media part: video sampled at `fps` over the clip (258 tokens a
/// frame, 66 at LOW) plus 32 audio tokens a second; audio 32 a second; an image 258; any
/// other document 258.
fn add_media(
    usage: &mut PromptUsage,
    mime_type: &str,
    duration: f64,
    clip: VideoClip,
    low_resolution: bool,
) {
    if mime_type.starts_with("video/") {
        let start = clip.start.unwrap_or(0.0).min(duration);
        let end = clip.end.unwrap_or(duration).min(duration);
        let seconds = (end - start).max(0.0);
        if seconds >= MIN_VIDEO_SECONDS {
            let frames = (seconds * clip.fps.unwrap_or(1.0)).round().max(1.0) as u64;
            let per_frame = if low_resolution {
                TOKENS_PER_FRAME_LOW
            } else {
                TOKENS_PER_FRAME
            };
            usage.video += frames * per_frame;
        }
        usage.audio += (seconds * AUDIO_TOKENS_PER_SECOND).round() as u64;
    } else if mime_type.starts_with("audio/") {
        usage.audio += (duration * AUDIO_TOKENS_PER_SECOND).round() as u64;
    } else if mime_type.starts_with("image/") {
        usage.image += TOKENS_PER_IMAGE;
    } else {
        usage.document += TOKENS_PER_IMAGE;
    }
}

/// Parses `videoMetadata`: offsets are protobuf duration strings, `fps` is in (0, 24].
fn parse_video_metadata(metadata: &Value, at: &str) -> Result<VideoClip, GoogleError> {
    let offset = |name: &str, snake: &str| -> Result<Option<f64>, GoogleError> {
        let Some(value) = field(metadata, name) else {
            return Ok(None);
        };
        let text = value.as_str().unwrap_or_default();
        match parse_duration(text) {
            Some(seconds) if seconds >= 0.0 => Ok(Some(seconds)),
            Some(_) => Err(GoogleError::invalid(format!(
                "* GenerateContentRequest.{at}.video_metadata.{snake}: must not be negative.\n"
            ))),
            None => Err(GoogleError::invalid(format!(
                "Invalid value at '{at}.video_metadata.{snake}' (type.googleapis.com/google.\
                 protobuf.Duration), Field '{name}', Illegal duration format; duration must end \
                 with 's': {value}"
            ))),
        }
    };
    let start = offset("startOffset", "start_offset")?;
    let end = offset("endOffset", "end_offset")?;
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            return Err(GoogleError::invalid(format!(
                "* GenerateContentRequest.{at}.video_metadata: end_offset must be after \
                 start_offset.\n"
            )));
        }
    }
    let fps = match field(metadata, "fps") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_f64() {
            Some(fps) if fps > 0.0 && fps <= MAX_FPS => Some(fps),
            _ => {
                return Err(GoogleError::invalid(format!(
                    "* GenerateContentRequest.{at}.video_metadata.fps: fps must be greater than \
                     0 and at most {MAX_FPS}; got {value}.\n"
                )))
            }
        },
    };
    Ok(VideoClip { start, end, fps })
}

/// Parses a protobuf JSON duration: decimal seconds with up to 9 fractional digits and a
/// trailing `s` (`"40s"`, `"1.5s"`, `"-2s"`).
fn parse_duration(text: &str) -> Option<f64> {
    let number = text.strip_suffix('s')?;
    let digits = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let fraction_ok = match fraction {
        Some(part) => (1..=9).contains(&part.len()) && all_digits(part),
        None => true,
    };
    if whole.is_empty() || !all_digits(whole) || !fraction_ok {
        return None;
    }
    number.parse().ok()
}

/// Seconds as a protobuf duration string: `10.0` → `"10s"`, `1.5` → `"1.5s"`.
fn duration_text(seconds: f64) -> String {
    format!("{seconds}s")
}

/// Decodes a proto3 JSON `bytes` value: standard or URL-safe base64, padded or not.
fn decode_proto_bytes(data: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    standard
        .decode(data)
        .or_else(|_| url_safe.decode(data))
        .ok()
}

/// A request field by its camelCase name, also accepted in snake_case.
fn field<'a>(object: &'a Value, camel: &str) -> Option<&'a Value> {
    object
        .get(camel)
        .or_else(|| object.get(snake_case(camel).as_str()))
}

/// `"responseMimeType"` → `"response_mime_type"` (a leading `_` is kept).
fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for character in camel.chars() {
        if character.is_ascii_uppercase() {
            snake.push('_');
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

/// `400` for a field the message does not have, in the service's words.
fn reject_unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    at: Option<&str>,
) -> Result<(), GoogleError> {
    let unknown = object.keys().find(|key| {
        !known
            .iter()
            .any(|name| key.as_str() == *name || **key == snake_case(name))
    });
    match (unknown, at) {
        (None, _) => Ok(()),
        (Some(name), None) => Err(GoogleError::invalid(format!(
            "Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."
        ))),
        (Some(name), Some(at)) => Err(GoogleError::invalid(format!(
            "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find \
             field."
        ))),
    }
}

fn rfc3339(moment: OffsetDateTime) -> String {
    moment
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn to_usize(length: u64) -> usize {
    usize::try_from(length).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Client;

    fn client() -> Client {
        Client::new()
    }

    /// Deterministic, non-repeating test bytes.
    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|index| (index * 31 % 251) as u8).collect()
    }

    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// Step 1: opens an upload, returns its URL.
    async fn start_upload(fake: &FakeGemini, len: usize, mime: &str) -> String {
        let response = client()
            .post(format!("{}/upload/v1beta/files", fake.base_url()))
            .header("x-goog-api-key", API_KEY)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", len.to_string())
            .header("X-Goog-Upload-Header-Content-Type", mime)
            .json(&json!({"file": {"display_name": "clip.mp4"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-goog-upload-status"), "active");
        header(&response, "x-goog-upload-url")
    }

    async fn send_chunk(url: &str, offset: usize, data: &[u8], command: &str) -> reqwest::Response {
        client()
            .post(url)
            .header("X-Goog-Upload-Command", command)
            .header("X-Goog-Upload-Offset", offset.to_string())
            .body(data.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn query(url: &str) -> reqwest::Response {
        client()
            .post(url)
            .header("X-Goog-Upload-Command", "query")
            .send()
            .await
            .unwrap()
    }

    fn header(response: &reqwest::Response, name: &str) -> String {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Uploads `data` in one final chunk; returns the `File`.
    async fn upload_file(fake: &FakeGemini, data: &[u8], mime: &str) -> Value {
        let url = start_upload(fake, data.len(), mime).await;
        let response = send_chunk(&url, 0, data, "upload, finalize").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["file"].clone()
    }

    async fn get_file(fake: &FakeGemini, name: &str) -> reqwest::Response {
        client()
            .get(format!("{}/v1beta/{name}", fake.base_url()))
            .header("x-goog-api-key", API_KEY)
            .send()
            .await
            .unwrap()
    }

    async fn call(fake: &FakeGemini, method: &str, body: &Value) -> reqwest::Response {
        client()
            .post(format!(
                "{}/v1beta/models/gemini-3.5-flash:{method}",
                fake.base_url()
            ))
            .header("x-goog-api-key", API_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    fn video_request(uri: &str, metadata: Value) -> Value {
        json!({"contents": [{"role": "user", "parts": [
            {"fileData": {"mimeType": "video/mp4", "fileUri": uri}, "videoMetadata": metadata},
            {"text": "List key events."}  // 16 characters: 4 tokens
        ]}]})
    }

    async fn error_of(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["error"].clone())
    }

    #[tokio::test]
    async fn two_chunk_upload_arrives_intact() {
        let fake = FakeGemini::start().await;
        fake.set_granularity(1024);
        let data = bytes(2048 + 500);
        let url = start_upload(&fake, data.len(), "video/mp4").await;
        assert!(url.starts_with(&format!("{}/upload/v1beta/files?", fake.base_url())));
        assert!(url.contains("upload_id=") && url.ends_with("&upload_protocol=resumable"));
        assert!(!url.contains("key="), "a header key is not echoed");

        let middle = send_chunk(&url, 0, &data[..2048], "upload").await;
        assert_eq!(middle.status(), 200);
        assert_eq!(header(&middle, "x-goog-upload-status"), "active");

        let last = send_chunk(&url, 2048, &data[2048..], "upload, finalize").await;
        assert_eq!(last.status(), 200);
        assert_eq!(header(&last, "x-goog-upload-status"), "final");
        let file = last.json::<Value>().await.unwrap()["file"].clone();
        let id = file["name"]
            .as_str()
            .unwrap()
            .strip_prefix("files/")
            .unwrap()
            .to_owned();
        assert_eq!(file["displayName"], "clip.mp4");
        assert_eq!(file["mimeType"], "video/mp4");
        assert_eq!(file["sizeBytes"], "2548");
        assert_eq!(file["state"], "PROCESSING");
        assert_eq!(file["source"], "UPLOADED");
        assert_eq!(
            file["uri"],
            format!("{}/v1beta/files/{id}", fake.base_url())
        );
        let hash = base64::engine::general_purpose::STANDARD
            .decode(file["sha256Hash"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(hash).unwrap(), sha256_hex(&data));
        let created =
            OffsetDateTime::parse(file["createTime"].as_str().unwrap(), &Rfc3339).unwrap();
        let expires =
            OffsetDateTime::parse(file["expirationTime"].as_str().unwrap(), &Rfc3339).unwrap();
        assert_eq!(expires - created, FILE_LIFETIME);

        let files = fake.uploaded_files();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].sha256_hex, sha256_hex(&data));
        assert_eq!(files[0].size_bytes, 2548);
        let chunks = fake.requests_to("/upload/v1beta/files");
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[0].body_json,
            Some(json!({"file": {"display_name": "clip.mp4"}}))
        );
        assert_eq!((chunks[1].body_len, chunks[2].body_len), (2048, 500));
        assert_eq!(chunks[1].body_json, None);
    }

    #[tokio::test]
    async fn start_needs_the_protocol_headers() {
        let fake = FakeGemini::start().await;
        let response = client()
            .post(format!("{}/upload/v1beta/files", fake.base_url()))
            .header("x-goog-api-key", API_KEY)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Type", "video/mp4")
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["status"].as_str()),
            (400, Some("INVALID_ARGUMENT"))
        );
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("Content-Length"));
    }

    #[tokio::test]
    async fn offset_mismatch_is_refused_and_query_says_where_to_resume() {
        let fake = FakeGemini::start().await;
        fake.set_granularity(1024);
        let data = bytes(3000);
        let url = start_upload(&fake, data.len(), "video/mp4").await;
        assert_eq!(
            send_chunk(&url, 0, &data[..1024], "upload").await.status(),
            200
        );

        let (status, error) =
            error_of(send_chunk(&url, 2048, &data[2048..], "upload, finalize").await).await;
        assert_eq!(status, 400);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("received 1024 bytes"));

        let answer = query(&url).await;
        assert_eq!(header(&answer, "x-goog-upload-status"), "active");
        assert_eq!(header(&answer, "x-goog-upload-size-received"), "1024");

        // A non-final chunk must be whole granules; the declared size must match.
        assert_eq!(
            send_chunk(&url, 1024, &data[1024..2000], "upload")
                .await
                .status(),
            400
        );
        assert_eq!(
            send_chunk(&url, 1024, &data[1024..2999], "upload, finalize")
                .await
                .status(),
            400
        );
        let last = send_chunk(&url, 1024, &data[1024..], "upload, finalize").await;
        assert_eq!(last.status(), 200);
        assert_eq!(fake.uploaded_files()[0].sha256_hex, sha256_hex(&data));

        let final_query = query(&url).await;
        assert_eq!(header(&final_query, "x-goog-upload-status"), "final");
        assert_eq!(header(&final_query, "x-goog-upload-size-received"), "3000");
    }

    #[tokio::test]
    async fn broken_chunk_is_resumed_after_query() {
        let fake = FakeGemini::start().await;
        fake.set_granularity(1024);
        let data = bytes(3 * 1024 + 100);
        let url = start_upload(&fake, data.len(), "video/mp4").await;

        fake.break_next_upload_chunk();
        let broken = send_chunk(&url, 0, &data, "upload, finalize").await;
        assert_eq!(broken.status(), 503);
        assert!(broken.headers().get("x-goog-upload-status").is_none());

        let answer = query(&url).await;
        assert_eq!(header(&answer, "x-goog-upload-status"), "active");
        let kept: usize = header(&answer, "x-goog-upload-size-received")
            .parse()
            .unwrap();
        assert_eq!(
            kept,
            3 * 1024,
            "whole granules shorter than the chunk are kept"
        );

        // A chunk of exactly one granule keeps nothing.
        fake.break_next_upload_chunk();
        let broken = send_chunk(&url, kept, &data[kept..kept + 100], "upload, finalize").await;
        assert_eq!(broken.status(), 503);
        assert_eq!(
            header(&query(&url).await, "x-goog-upload-size-received"),
            "3072"
        );

        let last = send_chunk(&url, kept, &data[kept..], "upload, finalize").await;
        assert_eq!(header(&last, "x-goog-upload-status"), "final");
        assert_eq!(fake.uploaded_files()[0].sha256_hex, sha256_hex(&data));
    }

    #[tokio::test]
    async fn cancelled_upload_is_gone() {
        let fake = FakeGemini::start().await;
        let url = start_upload(&fake, 10, "video/mp4").await;
        let cancel = client()
            .post(&url)
            .header("X-Goog-Upload-Command", "cancel")
            .send()
            .await
            .unwrap();
        assert_eq!(cancel.status(), 200);
        assert_eq!(
            send_chunk(&url, 0, &bytes(10), "upload, finalize")
                .await
                .status(),
            404
        );
        assert!(fake.uploaded_files().is_empty());
    }

    #[tokio::test]
    async fn twenty_mebibytes_in_default_chunks() {
        let fake = FakeGemini::start().await;
        let data = bytes(20 * 1024 * 1024 + 123);
        let url = start_upload(&fake, data.len(), "video/mp4").await;
        assert_eq!(
            header(&query(&url).await, "x-goog-upload-size-received"),
            "0"
        );
        let granule = DEFAULT_GRANULARITY;
        assert_eq!(
            send_chunk(&url, 0, &data[..granule], "upload")
                .await
                .status(),
            200
        );
        assert_eq!(
            send_chunk(&url, granule, &data[granule..2 * granule], "upload")
                .await
                .status(),
            200
        );
        let last = send_chunk(&url, 2 * granule, &data[2 * granule..], "upload, finalize").await;
        assert_eq!(last.status(), 200);
        assert_eq!(fake.uploaded_files()[0].sha256_hex, sha256_hex(&data));
    }

    #[tokio::test]
    async fn processing_then_active_with_video_metadata() {
        let fake = FakeGemini::start().await;
        fake.set_processing_polls(2);
        fake.set_video_seconds(596.0);
        let file = upload_file(&fake, &bytes(100), "video/mp4").await;
        let name = file["name"].as_str().unwrap();
        for expected in ["PROCESSING", "PROCESSING", "ACTIVE", "ACTIVE"] {
            let file: Value = get_file(&fake, name).await.json().await.unwrap();
            assert_eq!(file["state"], expected);
        }
        let file: Value = get_file(&fake, name).await.json().await.unwrap();
        assert_eq!(file["videoMetadata"]["videoDuration"], "596s");
        assert_eq!(fake.uploaded_files()[0].polls, 5);
    }

    #[tokio::test]
    async fn failed_processing_carries_the_error() {
        let fake = FakeGemini::start().await;
        fake.fail_processing("Unsupported codec.");
        let file = upload_file(&fake, &bytes(100), "video/mp4").await;
        let name = file["name"].as_str().unwrap();
        let _ = get_file(&fake, name).await;
        let file: Value = get_file(&fake, name).await.json().await.unwrap();
        assert_eq!(file["state"], "FAILED");
        assert_eq!(file["error"]["message"], "Unsupported codec.");
        assert!(file.get("videoMetadata").is_none());
        // Only the next file fails.
        fake.set_processing_polls(0);
        let next = upload_file(&fake, &bytes(100), "video/mp4").await;
        assert_eq!(next["state"], "ACTIVE");
    }

    #[tokio::test]
    async fn file_use_before_active_is_400_and_missing_files_are_403() {
        let fake = FakeGemini::start().await;
        let file = upload_file(&fake, &bytes(100), "video/mp4").await;
        let uri = file["uri"].as_str().unwrap();
        let id = file["name"]
            .as_str()
            .unwrap()
            .strip_prefix("files/")
            .unwrap();

        let (status, error) =
            error_of(call(&fake, "generateContent", &video_request(uri, json!({}))).await).await;
        assert_eq!(status, 400);
        assert_eq!(
            error["message"],
            format!("The File {id} is not in an ACTIVE state and usage is not allowed.")
        );
        assert_eq!(fake.pending_replies(), 0);

        let missing = format!("{}/v1beta/files/nosuchfile", fake.base_url());
        let (status, error) = error_of(
            call(
                &fake,
                "generateContent",
                &video_request(&missing, json!({})),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, error["status"].as_str()),
            (403, Some("PERMISSION_DENIED"))
        );

        // Deleted → {} then 403; expired likewise.
        let deleted = client()
            .delete(format!("{}/v1beta/files/{id}", fake.base_url()))
            .header("x-goog-api-key", API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.json::<Value>().await.unwrap(), json!({}));
        let (status, error) = error_of(get_file(&fake, &format!("files/{id}")).await).await;
        assert_eq!(status, 403);
        assert_eq!(
            error["message"],
            format!("You do not have permission to access the File {id} or it may not exist.")
        );
        assert!(fake.uploaded_files()[0].deleted);
    }

    #[tokio::test]
    async fn list_pages_through_live_files() {
        let fake = FakeGemini::start().await;
        let list = |query: String| {
            let url = format!("{}/v1beta/files{query}", fake.base_url());
            async move {
                client()
                    .get(url)
                    .header("x-goog-api-key", API_KEY)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(list(String::new()).await, json!({}));
        for _ in 0..3 {
            upload_file(&fake, &bytes(10), "video/mp4").await;
        }
        assert!(fake.expire_file(&fake.uploaded_files()[2].name));
        let first = list("?pageSize=1".to_owned()).await;
        assert_eq!(first["files"].as_array().unwrap().len(), 1);
        let token = first["nextPageToken"].as_str().unwrap();
        let second = list(format!("?pageSize=5&pageToken={token}")).await;
        assert_eq!(second["files"].as_array().unwrap().len(), 1);
        assert!(second.get("nextPageToken").is_none());
    }

    #[tokio::test]
    async fn generate_content_answers_with_usage() {
        let fake = FakeGemini::start().await;
        fake.set_processing_polls(0);
        fake.set_video_seconds(60.0);
        fake.set_thoughts_tokens(180);
        let file = upload_file(&fake, &bytes(100), "video/mp4").await;
        let uri = file["uri"].as_str().unwrap();
        fake.push_reply(Reply::text(r#"[{"timestamp":"00:41","event":"goal"}]"#));

        let request = video_request(
            uri,
            json!({"startOffset": "40s", "endOffset": "80s", "fps": 2}),
        );
        let response = call(&fake, "generateContent", &request).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let candidate = &body["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(
            candidate["content"]["parts"][0]["text"],
            r#"[{"timestamp":"00:41","event":"goal"}]"#
        );
        assert_eq!(candidate["finishReason"], "STOP");
        assert_eq!(body["modelVersion"], "gemini-3.5-flash");
        assert!(body["responseId"].is_string());
        // The clip is 40 s..60 s (the video ends at 60 s): 40 frames at 2 fps.
        let usage = &body["usageMetadata"];
        assert_eq!(
            usage["promptTokensDetails"],
            json!([
                {"modality": "VIDEO", "tokenCount": 40 * 258},
                {"modality": "AUDIO", "tokenCount": 20 * 32},
                {"modality": "TEXT", "tokenCount": 4}
            ])
        );
        let prompt = 40 * 258 + 20 * 32 + 4;
        assert_eq!(usage["promptTokenCount"], prompt);
        assert_eq!(usage["candidatesTokenCount"], 10);
        assert_eq!(usage["thoughtsTokenCount"], 180);
        assert_eq!(usage["totalTokenCount"], prompt + 10 + 180);

        // The responder answers once the queue is empty; LOW resolution is 66 a frame.
        fake.set_responder(|request| {
            Reply::text(request["contents"][0]["parts"][1]["text"].to_string())
        });
        let mut low = video_request(uri, json!({}));
        low["generationConfig"] = json!({"mediaResolution": "MEDIA_RESOLUTION_LOW"});
        let body: Value = call(&fake, "generateContent", &low)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["candidates"][0]["content"]["parts"][0]["text"],
            "\"List key events.\""
        );
        assert_eq!(
            body["usageMetadata"]["promptTokensDetails"][0]["tokenCount"],
            60 * 66
        );
    }

    #[tokio::test]
    async fn short_clip_and_inline_video() {
        let fake = FakeGemini::start().await;
        fake.set_video_seconds(2.0);
        let inline = json!({"contents": [{"parts": [
            {"inlineData": {"mimeType": "video/mp4", "data": "AAECAw=="}},
            {"text": "What?"}
        ]}]});
        let body: Value = call(&fake, "generateContent", &inline)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["usageMetadata"]["promptTokensDetails"][0],
            json!({"modality": "VIDEO", "tokenCount": 2 * 258})
        );

        let mut short = inline.clone();
        short["contents"][0]["parts"][0]["videoMetadata"] =
            json!({"startOffset": "1s", "endOffset": "1.3s"});
        let body: Value = call(&fake, "generateContent", &short)
            .await
            .json()
            .await
            .unwrap();
        let modalities: Vec<&str> = body["usageMetadata"]["promptTokensDetails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|detail| detail["modality"].as_str().unwrap())
            .collect();
        assert!(!modalities.contains(&"VIDEO"), "{modalities:?}");

        let mut broken = inline;
        broken["contents"][0]["parts"][0]["inlineData"]["data"] = json!("not base64!");
        assert_eq!(call(&fake, "generateContent", &broken).await.status(), 400);
    }

    #[tokio::test]
    async fn request_validation_matches_the_service() {
        let fake = FakeGemini::start().await;
        let text = |config: Value| json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": config});
        let cases = [
            (json!({"contents": []}), "contents is not specified"),
            (
                json!({"contents": [{"parts": [{"text": "hi"}]}], "generation_config": {}, "bogus": 1}),
                "Unknown name \"bogus\"",
            ),
            (
                text(json!({"responseSchema": {"type": "STRING"}})),
                "response_schema",
            ),
            (
                text(
                    json!({"responseJsonSchema": {"type": "string"}, "responseMimeType": "text/plain"}),
                ),
                "response_json_schema",
            ),
            (
                text(
                    json!({"responseMimeType": "application/json", "responseSchema": {}, "responseJsonSchema": {}}),
                ),
                "cannot both",
            ),
            (
                text(json!({"mediaResolution": "MEDIA_RESOLUTION_TINY"})),
                "media_resolution",
            ),
            (
                json!({"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4", "data": "AA=="}, "videoMetadata": {"fps": 30}}]}]}),
                "fps",
            ),
            (
                json!({"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4", "data": "AA=="}, "videoMetadata": {"startOffset": "40"}}]}]}),
                "duration",
            ),
            (
                json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}),
                "valid role",
            ),
            (json!({"contents": [{"parts": [{}]}]}), "oneof"),
        ];
        for (request, expected) in cases {
            let (status, error) = error_of(call(&fake, "generateContent", &request).await).await;
            assert_eq!(status, 400, "{request}");
            assert_eq!(error["status"], "INVALID_ARGUMENT");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        let accepted = text(
            json!({"responseMimeType": "application/json", "response_json_schema": {"type": "array"}}),
        );
        assert_eq!(
            call(&fake, "generateContent", &accepted).await.status(),
            200
        );

        let huge = "A".repeat(MAX_REQUEST_BYTES);
        let too_big = json!({"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4", "data": huge}}]}]});
        let (status, error) = error_of(call(&fake, "generateContent", &too_big).await).await;
        assert_eq!(status, 400);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("payload size exceeds"));
    }

    #[tokio::test]
    async fn blocked_safety_and_truncated_answers() {
        let fake = FakeGemini::start().await;
        let request = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        fake.push_reply(Reply::blocked("PROHIBITED_CONTENT"));
        fake.push_reply(Reply::safety());
        fake.push_reply(Reply::truncated("[{\"t\":"));

        let blocked: Value = call(&fake, "generateContent", &request)
            .await
            .json()
            .await
            .unwrap();
        assert!(blocked.get("candidates").is_none());
        assert_eq!(
            blocked["promptFeedback"]["blockReason"],
            "PROHIBITED_CONTENT"
        );
        assert_eq!(blocked["usageMetadata"]["promptTokenCount"], 1);

        let safety: Value = call(&fake, "generateContent", &request)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(safety["candidates"][0]["finishReason"], "SAFETY");
        assert!(safety["candidates"][0].get("content").is_none());
        assert!(safety["candidates"][0]["safetyRatings"].is_array());

        let truncated: Value = call(&fake, "generateContent", &request)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(truncated["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(
            truncated["candidates"][0]["content"]["parts"][0]["text"],
            "[{\"t\":"
        );
    }

    #[tokio::test]
    async fn quota_error_carries_retry_info() {
        let fake = FakeGemini::start().await;
        fake.push_reply(Reply::quota("2s"));
        fake.push_reply(Reply::unavailable());
        let request = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        let (status, error) = error_of(call(&fake, "generateContent", &request).await).await;
        assert_eq!(status, 429);
        assert_eq!(error["code"], 429);
        assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .ends_with("Please retry in 2.0s."));
        let details = error["details"].as_array().unwrap();
        assert!(details
            .iter()
            .any(|detail| detail["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"));
        let retry = details
            .iter()
            .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
            .unwrap();
        assert_eq!(retry["retryDelay"], "2s");

        let (status, error) = error_of(call(&fake, "generateContent", &request).await).await;
        assert_eq!(status, 503);
        assert_eq!(
            error,
            json!({"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"})
        );
    }

    #[tokio::test]
    async fn stream_sends_sse_deltas_and_usage_last() {
        let fake = FakeGemini::start().await;
        fake.push_reply(Reply::text("The quick brown fox jumps."));
        let response = client()
            .post(format!(
                "{}/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse",
                fake.base_url()
            ))
            .header("x-goog-api-key", API_KEY)
            .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        let text = response.text().await.unwrap();
        assert!(!text.contains("[DONE]"));
        let events: Vec<Value> = text
            .split("\r\n\r\n")
            .filter(|event| !event.is_empty())
            .map(|event| serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        assert_eq!(events.len(), STREAM_PIECES);
        let joined: String = events
            .iter()
            .map(|event| {
                event["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(joined, "The quick brown fox jumps.");
        let (last, earlier) = events.split_last().unwrap();
        assert!(earlier
            .iter()
            .all(|event| event["candidates"][0].get("finishReason").is_none()));
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 7);

        // A failure mid-answer arrives as an error event.
        fake.push_reply(Reply::BrokenStream {
            partial: "The quick".into(),
            error: ErrorReply::internal(),
        });
        let text = client()
            .post(format!(
                "{}/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse",
                fake.base_url()
            ))
            .header("x-goog-api-key", API_KEY)
            .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let last_event = text.trim_end().rsplit("\r\n\r\n").next().unwrap();
        let error: Value =
            serde_json::from_str(last_event.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(error["error"]["status"], "INTERNAL");
    }

    #[tokio::test]
    async fn count_tokens_counts_without_consuming_replies() {
        let fake = FakeGemini::start().await;
        fake.set_processing_polls(0);
        let file = upload_file(&fake, &bytes(10), "video/mp4").await;
        fake.push_reply(Reply::text("kept"));
        let contents = video_request(file["uri"].as_str().unwrap(), json!({}))["contents"].clone();

        let body: Value = call(&fake, "countTokens", &json!({"contents": contents}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["totalTokens"], 10 * 258 + 10 * 32 + 4);
        assert_eq!(body["promptTokensDetails"][0]["modality"], "VIDEO");

        let nested = json!({"generateContentRequest": {
            "model": "models/gemini-3.5-flash", "contents": contents,
            "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW"}}});
        assert_eq!(call(&fake, "countTokens", &nested).await.status(), 400);

        fake.push_error(Endpoint::CountTokens, ErrorReply::quota("1s"));
        assert_eq!(
            call(&fake, "countTokens", &json!({"contents": contents}))
                .await
                .status(),
            429
        );
        assert_eq!(fake.pending_replies(), 1);
    }

    #[tokio::test]
    async fn keys_and_models() {
        let fake = FakeGemini::start().await;
        let request = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        let url =
            |model: &str| format!("{}/v1beta/models/{model}:generateContent", fake.base_url());

        let wrong = client()
            .post(url("gemini-3.5-flash"))
            .header("x-goog-api-key", "nope")
            .json(&request)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(wrong).await;
        assert_eq!(status, 400);
        assert_eq!(
            error["message"],
            "API key not valid. Please pass a valid API key."
        );
        assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");
        assert_eq!(error["details"][0]["domain"], "googleapis.com");

        let missing = client()
            .post(url("gemini-3.5-flash"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 403);

        let in_query = client()
            .post(format!(
                "{}?key={API_KEY}",
                url("models/gemini-3.5-flash-lite")
            ))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(in_query.status(), 200);

        let unknown = client()
            .post(url("gemini-2.0-flash"))
            .header("x-goog-api-key", API_KEY)
            .json(&request)
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(unknown).await;
        assert_eq!((status, error["status"].as_str()), (404, Some("NOT_FOUND")));
        assert!(error["message"].as_str().unwrap().starts_with(
            "models/gemini-2.0-flash is not found for API version v1beta, or is not supported for generateContent."
        ));

        fake.set_models(&["models/gemini-3.8-flash"]);
        let renamed = client()
            .post(url("gemini-3.8-flash"))
            .header("x-goog-api-key", API_KEY)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200);
        assert_eq!(fake.requests_to(":generateContent").len(), 5);
        fake.reset_requests();
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn key_in_query_is_echoed_into_the_upload_url_and_errors_can_be_injected() {
        let fake = FakeGemini::start().await;
        fake.push_error(Endpoint::GetFile, ErrorReply::internal());
        let response = client()
            .post(format!(
                "{}/upload/v1beta/files?key={API_KEY}",
                fake.base_url()
            ))
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", "4")
            .header("X-Goog-Upload-Header-Content-Type", "image/png")
            .send()
            .await
            .unwrap();
        let url = header(&response, "x-goog-upload-url");
        assert!(url.contains(&format!("key={API_KEY}&upload_id=")));
        let file: Value = send_chunk(&url, 0, b"abcd", "upload, finalize")
            .await
            .json()
            .await
            .unwrap();
        let name = file["file"]["name"].as_str().unwrap();
        assert_eq!(get_file(&fake, name).await.status(), 500);
        assert_eq!(get_file(&fake, name).await.status(), 200);
    }

    #[test]
    fn durations_parse_like_protobuf() {
        assert_eq!(parse_duration("40s"), Some(40.0));
        assert_eq!(parse_duration("1.5s"), Some(1.5));
        assert_eq!(parse_duration("-2s"), Some(-2.0));
        for bad in ["40", "s", "1.s", ".5s", "1.1234567890s", "1e3s", "4 0s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(duration_text(10.0), "10s");
        assert_eq!(duration_text(1.5), "1.5s");
    }

    #[test]
    fn broken_prefix_keeps_whole_granules_shorter_than_the_chunk() {
        let digest_of = |len: usize| {
            let mut digest = ChunkDigest::new(Sha256::new(), 4);
            for piece in bytes(len).chunks(3) {
                digest.update(piece);
            }
            digest
        };
        for (len, kept) in [(0, 0), (3, 0), (4, 0), (5, 4), (8, 4), (9, 8)] {
            let (prefix, hasher) = digest_of(len).broken_prefix();
            assert_eq!(prefix, kept, "chunk of {len}");
            assert_eq!(
                hex::encode(hasher.finalize()),
                sha256_hex(&bytes(kept as usize))
            );
        }
    }
}
