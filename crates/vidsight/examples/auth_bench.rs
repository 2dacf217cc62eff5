//! What authentication costs per request, beside the same server's cheapest route: requests
//! per second to `/healthz` (public: rate limiting only) against `GET /api/v1/users/me` with a
//! JWT access token and with an API key, each 16 at a time. Run by `make bench`:
//!
//!   cargo run --release --example auth_bench -- [REQUESTS]
//!
//! An embedded server on a temporary data directory, in this process.
use figment::providers::{Format, Serialized, Toml};
use serde_json::{json, Value};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

async fn rate(client: &reqwest::Client, url: &str, bearer: Option<&str>, requests: usize) -> f64 {
    let started = Instant::now();
    let per_task = requests / 16;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            let bearer = bearer.map(str::to_owned);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let mut request = client.get(&url);
                    if let Some(token) = &bearer {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.expect("request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (per_task * 16) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let settings = json!({
        "addr": "127.0.0.1:0",
        "roles": "api",
        "data_dir": dir.path(),
        "log": { "level": "error" },
        // the buckets would (rightly) stop a benchmark
        "rate_limit": { "ip_per_second": 1e9, "ip_burst": 1000000000u64, "account_per_second": 1e9, "account_burst": 1000000000u64 },
    });
    let config = vidsight_config::Config::from_figment(
        figment::Figment::from(Toml::string(vidsight_config::REFERENCE_TOML))
            .merge(Serialized::defaults(settings)),
    )?;
    let running = vidsight::app::start(&config, CancellationToken::new()).await?;
    let base = format!("http://{}", running.api_addr.expect("api"));
    let client = reqwest::Client::new();
    let credentials =
        json!({ "email": "bench@example.com", "password": "a long benchmark passphrase" });
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await?;
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().expect("token").to_owned();
    let key: Value = client
        .post(format!("{base}/api/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "bench", "scopes": ["read"] }))
        .send()
        .await?
        .json()
        .await?;
    let key = key["secret"].as_str().expect("key").to_owned();

    // warm up, then measure
    rate(&client, &format!("{base}/healthz"), None, 1600).await;
    let public = rate(&client, &format!("{base}/healthz"), None, requests).await;
    let jwt = rate(
        &client,
        &format!("{base}/api/v1/users/me"),
        Some(&token),
        requests,
    )
    .await;
    let api_key = rate(
        &client,
        &format!("{base}/api/v1/users/me"),
        Some(&key),
        requests,
    )
    .await;
    println!("| request ({requests}, 16 at a time) | requests/s | vs /healthz |");
    println!("|---|---|---|");
    println!("| GET /healthz (no credential) | {public:.0} | 1.00 |");
    println!("| GET /api/v1/users/me, JWT (EdDSA verify + session check + account read) | {jwt:.0} | {:.2} |", jwt / public);
    println!("| GET /api/v1/users/me, API key (SHA-256 + key lookup + account read) | {api_key:.0} | {:.2} |", api_key / public);
    running.stop().await;
    Ok(())
}
