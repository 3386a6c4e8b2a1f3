-- Igniter triggers: definitions, the fires table (history and outbox in one), events.
CREATE TABLE triggers (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('schedule', 'webhook', 'event')),
    target        TEXT NOT NULL,
    input         TEXT,
    description   TEXT NOT NULL DEFAULT '',
    enabled       INTEGER NOT NULL DEFAULT 1,
    config        TEXT NOT NULL,
    retry         TEXT NOT NULL,
    credentials   TEXT,
    next_fire_at  REAL,
    next_run_at   REAL,
    version       INTEGER NOT NULL DEFAULT 1,
    fire_count    INTEGER NOT NULL DEFAULT 0,
    last_fired_at REAL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (tenant, name)
) STRICT;
CREATE INDEX triggers_due ON triggers (next_run_at) WHERE next_run_at IS NOT NULL AND enabled = 1;
CREATE INDEX triggers_kind ON triggers (tenant, kind, enabled);

-- One row per firing (a schedule due time, a webhook delivery, an event match), per rejected
-- webhook attempt and per run of skipped due times. `fire_key` is the due time, the webhook id
-- or the event id: UNIQUE, so a firing is recorded exactly once. Rows with status 'pending'
-- are the outbox: delivered, retried with backoff, then 'dead'.
CREATE TABLE trigger_fires (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT NOT NULL,
    trigger_id      TEXT NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    fire_key        TEXT NOT NULL,
    origin          TEXT NOT NULL,
    due_at          REAL,
    payload         TEXT,
    payload_digest  TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'rejected', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    claimed_at      REAL,
    result_id       TEXT,
    error           TEXT,
    cause           TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    UNIQUE (trigger_id, fire_key)
) STRICT;
CREATE INDEX trigger_fires_history ON trigger_fires (trigger_id, id);
CREATE INDEX trigger_fires_outbox ON trigger_fires (next_attempt_at) WHERE status = 'pending';
CREATE INDEX trigger_fires_age ON trigger_fires (created_at);

CREATE TABLE trigger_events (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    source     TEXT NOT NULL,
    type       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    matched    INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
) STRICT;
CREATE INDEX trigger_events_age ON trigger_events (created_at);
