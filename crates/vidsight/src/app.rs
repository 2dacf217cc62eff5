//! Builds the backends named by the configuration and runs the enabled roles under one
//! cancellation token.
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vidsight_blob::BlobStore;
use vidsight_cache::Cache;
use vidsight_config::{Config, Role};
use vidsight_media::{ChildLimits, MediaTools};
use vidsight_store::{JobQueue, Store};
use vidsight_worker::{Worker, WorkerSettings};

/// Every backend the roles share.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    pub events: Arc<dyn vidsight_cache::Events>,
    pub event_log: Arc<dyn vidsight_cache::EventLog>,
    pub accounts: Arc<dyn vidsight_store::Accounts>,
}

/// Opens the database (migrating it), storage and cache named by the configuration.
/// The background tasks some backends run (the outbox relay) stop with `shutdown`.
pub async fn open_backends(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Backends> {
    let database = open_database(config).await?;
    let blobs = vidsight_blob::open_with(&config.storage_url(), &s3_settings(config))
        .with_context(|| {
            format!(
                "opening storage {}",
                vidsight_config::redact_url(&config.storage_url())
            )
        })?;
    let cache = vidsight_cache::open_with_namespace(&config.cache_url, &config.cache_namespace)
        .context("opening the cache")?;
    let queue: Arc<dyn JobQueue> = if config.queue_url.starts_with("amqp") {
        let expiry = config.amqp.queue_expiry_seconds;
        let queue = Arc::new(vidsight_amqp::AmqpQueue::new(
            database.outbox,
            vidsight_amqp::AmqpSettings {
                url: config.queue_url.clone(),
                prefix: config.amqp.prefix.clone(),
                prefetch: config.worker.concurrency.min(u16::MAX as usize) as u16,
                claim_wait: Duration::from_millis(config.worker.poll_interval_ms.max(50)),
                republish_after: Duration::from_secs(config.amqp.republish_after_seconds.max(1)),
                queue_expiry: (expiry > 0).then(|| Duration::from_secs(expiry)),
                consume: config.roles.contains(vidsight_config::Role::Worker),
            },
        ));
        queue.spawn_relay(Duration::from_millis(500), shutdown.clone());
        queue
    } else {
        database.queue
    };
    let events =
        vidsight_cache::events::open(&config.cache_url).context("opening the event bus")?;
    let event_log = vidsight_cache::eventlog::open(&config.cache_url, &config.cache_namespace)
        .context("opening the event log")?;
    Ok(Backends {
        events,
        event_log,
        accounts: database.accounts,
        store: database.store,
        queue,
        blobs,
        cache,
    })
}

/// Opens (and migrates) the database named by the configuration.
pub async fn open_database(config: &Config) -> anyhow::Result<vidsight_store::Backends> {
    let database_url = config.database_url();
    vidsight_store::open(&database_url, &database_options(config), true)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                vidsight_config::redact_url(&database_url)
            )
        })
}

pub fn database_options(config: &Config) -> vidsight_store::PostgresOptions {
    let database = &config.database;
    vidsight_store::PostgresOptions {
        max_connections: database.max_connections,
        acquire_timeout: Duration::from_secs(database.acquire_timeout_seconds),
        replica_url: (!database.replica_url.is_empty()).then(|| database.replica_url.clone()),
        schema: None,
    }
}

pub fn s3_settings(config: &Config) -> vidsight_blob::S3Settings {
    let s3 = &config.s3;
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    vidsight_blob::S3Settings {
        endpoint: non_empty(&s3.endpoint),
        region: s3.region.clone(),
        access_key_id: non_empty(&s3.access_key_id),
        secret_access_key: non_empty(&s3.secret_access_key),
        path_style: s3.path_style,
    }
}

pub fn media_tools(config: &Config) -> MediaTools {
    let media = &config.media;
    MediaTools {
        ffmpeg: media.ffmpeg.clone(),
        ffprobe: media.ffprobe.clone(),
        probe_timeout: Duration::from_secs(media.probe_timeout_seconds),
        analysis_timeout: Duration::from_secs(media.analysis_timeout_seconds),
        limits: ChildLimits {
            memory_bytes: (media.memory_limit_mb > 0).then(|| media.memory_limit_mb * 1024 * 1024),
            cpu_seconds: (media.cpu_limit_seconds > 0).then_some(media.cpu_limit_seconds),
            nice: 0,
        },
        threads: media.threads,
        tesseract: media.tesseract.clone(),
    }
}

/// Removes temporary files (spooled uploads, analysis downloads) older than `age`: what a
/// crash left behind. Younger files may belong to another process on the same data dir.
pub async fn sweep_stale_temporary_files(dir: &std::path::Path, age: Duration) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    let mut removed = 0u32;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let Ok(metadata) = entry.metadata().await else {
            continue;
        };
        let stale = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if metadata.is_file() && stale && tokio::fs::remove_file(entry.path()).await.is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, dir = %dir.display(), "removed stale temporary files");
    }
}

/// Checks hourly whether the token-signing key is due for rotation (and prunes retired
/// keys), so a long-running install rotates without a restart.
fn spawn_key_rotation(auth: Arc<vidsight_auth::AuthService>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
            if let Err(error) = auth.keys().rotate_if_due().await {
                tracing::warn!(error = %error, "token-signing key rotation failed; retrying in an hour");
            }
        }
    });
}

/// Deletes expired resumable uploads (what abandoned clients left), checking every half
/// expiry period (at most every 10 minutes).
fn spawn_upload_sweeper(backends: Backends, expiry: Duration, shutdown: CancellationToken) {
    let period = (expiry / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            match vidsight_api::tus::sweep_expired(&*backends.store, &*backends.blobs).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "expired resumable uploads deleted"),
                Err(error) => tracing::warn!(error = %error, "sweeping expired uploads failed"),
            }
        }
    });
}

/// A started server: its address (when the API role runs) and its tasks.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    pub backends: Backends,
    pub shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until every role has stopped (after `shutdown` is cancelled).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Cancels and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Starts the roles the configuration enables. The API binds `config.addr` (port 0 picks a
/// free port, reported in [`Running::api_addr`]).
pub async fn start(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let backends = open_backends(config, &shutdown).await?;
    sweep_stale_temporary_files(&config.tmp_dir(), Duration::from_secs(24 * 3600)).await;
    let tools = media_tools(config);
    let providers = crate::providers::engine(
        config,
        backends.blobs.clone(),
        backends.cache.clone(),
        tools.clone(),
    )?;
    let token_budget: Arc<dyn vidsight_providers::engine::TokenBudget> =
        Arc::new(crate::providers::AccountsBudget {
            accounts: backends.accounts.clone(),
            tokens_per_month: config.providers.tokens_per_month,
        });
    let mut tasks = Vec::new();
    let mut api_addr = None;

    if config.roles.contains(Role::Api) {
        let auth = Arc::new(
            vidsight_auth::AuthService::new(
                backends.accounts.clone(),
                backends.cache.clone(),
                vidsight_auth::AuthSettings::from_config(config),
            )
            .await
            .context("starting the auth service")?,
        );
        spawn_key_rotation(auth.clone(), shutdown.clone());
        spawn_upload_sweeper(
            backends.clone(),
            Duration::from_secs(config.upload.resumable_expiry_seconds.max(1)),
            shutdown.clone(),
        );
        let state = vidsight_api::AppState {
            auth,
            event_log: backends.event_log.clone(),
            store: backends.store.clone(),
            queue: backends.queue.clone(),
            blobs: backends.blobs.clone(),
            cache: backends.cache.clone(),
            tools: tools.clone(),
            providers: providers.clone(),
            token_budget: token_budget.clone(),
            metrics: vidsight_telemetry::metrics_handle(),
            settings: Arc::new(vidsight_api::ApiSettings {
                max_upload_bytes: config.upload.max_bytes,
                tmp_dir: config.tmp_dir(),
                max_attempts: config.worker.max_attempts,
                cache_ttl: Duration::from_secs(10),
                resumable_expiry: Duration::from_secs(
                    config.upload.resumable_expiry_seconds.max(1),
                ),
                gateway_secret: (!config.auth.gateway_secret.is_empty())
                    .then(|| config.auth.gateway_secret.clone()),
                tls: config.http.tls,
                web_dir: (!config.http.web_dir.is_empty())
                    .then(|| config.http.web_dir.clone().into()),
                cors_origins: config.http.cors_origins.clone(),
                rate_limit: config.rate_limit.clone(),
            }),
        };
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| {
                format!(
                    "binding {} (is another process using it? set --addr or VIDSIGHT_ADDR)",
                    config.addr
                )
            })?;
        let addr = listener.local_addr()?;
        api_addr = Some(addr);
        tracing::info!(%addr, "api: on");
        let router = vidsight_api::router(state);
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
            if let Err(error) = served {
                tracing::error!(error = %error, "api server failed");
            }
            tracing::info!("api: stopped");
        }));
    } else {
        tracing::info!("api: off");
    }

    if config.roles.contains(Role::Worker) {
        let worker = Arc::new(Worker {
            id: Worker::default_id(),
            store: backends.store.clone(),
            queue: backends.queue.clone(),
            blobs: backends.blobs.clone(),
            cache: backends.cache.clone(),
            events: backends.events.clone(),
            event_log: backends.event_log.clone(),
            tools,
            analyzer: config.analysis.clone(),
            settings: WorkerSettings::from_config(&config.worker),
            tmp_dir: config.tmp_dir(),
            in_flight: Default::default(),
            providers,
            token_budget: Some(token_budget),
        });
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(worker.run(stop)));
    } else {
        tracing::info!("worker: off");
    }

    Ok(Running {
        api_addr,
        backends,
        shutdown,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[tokio::test]
    async fn only_stale_temporary_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("upload-old");
        let fresh = dir.path().join("upload-fresh");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        sweep_stale_temporary_files(dir.path(), Duration::from_secs(24 * 3600)).await;
        assert!(!old.exists());
        assert!(fresh.exists());
        sweep_stale_temporary_files(&dir.path().join("missing"), Duration::ZERO).await;
    }
}
