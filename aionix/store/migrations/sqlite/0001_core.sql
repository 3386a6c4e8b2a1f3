-- Core tables: instance metadata, API keys, audit trail, idempotency records.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    cross_tenant INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    created_by   TEXT,
    revoked_at   REAL
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    ts       REAL NOT NULL,
    tenant   TEXT,
    key_id   TEXT,
    ip       TEXT,
    method   TEXT,
    path     TEXT,
    action   TEXT NOT NULL,
    resource TEXT,
    status   INTEGER,
    details  TEXT
) STRICT;
CREATE INDEX audit_tenant ON audit (tenant, id);
CREATE INDEX audit_ts ON audit (ts);

CREATE TABLE idempotency (
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
    PRIMARY KEY (tenant, key)
) STRICT;
CREATE INDEX idempotency_created ON idempotency (created_at);
