//! Resumable uploads (tus 1.0 at /api/v1/uploads), checked with an independent tus client
//! (tuspy, from PyPI): an upload stopped after two chunks and resumed by a new process, a
//! chunk cut off mid-way that keeps what arrived, offset conflicts, termination, expiry,
//! privacy. Runs on both backend sets.
mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

fn tuspy(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (make test installs tuspy)");
    assert!(
        output.status.success(),
        "tuspy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Starts an upload and sends only `chunks` chunks of `size` bytes; prints the upload URL.
const START: &str = r#"
import sys
from tusclient import client
endpoint, token, path, size, chunks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
tus = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
uploader = tus.uploader(path, chunk_size=size, metadata={"filename": "resumed clip.mp4", "filetype": "video/mp4"})
for _ in range(chunks):
    uploader.upload_chunk()
print(uploader.url)
"#;

/// Resumes an upload from wherever the server says it is, to the end.
const RESUME: &str = r#"
import sys
from tusclient import client
endpoint, token, path, url = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
tus = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
uploader = tus.uploader(path, url=url, chunk_size=1 << 20)
print(uploader.get_offset())
uploader.upload()
print(uploader.offset)
"#;

fn tus(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("tus-resumable", "1.0.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_interrupted_and_resumed_by_another_client_becomes_a_video() {
    let media = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        media.path(),
        "clip.mp4",
        "testsrc2=size=320x240:rate=25:duration=4",
        &[],
    );
    let bytes = std::fs::read(&clip).unwrap();
    let server = TestServer::start(json!({})).await;
    let endpoint = server.url("/api/v1/uploads");

    // discovery
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, &endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["tus-version"], "1.0.0");
    assert!(response.headers()["tus-extension"]
        .to_str()
        .unwrap()
        .contains("termination"));

    // two 64 KiB chunks, then the client "crashes"; a new client process resumes
    let url = tuspy(
        START,
        &[
            &endpoint,
            &server.token,
            clip.to_str().unwrap(),
            "65536",
            "2",
        ],
    );
    assert!(url.contains("/api/v1/uploads/"), "{url}");
    let head = tus(server.client.head(&url)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["upload-offset"], "131072");
    assert_eq!(
        head.headers()["upload-length"],
        bytes.len().to_string().as_str()
    );
    assert!(head.headers().get("x-video-id").is_none());
    let resumed = tuspy(
        RESUME,
        &[&endpoint, &server.token, clip.to_str().unwrap(), &url],
    );
    let lines: Vec<&str> = resumed.lines().collect();
    assert_eq!(
        lines,
        ["131072", &bytes.len().to_string()],
        "resumed at the server's offset"
    );

    // the finished upload is a video, like a multipart upload
    let head = tus(server.client.head(&url)).send().await.unwrap();
    let video_id = head.headers()["x-video-id"].to_str().unwrap().to_owned();
    let video = server
        .wait_finished(&video_id, Duration::from_secs(60))
        .await;
    assert_eq!(video["status"], "ready", "{video}");
    assert_eq!(video["filename"], "resumed clip.mp4");
    let expected_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(
        video["sha256"],
        expected_sha.as_str(),
        "every byte, once, in order"
    );
    let objects = server.blobs().list("uploads/").await.unwrap();
    assert!(objects.is_empty(), "the parts are gone: {objects:?}");
    // a finished upload takes no more bytes
    let response = tus(server.client.patch(&url))
        .header("upload-offset", bytes.len().to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    server.stop().await;
}

async fn create_upload(server: &TestServer, client: &reqwest::Client, length: usize) -> String {
    let response = tus(client.post(server.url("/api/v1/uploads")))
        .header("upload-length", length.to_string())
        .header("upload-metadata", "filename bm90ZXMubXA0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("upload-expires"));
    server.url(response.headers()["location"].to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_cut_short_are_kept_and_bad_requests_are_refused() {
    let server = TestServer::start(json!({ "roles": "api" })).await;
    let url = create_upload(&server, &server.client, 100_000).await;
    let path = url.trim_start_matches(&server.base).to_owned();

    // a PATCH announcing 50 000 bytes whose connection drops after 20 000
    let address = server.base.trim_start_matches("http://").to_owned();
    {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        write!(
            socket,
            "PATCH {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nTus-Resumable: 1.0.0\r\n\
             Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 50000\r\n\r\n",
            server.token
        )
        .unwrap();
        socket.write_all(&vec![7u8; 20_000]).unwrap();
        socket.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let offset = loop {
        let head = tus(server.client.head(&url)).send().await.unwrap();
        let offset: u64 = head.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if offset > 0 || std::time::Instant::now() > deadline {
            break offset;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(offset, 20_000, "what arrived before the drop is kept");

    // a chunk at the wrong offset, a wrong content type, no protocol version
    let response = tus(server.client.patch(&url))
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upload-offset-mismatch");
    let response = tus(server.client.patch(&url))
        .header("upload-offset", "20000")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = server.client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), 400, "Tus-Resumable is required");
    let response = tus(server.client.post(server.url("/api/v1/uploads")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "Upload-Length is required");

    // another account does not see it; termination removes it and its bytes
    let other = client_with_token(
        &sign_in_or_register(&server.base, "tus@vidsight.test", TEST_PASSWORD).await,
    );
    assert_eq!(tus(other.head(&url)).send().await.unwrap().status(), 404);
    assert_eq!(tus(other.delete(&url)).send().await.unwrap().status(), 404);
    assert!(!server.blobs().list("uploads/").await.unwrap().is_empty());
    assert_eq!(
        tus(server.client.delete(&url))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        tus(server.client.head(&url)).send().await.unwrap().status(),
        404
    );
    assert!(server.blobs().list("uploads/").await.unwrap().is_empty());

    // a complete upload that is not a video is refused with its code and removed
    let url = create_upload(&server, &server.client, 11).await;
    let response = tus(server.client.patch(&url))
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "{:?}", response.text().await);
    assert_eq!(
        tus(server.client.head(&url)).send().await.unwrap().status(),
        404
    );
    assert!(server.blobs().list("uploads/").await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_expire_with_their_bytes() {
    let server =
        TestServer::start(json!({ "roles": "api", "upload": { "resumable_expiry_seconds": 1 } }))
            .await;
    let url = create_upload(&server, &server.client, 1000).await;
    let response = tus(server.client.patch(&url))
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["upload-offset"], "100");
    assert_eq!(server.blobs().list("uploads/").await.unwrap().len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.blobs().list("uploads/").await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never removed the parts"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        tus(server.client.head(&url)).send().await.unwrap().status(),
        404
    );
    server.stop().await;
}
