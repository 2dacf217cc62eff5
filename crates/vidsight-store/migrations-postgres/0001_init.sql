-- videos, their analyses, and the durable job queue (which doubles as the outbox once a
-- message broker carries the jobs). Times are Unix milliseconds.
CREATE TABLE videos (
    id                 TEXT PRIMARY KEY NOT NULL,   -- UUIDv7: ordering by id is ordering by time
    filename           TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    size_bytes         BIGINT NOT NULL,
    sha256             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('uploaded', 'processing', 'ready', 'failed')),
    progress           BIGINT NOT NULL DEFAULT 0,
    error_code         TEXT,
    error_message      TEXT,
    media_json         TEXT NOT NULL,
    latest_analysis_id TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE analyses (
    id            TEXT PRIMARY KEY NOT NULL,
    video_id      TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress      BIGINT NOT NULL DEFAULT 0,
    attempts      BIGINT NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    insights_json TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT
);
CREATE INDEX analyses_by_video ON analyses (video_id, id);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    payload_json TEXT NOT NULL,
    unique_key   TEXT,
    video_id     TEXT REFERENCES videos (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('ready', 'running', 'done', 'dead')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_token  TEXT,
    lease_until  BIGINT,
    worker_id    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
-- one active job per unique key: a video is never analysed twice at once
CREATE UNIQUE INDEX jobs_active_unique ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('ready', 'running');
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_leases ON jobs (state, lease_until);
