//! Logs and metrics. Logs are structured (`tracing`), text for people or JSON for
//! collectors; metrics are Prometheus, every name a constant described once here.

use metrics_exporter_prometheus::PrometheusBuilder;
pub use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

pub mod names {
    pub const HTTP_REQUESTS: &str = "vidsight_http_requests_total";
    pub const HTTP_DURATION: &str = "vidsight_http_request_duration_seconds";
    pub const UPLOAD_BYTES: &str = "vidsight_upload_bytes_total";
    pub const QUEUE_JOBS: &str = "vidsight_queue_jobs";
    pub const QUEUE_OLDEST_READY_AGE: &str = "vidsight_queue_oldest_ready_age_seconds";
    pub const JOBS_FINISHED: &str = "vidsight_jobs_finished_total";
    pub const ANALYSIS_DURATION: &str = "vidsight_analysis_duration_seconds";
    pub const JOBS_IN_FLIGHT: &str = "vidsight_worker_jobs_in_flight";
    pub const WORKERS_ALIVE: &str = "vidsight_workers_alive";
    pub const WORKERS_IN_FLIGHT: &str = "vidsight_workers_jobs_in_flight";
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let seconds_buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                900.0, 3600.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets(&seconds_buckets)
                .expect("valid buckets")
                .install_recorder()
                .expect("the metrics recorder is installed once");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests by route, method and status."
    );
    describe_histogram!(
        names::HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route and method."
    );
    describe_counter!(
        names::UPLOAD_BYTES,
        Unit::Bytes,
        "Bytes received in accepted uploads."
    );
    describe_gauge!(
        names::QUEUE_JOBS,
        "Jobs in the queue by state (ready, running, done, dead)."
    );
    describe_gauge!(
        names::QUEUE_OLDEST_READY_AGE,
        Unit::Seconds,
        "Age of the oldest job waiting to run."
    );
    describe_counter!(
        names::JOBS_FINISHED,
        "Jobs finished by outcome (succeeded, retried, failed, lease_lost)."
    );
    describe_histogram!(
        names::ANALYSIS_DURATION,
        Unit::Seconds,
        "Wall-clock seconds of one analysis."
    );
    describe_gauge!(
        names::JOBS_IN_FLIGHT,
        "Jobs this worker process is running now."
    );
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sets up logging to stderr. `RUST_LOG` overrides `level`. Safe to call twice (the second
/// call does nothing), which tests rely on.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
