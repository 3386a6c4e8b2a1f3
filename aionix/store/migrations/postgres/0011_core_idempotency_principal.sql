-- Idempotency records belong to the API key that made the request (a record is never replayed
-- to another principal), and their stored answer is sealed under a system key (it may carry a
-- secret: a new API key, a webhook secret). Earlier records were kept in plaintext per tenant:
-- they are dropped (a retry within their 24 h runs again instead of replaying).
DROP TABLE idempotency;
CREATE TABLE idempotency (
    key_id     TEXT COLLATE "C" NOT NULL,
    tenant     TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    method     TEXT COLLATE "C" NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    body_hash  TEXT COLLATE "C" NOT NULL,
    state      TEXT COLLATE "C" NOT NULL CHECK (state IN ('in_flight', 'done')),
    status     BIGINT,
    response   BYTEA,
    media_type TEXT COLLATE "C",
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key_id, tenant, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Platform data keys (256 bits each), wrapped by the vault's master key like a secret
-- version's data key; a master key rotation re-wraps them in its transaction. They seal what
-- the platform itself keeps secret: webhook secrets, idempotent answers.
CREATE TABLE system_keys (
    name        TEXT COLLATE "C" PRIMARY KEY,
    master_id   TEXT COLLATE "C" NOT NULL,
    key_nonce   BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);
