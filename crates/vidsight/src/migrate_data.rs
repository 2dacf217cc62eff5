//! `vidsight migrate-data --from A.toml --to B.toml`: copies an install (typically the
//! embedded one) to other backends (typically the production ones), then verifies it.
//!
//! Per video, objects are copied first and the rows imported after, so an interrupted run
//! leaves at worst objects without rows on the destination; running it again resumes (videos
//! already there are skipped, objects are overwritten with the same bytes).
use crate::app::{self, Backends};
use anyhow::{bail, Context};
use futures::StreamExt;
use sha2::Digest;
use vidsight_blob::keys;
use vidsight_config::Config;

/// What a migration did.
#[derive(Debug, Default)]
pub struct Report {
    pub users_copied: u64,
    pub videos_copied: u64,
    pub videos_already_there: u64,
    pub objects_copied: u64,
    pub bytes_copied: u64,
    pub videos_verified: u64,
}

async fn copy_object(
    from: &Backends,
    to: &Backends,
    key: &str,
    tmp_dir: &std::path::Path,
) -> anyhow::Result<u64> {
    if let Some(path) = from.blobs.local_path(key).filter(|path| path.exists()) {
        return Ok(to.blobs.put_file(key, &path).await?);
    }
    tokio::fs::create_dir_all(tmp_dir).await?;
    let file = tempfile::Builder::new()
        .prefix("migrate-")
        .tempfile_in(tmp_dir)?;
    from.blobs.download_to(key, file.path()).await?;
    Ok(to.blobs.put_file(key, file.path()).await?)
}

async fn sha256_of(backends: &Backends, key: &str) -> anyhow::Result<String> {
    let read = backends
        .blobs
        .read(key, None)
        .await?
        .context("object missing")?;
    let mut hasher = sha2::Sha256::new();
    let mut stream = read.stream;
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub async fn run(from: &Config, to: &Config) -> anyhow::Result<Report> {
    if from.database_url() == to.database_url() && from.storage_url() == to.storage_url() {
        bail!("--from and --to name the same database and storage");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    let source = app::open_backends(from, &stop)
        .await
        .context("opening the source")?;
    let destination = app::open_backends(to, &stop)
        .await
        .context("opening the destination")?;
    let mut report = Report::default();
    // accounts first: videos refer to their owners
    let mut after: Option<String> = None;
    loop {
        let page = source.accounts.list_users(after.as_deref(), 200).await?;
        for user in &page.items {
            if let Some(record) = source.accounts.get_user(user.id).await? {
                if destination.accounts.import_user(&record).await? {
                    report.users_copied += 1;
                }
            }
        }
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut cursor: Option<String> = None;
    let mut videos = Vec::new();
    loop {
        let page = source
            .store
            .list_videos(None, cursor.as_deref(), 200)
            .await?;
        videos.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for video in &videos {
        let prefix = keys::video_prefix(video.id);
        for key in source.blobs.list(&prefix).await? {
            report.bytes_copied += copy_object(&source, &destination, &key, &to.tmp_dir())
                .await
                .with_context(|| format!("copying {key}"))?;
            report.objects_copied += 1;
        }
        let analyses = source.store.list_analyses(video.id).await?;
        if destination
            .store
            .import_video(video, &analyses, to.worker.max_attempts)
            .await?
        {
            report.videos_copied += 1;
        } else {
            report.videos_already_there += 1;
        }
        tracing::info!(video = %video.id, "copied");
    }

    // verify: every video there, same objects and sizes, originals hash to the recorded SHA-256
    for video in &videos {
        let copied = destination
            .store
            .get_video(video.id)
            .await?
            .with_context(|| format!("video {} missing on the destination", video.id))?;
        if copied.sha256 != video.sha256 || copied.size_bytes != video.size_bytes {
            bail!("video {} differs on the destination", video.id);
        }
        let prefix = keys::video_prefix(video.id);
        let source_keys = source.blobs.list(&prefix).await?;
        let destination_keys = destination.blobs.list(&prefix).await?;
        if source_keys != destination_keys {
            bail!(
                "video {}: objects differ ({} here, {} there)",
                video.id,
                source_keys.len(),
                destination_keys.len()
            );
        }
        for key in &source_keys {
            if source.blobs.size(key).await? != destination.blobs.size(key).await? {
                bail!("{key}: sizes differ");
            }
        }
        let original = keys::original(video.id);
        let hash = sha256_of(&destination, &original).await?;
        if hash != video.sha256 {
            bail!(
                "{original}: SHA-256 {hash} on the destination, {} recorded",
                video.sha256
            );
        }
        let analyses_here = source.store.list_analyses(video.id).await?.len();
        let analyses_there = destination.store.list_analyses(video.id).await?.len();
        if analyses_here != analyses_there {
            bail!(
                "video {}: {analyses_here} analyses here, {analyses_there} there",
                video.id
            );
        }
        report.videos_verified += 1;
    }
    Ok(report)
}
