//! A local imitation of an OpenAI-compatible chat-completions server with image input, the
//! protocol Ollama, vLLM, LM Studio and OpenRouter share.
//!
//! What it imitates:
//!
//! - **Auth**: none by default (local servers), or a required bearer key
//!   ([`FakeOpenAi::require_key`]); a wrong or missing key is OpenAI's
//!   `401 invalid_api_key`.
//! - **`GET /v1/models`** → `{"object":"list","data":[{"id","object":"model",...}]}`.
//! - **`POST /v1/chat/completions`**: validates the model, the messages (string content or
//!   `text` / `image_url` parts whose `data:` URLs must decode), `response_format`; answers a
//!   `chat.completion`, or with `stream: true` `chat.completion.chunk` events ended by
//!   `data: [DONE]`.
//! - **The switches in which the servers differ**: at most one image per message (or per
//!   request, as vLLM's `limit_mm_per_prompt`), and whether `json_schema` response formats
//!   are supported.
//! - **Errors** as `{"error":{"message","type","param","code"}}`; 429 carries `retry-after`.
//!
//! Answers come from a FIFO of scripted [`Reply`] values, then from a responder closure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{
    header_text, json_response, lock, random_id, split_for_stream, text_tokens, Bound, Recorded,
    Recorder, ServerHandle,
};

/// The models known until [`FakeOpenAi::set_models`] says otherwise.
pub const DEFAULT_MODELS: &[&str] = &["llava:13b", "qwen2.5-vl"];

/// Prompt tokens counted per image (OpenAI's "low detail" price of an image).
pub const TOKENS_PER_IMAGE: u64 = 85;

/// The largest request body read (a few large base64 frames fit).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How many content deltas a streamed answer is split into.
const STREAM_PIECES: usize = 3;
/// The roles a chat message may have.
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// One scripted answer to `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An assistant message with this content.
    Text {
        text: String,
        /// `stop`, `length`, ...
        finish_reason: String,
    },
    /// An HTTP error `{"error":{"message","type","param":null,"code":kind}}`.
    Error {
        status: u16,
        message: String,
        /// The error `code` (`"rate_limit_exceeded"`, `"server_error"`, ...).
        kind: String,
        /// Seconds for a `retry-after` header.
        retry_after: Option<u64>,
    },
}

impl Reply {
    /// A complete answer (`finish_reason: stop`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            finish_reason: "stop".to_owned(),
        }
    }

    /// An answer cut at `max_tokens` (`finish_reason: length`): possibly broken JSON.
    pub fn truncated(partial: impl Into<String>) -> Self {
        Self::Text {
            text: partial.into(),
            finish_reason: "length".to_owned(),
        }
    }

    /// `429 rate_limit_exceeded` with `retry-after: <seconds>`.
    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        Self::Error {
            status: 429,
            message: "Rate limit reached for requests. Please try again later.".to_owned(),
            kind: "rate_limit_exceeded".to_owned(),
            retry_after: Some(retry_after_seconds),
        }
    }

    /// `500 server_error`.
    pub fn internal() -> Self {
        Self::error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    }

    /// `503`: the model is loading or the server is overloaded.
    pub fn unavailable() -> Self {
        Self::error(
            503,
            "The server is overloaded or not ready yet.",
            "service_unavailable",
        )
    }

    /// Any error without `retry-after`.
    pub fn error(status: u16, message: impl Into<String>, kind: &str) -> Self {
        Self::Error {
            status,
            message: message.into(),
            kind: kind.to_owned(),
            retry_after: None,
        }
    }
}

type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// A local OpenAI-compatible server. Start it with [`FakeOpenAi::start`] inside a tokio
/// runtime; it stops when dropped.
pub struct FakeOpenAi {
    shared: Arc<Shared>,
    _server: ServerHandle,
}

impl std::fmt::Debug for FakeOpenAi {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FakeOpenAi")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl FakeOpenAi {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> Self {
        let bound = Bound::local().await;
        let shared = Arc::new(Shared {
            origin: bound.origin.clone(),
            recorder: Recorder::default(),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/v1/models", get(list_models))
            .route("/v1/chat/completions", post(chat_completions))
            .fallback(unknown_route)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::clone(&shared));
        let server = bound.serve(router);
        Self {
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, no trailing slash, as these servers' base URLs are given.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.shared.origin)
    }

    /// Requires `Authorization: Bearer <key>` from now on (by default no key is needed, as
    /// with a local Ollama).
    pub fn require_key(&self, key: &str) {
        lock(&self.shared.inner).required_key = Some(key.to_owned());
    }

    /// The models that exist; any other is `404 model_not_found`. Default: [`DEFAULT_MODELS`].
    pub fn set_models(&self, names: &[&str]) {
        lock(&self.shared.inner).models = names.iter().map(|name| (*name).to_owned()).collect();
    }

    /// With `on`, a message holding more than one image is refused with vLLM's
    /// "At most 1 image(s) may be provided in one request." (default off).
    pub fn set_one_image_per_message(&self, on: bool) {
        lock(&self.shared.inner).one_image_per_message = on;
    }

    /// Refuses requests with more than `max` images in all (vLLM's `limit_mm_per_prompt`);
    /// `None` (the default) for no limit.
    pub fn set_max_images_per_request(&self, max: Option<usize>) {
        lock(&self.shared.inner).max_images_per_request = max;
    }

    /// Whether `response_format: {"type":"json_schema",...}` is accepted (default on);
    /// `{"type":"json_object"}` always is.
    pub fn set_json_schema_supported(&self, on: bool) {
        lock(&self.shared.inner).json_schema_supported = on;
    }

    /// Queues an answer for the next chat request that passes validation.
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

    /// Every request received so far, in order; chat requests carry
    /// [`Recorded::images_per_message`].
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorder.all()
    }

    /// The requests whose path contains `path_contains` (e.g. `"/chat/completions"`).
    pub fn requests_to(&self, path_contains: &str) -> Vec<Recorded> {
        self.shared.recorder.to_path(path_contains)
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        self.shared.recorder.clear();
    }
}

struct Shared {
    origin: String,
    recorder: Recorder,
    inner: Mutex<Inner>,
}

struct Inner {
    required_key: Option<String>,
    models: Vec<String>,
    one_image_per_message: bool,
    max_images_per_request: Option<usize>,
    json_schema_supported: bool,
    replies: VecDeque<Reply>,
    responder: Responder,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            required_key: None,
            models: DEFAULT_MODELS
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            one_image_per_message: false,
            max_images_per_request: None,
            json_schema_supported: true,
            replies: VecDeque::new(),
            responder: Arc::new(|_| Reply::text("{}")),
        }
    }
}

/// An error as OpenAI sends it.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    /// `type`: derived from the status unless given.
    kind: &'static str,
    code: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>, code: Option<&str>) -> Self {
        let kind = match status {
            400..=428 => "invalid_request_error",
            429 => "requests",
            _ => "server_error",
        };
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            kind,
            code: code.map(str::to_owned),
            retry_after: None,
        }
    }

    /// `400 invalid_request_error`.
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": null,
            "code": self.code,
        }});
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl Shared {
    /// Checks the bearer key when one is required.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(required) = lock(&self.inner).required_key.clone() else {
            return Ok(());
        };
        let given = header_text(headers, "authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        if given == Some(required.as_str()) {
            return Ok(());
        }
        Err(ApiError::new(
            401,
            "Incorrect API key provided",
            Some("invalid_api_key"),
        ))
    }
}

/// `GET /v1/models`.
async fn list_models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared
        .recorder
        .push(Recorded::from_parts(&method, &uri, &headers));
    if let Err(error) = shared.authorize(&headers) {
        return error.into_response();
    }
    let data: Vec<Value> = lock(&shared.inner)
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "library"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Any other path: 404 in OpenAI's format.
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
    ApiError::new(404, format!("Invalid URL ({method} {})", uri.path()), None).into_response()
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut record = Recorded::from_parts(&method, &uri, &headers).with_body(&body);
    if let Some(request) = &record.body_json {
        record.images_per_message = images_per_message(request);
    }
    shared.recorder.push(record);
    shared
        .chat(&headers, &body)
        .unwrap_or_else(IntoResponse::into_response)
}

/// What a valid chat request asks for.
struct ChatRequest {
    model: String,
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
}

impl Shared {
    fn chat(&self, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
        self.authorize(headers)?;
        let request: Value = serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means \
                 you aren't using your HTTP library correctly.)",
            )
        })?;
        let (chat, scripted, responder) = {
            let mut inner = lock(&self.inner);
            let chat = validate(&inner, &request)?;
            (
                chat,
                inner.replies.pop_front(),
                Arc::clone(&inner.responder),
            )
        };
        // The responder runs outside the lock: it may take its time.
        let reply = scripted.unwrap_or_else(|| responder(&request));
        match reply {
            Reply::Error {
                status,
                message,
                kind,
                retry_after,
            } => Err(ApiError {
                retry_after,
                ..ApiError::new(status, message, Some(&kind))
            }),
            Reply::Text {
                text,
                finish_reason,
            } => Ok(completion(&chat, &text, &finish_reason)),
        }
    }
}

/// Validates a chat request as the servers do and counts its prompt tokens.
fn validate(inner: &Inner, request: &Value) -> Result<ChatRequest, ApiError> {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or_else(|| ApiError::invalid("you must provide a model parameter"))?;
    if !inner.models.iter().any(|known| known == model) {
        return Err(ApiError::new(
            404,
            format!("The model `{model}` does not exist or you do not have access to it."),
            Some("model_not_found"),
        ));
    }

    let messages = match request.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid("[] is too short - 'messages'"));
        }
        _ => return Err(ApiError::invalid("Missing required parameter: 'messages'.")),
    };
    let mut text_chars = 0;
    let mut images_total = 0;
    for (index, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid(format!(
                "Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', \
                 'assistant', and 'tool'. (messages[{index}].role)"
            )));
        }
        let (chars, images) = inspect_content(message.get("content"), index)?;
        if inner.one_image_per_message && images > 1 {
            return Err(ApiError::invalid(
                "At most 1 image(s) may be provided in one request.",
            ));
        }
        text_chars += chars;
        images_total += images;
    }
    if let Some(max) = inner.max_images_per_request {
        if images_total > max {
            return Err(ApiError::invalid(format!(
                "At most {max} image(s) may be provided in one request."
            )));
        }
    }

    if let Some(format) = request
        .get("response_format")
        .filter(|format| !format.is_null())
    {
        match format.get("type").and_then(Value::as_str) {
            Some("text") | Some("json_object") => {}
            Some("json_schema") if !inner.json_schema_supported => {
                return Err(ApiError::invalid(
                    "response_format json_schema is not supported",
                ));
            }
            Some("json_schema") => {
                let schema = format.get("json_schema");
                if !schema.is_some_and(Value::is_object) {
                    return Err(ApiError::invalid(
                        "Missing required parameter: 'response_format.json_schema'.",
                    ));
                }
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "Invalid value: {other:?}. Supported values are: 'text', 'json_object', \
                     and 'json_schema'. (response_format.type)"
                )));
            }
        }
    }

    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ChatRequest {
        model: model.to_owned(),
        stream,
        include_usage,
        prompt_tokens: text_tokens(text_chars)
            + TOKENS_PER_IMAGE * u64::try_from(images_total).unwrap_or(u64::MAX),
    })
}

/// Validates a message's content; returns its text characters and images.
fn inspect_content(content: Option<&Value>, index: usize) -> Result<(usize, usize), ApiError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok((0, 0)),
        Some(Value::String(text)) => return Ok((text.chars().count(), 0)),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "Invalid type for 'messages[{index}].content': expected a string or an array \
                 of content parts."
            )))
        }
    };
    let mut chars = 0;
    let mut images = 0;
    for (part_index, part) in parts.iter().enumerate() {
        let at = format!("messages[{index}].content[{part_index}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::invalid(format!("Missing required parameter: '{at}.text'."))
                })?;
                chars += text.chars().count();
            }
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "Missing required parameter: '{at}.image_url.url'."
                        ))
                    })?;
                check_image_url(url, &at)?;
                images += 1;
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "Invalid value: {other:?}. Supported values are: 'text' and 'image_url'. \
                     ({at}.type)"
                )))
            }
        }
    }
    Ok((chars, images))
}

/// An image URL must be a `data:image/...;base64,` URL that decodes, or an http(s) URL
/// (accepted without fetching).
fn check_image_url(url: &str, at: &str) -> Result<(), ApiError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    let payload = url
        .strip_prefix("data:image/")
        .and_then(|rest| rest.split_once(";base64,"))
        .map(|(_, payload)| payload);
    let decodes = payload.is_some_and(|payload| {
        !payload.is_empty()
            && base64::engine::general_purpose::STANDARD
                .decode(payload)
                .is_ok()
    });
    if decodes {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid image URL at '{at}.image_url.url': expected a data:image/...;base64, URL \
             whose payload is valid base64."
        )))
    }
}

/// The number of `image_url` parts in each message, for the record (any body shape).
fn images_per_message(request: &Value) -> Vec<usize> {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
    messages
        .iter()
        .map(|message| {
            message
                .get("content")
                .and_then(Value::as_array)
                .map_or(0, |parts| {
                    parts
                        .iter()
                        .filter(|part| {
                            part.get("type").and_then(Value::as_str) == Some("image_url")
                        })
                        .count()
                })
        })
        .collect()
}

/// The answer: a `chat.completion`, or `chat.completion.chunk` events and `[DONE]`.
fn completion(chat: &ChatRequest, text: &str, finish_reason: &str) -> Response {
    let id = format!("chatcmpl-{}", random_id(24));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let completion_tokens = text_tokens(text.chars().count());
    let usage = json!({
        "prompt_tokens": chat.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": chat.prompt_tokens + completion_tokens,
    });
    if !chat.stream {
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": chat.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }],
            "usage": usage,
        });
        return json_response(StatusCode::OK, &body);
    }

    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    chunks.extend(
        split_for_stream(text, STREAM_PIECES)
            .into_iter()
            .filter(|piece| !piece.is_empty())
            .map(|piece| chunk(json!({"content": piece}), None)),
    );
    chunks.push(chunk(json!({}), Some(finish_reason)));
    if chat.include_usage {
        chunks.push(json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model,
            "choices": [],
            "usage": usage,
        }));
    }
    let mut events: Vec<String> = chunks
        .iter()
        .map(|chunk| format!("data: {chunk}\n\n"))
        .collect();
    events.push("data: [DONE]\n\n".to_owned());
    super::event_stream(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Client;

    const JPEG: &str = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD";

    fn image() -> Value {
        json!({"type": "image_url", "image_url": {"url": JPEG}})
    }

    fn chat_body(images: usize) -> Value {
        let mut content = vec![json!({"type": "text", "text": "Describe these frames."})];
        content.extend((0..images).map(|_| image()));
        json!({
            "model": "llava:13b",
            "messages": [
                {"role": "system", "content": "You are a video analyst."},
                {"role": "user", "content": content}
            ]
        })
    }

    async fn post(fake: &FakeOpenAi, body: &Value) -> reqwest::Response {
        Client::new()
            .post(format!("{}/chat/completions", fake.base_url()))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn error_of(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["error"].clone())
    }

    #[tokio::test]
    async fn answers_a_chat_with_usage_and_records_images() {
        let fake = FakeOpenAi::start().await;
        assert!(fake.base_url().ends_with("/v1"));
        fake.push_reply(Reply::text("[{\"t\":1}]"));
        let response = post(&fake, &chat_body(2)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], "llava:13b");
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(body["choices"][0]["message"]["content"], "[{\"t\":1}]");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        // "You are a video analyst." + "Describe these frames." = 46 characters, 12 tokens.
        assert_eq!(body["usage"]["prompt_tokens"], 12 + 2 * 85);
        assert_eq!(body["usage"]["completion_tokens"], 3);
        assert_eq!(body["usage"]["total_tokens"], 12 + 2 * 85 + 3);

        let recorded = fake.requests_to("/chat/completions");
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].images_per_message, vec![0, 2]);

        // The responder answers once the queue is empty.
        fake.set_responder(|request| Reply::truncated(request["model"].as_str().unwrap()));
        let body: Value = post(&fake, &chat_body(0)).await.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "llava:13b");
        assert_eq!(body["choices"][0]["finish_reason"], "length");
    }

    #[tokio::test]
    async fn models_keys_and_unknown_models() {
        let fake = FakeOpenAi::start().await;
        let models: Value = Client::new()
            .get(format!("{}/models", fake.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(models["object"], "list");
        assert_eq!(
            models["data"][1],
            json!({"id": "qwen2.5-vl", "object": "model", "created": 1_700_000_000, "owned_by": "library"})
        );

        let mut unknown = chat_body(0);
        unknown["model"] = json!("gpt-9");
        let (status, error) = error_of(post(&fake, &unknown).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("model_not_found"))
        );

        fake.require_key("sk-local");
        let (status, error) = error_of(post(&fake, &chat_body(0)).await).await;
        assert_eq!(status, 401);
        assert_eq!(error["message"], "Incorrect API key provided");
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "invalid_api_key");
        let keyed = Client::new()
            .post(format!("{}/chat/completions", fake.base_url()))
            .bearer_auth("sk-local")
            .json(&chat_body(0))
            .send()
            .await
            .unwrap();
        assert_eq!(keyed.status(), 200);
    }

    #[tokio::test]
    async fn image_rules_and_bad_images() {
        let fake = FakeOpenAi::start().await;
        assert_eq!(post(&fake, &chat_body(3)).await.status(), 200);

        fake.set_one_image_per_message(true);
        let (status, error) = error_of(post(&fake, &chat_body(2)).await).await;
        assert_eq!(status, 400);
        assert_eq!(
            error["message"],
            "At most 1 image(s) may be provided in one request."
        );
        assert_eq!(post(&fake, &chat_body(1)).await.status(), 200);
        assert_eq!(
            fake.requests().last().unwrap().images_per_message,
            vec![0, 1]
        );

        fake.set_one_image_per_message(false);
        fake.set_max_images_per_request(Some(2));
        assert_eq!(post(&fake, &chat_body(3)).await.status(), 400);

        let mut broken = chat_body(1);
        broken["messages"][1]["content"][1]["image_url"]["url"] =
            json!("data:image/jpeg;base64,@@@");
        let (status, error) = error_of(post(&fake, &broken).await).await;
        assert_eq!(status, 400);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("Invalid image URL"));
    }

    #[tokio::test]
    async fn json_schema_switch() {
        let fake = FakeOpenAi::start().await;
        let mut schema = chat_body(0);
        schema["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "events", "schema": {"type": "array"}}});
        let mut object = chat_body(0);
        object["response_format"] = json!({"type": "json_object"});

        assert_eq!(post(&fake, &schema).await.status(), 200);
        fake.set_json_schema_supported(false);
        let (status, error) = error_of(post(&fake, &schema).await).await;
        assert_eq!(status, 400);
        assert_eq!(
            error["message"],
            "response_format json_schema is not supported"
        );
        assert_eq!(post(&fake, &object).await.status(), 200);
    }

    #[tokio::test]
    async fn errors_and_retry_after() {
        let fake = FakeOpenAi::start().await;
        fake.push_reply(Reply::rate_limited(3));
        fake.push_reply(Reply::unavailable());
        let response = post(&fake, &chat_body(0)).await;
        assert_eq!(response.headers()["retry-after"], "3");
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (429, Some("rate_limit_exceeded"))
        );
        assert_eq!(post(&fake, &chat_body(0)).await.status(), 503);
        assert_eq!(fake.pending_replies(), 0);
    }

    #[tokio::test]
    async fn stream_ends_with_done() {
        let fake = FakeOpenAi::start().await;
        fake.push_reply(Reply::text("Three short words."));
        let mut request = chat_body(1);
        request["stream"] = json!(true);
        request["stream_options"] = json!({"include_usage": true});
        let response = post(&fake, &request).await;
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let text = response.text().await.unwrap();
        let events: Vec<&str> = text
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| event.strip_prefix("data: ").unwrap())
            .collect();
        assert_eq!(events.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|event| serde_json::from_str(event).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Three short words.");
        let finish = chunks
            .iter()
            .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str());
        assert_eq!(finish, Some("stop"));
        assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);
    }
}
