//! The binary as operators run it: separate api and worker processes on one data
//! directory, a worker killed mid-job, a graceful SIGTERM, and the operator subcommands.
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vidsight");

fn spawn_worker(data_dir: &Path) -> Child {
    Command::new(BIN)
        .args(["serve", "--roles", "worker", "--data-dir"])
        .arg(data_dir)
        .env("VIDSIGHT_WORKER__LEASE_SECONDS", "2")
        .env("VIDSIGHT_WORKER__HEARTBEAT_SECONDS", "1")
        .env("VIDSIGHT_WORKER__POLL_INTERVAL_MS", "50")
        .env("VIDSIGHT_WORKER__SHUTDOWN_GRACE_SECONDS", "60")
        // one decoding thread keeps the job running long enough to interrupt
        .env("VIDSIGHT_MEDIA__THREADS", "1")
        .env("VIDSIGHT_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker starts")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    let result = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(result, 0, "signal delivered");
}

async fn wait_until_processing(server: &TestServer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, video) = server.get_json(&format!("/api/v1/videos/{id}")).await;
        if video["status"] == "processing" && video["progress"].as_u64().unwrap_or(0) >= 1 {
            return;
        }
        assert_ne!(
            video["status"], "ready",
            "the job finished before it could be interrupted"
        );
        assert!(
            Instant::now() < deadline,
            "the worker never started the job: {video}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An api-only server on `data` with a 40 s 720p clip uploaded; returns it and the video id.
async fn api_with_a_long_upload(data: &Path) -> (TestServer, String) {
    let media = tempfile::tempdir().unwrap();
    let clip = lavfi_clip(
        media.path(),
        "long.mp4",
        "testsrc2=size=1280x720:rate=30:duration=40",
        &[],
    );
    let api = TestServer::start_in(data, json!({ "roles": "api" })).await;
    let (status, video) = api.upload_file(&clip).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_str().unwrap().to_owned();
    (api, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing_and_the_job_completes_once() {
    let data = tempfile::tempdir().unwrap();
    let (api, id) = api_with_a_long_upload(data.path()).await;

    let mut first = spawn_worker(data.path());
    wait_until_processing(&api, &id).await;
    signal(&first, libc::SIGKILL);
    first.wait().unwrap();
    let (_, interrupted) = api.get_json(&format!("/api/v1/videos/{id}")).await;
    assert_eq!(interrupted["status"], "processing", "{interrupted}");

    // a new worker reclaims the expired lease and finishes the job
    let mut second = spawn_worker(data.path());
    let done = api.wait_finished(&id, Duration::from_secs(180)).await;
    signal(&second, libc::SIGTERM);
    second.wait().unwrap();
    assert_eq!(done["status"], "ready", "{done}");

    let analysis_id = done["latest_analysis_id"].as_str().unwrap();
    let (_, analysis) = api
        .get_json(&format!("/api/v1/analyses/{analysis_id}"))
        .await;
    assert_eq!(analysis["status"], "succeeded");
    assert_eq!(
        analysis["attempts"], 2,
        "one interrupted attempt, one that finished: {analysis}"
    );
    // exactly one result: one analysis row, one finished job, insights recorded once
    let store = vidsight_store::SqliteStore::connect(&format!(
        "sqlite://{}/vidsight.db",
        data.path().display()
    ))
    .await
    .unwrap();
    let analyses: i64 = sqlx_count(&store, "SELECT COUNT(*) FROM analyses").await;
    let done_jobs: i64 = sqlx_count(&store, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await;
    let other_jobs: i64 =
        sqlx_count(&store, "SELECT COUNT(*) FROM jobs WHERE state != 'done'").await;
    assert_eq!((analyses, done_jobs, other_jobs), (1, 1, 0));
    let (status, insights) = api.get_json(&format!("/api/v1/videos/{id}/insights")).await;
    assert_eq!(status, 200);
    assert_valid_insights(&insights);
    api.stop().await;
}

async fn sqlx_count(store: &vidsight_store::SqliteStore, query: &str) -> i64 {
    use sqlx_row::fetch_count;
    fetch_count(store, query).await
}

mod sqlx_row {
    pub async fn fetch_count(store: &vidsight_store::SqliteStore, query: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(query)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_job_finish() {
    let data = tempfile::tempdir().unwrap();
    let (api, id) = api_with_a_long_upload(data.path()).await;

    let mut worker = spawn_worker(data.path());
    wait_until_processing(&api, &id).await;
    signal(&worker, libc::SIGTERM);
    let exit = worker.wait().unwrap();
    assert!(
        exit.success(),
        "the worker exits cleanly after draining: {exit:?}"
    );
    // the API caches a video's metadata for up to a second (progress polling): a drained
    // job that ended just now may still read as processing for that long; a dropped one
    // would stay so (no other worker runs)
    let deadline = Instant::now() + Duration::from_secs(3);
    let video = loop {
        let (_, video) = api.get_json(&format!("/api/v1/videos/{id}")).await;
        if video["status"] != "processing" || Instant::now() > deadline {
            break video;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        video["status"], "ready",
        "the in-flight job was drained, not dropped: {video}"
    );
    let analysis_id = video["latest_analysis_id"].as_str().unwrap();
    let (_, analysis) = api
        .get_json(&format!("/api/v1/analyses/{analysis_id}"))
        .await;
    assert_eq!(analysis["attempts"], 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands() {
    let data = tempfile::tempdir().unwrap();
    // migrate
    let output = Command::new(BIN)
        .args(["migrate"])
        .env("VIDSIGHT_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(data.path().join("vidsight.db").exists());

    // config show: merged, with the environment applied and secrets redacted
    let output = Command::new(BIN)
        .args(["config", "show"])
        .env("VIDSIGHT_DATA_DIR", data.path())
        .env("VIDSIGHT_WORKER__CONCURRENCY", "7")
        .env("VIDSIGHT_DATABASE_URL", "sqlite://admin:hunter2@/tmp/x.db")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["worker"]["concurrency"], 7);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("hunter2"), "{text}");

    // invalid configuration stops with the key and the fix
    let output = Command::new(BIN)
        .args(["config", "show"])
        .env("VIDSIGHT_WORKER__CONCURRENCY", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("worker.concurrency") && error.contains("VIDSIGHT_WORKER__CONCURRENCY"),
        "{error}"
    );

    // serve with a role set, then healthcheck it
    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--roles",
            "api",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let health = Command::new(BIN)
        .args(["healthcheck", &format!("{url}/readyz")])
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stdout)
    );
    signal(&server, libc::SIGTERM);
    let exit = server.wait().unwrap();
    assert!(exit.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("worker: off"),
        "a disabled role says so: {stderr}"
    );
    let down = Command::new(BIN)
        .args(["healthcheck", &url, "--timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));

    // analyze: bad input gets its code and exit status 1
    let text = data.path().join("notes.txt");
    std::fs::write(&text, "not a video").unwrap();
    let output = Command::new(BIN)
        .args(["analyze"])
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported-media-type"));
}

fn run_with_stdin(args: &[&str], data: &Path, stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("VIDSIGHT_DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    // an administrator with a password from stdin
    let output = run_with_stdin(
        &["user", "create", "--admin", "Boss@Example.com"],
        data.path(),
        Some("a long boss passphrase"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("boss@example.com (admin)"), "{said}");
    assert!(!said.contains("one-time"), "{said}");
    // a member with a generated one-time password (empty stdin)
    let output = run_with_stdin(
        &["user", "create", "member@example.com"],
        data.path(),
        Some(""),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    let generated = said
        .lines()
        .find_map(|line| line.split("change it after signing in): ").nth(1))
        .unwrap_or_else(|| panic!("no one-time password printed: {said}"))
        .trim()
        .to_owned();
    assert!(generated.len() >= 20);
    // a duplicate is refused with its code
    let output = run_with_stdin(
        &["user", "create", "member@example.com"],
        data.path(),
        Some("whatever long"),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("email-taken"));
    // reset-password, and an API key
    let output = run_with_stdin(
        &["user", "reset-password", "member@example.com"],
        data.path(),
        Some("the member's new passphrase"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run_with_stdin(
        &[
            "apikey",
            "create",
            "--user",
            "boss@example.com",
            "--name",
            "ops",
            "--scopes",
            "read,admin",
        ],
        data.path(),
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(key.starts_with("vsk_"), "{key}");

    // the server on the same data directory knows all of it
    let server = TestServer::start_in(data.path(), json!({ "roles": "api" })).await;
    let client = reqwest::Client::new();
    let login = |email: &'static str, password: String| {
        let client = client.clone();
        let url = server.url("/api/v1/auth/login");
        async move {
            client
                .post(url)
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        login("boss@example.com", "a long boss passphrase".into()).await,
        200
    );
    assert_eq!(login("member@example.com", generated).await, 401, "reset");
    assert_eq!(
        login("member@example.com", "the member's new passphrase".into()).await,
        200
    );
    let users = client
        .get(server.url("/api/v1/admin/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200, "the CLI's admin key works");
    let users: Value = users.json().await.unwrap();
    let roles: Vec<(&str, &str)> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            (
                user["email"].as_str().unwrap(),
                user["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        &roles[..2],
        [
            ("boss@example.com", "admin"),
            ("member@example.com", "member")
        ]
    );
    server.stop().await;
}
