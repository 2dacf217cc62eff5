//! Local servers that speak the Gemini and OpenAI wire protocols, for tests.
//!
//! No machine that runs the tests can reach the real services, so a client is tested
//! against these imitations instead. Each fake:
//!
//! - binds `127.0.0.1:0` on the current tokio runtime and stops when the value is dropped;
//! - answers exactly as the real service documents (status codes, error bodies, headers,
//!   streaming framing), validating requests as strictly as the service does, so that a
//!   client bug shows up as the same error it would meet in production;
//! - answers from a FIFO of scripted replies, then from a responder closure;
//! - records every request it receives ([`Recorded`]) for assertions.
//!
//! - [`gemini::FakeGemini`]: the Gemini API v1beta (Files API resumable upload,
//!   `generateContent`, `streamGenerateContent`, `countTokens`), with fault injection.
//! - [`openai::FakeOpenAi`]: an OpenAI-compatible chat-completions server (Ollama, vLLM,
//!   LM Studio, OpenRouter), with the switches in which those servers differ.

pub mod gemini;
pub mod openai;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One HTTP request as a fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The HTTP method, upper case (`"POST"`).
    pub method: String,
    /// The path as sent, still percent-encoded (`"/v1beta/models/gemini-3.5-flash:generateContent"`).
    pub path: String,
    /// The raw query string without the `?`; empty when there was none.
    pub query: String,
    /// Header names in lower case; a header sent several times has its values joined by `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON; `None` for an empty or non-JSON body and for upload chunks,
    /// which are never kept.
    pub body_json: Option<Value>,
    /// The number of body bytes received.
    pub body_len: usize,
    /// OpenAI fake only: the number of images in each message of a chat request, in order
    /// (empty for other requests and for the Gemini fake).
    pub images_per_message: Vec<usize>,
}

impl Recorded {
    /// Starts a record from the request line and headers; the body fields are left empty.
    pub(crate) fn from_parts(method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let mut joined: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            joined
                .entry(name.as_str().to_owned())
                .and_modify(|existing| {
                    existing.push_str(", ");
                    existing.push_str(&value);
                })
                .or_insert(value);
        }
        Self {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            headers: joined,
            body_json: None,
            body_len: 0,
            images_per_message: Vec::new(),
        }
    }

    /// Fills the body fields from a fully read body.
    pub(crate) fn with_body(mut self, body: &[u8]) -> Self {
        self.body_len = body.len();
        self.body_json = parse_json(body);
        self
    }

    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

/// The requests a fake received, in order of completion.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<Recorded>>,
}

impl Recorder {
    pub(crate) fn push(&self, request: Recorded) {
        lock(&self.requests).push(request);
    }

    pub(crate) fn all(&self) -> Vec<Recorded> {
        lock(&self.requests).clone()
    }

    pub(crate) fn to_path(&self, path_contains: &str) -> Vec<Recorded> {
        lock(&self.requests)
            .iter()
            .filter(|request| request.path.contains(path_contains))
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.requests).clear();
    }
}

/// Locks a mutex, ignoring poisoning: a test that panicked inside a responder must not
/// turn every later request into a second, confusing panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listener bound to a free local port, waiting for its router.
pub(crate) struct Bound {
    listener: TcpListener,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) origin: String,
}

impl Bound {
    /// Binds `127.0.0.1:0`. Panics when that fails: a fake that cannot listen is a broken
    /// test environment, not a condition a test can handle.
    pub(crate) async fn local() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake server: bind 127.0.0.1:0");
        let address = listener
            .local_addr()
            .expect("fake server: local address of a bound listener");
        Self {
            listener,
            origin: format!("http://{address}"),
        }
    }

    /// Serves `router` on the current tokio runtime until the returned handle is dropped.
    pub(crate) fn serve(self, router: Router) -> ServerHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(self.listener, router).with_graceful_shutdown(async move {
            // Either an explicit stop or the handle being dropped ends the wait.
            let _ = stopped.await;
        });
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "fake server stopped with an error");
            }
        });
        ServerHandle { stop: Some(stop) }
    }
}

/// Stops the server when dropped (graceful: requests in flight may finish).
#[derive(Debug)]
pub(crate) struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Parses a body as JSON; `None` when it is empty or not JSON.
pub(crate) fn parse_json(body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// The first value of `name` in a raw query string, percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A header's value as text, `None` when absent or not visible ASCII.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The rough token count both services' documentation suggests for text: one token per
/// four characters, rounded up.
pub(crate) fn text_tokens(chars: usize) -> u64 {
    u64::try_from(chars).unwrap_or(u64::MAX).div_ceil(4)
}

/// Splits `text` into about `pieces` parts of similar length, on character boundaries, as
/// a streaming model emits deltas. An empty text gives one empty piece.
pub(crate) fn split_for_stream(text: &str, pieces: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(pieces.max(1));
    chars
        .chunks(size)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// A `text/event-stream` response whose body is the given, already framed, events; each
/// event is a separate body frame, as a server that flushes per event sends them.
pub(crate) fn event_stream(events: Vec<String>) -> Response {
    let frames = futures::stream::iter(
        events
            .into_iter()
            .map(|event| Ok::<Bytes, Infallible>(Bytes::from(event))),
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// A short random identifier of lower-case letters and digits, like the services' ids.
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_for_stream_keeps_every_character_in_order() {
        let pieces = split_for_stream("héllo wörld", 3);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), "héllo wörld");
        assert_eq!(split_for_stream("", 3), vec![String::new()]);
        assert_eq!(split_for_stream("ab", 5).concat(), "ab");
    }

    #[test]
    fn text_tokens_round_up() {
        assert_eq!(text_tokens(0), 0);
        assert_eq!(text_tokens(1), 1);
        assert_eq!(text_tokens(8), 2);
        assert_eq!(text_tokens(9), 3);
    }

    #[test]
    fn recorded_joins_repeated_headers_and_decodes_query() {
        let mut headers = HeaderMap::new();
        headers.append("X-Thing", HeaderValue::from_static("a"));
        headers.append("x-thing", HeaderValue::from_static("b"));
        let uri: Uri = "/p?key=a%20b&x=1".parse().unwrap();
        let recorded = Recorded::from_parts(&Method::GET, &uri, &headers).with_body(b"{\"a\":1}");
        assert_eq!(recorded.header("X-THING"), Some("a, b"));
        assert_eq!(recorded.query, "key=a%20b&x=1");
        assert_eq!(recorded.query_param("key").as_deref(), Some("a b"));
        assert_eq!(recorded.body_len, 7);
        assert_eq!(recorded.body_json, Some(serde_json::json!({"a": 1})));
    }
}
