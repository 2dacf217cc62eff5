//! The worker role: claims analysis jobs from the queue, runs the local analyzer, stores
//! keyframes and insights, and reports progress.
//!
//! - A claimed job is leased; a heartbeat renews the lease while the job runs, and a job
//!   whose lease is lost (another worker reclaimed it) is cancelled at once.
//! - A maintenance loop reclaims jobs whose worker died (their lease expired) and fails
//!   the analyses of jobs that ran out of attempts that way.
//! - Transient failures retry with exponential backoff; bad media fails at once with its
//!   code; after `max_attempts` the analysis fails.
//! - On shutdown no new job is claimed; in-flight jobs get `shutdown_grace` to finish, and
//!   any still running are handed back to the queue for another worker.

use metrics::{counter, gauge, histogram};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vidsight_analysis::AnalyzerSettings;
use vidsight_blob::{keys, BlobStore};
use vidsight_cache::eventlog::announce;
use vidsight_cache::Cache;
use vidsight_domain::events::kinds;
use vidsight_domain::{
    AnalysisId, Error, ErrorCode, FailureInfo, JobLease, JobPayload, Result, VideoId,
};
use vidsight_domain::{UserEvent, VideoStatus};
use vidsight_media::MediaTools;
use vidsight_store::{backoff, is_lease_lost, AnalysisOutcome, JobQueue, Store};
use vidsight_telemetry::names;

/// Worker tuning (from the `[worker]` configuration section).
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll_interval: Duration,
    pub shutdown_grace: Duration,
}

impl WorkerSettings {
    pub fn from_config(config: &vidsight_config::WorkerConfig) -> Self {
        Self {
            concurrency: config.concurrency,
            lease: Duration::from_secs(config.lease_seconds),
            heartbeat: Duration::from_secs(config.heartbeat_seconds),
            max_attempts: config.max_attempts,
            retry_base: Duration::from_secs_f64(config.retry_base_seconds),
            retry_max: Duration::from_secs_f64(config.retry_max_seconds),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_seconds),
        }
    }
}

/// Everything a worker needs.
pub struct Worker {
    pub id: String,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn Cache>,
    /// Where "a video changed" is announced to every process (`videos` topic).
    pub events: Arc<dyn vidsight_cache::Events>,
    /// Each account's event log (`GET /api/v1/events`).
    pub event_log: Arc<dyn vidsight_cache::EventLog>,
    pub tools: MediaTools,
    pub analyzer: AnalyzerSettings,
    pub settings: WorkerSettings,
    /// Where videos are downloaded when the store has no local path.
    pub tmp_dir: PathBuf,
    /// Jobs running now (reported to the database for the "workers alive" metrics).
    pub in_flight: std::sync::atomic::AtomicU32,
    /// Analysis providers beyond the local analyzer.
    pub providers: Arc<vidsight_providers::engine::Engine>,
    /// The accounts' monthly provider-token budgets.
    pub token_budget: Option<Arc<dyn vidsight_providers::engine::TokenBudget>>,
}

/// Whether one `try_run_one` call found work.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    RanJob,
    EmptyQueue,
}

impl Worker {
    /// A worker id unique to this process.
    pub fn default_id() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        format!("{host}-{}", std::process::id())
    }

    /// Runs until `shutdown` is cancelled, then drains.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(worker = %self.id, concurrency = self.settings.concurrency, "worker: on");
        let maintenance = tokio::spawn(self.clone().maintenance_loop(shutdown.clone()));
        let permits = Arc::new(tokio::sync::Semaphore::new(self.settings.concurrency));
        let mut running: JoinSet<()> = JoinSet::new();
        // cancelled only when the grace period is over: running jobs then give up their lease
        let abandon = CancellationToken::new();
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            };
            match self.queue.claim(&self.id, self.settings.lease).await {
                Ok(Some(lease)) => {
                    let worker = self.clone();
                    let abandon = abandon.clone();
                    let span = tracing::info_span!("job", job = %lease.job.id, attempt = lease.job.attempts);
                    running.spawn(
                        async move {
                            gauge!(names::JOBS_IN_FLIGHT).increment(1.0);
                            worker.in_flight.fetch_add(1, Ordering::Relaxed);
                            worker.process(lease, abandon).await;
                            worker.in_flight.fetch_sub(1, Ordering::Relaxed);
                            gauge!(names::JOBS_IN_FLIGHT).decrement(1.0);
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                }
                Err(error) => {
                    drop(permit);
                    tracing::warn!(error = %error, "claiming a job failed; retrying shortly");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(self.settings.poll_interval.max(Duration::from_secs(1))) => {}
                    }
                }
            }
        }
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                grace_seconds = self.settings.shutdown_grace.as_secs(),
                "worker: draining"
            );
        }
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("worker: grace period over; handing unfinished jobs back to the queue");
            abandon.cancel();
            while running.join_next().await.is_some() {}
        }
        maintenance.abort();
        tracing::info!(worker = %self.id, "worker: stopped");
    }

    /// Claims and runs one job if one is ready (tests drain queues with this, no sleeping).
    pub async fn try_run_one(self: &Arc<Self>) -> Result<Step> {
        match self.queue.claim(&self.id, self.settings.lease).await? {
            Some(lease) => {
                self.process(lease, CancellationToken::new()).await;
                Ok(Step::RanJob)
            }
            None => Ok(Step::EmptyQueue),
        }
    }

    /// Reclaims expired leases now; fails the analyses of jobs that died that way.
    pub async fn reclaim_once(&self) -> Result<()> {
        let reclaimed = self.queue.reclaim_expired().await?;
        for job in &reclaimed.requeued {
            tracing::warn!(job = %job.id, attempts = job.attempts, "reclaimed a job whose worker stopped heartbeating");
        }
        for job in reclaimed.dead {
            tracing::error!(job = %job.id, attempts = job.attempts, "job ran out of attempts after its workers died");
            if let JobPayload::Analyze {
                video_id,
                analysis_id,
                ..
            } = job.payload
            {
                let reason = FailureInfo {
                    code: ErrorCode::Internal,
                    message: format!(
                        "the analysis was interrupted {} times (its worker crashed or was killed); start it again with POST /api/v1/videos/{video_id}/analyses",
                        job.attempts
                    ),
                };
                // the job is already dead: keep going so no other analysis is left behind
                if let Err(error) = self
                    .store
                    .fail_orphaned_analysis(analysis_id, &reason)
                    .await
                {
                    tracing::error!(job = %job.id, error = %error, "failing an orphaned analysis failed");
                }
                self.invalidate(video_id).await;
            }
            counter!(names::JOBS_FINISHED, "outcome" => "failed").increment(1);
        }
        Ok(())
    }

    async fn maintenance_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let period =
            (self.settings.lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
        loop {
            if let Err(error) = self.reclaim_once().await {
                tracing::warn!(error = %error, "reclaiming expired leases failed");
            }
            let in_flight = self.in_flight.load(Ordering::Relaxed);
            if let Err(error) = self.store.worker_seen(&self.id, in_flight).await {
                tracing::warn!(error = %error, "reporting this worker as alive failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }

    async fn invalidate(&self, video_id: VideoId) {
        let _ = self
            .cache
            .delete_prefix(&format!("video:{video_id}:"))
            .await;
        let event = serde_json::json!({ "video_id": video_id }).to_string();
        if let Err(error) = self.events.publish("videos", event.into()).await {
            tracing::debug!(error = %error, "announcing a video change failed");
        }
        // the owner's event stream says how the analysis ended, as the database has it
        let Ok(Some(video)) = self.store.get_video(video_id).await else {
            return;
        };
        let analysis = video.latest_analysis_id;
        let announced: &[&str] = match video.status {
            VideoStatus::Ready => &[kinds::ANALYSIS_SUCCEEDED, kinds::VIDEO_READY],
            VideoStatus::Failed => &[kinds::ANALYSIS_FAILED, kinds::VIDEO_FAILED],
            // handed back or retrying
            VideoStatus::Uploaded | VideoStatus::Processing => &[kinds::ANALYSIS_QUEUED],
        };
        for kind in announced {
            let event = UserEvent::new(kind, video_id, analysis).with_error(video.error.clone());
            announce(&*self.event_log, video.owner_id, &event).await;
        }
    }

    /// Runs one leased job to its end: success, retry, failure, or hand-back.
    async fn process(&self, lease: JobLease, abandon: CancellationToken) {
        let job_id = lease.job.id;
        let (video_id, analysis_id, options) = match &lease.job.payload {
            JobPayload::Analyze {
                video_id,
                analysis_id,
                options,
            } => (*video_id, *analysis_id, options.as_deref().cloned()),
            JobPayload::Noop { .. } => {
                if let Err(error) = self.queue.complete(&lease).await {
                    tracing::warn!(job = %job_id, error = %error, "completing a no-op job failed");
                }
                counter!(names::JOBS_FINISHED, "outcome" => "succeeded").increment(1);
                return;
            }
        };

        // The heartbeat renews the lease; losing it cancels the work.
        let lost = CancellationToken::new();
        let heartbeat = {
            let queue = self.queue.clone();
            let lease = lease.clone();
            let lost = lost.clone();
            let period = self.settings.heartbeat;
            let extend = self.settings.lease;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    match queue.heartbeat(&lease, extend).await {
                        Ok(()) => {}
                        Err(error) if is_lease_lost(&error) => {
                            lost.cancel();
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "heartbeat failed; will retry")
                        }
                    }
                }
            })
        };

        let started = Instant::now();
        let work = self.analyze(&lease, video_id, analysis_id, options);
        let result = tokio::select! {
            result = work => Some(result),
            _ = lost.cancelled() => None,
            _ = abandon.cancelled() => {
                heartbeat.abort();
                tracing::warn!(job = %job_id, "handing the job back: shutdown grace period over");
                match self.queue.retry(&lease, "worker shut down before finishing", Duration::ZERO).await {
                    // that was its last attempt: the analysis must not stay "running"
                    Ok(job) if job.state == vidsight_domain::JobState::Dead => {
                        let reason = FailureInfo {
                            code: ErrorCode::Internal,
                            message: format!(
                                "the analysis was interrupted {} times; start it again with POST /api/v1/videos/{video_id}/analyses",
                                job.attempts
                            ),
                        };
                        let _ = self.store.fail_orphaned_analysis(analysis_id, &reason).await;
                        self.invalidate(video_id).await;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(error = %error, "handing the job back failed; its lease will expire"),
                }
                return;
            }
        };
        heartbeat.abort();
        let Some(result) = result else {
            tracing::warn!(job = %job_id, "lease lost mid-job; another worker has it");
            counter!(names::JOBS_FINISHED, "outcome" => "lease_lost").increment(1);
            let _ = self.queue.finished(&lease).await;
            self.clean_up_if_deleted(video_id).await;
            return;
        };

        let outcome = match result {
            Ok(insights) => {
                histogram!(names::ANALYSIS_DURATION).record(started.elapsed().as_secs_f64());
                self.store
                    .finish_analysis(&lease, analysis_id, AnalysisOutcome::Succeeded { insights })
                    .await
                    .map(|()| "succeeded")
            }
            Err(error) => self.handle_failure(&lease, analysis_id, error).await,
        };
        match outcome {
            Ok(outcome) => {
                tracing::info!(job = %job_id, video = %video_id, outcome, seconds = started.elapsed().as_secs_f64(), "job finished");
                counter!(names::JOBS_FINISHED, "outcome" => outcome).increment(1);
                // the outcome is recorded: a broker may now forget the message
                let _ = self.queue.finished(&lease).await;
            }
            Err(error) if is_lease_lost(&error) => {
                counter!(names::JOBS_FINISHED, "outcome" => "lease_lost").increment(1);
                let _ = self.queue.finished(&lease).await;
                self.clean_up_if_deleted(video_id).await;
            }
            Err(error) => {
                // the lease will expire and another attempt will record the result; the
                // delivery is released so it does not hold a prefetch slot meanwhile
                tracing::error!(job = %job_id, error = %error, "recording the job's outcome failed");
                let _ = self.queue.finished(&lease).await;
            }
        }
        self.invalidate(video_id).await;
    }

    /// The video may have been deleted while we worked on it: leave none of its objects.
    async fn clean_up_if_deleted(&self, video_id: VideoId) {
        if matches!(self.store.get_video(video_id).await, Ok(None)) {
            let _ = self
                .blobs
                .delete_prefix(&keys::video_prefix(video_id))
                .await;
        }
    }

    async fn handle_failure(
        &self,
        lease: &JobLease,
        analysis_id: AnalysisId,
        error: Error,
    ) -> Result<&'static str> {
        let reason = FailureInfo {
            code: error.code,
            message: error.message.clone(),
        };
        let attempts_left = lease.job.attempts < lease.job.max_attempts;
        if error.is_transient() && attempts_left {
            let delay = backoff(
                lease.job.attempts,
                self.settings.retry_base,
                self.settings.retry_max,
            );
            tracing::warn!(code = %error.code, error = ?error, retry_in_seconds = delay.as_secs_f64(), "analysis failed; will retry");
            // the analysis shows "queued" before the job can be claimed again, so a fast
            // retry on another worker is never overwritten
            self.store.analysis_will_retry(analysis_id, &reason).await?;
            self.queue
                .retry(lease, &format!("{}: {}", error.code, error.message), delay)
                .await?;
            return Ok("retried");
        }
        tracing::warn!(code = %error.code, error = ?error, "analysis failed");
        self.store
            .finish_analysis(lease, analysis_id, AnalysisOutcome::Failed(reason))
            .await?;
        Ok("failed")
    }

    /// The pipeline for one analysis; returns the insights document.
    async fn analyze(
        &self,
        lease: &JobLease,
        video_id: VideoId,
        analysis_id: AnalysisId,
        options: Option<vidsight_domain::AnalysisOptions>,
    ) -> Result<serde_json::Value> {
        self.store.start_analysis(lease, analysis_id).await?;
        // bad options fail before the (long) local analysis
        let resolved = self.providers.resolve(options.as_ref())?;
        // a provider asked for explicitly fails the analysis with its code; one that runs
        // only because the configuration makes it the default must not cost an upload its
        // local insights
        let explicit = options.is_some();
        let video = self
            .store
            .get_video(video_id)
            .await?
            .ok_or_else(|| Error::not_found("video"))?;
        let original = keys::original(video_id);

        // ffmpeg reads the local object directly, or a temporary download of it
        let mut _download_guard = None;
        let path = match self
            .blobs
            .local_path(&original)
            .filter(|path| path.exists())
        {
            Some(path) => path,
            None => {
                tokio::fs::create_dir_all(&self.tmp_dir)
                    .await
                    .map_err(|error| {
                        Error::internal("cannot create the temporary directory").with_source(error)
                    })?;
                let file = tempfile::Builder::new()
                    .prefix("analysis-")
                    .tempfile_in(&self.tmp_dir)
                    .map_err(|error| {
                        Error::internal("cannot create a temporary file").with_source(error)
                    })?;
                self.blobs.download_to(&original, file.path()).await?;
                let path = file.path().to_owned();
                _download_guard = Some(file);
                path
            }
        };

        announce(
            &*self.event_log,
            video.owner_id,
            &UserEvent::new(kinds::ANALYSIS_STARTED, video_id, Some(analysis_id)),
        )
        .await;
        // progress flows through a watch channel so the analyzer never waits on the database;
        // it is recorded (and announced) at most 4 times a second
        let (progress_sender, mut progress_receiver) = tokio::sync::watch::channel(0u8);
        let reporter = {
            let store = self.store.clone();
            let event_log = self.event_log.clone();
            let owner = video.owner_id;
            tokio::spawn(async move {
                let mut last = 0u8;
                while progress_receiver.changed().await.is_ok() {
                    let value = *progress_receiver.borrow_and_update();
                    if value > last {
                        last = value;
                        let _ = store.set_progress(analysis_id, value).await;
                        let event =
                            UserEvent::new(kinds::ANALYSIS_PROGRESS, video_id, Some(analysis_id))
                                .with_progress(value);
                        announce(&*event_log, owner, &event).await;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let report = move |fraction: f64| {
            // 99 at most: 100 means the result is stored
            let _ = progress_sender.send((fraction * 99.0).floor().clamp(0.0, 99.0) as u8);
        };
        let output =
            vidsight_analysis::analyze(&self.tools, &path, &video.media, &self.analyzer, &report)
                .await;
        reporter.abort();
        let mut output = output?;
        tracing::debug!(
            frames = output.frames,
            skipped = output.decoding.skipped.as_str(),
            kept_share = output.decoding.kept_share,
            parts = output.decoding.parts,
            "video decoded"
        );

        for keyframe in &output.keyframes {
            let key = keys::keyframe(video_id, analysis_id, &keyframe.name);
            self.blobs
                .put_bytes(&key, keyframe.jpeg.clone().into())
                .await?;
            let thumbnail = &keyframe.thumbnail;
            let key = keys::keyframe(video_id, analysis_id, &thumbnail.name);
            self.blobs
                .put_bytes(&key, thumbnail.jpeg.clone().into())
                .await?;
        }
        for sheet in &output.storyboard {
            let key = keys::storyboard(video_id, analysis_id, &sheet.name);
            self.blobs
                .put_bytes(&key, sheet.jpeg.clone().into())
                .await?;
        }
        if let Some(resolved) = resolved {
            let result = self
                .run_provider(&resolved, &video, analysis_id, &path, &mut output)
                .await;
            match result {
                Ok(()) => {}
                Err(error) if explicit => return Err(error),
                Err(error) => {
                    tracing::warn!(code = %error.code, error = %error.message, "the default provider failed; keeping the local analysis");
                    output
                        .insights
                        .providers
                        .push(vidsight_domain::ai::ProviderRun {
                            source: resolved.source,
                            model: resolved.model.clone(),
                            features: resolved.features.clone(),
                            usage: Default::default(),
                            cost_usd: None,
                            cached: false,
                            bytes_uploaded: 0,
                            bytes_saved: 0,
                            raw: None,
                            warnings: vec![format!(
                                "not added: {} ({}); the local analysis is complete",
                                error.message, error.code
                            )],
                        });
                }
            }
        }
        serde_json::to_value(&output.insights)
            .map_err(|error| Error::internal("insights do not serialise").with_source(error))
    }

    /// The provider's part of an analysis: the budget check, the run, the charge.
    async fn run_provider(
        &self,
        resolved: &vidsight_providers::engine::Resolved,
        video: &vidsight_domain::Video,
        analysis_id: AnalysisId,
        path: &std::path::Path,
        output: &mut vidsight_analysis::AnalysisOutput,
    ) -> Result<()> {
        if let Some(owner) = video.owner_id {
            let estimate = self
                .providers
                .estimate(resolved, video, Some(&output.insights))
                .await?;
            if let Some(budget) = &self.token_budget {
                budget.check(owner, estimate).await?;
            }
        }
        let stills = keyframe_stills(output);
        let run = self
            .providers
            .run(
                resolved,
                video,
                analysis_id,
                path,
                &self.tmp_dir,
                stills,
                &mut output.insights,
            )
            .await?;
        let cost_micros = run.cost_usd.map_or(0, |cost| (cost * 1e6).round() as i64);
        if run.usage.total > 0 || cost_micros > 0 {
            self.store
                .charge_provider_usage(video.id, run.usage.total as i64, cost_micros)
                .await?;
        }
        tracing::info!(provider = %run.source, model = %run.model, cached = run.cached,
            tokens = run.usage.total, cost_usd = ?run.cost_usd, bytes_saved = run.bytes_saved,
            warnings = run.warnings.len(), "provider analysis merged");
        output.insights.providers.push(run);
        Ok(())
    }
}

/// The keyframes with their times, for providers that look at images.
pub fn keyframe_stills(
    output: &vidsight_analysis::AnalysisOutput,
) -> Vec<vidsight_providers::Still> {
    output
        .insights
        .shots
        .iter()
        .filter_map(|shot| {
            let name = shot.keyframe.as_deref()?;
            let keyframe = output
                .keyframes
                .iter()
                .find(|keyframe| keyframe.name == name)?;
            Some(vidsight_providers::Still {
                time: (shot.start + shot.end) / 2.0,
                jpeg: keyframe.jpeg.clone(),
            })
        })
        .collect()
}
