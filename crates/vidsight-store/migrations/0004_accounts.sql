-- Identity and access: accounts, API keys, MFA recovery codes, the audit log, the keys that
-- sign access tokens, and the usage ledger quotas are checked against. Videos get an owner.
-- Booleans are integers (0/1) so both databases run the same statements.
CREATE TABLE users (
    id                      TEXT PRIMARY KEY NOT NULL,
    email                   TEXT NOT NULL UNIQUE,     -- normalised (trimmed, lower-case)
    password_hash           TEXT NOT NULL,            -- argon2id, PHC string
    role                    TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    disabled                INTEGER NOT NULL DEFAULT 0,
    session_epoch           INTEGER NOT NULL DEFAULT 0,  -- bumped to end every session at once
    totp_secret             TEXT,                     -- base32; set at enrollment
    totp_enabled            INTEGER NOT NULL DEFAULT 0,
    totp_last_step          INTEGER,                     -- a code is accepted once
    quota_storage_bytes     INTEGER,                     -- NULL = the configured default
    quota_analysis_minutes  INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,                -- the lookup part, shown in listings
    key_hash     TEXT NOT NULL,                       -- SHA-256 of the whole key
    scopes       TEXT NOT NULL,                       -- comma-separated
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, id);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY NOT NULL,            -- UUIDv7: ordered by time
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    user_id     TEXT,
    actor_id    TEXT,
    ip          TEXT,
    user_agent  TEXT,
    detail_json TEXT NOT NULL
);
CREATE INDEX audit_by_user ON audit_events (user_id, id);
CREATE INDEX audit_by_event ON audit_events (event, id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    private_key TEXT NOT NULL,                        -- PKCS#8 DER, base64
    public_key  TEXT NOT NULL,                        -- raw Ed25519, base64url (JWK x)
    created_at  INTEGER NOT NULL
);

-- Analysis minutes are charged here when an analysis is queued; deleting the video does not
-- give them back.
CREATE TABLE usage_ledger (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period      TEXT NOT NULL,                        -- YYYY-MM (UTC)
    analysis_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, period)
);

ALTER TABLE videos ADD COLUMN owner_id TEXT REFERENCES users (id);
ALTER TABLE videos ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX videos_by_owner ON videos (owner_id, id);
