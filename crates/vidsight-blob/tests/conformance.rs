//! The storage conformance suite against every backend this build has.
use std::sync::Arc;
use vidsight_blob::BlobStore;

mod memory {
    use super::*;
    async fn make() -> Arc<dyn BlobStore> {
        vidsight_blob::open("memory://").unwrap()
    }
    vidsight_blob::blob_conformance_tests!(make());
}

mod filesystem {
    use super::*;
    async fn make() -> Arc<dyn BlobStore> {
        let dir = tempfile::tempdir().unwrap().keep();
        vidsight_blob::open(&format!("file://{}", dir.display())).unwrap()
    }
    vidsight_blob::blob_conformance_tests!(make());
}
