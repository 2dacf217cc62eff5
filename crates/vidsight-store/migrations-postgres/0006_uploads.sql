-- Resumable uploads (tus 1.0): the state of each; the bytes received so far are objects
-- under uploads/<id>/ in object storage, so any API instance can take the next chunk.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY NOT NULL,
    owner_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    length        BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    filename      TEXT NOT NULL,
    metadata      TEXT NOT NULL,          -- the client's Upload-Metadata, as sent
    video_id      TEXT,                   -- set when the upload became a video
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
CREATE INDEX uploads_owner ON uploads (owner_id);
