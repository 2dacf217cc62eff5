//! Object storage for videos and derived artifacts, behind the small [`BlobStore`] trait.
//! The implementation goes through the `object_store` crate, chosen by URL scheme:
//! `file:///abs/path` (local filesystem), `s3://bucket[/prefix]` (AWS S3 and compatible
//! servers: MinIO, Ceph, Garage, R2) and `memory://` (tests).
//! Every implementation must pass [`conformance`].

pub mod conformance;
pub mod testing;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use vidsight_domain::{AnalysisId, Error, ErrorCode, Result, VideoId};

/// A readable object, possibly a byte range of it.
pub struct BlobRead {
    /// Size of the whole object.
    pub total_size: u64,
    /// The bytes served (the whole object, or the requested range).
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes>>,
}

/// Object storage as vidsight uses it.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Writes a local file to `key`, streaming it in parts (never whole in memory).
    /// Returns the number of bytes stored.
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64>;

    /// Like [`put_file`](Self::put_file), but the file is ours to take: a store on the same
    /// filesystem moves it in (no copy); others copy it. The file is gone afterwards.
    async fn adopt_file(&self, key: &str, path: &Path) -> Result<u64> {
        let size = self.put_file(key, path).await?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(size)
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// The whole object; `None` when it does not exist.
    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>>;

    /// A stream of the object or of `range` (end exclusive) of it; `None` when missing.
    /// A range past the end is `range-not-satisfiable`.
    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<BlobRead>>;

    /// The object's size, `None` when missing.
    async fn size(&self, key: &str) -> Result<Option<u64>>;

    /// Every key under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deletes every object under `prefix`; returns how many went.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// A path ffmpeg can open directly, when the store is the local filesystem.
    fn local_path(&self, key: &str) -> Option<PathBuf>;

    /// Copies the object into a local file (for stores with no local path).
    async fn download_to(&self, key: &str, path: &Path) -> Result<()>;

    /// Cheap check for readiness probes.
    async fn ping(&self) -> Result<()>;
}

/// Keys of a video's objects. Everything of a video lives under [`video_prefix`].
pub mod keys {
    use super::*;

    pub fn video_prefix(video: VideoId) -> String {
        format!("videos/{video}/")
    }

    pub fn original(video: VideoId) -> String {
        format!("videos/{video}/original")
    }

    pub fn analysis_prefix(video: VideoId, analysis: AnalysisId) -> String {
        format!("videos/{video}/analyses/{analysis}/")
    }

    /// A keyframe (`shot-0001.jpg`) or its thumbnail (`shot-0001-small.jpg`).
    pub fn keyframe(video: VideoId, analysis: AnalysisId, name: &str) -> String {
        format!("videos/{video}/analyses/{analysis}/keyframes/{name}")
    }

    /// A storyboard sprite sheet (`sheet-000.jpg`).
    pub fn storyboard(video: VideoId, analysis: AnalysisId, name: &str) -> String {
        format!("videos/{video}/analyses/{analysis}/storyboard/{name}")
    }
}

/// Settings for `s3://` stores (the `[s3]` configuration section).
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// An S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// `None`: the standard `AWS_*` environment variables (or instance credentials).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted style.
    pub path_style: bool,
}

fn open_s3(url: &str, settings: &S3Settings) -> Result<Arc<dyn BlobStore>> {
    let invalid = |message: String| Error::new(ErrorCode::StorageUnavailable, message);
    let parsed =
        url::Url::parse(url).map_err(|error| invalid(format!("invalid storage URL: {error}")))?;
    let bucket = parsed
        .host_str()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| invalid("an s3:// URL names a bucket: s3://bucket[/prefix]".into()))?;
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&settings.region)
        .with_virtual_hosted_style_request(!settings.path_style);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
    }
    let store = builder
        .build()
        .map_err(|error| invalid(format!("cannot configure S3 storage: {error}")))?;
    let prefix = parsed.path().trim_matches('/');
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    };
    Ok(Arc::new(ObjectBlobStore::from_object_store(store)))
}

/// Opens the store named by `url`; `s3` applies to `s3://` URLs.
pub fn open_with(url: &str, s3: &S3Settings) -> Result<Arc<dyn BlobStore>> {
    if url.starts_with("s3://") {
        return open_s3(url, s3);
    }
    open(url)
}

/// Opens a `file://` or `memory://` store.
pub fn open(url: &str) -> Result<Arc<dyn BlobStore>> {
    let invalid = |message: String| Error::new(ErrorCode::StorageUnavailable, message);
    if url.starts_with("memory://") {
        return Ok(Arc::new(ObjectBlobStore::in_memory()));
    }
    if url.starts_with("file://") {
        let parsed = url::Url::parse(url)
            .map_err(|error| invalid(format!("invalid storage URL `{url}`: {error}")))?;
        let root = parsed
            .to_file_path()
            .map_err(|_| invalid(format!("storage URL `{url}` must name an absolute path, e.g. file:///var/lib/vidsight/objects")))?;
        return ObjectBlobStore::local(&root).map(|store| Arc::new(store) as Arc<dyn BlobStore>);
    }
    let scheme = url.split(':').next().unwrap_or_default();
    Err(invalid(format!(
        "storage scheme `{scheme}` is not supported (use file://, s3:// or memory://)"
    )))
}

/// [`BlobStore`] over any `object_store` backend.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
}

const PART_SIZE: usize = 8 * 1024 * 1024;

fn storage_error(error: object_store::Error) -> Error {
    Error::new(
        ErrorCode::StorageUnavailable,
        "object storage is unavailable",
    )
    .with_source(error)
}

fn object_path(key: &str) -> Result<ObjectPath> {
    ObjectPath::parse(key)
        .map_err(|error| Error::internal(format!("invalid object key `{key}`")).with_source(error))
}

impl ObjectBlobStore {
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            local_root: None,
        }
    }

    /// The local filesystem under `root` (created when missing).
    pub fn local(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|error| {
            Error::new(
                ErrorCode::StorageUnavailable,
                format!("cannot create storage directory {}", root.display()),
            )
            .with_source(error)
        })?;
        let root = root.canonicalize().map_err(|error| {
            Error::new(
                ErrorCode::StorageUnavailable,
                "cannot resolve the storage directory",
            )
            .with_source(error)
        })?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(storage_error)?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// Any other `object_store` backend (S3 arrives this way).
    pub fn from_object_store(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
        }
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64> {
        let location = object_path(key)?;
        let mut file = tokio::fs::File::open(path).await.map_err(|error| {
            Error::internal(format!("cannot open {} for upload", path.display())).with_source(error)
        })?;
        let upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(storage_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buffer = vec![0u8; 1024 * 1024];
        let mut total = 0u64;
        loop {
            let read = match file.read(&mut buffer).await {
                Ok(read) => read,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(
                        Error::internal("reading the file to store failed").with_source(error)
                    );
                }
            };
            if read == 0 {
                break;
            }
            if let Err(error) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(storage_error(error));
            }
            writer.write(&buffer[..read]);
            total += read as u64;
        }
        writer.finish().await.map_err(storage_error)?;
        Ok(total)
    }

    async fn adopt_file(&self, key: &str, path: &Path) -> Result<u64> {
        if let Some(target) = self.local_path(key) {
            let size = tokio::fs::metadata(path)
                .await
                .map_err(|error| {
                    Error::internal("cannot read the file to store").with_source(error)
                })?
                .len();
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|error| {
                    Error::new(
                        ErrorCode::StorageUnavailable,
                        "cannot create the object's directory",
                    )
                    .with_source(error)
                })?;
            }
            // a rename is atomic and free on one filesystem; across filesystems, copy
            if tokio::fs::rename(path, &target).await.is_ok() {
                return Ok(size);
            }
        }
        let size = self.put_file(key, path).await?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(size)
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&object_path(key)?, PutPayload::from(bytes))
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&object_path(key)?).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(storage_error)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage_error(error)),
        }
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<BlobRead>> {
        let location = object_path(key)?;
        let Some(total_size) = self.size(key).await? else {
            return Ok(None);
        };
        let range = match range {
            Some(range) => {
                if range.start >= total_size || range.start >= range.end {
                    return Err(Error::new(
                        ErrorCode::RangeNotSatisfiable,
                        format!("the range starts past the end of the {total_size}-byte object"),
                    ));
                }
                range.start..range.end.min(total_size)
            }
            None => 0..total_size,
        };
        if range.is_empty() {
            return Ok(Some(BlobRead {
                total_size,
                range,
                stream: futures::stream::empty().boxed(),
            }));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&location, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(storage_error(error)),
        };
        let stream = result.into_stream().map_err(storage_error).boxed();
        Ok(Some(BlobRead {
            total_size,
            range,
            stream,
        }))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&object_path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage_error(error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = object_path(prefix.trim_end_matches('/'))?;
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(storage_error)?;
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let keys = self.list(prefix).await?;
        let mut deleted = 0;
        for key in keys {
            match self.store.delete(&object_path(&key)?).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(storage_error(error)),
            }
        }
        if let Some(root) = &self.local_root {
            // the filesystem backend leaves empty directories behind
            let directory = root.join(prefix.trim_end_matches('/'));
            if directory.starts_with(root) && directory != *root {
                let _ = tokio::fs::remove_dir_all(&directory).await;
            }
        }
        Ok(deleted)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let location = object_path(key).ok()?;
        let path = location
            .parts()
            .fold(root.clone(), |path, part| path.join(part.as_ref()));
        Some(path)
    }

    async fn download_to(&self, key: &str, path: &Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let Some(read) = self.read(key, None).await? else {
            return Err(Error::not_found("object"));
        };
        let mut file = tokio::fs::File::create(path).await.map_err(|error| {
            Error::internal(format!("cannot create {}", path.display())).with_source(error)
        })?;
        let mut stream = read.stream;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|error| Error::internal("writing a download failed").with_source(error))?;
        }
        file.flush()
            .await
            .map_err(|error| Error::internal("writing a download failed").with_source(error))?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let probe = ObjectPath::from("_health");
        let mut listing = self.store.list(Some(&probe));
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(storage_error(error)),
        }
    }
}
