//! Test support: a real S3-compatible server for test suites. Not used by the product.
//!
//! [`s3_test_endpoint`] starts moto's server (`pip install 'moto[server]'`; `make test`
//! installs it) once per process on a free port — or uses `TEST_S3_ENDPOINT` — and a
//! shell watching the test process stops it when the tests end.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The endpoint (`http://127.0.0.1:PORT`) of the S3 server for tests.
pub fn s3_test_endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") {
            return endpoint;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // statics are never dropped: the shell stops the server once this process is gone
        let script = format!(
            "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & server=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $server",
            parent = std::process::id()
        );
        let watcher = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        // reaped by a thread so it never lingers as a zombie
        std::thread::spawn(move || {
            let mut watcher = watcher;
            let _ = watcher.wait();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the S3 test server (python3 -m moto.server) did not start; run `pip install 'moto[server]'`"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
}

/// Creates `bucket` on the test server (moto accepts an unsigned PUT).
pub fn create_test_bucket(bucket: &str) {
    let endpoint = s3_test_endpoint();
    let authority = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("S3 test server reachable");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "bucket {bucket} not created: {answer}"
    );
}

/// Settings for a store on the test server.
pub fn s3_test_settings() -> crate::S3Settings {
    crate::S3Settings {
        endpoint: Some(s3_test_endpoint().to_owned()),
        region: "us-east-1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        path_style: true,
    }
}
