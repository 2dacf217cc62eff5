//! Any OpenAI-compatible chat-completions endpoint with image input: Ollama, vLLM, LM Studio,
//! OpenRouter, OpenAI itself. These models take pictures, not video: they get the local
//! analyzer's keyframes (each labelled with its time) and the text the local analysis read
//! or heard (OCR, captions), and answer in JSON — through `response_format: json_schema`
//! where the server supports it, else asked for in the prompt and validated here.
//!
//! Servers differ, and the client adapts once and remembers: one that refuses several images
//! in a message gets one image per message; one that refuses `json_schema` gets
//! `json_object` (or nothing).

use crate::gemini::describe;
use crate::limiter::Limiter;
use crate::retry::{retry_after_header, retryable_status, RetryPolicy};
use crate::{AskEvent, AskRequest, Provider, ProviderAnswer, ProviderRequest, Secret, Still};
use async_trait::async_trait;
use base64::Engine as _;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vidsight_domain::ai::TokenUsage;
use vidsight_domain::{Error, ErrorCode, Result, Source};

#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1` for Ollama.
    pub base_url: String,
    /// Empty for servers without keys (a local Ollama).
    pub api_key: Secret,
    pub model: String,
    pub request_timeout: Duration,
    /// At most this many keyframes are sent (spread over the video).
    pub max_images: usize,
    /// Start with one image per message (some servers, e.g. vLLM with many models, take one).
    pub one_image_per_message: bool,
    pub retry: RetryPolicy,
    pub temperature: f64,
    pub max_tokens: Option<u32>,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:11434/v1".into(),
            api_key: Secret::default(),
            model: String::new(),
            request_timeout: Duration::from_secs(600),
            max_images: 16,
            one_image_per_message: false,
            retry: RetryPolicy::default(),
            temperature: 0.2,
            max_tokens: None,
        }
    }
}

pub struct OpenAi {
    http: reqwest::Client,
    settings: OpenAiSettings,
    limiter: Limiter,
    /// Learned from the server: it takes one image per message only.
    one_image: AtomicBool,
    /// Learned from the server: it refuses `response_format: json_schema`.
    no_json_schema: AtomicBool,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings, limiter: Limiter) -> Result<Self> {
        if settings.model.trim().is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "no OpenAI-compatible model configured (providers.openai.model)",
            ));
        }
        let http = crate::http_client(settings.request_timeout)?;
        Ok(Self {
            one_image: AtomicBool::new(settings.one_image_per_message),
            no_json_schema: AtomicBool::new(false),
            http,
            settings,
            limiter,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    /// The keyframes to send, evenly spread when there are more than `max_images`.
    fn pick<'a>(&self, stills: &'a [Still]) -> Vec<&'a Still> {
        let max = self.settings.max_images.max(1);
        if stills.len() <= max {
            return stills.iter().collect();
        }
        (0..max)
            .map(|index| &stills[index * stills.len() / max])
            .collect()
    }

    /// The user messages: text, then the keyframes (all in one message, or one per message).
    fn messages(
        &self,
        system: &str,
        text: &str,
        stills: &[&Still],
        history: &[(String, String)],
    ) -> Vec<Value> {
        let image = |still: &Still| {
            json!({"type": "image_url", "image_url": {
                "url": format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&still.jpeg))}})
        };
        let mut messages = vec![json!({"role": "system", "content": system})];
        if self.one_image.load(Ordering::Relaxed) {
            for still in stills {
                messages.push(json!({"role": "user", "content": [
                    {"type": "text", "text": format!("Keyframe at {}", clock(still.time))}, image(still)]}));
            }
        } else if !stills.is_empty() {
            let mut parts = Vec::new();
            for still in stills {
                parts.push(
                    json!({"type": "text", "text": format!("Keyframe at {}", clock(still.time))}),
                );
                parts.push(image(still));
            }
            messages.push(json!({"role": "user", "content": parts}));
        }
        for (question, answer) in history {
            messages.push(json!({"role": "user", "content": question}));
            messages.push(json!({"role": "assistant", "content": answer}));
        }
        messages.push(json!({"role": "user", "content": text}));
        messages
    }

    async fn post(&self, body: &Value, tokens: u64) -> Result<reqwest::Response> {
        let policy = &self.settings.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire(tokens).await?;
            let mut request = self.http.post(self.url()).json(body);
            if !self.settings.api_key.is_empty() {
                request = request.bearer_auth(self.settings.api_key.expose());
            }
            let (error, delay) = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let delay = retry_after_header(response.headers());
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let error = map_error(status, &body);
                    if !retryable_status(status) {
                        return Err(error);
                    }
                    (error, delay)
                }
                Err(error) => (
                    Error::new(
                        ErrorCode::ProviderUnavailable,
                        format!(
                            "the model server could not be reached: {}",
                            describe(&error)
                        ),
                    ),
                    None,
                ),
            };
            if attempt >= policy.attempts
                || delay.is_some_and(|delay| delay > policy.max_server_delay)
            {
                return Err(match delay {
                    Some(delay) => error.with_retry_after(delay.as_secs()),
                    None => error,
                });
            }
            let wait = policy.delay(attempt, delay);
            tracing::warn!(attempt, code = %error.code, wait_ms = wait.as_millis() as u64, "model server call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether `error` is the server refusing several images in one message, seen for the
    /// first time: the client then sends one image per message from now on.
    fn adapt_to_one_image(&self, error: &Error, images: usize) -> bool {
        let refused = error.code == ErrorCode::InvalidInput
            && images > 1
            && error.message.to_ascii_lowercase().contains("image")
            && !self.one_image.load(Ordering::Relaxed);
        if refused {
            tracing::info!("the model server takes one image per message; adapting");
            self.one_image.store(true, Ordering::Relaxed);
        }
        refused
    }

    /// Sends, adapting once to a server that refuses several images per message or
    /// `json_schema`.
    async fn complete(
        &self,
        request: &ProviderRequest,
        stills: &[&Still],
        text: &str,
    ) -> Result<Value> {
        for _ in 0..3 {
            let mut body = json!({
                "model": request.model,
                "messages": self.messages(&request.system, text, stills, &[]),
                "temperature": self.settings.temperature,
            });
            if let Some(max) = self.settings.max_tokens {
                body["max_tokens"] = json!(max);
            }
            body["response_format"] = if self.no_json_schema.load(Ordering::Relaxed) {
                json!({"type": "json_object"})
            } else {
                json!({"type": "json_schema", "json_schema": {"name": "analysis", "strict": false, "schema": request.answer_schema}})
            };
            let estimate = (text.len() / 4 + 85 * stills.len() + 2_000) as u64;
            match self.post(&body, estimate).await {
                Ok(response) => {
                    return response.json().await.map_err(|error| {
                        Error::new(
                            ErrorCode::ProviderBadOutput,
                            format!(
                                "the model server's answer could not be read: {}",
                                describe(&error)
                            ),
                        )
                    })
                }
                Err(error) if error.code == ErrorCode::InvalidInput => {
                    let message = error.message.to_ascii_lowercase();
                    if self.adapt_to_one_image(&error, stills.len()) {
                        // sent again, one image per message
                    } else if (message.contains("response_format")
                        || message.contains("json_schema"))
                        && !self.no_json_schema.load(Ordering::Relaxed)
                    {
                        tracing::info!("the model server refuses json_schema; asking for a JSON object instead");
                        self.no_json_schema.store(true, Ordering::Relaxed);
                    } else {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::new(
            ErrorCode::InvalidInput,
            "the model server refused every form of the request",
        ))
    }
}

#[async_trait]
impl Provider for OpenAi {
    fn source(&self) -> Source {
        Source::Openai
    }

    fn default_model(&self) -> &str {
        &self.settings.model
    }

    async fn estimate(&self, request: &ProviderRequest) -> Result<u64> {
        let images = request.stills.len().min(self.settings.max_images) as u64;
        // ~85 tokens for a low-detail image, up to ~1 000 for a detailed one: count high
        Ok(images * 1_000
            + ((request.prompt.len() + request.context_text.len()) / 4) as u64
            + 2_000 * request.features.len().max(1) as u64)
    }

    async fn analyze(&self, request: &ProviderRequest) -> Result<ProviderAnswer> {
        let stills = self.pick(&request.stills);
        let mut text = request.prompt.clone();
        text.push_str(&format!(
            "\n\nYou are shown {} keyframes of a {:.0}-second video, each labelled with its time; use those times.",
            stills.len(),
            request.duration
        ));
        if !request.context_text.is_empty() {
            text.push_str("\nWhat a local analysis found:\n");
            text.push_str(&request.context_text);
        }
        text.push_str("\nAnswer with JSON only, following this JSON Schema:\n");
        text.push_str(&request.answer_schema.to_string());
        let raw = self.complete(request, &stills, &text).await?;
        let choice = &raw["choices"][0];
        let content = choice["message"]["content"].as_str().unwrap_or_default();
        match choice["finish_reason"].as_str().unwrap_or("stop") {
            "length" => {
                return Err(Error::new(
                    ErrorCode::ProviderTruncated,
                    "the model's answer was cut off (finish_reason length)",
                ))
            }
            "content_filter" => {
                return Err(Error::new(
                    ErrorCode::ProviderBlocked,
                    "the model server filtered the answer (content_filter)",
                ))
            }
            _ => {}
        }
        let answer = crate::schema::parse_model_json(content).map_err(|problem| {
            Error::new(
                ErrorCode::ProviderBadOutput,
                format!("the model's answer is not the JSON asked for: {problem}"),
            )
        })?;
        let bytes_uploaded = stills.iter().map(|still| still.jpeg.len() as u64).sum();
        Ok(ProviderAnswer {
            answer,
            usage: usage_of(&raw, stills.len()),
            model_version: raw["model"].as_str().map(str::to_owned),
            raw: vec![raw],
            bytes_uploaded,
            warnings: vec![format!(
                "an image model saw {} keyframes, not the video: it has no sound and no motion between them",
                stills.len()
            )],
        })
    }

    async fn ask(&self, request: &AskRequest) -> Result<BoxStream<'static, Result<AskEvent>>> {
        let stills = self.pick(&request.stills);
        let mut text = request.question.clone();
        if !request.context_text.is_empty() {
            text.push_str("\n\n(Local analysis, for exact times:\n");
            text.push_str(&request.context_text);
            text.push(')');
        }
        let estimate = (text.len() / 4 + 1_000 * stills.len()) as u64;
        let response = loop {
            let body = json!({
                "model": request.model,
                "messages": self.messages(&request.system, &text, &stills, &request.history),
                "temperature": self.settings.temperature,
                "stream": true,
                "stream_options": {"include_usage": true},
            });
            match self.post(&body, estimate).await {
                Ok(response) => break response,
                // a server that takes one image per message: ask again in that form
                Err(error) if self.adapt_to_one_image(&error, stills.len()) => {}
                Err(error) => return Err(error),
            }
        };
        let images = stills.len();
        // the stream ended as streams end ([DONE] or a finish_reason), not merely broke off
        let finished = Arc::new(AtomicBool::new(false));
        let seen_end = Arc::clone(&finished);
        let stream = crate::sse::data_events(response.bytes_stream().boxed()).map(
            move |event| -> Result<Vec<AskEvent>> {
                let data = event.map_err(|error| {
                    Error::new(
                        ErrorCode::ProviderUnavailable,
                        format!("the answer stream broke: {}", describe(&error)),
                    )
                })?;
                if data.trim() == "[DONE]" {
                    seen_end.store(true, Ordering::Relaxed);
                    return Ok(vec![]);
                }
                let value: Value = serde_json::from_str(&data).map_err(|error| {
                    Error::new(
                        ErrorCode::ProviderBadOutput,
                        format!("a stream event is not JSON: {error}"),
                    )
                })?;
                if value.get("error").is_some() {
                    return Err(map_error(500, &value));
                }
                let mut out = Vec::new();
                if let Some(delta) = value
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                {
                    if !delta.is_empty() {
                        out.push(AskEvent::Delta(delta.to_owned()));
                    }
                }
                let finish_reason = value
                    .pointer("/choices/0/finish_reason")
                    .and_then(Value::as_str);
                if finish_reason.is_some() {
                    seen_end.store(true, Ordering::Relaxed);
                }
                if finish_reason == Some("length") {
                    return Err(Error::new(
                        ErrorCode::ProviderTruncated,
                        "the answer was cut off (finish_reason length)",
                    ));
                }
                if value.get("usage").is_some_and(|usage| !usage.is_null()) {
                    out.push(AskEvent::Done(usage_of(&value, images)));
                }
                Ok(out)
            },
        );
        let mut done = false;
        let stream = stream
            .flat_map(|batch| match batch {
                Ok(events) => futures::stream::iter(events.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(error) => futures::stream::iter(vec![Err(error)]),
            })
            // servers without usage in the stream still end with Done, but only when the
            // answer ended: a stream that broke off ends without Done (the caller reports it)
            .chain(
                futures::stream::once(async move {
                    finished
                        .load(Ordering::Relaxed)
                        .then(|| Ok(AskEvent::Done(TokenUsage::default())))
                })
                .filter_map(futures::future::ready),
            )
            .filter(move |event| {
                let keep = match event {
                    Ok(AskEvent::Done(_)) if done => false,
                    Ok(AskEvent::Done(_)) => {
                        done = true;
                        true
                    }
                    _ => true,
                };
                futures::future::ready(keep)
            });
        Ok(stream.boxed())
    }
}

fn usage_of(value: &Value, images: usize) -> TokenUsage {
    let usage = &value["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let candidates = usage["completion_tokens"].as_u64().unwrap_or(0);
    let thoughts = usage
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut by_modality = std::collections::BTreeMap::new();
    if images > 0 {
        by_modality.insert("IMAGE".to_owned(), images as u64);
    }
    TokenUsage {
        prompt,
        candidates,
        thoughts,
        total: usage["total_tokens"]
            .as_u64()
            .unwrap_or(prompt + candidates),
        by_modality,
    }
}

/// An OpenAI-style error answer as one of our codes.
pub fn map_error(status: u16, body: &Value) -> Error {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .or_else(|| body["error"].as_str())
        .unwrap_or("no message");
    let code = match status {
        401 | 403 => ErrorCode::ProviderAuth,
        404 => ErrorCode::ProviderNotFound,
        429 => ErrorCode::ProviderQuotaExceeded,
        408 | 500..=599 => ErrorCode::ProviderUnavailable,
        _ => ErrorCode::InvalidInput,
    };
    Error::new(code, format!("model server: HTTP {status}: {message}"))
}

/// `MM:SS` or `H:MM:SS`.
pub fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{secs:02}")
    } else {
        format!("{minutes:02}:{secs:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_errors() {
        assert_eq!(clock(65.4), "01:05");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(map_error(401, &json!({})).code, ErrorCode::ProviderAuth);
        assert_eq!(
            map_error(429, &json!({})).code,
            ErrorCode::ProviderQuotaExceeded
        );
        assert_eq!(
            map_error(400, &json!({"error": {"message": "bad"}})).code,
            ErrorCode::InvalidInput
        );
    }
}
