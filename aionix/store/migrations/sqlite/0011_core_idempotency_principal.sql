-- Idempotency records belong to the API key that made the request (a record is never replayed
-- to another principal), and their stored answer is sealed under a system key (it may carry a
-- secret: a new API key, a webhook secret). Earlier records were kept in plaintext per tenant:
-- they are dropped (a retry within their 24 h runs again instead of replaying).
DROP TABLE idempotency;
CREATE TABLE idempotency (
    key_id     TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    status     INTEGER,
    response   BLOB,
    media_type TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (key_id, tenant, key)
) STRICT;
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Platform data keys (256 bits each), wrapped by the vault's master key like a secret
-- version's data key; a master key rotation re-wraps them in its transaction. They seal what
-- the platform itself keeps secret: webhook secrets, idempotent answers.
CREATE TABLE system_keys (
    name        TEXT PRIMARY KEY,
    master_id   TEXT NOT NULL,
    key_nonce   BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_at  REAL NOT NULL
) STRICT;
