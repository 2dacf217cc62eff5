//! Helpers shared by the integration tests: a real server on port 0 with a temporary data
//! directory, media generated with ffmpeg, polling with deadlines (no fixed sleeps).
#![allow(dead_code)]

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vidsight::app::{self, Running};
use vidsight_config::Config;

pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    pub config: Config,
    /// Sends the test administrator's access token with every request.
    pub client: reqwest::Client,
    /// The test administrator's access token.
    pub token: String,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

/// Whether this run tests the production backends (`TEST_BACKENDS=production`:
/// PostgreSQL, RabbitMQ, S3, Redis) instead of the embedded ones.
pub fn production() -> bool {
    std::env::var("TEST_BACKENDS").is_ok_and(|value| value == "production")
}

pub const BACKENDS_FILE: &str = ".test-backends.json";

/// The production backends recorded in `data_dir` as `VIDSIGHT_*` environment variables, for
/// processes started from the binary.
pub fn backend_environment(data_dir: &Path) -> Vec<(String, String)> {
    let backends: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join(BACKENDS_FILE)).unwrap())
            .unwrap();
    let mut variables = Vec::new();
    for (key, value) in backends.as_object().unwrap() {
        match value {
            Value::Object(section) => {
                for (inner, value) in section {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    variables.push((
                        format!("VIDSIGHT_{}__{}", key.to_uppercase(), inner.to_uppercase()),
                        text,
                    ));
                }
            }
            Value::String(text) => {
                variables.push((format!("VIDSIGHT_{}", key.to_uppercase()), text.clone()))
            }
            other => variables.push((
                format!("VIDSIGHT_{}", key.to_uppercase()),
                other.to_string(),
            )),
        }
    }
    variables
}

/// The account every [`TestServer`] signs in as (the first account: an administrator).
pub const ADMIN_EMAIL: &str = "admin@vidsight.test";
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// An HTTP client that sends `Authorization: Bearer <token>`.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Registers the account (or, when it exists, signs in) and returns an access token.
pub async fn sign_in_or_register(base: &str, email: &str, password: &str) -> String {
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("register");
    assert!(
        registered.status() == 201 || registered.status() == 409,
        "register: {}",
        registered.status()
    );
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "login");
    let body: Value = login.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Test configuration: defaults, a data directory, fast polling, the production backends
/// when [`production`] (as created by [`TestServer::start_in`]), plus `extra`.
pub fn test_config(data_dir: &Path, extra: Value) -> Config {
    let base = json!({
        "addr": "127.0.0.1:0",
        "data_dir": data_dir,
        "worker": { "poll_interval_ms": 50, "retry_base_seconds": 0.2, "retry_max_seconds": 1.0 },
        "log": { "level": "warn" },
        // tests sign in far more often than people do; the rate-limit tests set their own
        "rate_limit": { "auth_burst": 10000, "auth_per_minute": 600000.0 },
    });
    let backends: Value = std::fs::read_to_string(data_dir.join(BACKENDS_FILE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(json!({}));
    let figment = Figment::from(Toml::string(vidsight_config::REFERENCE_TOML))
        .merge(Serialized::defaults(base))
        .merge(Serialized::defaults(backends))
        .merge(Serialized::defaults(extra));
    Config::from_figment(figment).expect("test configuration is valid")
}

fn postgres_base() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a database and a bucket for one test's data directory and records them there.
pub async fn create_production_backends(data_dir: &Path) {
    let path = data_dir.join(BACKENDS_FILE);
    if path.exists() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tag = format!("{now}_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&postgres_base())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {} ({error}); .ci/run starts it",
                postgres_base()
            )
        });
    // databases of earlier runs, older than an hour, go
    let old: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'vs_%'")
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for name in old {
        let created: u64 = name
            .split('_')
            .nth(1)
            .and_then(|part| part.parse().ok())
            .unwrap_or(u64::MAX);
        if created.saturating_add(3600) < now {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
    }
    let database = format!("vs_{tag}");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = postgres_base();
    let server = &base[..base.rfind('/').unwrap()];
    let bucket = format!("vs-{}", tag.replace('_', "-"));
    vidsight_blob::testing::create_test_bucket(&bucket);
    let settings = vidsight_blob::testing::s3_test_settings();
    let backends = json!({
        "database_url": format!("{server}/{database}"),
        "storage_url": format!("s3://{bucket}/objects"),
        "cache_url": std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
        "cache_namespace": format!("vidsight-test:{tag}:"),
        "queue_url": std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        "amqp": { "prefix": format!("vidsight-test-{tag}"), "queue_expiry_seconds": 300, "republish_after_seconds": 15 },
        "s3": {
            "endpoint": settings.endpoint,
            "region": settings.region,
            "access_key_id": settings.access_key_id,
            "secret_access_key": settings.secret_access_key,
            "path_style": true,
        },
    });
    std::fs::write(path, backends.to_string()).unwrap();
}

impl TestServer {
    /// Starts every role on a fresh data directory.
    pub async fn start(extra: Value) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Self::start_in(dir.path(), extra).await;
        server._dir = Some(dir);
        server
    }

    /// Starts on an existing data directory (the caller keeps it).
    pub async fn start_in(data_dir: &Path, extra: Value) -> TestServer {
        vidsight_telemetry::init_logging(vidsight_telemetry::LogFormat::Text, "warn");
        if production() {
            create_production_backends(data_dir).await;
        }
        let config = test_config(data_dir, extra);
        let running = app::start(&config, CancellationToken::new())
            .await
            .expect("server starts");
        let addr = running.api_addr.expect("api role on");
        let base = format!("http://{addr}");
        let token = sign_in_or_register(&base, ADMIN_EMAIL, TEST_PASSWORD).await;
        TestServer {
            client: client_with_token(&token),
            token,
            base,
            data_dir: data_dir.to_owned(),
            config,
            running: Some(running),
            _dir: None,
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// The object store this server uses (local files or S3).
    pub fn blobs(&self) -> std::sync::Arc<dyn vidsight_blob::BlobStore> {
        vidsight_blob::open_with(
            &self.config.storage_url(),
            &vidsight::app::s3_settings(&self.config),
        )
        .unwrap()
    }

    /// Every stored object's key.
    pub async fn stored_objects(&self) -> Vec<String> {
        self.blobs().list("videos/").await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn upload(&self, bytes: Vec<u8>, filename: &str, content_type: &str) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(content_type)
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .client
            .post(self.url("/api/v1/videos"))
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn upload_file(&self, path: &Path) -> (u16, Value) {
        let bytes = std::fs::read(path).expect("read media");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.upload(bytes, &name, "video/mp4").await
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls the video until it is `ready` or `failed`, or the deadline passes.
    pub async fn wait_finished(&self, id: &str, timeout: Duration) -> Value {
        wait_finished(&self.client, &self.base, id, timeout).await
    }
}

pub async fn wait_finished(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let video: Value = client
            .get(format!("{base}/api/v1/videos/{id}"))
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("video json");
        let status = video["status"].as_str().unwrap_or("").to_owned();
        if status == "ready" || status == "failed" {
            return video;
        }
        assert!(
            Instant::now() < deadline,
            "video {id} still {status} after {timeout:?}: {video}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `../shared/media` beside the repository, when present.
pub fn shared_media() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/media");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; the real-clip checks are skipped",
            dir.display()
        );
        None
    }
}

pub fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (make test installs it)");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A clip from one lavfi source (e.g. `testsrc2=size=320x240:rate=25:duration=3`),
/// H.264 unless `extra` says otherwise.
pub fn lavfi_clip(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["-f", "lavfi", "-i", source];
    if !source.starts_with("sine") {
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
    }
    args.extend(extra);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

/// Timeline of [`reference_clip`], 25 fps, 320x240:
/// 0–2 s testsrc2 (440 Hz) | 2–4 s smptebars (660 Hz) | 4–5 s black (440 Hz) |
/// 5–7 s rgbtestsrc (silent) | 7–9 s yellow (880 Hz).
/// Hard cuts at 2, 4, 5 and 7 s; black 4–5 s; silence 5–7 s.
pub const REFERENCE_CUTS: [f64; 4] = [2.0, 4.0, 5.0, 7.0];

pub fn reference_clip(dir: &Path) -> PathBuf {
    let path = dir.join("reference.mp4");
    let video =
        |source: &str, seconds: u32| format!("{source}=size=320x240:rate=25:duration={seconds}");
    let tone =
        |hz: u32, seconds: u32| format!("sine=frequency={hz}:sample_rate=48000:duration={seconds}");
    let inputs = [
        video("testsrc2", 2),
        tone(440, 2),
        video("smptebars", 2),
        tone(660, 2),
        "color=c=black:size=320x240:rate=25:duration=1".to_owned(),
        tone(440, 1),
        video("rgbtestsrc", 2),
        "anullsrc=r=48000:cl=mono:d=2".to_owned(),
        "color=c=yellow:size=320x240:rate=25:duration=2".to_owned(),
        tone(880, 2),
    ];
    let mut args: Vec<String> = Vec::new();
    for input in &inputs {
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), input.clone()]);
    }
    let mut graph = String::new();
    for pair in 0..5 {
        graph.push_str(&format!(
            "[{}:v]setsar=1,format=yuv420p[v{pair}];[{}:a]aformat=channel_layouts=mono[a{pair}];",
            pair * 2,
            pair * 2 + 1
        ));
    }
    for pair in 0..5 {
        graph.push_str(&format!("[v{pair}][a{pair}]"));
    }
    graph.push_str("concat=n=5:v=1:a=1[v][a]");
    args.extend([
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "[v]".into(),
        "-map".into(),
        "[a]".into(),
    ]);
    args.extend(
        [
            "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-c:a", "aac", "-b:a", "96k",
        ]
        .iter()
        .map(|text| text.to_string()),
    );
    args.push(path.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
    path
}

/// Validates an insights document against the checked-in JSON Schema.
pub fn assert_valid_insights(document: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schemas/insights-v1.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "insights do not match the schema: {errors:#?}\n{document}"
    );
}

/// Regular files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

pub fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}
