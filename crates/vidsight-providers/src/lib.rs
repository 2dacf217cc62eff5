//! Analysis providers beyond the local analyzer: Google's Gemini API and any
//! OpenAI-compatible chat-completions endpoint with image input (Ollama, vLLM, LM Studio,
//! OpenRouter).
//!
//! - [`Provider`] is the seam: one [`ProviderRequest`] (features, model, options, the local
//!   analysis for grounding) in, a [`ProviderAnswer`] (the model's JSON, token usage, the raw
//!   responses for audit) out. [`gemini`] and [`openai`] implement it; the local analyzer is
//!   the built-in provider that always runs first (its shots ground every timestamp).
//! - [`engine`] runs one analysis through a provider: budget pre-flight, the result cache,
//!   the compressed proxy, grounding and merging into the insights document, cost.
//! - [`grounding`] turns what a model says about time into times the video has; [`schema`]
//!   checks user-supplied JSON Schemas and the answers against them; [`prompts`] says what
//!   each feature asks for; [`cost`] prices usage; [`retry`] is the backoff that honours the
//!   server's `RetryInfo`; [`limiter`] keeps every worker within the configured requests and
//!   tokens per minute.
//! - `fake` (feature `fake`): local servers speaking both wire protocols, for tests.

pub mod cost;
pub mod engine;
pub mod gemini;
pub mod grounding;
pub mod limiter;
pub mod merge;
pub mod openai;
pub mod prompts;
pub mod retry;
pub mod schema;
mod sse;

#[cfg(feature = "fake")]
pub mod fake;

pub use async_trait::async_trait;
use futures::stream::BoxStream;
use std::path::PathBuf;
use vidsight_domain::ai::{Feature, MediaResolution, TokenUsage};
use vidsight_domain::{Result, Source};

/// The HTTP client of a provider: connect within 20 s, each call within `timeout`.
pub(crate) fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .timeout(timeout)
        .user_agent(concat!("vidsight/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            vidsight_domain::Error::internal("cannot build the HTTP client").with_source(error)
        })
}

/// A secret (API key): never printed, in `Debug` or anywhere else.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

/// A keyframe the local analyzer kept, for providers that look at images.
#[derive(Clone, Debug)]
pub struct Still {
    /// Seconds into the video.
    pub time: f64,
    pub jpeg: Vec<u8>,
}

/// One request to a provider: everything is resolved (model, features, clip).
#[derive(Clone, Debug)]
pub struct ProviderRequest {
    /// The file to send (the original or its compressed proxy).
    pub video: PathBuf,
    pub mime_type: String,
    /// The video's duration in seconds.
    pub duration: f64,
    pub model: String,
    pub features: Vec<Feature>,
    /// The JSON Schema of the whole answer (one property per feature), standard JSON Schema.
    pub answer_schema: serde_json::Value,
    pub system: String,
    pub prompt: String,
    pub media_resolution: Option<MediaResolution>,
    pub fps: Option<f64>,
    /// The clip to look at, seconds.
    pub clip: Option<(f64, f64)>,
    /// Keyframes (for image-only providers) and text the local analysis read or heard.
    pub stills: Vec<Still>,
    pub context_text: String,
    pub display_name: String,
    /// The content's SHA-256: providers that keep uploads (Gemini's Files API, 48 h) find
    /// them again by it.
    pub content_sha256: String,
}

/// What a provider answered.
#[derive(Clone, Debug, Default)]
pub struct ProviderAnswer {
    /// The parsed JSON answer (not yet grounded).
    pub answer: serde_json::Value,
    pub usage: TokenUsage,
    /// Each response as received, for audit.
    pub raw: Vec<serde_json::Value>,
    /// Bytes sent (video, images).
    pub bytes_uploaded: u64,
    /// Worth a warning in the insights (e.g. the model saw no video).
    pub warnings: Vec<String>,
    /// The model the provider reports it ran (may be more precise than the one asked for).
    pub model_version: Option<String>,
}

/// A question about a video, possibly continuing a conversation.
#[derive(Clone, Debug)]
pub struct AskRequest {
    pub video: PathBuf,
    pub mime_type: String,
    pub duration: f64,
    pub model: String,
    pub system: String,
    /// Earlier turns, oldest first: (question, answer).
    pub history: Vec<(String, String)>,
    pub question: String,
    pub media_resolution: Option<MediaResolution>,
    pub stills: Vec<Still>,
    pub context_text: String,
    pub display_name: String,
    pub content_sha256: String,
}

/// A piece of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AskEvent {
    /// More text.
    Delta(String),
    /// The end: the usage of the whole answer.
    Done(TokenUsage),
}

/// An analysis provider.
#[async_trait]
pub trait Provider: Send + Sync {
    fn source(&self) -> Source;
    /// The configured default model.
    fn default_model(&self) -> &str;
    /// Tokens the request will probably cost (prompt and a guess at the answer), before
    /// anything is uploaded.
    async fn estimate(&self, request: &ProviderRequest) -> Result<u64>;
    async fn analyze(&self, request: &ProviderRequest) -> Result<ProviderAnswer>;
    /// Answers a question, streamed.
    async fn ask(&self, request: &AskRequest) -> Result<BoxStream<'static, Result<AskEvent>>>;
}
