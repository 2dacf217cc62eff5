//! The production topology on one machine (`make test-cluster`, part of `make test`):
//! nginx in front of 2 API processes, 2 worker processes, on PostgreSQL, RabbitMQ, Redis and
//! an S3 server. 20 uploads go through nginx concurrently; one worker is SIGKILLed in the
//! middle of a job; RabbitMQ is restarted once. Every upload must reach `ready` exactly
//! once, nothing may be orphaned, and the API must keep answering throughout.
//!
//! It stops and starts the machine's RabbitMQ, so it runs alone: `#[ignore]`d here and run
//! by `make test-cluster` after the rest of the suite.
mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vidsight");

/// Children are killed when the test ends, however it ends.
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Shared by nginx and the API processes (auth.gateway_secret).
const GATEWAY_SECRET: &str = "cluster-test-gateway-secret";

fn log(message: &str) {
    eprintln!("cluster: {message}");
}

fn spawn_vidsight(
    name: &str,
    roles: &str,
    port: Option<u16>,
    dir: &Path,
    env: &[(String, String)],
) -> Child {
    let data_dir = dir.join(name);
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--roles", roles, "--data-dir"])
        .arg(&data_dir);
    if let Some(port) = port {
        command.args(["--addr", &format!("127.0.0.1:{port}")]);
    }
    command
        .envs(env.iter().cloned())
        .env("HOSTNAME", name)
        .env("VIDSIGHT_WORKER__CONCURRENCY", "2")
        .env("VIDSIGHT_WORKER__LEASE_SECONDS", "3")
        .env("VIDSIGHT_WORKER__HEARTBEAT_SECONDS", "1")
        .env("VIDSIGHT_WORKER__POLL_INTERVAL_MS", "200")
        .env("VIDSIGHT_MEDIA__THREADS", "1")
        .env("VIDSIGHT_LOG__LEVEL", "warn,vidsight_amqp=info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {name}: {error}"))
}

/// The built web app (`make web`), served by nginx as in production; a stand-in page with
/// one hashed asset when it has not been built.
fn web_root(dir: &Path) -> PathBuf {
    let built = repo_root().join("web/dist");
    if built.join("index.html").exists() {
        return built;
    }
    let web = dir.join("web");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>vidsight</title><script type=\"module\" src=\"/assets/index-0a1b2c3d.js\"></script>",
    )
    .unwrap();
    std::fs::write(web.join("assets/index-0a1b2c3d.js"), "export {};").unwrap();
    web
}

fn render_nginx(dir: &Path, listen: u16, upstreams: &[u16]) -> PathBuf {
    let template =
        std::fs::read_to_string(repo_root().join("deploy/nginx/vidsight.conf.template")).unwrap();
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    let web = web_root(dir);
    let servers: Vec<String> = upstreams
        .iter()
        .map(|port| format!("server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;"))
        .collect();
    let config = template
        .replace("__USER__", "root")
        .replace("__PREFIX__", prefix.to_str().unwrap())
        .replace("__LISTEN__", &format!("127.0.0.1:{listen}"))
        .replace("__UPSTREAMS__", &servers.join("\n        "))
        .replace("__WEB_ROOT__", web.to_str().unwrap())
        .replace("__MAX_BODY__", "1g")
        .replace("__GATEWAY_SECRET__", GATEWAY_SECRET);
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    path
}

async fn wait_healthy(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the monitor saw: status codes, and any answer that was slow or an error.
#[derive(Default)]
struct Observations {
    statuses: BTreeMap<u16, u32>,
    problems: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops and starts RabbitMQ: run alone with `make test-cluster`"]
async fn cluster_survives_a_worker_kill_and_a_broker_restart() {
    assert!(
        Command::new("nginx").arg("-v").output().is_ok(),
        "nginx is installed (make test installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    eprintln!("cluster: files in {}", root.display());
    create_production_backends(root).await;
    let mut env = backend_environment(root);
    env.push((
        "VIDSIGHT_AUTH__GATEWAY_SECRET".to_owned(),
        GATEWAY_SECRET.to_owned(),
    ));
    let database_url = env
        .iter()
        .find(|(key, _)| key == "VIDSIGHT_DATABASE_URL")
        .unwrap()
        .1
        .clone();
    let database = sqlx::PgPool::connect(&database_url).await.unwrap();

    // clips: four distinct 8 s sources, uploaded five times each
    let media = root.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let sources = ["testsrc2", "smptebars", "rgbtestsrc", "testsrc"];
    let clips: Vec<Vec<u8>> = sources
        .iter()
        .map(|source| {
            let clip = lavfi_clip(
                &media,
                &format!("{source}.mp4"),
                &format!("{source}=size=640x360:rate=25:duration=8"),
                &[],
            );
            std::fs::read(clip).unwrap()
        })
        .collect();

    // the topology
    let api_ports = [free_port(), free_port()];
    let gateway_port = free_port();
    let mut processes = Processes(Vec::new());
    for (index, port) in api_ports.iter().enumerate() {
        let name = format!("api{}", index + 1);
        let child = spawn_vidsight(&name, "api", Some(*port), root, &env);
        processes.0.push((name, child));
    }
    for index in 1..=2 {
        let name = format!("worker{index}");
        let child = spawn_vidsight(&name, "worker", None, root, &env);
        processes.0.push((name, child));
    }
    let nginx_config = render_nginx(root, gateway_port, &api_ports);
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(root.join("nginx"))
        .arg("-c")
        .arg(&nginx_config)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    processes.0.push(("nginx".into(), nginx));
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for port in api_ports {
        wait_healthy(&client, &format!("http://127.0.0.1:{port}/healthz")).await;
    }
    wait_healthy(&client, &format!("{gateway}/healthz")).await;
    log(&format!(
        "nginx on {gateway_port} → api on {api_ports:?}; 2 workers"
    ));

    // authentication at the gateway: the first account signs up through it; requests
    // without a credential, or with a forged identity header, are refused there
    let token = sign_in_or_register(&gateway, ADMIN_EMAIL, TEST_PASSWORD).await;
    for request in [
        client.get(format!("{gateway}/api/v1/videos")),
        client
            .get(format!("{gateway}/api/v1/videos"))
            .header("x-user-id", uuid::Uuid::now_v7().to_string())
            .header("x-user-role", "admin")
            .header("x-gateway-secret", GATEWAY_SECRET),
        client
            .post(format!("{gateway}/api/v1/videos"))
            .bearer_auth("forged.token.here"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let member = sign_in_or_register(&gateway, "member@vidsight.test", TEST_PASSWORD).await;
    let response = client
        .get(format!("{gateway}/api/v1/admin/users"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a member on an admin route, refused by the gateway"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let response = client
        .get(format!("{gateway}/api/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["role"], "admin", "{me}");
    log("the gateway authenticates: 401 without a credential, 403 for a member on admin routes");

    // the web app from nginx: pages revalidate under a strict CSP, any app route falls back
    // to index.html, hashed assets are cached for a year
    let page = client
        .get(format!("{gateway}/videos/some-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["cache-control"], "no-cache");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let asset = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("index.html loads a script")
        .to_owned();
    assert!(asset.starts_with("/assets/"), "{asset}");
    let script = client
        .get(format!("{gateway}{asset}"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200, "{asset}");
    let cache: Vec<_> = script.headers().get_all("cache-control").iter().collect();
    assert_eq!(
        cache,
        ["public, max-age=31536000, immutable"],
        "one Cache-Control"
    );
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    log(&format!(
        "nginx serves the web app: SPA fallback, {asset} immutable"
    ));
    let client = {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .unwrap()
    };

    // a monitor reads through the gateway all along
    let stop = Arc::new(AtomicBool::new(false));
    let observations = Arc::new(Mutex::new(Observations::default()));
    let monitor = {
        let stop = stop.clone();
        let observations = observations.clone();
        let url = format!("{gateway}/api/v1/videos?limit=5");
        let token = token.clone();
        tokio::spawn(async move {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .default_headers(headers)
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = client.get(&url).send().await;
                {
                    let mut seen = observations.lock().unwrap();
                    match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            *seen.statuses.entry(status).or_default() += 1;
                            let retry_after = response.headers().contains_key("retry-after");
                            if status >= 500 && !(status == 503 && retry_after) {
                                seen.problems.push(format!("{status} without Retry-After"));
                            }
                            if status == 429 {
                                seen.problems.push("rate limited at 10 requests/s".into());
                            }
                        }
                        Err(error) => seen
                            .problems
                            .push(format!("no answer after {:?}: {error}", started.elapsed())),
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let upload = |index: usize| {
        let nginx_log = root.join("nginx");
        let client = client.clone();
        let url = format!("{gateway}/api/v1/videos");
        let bytes = clips[index % clips.len()].clone();
        async move {
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name(format!("clip-{index:02}.mp4"))
                .mime_str("video/mp4")
                .unwrap();
            let response = client
                .post(url)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status != 201 {
                let log = std::fs::read_to_string(nginx_log.join("error.log")).unwrap_or_default();
                panic!("upload {index}: {status} {body}\nnginx error.log:\n{log}");
            }
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let mut ids: Vec<String> = futures::future::join_all((0..16).map(upload)).await;
    log(&format!("{} uploads accepted through nginx", ids.len()));

    // SIGKILL worker1 in the middle of a job
    let worker1_pid = processes
        .0
        .iter()
        .find(|(name, _)| name == "worker1")
        .unwrap()
        .1
        .id();
    let worker1_id = format!("worker1-{worker1_pid}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_job: String = loop {
        let running: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'running' AND worker_id = $1 LIMIT 1",
        )
        .bind(&worker1_id)
        .fetch_optional(&database)
        .await
        .unwrap();
        if let Some(job) = running {
            break job;
        }
        assert!(Instant::now() < deadline, "worker1 never ran a job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // SAFETY: signalling our own child
    unsafe { libc::kill(worker1_pid as i32, libc::SIGKILL) };
    log(&format!(
        "SIGKILL worker1 (pid {worker1_pid}) in the middle of job {killed_job}"
    ));
    let replacement = spawn_vidsight("worker3", "worker", None, root, &env);
    processes.0.push(("worker3".into(), replacement));
    log("started worker3 in its place");

    // restart RabbitMQ once, uploading while it is down
    log("restarting RabbitMQ (stop_app)");
    let stopped = Command::new("rabbitmqctl")
        .arg("stop_app")
        .output()
        .unwrap();
    assert!(
        stopped.status.success(),
        "rabbitmqctl stop_app: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    ids.extend(futures::future::join_all((16..20).map(upload)).await);
    log("4 uploads accepted while RabbitMQ was down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Command::new("rabbitmqctl")
        .arg("start_app")
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "rabbitmqctl start_app: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    log("RabbitMQ is back (start_app)");

    // every upload reaches ready
    for id in &ids {
        let video = wait_finished(&client, &gateway, id, Duration::from_secs(300)).await;
        assert_eq!(video["status"], "ready", "{video}");
    }
    log("all 20 videos are ready");
    stop.store(true, Ordering::Relaxed);
    monitor.await.unwrap();

    // exactly once: one analysis per video, succeeded; one job per video, done
    let uploaded: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(uploaded.len(), 20);
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT video_id, status, attempts FROM analyses")
            .fetch_all(&database)
            .await
            .unwrap();
    assert_eq!(rows.len(), 20, "one analysis per upload");
    assert!(
        rows.iter().all(|(_, status, _)| status == "succeeded"),
        "{rows:?}"
    );
    let analysed: BTreeSet<String> = rows.iter().map(|(video, _, _)| video.clone()).collect();
    assert_eq!(analysed, uploaded);
    let jobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(&database)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![("done".to_owned(), 20)],
        "every job done once, none lost or dead"
    );
    let killed_attempts: i64 = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1")
        .bind(&killed_job)
        .fetch_one(&database)
        .await
        .unwrap();
    assert!(
        killed_attempts >= 2,
        "the killed job ran again ({killed_attempts} attempts)"
    );

    // no orphan: every stored object belongs to an uploaded video, and each has its file
    let config = test_config(root, serde_json::json!({}));
    let blobs =
        vidsight_blob::open_with(&config.storage_url(), &vidsight::app::s3_settings(&config))
            .unwrap();
    let keys = blobs.list("videos/").await.unwrap();
    let owners: BTreeSet<String> = keys
        .iter()
        .map(|key| key.split('/').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        owners, uploaded,
        "objects belong to exactly the uploaded videos"
    );
    for id in &uploaded {
        assert!(
            keys.contains(&format!("videos/{id}/original")),
            "{id} has its file"
        );
        assert!(
            keys.iter()
                .any(|key| key.starts_with(&format!("videos/{id}/analyses/"))
                    && key.ends_with(".jpg"))
        );
    }

    // the API kept answering
    let seen = observations.lock().unwrap();
    log(&format!("monitor saw {:?}", seen.statuses));
    assert!(
        seen.problems.is_empty(),
        "the API did not keep answering: {:?}",
        seen.problems
    );
    assert!(seen.statuses.get(&200).copied().unwrap_or(0) > 10);
}
