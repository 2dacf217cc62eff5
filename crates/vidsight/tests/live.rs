//! The library's server side: `GET /api/v1/events` (an account's live events over
//! Server-Sent Events, resumable with `Last-Event-ID`, private to the account) and
//! `GET /api/v1/search`. Runs on both backend sets (memory/SQLite and Redis/PostgreSQL).
mod common;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct SseEvent {
    id: String,
    kind: String,
    data: Value,
}

/// Reads SSE events from a response until `done` says stop or the deadline passes.
async fn read_events(
    response: reqwest::Response,
    deadline: Duration,
    done: impl Fn(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let until = Instant::now() + deadline;
    while !done(&events) {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Some(chunk)) = tokio::time::timeout(left, body.next()).await else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("event:") {
                    kind = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim());
                }
            }
            if !id.is_empty() {
                events.push(SseEvent {
                    id,
                    kind,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
        }
    }
    events
}

async fn open_stream(
    server: &TestServer,
    token: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(server.url("/api/v1/events"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_events_stream_live_resume_and_stay_private() {
    let media = tempfile::tempdir().unwrap();
    // long enough (and decoded on one thread) for the analysis to report progress a while
    let clip = lavfi_clip(
        media.path(),
        "clip.mp4",
        "testsrc2=size=640x360:rate=25:duration=30",
        &[],
    );
    let server = TestServer::start(json!({ "media": { "threads": 1 } })).await;
    let other = sign_in_or_register(&server.base, "other@vidsight.test", TEST_PASSWORD).await;
    let other_stream = open_stream(&server, &other, None).await;
    let stream = open_stream(&server, &server.token, None).await;

    let (status, video) = server.upload_file(&clip).await;
    assert_eq!(status, 201);
    let id = video["id"].as_str().unwrap().to_owned();
    let events = read_events(stream, Duration::from_secs(60), |events| {
        events.iter().any(|event| event.kind == "video.ready")
    })
    .await;
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        &kinds[..3],
        ["video.uploaded", "analysis.queued", "analysis.started"],
        "{kinds:?}"
    );
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["analysis.succeeded", "video.ready"],
        "{kinds:?}"
    );
    assert!(events
        .iter()
        .all(|event| event.data["video_id"] == id.as_str()));
    assert!(events
        .iter()
        .all(|event| event.data["type"] == event.kind.as_str()));
    let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    // progress: increasing, at most 4 a second
    let progress: Vec<&SseEvent> = events
        .iter()
        .filter(|event| event.kind == "analysis.progress")
        .collect();
    assert!(!progress.is_empty(), "{kinds:?}");
    let values: Vec<u64> = progress
        .iter()
        .map(|event| event.data["progress"].as_u64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|pair| pair[0] < pair[1]),
        "{values:?}"
    );
    let times: Vec<time::OffsetDateTime> = progress
        .iter()
        .map(|event| {
            time::OffsetDateTime::parse(
                event.data["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    for window in times.windows(5) {
        assert!(
            window[4] - window[0] >= time::Duration::milliseconds(900),
            "more than 4 progress events in a second: {times:?}"
        );
    }

    // the other account saw nothing of it
    let theirs = read_events(other_stream, Duration::from_millis(500), |_| false).await;
    assert!(theirs.is_empty(), "{theirs:?}");

    // reconnecting after the third event replays the rest, in order
    let resumed = open_stream(&server, &server.token, Some(&events[2].id)).await;
    let replayed = read_events(resumed, Duration::from_secs(10), |got| {
        got.len() >= events.len() - 3
    })
    .await;
    let replayed_ids: Vec<&str> = replayed.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(replayed_ids, ids[3..], "the missed events, from the log");

    // a deletion is announced too
    let live = open_stream(&server, &server.token, None).await;
    let response = server
        .client
        .delete(server.url(&format!("/api/v1/videos/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let deleted = read_events(live, Duration::from_secs(10), |got| !got.is_empty()).await;
    assert_eq!(deleted[0].kind, "video.deleted");

    // no credential, no stream
    let response = reqwest::Client::new()
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_an_accounts_videos_by_title() {
    let media = tempfile::tempdir().unwrap();
    let clip = std::fs::read(lavfi_clip(
        media.path(),
        "c.mp4",
        "testsrc2=size=160x120:rate=10:duration=1",
        &[],
    ))
    .unwrap();
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let (status, mine) = server
        .upload(clip.clone(), "Sunset over Lisbon.mp4", "video/mp4")
        .await;
    assert_eq!(status, 201);
    let other = client_with_token(
        &sign_in_or_register(&server.base, "searcher@vidsight.test", TEST_PASSWORD).await,
    );
    let part = reqwest::multipart::Part::bytes(clip)
        .file_name("Lisbon trams.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let response = other
        .post(server.url("/api/v1/videos"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let (status, found) = server.get_json("/api/v1/search?q=lisb").await;
    assert_eq!(status, 200, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the account's own videos: {found}");
    assert_eq!(items[0]["video"]["id"], mine["id"]);
    assert_eq!(items[0]["matches"][0]["kind"], "title");
    assert!(
        items[0]["matches"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("[Lisbon"),
        "{found}"
    );
    let (_, everyone) = server.get_json("/api/v1/search?q=lisbon&owner=all").await;
    assert_eq!(
        everyone["items"].as_array().unwrap().len(),
        2,
        "administrators may search all"
    );
    let response = other
        .get(server.url("/api/v1/search?q=lisbon&owner=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (status, nothing) = server.get_json("/api/v1/search?q=porto").await;
    assert_eq!(
        (status, nothing["items"].as_array().unwrap().len()),
        (200, 0)
    );
    let (status, body) = server.get_json("/api/v1/search?q=").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad-request"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_served_with_its_cache_rules_and_spa_fallback() {
    let outer = tempfile::tempdir().unwrap();
    let web = outer.path().join("site");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html><div id=app></div>").unwrap();
    std::fs::write(web.join("assets/app.3f2a9c.js"), "console.log(1)").unwrap();
    std::fs::write(web.join("favicon.svg"), "<svg/>").unwrap();
    // beside the site, never served
    std::fs::write(outer.path().join("secret.txt"), "no").unwrap();
    let server = TestServer::start(json!({ "roles": "api", "http": { "web_dir": web } })).await;
    let anonymous = reqwest::Client::new();
    for path in ["/", "/library", "/videos/01a2/edit"] {
        let response = anonymous.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(!csp.contains("script-src 'unsafe-inline'"), "{csp}");
        assert!(response.text().await.unwrap().contains("id=app"));
    }
    let asset = anonymous
        .get(server.url("/assets/app.3f2a9c.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let icon = anonymous
        .get(server.url("/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    for missing in [
        "/assets/gone.js",
        "/assets/..%2F..%2Fsecret.txt",
        "/..%2Fsecret.txt",
    ] {
        let response = anonymous.get(server.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
    // the API keeps its own answers
    let response = anonymous
        .get(server.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = server
        .client
        .get(server.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;

    // without http.web_dir: the app built into the binary, or word of how to build it
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let page = anonymous
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if vidsight_api::web::built_in() {
        // compiled after `make web`: the app itself
        assert!(!page.contains("not part of this build"), "{page}");
    } else {
        assert!(page.contains("/api/docs"), "{page}");
    }
    server.stop().await;
}

/// A file's subtitle tracks become captions in the insights: cleaned text with times,
/// searchable (accents folded), exported as WebVTT, SubRip and CSV; a video without them
/// answers `not-found` with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtitle_tracks_become_searchable_exportable_captions() {
    let dir = tempfile::tempdir().unwrap();
    let english = dir.path().join("en.srt");
    std::fs::write(
        &english,
        "1\n00:00:00,500 --> 00:00:01,500\nPastéis & <i>nata</i>\n\n\
         2\n00:00:01,800 --> 00:00:02,900\n{\\an8}towards the lighthouse\n\n",
    )
    .unwrap();
    let portuguese = dir.path().join("pt.srt");
    std::fs::write(
        &portuguese,
        "1\n00:00:01,000 --> 00:00:02,000\n=rumo ao farol\n\n",
    )
    .unwrap();
    let silent = lavfi_clip(
        dir.path(),
        "plain.mp4",
        "testsrc2=size=320x240:rate=25:duration=3",
        &[],
    );
    let captioned = dir.path().join("talk.mkv");
    ffmpeg(&[
        "-i",
        silent.to_str().unwrap(),
        "-i",
        english.to_str().unwrap(),
        "-i",
        portuguese.to_str().unwrap(),
        "-map",
        "0:v",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "copy",
        "-c:s",
        "srt",
        "-metadata:s:s:0",
        "language=eng",
        "-metadata:s:s:0",
        "title=English",
        "-metadata:s:s:1",
        "language=por",
        captioned.to_str().unwrap(),
    ]);
    let server = TestServer::start(json!({})).await;
    let (status, video) = server
        .upload(
            std::fs::read(&captioned).unwrap(),
            "talk.mkv",
            "video/x-matroska",
        )
        .await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    let (status, plain) = server.upload_file(&silent).await;
    assert_eq!(status, 201, "{plain}");
    let plain_id = plain["id"].as_str().unwrap().to_owned();
    for video in [&id, &plain_id] {
        let done = server.wait_finished(video, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "ready", "{done}");
    }

    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_valid_insights(&insights);
    let tracks = insights["captions"].as_array().expect("captions");
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    assert_eq!(tracks[0]["stream"], 1);
    assert_eq!(tracks[0]["language"], "eng");
    assert_eq!(tracks[0]["title"], "English");
    assert_eq!(
        tracks[0]["cues"],
        json!([
            { "start": 0.5, "end": 1.5, "text": "Pastéis & nata" },
            { "start": 1.8, "end": 2.9, "text": "towards the lighthouse" },
        ])
    );
    assert_eq!(tracks[1]["stream"], 2);
    assert_eq!(tracks[1]["language"], "por");
    let (_, plain_insights) = server
        .get_json(&format!("/api/v1/videos/{plain_id}/insights"))
        .await;
    assert!(
        plain_insights.get("captions").is_none(),
        "left out when none"
    );

    // found by a word of the captions, at its time; accents folded
    for (query, start) in [("lighthouse", 1.8), ("pasteis", 0.5), ("farol", 1.0)] {
        let (status, found) = server.get_json(&format!("/api/v1/search?q={query}")).await;
        assert_eq!(status, 200, "{found}");
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{query}: {found}");
        assert_eq!(items[0]["video"]["id"], id.as_str());
        let hit = items[0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|hit| hit["start"].as_f64() == Some(start))
            .unwrap_or_else(|| panic!("{query} at {start}: {found}"));
        assert!(hit["end"].as_f64().is_some(), "{hit}");
    }

    let get = |path: String| {
        let client = server.client.clone();
        let url = server.url(&path);
        async move { client.get(url).send().await.unwrap() }
    };
    let vtt = get(format!("/api/v1/videos/{id}/captions.vtt")).await;
    assert_eq!(vtt.status(), 200);
    assert!(vtt.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/vtt"));
    assert_eq!(
        vtt.text().await.unwrap(),
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nPastéis &amp; nata\n\n\
         00:00:01.800 --> 00:00:02.900\ntowards the lighthouse\n\n"
    );
    let srt = get(format!("/api/v1/videos/{id}/captions.srt?track=2")).await;
    assert_eq!(srt.status(), 200);
    assert_eq!(
        srt.headers()["content-disposition"],
        "attachment; filename=\"talk.srt\""
    );
    assert_eq!(
        srt.text().await.unwrap(),
        "1\n00:00:01,000 --> 00:00:02,000\n=rumo ao farol\n\n"
    );
    let csv = get(format!("/api/v1/videos/{id}/insights.csv")).await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "kind,start,end,text");
    assert!(
        rows.iter()
            .any(|row| row.starts_with("shot,0.000,") && row.ends_with(",shot-0001.jpg")),
        "{csv}"
    );
    assert!(
        rows.contains(&"caption,0.500,1.500,Pastéis & nata"),
        "{csv}"
    );
    assert!(
        rows.contains(&"caption,1.000,2.000,'=rumo ao farol"),
        "a formula-looking cell is defused: {csv}"
    );

    for (path, status, code) in [
        (
            format!("/api/v1/videos/{id}/captions.srt?track=7"),
            404,
            "not-found",
        ),
        (
            format!("/api/v1/videos/{id}/captions.vtt?track=x"),
            400,
            "bad-request",
        ),
        (
            format!("/api/v1/videos/{plain_id}/captions.vtt"),
            404,
            "not-found",
        ),
    ] {
        let response = get(path.clone()).await;
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    server.stop().await;
}
