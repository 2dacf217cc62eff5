//! The storage conformance suite against a real S3-compatible server (moto's, see
//! `vidsight_blob::testing`), one bucket per test, under a key prefix.
use std::sync::Arc;
use vidsight_blob::testing::{create_test_bucket, s3_test_settings};
use vidsight_blob::BlobStore;

async fn fresh() -> Arc<dyn BlobStore> {
    let bucket = format!("vidsight-test-{}", uuid::Uuid::new_v4().simple());
    create_test_bucket(&bucket);
    vidsight_blob::open_with(&format!("s3://{bucket}/some/prefix"), &s3_test_settings()).unwrap()
}

vidsight_blob::blob_conformance_tests!(fresh());

#[tokio::test]
async fn a_missing_bucket_fails_the_readiness_ping() {
    let store = vidsight_blob::open_with("s3://no-such-bucket-here", &s3_test_settings()).unwrap();
    let error = store.ping().await.expect_err("no bucket, not ready");
    assert_eq!(error.code, vidsight_domain::ErrorCode::StorageUnavailable);
}
