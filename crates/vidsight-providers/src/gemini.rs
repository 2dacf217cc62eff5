//! Google's Gemini API (v1beta REST), written against the wire protocol rather than an SDK
//! (there is no official Rust one): the Files API's resumable upload, generateContent with a
//! response schema, countTokens, and streamGenerateContent for answers.
//!
//! - Uploads go in chunks of the server's granularity (8 MiB) read from the file, never the
//!   whole video in memory; after a broken chunk the client asks the server how much it has
//!   (`query`) and resumes from there.
//! - Files are polled until ACTIVE with backoff and a deadline; a FAILED file fails the run.
//!   Uploaded files are kept (48 h on Google's side) for follow-up questions when configured,
//!   else deleted when the run ends.
//! - Small videos (the whole request under `inline_max_bytes`) go inline, no upload.
//! - Every call retries 408/429/5xx and broken connections with backoff and jitter, waiting
//!   exactly as long as the server's `RetryInfo` says when it says; all workers share a
//!   requests/tokens-per-minute limiter.
//! - The key travels in the `x-goog-api-key` header only (never in a URL, which servers
//!   echo back), and no error or log line contains it.

use crate::limiter::Limiter;
use crate::retry::{retry_after_header, retry_info_delay, retryable_status, RetryPolicy};
use crate::{AskEvent, AskRequest, Provider, ProviderAnswer, ProviderRequest, Secret};
use async_trait::async_trait;
use base64::Engine as _;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use vidsight_cache::Cache;
use vidsight_domain::ai::{MediaResolution, TokenUsage};
use vidsight_domain::{Error, ErrorCode, Result, Source};

/// The public endpoint.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// How the client talks to Gemini.
#[derive(Clone, Debug)]
pub struct GeminiSettings {
    pub base_url: String,
    pub api_key: Secret,
    /// The default model (configuration; models retire, so none is compiled in).
    pub model: String,
    /// One call's limit (a long video's generateContent takes minutes).
    pub request_timeout: Duration,
    /// Upload chunk size; rounded to the server's granularity.
    pub chunk_bytes: usize,
    /// Videos whose request stays under this many bytes go inline (no upload); 0 = never.
    pub inline_max_bytes: u64,
    /// Polling of a PROCESSING file: first wait, longest wait, give up after.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    pub active_deadline: Duration,
    /// Keep uploaded files (for follow-up questions) instead of deleting them after a run.
    pub keep_files: bool,
    pub retry: RetryPolicy,
    pub temperature: f64,
    pub max_output_tokens: Option<u32>,
}

impl Default for GeminiSettings {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            api_key: Secret::default(),
            model: String::new(),
            request_timeout: Duration::from_secs(600),
            chunk_bytes: 8 * 1024 * 1024,
            inline_max_bytes: 20_000_000,
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(10),
            active_deadline: Duration::from_secs(600),
            keep_files: true,
            retry: RetryPolicy::default(),
            temperature: 0.2,
            max_output_tokens: None,
        }
    }
}

/// A file of the Files API.
#[derive(Clone, Debug, PartialEq)]
pub struct GeminiFile {
    /// `files/<id>`.
    pub name: String,
    pub uri: String,
    pub mime_type: String,
    pub state: String,
    pub size_bytes: u64,
    pub error: Option<String>,
}

impl GeminiFile {
    fn from_json(value: &Value) -> Result<Self> {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        let file = GeminiFile {
            name: text("name"),
            uri: text("uri"),
            mime_type: text("mimeType"),
            state: text("state"),
            size_bytes: value["sizeBytes"]
                .as_str()
                .and_then(|size| size.parse().ok())
                .or_else(|| value["sizeBytes"].as_u64())
                .unwrap_or(0),
            error: value
                .get("error")
                .filter(|error| !error.is_null())
                .map(|error| {
                    error["message"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| error.to_string())
                }),
        };
        if file.name.is_empty() {
            return Err(bad_output("the Files API answered without a file name"));
        }
        Ok(file)
    }
}

/// The Gemini provider.
pub struct Gemini {
    http: reqwest::Client,
    settings: GeminiSettings,
    limiter: Limiter,
    cache: Arc<dyn Cache>,
}

/// How the video reaches the model.
enum VideoPart {
    File(GeminiFile),
    Inline { mime_type: String, base64: String },
}

impl Gemini {
    pub fn new(settings: GeminiSettings, limiter: Limiter, cache: Arc<dyn Cache>) -> Result<Self> {
        if settings.model.trim().is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "no Gemini model configured (providers.gemini.model)",
            ));
        }
        let http = crate::http_client(settings.request_timeout)?;
        Ok(Self {
            http,
            settings,
            limiter,
            cache,
        })
    }

    pub fn settings(&self) -> &GeminiSettings {
        &self.settings
    }

    /// The key as a header value marked sensitive, so no HTTP layer prints it.
    fn key_header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(self.settings.api_key.expose())
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    fn model_path(model: &str) -> String {
        let model = model.trim();
        if model.starts_with("models/") || model.starts_with("tunedModels/") {
            model.to_owned()
        } else {
            format!("models/{model}")
        }
    }

    /// Sends a request built by `build` (called again for each attempt), retrying what is
    /// worth retrying. Returns the successful response.
    async fn send(
        &self,
        what: &str,
        tokens: u64,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let policy = &self.settings.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire(tokens).await?;
            let request = build().header("x-goog-api-key", self.key_header());
            let (error, server_delay) = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let header_delay = retry_after_header(response.headers());
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let error = map_error(status, &body, what);
                    if !retryable_status(status) {
                        return Err(error);
                    }
                    (error, retry_info_delay(&body).or(header_delay))
                }
                Err(error) => (
                    Error::new(
                        ErrorCode::ProviderUnavailable,
                        format!("Gemini could not be reached ({what}): {}", describe(&error)),
                    ),
                    None,
                ),
            };
            if attempt >= policy.attempts {
                return Err(with_delay(error, server_delay));
            }
            if server_delay.is_some_and(|delay| delay > policy.max_server_delay) {
                // the server asks for longer than a worker should wait: give the job back
                return Err(with_delay(error, server_delay));
            }
            let delay = policy.delay(attempt, server_delay);
            tracing::warn!(call = what, attempt, code = %error.code, wait_ms = delay.as_millis() as u64,
                honouring_retry_info = server_delay.is_some(), "Gemini call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_json(
        &self,
        what: &str,
        tokens: u64,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value> {
        let response = self.send(what, tokens, build).await?;
        response.json().await.map_err(|error| {
            Error::new(
                ErrorCode::ProviderUnavailable,
                format!(
                    "Gemini's answer to {what} could not be read: {}",
                    describe(&error)
                ),
            )
        })
    }

    /// Uploads a file with the resumable protocol, chunk by chunk from disk.
    pub async fn upload(
        &self,
        path: &Path,
        mime_type: &str,
        display_name: &str,
    ) -> Result<GeminiFile> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|error| Error::internal("cannot read the video to upload").with_source(error))?
            .len();
        let start_url = self.url("/upload/v1beta/files");
        let metadata = json!({"file": {"display_name": display_name}});
        let response = self
            .send("upload start", 0, || {
                self.http
                    .post(&start_url)
                    .header("X-Goog-Upload-Protocol", "resumable")
                    .header("X-Goog-Upload-Command", "start")
                    .header("X-Goog-Upload-Header-Content-Length", size.to_string())
                    .header("X-Goog-Upload-Header-Content-Type", mime_type)
                    .json(&metadata)
            })
            .await?;
        let upload_url = header(response.headers(), "x-goog-upload-url")
            .ok_or_else(|| bad_output("the upload start answered without x-goog-upload-url"))?;
        let granularity: usize = header(response.headers(), "x-goog-upload-chunk-granularity")
            .and_then(|value| value.parse().ok())
            .filter(|value| *value > 0)
            .unwrap_or(8 * 1024 * 1024);
        let chunk = (self.settings.chunk_bytes / granularity).max(1) * granularity;

        let mut file = tokio::fs::File::open(path).await.map_err(|error| {
            Error::internal("cannot open the video to upload").with_source(error)
        })?;
        let mut offset = 0u64;
        let mut failures = 0u32;
        let mut buffer = Vec::with_capacity(chunk.min(size as usize));
        loop {
            let length = (size - offset).min(chunk as u64);
            let last = offset + length == size;
            buffer.clear();
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .and(Ok(()))
                .map_err(|error| Error::internal("cannot read the video").with_source(error))?;
            (&mut file)
                .take(length)
                .read_to_end(&mut buffer)
                .await
                .map_err(|error| Error::internal("cannot read the video").with_source(error))?;
            let command = if last { "upload, finalize" } else { "upload" };
            let sent = self
                .http
                .post(&upload_url)
                .header("x-goog-api-key", self.key_header())
                .header("X-Goog-Upload-Command", command)
                .header("X-Goog-Upload-Offset", offset.to_string())
                .body(buffer.clone())
                .send()
                .await;
            let status = match &sent {
                Ok(response) => header(response.headers(), "x-goog-upload-status"),
                Err(_) => None,
            };
            match (status.as_deref(), sent) {
                (Some("final"), Ok(response)) => {
                    let body: Value = response.json().await.map_err(|error| {
                        bad_output(&format!(
                            "the finished upload's answer: {}",
                            describe(&error)
                        ))
                    })?;
                    return GeminiFile::from_json(&body["file"]);
                }
                (Some("active"), Ok(response)) if response.status().is_success() => {
                    offset += length;
                    failures = 0;
                }
                (_, Ok(response)) if response.status().is_client_error() && status.is_some() => {
                    let code = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    return Err(map_error(code, &body, "upload"));
                }
                (_, sent) => {
                    // no status: the connection broke or the server failed mid-chunk; ask
                    // how much it has and go on from there (the SDKs' 3 tries, 1-2-4 s)
                    failures += 1;
                    let detail = match sent {
                        Ok(response) => format!("HTTP {}", response.status().as_u16()),
                        Err(error) => describe(&error),
                    };
                    if failures > 3 {
                        return Err(Error::new(
                            ErrorCode::ProviderUnavailable,
                            format!("the upload to Gemini kept failing at byte {offset} of {size} ({detail})"),
                        ));
                    }
                    tracing::warn!(
                        offset,
                        size,
                        failures,
                        detail,
                        "upload chunk failed; querying the server and resuming"
                    );
                    tokio::time::sleep(Duration::from_secs(1 << (failures - 1))).await;
                    let (state, received, body) = self.query_upload(&upload_url).await?;
                    if state == "final" {
                        return GeminiFile::from_json(&body["file"]);
                    }
                    if received > size {
                        return Err(bad_output(
                            "the server reports more bytes than the file has",
                        ));
                    }
                    offset = received;
                }
            }
        }
    }

    /// Asks how much of an upload arrived: (status, bytes received, body).
    async fn query_upload(&self, upload_url: &str) -> Result<(String, u64, Value)> {
        let response = self
            .send("upload query", 0, || {
                self.http
                    .post(upload_url)
                    .header("X-Goog-Upload-Command", "query")
            })
            .await?;
        let state = header(response.headers(), "x-goog-upload-status").unwrap_or_default();
        let received = header(response.headers(), "x-goog-upload-size-received")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| {
                bad_output("the upload query answered without x-goog-upload-size-received")
            })?;
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((state, received, body))
    }

    pub async fn get_file(&self, name: &str) -> Result<GeminiFile> {
        let url = self.url(&format!("/v1beta/{}", file_name(name)));
        let body = self
            .send_json("get file", 0, || self.http.get(&url))
            .await?;
        GeminiFile::from_json(&body)
    }

    pub async fn delete_file(&self, name: &str) -> Result<()> {
        let url = self.url(&format!("/v1beta/{}", file_name(name)));
        self.send("delete file", 0, || self.http.delete(&url))
            .await?;
        Ok(())
    }

    /// Polls until the file is ACTIVE (backoff from `poll_initial` to `poll_max`), failing
    /// when it ends FAILED or the deadline passes.
    pub async fn wait_active(&self, mut file: GeminiFile) -> Result<GeminiFile> {
        let deadline = Instant::now() + self.settings.active_deadline;
        let mut wait = self.settings.poll_initial;
        loop {
            match file.state.as_str() {
                "ACTIVE" => return Ok(file),
                // Gemini cannot use this video: trying again will not change that
                "FAILED" => {
                    return Err(Error::new(
                        ErrorCode::ProviderBadOutput,
                        format!(
                            "Gemini could not process the video ({} is FAILED: {})",
                            file.name,
                            file.error.as_deref().unwrap_or("no reason given")
                        ),
                    ))
                }
                _ => {}
            }
            if Instant::now() + wait > deadline {
                return Err(Error::new(
                    ErrorCode::ProviderUnavailable,
                    format!(
                        "Gemini was still processing the video after {} s",
                        self.settings.active_deadline.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.settings.poll_max);
            file = self.get_file(&file.name).await?;
        }
    }

    /// The file for this content: one kept from an earlier run when it is still ACTIVE,
    /// else a fresh upload. Returns whether it was uploaded now and the bytes sent.
    async fn file_for(
        &self,
        path: &Path,
        mime_type: &str,
        display_name: &str,
        sha256: &str,
    ) -> Result<(GeminiFile, u64)> {
        let key = format!("gemini:file:{sha256}");
        if let Ok(Some(name)) = self.cache.get(&key).await {
            let name = String::from_utf8_lossy(&name).into_owned();
            match self.get_file(&name).await {
                Ok(file) if file.state == "ACTIVE" => {
                    tracing::debug!(file = %file.name, "reusing the uploaded file");
                    return Ok((file, 0));
                }
                _ => {
                    let _ = self.cache.delete(&key).await;
                }
            }
        }
        let uploaded = self.upload(path, mime_type, display_name).await?;
        let bytes = uploaded.size_bytes;
        let file = self.wait_active(uploaded).await?;
        if self.settings.keep_files {
            // the Files API keeps a file 48 h; forget it a little before
            let _ = self
                .cache
                .set(
                    &key,
                    file.name.clone().into_bytes().into(),
                    Duration::from_secs(47 * 3600),
                )
                .await;
        }
        Ok((file, bytes))
    }

    async fn video_part(
        &self,
        path: &Path,
        mime_type: &str,
        display_name: &str,
        sha256: &str,
    ) -> Result<(VideoPart, u64)> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|error| Error::internal("cannot read the video").with_source(error))?
            .len();
        // base64 grows 4/3; leave 64 KiB for the prompt
        if size.saturating_mul(4) / 3 + 65_536 < self.settings.inline_max_bytes {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|error| Error::internal("cannot read the video").with_source(error))?;
            let base64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            return Ok((
                VideoPart::Inline {
                    mime_type: mime_type.to_owned(),
                    base64,
                },
                size,
            ));
        }
        let (file, sent) = self.file_for(path, mime_type, display_name, sha256).await?;
        Ok((VideoPart::File(file), sent))
    }

    async fn done_with(&self, part: &VideoPart, sha256: &str) {
        if let VideoPart::File(file) = part {
            if !self.settings.keep_files {
                let _ = self.cache.delete(&format!("gemini:file:{sha256}")).await;
                if let Err(error) = self.delete_file(&file.name).await {
                    tracing::warn!(file = %file.name, error = %error, "could not delete the uploaded file; it expires in 48 h");
                }
            }
        }
    }

    fn video_json(part: &VideoPart, clip: Option<(f64, f64)>, fps: Option<f64>) -> Value {
        let mut value = match part {
            VideoPart::File(file) => {
                json!({"fileData": {"mimeType": file.mime_type, "fileUri": file.uri}})
            }
            VideoPart::Inline { mime_type, base64 } => {
                json!({"inlineData": {"mimeType": mime_type, "data": base64}})
            }
        };
        let mut metadata = serde_json::Map::new();
        if let Some((start, end)) = clip {
            metadata.insert("startOffset".into(), json!(proto_duration(start)));
            metadata.insert("endOffset".into(), json!(proto_duration(end)));
        }
        if let Some(fps) = fps {
            metadata.insert("fps".into(), json!(fps));
        }
        if !metadata.is_empty() {
            value["videoMetadata"] = Value::Object(metadata);
        }
        value
    }

    fn generation_config(
        &self,
        request_schema: Option<Value>,
        resolution: Option<MediaResolution>,
    ) -> Value {
        let mut config = json!({"temperature": self.settings.temperature});
        if let Some(schema) = request_schema {
            config["responseMimeType"] = json!("application/json");
            config["responseSchema"] = schema;
        }
        if let Some(resolution) = resolution {
            config["mediaResolution"] = json!(media_resolution(resolution));
        }
        if let Some(max) = self.settings.max_output_tokens {
            config["maxOutputTokens"] = json!(max);
        }
        config
    }

    /// countTokens for a request's contents: the exact prompt size.
    pub async fn count_tokens(&self, model: &str, contents: &Value) -> Result<u64> {
        let url = self.url(&format!("/v1beta/{}:countTokens", Self::model_path(model)));
        let body = json!({"contents": contents});
        let answer = self
            .send_json("countTokens", 0, || self.http.post(&url).json(&body))
            .await?;
        answer["totalTokens"]
            .as_u64()
            .ok_or_else(|| bad_output("countTokens answered without totalTokens"))
    }
}

#[async_trait]
impl Provider for Gemini {
    fn source(&self) -> Source {
        Source::Gemini
    }

    fn default_model(&self) -> &str {
        &self.settings.model
    }

    async fn estimate(&self, request: &ProviderRequest) -> Result<u64> {
        Ok(estimate_tokens(
            clip_seconds(request.duration, request.clip),
            request.fps.unwrap_or(1.0),
            request.media_resolution,
            request.prompt.len() + request.context_text.len() + request.system.len(),
            request.features.len(),
        ))
    }

    async fn analyze(&self, request: &ProviderRequest) -> Result<ProviderAnswer> {
        let schema =
            crate::schema::to_gemini_schema(&request.answer_schema).map_err(|message| {
                Error::new(
                    ErrorCode::InvalidInput,
                    format!("the answer schema cannot be sent to Gemini: {message}"),
                )
            })?;
        let estimate = self.estimate(request).await?;
        let (part, bytes_uploaded) = self
            .video_part(
                &request.video,
                &request.mime_type,
                &request.display_name,
                &request.content_sha256,
            )
            .await?;
        let mut prompt = request.prompt.clone();
        if !request.context_text.is_empty() {
            prompt.push_str("\n\nWhat a local analysis found (use it to place times exactly):\n");
            prompt.push_str(&request.context_text);
        }
        let contents = json!([{"role": "user", "parts": [
            Self::video_json(&part, request.clip, request.fps),
            {"text": prompt}
        ]}]);
        let body = json!({
            "systemInstruction": {"parts": [{"text": request.system}]},
            "contents": contents,
            "generationConfig": self.generation_config(Some(schema), request.media_resolution),
        });
        // the exact prompt size, for the limiter and the log (a failure here costs nothing)
        let counted = match &part {
            VideoPart::File(_) => self.count_tokens(&request.model, &contents).await.ok(),
            VideoPart::Inline { .. } => None,
        };
        let url = self.url(&format!(
            "/v1beta/{}:generateContent",
            Self::model_path(&request.model)
        ));
        let result = self
            .send_json("generateContent", counted.unwrap_or(estimate), || {
                self.http.post(&url).json(&body)
            })
            .await;
        self.done_with(&part, &request.content_sha256).await;
        let raw = result?;
        let (text, usage) = read_response(&raw)?;
        let mut warnings = Vec::new();
        if !usage.by_modality.contains_key("VIDEO") {
            warnings.push("the model received no video frames (a clip under about 0.5 s?): its answer is not grounded in the picture".to_owned());
        }
        let answer = crate::schema::parse_model_json(&text).map_err(|problem| {
            Error::new(
                ErrorCode::ProviderBadOutput,
                format!("Gemini's answer is not the JSON asked for: {problem}"),
            )
        })?;
        tracing::info!(model = %request.model, prompt_tokens = usage.prompt, counted = ?counted, answer_tokens = usage.candidates, "Gemini analysis answered");
        Ok(ProviderAnswer {
            answer,
            model_version: raw["modelVersion"].as_str().map(str::to_owned),
            usage,
            raw: vec![raw],
            bytes_uploaded,
            warnings,
        })
    }

    async fn ask(&self, request: &AskRequest) -> Result<BoxStream<'static, Result<AskEvent>>> {
        let (part, _) = self
            .video_part(
                &request.video,
                &request.mime_type,
                &request.display_name,
                &request.content_sha256,
            )
            .await?;
        let mut contents = Vec::new();
        let mut first = true;
        for (question, answer) in &request.history {
            let mut parts = Vec::new();
            if first {
                parts.push(Self::video_json(&part, None, None));
                first = false;
            }
            parts.push(json!({"text": question}));
            contents.push(json!({"role": "user", "parts": parts}));
            contents.push(json!({"role": "model", "parts": [{"text": answer}]}));
        }
        let mut parts = Vec::new();
        if first {
            parts.push(Self::video_json(&part, None, None));
        }
        let mut question = request.question.clone();
        if !request.context_text.is_empty() {
            question.push_str("\n\n(Local analysis, for exact times:\n");
            question.push_str(&request.context_text);
            question.push(')');
        }
        parts.push(json!({"text": question}));
        contents.push(json!({"role": "user", "parts": parts}));
        let body = json!({
            "systemInstruction": {"parts": [{"text": request.system}]},
            "contents": contents,
            "generationConfig": self.generation_config(None, request.media_resolution),
        });
        let url = self.url(&format!(
            "/v1beta/{}:streamGenerateContent?alt=sse",
            Self::model_path(&request.model)
        ));
        let estimate = estimate_tokens(
            request.duration,
            1.0,
            request.media_resolution,
            request.question.len(),
            1,
        );
        let response = self
            .send("streamGenerateContent", estimate, || {
                self.http.post(&url).json(&body)
            })
            .await?;
        let events = crate::sse::data_events(response.bytes_stream().boxed());
        let stream = events
            .map(|event| -> Result<Vec<AskEvent>> {
                let data = event.map_err(|error| {
                    Error::new(
                        ErrorCode::ProviderUnavailable,
                        format!("the answer stream broke: {}", describe(&error)),
                    )
                })?;
                let value: Value = serde_json::from_str(&data)
                    .map_err(|error| bad_output(&format!("a stream event is not JSON: {error}")))?;
                if value.get("error").is_some() {
                    let code = value["error"]["code"].as_u64().unwrap_or(500) as u16;
                    return Err(map_error(code, &value, "streamGenerateContent"));
                }
                if value.get("candidates").is_none() {
                    if let Some(reason) = value
                        .pointer("/promptFeedback/blockReason")
                        .and_then(Value::as_str)
                    {
                        return Err(Error::new(
                            ErrorCode::ProviderBlocked,
                            format!("Gemini blocked the question ({reason})"),
                        ));
                    }
                }
                let mut out = Vec::new();
                let text = candidate_text(&value);
                if !text.is_empty() {
                    out.push(AskEvent::Delta(text));
                }
                if let Some(reason) = value
                    .pointer("/candidates/0/finishReason")
                    .and_then(Value::as_str)
                {
                    match reason {
                        "STOP" | "FINISH_REASON_UNSPECIFIED" => {}
                        "MAX_TOKENS" => {
                            return Err(Error::new(
                                ErrorCode::ProviderTruncated,
                                "the answer was cut off (MAX_TOKENS)",
                            ))
                        }
                        other => {
                            return Err(Error::new(
                                ErrorCode::ProviderBlocked,
                                format!("Gemini stopped the answer ({other})"),
                            ))
                        }
                    }
                    out.push(AskEvent::Done(usage_of(&value)));
                }
                Ok(out)
            })
            .flat_map(|batch| match batch {
                Ok(events) => futures::stream::iter(events.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(error) => futures::stream::iter(vec![Err(error)]),
            });
        Ok(stream.boxed())
    }
}

/// Tokens a request will probably take: frames × tokens per frame + 32 a second of audio +
/// text, and a guess at the answer (2 000 tokens a feature).
pub fn estimate_tokens(
    seconds: f64,
    fps: f64,
    resolution: Option<MediaResolution>,
    text_chars: usize,
    features: usize,
) -> u64 {
    let per_frame = match resolution {
        Some(MediaResolution::Low) => 66.0,
        _ => 258.0,
    };
    let frames = (seconds * fps.clamp(0.01, 24.0)).ceil();
    (frames * per_frame + seconds * 32.0).ceil() as u64
        + (text_chars / 4) as u64
        + 2_000 * features.max(1) as u64
}

fn clip_seconds(duration: f64, clip: Option<(f64, f64)>) -> f64 {
    match clip {
        Some((start, end)) => (end.min(duration) - start.max(0.0)).max(0.0),
        None => duration,
    }
}

fn media_resolution(resolution: MediaResolution) -> &'static str {
    match resolution {
        MediaResolution::Low => "MEDIA_RESOLUTION_LOW",
        MediaResolution::Medium => "MEDIA_RESOLUTION_MEDIUM",
        MediaResolution::High => "MEDIA_RESOLUTION_HIGH",
    }
}

/// A protobuf duration string: `"40s"`, `"1.5s"`.
pub fn proto_duration(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{}s", millis as f64 / 1000.0)
    }
}

fn file_name(name: &str) -> String {
    if name.starts_with("files/") {
        name.to_owned()
    } else {
        format!("files/{name}")
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

fn candidate_text(value: &Value) -> String {
    value
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|part| !part["thought"].as_bool().unwrap_or(false))
                .filter_map(|part| part["text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// The usage a response reports.
pub fn usage_of(value: &Value) -> TokenUsage {
    let metadata = &value["usageMetadata"];
    let count = |key: &str| metadata[key].as_u64().unwrap_or(0);
    let by_modality = metadata["promptTokensDetails"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|detail| {
                    Some((
                        detail["modality"].as_str()?.to_owned(),
                        detail["tokenCount"].as_u64().unwrap_or(0),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    TokenUsage {
        prompt: count("promptTokenCount"),
        candidates: count("candidatesTokenCount"),
        thoughts: count("thoughtsTokenCount"),
        total: count("totalTokenCount"),
        by_modality,
    }
}

/// The text of a generateContent answer and its usage, or the code of what went wrong.
pub fn read_response(value: &Value) -> Result<(String, TokenUsage)> {
    let usage = usage_of(value);
    let Some(candidate) = value["candidates"]
        .as_array()
        .and_then(|candidates| candidates.first())
    else {
        let reason = value
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("no candidates");
        return Err(Error::new(
            ErrorCode::ProviderBlocked,
            format!("Gemini blocked the prompt ({reason})"),
        ));
    };
    let text = candidate_text(value);
    match candidate["finishReason"].as_str().unwrap_or("STOP") {
        "STOP" | "FINISH_REASON_UNSPECIFIED" => {}
        "MAX_TOKENS" => {
            return Err(Error::new(
                ErrorCode::ProviderTruncated,
                format!("Gemini's answer was cut off at {} tokens (MAX_TOKENS); ask for fewer features or a shorter clip", usage.candidates),
            ))
        }
        reason => {
            return Err(Error::new(ErrorCode::ProviderBlocked, format!("Gemini stopped the answer ({reason})")));
        }
    }
    if text.trim().is_empty() {
        return Err(bad_output("Gemini answered with no text"));
    }
    Ok((text, usage))
}

/// A Gemini error answer as one of our codes, with the server's message (which never holds
/// the key: it travels in a header).
pub fn map_error(status: u16, body: &Value, what: &str) -> Error {
    let rpc = body
        .pointer("/error/status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let reason_is = |wanted: &str| {
        body.pointer("/error/details")
            .and_then(Value::as_array)
            .is_some_and(|details| {
                details
                    .iter()
                    .any(|detail| detail["reason"].as_str() == Some(wanted))
            })
    };
    let text = format!("Gemini {what}: HTTP {status} {rpc}: {message}");
    let code = match status {
        400 if reason_is("API_KEY_INVALID") => ErrorCode::ProviderAuth,
        401 => ErrorCode::ProviderAuth,
        403 if message.contains("File") || message.contains("file") => ErrorCode::ProviderNotFound,
        403 => ErrorCode::ProviderAuth,
        404 => ErrorCode::ProviderNotFound,
        429 => ErrorCode::ProviderQuotaExceeded,
        408 | 500..=599 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::InvalidInput,
    };
    Error::new(code, text)
}

fn with_delay(error: Error, delay: Option<Duration>) -> Error {
    match delay {
        Some(delay) => error.with_retry_after(delay.as_secs_f64().ceil() as u64),
        None => error,
    }
}

fn bad_output(message: &str) -> Error {
    Error::new(ErrorCode::ProviderBadOutput, message.to_owned())
}

/// A transport error without its URL (which could carry a query string worth hiding).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the body broke off"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_their_failures_map_to_codes() {
        let ok = json!({"candidates": [{"content": {"parts": [{"text": "{\"a\":"}, {"text": "1}"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 5, "totalTokenCount": 105,
               "promptTokensDetails": [{"modality": "VIDEO", "tokenCount": 90}, {"modality": "TEXT", "tokenCount": 10}]}});
        let (text, usage) = read_response(&ok).unwrap();
        assert_eq!(text, "{\"a\":1}");
        assert_eq!(usage.by_modality["VIDEO"], 90);
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        let error = read_response(&blocked).unwrap_err();
        assert_eq!(error.code, ErrorCode::ProviderBlocked);
        assert!(error.message.contains("SAFETY"));
        let cut = json!({"candidates": [{"content": {"parts": [{"text": "{\"a\": [1, 2"}]}, "finishReason": "MAX_TOKENS"}]});
        assert_eq!(
            read_response(&cut).unwrap_err().code,
            ErrorCode::ProviderTruncated
        );
        let key = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "API key not valid.",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
        assert_eq!(map_error(400, &key, "x").code, ErrorCode::ProviderAuth);
        assert_eq!(
            map_error(404, &json!({}), "x").code,
            ErrorCode::ProviderNotFound
        );
        assert_eq!(
            map_error(429, &json!({}), "x").code,
            ErrorCode::ProviderQuotaExceeded
        );
        assert_eq!(
            map_error(503, &json!({}), "x").code,
            ErrorCode::ProviderUnavailable
        );
    }

    #[test]
    fn durations_and_estimates() {
        assert_eq!(proto_duration(40.0), "40s");
        assert_eq!(proto_duration(1.5), "1.5s");
        // a minute at 1 fps, default resolution: 60 × 258 + 60 × 32 + one feature
        assert_eq!(
            estimate_tokens(60.0, 1.0, None, 0, 1),
            60 * 258 + 60 * 32 + 2000
        );
        assert_eq!(
            estimate_tokens(60.0, 1.0, Some(MediaResolution::Low), 0, 1),
            60 * 66 + 60 * 32 + 2000
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let settings = GeminiSettings {
            api_key: Secret::new("AIzaSy-very-secret"),
            ..Default::default()
        };
        assert!(!format!("{settings:?}").contains("very-secret"));
    }
}
