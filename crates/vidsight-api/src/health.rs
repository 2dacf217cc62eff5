use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use vidsight_telemetry::names;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
    /// Per dependency: `ok` or what failed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", security(()), tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        checks: BTreeMap::new(),
    })
}

/// Readiness: the database, storage and queue all answer.
#[utoipa::path(get, path = "/readyz", security(()), tag = "operations", responses(
    (status = 200, body = Health, description = "Every dependency answers."),
    (status = 503, body = Health, description = "At least one dependency does not.")
))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut checks = BTreeMap::new();
    let describe = |result: vidsight_domain::Result<()>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            error.message
        }
    };
    checks.insert("database".into(), describe(state.store.ping().await));
    checks.insert("storage".into(), describe(state.blobs.ping().await));
    checks.insert(
        "queue".into(),
        describe(state.queue.stats().await.map(|_| ())),
    );
    let ready = checks.values().all(|value| value == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if ready { "ready" } else { "unavailable" }.into(),
        checks,
    };
    (status, Json(body))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", security(()), tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.queue.stats().await {
        Ok(stats) => {
            for (label, value) in [
                ("ready", stats.ready),
                ("running", stats.running),
                ("done", stats.done),
                ("dead", stats.dead),
            ] {
                metrics::gauge!(names::QUEUE_JOBS, "state" => label).set(value as f64);
            }
            metrics::gauge!(names::QUEUE_OLDEST_READY_AGE)
                .set(stats.oldest_ready_age_ms as f64 / 1000.0);
        }
        Err(error) => tracing::warn!(error = ?error, "queue stats unavailable for /metrics"),
    }
    match state
        .store
        .workers_alive(std::time::Duration::from_secs(30))
        .await
    {
        Ok(alive) => {
            metrics::gauge!(names::WORKERS_ALIVE).set(alive.workers as f64);
            metrics::gauge!(names::WORKERS_IN_FLIGHT).set(alive.in_flight as f64);
        }
        Err(error) => tracing::warn!(error = ?error, "worker counts unavailable for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
