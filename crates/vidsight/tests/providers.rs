//! Analysis providers end to end, against the local fakes of the Gemini and OpenAI-compatible
//! wire protocols (`vidsight_providers::fake`): the whole path upload → ACTIVE → generate →
//! grounded insights, every error path ending in its state and code, the result cache, the
//! token budget, questions streamed as Server-Sent Events.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vidsight_providers::fake::gemini::{FakeGemini, Reply};
use vidsight_providers::fake::openai::{self, FakeOpenAi};

/// 7.5 s of 1080p: testsrc2 | smptehdbars | rgbtestsrc, cuts at 2.5 and 5.0 s, a tone.
fn three_shots_1080p(dir: &Path) -> PathBuf {
    let path = dir.join("three-shots-1080p.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=1920x1080:r=25:d=2.5",
        "-f",
        "lavfi",
        "-i",
        "smptehdbars=s=1920x1080:r=25:d=2.5",
        "-f",
        "lavfi",
        "-i",
        "rgbtestsrc=s=1920x1080:r=25:d=2.5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=7.5",
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]",
        "-map",
        "[v]",
        "-map",
        "3:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        path.to_str().unwrap(),
    ]);
    path
}

fn chapters_answer() -> String {
    json!({
        "summary": "Three test patterns follow each other.",
        "chapters": [
            {"title": "Moving pattern", "start": "00:00", "end": "00:02", "summary": "testsrc2"},
            {"title": "Colour bars", "start": "00:02.2", "end": "00:05.4"},
            {"title": "RGB pattern", "start": "0:05.4", "end": "0:07"},
            {"title": "Invented", "start": "03:00", "end": "03:10"}
        ]
    })
    .to_string()
}

async fn gemini_server(fake: &FakeGemini, extra: Value) -> TestServer {
    let mut config = json!({"providers": {
        "gemini": {
            "base_url": fake.base_url(),
            "api_key": FakeGemini::API_KEY,
            // every video goes through the Files API (none inline)
            "inline_max_bytes": 0,
            "max_attempts": 4,
        },
        "prices": {"gemini-3.5-flash": {"input": 1.5, "output": 9.0}}
    }});
    merge(&mut config, extra);
    TestServer::start(config).await
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}

/// Uploads and waits for the local analysis; returns the video id.
async fn uploaded(server: &TestServer, path: &Path) -> String {
    let (status, body) = server.upload_file(path).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let video = server.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(video["status"], "ready", "{video}");
    id
}

/// Queues an analysis with these options and waits for it; returns (status, analysis).
async fn analyse(server: &TestServer, id: &str, options: Value) -> (u16, Value) {
    let response = server
        .client
        .post(server.url(&format!("/api/v1/videos/{id}/analyses")))
        .json(&options)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    if status != 202 {
        return (status, body);
    }
    let analysis_id = body["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, analysis) = server
            .get_json(&format!("/api/v1/analyses/{analysis_id}"))
            .await;
        if analysis["status"] == "succeeded" || analysis["status"] == "failed" {
            return (202, analysis);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "analysis stuck: {analysis}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn generate_calls(fake: &FakeGemini) -> usize {
    fake.requests_to(":generateContent").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1080p_clip_is_uploaded_analysed_and_its_chapters_grounded_then_served_from_the_cache() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(7.5);
    fake.set_processing_polls(2);
    fake.set_responder(|_| Reply::text(chapters_answer()));
    let server = gemini_server(&fake, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = three_shots_1080p(dir.path());
    let id = uploaded(&server, &clip).await;

    let options = json!({"provider": "gemini", "features": ["summary", "chapters"]});
    let (status, analysis) = analyse(&server, &id, options.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_valid_insights(&insights);

    // grounded: the invented chapter is gone, starts snapped onto the local shot boundaries
    let chapters = insights["chapters"].as_array().unwrap();
    assert_eq!(chapters.len(), 3, "{chapters:?}");
    let boundaries: Vec<f64> = insights["shots"].as_array().unwrap()[1..]
        .iter()
        .map(|shot| shot["start"].as_f64().unwrap())
        .collect();
    assert_eq!(boundaries.len(), 2, "the local analysis finds both cuts");
    assert_eq!(chapters[0]["start"], 0.0);
    assert_eq!(chapters[1]["start"].as_f64().unwrap(), boundaries[0]);
    assert_eq!(chapters[1]["snapped"], true);
    assert_eq!(chapters[2]["start"].as_f64().unwrap(), boundaries[1]);
    for pair in chapters.windows(2) {
        assert_eq!(pair[0]["end"], pair[1]["start"], "chapters are contiguous");
    }
    assert_close(
        chapters[2]["end"].as_f64().unwrap(),
        insights["media"]["duration"].as_f64().unwrap(),
        0.01,
        "the last chapter ends with the video",
    );
    assert_eq!(chapters[0]["source"], "gemini");
    assert_eq!(chapters[0]["model"], "gemini-3.5-flash");
    assert_eq!(
        insights["summary"]["text"],
        "Three test patterns follow each other."
    );

    let run = &insights["providers"][0];
    assert_eq!(run["source"], "gemini");
    assert_eq!(run["cached"], false);
    assert!(run["usage"]["total"].as_u64().unwrap() > 0, "{run}");
    assert!(
        run["usage"]["by_modality"]["VIDEO"].as_u64().unwrap() > 0,
        "{run}"
    );
    assert!(run["cost_usd"].as_f64().unwrap() > 0.0, "{run}");
    assert!(
        run["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("03:00")),
        "the dropped chapter is reported: {run}"
    );
    // a 480p proxy went instead of the 1080p original
    assert!(run["bytes_saved"].as_u64().unwrap() > 0, "{run}");
    let files = fake.uploaded_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].size_bytes, run["bytes_uploaded"].as_u64().unwrap());
    assert!(files[0].polls >= 2, "the file was polled until ACTIVE");
    // the raw answer is kept for audit
    let raw_key = run["raw"].as_str().unwrap();
    let raw = server
        .blobs()
        .get_bytes(raw_key)
        .await
        .unwrap()
        .expect("raw kept");
    assert!(String::from_utf8_lossy(&raw).contains("Invented"));

    // what the client sent: the key in a header only, the file, the schema, the instruction
    for request in fake.requests() {
        assert!(
            !request.query.contains("key="),
            "key in a URL: {}",
            request.path
        );
    }
    let generate = fake.requests_to(":generateContent");
    assert_eq!(generate.len(), 1);
    assert_eq!(
        generate[0].header("x-goog-api-key"),
        Some(FakeGemini::API_KEY)
    );
    let body = generate[0].body_json.as_ref().unwrap();
    let parts = &body["contents"][0]["parts"];
    assert!(parts[0]["fileData"]["fileUri"]
        .as_str()
        .unwrap()
        .contains(&files[0].name));
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(body["generationConfig"]["responseSchema"]["type"], "OBJECT");
    assert!(body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .contains("video analyst"));
    assert!(
        parts[1]["text"]
            .as_str()
            .unwrap()
            .contains("Shot changes at"),
        "local grounding sent"
    );

    // the same analysis again: served from the cache, 0 tokens, nothing sent
    let before = fake.requests().len();
    let (_, analysis) = analyse(&server, &id, options).await;
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    let run = &insights["providers"][0];
    assert_eq!(run["cached"], true, "{run}");
    assert_eq!(run["usage"]["total"], 0);
    assert_eq!(insights["chapters"].as_array().unwrap().len(), 3);
    assert_eq!(fake.requests().len(), before, "nothing reached Gemini");

    // the account was charged for the first run only
    let (_, usage) = server.get_json("/api/v1/users/me/usage").await;
    assert!(usage["provider_tokens"].as_i64().unwrap() > 0, "{usage}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_ends_in_its_state_and_code() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(5.0);
    // no file kept between analyses: each uploads anew (and deletes its file)
    let server = gemini_server(
        &fake,
        json!({"worker": {"max_attempts": 2}, "providers": {"gemini": {"keep_files": false}}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(dir.path(), "clip.mp4", "testsrc2=s=320x240:r=25:d=5", &[]);
    let id = uploaded(&server, &clip).await;
    // each case asks in another language, so no answer comes from the cache
    let options =
        |case: &str| json!({"provider": "gemini", "features": ["summary"], "language": case});
    let summary = || Reply::text(json!({"summary": "A test pattern."}).to_string());

    // 429 with RetryInfo: the client waits what the server says, then succeeds
    fake.push_reply(Reply::quota("1s"));
    fake.push_reply(summary());
    let (_, analysis) = analyse(&server, &id, options("a")).await;
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    let calls = fake.requests_to(":generateContent");
    assert_eq!(calls.len(), 2);

    // a burst of 503s: retried with backoff, then succeeds
    fake.push_reply(Reply::unavailable());
    fake.push_reply(Reply::unavailable());
    fake.push_reply(summary());
    let (_, analysis) = analyse(&server, &id, options("b")).await;
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    assert_eq!(generate_calls(&fake), 5);
    assert!(
        fake.uploaded_files().iter().all(|file| file.deleted),
        "files are deleted after use"
    );

    // a FAILED file: the analysis fails, and says why
    fake.fail_processing("Video codec not supported");
    let (_, analysis) = analyse(&server, &id, options("c")).await;
    assert_eq!(analysis["status"], "failed", "{analysis}");
    assert_eq!(analysis["error"]["code"], "provider_bad_output");
    assert!(analysis["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not supported"));

    // a blocked prompt
    fake.push_reply(Reply::blocked("PROHIBITED_CONTENT"));
    let (_, analysis) = analyse(&server, &id, options("d")).await;
    assert_eq!(analysis["status"], "failed", "{analysis}");
    assert_eq!(analysis["error"]["code"], "provider_blocked");
    assert!(analysis["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PROHIBITED_CONTENT"));

    // truncated JSON (MAX_TOKENS)
    fake.push_reply(Reply::truncated("{\"summary\": \"A test pat"));
    let (_, analysis) = analyse(&server, &id, options("e")).await;
    assert_eq!(
        analysis["error"]["code"], "provider_truncated",
        "{analysis}"
    );

    // broken JSON with STOP
    fake.push_reply(Reply::text("Sure! Here it is: {\"summary\": oops}"));
    let (_, analysis) = analyse(&server, &id, options("f")).await;
    assert_eq!(
        analysis["error"]["code"], "provider_bad_output",
        "{analysis}"
    );

    // a retired model
    let (_, analysis) = analyse(
        &server,
        &id,
        json!({"provider": "gemini", "model": "gemini-2.0-flash", "features": ["summary"]}),
    )
    .await;
    assert_eq!(
        analysis["error"]["code"], "provider_not_found",
        "{analysis}"
    );

    // a custom answer that does not follow the user's schema
    fake.push_reply(Reply::text(json!({"custom": {"dogs": "many"}}).to_string()));
    let (_, analysis) = analyse(
        &server,
        &id,
        json!({"provider": "gemini", "features": ["custom"], "prompt": "How many dogs?",
               "schema": {"type": "object", "properties": {"dogs": {"type": "integer"}}, "required": ["dogs"]}}),
    )
    .await;
    assert_eq!(
        analysis["error"]["code"], "provider_bad_output",
        "{analysis}"
    );

    // bad requests are refused before anything is queued or sent
    let sent = fake.requests().len();
    for (options, what) in [
        (
            json!({"provider": "gemini", "features": ["custom"]}),
            "prompt",
        ),
        (
            json!({"provider": "gemini", "features": ["custom"], "prompt": "x", "schema": {"type": "strange"}}),
            "schema",
        ),
        (json!({"provider": "openai"}), "not configured"),
        (json!({"provider": "gemini", "fps": 60}), "fps"),
    ] {
        let (status, body) = analyse(&server, &id, options).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid-input");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(what),
            "{body}"
        );
    }
    assert_eq!(fake.requests().len(), sent);
    server.stop().await;

    // a wrong key
    let fake = FakeGemini::start().await;
    let server = gemini_server(
        &fake,
        json!({"providers": {"gemini": {"api_key": "AIza-wrong-key"}}}),
    )
    .await;
    let id = uploaded(&server, &clip).await;
    let (_, analysis) = analyse(&server, &id, options("g")).await;
    assert_eq!(analysis["error"]["code"], "provider_auth", "{analysis}");
    assert!(!analysis.to_string().contains("AIza-wrong-key"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estimate_refuses_an_analysis_over_the_monthly_token_budget() {
    let fake = FakeGemini::start().await;
    let server = gemini_server(&fake, json!({"providers": {"tokens_per_month": 5000}})).await;
    let dir = tempfile::tempdir().unwrap();
    // 20 s at 1 fps × 258 tokens is already over 5 000
    let clip = lavfi_clip(dir.path(), "long.mp4", "testsrc2=s=160x120:r=10:d=20", &[]);
    let id = uploaded(&server, &clip).await;
    let (status, body) = analyse(&server, &id, json!({"provider": "gemini"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("token budget"));
    assert!(fake.requests().is_empty(), "nothing was sent");
    // at LOW resolution on a 2-second clip it fits
    fake.set_responder(|_| Reply::text(json!({"summary": "ok", "chapters": []}).to_string()));
    let (status, analysis) = analyse(
        &server,
        &id,
        json!({"provider": "gemini", "media_resolution": "low", "start": 0, "end": 2}),
    )
    .await;
    assert_eq!(status, 202, "{analysis}");
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    let generate = fake.requests_to(":generateContent");
    let body = generate[0].body_json.as_ref().unwrap();
    assert_eq!(
        body["generationConfig"]["mediaResolution"],
        "MEDIA_RESOLUTION_LOW"
    );
    assert_eq!(
        body["contents"][0]["parts"][0]["videoMetadata"]["endOffset"],
        "2s"
    );
    server.stop().await;
}

/// Server-Sent Events of `POST /ask`: (event, data) pairs.
async fn ask(server: &TestServer, id: &str, body: Value) -> Vec<(String, Value)> {
    let response = server
        .client
        .post(server.url(&format!("/api/v1/videos/{id}/ask")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|event| {
            let name = event
                .lines()
                .find_map(|line| line.strip_prefix("event: "))?;
            let data = event.lines().find_map(|line| line.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_stream_with_grounded_citations_and_conversations_continue() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(5.0);
    let server = gemini_server(&fake, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(dir.path(), "clip.mp4", "testsrc2=s=320x240:r=25:d=5", &[]);
    let id = uploaded(&server, &clip).await;

    fake.push_reply(Reply::text(
        "A moving test pattern is shown [00:01-00:03], and a counter [00:04]; nothing at [02:00].",
    ));
    let events = ask(&server, &id, json!({"question": "What is shown?"})).await;
    assert_eq!(events[0].0, "start");
    assert!(
        events.iter().filter(|(name, _)| name == "delta").count() >= 2,
        "streamed in pieces: {events:?}"
    );
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert!(done["answer"]
        .as_str()
        .unwrap()
        .starts_with("A moving test pattern"));
    assert_eq!(done["citations"].as_array().unwrap().len(), 2);
    assert_eq!(done["citations"][0]["start"], 1.0);
    assert_eq!(done["citations"][0]["end"], 3.0);
    assert_eq!(done["dropped_citations"], json!(["[02:00]"]));
    let conversation = done["conversation"].as_str().unwrap().to_owned();

    // a follow-up carries the first turn, and reuses the uploaded file
    fake.push_reply(Reply::text("It lasts five seconds [00:00-00:05]."));
    let events = ask(
        &server,
        &id,
        json!({"question": "How long?", "conversation": conversation}),
    )
    .await;
    assert_eq!(events.last().unwrap().0, "done", "{events:?}");
    let streamed = fake.requests_to(":streamGenerateContent");
    assert_eq!(streamed.len(), 2);
    let contents = streamed[1].body_json.as_ref().unwrap()["contents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        contents.len(),
        3,
        "question, answer, question: {contents:?}"
    );
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        fake.uploaded_files().len(),
        1,
        "the kept file is used again"
    );

    // a provider error mid-way arrives as an error event
    fake.push_reply(Reply::blocked("SAFETY"));
    let events = ask(&server, &id, json!({"question": "Anything else?"})).await;
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(error["code"], "provider_blocked");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_model_gets_keyframes_and_answers_in_the_schema() {
    let fake = FakeOpenAi::start().await;
    fake.set_one_image_per_message(true);
    fake.set_json_schema_supported(false);
    fake.set_responder(|_| {
        openai::Reply::text(
            json!({"summary": "Colour bars, then a pattern.",
                   "labels": [{"name": "colour bars", "start": "00:00", "end": "00:02"},
                              {"name": "ghost", "start": "10:00", "end": "10:05"}]})
            .to_string(),
        )
    });
    let server = TestServer::start(json!({"providers": {"openai": {
        "base_url": fake.base_url(), "model": "llava:13b"}}}))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = reference_clip(dir.path());
    let id = uploaded(&server, &path).await;
    let (_, analysis) = analyse(
        &server,
        &id,
        json!({"provider": "openai", "features": ["summary", "labels"]}),
    )
    .await;
    assert_eq!(analysis["status"], "succeeded", "{analysis}");
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_eq!(insights["summary"]["source"], "openai");
    let labels = insights["labels"].as_array().unwrap();
    assert_eq!(
        labels.len(),
        1,
        "the label after the end is dropped: {labels:?}"
    );
    assert_eq!(labels[0]["end"], 2.0);
    // the server refused several images per message and json_schema: the client adapted
    let last = fake.requests().last().unwrap().clone();
    assert!(
        last.images_per_message.iter().all(|count| *count <= 1),
        "{:?}",
        last.images_per_message
    );
    assert!(
        last.images_per_message.iter().sum::<usize>() >= 4,
        "the keyframes were sent"
    );
    let body = last.body_json.unwrap();
    assert_eq!(body["response_format"]["type"], "json_object");
    server.stop().await;
}

/// `vidsight analyze FILE --provider gemini` as a user runs it: the key from GEMINI_API_KEY,
/// the endpoint from VIDSIGHT_GEMINI_BASE_URL, every log line at trace level — and the key
/// in none of them, nor in an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_analyses_with_gemini_and_no_log_line_holds_the_key() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(7.5);
    fake.set_responder(|_| Reply::text(chapters_answer()));
    let dir = tempfile::tempdir().unwrap();
    let clip = three_shots_1080p(dir.path());
    let run = |key: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_vidsight"))
            .args(["analyze", clip.to_str().unwrap(), "--provider", "gemini"])
            .args(["--features", "summary,chapters"])
            .env("GEMINI_API_KEY", key)
            .env("VIDSIGHT_GEMINI_BASE_URL", fake.base_url())
            .env("VIDSIGHT_PROVIDERS__GEMINI__INLINE_MAX_BYTES", "0")
            .env("RUST_LOG", "trace")
            .env("VIDSIGHT_DATA_DIR", dir.path())
            .current_dir(dir.path())
            .output()
    };
    let output = run(FakeGemini::API_KEY).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    assert!(
        stdout.contains("summary (gemini): Three test patterns"),
        "{stdout}"
    );
    assert!(stdout.contains("Colour bars (snapped)"), "{stdout}");
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "trace logging was on: {stderr}"
    );
    assert!(
        !stderr.contains(FakeGemini::API_KEY),
        "the key is in the logs"
    );
    assert!(!stdout.contains(FakeGemini::API_KEY));
    assert!(
        fake.requests_to("/upload/v1beta/files").len() >= 2,
        "uploaded through the Files API"
    );

    let output = run("AIza-this-key-is-wrong").await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("provider_auth"),
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(
        !stderr.contains("AIza-this-key-is-wrong"),
        "the wrong key is in the logs"
    );

    let shown = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidsight"))
        .args(["config", "show"])
        .env("GEMINI_API_KEY", FakeGemini::API_KEY)
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("\"api_key\""), "{shown}");
    assert!(
        !shown.contains(FakeGemini::API_KEY),
        "config show prints the key"
    );
}

/// With Gemini as the configured default, every upload asks it; when it fails the upload
/// still gets its local analysis, and the insights say what was not added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_provider_that_fails_costs_an_upload_nothing() {
    let fake = FakeGemini::start().await;
    fake.set_video_seconds(5.0);
    let server = gemini_server(&fake, json!({"providers": {"default": "gemini"}})).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(dir.path(), "clip.mp4", "testsrc2=s=320x240:r=25:d=5", &[]);
    fake.push_reply(Reply::blocked("SAFETY"));
    let id = uploaded(&server, &clip).await;
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_valid_insights(&insights);
    assert!(!insights["shots"].as_array().unwrap().is_empty());
    let run = &insights["providers"][0];
    assert_eq!(run["source"], "gemini");
    let warning = run["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("provider_blocked") && warning.contains("SAFETY"),
        "{warning}"
    );
    assert!(insights.get("summary").is_none());
    // the next upload's default run succeeds and adds its summary
    fake.set_responder(|_| {
        Reply::text(json!({"summary": "A pattern.", "chapters": []}).to_string())
    });
    let other = lavfi_clip(dir.path(), "other.mp4", "testsrc=s=320x240:r=25:d=4", &[]);
    let id = uploaded(&server, &other).await;
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_eq!(insights["summary"]["text"], "A pattern.", "{insights}");
    server.stop().await;
}
