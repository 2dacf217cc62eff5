//! `POST /api/v1/videos/{id}/ask`: a question about a video, answered by a provider with
//! cited time ranges, streamed as Server-Sent Events. A conversation continues when the
//! request names it (its turns are kept 48 h, as long as Gemini keeps the uploaded video).

use crate::auth::Auth;
use crate::videos::{owned_video, parsed_insights};
use crate::{ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use vidsight_blob::keys;
use vidsight_domain::ai::TokenUsage;
use vidsight_domain::{ErrorCode, Source};
use vidsight_providers::AskEvent;

const CONVERSATION_TTL: Duration = Duration::from_secs(48 * 3600);
const MAX_TURNS: usize = 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    pub question: String,
    /// Continue this conversation (the `conversation` of an earlier answer).
    #[serde(default)]
    pub conversation: Option<String>,
    /// `gemini` or `openai`; the configured default when absent.
    #[serde(default)]
    pub provider: Option<Source>,
    #[serde(default)]
    pub model: Option<String>,
}

/// A time range an answer cites, in seconds (inside the video).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Citation {
    pub start: f64,
    pub end: f64,
    /// As the model wrote it, e.g. `[01:05-01:20]`.
    pub text: String,
}

/// The last event of an answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AskDone {
    pub conversation: String,
    pub source: Source,
    pub model: String,
    pub answer: String,
    pub citations: Vec<Citation>,
    /// Cited times outside the video, dropped.
    pub dropped_citations: Vec<String>,
    pub usage: TokenUsage,
}

#[derive(Serialize, Deserialize, Default)]
struct Conversation {
    video: String,
    turns: Vec<(String, String)>,
}

/// Asks a question about the video. The answer streams as Server-Sent Events: `start`
/// (`{conversation, source, model}`), `delta` (`{text}`) as it is written, then `done`
/// (`AskDone`: the whole answer, its citations grounded on the video's duration, the
/// tokens), or `error` (`{code, message}`).
#[utoipa::path(post, path = "/api/v1/videos/{id}/ask", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    request_body = AskRequest,
    responses(
        (status = 200, content_type = "text/event-stream", description = "`start`, `delta`… then `done` (AskDone) or `error`"),
        (status = 400, body = ErrorBody, description = "`bad-request`: a body that is not AskRequest JSON; `invalid-input`: an empty question, no provider configured"),
        (status = 404, body = ErrorBody, description = "`not-found`: the video or the conversation"),
        (status = 409, body = ErrorBody, description = "`video-not-ready`: no finished analysis yet"),
        (status = 429, body = ErrorBody, description = "`provider_quota_exceeded`"),
        (status = 502, body = ErrorBody, description = "`provider_auth`, `provider_not_found`…"),
        (status = 503, body = ErrorBody, description = "`provider_unavailable`")
    ))]
pub async fn ask(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // whose video it is is checked before the body is read: a stranger learns nothing
    let video = owned_video(&state, &principal, &id).await?;
    let body: AskRequest = crate::auth_routes::parse_body(&body)?;
    let question = body.question.trim().to_owned();
    if question.is_empty() || question.len() > 4_000 {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the question must be 1 to 4000 characters",
        ));
    }
    let (analysis_id, insights) = parsed_insights(&state, &video).await?;
    let (conversation_id, conversation) = match &body.conversation {
        Some(conversation_id) => {
            let stored = state
                .cache
                .get(&format!("ask:{conversation_id}"))
                .await
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<Conversation>(&bytes).ok())
                .filter(|conversation| conversation.video == video.id.to_string())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        "conversation not found (they are kept 48 hours); start a new one",
                    )
                })?;
            (conversation_id.clone(), stored)
        }
        None => (
            uuid::Uuid::new_v4().to_string(),
            Conversation {
                video: video.id.to_string(),
                turns: Vec::new(),
            },
        ),
    };

    let source = state.providers.ask_source(body.provider)?;
    // image models get the keyframes; video models the video itself
    let mut stills = Vec::new();
    if source == Source::Openai {
        for shot in &insights.shots {
            let Some(name) = shot.keyframe.as_deref() else {
                continue;
            };
            if let Ok(Some(jpeg)) = state
                .blobs
                .get_bytes(&keys::keyframe(video.id, analysis_id, name))
                .await
            {
                stills.push(vidsight_providers::Still {
                    time: (shot.start + shot.end) / 2.0,
                    jpeg: jpeg.to_vec(),
                });
            }
        }
    }
    let original = keys::original(video.id);
    let mut download = None;
    let path = match state
        .blobs
        .local_path(&original)
        .filter(|path| path.exists())
    {
        Some(path) => path,
        None => {
            tokio::fs::create_dir_all(&state.settings.tmp_dir)
                .await
                .map_err(|error| {
                    vidsight_domain::Error::internal("temporary directory").with_source(error)
                })?;
            let file = tempfile::Builder::new()
                .prefix("ask-")
                .tempfile_in(&state.settings.tmp_dir)
                .map_err(|error| {
                    vidsight_domain::Error::internal("temporary file").with_source(error)
                })?;
            state.blobs.download_to(&original, file.path()).await?;
            let path = file.path().to_owned();
            download = Some(file);
            path
        }
    };
    let (source, model, stream) = state
        .providers
        .ask(
            Some(source),
            body.model.clone(),
            &video,
            &path,
            &insights,
            stills,
            conversation.turns.clone(),
            question.clone(),
        )
        .await?;
    let duration = insights.media.duration;
    let cache = state.cache.clone();
    let start = Event::default().event("start").data(
        serde_json::json!({"conversation": conversation_id, "source": source, "model": model})
            .to_string(),
    );
    let events = async_stream(stream, move |answer, usage| {
        let (citations, dropped) = citations(&answer, duration);
        let done = AskDone {
            conversation: conversation_id.clone(),
            source,
            model: model.clone(),
            answer: answer.clone(),
            citations,
            dropped_citations: dropped,
            usage,
        };
        let mut conversation = Conversation {
            video: conversation.video.clone(),
            turns: conversation.turns.clone(),
        };
        conversation.turns.push((question.clone(), answer));
        if conversation.turns.len() > MAX_TURNS {
            conversation.turns.remove(0);
        }
        let cache = cache.clone();
        let key = format!("ask:{conversation_id}");
        let bytes = serde_json::to_vec(&conversation).unwrap_or_default();
        tokio::spawn(async move {
            let _ = cache.set(&key, bytes.into(), CONVERSATION_TTL).await;
        });
        done
    });
    let all = futures::stream::once(async move { Ok(start) }).chain(events.map(move |event| {
        // the downloaded copy lives as long as the stream
        let _keep = &download;
        event
    }));
    Ok(Sse::new(all).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The provider's events as SSE events; `finish` builds the `done` event from the whole
/// answer.
fn async_stream(
    stream: futures::stream::BoxStream<'static, vidsight_domain::Result<AskEvent>>,
    finish: impl FnMut(String, TokenUsage) -> AskDone + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures::stream::unfold(
        (stream, String::new(), finish, false),
        |(mut stream, mut answer, mut finish, ended)| async move {
            if ended {
                return None;
            }
            let event = match stream.next().await {
                Some(Ok(AskEvent::Delta(text))) => {
                    answer.push_str(&text);
                    Event::default()
                        .event("delta")
                        .data(serde_json::json!({ "text": text }).to_string())
                }
                Some(Ok(AskEvent::Done(usage))) => {
                    let done = finish(answer.clone(), usage);
                    let event = Event::default()
                        .event("done")
                        .data(serde_json::to_string(&done).unwrap_or_default());
                    return Some((Ok(event), (stream, answer, finish, true)));
                }
                Some(Err(error)) => {
                    tracing::warn!(code = %error.code, error = %error.message, "answer failed");
                    let event = Event::default().event("error").data(
                        serde_json::json!({"code": error.code, "message": error.message})
                            .to_string(),
                    );
                    return Some((Ok(event), (stream, answer, finish, true)));
                }
                None => {
                    let event = Event::default().event("error").data(
                        serde_json::json!({"code": ErrorCode::ProviderUnavailable, "message": "the answer ended before it was complete"})
                            .to_string(),
                    );
                    return Some((Ok(event), (stream, answer, finish, true)));
                }
            };
            Some((Ok(event), (stream, answer, finish, false)))
        },
    )
}

/// The `[MM:SS]` and `[MM:SS-MM:SS]` ranges an answer cites, inside the video; and those
/// that were not.
pub fn citations(answer: &str, duration: f64) -> (Vec<Citation>, Vec<String>) {
    let parse = vidsight_providers::grounding::parse_timestamp;
    let mut found = Vec::new();
    let mut dropped = Vec::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let text = &rest[open..open + close + 1];
        rest = &rest[open + close + 1..];
        let inner = &text[1..text.len() - 1];
        let parts: Vec<&str> = inner.split(['-', '–', '—']).map(str::trim).collect();
        let times: Option<Vec<f64>> = match parts.as_slice() {
            [one] => parse(one).map(|time| vec![time, time]),
            [start, end] => parse(start).zip(parse(end)).map(|(a, b)| vec![a, b]),
            _ => None,
        };
        let Some(times) = times else {
            continue;
        };
        let (start, end) = (times[0].min(times[1]), times[0].max(times[1]));
        if start > duration + 0.5 {
            dropped.push(text.to_owned());
            continue;
        }
        found.push(Citation {
            start,
            end: end.min(duration),
            text: text.to_owned(),
        });
    }
    (found, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_parsed_and_grounded() {
        let (found, dropped) = citations(
            "A dog runs [00:05] then [00:10-00:20], later [1:30:00] and [not a time].",
            60.0,
        );
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].start, found[0].end), (5.0, 5.0));
        assert_eq!((found[1].start, found[1].end), (10.0, 20.0));
        assert_eq!(dropped, vec!["[1:30:00]"]);
    }
}

/// A provider this server has configured.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    pub source: Source,
    /// Its default model.
    pub model: String,
}

/// What analyses and questions can ask for on this server.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProvidersResponse {
    /// The provider of analyses that name none (`local` = only the built-in analyzer).
    pub default: Source,
    /// Configured providers besides `local`.
    pub available: Vec<ProviderInfo>,
    /// The features asked for when a request names none.
    pub default_features: Vec<vidsight_domain::Feature>,
    /// Every feature there is.
    pub features: Vec<vidsight_domain::Feature>,
}

/// The analysis providers this server offers.
#[utoipa::path(get, path = "/api/v1/providers", tag = "analyses",
    responses((status = 200, body = ProvidersResponse), (status = 401, body = ErrorBody)))]
pub async fn providers(
    State(state): State<AppState>,
    Auth(_principal): Auth,
) -> ApiResult<Json<ProvidersResponse>> {
    let engine = &state.providers;
    let available = engine
        .available()
        .into_iter()
        .filter_map(|source| {
            let provider = engine.provider(source).ok()?;
            Some(ProviderInfo {
                source,
                model: provider.default_model().to_owned(),
            })
        })
        .collect();
    Ok(Json(ProvidersResponse {
        default: engine.settings().default_provider,
        available,
        default_features: engine.settings().default_features.clone(),
        features: vidsight_domain::Feature::ALL.to_vec(),
    }))
}
