//! `vidsight migrate-data`: an embedded install (SQLite, local files) copied to the
//! production backends (PostgreSQL, RabbitMQ, S3), verified, resumable, and serving the
//! same videos afterwards.
mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_vidsight");

fn migrate(from: &std::path::Path, to: &std::path::Path) -> String {
    let output = Command::new(BIN)
        .args(["migrate-data", "--from"])
        .arg(from)
        .arg("--to")
        .arg(to)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "migrate-data failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_install_moves_to_production_backends() {
    let media = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        media.path(),
        "clip.mp4",
        "testsrc2=size=320x240:rate=25:duration=3",
        &[],
    );
    let clip_bytes = std::fs::read(&clip).unwrap();

    // the embedded install: one analysed video, one still waiting for a worker
    let embedded = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(embedded.path(), json!({})).await;
    let (_, ready) = server.upload_file(&clip).await;
    let ready_id = ready["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .wait_finished(&ready_id, Duration::from_secs(60))
            .await["status"],
        "ready"
    );
    let (_, insights) = server
        .get_json(&format!("/api/v1/videos/{ready_id}/insights"))
        .await;
    server.stop().await;
    let api_only = TestServer::start_in(embedded.path(), json!({ "roles": "api" })).await;
    let (_, waiting) = api_only
        .upload(clip_bytes.clone(), "later.mp4", "video/mp4")
        .await;
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    api_only.stop().await;

    // the production side
    let production = tempfile::tempdir().unwrap();
    create_production_backends(production.path()).await;
    let mut to: Value = serde_json::from_str(
        &std::fs::read_to_string(production.path().join(BACKENDS_FILE)).unwrap(),
    )
    .unwrap();
    let to_table = to.as_object_mut().unwrap();
    to_table.insert("data_dir".into(), json!(production.path()));
    let from_file = media.path().join("embedded.toml");
    let to_file = media.path().join("production.toml");
    std::fs::write(
        &from_file,
        format!("data_dir = {:?}\n", embedded.path().display().to_string()),
    )
    .unwrap();
    let mut ordered = serde_json::Map::new();
    for (key, value) in to_table.iter().filter(|(_, value)| !value.is_object()) {
        ordered.insert(key.clone(), value.clone());
    }
    for (key, value) in to_table.iter().filter(|(_, value)| value.is_object()) {
        ordered.insert(key.clone(), value.clone());
    }
    std::fs::write(&to_file, toml::to_string(&Value::Object(ordered)).unwrap()).unwrap();

    let first = migrate(&from_file, &to_file);
    assert!(
        first.contains("copied 1 accounts, 2 videos (0 already there)")
            && first.contains("verified 2 videos"),
        "{first}"
    );
    let again = migrate(&from_file, &to_file);
    assert!(
        again.contains("copied 0 accounts, 0 videos (2 already there)")
            && again.contains("verified 2 videos"),
        "{again}"
    );

    // the production install serves what the embedded one had, and finishes the waiting one
    // the accounts came along: the administrator signs in with the same password, and owns
    // the same videos
    let moved = TestServer::start_in(production.path(), json!({})).await;
    let (_, mine) = moved.get_json("/api/v1/videos").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 2, "{mine}");
    let (status, moved_insights) = moved
        .get_json(&format!("/api/v1/videos/{ready_id}/insights"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(moved_insights, insights);
    let content = moved
        .client
        .get(moved.url(&format!("/api/v1/videos/{ready_id}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(content.bytes().await.unwrap().as_ref(), &clip_bytes[..]);
    let name = insights["shots"][0]["keyframe"].as_str().unwrap();
    let keyframe = moved
        .client
        .get(moved.url(&format!("/api/v1/videos/{ready_id}/keyframes/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(keyframe.status(), 200);
    assert_eq!(
        moved
            .wait_finished(&waiting_id, Duration::from_secs(60))
            .await["status"],
        "ready"
    );
    moved.stop().await;
}
