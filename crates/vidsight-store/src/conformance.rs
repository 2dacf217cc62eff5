//! Conformance suites: every [`Store`] and [`JobQueue`] implementation must pass them.
//! A backend crate runs them with [`store_conformance_tests!`](crate::store_conformance_tests)
//! and [`queue_conformance_tests!`](crate::queue_conformance_tests), giving an expression
//! that builds a fresh, migrated, empty backend.

use crate::traits::*;
use std::sync::Arc;
use std::time::Duration;
use vidsight_domain::{
    AnalysisStatus, ErrorCode, FailureInfo, JobPayload, JobState, MediaInfo, VideoId, VideoStatus,
};

pub fn sample_video(name: &str) -> NewVideo {
    NewVideo {
        id: VideoId::new(),
        owner_id: None,
        filename: name.to_owned(),
        content_type: "video/mp4".into(),
        size_bytes: 1234,
        sha256: "ab".repeat(32),
        media: MediaInfo {
            container: "mov,mp4".into(),
            duration: 10.0,
            width: 640,
            height: 360,
            display_width: 640,
            display_height: 360,
            display_aspect: "16:9".into(),
            sample_aspect: "1:1".into(),
            fps: 25.0,
            video_codec: "h264".into(),
            ..MediaInfo::default()
        },
    }
}

const LEASE: Duration = Duration::from_secs(30);

/// Claims the next job, which must be the analysis of `video`.
async fn claim_analysis_of(queue: &dyn JobQueue, video: VideoId) -> vidsight_domain::JobLease {
    let lease = queue
        .claim("worker-a", LEASE)
        .await
        .unwrap()
        .expect("a job is ready");
    match &lease.job.payload {
        JobPayload::Analyze { video_id, .. } => assert_eq!(*video_id, video),
        other => panic!("unexpected job {other:?}"),
    }
    lease
}

pub mod store {
    use super::*;

    pub async fn create_get_and_list(store: Arc<dyn Store>) {
        store.ping().await.unwrap();
        let mut ids = Vec::new();
        for index in 0..5 {
            let (video, analysis) = store
                .create_video(sample_video(&format!("v{index}.mp4")), 3)
                .await
                .unwrap();
            assert_eq!(video.status, VideoStatus::Uploaded);
            assert_eq!(video.latest_analysis_id, Some(analysis.id));
            assert_eq!(analysis.status, AnalysisStatus::Queued);
            assert_eq!(video.media.width, 640);
            ids.push(video.id);
        }
        let fetched = store.get_video(ids[2]).await.unwrap().unwrap();
        assert_eq!(fetched.filename, "v2.mp4");
        assert!(store.get_video(VideoId::new()).await.unwrap().is_none());

        let first = store.list_videos(None, None, 2).await.unwrap();
        assert_eq!(
            first.items.iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![ids[4], ids[3]]
        );
        let second = store
            .list_videos(None, first.next_cursor.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(
            second.items.iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![ids[2], ids[1]]
        );
        let third = store
            .list_videos(None, second.next_cursor.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(
            third.items.iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![ids[0]]
        );
        assert!(third.next_cursor.is_none());
        let error = store
            .list_videos(None, Some("garbage"), 2)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidCursor);
    }

    pub async fn search_finds_titles_and_insight_text(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
    ) {
        let (video, analysis) = store
            .create_video(sample_video("Holiday in Lisbon.mp4"), 3)
            .await
            .unwrap();
        let (other, _) = store
            .create_video(sample_video("garden.mp4"), 3)
            .await
            .unwrap();
        let titles = store.search(None, "holi", 10).await.unwrap();
        assert_eq!(titles.len(), 1, "{titles:?}");
        assert_eq!(
            (titles[0].video_id, titles[0].kind.as_str()),
            (video.id, "title")
        );
        assert!(
            titles[0].snippet.contains("[Holiday]"),
            "{}",
            titles[0].snippet
        );

        let lease = claim_analysis_of(&*queue, video.id).await;
        store.start_analysis(&lease, analysis.id).await.unwrap();
        let insights = serde_json::json!({
            "schema": "vidsight.insights/v1",
            "shots": [],
            "transcript": [
                { "start": 1.0, "end": 2.5, "text": "the tram climbs the hill" },
                { "start": 7.0, "end": 9.0, "text": "pastéis de nata by the river" }
            ]
        });
        store
            .finish_analysis(&lease, analysis.id, AnalysisOutcome::Succeeded { insights })
            .await
            .unwrap();
        let hits = store.search(None, "Tram", 10).await.unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].kind, "transcript");
        assert_eq!((hits[0].start, hits[0].end), (Some(1.0), Some(2.5)));
        // accents and case do not matter; every word must match
        assert_eq!(
            store.search(None, "PASTEIS river", 10).await.unwrap().len(),
            1
        );
        assert!(store
            .search(None, "tram river", 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store.search(None, "  ", 10).await.unwrap().is_empty());
        assert!(store
            .search(None, "\"unbalanced OR *", 10)
            .await
            .unwrap()
            .is_empty());
        // only the owner's videos
        let stranger = vidsight_domain::UserId::new();
        assert!(store
            .search(Some(stranger), "tram", 10)
            .await
            .unwrap()
            .is_empty());
        // deleting the video removes its entries
        assert!(store.delete_video(video.id).await.unwrap());
        assert!(store.search(None, "tram", 10).await.unwrap().is_empty());
        assert!(store.search(None, "lisbon", 10).await.unwrap().is_empty());
        assert_eq!(
            store.search(None, "garden", 10).await.unwrap()[0].video_id,
            other.id
        );
    }

    pub async fn analysis_lifecycle_and_exactly_once(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
    ) {
        let (video, analysis) = store.create_video(sample_video("a.mp4"), 3).await.unwrap();
        let lease = claim_analysis_of(&*queue, video.id).await;
        store.start_analysis(&lease, analysis.id).await.unwrap();
        store.set_progress(analysis.id, 40).await.unwrap();
        let running = store.get_video(video.id).await.unwrap().unwrap();
        assert_eq!(
            (running.status, running.progress),
            (VideoStatus::Processing, 40)
        );
        assert_eq!(
            store
                .get_analysis(analysis.id)
                .await
                .unwrap()
                .unwrap()
                .attempts,
            1
        );

        // a second analysis cannot start while this one is active
        let error = store.create_analysis(video.id, 3, None).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::AnalysisInProgress);

        // a stale lease (wrong token) cannot record a result
        let mut stale = lease.clone();
        stale.token = "someone-else".into();
        let outcome = AnalysisOutcome::Succeeded {
            insights: serde_json::json!({"shots": []}),
        };
        let error = store
            .finish_analysis(&stale, analysis.id, outcome.clone())
            .await
            .unwrap_err();
        assert!(is_lease_lost(&error), "{error}");
        assert!(store.latest_insights(video.id).await.unwrap().is_none());

        store
            .finish_analysis(&lease, analysis.id, outcome.clone())
            .await
            .unwrap();
        // the same lease cannot record twice
        let error = store
            .finish_analysis(&lease, analysis.id, outcome)
            .await
            .unwrap_err();
        assert!(is_lease_lost(&error));
        let ready = store.get_video(video.id).await.unwrap().unwrap();
        assert_eq!((ready.status, ready.progress), (VideoStatus::Ready, 100));
        let insights = store.latest_insights(video.id).await.unwrap().unwrap();
        assert_eq!(insights.analysis_id, analysis.id);
        assert_eq!(insights.insights["shots"], serde_json::json!([]));
        let finished = store.get_analysis(analysis.id).await.unwrap().unwrap();
        assert_eq!(finished.status, AnalysisStatus::Succeeded);
        assert!(finished.finished_at.is_some());
        assert_eq!(
            queue.get_job(lease.job.id).await.unwrap().unwrap().state,
            JobState::Done
        );

        // a re-run is allowed now, and keeps the old insights until it succeeds
        let options = vidsight_domain::AnalysisOptions {
            provider: Some(vidsight_domain::Source::Gemini),
            features: vec![vidsight_domain::Feature::Chapters],
            ..Default::default()
        };
        let rerun = store
            .create_analysis(video.id, 3, Some(options.clone()))
            .await
            .unwrap();
        assert_ne!(rerun.id, analysis.id);
        let video_now = store.get_video(video.id).await.unwrap().unwrap();
        assert_eq!(video_now.latest_analysis_id, Some(rerun.id));
        assert_eq!(
            store
                .latest_insights(video.id)
                .await
                .unwrap()
                .unwrap()
                .analysis_id,
            analysis.id
        );
        assert_eq!(
            store
                .create_analysis(VideoId::new(), 3, None)
                .await
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
        // the options travel with the job to the worker
        let lease = claim_analysis_of(&*queue, video.id).await;
        match &lease.job.payload {
            JobPayload::Analyze {
                analysis_id,
                options: claimed,
                ..
            } => {
                assert_eq!(*analysis_id, rerun.id);
                assert_eq!(claimed.as_deref(), Some(&options));
            }
            other => panic!("unexpected job {other:?}"),
        }
    }

    pub async fn failure_is_recorded_with_its_code(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
    ) {
        let (video, analysis) = store
            .create_video(sample_video("bad.mp4"), 3)
            .await
            .unwrap();
        let lease = claim_analysis_of(&*queue, video.id).await;
        store.start_analysis(&lease, analysis.id).await.unwrap();
        let reason = FailureInfo {
            code: ErrorCode::UndecodableMedia,
            message: "broken".into(),
        };
        store
            .analysis_will_retry(analysis.id, &reason)
            .await
            .unwrap();
        assert_eq!(
            store
                .get_analysis(analysis.id)
                .await
                .unwrap()
                .unwrap()
                .status,
            AnalysisStatus::Queued
        );
        store
            .finish_analysis(&lease, analysis.id, AnalysisOutcome::Failed(reason.clone()))
            .await
            .unwrap();
        let failed = store.get_video(video.id).await.unwrap().unwrap();
        assert_eq!(failed.status, VideoStatus::Failed);
        assert_eq!(failed.error, Some(reason.clone()));
        let analysis = store.get_analysis(analysis.id).await.unwrap().unwrap();
        assert_eq!(analysis.status, AnalysisStatus::Failed);
        assert_eq!(analysis.error, Some(reason));
        assert_eq!(
            queue.get_job(lease.job.id).await.unwrap().unwrap().state,
            JobState::Dead
        );
    }

    pub async fn delete_removes_everything(store: Arc<dyn Store>, queue: Arc<dyn JobQueue>) {
        let (video, analysis) = store
            .create_video(sample_video("gone.mp4"), 3)
            .await
            .unwrap();
        let (kept, _) = store
            .create_video(sample_video("kept.mp4"), 3)
            .await
            .unwrap();
        assert!(store.delete_video(video.id).await.unwrap());
        assert!(!store.delete_video(video.id).await.unwrap());
        assert!(store.get_video(video.id).await.unwrap().is_none());
        assert!(store.get_analysis(analysis.id).await.unwrap().is_none());
        // the deleted video's job is gone: only the kept one can be claimed
        let lease = claim_analysis_of(&*queue, kept.id).await;
        queue.complete(&lease).await.unwrap();
        assert!(queue.claim("worker-a", LEASE).await.unwrap().is_none());
    }

    pub async fn videos_copy_between_stores(store: Arc<dyn Store>, queue: Arc<dyn JobQueue>) {
        // a finished video and one still queued, read out and imported into a second store
        // of the same kind (a fresh schema would do as well) — here: re-imported into itself
        // after a delete, which must restore it exactly
        let (done, first) = store
            .create_video(sample_video("done.mp4"), 3)
            .await
            .unwrap();
        let lease = claim_analysis_of(&*queue, done.id).await;
        store.start_analysis(&lease, first.id).await.unwrap();
        let insights = serde_json::json!({"schema": "vidsight.insights/v1", "shots": [1, 2]});
        store
            .finish_analysis(
                &lease,
                first.id,
                AnalysisOutcome::Succeeded {
                    insights: insights.clone(),
                },
            )
            .await
            .unwrap();
        let (waiting, _) = store
            .create_video(sample_video("waiting.mp4"), 3)
            .await
            .unwrap();
        let done = store.get_video(done.id).await.unwrap().unwrap();
        let done_analyses = store.list_analyses(done.id).await.unwrap();
        assert_eq!(done_analyses.len(), 1);
        assert_eq!(done_analyses[0].insights.as_ref(), Some(&insights));
        let waiting = store.get_video(waiting.id).await.unwrap().unwrap();
        let waiting_analyses = store.list_analyses(waiting.id).await.unwrap();
        assert!(
            !store.import_video(&done, &done_analyses, 3).await.unwrap(),
            "already there: skipped"
        );

        assert!(store.delete_video(done.id).await.unwrap());
        assert!(store.delete_video(waiting.id).await.unwrap());
        assert!(store.import_video(&done, &done_analyses, 3).await.unwrap());
        assert!(store
            .import_video(&waiting, &waiting_analyses, 3)
            .await
            .unwrap());
        assert_eq!(store.get_video(done.id).await.unwrap().unwrap(), done);
        assert_eq!(store.list_analyses(done.id).await.unwrap(), done_analyses);
        assert_eq!(
            store
                .latest_insights(done.id)
                .await
                .unwrap()
                .unwrap()
                .insights,
            insights
        );
        // the queued analysis is queued again: a worker gets it
        let lease = claim_analysis_of(&*queue, waiting.id).await;
        queue.complete(&lease).await.unwrap();
    }

    pub async fn workers_report_in(store: Arc<dyn Store>, _queue: Arc<dyn JobQueue>) {
        let window = Duration::from_secs(60);
        assert_eq!(
            store.workers_alive(window).await.unwrap(),
            WorkersAlive::default()
        );
        store.worker_seen("host-1", 2).await.unwrap();
        store.worker_seen("host-2", 0).await.unwrap();
        store.worker_seen("host-1", 1).await.unwrap();
        assert_eq!(
            store.workers_alive(window).await.unwrap(),
            WorkersAlive {
                workers: 2,
                in_flight: 1
            }
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            store
                .workers_alive(Duration::from_millis(10))
                .await
                .unwrap()
                .workers,
            0,
            "silent workers are not alive"
        );
    }
}

pub mod queue {
    use super::*;

    fn noop(tag: &str) -> JobPayload {
        JobPayload::Noop {
            tag: tag.to_owned(),
        }
    }

    pub async fn claim_and_complete(queue: Arc<dyn JobQueue>) {
        assert!(queue.claim("w", LEASE).await.unwrap().is_none());
        let first = queue.enqueue(noop("1"), 3).await.unwrap();
        let second = queue.enqueue(noop("2"), 3).await.unwrap();
        assert_eq!(first.state, JobState::Ready);
        let lease = queue.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(lease.job.id, first.id, "oldest first");
        assert_eq!(lease.job.attempts, 1);
        assert_eq!(lease.job.state, JobState::Running);
        queue.heartbeat(&lease, LEASE).await.unwrap();
        queue.complete(&lease).await.unwrap();
        assert!(is_lease_lost(&queue.complete(&lease).await.unwrap_err()));
        let next = queue.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(next.job.id, second.id);
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.ready, stats.running, stats.done, stats.dead),
            (0, 1, 1, 0)
        );
    }

    pub async fn unique_keys_allow_one_active_job(queue: Arc<dyn JobQueue>) {
        queue.enqueue(noop("same"), 3).await.unwrap();
        let error = queue.enqueue(noop("same"), 3).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::AnalysisInProgress);
        let lease = queue.claim("w", LEASE).await.unwrap().unwrap();
        assert_eq!(
            queue.enqueue(noop("same"), 3).await.unwrap_err().code,
            ErrorCode::AnalysisInProgress
        );
        queue.complete(&lease).await.unwrap();
        queue
            .enqueue(noop("same"), 3)
            .await
            .expect("allowed once the first is done");
    }

    pub async fn concurrent_claims_never_share_a_job(queue: Arc<dyn JobQueue>) {
        for index in 0..40 {
            queue.enqueue(noop(&format!("c{index}")), 3).await.unwrap();
        }
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let queue = queue.clone();
            tasks.push(tokio::spawn(async move {
                let mut claimed = Vec::new();
                while let Some(lease) = queue.claim(&format!("w{worker}"), LEASE).await.unwrap() {
                    claimed.push(lease.job.id);
                    queue.complete(&lease).await.unwrap();
                }
                claimed
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            (total, all.len()),
            (40, 40),
            "every job claimed exactly once"
        );
    }

    pub async fn expired_leases_are_reclaimed_and_fenced(queue: Arc<dyn JobQueue>) {
        let job = queue.enqueue(noop("crashy"), 2).await.unwrap();
        let crashed = queue
            .claim("dead-worker", Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        // heartbeat after expiry but before reclaim still works (nobody else has it) …
        let reclaimed = queue.reclaim_expired().await.unwrap();
        assert_eq!(
            reclaimed.requeued.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![job.id]
        );
        // … but after reclaim the old holder is fenced off
        assert!(is_lease_lost(
            &queue.heartbeat(&crashed, LEASE).await.unwrap_err()
        ));
        let second = queue
            .claim("live-worker", Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.job.attempts, 2);
        assert!(is_lease_lost(&queue.complete(&crashed).await.unwrap_err()));
        tokio::time::sleep(Duration::from_millis(80)).await;
        // out of attempts: the second expiry makes it dead
        let reclaimed = queue.reclaim_expired().await.unwrap();
        assert_eq!(
            reclaimed.dead.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![job.id]
        );
        assert_eq!(
            queue.get_job(job.id).await.unwrap().unwrap().state,
            JobState::Dead
        );
        assert!(queue.claim("w", LEASE).await.unwrap().is_none());
    }

    pub async fn retries_back_off_then_die(queue: Arc<dyn JobQueue>) {
        let job = queue.enqueue(noop("flaky"), 2).await.unwrap();
        let lease = queue.claim("w", LEASE).await.unwrap().unwrap();
        let after = queue
            .retry(&lease, "boom", Duration::from_millis(150))
            .await
            .unwrap();
        assert_eq!(after.state, JobState::Ready);
        assert_eq!(after.last_error.as_deref(), Some("boom"));
        assert!(
            queue.claim("w", LEASE).await.unwrap().is_none(),
            "not before its backoff"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let lease = loop {
            if let Some(lease) = queue.claim("w", LEASE).await.unwrap() {
                break lease;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "retry never became ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(lease.job.attempts, 2);
        let after = queue
            .retry(&lease, "boom again", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(after.state, JobState::Dead, "out of attempts");
        assert_eq!(
            queue.get_job(job.id).await.unwrap().unwrap().state,
            JobState::Dead
        );
        let other = queue.enqueue(noop("doomed"), 5).await.unwrap();
        let lease = queue.claim("w", LEASE).await.unwrap().unwrap();
        queue.kill(&lease, "permanent").await.unwrap();
        assert_eq!(
            queue.get_job(other.id).await.unwrap().unwrap().state,
            JobState::Dead
        );
        assert_eq!(queue.stats().await.unwrap().dead, 2);
    }

    pub async fn backoff_doubles_and_caps(_queue: Arc<dyn JobQueue>) {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, base, max), Duration::from_secs(5));
        assert_eq!(backoff(2, base, max), Duration::from_secs(10));
        assert_eq!(backoff(4, base, max), Duration::from_secs(40));
        assert_eq!(backoff(5, base, max), max);
        assert_eq!(backoff(500, base, max), max);
    }
}

/// Generates one test per [`store`] check. `$make` is an async expression returning a
/// fresh `(Arc<dyn Store>, Arc<dyn JobQueue>)` over the same empty database.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn store_create_get_and_list() {
            let (store, _queue) = $make.await;
            $crate::conformance::store::create_get_and_list(store).await;
        }
        #[tokio::test]
        async fn store_search_finds_titles_and_insight_text() {
            let (store, queue) = $make.await;
            $crate::conformance::store::search_finds_titles_and_insight_text(store, queue).await;
        }
        #[tokio::test]
        async fn store_analysis_lifecycle_and_exactly_once() {
            let (store, queue) = $make.await;
            $crate::conformance::store::analysis_lifecycle_and_exactly_once(store, queue).await;
        }
        #[tokio::test]
        async fn store_failure_is_recorded_with_its_code() {
            let (store, queue) = $make.await;
            $crate::conformance::store::failure_is_recorded_with_its_code(store, queue).await;
        }
        #[tokio::test]
        async fn store_videos_copy_between_stores() {
            let (store, queue) = $make.await;
            $crate::conformance::store::videos_copy_between_stores(store, queue).await;
        }
        #[tokio::test]
        async fn store_workers_report_in() {
            let (store, queue) = $make.await;
            $crate::conformance::store::workers_report_in(store, queue).await;
        }
        #[tokio::test]
        async fn store_delete_removes_everything() {
            let (store, queue) = $make.await;
            $crate::conformance::store::delete_removes_everything(store, queue).await;
        }
    };
}

/// Generates one test per [`queue`] check; `$make` as for
/// [`store_conformance_tests!`](crate::store_conformance_tests).
#[macro_export]
macro_rules! queue_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn queue_claim_and_complete() {
            $crate::conformance::queue::claim_and_complete($make.await.1).await;
        }
        #[tokio::test]
        async fn queue_unique_keys_allow_one_active_job() {
            $crate::conformance::queue::unique_keys_allow_one_active_job($make.await.1).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn queue_concurrent_claims_never_share_a_job() {
            $crate::conformance::queue::concurrent_claims_never_share_a_job($make.await.1).await;
        }
        #[tokio::test]
        async fn queue_expired_leases_are_reclaimed_and_fenced() {
            $crate::conformance::queue::expired_leases_are_reclaimed_and_fenced($make.await.1)
                .await;
        }
        #[tokio::test]
        async fn queue_retries_back_off_then_die() {
            $crate::conformance::queue::retries_back_off_then_die($make.await.1).await;
        }
        #[tokio::test]
        async fn queue_backoff_doubles_and_caps() {
            $crate::conformance::queue::backoff_doubles_and_caps($make.await.1).await;
        }
    };
}

/// The [`Accounts`] suite.
pub mod accounts {
    use super::*;
    use vidsight_domain::{ApiKeyId, Role, Scope, UserId};

    pub fn new_user(email: &str) -> NewUser {
        NewUser {
            id: UserId::new(),
            email: email.to_owned(),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            role: Role::Member,
        }
    }

    pub async fn users_and_the_first_admin(accounts: Arc<dyn Accounts>) {
        let first = accounts
            .create_user(new_user("a@example.com"), true, false)
            .await
            .unwrap();
        assert_eq!(
            first.user.role,
            Role::Admin,
            "the first account becomes admin"
        );
        let second = accounts
            .create_user(new_user("b@example.com"), true, false)
            .await
            .unwrap();
        assert_eq!(second.user.role, Role::Member);
        let error = accounts
            .create_user(new_user("a@example.com"), true, false)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::EmailTaken);
        assert_eq!(accounts.user_count().await.unwrap(), 2);
        let closed = accounts
            .create_user(new_user("late@example.com"), true, true)
            .await
            .unwrap_err();
        assert_eq!(
            closed.code,
            ErrorCode::RegistrationClosed,
            "only the first may register"
        );
        let found = accounts
            .find_user_by_email("b@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, second);
        assert!(accounts
            .find_user_by_email("c@example.com")
            .await
            .unwrap()
            .is_none());
        let page = accounts.list_users(None, 1).await.unwrap();
        assert_eq!(page.items, vec![first.user.clone()]);
        let rest = accounts
            .list_users(page.next_cursor.as_deref(), 1)
            .await
            .unwrap();
        assert_eq!(rest.items, vec![second.user.clone()]);
        assert!(rest.next_cursor.is_none());

        // disabling ends sessions; quotas set and return to the default
        let changed = accounts
            .update_user(
                second.user.id,
                UserChanges {
                    disabled: Some(true),
                    quota_storage_bytes: Some(Some(1000)),
                    ..UserChanges::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert!(changed.disabled);
        assert_eq!(changed.quota_storage_bytes, Some(1000));
        let record = accounts.get_user(second.user.id).await.unwrap().unwrap();
        assert!(record.session_epoch > second.session_epoch);
        let changed = accounts
            .update_user(
                second.user.id,
                UserChanges {
                    role: Some(Role::Admin),
                    quota_storage_bytes: Some(None),
                    ..UserChanges::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.role, Role::Admin);
        assert_eq!(changed.quota_storage_bytes, None);
        assert!(accounts
            .update_user(UserId::new(), UserChanges::default())
            .await
            .unwrap()
            .is_none());

        let before = accounts.get_user(first.user.id).await.unwrap().unwrap();
        accounts
            .set_password(first.user.id, "new-hash")
            .await
            .unwrap();
        let after = accounts.get_user(first.user.id).await.unwrap().unwrap();
        assert_eq!(after.password_hash, "new-hash");
        assert_eq!(after.session_epoch, before.session_epoch + 1);
        accounts.end_sessions(first.user.id).await.unwrap();
        let ended = accounts.get_user(first.user.id).await.unwrap().unwrap();
        assert_eq!(ended.session_epoch, before.session_epoch + 2);

        // a copy keeps everything
        let copy = accounts.get_user(second.user.id).await.unwrap().unwrap();
        assert!(!accounts.import_user(&copy).await.unwrap(), "already there");
    }

    pub async fn totp_steps_and_recovery_codes(accounts: Arc<dyn Accounts>) {
        let user = accounts
            .create_user(new_user("mfa@example.com"), false, false)
            .await
            .unwrap();
        let id = user.user.id;
        let codes: Vec<String> = (0..10).map(|n| format!("hash-{n}")).collect();
        accounts
            .set_totp(id, Some("SECRET"), true, &codes)
            .await
            .unwrap();
        let record = accounts.get_user(id).await.unwrap().unwrap();
        assert!(record.user.mfa_enabled);
        assert_eq!(record.totp_secret.as_deref(), Some("SECRET"));
        assert!(accounts.use_totp_step(id, 5).await.unwrap());
        assert!(
            !accounts.use_totp_step(id, 5).await.unwrap(),
            "a step works once"
        );
        assert!(
            !accounts.use_totp_step(id, 4).await.unwrap(),
            "no going back"
        );
        assert!(accounts.use_totp_step(id, 6).await.unwrap());
        assert_eq!(accounts.recovery_codes_left(id).await.unwrap(), 10);
        assert!(accounts.use_recovery_code(id, "hash-3").await.unwrap());
        assert!(
            !accounts.use_recovery_code(id, "hash-3").await.unwrap(),
            "once"
        );
        assert!(!accounts.use_recovery_code(id, "unknown").await.unwrap());
        assert_eq!(accounts.recovery_codes_left(id).await.unwrap(), 9);
        accounts.set_totp(id, None, false, &[]).await.unwrap();
        let record = accounts.get_user(id).await.unwrap().unwrap();
        assert!(!record.user.mfa_enabled);
        assert!(record.totp_secret.is_none());
        assert_eq!(accounts.recovery_codes_left(id).await.unwrap(), 0);
    }

    pub async fn api_keys(accounts: Arc<dyn Accounts>) {
        let owner = accounts
            .create_user(new_user("k@example.com"), false, false)
            .await
            .unwrap();
        let other = accounts
            .create_user(new_user("o@example.com"), false, false)
            .await
            .unwrap();
        let key = accounts
            .create_api_key(NewApiKey {
                id: ApiKeyId::new(),
                user_id: owner.user.id,
                name: "ci".into(),
                prefix: "abcdef123456".into(),
                key_hash: "f".repeat(64),
                scopes: vec![Scope::Read, Scope::Write],
            })
            .await
            .unwrap();
        assert_eq!(key.scopes, vec![Scope::Read, Scope::Write]);
        assert!(key.last_used_at.is_none() && key.revoked_at.is_none());
        let found = accounts
            .find_api_key("abcdef123456")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.key, key);
        assert_eq!(found.key_hash, "f".repeat(64));
        assert!(accounts.find_api_key("nope").await.unwrap().is_none());
        accounts.touch_api_key(key.id).await.unwrap();
        let listed = accounts.list_api_keys(owner.user.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        assert!(accounts
            .list_api_keys(other.user.id)
            .await
            .unwrap()
            .is_empty());
        assert!(
            accounts
                .revoke_api_key(other.user.id, key.id)
                .await
                .unwrap()
                .is_none(),
            "only the owner revokes"
        );
        let revoked = accounts
            .revoke_api_key(owner.user.id, key.id)
            .await
            .unwrap()
            .unwrap();
        assert!(revoked.revoked_at.is_some());
    }

    pub async fn audit_log(accounts: Arc<dyn Accounts>) {
        let user = accounts
            .create_user(new_user("audit@example.com"), false, false)
            .await
            .unwrap();
        let id = user.user.id;
        for event in ["login.failed", "login.succeeded", "apikey.created"] {
            accounts
                .record_audit(NewAuditEvent {
                    event: event.into(),
                    user_id: Some(id),
                    ip: Some("192.0.2.1".into()),
                    user_agent: Some("test".into()),
                    detail: serde_json::json!({"n": event}),
                    ..NewAuditEvent::default()
                })
                .await
                .unwrap();
        }
        accounts
            .record_audit(NewAuditEvent {
                event: "login.failed".into(),
                detail: serde_json::json!({"email": "nobody@example.com"}),
                ..NewAuditEvent::default()
            })
            .await
            .unwrap();
        let mine = accounts
            .list_audit(AuditQuery {
                user_id: Some(id),
                limit: 2,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let events: Vec<&str> = mine
            .items
            .iter()
            .map(|event| event.event.as_str())
            .collect();
        assert_eq!(
            events,
            ["apikey.created", "login.succeeded"],
            "newest first"
        );
        assert_eq!(mine.items[0].ip.as_deref(), Some("192.0.2.1"));
        let older = accounts
            .list_audit(AuditQuery {
                user_id: Some(id),
                before: mine.next_cursor.clone(),
                limit: 2,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(older.items.len(), 1);
        assert!(older.next_cursor.is_none());
        let failed = accounts
            .list_audit(AuditQuery {
                event: Some("login.failed".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.items.len(), 2);
    }

    pub async fn signing_keys(accounts: Arc<dyn Accounts>) {
        for (kid, at) in [("k1", 1000), ("k2", 2000), ("k3", 3000)] {
            accounts
                .add_signing_key(&StoredSigningKey {
                    kid: kid.into(),
                    private_key: format!("private-{kid}"),
                    public_key: format!("public-{kid}"),
                    created_at_ms: at,
                })
                .await
                .unwrap();
        }
        let kids: Vec<String> = accounts
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|key| key.kid)
            .collect();
        assert_eq!(kids, ["k3", "k2", "k1"]);
        assert_eq!(accounts.delete_signing_keys_before(2500).await.unwrap(), 2);
        assert_eq!(
            accounts.delete_signing_keys_before(i64::MAX).await.unwrap(),
            0,
            "the newest stays"
        );
        assert_eq!(accounts.signing_keys().await.unwrap().len(), 1);
    }

    pub async fn ownership_usage_and_erasure(store: Arc<dyn Store>, accounts: Arc<dyn Accounts>) {
        let alice = accounts
            .create_user(new_user("alice@example.com"), false, false)
            .await
            .unwrap();
        let bob = accounts
            .create_user(new_user("bob@example.com"), false, false)
            .await
            .unwrap();
        let mut owned = Vec::new();
        for owner in [alice.user.id, alice.user.id, bob.user.id] {
            let mut video = sample_video("owned.mp4");
            video.owner_id = Some(owner);
            let (video, _) = store.create_video(video, 3).await.unwrap();
            owned.push(video);
        }
        assert_eq!(owned[0].owner_id, Some(alice.user.id));
        let listed = store
            .list_videos(Some(alice.user.id), None, 10)
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 2);
        assert!(listed
            .items
            .iter()
            .all(|video| video.owner_id == Some(alice.user.id)));
        assert_eq!(
            store.list_videos(None, None, 10).await.unwrap().items.len(),
            3
        );

        let period = crate::accounts::period_of(crate::rows::now_ms());
        let usage = accounts.usage(alice.user.id, &period).await.unwrap();
        assert_eq!(usage.storage_bytes, 2 * 1234);
        assert_eq!(usage.videos, 2);
        assert_eq!(
            usage.analysis_ms,
            2 * 10_000,
            "each upload charges its duration"
        );
        assert_eq!(
            accounts
                .usage(alice.user.id, "1999-01")
                .await
                .unwrap()
                .analysis_ms,
            0
        );

        // a re-run is charged again; deleting the video does not refund it
        let queue_free = store.delete_video(owned[1].id).await.unwrap();
        assert!(queue_free);
        let usage = accounts.usage(alice.user.id, &period).await.unwrap();
        assert_eq!(usage.storage_bytes, 1234);
        assert_eq!(usage.analysis_ms, 2 * 10_000);

        accounts
            .record_audit(NewAuditEvent {
                event: "login.succeeded".into(),
                user_id: Some(alice.user.id),
                ..NewAuditEvent::default()
            })
            .await
            .unwrap();
        let erased = accounts.delete_user(alice.user.id).await.unwrap().unwrap();
        assert_eq!(
            erased.len(),
            1,
            "the video left (the other was deleted before)"
        );
        assert_eq!(erased[0], owned[0].id);
        assert!(accounts.delete_user(alice.user.id).await.unwrap().is_none());
        assert!(accounts.get_user(alice.user.id).await.unwrap().is_none());
        assert!(
            store.get_video(owned[0].id).await.unwrap().is_none(),
            "videos go too"
        );
        assert!(accounts
            .list_audit(AuditQuery {
                user_id: Some(alice.user.id),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            accounts.usage(alice.user.id, &period).await.unwrap(),
            Usage {
                period: period.clone(),
                ..Usage::default()
            }
        );
        assert!(
            store.get_video(owned[2].id).await.unwrap().is_some(),
            "bob's stays"
        );

        // what an erased administrator did to others stays, without naming them
        let carol = accounts
            .create_user(new_user("carol@example.com"), false, false)
            .await
            .unwrap();
        accounts
            .record_audit(NewAuditEvent {
                event: "user.disabled".into(),
                user_id: Some(bob.user.id),
                actor_id: Some(carol.user.id),
                ..NewAuditEvent::default()
            })
            .await
            .unwrap();
        accounts.delete_user(carol.user.id).await.unwrap().unwrap();
        let about_bob = accounts
            .list_audit(AuditQuery {
                user_id: Some(bob.user.id),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(about_bob.items.len(), 1);
        assert_eq!(about_bob.items[0].actor_id, None);

        // failed sign-ins before an account existed are purged by their digest
        accounts
            .record_audit(NewAuditEvent {
                event: "login.failed".into(),
                detail: serde_json::json!({ "email_sha256": "abc_%def" }),
                ..NewAuditEvent::default()
            })
            .await
            .unwrap();
        assert_eq!(
            accounts.purge_audit_detail("abcx%def").await.unwrap(),
            0,
            "LIKE characters are literal"
        );
        assert_eq!(accounts.purge_audit_detail("abc_%def").await.unwrap(), 1);
        assert_eq!(accounts.purge_audit_detail("abc_%def").await.unwrap(), 0);
    }
}

/// Resumable-upload state (on the [`Store`], owned by an account).
pub mod uploads {
    use super::*;

    pub async fn offsets_advance_once_and_uploads_expire(
        store: Arc<dyn Store>,
        accounts: Arc<dyn Accounts>,
    ) {
        let owner = accounts
            .create_user(super::accounts::new_user("up@example.com"), false, false)
            .await
            .unwrap();
        let upload = ResumableUpload {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner.user.id,
            length: 100,
            offset: 0,
            filename: "a.mp4".into(),
            metadata: "filename YS5tcDQ=".into(),
            video_id: None,
            created_at_ms: 1_000,
            expires_at_ms: 5_000,
        };
        store.create_upload(&upload).await.unwrap();
        assert_eq!(store.get_upload(&upload.id).await.unwrap().unwrap(), upload);
        assert!(store.advance_upload(&upload.id, 0, 40).await.unwrap());
        assert!(
            !store.advance_upload(&upload.id, 0, 50).await.unwrap(),
            "a stale offset loses"
        );
        assert!(store.advance_upload(&upload.id, 40, 100).await.unwrap());
        let (video, _) = store.create_video(sample_video("a.mp4"), 3).await.unwrap();
        store.finish_upload(&upload.id, video.id).await.unwrap();
        let finished = store.get_upload(&upload.id).await.unwrap().unwrap();
        assert_eq!((finished.offset, finished.video_id), (100, Some(video.id)));
        assert!(
            !store.advance_upload(&upload.id, 100, 100).await.unwrap(),
            "finished"
        );
        assert_eq!(
            store.uploads_of(owner.user.id).await.unwrap(),
            vec![upload.id.clone()]
        );
        assert!(store.expired_uploads(4_999, 10).await.unwrap().is_empty());
        assert_eq!(
            store.expired_uploads(5_001, 10).await.unwrap(),
            vec![upload.id.clone()]
        );
        assert!(store.delete_upload(&upload.id).await.unwrap());
        assert!(store.get_upload(&upload.id).await.unwrap().is_none());
        // an erased account's uploads go with it
        let mut other = upload.clone();
        other.id = uuid::Uuid::now_v7().to_string();
        store.create_upload(&other).await.unwrap();
        accounts.delete_user(owner.user.id).await.unwrap();
        assert!(store.get_upload(&other.id).await.unwrap().is_none());
    }
}

/// Runs the [`Accounts`] suite; `$make` builds a fresh, migrated backend as
/// `(Arc<dyn Store>, Arc<dyn Accounts>)`.
#[macro_export]
macro_rules! accounts_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn accounts_users_and_the_first_admin() {
            let (_store, accounts) = $make.await;
            $crate::conformance::accounts::users_and_the_first_admin(accounts).await;
        }
        #[tokio::test]
        async fn accounts_totp_steps_and_recovery_codes() {
            let (_store, accounts) = $make.await;
            $crate::conformance::accounts::totp_steps_and_recovery_codes(accounts).await;
        }
        #[tokio::test]
        async fn accounts_api_keys() {
            let (_store, accounts) = $make.await;
            $crate::conformance::accounts::api_keys(accounts).await;
        }
        #[tokio::test]
        async fn accounts_audit_log() {
            let (_store, accounts) = $make.await;
            $crate::conformance::accounts::audit_log(accounts).await;
        }
        #[tokio::test]
        async fn accounts_signing_keys() {
            let (_store, accounts) = $make.await;
            $crate::conformance::accounts::signing_keys(accounts).await;
        }
        #[tokio::test]
        async fn uploads_offsets_advance_once_and_uploads_expire() {
            let (store, accounts) = $make.await;
            $crate::conformance::uploads::offsets_advance_once_and_uploads_expire(store, accounts)
                .await;
        }
        #[tokio::test]
        async fn accounts_ownership_usage_and_erasure() {
            let (store, accounts) = $make.await;
            $crate::conformance::accounts::ownership_usage_and_erasure(store, accounts).await;
        }
    };
}
