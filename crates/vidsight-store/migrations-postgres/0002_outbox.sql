-- When a job was last handed to a message broker (the outbox relay); NULL means it still has
-- to be published. Reset to NULL whenever a job becomes ready again.
ALTER TABLE jobs ADD COLUMN published_at BIGINT;
CREATE INDEX jobs_outbox ON jobs (state, published_at);
