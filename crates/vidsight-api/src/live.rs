//! `GET /api/v1/events`: the signed-in account's events as Server-Sent Events, resumable
//! with `Last-Event-ID` from the account's bounded event log (shared by every API instance
//! on Redis), with heartbeats while idle.
use crate::auth::Auth;
use crate::{ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use vidsight_domain::{ErrorCode, UserEvent};

/// How long one connection streams before it ends (the browser reconnects at once with
/// `Last-Event-ID`, and the credential is checked again).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(15 * 60);
const WAIT: Duration = Duration::from_secs(20);
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume after this event id (for clients that cannot send `Last-Event-ID`).
    pub last_event_id: Option<String>,
}

/// The account's live events: `video.uploaded|ready|failed|deleted`,
/// `analysis.queued|started|progress|succeeded|failed` (progress at most 4 a second per
/// analysis). Each has an `id`; reconnecting with `Last-Event-ID` replays what was missed
/// (from the newest 1000 events). A comment line every 15 s keeps idle connections open.
#[utoipa::path(get, path = "/api/v1/events", tag = "account", params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "`event: <type>`, `id: <id>`, `data: <UserEvent JSON>`", body = UserEvent),
        (status = 400, body = ErrorBody, description = "`bad-request`"),
        (status = 401, body = ErrorBody)
    ))]
pub async fn events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(ErrorCode::BadRequest, rejection.body_text()))?;
    let stream_name = UserEvent::stream_of(principal.user_id);
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .filter(|id| vidsight_cache::eventlog::parse_id(id).is_some());
    let start = match resume {
        Some(id) => id,
        None => state.event_log.last_id(&stream_name).await?,
    };
    let log = state.event_log.clone();
    let opened = Instant::now();
    let events = stream::unfold(start, move |cursor| {
        let log = log.clone();
        let stream_name = stream_name.clone();
        async move {
            loop {
                if opened.elapsed() > CONNECTION_LIFETIME {
                    return None;
                }
                match log.read_after(&stream_name, &cursor, 100, WAIT).await {
                    Ok(batch) if !batch.is_empty() => {
                        let next = batch.last().expect("not empty").id.clone();
                        let events: Vec<Result<Event, Infallible>> = batch
                            .into_iter()
                            .map(|entry| {
                                let data = String::from_utf8_lossy(&entry.payload).into_owned();
                                let kind = serde_json::from_str::<UserEvent>(&data)
                                    .map(|event| event.kind)
                                    .unwrap_or_else(|_| "message".to_owned());
                                Ok(Event::default().id(entry.id).event(kind).data(data))
                            })
                            .collect();
                        return Some((stream::iter(events), next));
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::warn!(error = %error, "reading the event log failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    })
    .flatten();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}
