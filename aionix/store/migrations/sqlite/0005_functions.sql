-- AionixFn: functions ($LATEST), immutable versions, aliases, invocation records and logs.
CREATE TABLE functions (
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    runtime        TEXT NOT NULL,
    handler        TEXT NOT NULL,
    description    TEXT NOT NULL,
    config         TEXT NOT NULL,
    code           BLOB NOT NULL,
    code_sha256    TEXT NOT NULL,
    latest_version INTEGER,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT;

CREATE TABLE function_versions (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    runtime     TEXT NOT NULL,
    handler     TEXT NOT NULL,
    description TEXT NOT NULL,
    config      TEXT NOT NULL,
    code        BLOB NOT NULL,
    code_sha256 TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (tenant, name, version)
) STRICT;

CREATE TABLE function_aliases (
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    alias          TEXT NOT NULL,
    version        TEXT NOT NULL,
    routing_version TEXT,
    routing_weight REAL,
    description    TEXT NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (tenant, name, alias)
) STRICT;

CREATE TABLE function_invocations (
    id               TEXT PRIMARY KEY,
    tenant           TEXT NOT NULL,
    name             TEXT NOT NULL,
    version          TEXT NOT NULL,
    qualifier        TEXT,
    mode             TEXT NOT NULL,
    status           TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    cold_start       INTEGER,
    duration_ms      REAL,
    billed_memory_mb INTEGER,
    max_memory_mb    REAL,
    idempotency_key  TEXT,
    trace_id         TEXT,
    started_at       REAL NOT NULL,
    stopped_at       REAL
) STRICT;
CREATE INDEX function_invocations_by_name ON function_invocations (tenant, name, started_at);

CREATE TABLE function_logs (
    id            INTEGER PRIMARY KEY,
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    version       TEXT NOT NULL,
    ts            REAL NOT NULL,
    stream        TEXT NOT NULL,
    message       TEXT NOT NULL
) STRICT;
CREATE INDEX function_logs_by_name ON function_logs (tenant, name, id);
CREATE INDEX function_logs_ts ON function_logs (ts);
