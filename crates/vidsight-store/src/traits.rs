use async_trait::async_trait;
use std::time::Duration;
use vidsight_domain::{
    Analysis, AnalysisId, ErrorCode, FailureInfo, Job, JobLease, JobPayload, MediaInfo, Result,
    UserId, Video, VideoId,
};
use vidsight_domain::{ApiKey, ApiKeyId, AuditEvent, Role, Scope, User};

/// A video about to be recorded, with its first analysis.
#[derive(Clone, Debug)]
pub struct NewVideo {
    pub id: VideoId,
    /// The uploading account (charged for storage and analysis minutes).
    pub owner_id: Option<UserId>,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub media: MediaInfo,
}

/// One page of a listing, newest first.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// How an analysis ended.
#[derive(Clone, Debug)]
pub enum AnalysisOutcome {
    Succeeded { insights: serde_json::Value },
    Failed(FailureInfo),
}

/// An analysis with its insights document (when it succeeded).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAnalysis {
    pub analysis: Analysis,
    pub insights: Option<serde_json::Value>,
}

/// The insights of a video's latest successful analysis.
#[derive(Clone, Debug)]
pub struct StoredInsights {
    pub analysis_id: AnalysisId,
    pub insights: serde_json::Value,
}

/// Videos and analyses.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Records the video, its first analysis and the job that runs it, atomically: either all
    /// three exist or none does.
    async fn create_video(&self, video: NewVideo, max_attempts: u32) -> Result<(Video, Analysis)>;

    async fn get_video(&self, id: VideoId) -> Result<Option<Video>>;

    /// Newest first; `after` is a cursor from a previous page. `owner` limits the listing to
    /// one account's videos; `None` lists every video (administrators, migrations).
    async fn list_videos(
        &self,
        owner: Option<UserId>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Video>>;

    /// Deletes the video, its analyses and jobs. Returns false when there was none.
    async fn delete_video(&self, id: VideoId) -> Result<bool>;

    /// Queues a new analysis of an existing video; `analysis-in-progress` when one is
    /// already queued or running. The video's duration is charged to its owner's monthly
    /// analysis minutes in the same transaction (as on upload). The options (provider,
    /// model, features) travel with the job.
    async fn create_analysis(
        &self,
        video_id: VideoId,
        max_attempts: u32,
        options: Option<vidsight_domain::AnalysisOptions>,
    ) -> Result<Analysis>;

    async fn get_analysis(&self, id: AnalysisId) -> Result<Option<Analysis>>;

    /// Charges provider tokens (and their cost, in millionths of a dollar) to the video's
    /// owner for this month. Videos without an owner charge no one.
    async fn charge_provider_usage(
        &self,
        video_id: VideoId,
        tokens: i64,
        cost_micros: i64,
    ) -> Result<()>;

    /// Marks an analysis running (an attempt begins).
    async fn start_analysis(&self, lease: &JobLease, analysis_id: AnalysisId) -> Result<()>;

    /// Records progress, 0–100.
    async fn set_progress(&self, analysis_id: AnalysisId, progress: u8) -> Result<()>;

    /// Puts an analysis back to `queued` after a transient failure, keeping the reason.
    async fn analysis_will_retry(
        &self,
        analysis_id: AnalysisId,
        reason: &FailureInfo,
    ) -> Result<()>;

    /// Records the outcome and ends the job (done or dead) in the same transaction, only if
    /// `lease` still holds it; otherwise `lease-lost` and nothing changes. This is what makes
    /// a job's result recorded exactly once.
    async fn finish_analysis(
        &self,
        lease: &JobLease,
        analysis_id: AnalysisId,
        outcome: AnalysisOutcome,
    ) -> Result<()>;

    /// Fails an analysis whose job died without a worker to finish it (leases expired too
    /// often).
    async fn fail_orphaned_analysis(
        &self,
        analysis_id: AnalysisId,
        reason: &FailureInfo,
    ) -> Result<()>;

    async fn latest_insights(&self, video_id: VideoId) -> Result<Option<StoredInsights>>;

    /// Every analysis of a video, oldest first, with its insights when it succeeded.
    async fn list_analyses(&self, video_id: VideoId) -> Result<Vec<StoredAnalysis>>;

    /// Copies a video and its analyses as they are (ids, times, states), for moving an
    /// install to other backends; an analysis still queued or running is queued again.
    /// Returns false, changing nothing, when the video is already there (so a migration
    /// can be re-run to resume).
    async fn import_video(
        &self,
        video: &Video,
        analyses: &[StoredAnalysis],
        max_attempts: u32,
    ) -> Result<bool>;

    /// Full-text search over titles and insights text, best matches first; `owner` limits it
    /// to one account's videos.
    async fn search(
        &self,
        owner: Option<UserId>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>>;

    /// Jobs that ran out of attempts, newest first (for administrators to retry).
    async fn dead_jobs(&self, limit: u32) -> Result<Vec<DeadJob>>;

    /// Records a new resumable upload.
    async fn create_upload(&self, upload: &ResumableUpload) -> Result<()>;
    async fn get_upload(&self, id: &str) -> Result<Option<ResumableUpload>>;
    /// Moves the upload's offset from `from` to `to`; false (changing nothing) when the offset
    /// was not `from` any more (a concurrent chunk won).
    async fn advance_upload(&self, id: &str, from: i64, to: i64) -> Result<bool>;
    /// Records the video the completed upload became.
    async fn finish_upload(&self, id: &str, video_id: VideoId) -> Result<()>;
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    /// Uploads whose expiry time has passed (abandoned, or finished long enough ago).
    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> Result<Vec<String>>;
    /// An account's uploads (for erasing the account).
    async fn uploads_of(&self, owner: UserId) -> Result<Vec<String>>;

    /// A worker process says it is alive, running `in_flight` jobs.
    async fn worker_seen(&self, worker_id: &str, in_flight: u32) -> Result<()>;

    /// Workers seen within `within`, and the jobs they reported running.
    async fn workers_alive(&self, within: Duration) -> Result<WorkersAlive>;
}

/// A job that ran out of attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadJob {
    pub job: Job,
    pub video_id: Option<VideoId>,
    /// When it died (Unix ms).
    pub updated_at_ms: i64,
}

/// A resumable (tus) upload in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumableUpload {
    pub id: String,
    pub owner_id: UserId,
    /// The whole file, bytes.
    pub length: i64,
    /// Bytes received so far.
    pub offset: i64,
    pub filename: String,
    /// `Upload-Metadata` as the client sent it (echoed on HEAD).
    pub metadata: String,
    pub video_id: Option<VideoId>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// One match of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub video_id: VideoId,
    /// `title`, or where in the insights it matched (`transcript`, `labels`, …).
    pub kind: String,
    /// The time range it covers, seconds (none for a title or a summary).
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// The matching text, matches in `[` `]`.
    pub snippet: String,
}

/// The worker pool as the database last heard of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkersAlive {
    pub workers: u64,
    pub in_flight: u64,
}

/// Counts that feed metrics and autoscaling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub ready: u64,
    pub running: u64,
    pub done: u64,
    pub dead: u64,
    /// Age of the oldest ready job whose time has come, milliseconds.
    pub oldest_ready_age_ms: u64,
}

/// Jobs whose leases expired, put back or given up.
#[derive(Clone, Debug, Default)]
pub struct Reclaimed {
    /// Put back to ready for another attempt.
    pub requeued: Vec<Job>,
    /// Out of attempts: now dead.
    pub dead: Vec<Job>,
}

/// A durable job queue with leases.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds a job; with a unique key already active, `analysis-in-progress` (conflict).
    async fn enqueue(&self, payload: JobPayload, max_attempts: u32) -> Result<Job>;

    /// Takes the oldest ready job whose time has come, leasing it to `worker_id`.
    async fn claim(&self, worker_id: &str, lease: Duration) -> Result<Option<JobLease>>;

    /// Extends the lease; `lease-lost` if another worker reclaimed the job meanwhile.
    async fn heartbeat(&self, lease: &JobLease, extend: Duration) -> Result<()>;

    /// Ends the job successfully.
    async fn complete(&self, lease: &JobLease) -> Result<()>;

    /// Puts the job back for another attempt after `delay`; dead when out of attempts.
    /// Returns the job's new state.
    async fn retry(&self, lease: &JobLease, error: &str, delay: Duration) -> Result<Job>;

    /// Gives up on the job (a permanent failure).
    async fn kill(&self, lease: &JobLease, error: &str) -> Result<()>;

    /// Requeues running jobs whose lease has expired (their worker died), or marks them dead
    /// when out of attempts.
    async fn reclaim_expired(&self) -> Result<Reclaimed>;

    async fn get_job(&self, id: vidsight_domain::JobId) -> Result<Option<Job>>;

    async fn stats(&self) -> Result<QueueStats>;

    /// Tells the transport that the job's outcome was recorded elsewhere (by
    /// [`Store::finish_analysis`], in the same transaction as the result), or that the lease
    /// was lost: a broker acknowledges its message then. Nothing to do for the database queue.
    async fn finished(&self, _lease: &JobLease) -> Result<()> {
        Ok(())
    }
}

/// What claiming one particular job (named by a broker message) found.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimById {
    /// Ours now.
    Claimed(JobLease),
    /// Not claimable before this time (Unix ms): its backoff has not passed, or another
    /// worker's lease has not expired.
    NotYet { retry_at_ms: i64 },
    /// Done or dead: a redelivered message for it is acknowledged, not run again.
    Finished,
    /// No such job (its video was deleted).
    Missing,
}

/// A job waiting to be handed to a broker. `version` is its last update time, so marking
/// it published cannot hide a newer state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: vidsight_domain::JobId,
    pub run_at_ms: i64,
    pub version: i64,
}

/// The database side of a broker-carried queue: the jobs table is the outbox (jobs are
/// recorded in the same transaction as the state change that creates them), and a relay
/// publishes what is not yet published.
#[async_trait]
pub trait Outbox: JobQueue {
    /// Claims the job if it is ready and due, or running under an expired lease with
    /// attempts left.
    async fn claim_job(
        &self,
        id: vidsight_domain::JobId,
        worker_id: &str,
        lease: Duration,
    ) -> Result<ClaimById>;

    /// Ready jobs not yet published, plus ready jobs published more than `stale_after` ago
    /// and long due (a message the broker lost), oldest first.
    async fn unpublished(&self, limit: u32, stale_after: Duration) -> Result<Vec<OutboxEntry>>;

    /// Records that these jobs were published (skipping any that changed since).
    async fn mark_published(&self, entries: &[OutboxEntry]) -> Result<()>;
}

/// The error for a lease that is no longer ours.
pub fn lease_lost() -> vidsight_domain::Error {
    vidsight_domain::Error::new(
        ErrorCode::LeaseLost,
        "the job was reclaimed by another worker or removed",
    )
}

/// Whether an error is [`lease_lost`].
pub fn is_lease_lost(error: &vidsight_domain::Error) -> bool {
    error.code == ErrorCode::LeaseLost
}

/// Exponential backoff: `base * 2^(attempt-1)`, capped at `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(max)
}

/// An account with what only the server may see (password hash, TOTP secret).
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    /// Access and refresh tokens carry the epoch they were issued in; bumping it (password
    /// change, disabling, "sign out everywhere") ends every session at once.
    pub session_epoch: i64,
    /// Base32 TOTP secret: pending until `mfa_enabled`.
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    /// Normalised by the caller.
    pub email: String,
    pub password_hash: String,
    pub role: Role,
}

/// Administrative changes to an account; `None` leaves a field as it is (for quotas,
/// `Some(None)` returns to the configured default).
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub quota_storage_bytes: Option<Option<i64>>,
    pub quota_analysis_minutes: Option<Option<i64>>,
}

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    pub scopes: Vec<Scope>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyRecord {
    pub key: ApiKey,
    pub key_hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct NewAuditEvent {
    pub event: String,
    pub user_id: Option<UserId>,
    pub actor_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
}

/// Filters of the audit log, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Events about, or by, this account.
    pub user_id: Option<UserId>,
    pub event: Option<String>,
    /// A cursor from a previous page.
    pub before: Option<String>,
    pub limit: u32,
}

/// A token-signing key pair (Ed25519).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    /// Raw public key, base64url (the JWK `x`).
    pub public_key: String,
    pub created_at_ms: i64,
}

/// What an account uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `YYYY-MM` (UTC) the analysis figure is for.
    pub period: String,
    pub storage_bytes: i64,
    pub videos: i64,
    pub analysis_ms: i64,
    /// Analysis-provider tokens charged in `period`, and their cost in millionths of a dollar.
    pub provider_tokens: i64,
    pub provider_cost_micros: i64,
}

/// Accounts, API keys, MFA recovery codes, the audit log, token-signing keys and usage.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Creates an account; `email-taken` when the email exists. With `first_is_admin`, the
    /// account becomes admin when it is the first one; with `only_if_first`, it is created
    /// only when there is no account yet (`registration-closed` otherwise). Concurrent
    /// creations are serialised, so exactly one account can be the first.
    async fn create_user(
        &self,
        user: NewUser,
        first_is_admin: bool,
        only_if_first: bool,
    ) -> Result<UserRecord>;
    async fn user_count(&self) -> Result<i64>;
    async fn get_user(&self, id: UserId) -> Result<Option<UserRecord>>;
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    /// Oldest first; `after` is a cursor from a previous page.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Page<User>>;
    /// `None` when there is no such account. Disabling ends the account's sessions.
    async fn update_user(&self, id: UserId, changes: UserChanges) -> Result<Option<User>>;
    /// Sets a new password hash and ends every session.
    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()>;
    /// Ends every session of the account (bumps its session epoch).
    async fn end_sessions(&self, id: UserId) -> Result<()>;
    /// Sets (or clears) the TOTP secret and whether it is enforced, replacing the recovery
    /// codes with `recovery_code_hashes`.
    async fn set_totp(
        &self,
        id: UserId,
        secret: Option<&str>,
        enabled: bool,
        recovery_code_hashes: &[String],
    ) -> Result<()>;
    /// Records that the TOTP time step was used; false when it (or a later one) already was,
    /// so a code works once.
    async fn use_totp_step(&self, id: UserId, step: i64) -> Result<bool>;
    /// Spends a recovery code; false when it is unknown or spent.
    async fn use_recovery_code(&self, id: UserId, code_hash: &str) -> Result<bool>;
    async fn recovery_codes_left(&self, id: UserId) -> Result<i64>;
    /// Erases the account and every row about it: videos (with analyses and jobs), API keys,
    /// recovery codes, usage and audit entries about it (entries of what it did to other
    /// accounts keep the event, without the actor). Returns the ids of the videos deleted
    /// (their stored objects are the caller's to delete), `None` when there was no account.
    async fn delete_user(&self, id: UserId) -> Result<Option<Vec<vidsight_domain::VideoId>>>;
    /// Deletes audit entries, not tied to an account, whose detail contains `needle` (e.g. the
    /// digest of an email that failed to sign in before its account existed).
    async fn purge_audit_detail(&self, needle: &str) -> Result<u64>;
    /// Copies an account as it is (migrations); false when it already exists.
    async fn import_user(&self, record: &UserRecord) -> Result<bool>;

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, user_id: UserId) -> Result<Vec<ApiKey>>;
    /// Revokes one of the account's keys; `None` when it has no such key.
    async fn revoke_api_key(&self, user_id: UserId, id: ApiKeyId) -> Result<Option<ApiKey>>;
    async fn touch_api_key(&self, id: ApiKeyId) -> Result<()>;

    async fn record_audit(&self, event: NewAuditEvent) -> Result<()>;
    async fn list_audit(&self, query: AuditQuery) -> Result<Page<AuditEvent>>;

    /// Newest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>>;
    async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<()>;
    /// Deletes keys created before the time, except the newest key.
    async fn delete_signing_keys_before(&self, created_before_ms: i64) -> Result<u64>;

    /// Stored bytes and videos now, and analysis time charged in `period` (`YYYY-MM`).
    async fn usage(&self, user_id: UserId, period: &str) -> Result<Usage>;
}
