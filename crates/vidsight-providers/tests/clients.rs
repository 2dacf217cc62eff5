#![cfg(feature = "fake")]
//! The Gemini and OpenAI-compatible clients against the local fakes of both wire protocols:
//! what each client sends (the fakes record every request) and what it makes of each answer.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use vidsight_domain::ai::{Feature, MediaResolution};
use vidsight_domain::{Error, ErrorCode};
use vidsight_providers::fake::gemini::{Endpoint, ErrorReply, FakeGemini, Reply};
use vidsight_providers::fake::openai::{FakeOpenAi, Reply as OpenAiReply};
use vidsight_providers::fake::Recorded;
use vidsight_providers::gemini::{Gemini, GeminiSettings};
use vidsight_providers::limiter::{Limiter, Limits};
use vidsight_providers::openai::{OpenAi, OpenAiSettings};
use vidsight_providers::retry::RetryPolicy;
use vidsight_providers::{AskEvent, AskRequest, Provider, ProviderRequest, Secret, Still};

const MIB: usize = 1024 * 1024;
const MODEL: &str = "gemini-3.5-flash";
const UPLOAD_PATH: &str = "/upload/v1beta/files";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A file of `len` generated (pseudo-random, deterministic) bytes in a temporary directory,
/// written in pieces, and the hex SHA-256 of its content.
struct Video {
    _file: tempfile::NamedTempFile,
    path: PathBuf,
    sha256: String,
    bytes: u64,
}

fn video(len: usize, seed: u64) -> Video {
    let mut file = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile()
        .expect("a temporary file");
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; MIB];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let take = left.min(block.len());
        file.write_all(&block[..take]).expect("write the video");
        hasher.update(&block[..take]);
        left -= take;
    }
    file.flush().expect("flush the video");
    Video {
        path: file.path().to_owned(),
        _file: file,
        sha256: hex::encode(hasher.finalize()),
        bytes: len as u64,
    }
}

/// Retries that keep the tests fast: tiny backoff, a real (small) server-delay ceiling.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        initial: Duration::from_millis(5),
        max: Duration::from_millis(40),
        max_server_delay: Duration::from_secs(5),
    }
}

/// Settings for the fake: uploads always (inline off), fast polling, files deleted after use.
fn gemini_settings(fake: &FakeGemini) -> GeminiSettings {
    GeminiSettings {
        base_url: fake.base_url(),
        api_key: Secret::new(FakeGemini::API_KEY),
        model: MODEL.into(),
        request_timeout: Duration::from_secs(30),
        chunk_bytes: 8 * MIB,
        inline_max_bytes: 0,
        poll_initial: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
        active_deadline: Duration::from_secs(10),
        keep_files: false,
        retry: fast_retry(),
        temperature: 0.2,
        max_output_tokens: None,
    }
}

/// Settings that send small videos inline.
fn inline_settings(fake: &FakeGemini) -> GeminiSettings {
    GeminiSettings {
        inline_max_bytes: 20_000_000,
        ..gemini_settings(fake)
    }
}

fn gemini_with(settings: GeminiSettings) -> Gemini {
    let cache = vidsight_cache::open("memory://").expect("a memory cache");
    let limiter = Limiter::new(
        vidsight_cache::open("memory://").expect("a memory cache"),
        "gemini",
        Limits::default(),
    );
    Gemini::new(settings, limiter, cache).expect("a Gemini client")
}

fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What happens."},
            "chapters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "start": {"type": "number"},
                        "title": {"type": "string"},
                        "count": {"type": "integer"},
                        "important": {"type": "boolean"}
                    },
                    "required": ["start", "title"]
                }
            }
        },
        "required": ["summary"]
    })
}

fn analysis(video: &Video, model: &str) -> ProviderRequest {
    ProviderRequest {
        video: video.path.clone(),
        mime_type: "video/mp4".into(),
        duration: 10.0,
        model: model.into(),
        features: vec![Feature::Summary, Feature::Chapters],
        answer_schema: answer_schema(),
        system: "You are a video analyst.".into(),
        prompt: "Summarize the video and list its chapters.".into(),
        media_resolution: None,
        fps: None,
        clip: None,
        stills: Vec::new(),
        context_text: String::new(),
        display_name: "holiday.mp4".into(),
        content_sha256: video.sha256.clone(),
    }
}

fn question(video: &Video, model: &str, text: &str) -> AskRequest {
    AskRequest {
        video: video.path.clone(),
        mime_type: "video/mp4".into(),
        duration: 10.0,
        model: model.into(),
        system: "You answer questions about a video.".into(),
        history: Vec::new(),
        question: text.into(),
        media_resolution: None,
        stills: Vec::new(),
        context_text: String::new(),
        display_name: "holiday.mp4".into(),
        content_sha256: video.sha256.clone(),
    }
}

const ANSWER: &str = r#"{"summary":"A cat jumps.","chapters":[{"start":4,"title":"Jump"}]}"#;

fn header<'a>(request: &'a Recorded, name: &str) -> &'a str {
    request
        .header(name)
        .unwrap_or_else(|| panic!("{} {} has no {name} header", request.method, request.path))
}

/// The upload chunks (not `start`, not `query`) as (command, offset, bytes).
fn chunks(fake: &FakeGemini) -> Vec<(String, u64, usize)> {
    fake.requests_to(UPLOAD_PATH)
        .iter()
        .filter(|request| {
            let command = request.header("x-goog-upload-command").unwrap_or_default();
            command.starts_with("upload")
        })
        .map(|request| {
            (
                header(request, "x-goog-upload-command").to_owned(),
                header(request, "x-goog-upload-offset")
                    .parse()
                    .expect("a numeric offset"),
                request.body_len,
            )
        })
        .collect()
}

fn commands(fake: &FakeGemini) -> Vec<String> {
    fake.requests_to(UPLOAD_PATH)
        .iter()
        .map(|request| {
            request
                .header("x-goog-upload-command")
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The index of the first recorded request whose path contains `part`.
fn position(requests: &[Recorded], part: &str) -> usize {
    requests
        .iter()
        .position(|request| request.path.contains(part))
        .unwrap_or_else(|| panic!("no request to {part}"))
}

fn error_of<T: std::fmt::Debug>(result: Result<T, Error>) -> Error {
    result.expect_err("the call should fail")
}

// ---------------------------------------------------------------------------------------------
// 1-2. Resumable upload
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_large_file_goes_up_in_granularity_sized_chunks_and_arrives_intact() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(gemini_settings(&fake));
    let big = video(20 * MIB + 4321, 1);

    let file = client
        .upload(&big.path, "video/mp4", "big.mp4")
        .await
        .expect("the upload");

    let uploads = fake.requests_to(UPLOAD_PATH);
    let start = &uploads[0];
    assert_eq!(start.method, "POST");
    assert!(
        start.query.is_empty(),
        "start has no query: {}",
        start.query
    );
    assert_eq!(header(start, "x-goog-upload-protocol"), "resumable");
    assert_eq!(header(start, "x-goog-upload-command"), "start");
    assert_eq!(
        header(start, "x-goog-upload-header-content-length"),
        big.bytes.to_string()
    );
    assert_eq!(
        header(start, "x-goog-upload-header-content-type"),
        "video/mp4"
    );
    assert!(header(start, "content-type").starts_with("application/json"));
    assert_eq!(
        start.body_json,
        Some(json!({"file": {"display_name": "big.mp4"}}))
    );
    // every chunk goes to the upload URL the start answered with
    for chunk in &uploads[1..] {
        assert!(chunk.query_param("upload_id").is_some(), "{}", chunk.query);
    }

    // 8 MiB, 8 MiB, then the rest with `upload, finalize`
    let granule = 8 * MIB;
    assert_eq!(
        chunks(&fake),
        vec![
            ("upload".to_owned(), 0, granule),
            ("upload".to_owned(), granule as u64, granule),
            (
                "upload, finalize".to_owned(),
                2 * granule as u64,
                4 * MIB + 4321
            ),
        ]
    );
    assert_eq!(uploads.len(), 4, "start and three chunks, nothing else");

    let stored = fake.uploaded_files();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sha256_hex, big.sha256, "the bytes arrived intact");
    assert_eq!(stored[0].size_bytes, big.bytes);
    assert_eq!(stored[0].display_name.as_deref(), Some("big.mp4"));
    assert_eq!(file.name, stored[0].name);
    assert_eq!(file.size_bytes, big.bytes);
    assert_eq!(file.mime_type, "video/mp4");
    assert!(file.uri.ends_with(&file.name), "{}", file.uri);
    // the fake keeps new files PROCESSING for one poll
    assert_eq!(file.state, "PROCESSING");
}

#[tokio::test]
async fn a_broken_chunk_is_queried_and_resumed_from_what_the_server_has() {
    let fake = FakeGemini::start().await;
    // granules of 256 KiB, chunks of 1 MiB: the broken first chunk keeps 768 KiB
    fake.set_granularity(256 * 1024);
    let settings = GeminiSettings {
        chunk_bytes: MIB,
        ..gemini_settings(&fake)
    };
    let client = gemini_with(settings);
    let clip = video(3 * MIB + MIB / 2 + 77, 2);

    fake.break_next_upload_chunk();
    client
        .upload(&clip.path, "video/mp4", "clip.mp4")
        .await
        .expect("the upload survives a broken chunk");

    assert_eq!(
        commands(&fake),
        vec![
            "start",
            "upload",
            "query",
            "upload",
            "upload",
            "upload, finalize"
        ]
    );
    let kept = 3 * 256 * 1024;
    let uploads = fake.requests_to(UPLOAD_PATH);
    let query = &uploads[2];
    assert_eq!(query.body_len, 0);
    assert!(query.query_param("upload_id").is_some());
    assert!(
        query.header("x-goog-upload-offset").is_none(),
        "query sends no offset"
    );
    assert_eq!(
        chunks(&fake),
        vec![
            ("upload".to_owned(), 0, MIB),
            // resumed at x-goog-upload-size-received, not at the broken chunk's start
            ("upload".to_owned(), kept as u64, MIB),
            ("upload".to_owned(), (kept + MIB) as u64, MIB),
            (
                "upload, finalize".to_owned(),
                (kept + 2 * MIB) as u64,
                clip.bytes as usize - kept - 2 * MIB
            ),
        ]
    );
    let stored = fake.uploaded_files();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sha256_hex, clip.sha256, "the file arrived intact");
    assert_eq!(stored[0].size_bytes, clip.bytes);
}

#[tokio::test]
async fn the_chunk_size_follows_the_server_granularity() {
    let fake = FakeGemini::start().await;
    // a configured 600 KiB is rounded down to the server's 256 KiB granules: 512 KiB
    fake.set_granularity(256 * 1024);
    let settings = GeminiSettings {
        chunk_bytes: 600 * 1024,
        ..gemini_settings(&fake)
    };
    let client = gemini_with(settings);
    let clip = video(MIB + 300 * 1024, 3);
    client
        .upload(&clip.path, "video/mp4", "clip.mp4")
        .await
        .expect("the upload");
    let chunk = 512 * 1024;
    assert_eq!(
        chunks(&fake),
        vec![
            ("upload".to_owned(), 0, chunk),
            ("upload".to_owned(), chunk as u64, chunk),
            ("upload, finalize".to_owned(), 2 * chunk as u64, 300 * 1024),
        ]
    );
    assert_eq!(fake.uploaded_files()[0].sha256_hex, clip.sha256);

    // a granularity larger than the configured chunk wins: one granule per chunk
    fake.reset_requests();
    fake.set_granularity(MIB);
    client
        .upload(&clip.path, "video/mp4", "clip.mp4")
        .await
        .expect("the second upload");
    assert_eq!(
        chunks(&fake),
        vec![
            ("upload".to_owned(), 0, MIB),
            ("upload, finalize".to_owned(), MIB as u64, 300 * 1024),
        ]
    );
    assert_eq!(fake.uploaded_files()[1].sha256_hex, clip.sha256);
}

// ---------------------------------------------------------------------------------------------
// 3. Polling
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_processing_file_is_polled_until_active() {
    let fake = FakeGemini::start().await;
    fake.set_processing_polls(3);
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(4096, 4);
    let uploaded = client
        .upload(&clip.path, "video/mp4", "clip.mp4")
        .await
        .expect("the upload");
    assert_eq!(uploaded.state, "PROCESSING");
    let name = uploaded.name.clone();

    let active = client.wait_active(uploaded).await.expect("ACTIVE");
    assert_eq!(active.state, "ACTIVE");
    assert_eq!(active.name, name);
    // three answers say PROCESSING, the fourth ACTIVE; then the polling stops
    let polls = fake.requests_to(&format!("/v1beta/{name}"));
    assert_eq!(polls.len(), 4);
    assert!(polls.iter().all(|poll| poll.method == "GET"));
    assert_eq!(fake.uploaded_files()[0].polls, 4);
}

#[tokio::test]
async fn a_failed_file_fails_the_run_with_the_reason() {
    let fake = FakeGemini::start().await;
    fake.fail_processing("Video codec is not supported.");
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(4096, 5);

    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderBadOutput, "{error:?}");
    assert!(
        error.message.contains("Video codec is not supported."),
        "{error:?}"
    );
    assert!(fake.requests_to(":generateContent").is_empty());
    assert!(fake.requests_to(":countTokens").is_empty());
}

#[tokio::test]
async fn a_file_still_processing_at_the_deadline_is_unavailable() {
    let fake = FakeGemini::start().await;
    fake.set_processing_polls(u32::MAX);
    let settings = GeminiSettings {
        poll_initial: Duration::from_millis(10),
        poll_max: Duration::from_millis(40),
        active_deadline: Duration::from_millis(300),
        ..gemini_settings(&fake)
    };
    let client = gemini_with(settings);
    let clip = video(4096, 6);

    let started = Instant::now();
    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderUnavailable, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up near the deadline, not much later: {:?}",
        started.elapsed()
    );
    let polls = fake.requests_to("/v1beta/files/");
    assert!(polls.len() >= 3, "it polled with backoff: {}", polls.len());
    assert!(fake.requests_to(":generateContent").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. Retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_quota_error_waits_the_retry_delay_the_server_asks_for() {
    let fake = FakeGemini::start().await;
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let times = Arc::clone(&seen);
    fake.set_responder(move |_| {
        let mut times = times.lock().unwrap();
        times.push(Instant::now());
        if times.len() == 1 {
            Reply::quota("1.5s")
        } else {
            Reply::text(ANSWER)
        }
    });
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 7);

    let answer = client
        .analyze(&analysis(&clip, MODEL))
        .await
        .expect("the retry succeeds");
    assert_eq!(answer.answer["summary"], "A cat jumps.");
    assert_eq!(fake.requests_to(":generateContent").len(), 2);
    let times = seen.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    // the backoff alone would be ~5 ms: 1.5 s is the server's RetryInfo
    assert!(gap >= Duration::from_millis(1500), "waited only {gap:?}");
}

#[tokio::test]
async fn a_burst_of_overloaded_answers_is_retried() {
    let fake = FakeGemini::start().await;
    for _ in 0..3 {
        fake.push_reply(Reply::unavailable());
    }
    fake.push_reply(Reply::text(ANSWER));
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 8);

    let answer = client
        .analyze(&analysis(&clip, MODEL))
        .await
        .expect("the fourth attempt succeeds");
    assert_eq!(answer.answer["chapters"][0]["title"], "Jump");
    assert_eq!(fake.requests_to(":generateContent").len(), 4);
    assert_eq!(fake.pending_replies(), 0);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 9);

    fake.push_reply(Reply::error(400, "Request contains an invalid argument."));
    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::InvalidInput, "{error:?}");
    assert_eq!(fake.requests_to(":generateContent").len(), 1);

    fake.reset_requests();
    fake.push_reply(Reply::error(404, "models/x is not found."));
    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderNotFound, "{error:?}");
    assert_eq!(fake.requests_to(":generateContent").len(), 1);
    assert_eq!(fake.pending_replies(), 0);
}

#[tokio::test]
async fn overloaded_past_the_last_attempt_is_unavailable() {
    let fake = FakeGemini::start().await;
    for _ in 0..6 {
        fake.push_reply(Reply::unavailable());
    }
    let settings = GeminiSettings {
        retry: RetryPolicy {
            attempts: 3,
            ..fast_retry()
        },
        ..inline_settings(&fake)
    };
    let client = gemini_with(settings);
    let clip = video(2048, 10);

    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderUnavailable, "{error:?}");
    assert_eq!(fake.requests_to(":generateContent").len(), 3);
    assert_eq!(fake.pending_replies(), 3);
}

#[tokio::test]
async fn a_retry_delay_longer_than_the_limit_fails_at_once_with_the_delay() {
    let fake = FakeGemini::start().await;
    fake.push_reply(Reply::quota("90s"));
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 11);

    let started = Instant::now();
    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderQuotaExceeded, "{error:?}");
    assert_eq!(error.retry_after_seconds, Some(90));
    assert_eq!(fake.requests_to(":generateContent").len(), 1);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn files_api_calls_are_retried_too() {
    let fake = FakeGemini::start().await;
    fake.push_error(Endpoint::UploadStart, ErrorReply::unavailable());
    fake.push_error(Endpoint::GetFile, ErrorReply::internal());
    fake.push_error(Endpoint::CountTokens, ErrorReply::deadline_exceeded());
    fake.push_error(Endpoint::DeleteFile, ErrorReply::unavailable());
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(4096, 12);

    client
        .analyze(&analysis(&clip, MODEL))
        .await
        .expect("every transient failure is retried");
    let starts = commands(&fake)
        .iter()
        .filter(|command| *command == "start")
        .count();
    assert_eq!(starts, 2);
    assert_eq!(fake.requests_to(":countTokens").len(), 2);
    let deletes = fake
        .requests()
        .into_iter()
        .filter(|request| request.method == "DELETE")
        .count();
    assert_eq!(deletes, 2);
    assert!(fake.uploaded_files()[0].deleted);
}

// ---------------------------------------------------------------------------------------------
// 5. The generateContent request
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn generate_content_sends_the_file_clip_fps_schema_and_resolution() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(120.0);
    fake.set_processing_polls(0);
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(64 * 1024, 13);
    fake.push_reply(Reply::text(ANSWER));

    let mut request = analysis(&clip, MODEL);
    request.duration = 120.0;
    request.clip = Some((40.0, 80.5));
    request.fps = Some(2.0);
    request.media_resolution = Some(MediaResolution::Low);
    let answer = client.analyze(&request).await.expect("the analysis");
    assert_eq!(
        answer.answer,
        serde_json::from_str::<Value>(ANSWER).unwrap()
    );
    assert_eq!(answer.bytes_uploaded, clip.bytes);
    assert_eq!(answer.model_version.as_deref(), Some(MODEL));
    assert!(answer.usage.by_modality["VIDEO"] > 0);
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);

    let file = fake.uploaded_files().remove(0);
    let generate = fake.requests_to(&format!("/v1beta/models/{MODEL}:generateContent"));
    assert_eq!(generate.len(), 1);
    let body = generate[0].body_json.clone().expect("a JSON body");
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are a video analyst."}]})
    );
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0]["role"], "user");
    let parts = contents[0]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    // the video first, with its clip as protobuf durations and its frame rate beside it
    assert_eq!(
        parts[0]["fileData"],
        json!({"mimeType": "video/mp4", "fileUri": format!("{}/v1beta/{}", fake.base_url(), file.name)})
    );
    assert_eq!(
        parts[0]["videoMetadata"],
        json!({"startOffset": "40s", "endOffset": "80.5s", "fps": 2.0})
    );
    assert!(parts[0].get("inlineData").is_none());
    // the text after the video
    assert!(parts[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("Summarize the video"));
    let config = &body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["mediaResolution"], "MEDIA_RESOLUTION_LOW");
    let schema = &config["responseSchema"];
    assert_eq!(
        schema,
        &vidsight_providers::schema::to_gemini_schema(&answer_schema()).unwrap()
    );
    assert_eq!(schema["type"], "OBJECT");
    assert_eq!(schema["properties"]["summary"]["type"], "STRING");
    assert_eq!(schema["properties"]["chapters"]["type"], "ARRAY");
    let item = &schema["properties"]["chapters"]["items"];
    assert_eq!(item["type"], "OBJECT");
    assert_eq!(item["properties"]["start"]["type"], "NUMBER");
    assert_eq!(item["properties"]["count"]["type"], "INTEGER");
    assert_eq!(item["properties"]["important"]["type"], "BOOLEAN");
    assert_eq!(item["required"], json!(["start", "title"]));
    assert!(config.get("responseJsonSchema").is_none());

    // countTokens first (same contents, no mediaResolution), then generate, then the delete
    let requests = fake.requests();
    let count = position(&requests, ":countTokens");
    let generate_at = position(&requests, ":generateContent");
    assert!(count < generate_at, "countTokens comes before generate");
    let count_body = requests[count].body_json.clone().unwrap();
    assert_eq!(count_body, json!({"contents": body["contents"]}));
    let delete = requests
        .iter()
        .position(|request| request.method == "DELETE")
        .expect("keep_files=false deletes the file");
    assert!(delete > generate_at);
    assert_eq!(requests[delete].path, format!("/v1beta/{}", file.name));
    assert!(fake.uploaded_files()[0].deleted);
}

#[tokio::test]
async fn a_small_video_goes_inline_without_an_upload() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(3000, 14);
    fake.push_reply(Reply::text(ANSWER));

    let answer = client
        .analyze(&analysis(&clip, MODEL))
        .await
        .expect("the analysis");
    assert_eq!(answer.answer["summary"], "A cat jumps.");
    assert!(fake.requests_to(UPLOAD_PATH).is_empty(), "no upload");
    assert!(fake.uploaded_files().is_empty());
    let generate = fake.requests_to(":generateContent");
    let body = generate[0].body_json.clone().unwrap();
    let part = &body["contents"][0]["parts"][0];
    let bytes = std::fs::read(&clip.path).unwrap();
    assert_eq!(
        part["inlineData"],
        json!({"mimeType": "video/mp4", "data": base64::engine::general_purpose::STANDARD.encode(&bytes)})
    );
    assert!(part.get("fileData").is_none());
    assert!(part.get("videoMetadata").is_none(), "no clip, no fps");
    assert!(body["contents"][0]["parts"][1]["text"].is_string());
}

#[tokio::test]
async fn kept_files_are_reused_until_they_expire() {
    let fake = FakeGemini::start().await;
    let settings = GeminiSettings {
        keep_files: true,
        ..gemini_settings(&fake)
    };
    let client = gemini_with(settings);
    let clip = video(8192, 15);
    let request = analysis(&clip, MODEL);

    let first = client.analyze(&request).await.expect("the first analysis");
    assert_eq!(first.bytes_uploaded, clip.bytes);
    let second = client.analyze(&request).await.expect("the second analysis");
    assert_eq!(second.bytes_uploaded, 0, "nothing uploaded the second time");

    let starts = commands(&fake)
        .iter()
        .filter(|command| *command == "start")
        .count();
    assert_eq!(starts, 1, "one upload for two analyses");
    let files = fake.uploaded_files();
    assert_eq!(files.len(), 1);
    assert!(!files[0].deleted);
    let uris: Vec<Value> = fake
        .requests_to(":generateContent")
        .iter()
        .map(|request| {
            request.body_json.clone().unwrap()["contents"][0]["parts"][0]["fileData"]["fileUri"]
                .clone()
        })
        .collect();
    assert_eq!(uris.len(), 2);
    assert_eq!(uris[0], uris[1]);
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.method != "DELETE"));

    // once Google forgets the file (48 h), the next run uploads again
    assert!(fake.expire_file(&files[0].name));
    let third = client.analyze(&request).await.expect("the third analysis");
    assert_eq!(third.bytes_uploaded, clip.bytes);
    assert_eq!(fake.uploaded_files().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Answers and their failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn blocked_truncated_and_broken_answers_map_to_their_codes() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 16);
    let request = analysis(&clip, MODEL);

    fake.push_reply(Reply::blocked("PROHIBITED_CONTENT"));
    let error = error_of(client.analyze(&request).await);
    assert_eq!(error.code, ErrorCode::ProviderBlocked, "{error:?}");
    assert!(error.message.contains("PROHIBITED_CONTENT"), "{error:?}");

    fake.push_reply(Reply::safety());
    let error = error_of(client.analyze(&request).await);
    assert_eq!(error.code, ErrorCode::ProviderBlocked, "{error:?}");
    assert!(error.message.contains("SAFETY"), "{error:?}");

    fake.push_reply(Reply::truncated(r#"{"summary": "A cat ju"#));
    let error = error_of(client.analyze(&request).await);
    assert_eq!(error.code, ErrorCode::ProviderTruncated, "{error:?}");

    fake.push_reply(Reply::text("The video shows a cat; no JSON here."));
    let error = error_of(client.analyze(&request).await);
    assert_eq!(error.code, ErrorCode::ProviderBadOutput, "{error:?}");

    // none of these is retried
    assert_eq!(fake.requests_to(":generateContent").len(), 4);
}

#[tokio::test]
async fn a_clip_too_short_for_video_tokens_gives_a_warning() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 17);
    let mut request = analysis(&clip, MODEL);

    request.clip = Some((2.0, 2.3));
    let answer = client.analyze(&request).await.expect("an answer");
    assert!(!answer.usage.by_modality.contains_key("VIDEO"));
    assert_eq!(answer.warnings.len(), 1, "{:?}", answer.warnings);
    assert!(answer.warnings[0].contains("no video frames"));
    let body = fake.requests_to(":generateContent")[0]
        .body_json
        .clone()
        .unwrap();
    assert_eq!(
        body["contents"][0]["parts"][0]["videoMetadata"],
        json!({"startOffset": "2s", "endOffset": "2.3s"})
    );

    request.clip = Some((2.0, 5.0));
    let answer = client.analyze(&request).await.expect("an answer");
    assert!(answer.usage.by_modality["VIDEO"] > 0);
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
}

#[tokio::test]
async fn a_bad_key_is_auth_and_an_unknown_model_is_not_found() {
    let fake = FakeGemini::start().await;
    let clip = video(2048, 18);

    let wrong = gemini_with(GeminiSettings {
        api_key: Secret::new("AIzaSy-not-the-right-key"),
        ..inline_settings(&fake)
    });
    let error = error_of(wrong.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderAuth, "{error:?}");
    assert!(!error.message.contains("not-the-right-key"), "{error:?}");
    assert_eq!(fake.requests_to(":generateContent").len(), 1, "not retried");

    // the same through the upload path: the first call (start) says so
    let wrong_upload = gemini_with(GeminiSettings {
        api_key: Secret::new("AIzaSy-not-the-right-key"),
        ..gemini_settings(&fake)
    });
    let error = error_of(wrong_upload.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderAuth, "{error:?}");
    assert_eq!(fake.requests_to(UPLOAD_PATH).len(), 1, "not retried");

    let client = gemini_with(inline_settings(&fake));
    let error = error_of(client.analyze(&analysis(&clip, "gemini-2.0-flash")).await);
    assert_eq!(error.code, ErrorCode::ProviderNotFound, "{error:?}");
    assert!(error.message.contains("gemini-2.0-flash"), "{error:?}");
    assert_eq!(
        fake.requests_to("/v1beta/models/gemini-2.0-flash:generateContent")
            .len(),
        1
    );
}

#[tokio::test]
async fn the_key_travels_in_the_header_and_never_in_a_url() {
    let fake = FakeGemini::start().await;
    fake.set_processing_polls(2);
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(9 * MIB / 4, 19);
    fake.set_granularity(MIB);
    fake.break_next_upload_chunk();
    client
        .analyze(&analysis(&clip, MODEL))
        .await
        .expect("the analysis");
    // the broken chunk was the only, finalizing one: resumed, it still arrived intact
    assert_eq!(fake.uploaded_files()[0].sha256_hex, clip.sha256);
    assert_eq!(
        commands(&fake),
        vec!["start", "upload, finalize", "query", "upload, finalize"]
    );
    let mut stream = client
        .ask(&question(&clip, MODEL, "What jumps?"))
        .await
        .expect("the stream");
    while let Some(event) = stream.next().await {
        event.expect("no error in the stream");
    }

    let requests = fake.requests();
    // start, chunks, query, polls, countTokens, generate, delete, and the question's own
    assert!(requests.len() >= 10, "{}", requests.len());
    for request in &requests {
        assert!(
            !request.query.contains(FakeGemini::API_KEY),
            "{} {}?{}",
            request.method,
            request.path,
            request.query
        );
        assert!(request.query_param("key").is_none(), "{}", request.query);
        assert!(!request.path.contains(FakeGemini::API_KEY));
        assert_eq!(
            request.header("x-goog-api-key"),
            Some(FakeGemini::API_KEY),
            "{} {}",
            request.method,
            request.path
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Streaming questions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ask_streams_deltas_in_order_then_done_with_the_usage() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 20);
    let text = "The cat jumps onto the table at 00:04, then leaves.";
    fake.push_reply(Reply::text(text));

    let mut request = question(&clip, MODEL, "And then?");
    request.history = vec![("What jumps?".into(), "A cat.".into())];
    let events: Vec<AskEvent> = client
        .ask(&request)
        .await
        .expect("the stream")
        .map(|event| event.expect("no error"))
        .collect()
        .await;

    let (last, deltas) = events.split_last().expect("events");
    assert!(deltas.len() >= 2, "streamed in pieces: {events:?}");
    let mut joined = String::new();
    for event in deltas {
        match event {
            AskEvent::Delta(piece) => joined.push_str(piece),
            AskEvent::Done(_) => panic!("Done before the end: {events:?}"),
        }
    }
    assert_eq!(joined, text);
    let AskEvent::Done(usage) = last else {
        panic!("the stream ends with Done: {events:?}")
    };
    assert!(usage.prompt > 0);
    assert_eq!(usage.candidates, (text.chars().count() as u64).div_ceil(4));
    assert!(usage.by_modality["VIDEO"] > 0);

    let streamed = fake.requests_to(":streamGenerateContent");
    assert_eq!(streamed.len(), 1);
    assert_eq!(streamed[0].query_param("alt").as_deref(), Some("sse"));
    let body = streamed[0].body_json.clone().unwrap();
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{body}");
    assert_eq!(contents[0]["role"], "user");
    assert!(contents[0]["parts"][0]["inlineData"].is_object());
    assert_eq!(contents[0]["parts"][1]["text"], "What jumps?");
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"text": "A cat."}]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [{"text": "And then?"}]})
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_is_an_err_item() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 21);
    fake.push_reply(Reply::BrokenStream {
        partial: "The cat jumps".into(),
        error: ErrorReply::internal(),
    });

    let events: Vec<Result<AskEvent, Error>> = client
        .ask(&question(&clip, MODEL, "What happens?"))
        .await
        .expect("the stream starts")
        .collect()
        .await;
    let (last, before) = events.split_last().expect("events");
    let mut joined = String::new();
    for event in before {
        match event {
            Ok(AskEvent::Delta(piece)) => joined.push_str(piece),
            other => panic!("only deltas before the error: {other:?}"),
        }
    }
    assert_eq!(joined, "The cat jumps");
    let error = last.as_ref().expect_err("the stream ends with the error");
    assert_eq!(error.code, ErrorCode::ProviderUnavailable, "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// 8. The OpenAI-compatible client
// ---------------------------------------------------------------------------------------------

fn openai_settings(fake: &FakeOpenAi) -> OpenAiSettings {
    OpenAiSettings {
        base_url: fake.base_url(),
        api_key: Secret::default(),
        model: "llava:13b".into(),
        request_timeout: Duration::from_secs(30),
        max_images: 16,
        one_image_per_message: false,
        retry: fast_retry(),
        temperature: 0.2,
        max_tokens: None,
    }
}

fn openai_with(settings: OpenAiSettings) -> OpenAi {
    let limiter = Limiter::new(
        vidsight_cache::open("memory://").expect("a memory cache"),
        "openai",
        Limits::default(),
    );
    OpenAi::new(settings, limiter).expect("an OpenAI client")
}

fn stills(count: usize) -> Vec<Still> {
    (0..count)
        .map(|index| Still {
            time: 5.0 * index as f64 + 1.0,
            jpeg: vec![
                0xFF,
                0xD8,
                0xFF,
                0xE0,
                index as u8,
                0x10,
                0x4A,
                0x46,
                0xFF,
                0xD9,
            ],
        })
        .collect()
}

fn image_analysis(video: &Video, keyframes: usize) -> ProviderRequest {
    ProviderRequest {
        model: "llava:13b".into(),
        stills: stills(keyframes),
        ..analysis(video, "llava:13b")
    }
}

/// The `image_url` URLs of a chat request, in order.
fn image_urls(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|message| message["content"].as_array())
        .flatten()
        .filter(|part| part["type"] == "image_url")
        .map(|part| part["image_url"]["url"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn openai_gets_keyframes_as_data_urls_and_a_json_schema() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(OpenAiReply::text(ANSWER));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 22);
    let request = image_analysis(&clip, 3);

    let answer = client.analyze(&request).await.expect("the analysis");
    assert_eq!(answer.answer["summary"], "A cat jumps.");
    assert_eq!(answer.bytes_uploaded, 30);
    assert_eq!(answer.usage.by_modality["IMAGE"], 3);
    assert!(answer.usage.prompt > 0);

    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 1);
    assert!(
        chats[0].header("authorization").is_none(),
        "no key, no header"
    );
    assert_eq!(chats[0].images_per_message, vec![0, 3, 0]);
    let body = chats[0].body_json.clone().unwrap();
    assert_eq!(body["model"], "llava:13b");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are a video analyst."})
    );
    let expected: Vec<String> = request
        .stills
        .iter()
        .map(|still| {
            format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&still.jpeg)
            )
        })
        .collect();
    assert_eq!(image_urls(&body), expected);
    // each image follows the text that gives its time
    let parts = body["messages"][1]["content"].as_array().unwrap();
    assert_eq!(
        parts[0],
        json!({"type": "text", "text": "Keyframe at 00:01"})
    );
    assert_eq!(
        parts[2],
        json!({"type": "text", "text": "Keyframe at 00:06"})
    );
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"],
        answer_schema()
    );
    let prompt = body["messages"][2]["content"].as_str().unwrap();
    assert!(prompt.starts_with("Summarize the video"), "{prompt}");
}

#[tokio::test]
async fn openai_adapts_to_one_image_per_message_and_remembers() {
    let fake = FakeOpenAi::start().await;
    fake.set_one_image_per_message(true);
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 23);
    let request = image_analysis(&clip, 3);

    client.analyze(&request).await.expect("the analysis");
    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 2, "refused once, then adapted");
    assert_eq!(chats[0].images_per_message, vec![0, 3, 0]);
    assert_eq!(chats[1].images_per_message, vec![0, 1, 1, 1, 0]);
    let body = chats[1].body_json.clone().unwrap();
    assert_eq!(image_urls(&body).len(), 3);
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "text", "text": "Keyframe at 00:01"})
    );

    fake.reset_requests();
    client.analyze(&request).await.expect("the second analysis");
    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 1, "the client remembered");
    assert_eq!(chats[0].images_per_message, vec![0, 1, 1, 1, 0]);
}

#[tokio::test]
async fn openai_falls_back_to_json_object_when_json_schema_is_refused() {
    let fake = FakeOpenAi::start().await;
    fake.set_json_schema_supported(false);
    fake.push_reply(OpenAiReply::text(ANSWER));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 24);

    let answer = client
        .analyze(&image_analysis(&clip, 2))
        .await
        .expect("the analysis");
    assert_eq!(answer.answer["chapters"][0]["start"], 4);
    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 2);
    let formats: Vec<Value> = chats
        .iter()
        .map(|chat| chat.body_json.clone().unwrap()["response_format"]["type"].clone())
        .collect();
    assert_eq!(formats, vec![json!("json_schema"), json!("json_object")]);
    // the schema still travels in the prompt
    let body = chats[1].body_json.clone().unwrap();
    let messages = body["messages"].as_array().unwrap();
    let prompt = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(prompt.contains(&answer_schema().to_string()), "{prompt}");
}

#[tokio::test]
async fn openai_length_is_truncated_and_a_bad_key_is_auth() {
    let fake = FakeOpenAi::start().await;
    fake.require_key("sk-right");
    let clip = video(1024, 25);

    let wrong = openai_with(OpenAiSettings {
        api_key: Secret::new("sk-wrong"),
        ..openai_settings(&fake)
    });
    let error = error_of(wrong.analyze(&image_analysis(&clip, 1)).await);
    assert_eq!(error.code, ErrorCode::ProviderAuth, "{error:?}");
    assert!(!error.message.contains("sk-wrong"));
    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 1, "not retried");
    assert_eq!(chats[0].header("authorization"), Some("Bearer sk-wrong"));

    let client = openai_with(OpenAiSettings {
        api_key: Secret::new("sk-right"),
        ..openai_settings(&fake)
    });
    fake.push_reply(OpenAiReply::truncated(r#"{"summary": "A ca"#));
    let error = error_of(client.analyze(&image_analysis(&clip, 1)).await);
    assert_eq!(error.code, ErrorCode::ProviderTruncated, "{error:?}");
}

#[tokio::test]
async fn openai_waits_for_retry_after_and_retries_server_errors() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(OpenAiReply::rate_limited(1));
    fake.push_reply(OpenAiReply::unavailable());
    fake.push_reply(OpenAiReply::text(ANSWER));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 26);

    let started = Instant::now();
    client
        .analyze(&image_analysis(&clip, 1))
        .await
        .expect("the third attempt succeeds");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.requests_to("/chat/completions").len(), 3);
}

#[tokio::test]
async fn openai_ask_streams_until_done() {
    let fake = FakeOpenAi::start().await;
    let text = "A cat jumps onto the table.";
    fake.push_reply(OpenAiReply::text(text));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 27);
    let mut request = question(&clip, "llava:13b", "What happens?");
    request.stills = stills(2);
    request.history = vec![("Is there an animal?".into(), "Yes, a cat.".into())];

    let events: Vec<AskEvent> = client
        .ask(&request)
        .await
        .expect("the stream")
        .map(|event| event.expect("no error"))
        .collect()
        .await;
    let (last, deltas) = events.split_last().expect("events");
    let joined: String = deltas
        .iter()
        .map(|event| match event {
            AskEvent::Delta(piece) => piece.clone(),
            AskEvent::Done(_) => panic!("Done before the end: {events:?}"),
        })
        .collect();
    assert_eq!(joined, text);
    assert!(deltas.len() >= 2);
    let AskEvent::Done(usage) = last else {
        panic!("ends with Done: {events:?}")
    };
    assert!(usage.prompt > 0);
    assert_eq!(usage.candidates, (text.chars().count() as u64).div_ceil(4));

    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 1);
    let body = chats[0].body_json.clone().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(image_urls(&body).len(), 2);
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|message| message["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        vec!["system", "user", "user", "assistant", "user"],
        "{body}"
    );
    assert_eq!(messages[4]["content"], "What happens?");
}

// ---------------------------------------------------------------------------------------------
// 9. The shared limiter
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn one_limiter_spaces_the_requests_of_two_clients() {
    let fake = FakeGemini::start().await;
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let times = Arc::clone(&seen);
    fake.set_responder(move |_| {
        times.lock().unwrap().push(Instant::now());
        Reply::text(ANSWER)
    });
    // one cache (as one Redis for many workers): 600 a minute is one every 100 ms after a
    // burst of 10
    let shared = vidsight_cache::open("memory://").unwrap();
    let limits = Limits {
        requests_per_minute: Some(600),
        tokens_per_minute: None,
    };
    let make = || {
        Gemini::new(
            inline_settings(&fake),
            Limiter::new(shared.clone(), "gemini", limits.clone()),
            vidsight_cache::open("memory://").unwrap(),
        )
        .unwrap()
    };
    let (first, second) = (make(), make());
    let clip = video(2048, 28);
    let request = analysis(&clip, MODEL);

    let started = Instant::now();
    let runs = (0..8).flat_map(|_| [first.analyze(&request), second.analyze(&request)]);
    for result in futures::future::join_all(runs).await {
        result.expect("an answer");
    }
    let elapsed = started.elapsed();
    assert_eq!(fake.requests_to(":generateContent").len(), 16);
    // 16 requests: 10 at once, then 6 more 100 ms apart
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    let mut times = seen.lock().unwrap().clone();
    times.sort();
    for pair in times[10..].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(60), "too close: {gap:?}");
    }
}

#[tokio::test]
async fn openai_ask_adapts_to_one_image_per_message() {
    let fake = FakeOpenAi::start().await;
    fake.set_one_image_per_message(true);
    fake.push_reply(OpenAiReply::text("A cat."));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 29);
    let mut request = question(&clip, "llava:13b", "What happens?");
    request.stills = stills(2);

    let events: Vec<AskEvent> = client
        .ask(&request)
        .await
        .expect("the question is asked in a form the server takes")
        .map(|event| event.expect("no error"))
        .collect()
        .await;
    assert!(
        matches!(events.last(), Some(AskEvent::Done(_))),
        "{events:?}"
    );
    let chats = fake.requests_to("/chat/completions");
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0].images_per_message, vec![0, 2, 0]);
    assert_eq!(chats[1].images_per_message, vec![0, 1, 1, 0]);
}

// ---------------------------------------------------------------------------------------------
// Streams as a real network delivers them: in pieces that split characters, or cut short
// ---------------------------------------------------------------------------------------------

/// A server that answers every request with `200 text/event-stream`, each of `pieces` sent
/// as its own HTTP chunk after a pause (so the client reads them separately), then the end
/// of the body. Returns `http://127.0.0.1:PORT`.
async fn piecewise_sse_server(pieces: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let pieces = pieces.clone();
            tokio::spawn(async move {
                // read the head, then as much body as it declares
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                let head_end = loop {
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    if let Some(at) = request.windows(4).position(|window| window == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for piece in pieces {
                    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                    chunk.extend_from_slice(&piece);
                    chunk.extend_from_slice(b"\r\n");
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
                let _ = socket.shutdown().await;
            });
        }
    });
    origin
}

/// `text` as bytes split inside its first multi-byte character.
fn split_inside_a_character(text: &str) -> (Vec<u8>, Vec<u8>) {
    let (at, character) = text
        .char_indices()
        .find(|(_, character)| character.len_utf8() > 1)
        .expect("a multi-byte character");
    assert!(character.len_utf8() > 1);
    let bytes = text.as_bytes();
    (bytes[..at + 1].to_vec(), bytes[at + 1..].to_vec())
}

async fn collect_events(
    stream: futures::stream::BoxStream<'static, Result<AskEvent, Error>>,
) -> Vec<AskEvent> {
    stream.map(|event| event.expect("no error")).collect().await
}

fn deltas(events: &[AskEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            AskEvent::Delta(text) => Some(text.as_str()),
            AskEvent::Done(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn openai_stream_keeps_characters_split_across_reads() {
    let text = "Un café crème à 00:04.";
    let event = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
    );
    let (first, second) = split_inside_a_character(&event);
    let end = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    );
    let origin = piecewise_sse_server(vec![first, second, end.into_bytes()]).await;
    let client = openai_with(OpenAiSettings {
        base_url: format!("{origin}/v1"),
        ..OpenAiSettings {
            model: "llava:13b".into(),
            retry: fast_retry(),
            ..OpenAiSettings::default()
        }
    });
    let clip = video(1024, 30);

    let events = collect_events(
        client
            .ask(&question(&clip, "llava:13b", "What?"))
            .await
            .expect("the stream"),
    )
    .await;
    assert_eq!(deltas(&events), text);
    assert!(
        matches!(events.last(), Some(AskEvent::Done(_))),
        "{events:?}"
    );
}

#[tokio::test]
async fn gemini_stream_keeps_characters_split_across_reads() {
    let text = "猫が机に跳び乗る (00:04)。";
    let event = format!(
        "data: {}\r\n\r\n",
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]})
    );
    let (first, second) = split_inside_a_character(&event);
    let end = format!(
        "data: {}\r\n\r\n",
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}})
    );
    let origin = piecewise_sse_server(vec![first, second, end.into_bytes()]).await;
    let client = gemini_with(GeminiSettings {
        base_url: origin,
        api_key: Secret::new(FakeGemini::API_KEY),
        model: MODEL.into(),
        inline_max_bytes: 20_000_000,
        retry: fast_retry(),
        ..GeminiSettings::default()
    });
    let clip = video(1024, 31);

    let events = collect_events(
        client
            .ask(&question(&clip, MODEL, "What?"))
            .await
            .expect("the stream"),
    )
    .await;
    assert_eq!(deltas(&events), text);
    let Some(AskEvent::Done(usage)) = events.last() else {
        panic!("ends with Done: {events:?}")
    };
    assert_eq!(usage.total, 15);
}

#[tokio::test]
async fn a_stream_cut_short_does_not_end_with_done() {
    // OpenAI: a delta, then the body ends: no finish_reason, no [DONE]
    let partial = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": "The cat"}, "finish_reason": null}]})
    );
    let origin = piecewise_sse_server(vec![partial.into_bytes()]).await;
    let client = openai_with(OpenAiSettings {
        base_url: format!("{origin}/v1"),
        model: "llava:13b".into(),
        retry: fast_retry(),
        ..OpenAiSettings::default()
    });
    let clip = video(1024, 32);
    let events: Vec<Result<AskEvent, Error>> = client
        .ask(&question(&clip, "llava:13b", "What?"))
        .await
        .expect("the stream")
        .collect()
        .await;
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Ok(AskEvent::Done(_)))),
        "a cut-off answer must not look complete: {events:?}"
    );
    assert!(matches!(events.first(), Some(Ok(AskEvent::Delta(text))) if text == "The cat"));

    // Gemini: the same
    let partial = format!(
        "data: {}\r\n\r\n",
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "The cat"}]}, "index": 0}]})
    );
    let origin = piecewise_sse_server(vec![partial.into_bytes()]).await;
    let client = gemini_with(GeminiSettings {
        base_url: origin,
        api_key: Secret::new(FakeGemini::API_KEY),
        model: MODEL.into(),
        inline_max_bytes: 20_000_000,
        retry: fast_retry(),
        ..GeminiSettings::default()
    });
    let events: Vec<Result<AskEvent, Error>> = client
        .ask(&question(&clip, MODEL, "What?"))
        .await
        .expect("the stream")
        .collect()
        .await;
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Ok(AskEvent::Done(_)))),
        "a cut-off answer must not look complete: {events:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// More edges
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upload_that_keeps_failing_gives_up_after_three_tries() {
    let fake = FakeGemini::start().await;
    for _ in 0..4 {
        fake.push_error(Endpoint::UploadChunk, ErrorReply::unavailable());
    }
    let client = gemini_with(gemini_settings(&fake));
    let clip = video(4096, 33);

    let error = error_of(client.upload(&clip.path, "video/mp4", "clip.mp4").await);
    assert_eq!(error.code, ErrorCode::ProviderUnavailable, "{error:?}");
    // each failure is followed by a query, as the SDKs do (1 s, 2 s, 4 s apart)
    assert_eq!(
        commands(&fake),
        vec![
            "start",
            "upload, finalize",
            "query",
            "upload, finalize",
            "query",
            "upload, finalize",
            "query",
            "upload, finalize"
        ]
    );
    assert!(fake.uploaded_files().is_empty());
}

#[tokio::test]
async fn quota_errors_to_the_last_attempt_carry_the_retry_delay() {
    let fake = FakeGemini::start().await;
    fake.push_reply(Reply::quota("0.2s"));
    fake.push_reply(Reply::quota("0.2s"));
    let client = gemini_with(GeminiSettings {
        retry: RetryPolicy {
            attempts: 2,
            ..fast_retry()
        },
        ..inline_settings(&fake)
    });
    let clip = video(2048, 34);

    let error = error_of(client.analyze(&analysis(&clip, MODEL)).await);
    assert_eq!(error.code, ErrorCode::ProviderQuotaExceeded, "{error:?}");
    assert_eq!(error.retry_after_seconds, Some(1), "0.2 s, rounded up");
    assert_eq!(fake.requests_to(":generateContent").len(), 2);
}

#[tokio::test]
async fn a_stream_cut_at_max_tokens_or_blocked_is_an_err_item() {
    let fake = FakeGemini::start().await;
    let client = gemini_with(inline_settings(&fake));
    let clip = video(2048, 35);
    let request = question(&clip, MODEL, "Describe everything.");

    fake.push_reply(Reply::truncated("The cat jumps and"));
    let events: Vec<Result<AskEvent, Error>> = client
        .ask(&request)
        .await
        .expect("the stream")
        .collect()
        .await;
    let error = events
        .last()
        .unwrap()
        .as_ref()
        .expect_err("ends with an error");
    assert_eq!(error.code, ErrorCode::ProviderTruncated, "{error:?}");
    assert!(!events
        .iter()
        .any(|event| matches!(event, Ok(AskEvent::Done(_)))));

    fake.push_reply(Reply::blocked("SAFETY"));
    let events: Vec<Result<AskEvent, Error>> = client
        .ask(&request)
        .await
        .expect("the stream")
        .collect()
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let error = events[0].as_ref().expect_err("an error");
    assert_eq!(error.code, ErrorCode::ProviderBlocked, "{error:?}");
    assert!(error.message.contains("SAFETY"));
}

#[tokio::test]
async fn openai_spreads_keyframes_over_max_images() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(OpenAiReply::text(ANSWER));
    let client = openai_with(OpenAiSettings {
        max_images: 4,
        ..openai_settings(&fake)
    });
    let clip = video(1024, 36);
    let request = image_analysis(&clip, 20);

    client.analyze(&request).await.expect("the analysis");
    let body = fake.requests_to("/chat/completions")[0]
        .body_json
        .clone()
        .unwrap();
    let expected: Vec<String> = [0, 5, 10, 15]
        .iter()
        .map(|index: &usize| {
            format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&request.stills[*index].jpeg)
            )
        })
        .collect();
    assert_eq!(image_urls(&body), expected);
}

#[tokio::test]
async fn openai_retry_after_past_the_limit_fails_at_once() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(OpenAiReply::rate_limited(30));
    let client = openai_with(openai_settings(&fake));
    let clip = video(1024, 37);

    let started = Instant::now();
    let error = error_of(client.analyze(&image_analysis(&clip, 1)).await);
    assert_eq!(error.code, ErrorCode::ProviderQuotaExceeded, "{error:?}");
    assert_eq!(error.retry_after_seconds, Some(30));
    assert_eq!(fake.requests_to("/chat/completions").len(), 1);
    assert!(started.elapsed() < Duration::from_secs(3));
}
