//! The storage conformance suite: every [`BlobStore`] must pass it. Run it with
//! [`blob_conformance_tests!`](crate::blob_conformance_tests).
use crate::BlobStore;
use bytes::Bytes;
use futures::TryStreamExt;
use std::sync::Arc;
use vidsight_domain::ErrorCode;

async fn collect(store: &dyn BlobStore, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let read = store
        .read(key, range)
        .await
        .unwrap()
        .expect("object exists");
    let chunks: Vec<Bytes> = read.stream.try_collect().await.unwrap();
    chunks.concat()
}

pub async fn put_get_and_ranges(store: Arc<dyn BlobStore>) {
    store.ping().await.unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    store
        .put_bytes("a/b/one", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(store.size("a/b/one").await.unwrap(), Some(10_000));
    assert_eq!(
        store.get_bytes("a/b/one").await.unwrap().unwrap().as_ref(),
        &data[..]
    );
    assert_eq!(collect(&*store, "a/b/one", None).await, data);
    assert_eq!(
        collect(&*store, "a/b/one", Some(100..200)).await,
        &data[100..200]
    );
    // a range running past the end is clipped, as HTTP does
    let read = store
        .read("a/b/one", Some(9_990..20_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.range, 9_990..10_000);
    assert_eq!(read.total_size, 10_000);
    let error = store
        .read("a/b/one", Some(10_000..10_001))
        .await
        .err()
        .expect("past the end");
    assert_eq!(error.code, ErrorCode::RangeNotSatisfiable);
    assert!(store.get_bytes("a/b/missing").await.unwrap().is_none());
    assert!(store.read("a/b/missing", None).await.unwrap().is_none());
    assert_eq!(store.size("a/b/missing").await.unwrap(), None);
}

pub async fn put_file_streams_large_files(store: Arc<dyn BlobStore>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    // larger than one multipart part
    let data: Vec<u8> = (0..(20 * 1024 * 1024u32))
        .map(|index| (index % 251) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    assert_eq!(
        store.put_file("videos/x/original", &path).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(
        store.size("videos/x/original").await.unwrap(),
        Some(data.len() as u64)
    );
    let copy = dir.path().join("copy.bin");
    store.download_to("videos/x/original", &copy).await.unwrap();
    assert!(std::fs::read(&copy).unwrap() == data, "round trip differs");
    if let Some(local) = store.local_path("videos/x/original") {
        assert!(std::fs::read(local).unwrap() == data);
    }
    // adopting takes the file: stored whole, source gone
    let taken = dir.path().join("taken.bin");
    std::fs::write(&taken, &data[..1000]).unwrap();
    assert_eq!(
        store.adopt_file("videos/y/original", &taken).await.unwrap(),
        1000
    );
    assert!(!taken.exists());
    assert_eq!(
        store
            .get_bytes("videos/y/original")
            .await
            .unwrap()
            .unwrap()
            .as_ref(),
        &data[..1000]
    );
}

pub async fn list_and_delete_by_prefix(store: Arc<dyn BlobStore>) {
    for key in [
        "videos/1/original",
        "videos/1/analyses/a/keyframes/shot-0001.jpg",
        "videos/2/original",
    ] {
        store
            .put_bytes(key, Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    assert_eq!(
        store.list("videos/1/").await.unwrap(),
        vec![
            "videos/1/analyses/a/keyframes/shot-0001.jpg".to_string(),
            "videos/1/original".to_string()
        ]
    );
    assert_eq!(store.delete_prefix("videos/1/").await.unwrap(), 2);
    assert!(store.list("videos/1/").await.unwrap().is_empty());
    assert_eq!(
        store.list("videos/").await.unwrap(),
        vec!["videos/2/original".to_string()]
    );
    assert_eq!(store.delete_prefix("videos/nothing/").await.unwrap(), 0);
}

/// Generates one test per check; `$make` is an async expression returning a fresh, empty
/// `Arc<dyn BlobStore>`.
#[macro_export]
macro_rules! blob_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn blob_put_get_and_ranges() {
            $crate::conformance::put_get_and_ranges($make.await).await;
        }
        #[tokio::test]
        async fn blob_put_file_streams_large_files() {
            $crate::conformance::put_file_streams_large_files($make.await).await;
        }
        #[tokio::test]
        async fn blob_list_and_delete_by_prefix() {
            $crate::conformance::list_and_delete_by_prefix($make.await).await;
        }
    };
}
