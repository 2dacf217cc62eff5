//! Retries of provider calls: exponential backoff with full jitter on 408/429/500/502/503/504
//! and broken connections, honouring the server's own delay (Gemini's
//! `google.rpc.RetryInfo.retryDelay`, a `Retry-After` header) when it gives one — the
//! official SDKs ignore it and hammer a server that said when to come back.

use rand::Rng;
use std::time::Duration;

/// How a provider call is retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
    /// The longest server-requested delay we are willing to wait; past it the call fails at
    /// once with the server's delay in the error (the job is retried later instead).
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_server_delay: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): the server's delay
    /// when it gave one (plus a little jitter so many workers do not return at once), else
    /// `initial · 2^(attempt-1)`, capped, with full jitter.
    pub fn delay(&self, attempt: u32, server_delay: Option<Duration>) -> Duration {
        let mut rng = rand::thread_rng();
        if let Some(delay) = server_delay {
            let jitter = rng.gen_range(0.0..=0.1) * delay.as_secs_f64().max(0.1);
            return delay + Duration::from_secs_f64(jitter);
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling =
            (self.initial.as_secs_f64() * 2f64.powi(exponent as i32)).min(self.max.as_secs_f64());
        Duration::from_secs_f64(rng.gen_range(ceiling / 2.0..=ceiling))
    }
}

/// Whether an HTTP status is worth another try.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A protobuf duration string (`"26s"`, `"1.5s"`, `"0.250s"`) as a duration.
pub fn parse_proto_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The delay a Gemini error body asks for: `details[].retryDelay` of the
/// `google.rpc.RetryInfo` entry.
pub fn retry_info_delay(body: &serde_json::Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .filter(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|detail| detail["retryDelay"].as_str().and_then(parse_proto_duration))
}

/// A `Retry-After` header in seconds (the HTTP-date form is rare from these APIs and ignored).
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_delay_wins_over_the_backoff() {
        let policy = RetryPolicy::default();
        let delay = policy.delay(1, Some(Duration::from_secs(26)));
        assert!(delay >= Duration::from_secs(26) && delay <= Duration::from_millis(28_600));
        for attempt in 1..=8 {
            let delay = policy.delay(attempt, None);
            let ceiling = (2f64.powi(attempt as i32 - 1)).min(60.0);
            assert!(
                delay.as_secs_f64() <= ceiling + 1e-9,
                "{attempt}: {delay:?}"
            );
            assert!(
                delay.as_secs_f64() >= ceiling / 2.0 - 1e-9,
                "{attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn retry_info_is_read_from_gemini_error_details() {
        let body = serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "Quota exceeded. Please retry in 26.0s.",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}
        ]}});
        assert_eq!(retry_info_delay(&body), Some(Duration::from_secs(26)));
        assert_eq!(
            parse_proto_duration("1.5s"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_proto_duration("abc"), None);
        assert_eq!(retry_info_delay(&serde_json::json!({"error": {}})), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(status));
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(!retryable_status(status));
        }
    }
}
