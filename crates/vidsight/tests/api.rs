//! The whole path through the real server: upload → queue → worker → analysis → insights.
mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const FRAME: f64 = 1.0 / 25.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_clip_yields_cuts_black_and_silence_at_the_right_times() {
    let dir = tempfile::tempdir().unwrap();
    let clip = reference_clip(dir.path());
    let server = TestServer::start(json!({})).await;

    let (status, video) = server.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["status"], "uploaded");
    assert_eq!(video["media"]["width"], 320);
    assert_eq!(video["content_type"], "video/mp4");
    let id = video["id"].as_str().unwrap().to_owned();
    let expected_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&clip).unwrap()))
    };
    assert_eq!(video["sha256"], expected_sha);

    let video = server.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(video["status"], "ready", "{video}");
    assert_eq!(video["progress"], 100);

    let (status, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_eq!(status, 200, "{insights}");
    assert_valid_insights(&insights);

    let cuts: Vec<f64> = insights["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["start"].as_f64().unwrap())
        .collect();
    assert_eq!(cuts.len(), REFERENCE_CUTS.len(), "cuts found: {cuts:?}");
    for (found, expected) in cuts.iter().zip(REFERENCE_CUTS) {
        assert_close(*found, expected, FRAME + 1e-6, "cut");
    }
    assert!(insights["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["kind"] == "cut"));
    let shots = insights["shots"].as_array().unwrap();
    assert_eq!(shots.len(), 5);
    assert_close(shots[4]["end"].as_f64().unwrap(), 9.0, 0.1, "last shot end");

    let black = insights["black"].as_array().unwrap();
    assert_eq!(black.len(), 1, "black: {black:?}");
    assert_close(
        black[0]["start"].as_f64().unwrap(),
        4.0,
        FRAME + 1e-6,
        "black start",
    );
    assert_close(
        black[0]["end"].as_f64().unwrap(),
        5.0,
        FRAME + 1e-6,
        "black end",
    );

    // the SMPTE bars (2–4 s) and the RGB test pattern (5–7 s) are colour bars
    let bars = insights["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 2, "bars: {bars:?}");
    for (found, (start, end)) in bars.iter().zip([(2.0, 4.0), (5.0, 7.0)]) {
        assert_close(
            found["start"].as_f64().unwrap(),
            start,
            FRAME + 1e-6,
            "bars start",
        );
        assert_close(
            found["end"].as_f64().unwrap(),
            end,
            FRAME + 1e-6,
            "bars end",
        );
    }

    let silence = insights["silence"].as_array().unwrap();
    assert_eq!(silence.len(), 1, "silence: {silence:?}");
    assert_close(
        silence[0]["start"].as_f64().unwrap(),
        5.0,
        FRAME + 1e-6,
        "silence start",
    );
    assert_close(
        silence[0]["end"].as_f64().unwrap(),
        7.0,
        FRAME + 1e-6,
        "silence end",
    );

    let loudness = &insights["loudness"];
    let integrated = loudness["integrated_lufs"].as_f64().unwrap();
    assert!(
        (-40.0..-5.0).contains(&integrated),
        "integrated loudness {integrated}"
    );
    assert!(loudness["true_peak_dbtp"].as_f64().unwrap() <= 1.0);

    // every keyframe is a JPEG the API serves
    for shot in shots {
        let name = shot["keyframe"].as_str().expect("each shot has a keyframe");
        let response = server
            .client
            .get(server.url(&format!("/api/v1/videos/{id}/keyframes/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(&response.bytes().await.unwrap()[..3], &[0xFF, 0xD8, 0xFF]);
    }
    let (status, error) = server
        .get_json(&format!("/api/v1/videos/{id}/keyframes/..%2F..%2Foriginal"))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not-found"))
    );

    // WebVTT chapters
    let vtt = server
        .client
        .get(server.url(&format!("/api/v1/videos/{id}/insights.vtt")))
        .send()
        .await
        .unwrap();
    assert_eq!(vtt.headers()["content-type"], "text/vtt; charset=utf-8");
    let vtt = vtt.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n"));
    assert_eq!(vtt.matches(" --> ").count(), 5);

    // the first analysis is recorded once, succeeded
    let analysis_id = video["latest_analysis_id"].as_str().unwrap();
    let (status, analysis) = server
        .get_json(&format!("/api/v1/analyses/{analysis_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(analysis["status"], "succeeded");
    assert_eq!(analysis["attempts"], 1);

    // the CLI gives the same document for the same file
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vidsight"))
        .args(["analyze", "--json"])
        .arg(&clip)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(from_cli, insights);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_supports_ranges_and_listing_pages_and_delete_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "small.mp4",
        "testsrc2=size=160x120:rate=25:duration=1",
        &[],
    );
    let bytes = std::fs::read(&clip).unwrap();
    let server = TestServer::start(json!({})).await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let (status, video) = server
            .upload(bytes.clone(), &format!("clip-{index}.mp4"), "video/mp4")
            .await;
        assert_eq!(status, 201, "{video}");
        ids.push(video["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        assert_eq!(
            server.wait_finished(id, Duration::from_secs(60)).await["status"],
            "ready"
        );
    }

    // cursor pagination, newest first
    let (_, first) = server.get_json("/api/v1/videos?limit=2").await;
    let first_ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(first_ids, vec![ids[2].as_str(), ids[1].as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = server
        .get_json(&format!("/api/v1/videos?limit=2&after={cursor}"))
        .await;
    assert_eq!(second["items"][0]["id"], ids[0].as_str());
    assert!(second["next_cursor"].is_null());
    for (query, code) in [
        ("limit=0", "bad-request"),
        ("limit=abc", "bad-request"),
        ("after=nope", "invalid-cursor"),
    ] {
        let (status, error) = server.get_json(&format!("/api/v1/videos?{query}")).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }

    // ranges
    let id = &ids[0];
    let content = server.url(&format!("/api/v1/videos/{id}/content"));
    let whole = server.client.get(&content).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &bytes[..]);
    let part = server
        .client
        .get(&content)
        .header("Range", "bytes=10-109")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-109/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[10..110]);
    let tail = server
        .client
        .get(&content)
        .header("Range", "bytes=-16")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 16..]
    );
    let past = server
        .client
        .get(&content)
        .header("Range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );

    // re-run: accepted once, refused while active
    let rerun = server
        .client
        .post(server.url(&format!("/api/v1/videos/{id}/analyses")))
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 202);
    let again = server
        .client
        .post(server.url(&format!("/api/v1/videos/{id}/analyses")))
        .send()
        .await
        .unwrap();
    let status = again.status().as_u16();
    let body: Value = again.json().await.unwrap();
    // the worker may already have finished the re-run; otherwise it is refused
    assert!(
        status == 202 || (status == 409 && body["error"]["code"] == "analysis-in-progress"),
        "{status} {body}"
    );
    assert_eq!(
        server.wait_finished(id, Duration::from_secs(60)).await["status"],
        "ready"
    );

    // delete takes the objects and rows with it
    assert!(server
        .stored_objects()
        .await
        .iter()
        .any(|key| key.contains(id.as_str())));
    let deleted = server
        .client
        .delete(server.url(&format!("/api/v1/videos/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _) = server.get_json(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(status, 404);
    assert!(!server
        .stored_objects()
        .await
        .iter()
        .any(|key| key.contains(id.as_str())));
    let again = server
        .client
        .delete(server.url(&format!("/api/v1/videos/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let (status, error) = server.get_json("/api/v1/videos/not-a-uuid").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid-id"))
    );
    let (status, error) = server.get_json("/api/v1/nothing-here").await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not-found"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_code_and_leaves_no_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let full = lavfi_clip(
        dir.path(),
        "full.mp4",
        "testsrc2=size=320x240:rate=25:duration=3",
        &[],
    );
    let full_bytes = std::fs::read(&full).unwrap();
    let faststart = lavfi_clip(
        dir.path(),
        "faststart.mp4",
        "testsrc2=size=320x240:rate=25:duration=3",
        &["-movflags", "+faststart"],
    );
    let faststart_bytes = std::fs::read(&faststart).unwrap();
    let audio = lavfi_clip(dir.path(), "tone.m4a", "sine=duration=2", &[]);

    let server = TestServer::start(json!({ "upload": { "max_bytes": 400_000 } })).await;
    // (what, body, file name, declared type, status, code)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "text file",
            b"just some words, not a video\n".to_vec(),
            "notes.txt",
            "text/plain",
            415,
            "unsupported-media-type",
        ),
        (
            "text file claiming to be mp4",
            b"just some words, not a video\n".to_vec(),
            "notes.mp4",
            "video/mp4",
            415,
            "unsupported-media-type",
        ),
        (
            "zero bytes",
            Vec::new(),
            "empty.mp4",
            "video/mp4",
            422,
            "empty-file",
        ),
        (
            "truncated mp4 (index at the end)",
            full_bytes[..full_bytes.len() / 2].to_vec(),
            "cut.mp4",
            "video/mp4",
            422,
            "truncated-media",
        ),
        (
            "truncated mp4 (index at the front)",
            faststart_bytes[..faststart_bytes.len() / 2].to_vec(),
            "cut2.mp4",
            "video/mp4",
            422,
            "truncated-media",
        ),
        (
            "audio only",
            std::fs::read(&audio).unwrap(),
            "tone.m4a",
            "audio/mp4",
            415,
            "unsupported-media-type",
        ),
        (
            "audio only, octet-stream",
            std::fs::read(&audio).unwrap(),
            "tone.m4a",
            "application/octet-stream",
            422,
            "not-a-video",
        ),
        (
            "oversize body",
            vec![0u8; 500_000],
            "big.mp4",
            "video/mp4",
            413,
            "payload-too-large",
        ),
        (
            "path traversal",
            full_bytes.clone(),
            "../../etc/passwd.mp4",
            "video/mp4",
            400,
            "invalid-filename",
        ),
        (
            "windows path",
            full_bytes.clone(),
            "C:\\Users\\me\\clip.mp4",
            "video/mp4",
            400,
            "invalid-filename",
        ),
    ];
    for (what, bytes, name, content_type, status, code) in cases {
        let (got_status, body) = server.upload(bytes, name, content_type).await;
        assert_eq!(
            (got_status, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            !body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a message"
        );
    }

    // an oversize body without Content-Length (chunked) is stopped while streaming
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![0u8; 100_000])).collect();
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .file_name("stream.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let response = server
        .client
        .post(server.url("/api/v1/videos"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload-too-large");

    // malformed multipart, wrong content type, missing field
    let raw = |content_type: &'static str, body: &'static str| {
        server
            .client
            .post(server.url("/api/v1/videos"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (content_type, body, code) in [
        (
            "multipart/form-data; boundary=XYZ",
            "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nabc",
            "invalid-multipart",
        ),
        (
            "multipart/form-data; boundary=XYZ",
            "this is not multipart at all",
            "invalid-multipart",
        ),
        ("multipart/form-data", "--XYZ--\r\n", "invalid-multipart"),
        ("application/json", "{\"file\": 1}", "invalid-multipart"),
        (
            "multipart/form-data; boundary=XYZ",
            "--XYZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--XYZ--\r\n",
            "missing-file",
        ),
    ] {
        let response = raw(content_type, body).await.unwrap();
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (400, Some(code)),
            "{content_type} {body:?}: {json}"
        );
    }

    // nothing was kept: no row, no object, no temporary file
    let (_, list) = server.get_json("/api/v1/videos").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let orphans = server.stored_objects().await;
    assert!(orphans.is_empty(), "orphan objects: {orphans:?}");
    assert!(
        files_under(&server.data_dir.join("tmp")).is_empty(),
        "temporary files left: {:?}",
        files_under(&server.data_dir.join("tmp"))
    );

    // and a good upload still works afterwards
    let (status, video) = server.upload(full_bytes, "fine.mp4", "video/mp4").await;
    assert_eq!(status, 201, "{video}");
    server.stop().await;
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_clip_reaches_ready() {
    let Some(media) = shared_media() else { return };
    let server = TestServer::start(json!({})).await;
    let mut uploaded = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&media)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("mp4" | "mkv")
            )
        })
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for path in &names {
        let (status, video) = server.upload_file(path).await;
        assert_eq!(status, 201, "{}: {video}", path.display());
        uploaded.push((path.clone(), video["id"].as_str().unwrap().to_owned()));
    }
    for (path, id) in &uploaded {
        let video = server.wait_finished(id, Duration::from_secs(180)).await;
        assert_eq!(video["status"], "ready", "{}: {video}", path.display());
        let (status, insights) = server
            .get_json(&format!("/api/v1/videos/{id}/insights"))
            .await;
        assert_eq!(status, 200);
        assert_valid_insights(&insights);
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "goldeneye-vfr-drop3.mp4" {
            let cuts: Vec<f64> = insights["transitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["start"].as_f64().unwrap())
                .collect();
            assert_eq!(cuts.len(), 2, "{cuts:?}");
            assert_close(cuts[0], 3.754, 1.0 / 23.976, "first cut");
            assert_close(cuts[1], 8.759, 1.0 / 23.976, "second cut");
            assert_eq!(insights["media"]["variable_frame_rate"], true);
        }
        if name == "issue-134-rotate.mp4" {
            assert_eq!(insights["media"]["rotation"], 90);
            assert_eq!(insights["media"]["display_width"], 544);
        }
        if name == "issue-195-aspect-ratio.mp4" {
            assert_eq!(insights["media"]["display_aspect"], "16:9");
            assert_ne!(insights["media"]["sample_aspect"], "1:1");
        }
        if name == "bigbuckbunny.mp4" {
            assert_eq!(insights["shots"].as_array().unwrap().len(), 1);
            assert!(insights["loudness"]["integrated_lufs"].is_number());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let (status, health) = server.get_json("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, ready) = server.get_json("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["storage"], "ok");
    assert_eq!(ready["checks"]["queue"], "ok");
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vidsight_queue_jobs{state=\"ready\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vidsight_http_requests_total"),
        "{metrics}"
    );
    for name in [
        "vidsight_workers_alive",
        "vidsight_queue_oldest_ready_age_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
    let (status, spec) = server.get_json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/api/v1/videos"]["post"].is_object());
    let docs = server
        .client
        .get(server.url("/api/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    server.stop().await;
}

/// The committed spec must be what the code generates. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p vidsight --test api openapi_spec_matches_the_code`.
#[test]
fn openapi_spec_matches_the_code() {
    let generated = serde_json::to_string_pretty(&vidsight_api::openapi()).unwrap() + "\n";
    let path = repo_root().join("docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the code; regenerate it with UPDATE_OPENAPI=1 cargo test -p vidsight --test api openapi_spec_matches_the_code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_with_backoff_then_fail_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "ok.mp4",
        "testsrc2=size=160x120:rate=25:duration=1",
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let api = TestServer::start_in(
        data.path(),
        json!({ "roles": "api", "worker": { "max_attempts": 3 } }),
    )
    .await;
    let (status, video) = api.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();

    // a worker whose ffmpeg cannot be started: an operator problem, retried
    let broken = test_config(
        data.path(),
        json!({ "roles": "worker", "media": { "ffmpeg": "/nonexistent/ffmpeg" }, "worker": { "max_attempts": 3 } }),
    );
    let worker = vidsight::app::start(&broken, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let failed = api.wait_finished(&id, Duration::from_secs(60)).await;
    worker.stop().await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "media-tool-failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ffmpeg"),
        "{failed}"
    );
    let analysis_id = failed["latest_analysis_id"].as_str().unwrap();
    let (_, analysis) = api
        .get_json(&format!("/api/v1/analyses/{analysis_id}"))
        .await;
    assert_eq!(
        analysis["attempts"], 3,
        "retried up to max_attempts: {analysis}"
    );
    assert_eq!(analysis["status"], "failed");
    let (status, error) = api.get_json(&format!("/api/v1/videos/{id}/insights")).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("video-not-ready"))
    );

    // fixed, a re-run succeeds
    let good = test_config(data.path(), json!({ "roles": "worker" }));
    let worker = vidsight::app::start(&good, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let rerun = api
        .client
        .post(api.url(&format!("/api/v1/videos/{id}/analyses")))
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 202);
    let ready = api.wait_finished(&id, Duration::from_secs(60)).await;
    worker.stop().await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready["error"].is_null());
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_that_fails_analysis_is_failed_once_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "ok.mp4",
        "testsrc2=size=160x120:rate=25:duration=2",
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let api = TestServer::start_in(data.path(), json!({ "roles": "api" })).await;
    let (status, video) = api.upload_file(&clip).await;
    assert_eq!(status, 201);
    let id = video["id"].as_str().unwrap().to_owned();
    // the stored file goes bad between upload and analysis
    let original = format!("videos/{id}/original");
    api.blobs()
        .put_bytes(&original, bytes::Bytes::from_static(b"no longer a video"))
        .await
        .unwrap();

    let config = test_config(data.path(), json!({ "roles": "worker" }));
    let worker = vidsight::app::start(&config, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let failed = api.wait_finished(&id, Duration::from_secs(60)).await;
    worker.stop().await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "unsupported-media-type");
    let analysis_id = failed["latest_analysis_id"].as_str().unwrap();
    let (_, analysis) = api
        .get_json(&format!("/api/v1/analyses/{analysis_id}"))
        .await;
    assert_eq!(
        analysis["attempts"], 1,
        "bad media is not retried: {analysis}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_analyses_are_announced_on_the_event_bus() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "ok.mp4",
        "testsrc2=size=160x120:rate=25:duration=1",
        &[],
    );
    let data = tempfile::tempdir().unwrap();
    let api = TestServer::start_in(data.path(), json!({ "roles": "api" })).await;
    // a worker in this process, whose bus the test listens to
    let config = test_config(data.path(), json!({ "roles": "worker" }));
    let worker = vidsight::app::start(&config, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let mut events = worker.backends.events.subscribe("videos").await.unwrap();
    let (_, video) = api.upload_file(&clip).await;
    let id = video["id"].as_str().unwrap().to_owned();
    // the bus may be shared (Redis): other videos' events are skipped
    let announced = async {
        while let Some(event) = events.next().await {
            let event: Value = serde_json::from_slice(&event).unwrap();
            if event["video_id"] == id.as_str() {
                return true;
            }
        }
        false
    };
    let announced = tokio::time::timeout(Duration::from_secs(60), announced).await;
    assert_eq!(
        announced.ok(),
        Some(true),
        "the video's change was announced"
    );
    assert_eq!(
        api.wait_finished(&id, Duration::from_secs(30)).await["status"],
        "ready"
    );
    worker.stop().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cache_slows_nothing_down_to_wrong_answers() {
    // nothing listens on port 1: every cache call fails fast and counts as a miss
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "ok.mp4",
        "testsrc2=size=160x120:rate=25:duration=1",
        &[],
    );
    let server = TestServer::start(json!({ "cache_url": "redis://127.0.0.1:1/0" })).await;
    let (status, video) = server.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.wait_finished(&id, Duration::from_secs(60)).await["status"],
        "ready"
    );
    let (status, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_eq!(status, 200);
    assert_valid_insights(&insights);
    server.stop().await;
}

/// A re-encoded, shrunk copy of a video is found as its near-duplicate; a different video is
/// not; a video without a fingerprint yet answers `video-not-ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_duplicates_are_found_by_keyframe_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let original = reference_clip(dir.path());
    let copy = dir.path().join("copy.mp4");
    ffmpeg(&[
        "-i",
        original.to_str().unwrap(),
        "-vf",
        "scale=160:120",
        "-c:v",
        "libx264",
        "-crf",
        "34",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        copy.to_str().unwrap(),
    ]);
    let other = lavfi_clip(
        dir.path(),
        "other.mp4",
        "mandelbrot=size=320x240:rate=25",
        &["-t", "4"],
    );
    let server = TestServer::start(json!({})).await;
    let mut ids = Vec::new();
    for clip in [&original, &copy, &other] {
        let (status, video) = server.upload_file(clip).await;
        assert_eq!(status, 201, "{video}");
        ids.push(video["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let video = server.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(video["status"], "ready", "{video}");
    }
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{}/insights", ids[0]))
        .await;
    assert_valid_insights(&insights);
    let fingerprint = insights["fingerprint"].as_array().unwrap();
    assert_eq!(
        fingerprint.len(),
        3,
        "the two flat shots (black, yellow) are left out: {fingerprint:?}"
    );

    let (status, found) = server
        .get_json(&format!("/api/v1/videos/{}/duplicates", ids[0]))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["compared"], 2, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the copy: {found}");
    assert_eq!(items[0]["video"]["id"], ids[1].as_str());
    assert!(items[0]["score"].as_f64().unwrap() >= 0.8, "{found}");

    let (status, body) = server
        .get_json(&format!("/api/v1/videos/{}/duplicates?min_score=2", ids[0]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad-request");
    server.stop().await;
}

/// Text drawn on the picture is read (Tesseract), kept as one range over the shots it stays
/// on, and found by search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_screen_text_is_read_merged_and_searchable() {
    let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    if !std::path::Path::new(font).exists() {
        eprintln!("SKIPPED: {font} is missing (scripts/install-deps.sh --test installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("titles.mp4");
    // 0–2 s: a dark card with a headline; 2–4 s: the same headline over another colour (a
    // new shot, same text); 4–6 s: a second title
    let card = |colour: &str, text: &str| {
        format!("color=c={colour}:size=640x360:rate=25:d=2,drawtext=fontfile={font}:text='{text}':fontsize=44:fontcolor=white:x=40:y=150")
    };
    let graph = format!(
        "{}[a];{}[b];{}[c];[a][b][c]concat=n=3:v=1:a=0[v]",
        card("0x203040", "LIGHTHOUSE KEEPER"),
        card("0x602020", "LIGHTHOUSE KEEPER"),
        card("0x206020", "Northern coast 1962"),
    );
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=mono",
        "-filter_complex",
        &graph,
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        clip.to_str().unwrap(),
    ]);
    let server = TestServer::start(json!({})).await;
    let (status, video) = server.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    let done = server.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "ready", "{done}");
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_valid_insights(&insights);
    assert_eq!(
        insights["shots"].as_array().unwrap().len(),
        3,
        "{}",
        insights["shots"]
    );
    let ocr = insights["ocr"].as_array().unwrap();
    let headline = ocr
        .iter()
        .find(|entry| entry["text"] == "LIGHTHOUSE KEEPER")
        .unwrap_or_else(|| panic!("the headline is read: {ocr:?}"));
    assert_close(
        headline["start"].as_f64().unwrap(),
        0.0,
        0.05,
        "headline start",
    );
    assert_close(
        headline["end"].as_f64().unwrap(),
        4.0,
        0.05,
        "headline end (two shots)",
    );
    assert!(headline["confidence"].as_f64().unwrap() > 0.6, "{headline}");
    assert!(
        ocr.iter()
            .any(|entry| entry["text"].as_str().unwrap_or("").contains("coast")),
        "{ocr:?}"
    );
    let (_, found) = server.get_json("/api/v1/search?q=keeper").await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert!(
        items[0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hit| hit["kind"] == "ocr" && hit["start"].as_f64() == Some(0.0)),
        "{found}"
    );
    server.stop().await;
}

/// (width, height) from a JPEG's start-of-frame segment.
fn jpeg_size(jpeg: &[u8]) -> (u64, u64) {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let mut at = 2;
    while at + 9 < jpeg.len() {
        assert_eq!(jpeg[at], 0xFF, "a JPEG segment at {at}");
        let marker = jpeg[at + 1];
        let length = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if (0xC0..=0xC2).contains(&marker) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return (width as u64, height as u64);
        }
        at += 2 + length;
    }
    panic!("no start-of-frame segment");
}

/// The same pixels feed thumbnails, the storyboard and the colour-bar test: a clip of 2 s of
/// SMPTE bars and 3 s of moving test picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_storyboard_and_colour_bars() {
    let dir = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        dir.path(),
        "bars.mp4",
        "smptebars=size=320x240:rate=25:duration=2[bars];\
         testsrc2=size=320x240:rate=25:duration=3[content];\
         [bars][content]concat=n=2:v=1:a=0",
        &[],
    );
    let server = TestServer::start(json!({})).await;
    let (status, video) = server.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    let video = server.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(video["status"], "ready", "{video}");
    let (status, insights) = server
        .get_json(&format!("/api/v1/videos/{id}/insights"))
        .await;
    assert_eq!(status, 200, "{insights}");
    assert_valid_insights(&insights);

    // colour bars: one range, the first two seconds
    let bars = insights["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 1, "bars: {bars:?}");
    assert_close(bars[0]["start"].as_f64().unwrap(), 0.0, 1e-6, "bars start");
    assert_close(
        bars[0]["end"].as_f64().unwrap(),
        2.0,
        FRAME + 1e-6,
        "bars end",
    );

    // thumbnails: named in the insights, served by name and as ?size=small, 160 wide; the
    // default stays the large one
    let get = |path: String| {
        let request = server.client.get(server.url(&path));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|value| value.to_str().unwrap().to_owned());
            (status, content_type, response.bytes().await.unwrap())
        }
    };
    let shots = insights["shots"].as_array().unwrap();
    for shot in shots {
        let keyframe = shot["keyframe"].as_str().unwrap();
        let thumbnail = shot["thumbnail"]
            .as_str()
            .expect("each shot has a thumbnail");
        assert_eq!(thumbnail, keyframe.replace(".jpg", "-small.jpg"));
        let (status, content_type, small) = get(format!(
            "/api/v1/videos/{id}/keyframes/{keyframe}?size=small"
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(jpeg_size(&small), (160, 120));
        let (status, _, by_name) = get(format!("/api/v1/videos/{id}/keyframes/{thumbnail}")).await;
        assert_eq!(status, 200);
        assert_eq!(by_name, small);
        let (_, _, large) = get(format!("/api/v1/videos/{id}/keyframes/{keyframe}")).await;
        assert_eq!(jpeg_size(&large), (320, 240));
        let (_, _, explicit) = get(format!(
            "/api/v1/videos/{id}/keyframes/{keyframe}?size=large"
        ))
        .await;
        assert_eq!(explicit, large);
    }
    let keyframe = shots[0]["keyframe"].as_str().unwrap();
    let (status, error) = server
        .get_json(&format!(
            "/api/v1/videos/{id}/keyframes/{keyframe}?size=huge"
        ))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("bad-request"))
    );

    // the storyboard track: WEBVTT, cues in order, contiguous, from 0 to the end, each tile
    // inside its sheet
    let storyboard = &insights["storyboard"];
    assert_eq!(storyboard["interval"], 1.0);
    let (status, content_type, vtt) = get(format!("/api/v1/videos/{id}/storyboard.vtt")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("text/vtt; charset=utf-8"));
    let vtt = String::from_utf8(vtt.to_vec()).unwrap();
    let body = vtt.strip_prefix("WEBVTT\n\n").expect("a WebVTT header");
    let seconds = |clock: &str| -> f64 {
        let parts: Vec<f64> = clock.split(':').map(|part| part.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let mut cues = Vec::new();
    for block in body.trim_end().split("\n\n") {
        let (timing, payload) = block.split_once('\n').expect("timing and payload");
        let (start, end) = timing.split_once(" --> ").expect("a cue timing");
        cues.push((seconds(start), seconds(end), payload.to_owned()));
    }
    assert_eq!(cues.len(), 5, "{vtt}");
    assert_eq!(cues[0].0, 0.0);
    for pair in cues.windows(2) {
        assert!(pair[0].0 < pair[0].1, "{vtt}");
        assert_eq!(pair[0].1, pair[1].0, "contiguous: {vtt}");
    }
    assert_close(
        cues[4].1,
        5.0,
        FRAME + 1e-3,
        "the last cue ends with the video",
    );
    let mut sheets: Vec<(String, Vec<u8>)> = Vec::new();
    for (_, _, payload) in &cues {
        let (path, fragment) = payload.split_once("#xywh=").expect("a media fragment");
        let sheet = path
            .strip_prefix("storyboard/")
            .expect("relative to the track");
        let rectangle: Vec<u64> = fragment
            .split(',')
            .map(|value| value.parse().unwrap())
            .collect();
        assert_eq!(rectangle[2..], [160, 120], "{payload}");
        if !sheets.iter().any(|(name, _)| name == sheet) {
            let (status, content_type, jpeg) =
                get(format!("/api/v1/videos/{id}/storyboard/{sheet}")).await;
            assert_eq!(status, 200, "{sheet}");
            assert_eq!(content_type.as_deref(), Some("image/jpeg"));
            sheets.push((sheet.to_owned(), jpeg.to_vec()));
        }
        let jpeg = &sheets.iter().find(|(name, _)| name == sheet).unwrap().1;
        let (width, height) = jpeg_size(jpeg);
        assert!(
            rectangle[0] + rectangle[2] <= width && rectangle[1] + rectangle[3] <= height,
            "{payload} inside {width}x{height}"
        );
    }
    assert_eq!(sheets.len(), 1);

    // the sheets are the owner's: a name not in the insights, another account and no
    // credentials all get nothing
    let (status, error) = server
        .get_json(&format!(
            "/api/v1/videos/{id}/storyboard/..%2F..%2Foriginal"
        ))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not-found"))
    );
    let other = client_with_token(
        &sign_in_or_register(&server.base, "other@vidsight.test", TEST_PASSWORD).await,
    );
    for path in [
        format!("/api/v1/videos/{id}/storyboard/sheet-000.jpg"),
        format!("/api/v1/videos/{id}/storyboard.vtt"),
        format!("/api/v1/videos/{id}/keyframes/{keyframe}?size=small"),
    ] {
        let response = other.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let response = reqwest::Client::new()
            .get(server.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    server.stop().await;
}
