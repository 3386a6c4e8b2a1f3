-- StepFlow: workflow templates (immutable versions), executions, their history, timers and
-- callback task tokens.
CREATE TABLE sf_templates (
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    latest_version INTEGER NOT NULL,
    description    TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT;

CREATE TABLE sf_template_versions (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    description TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (tenant, name, version)
) STRICT;

CREATE TABLE sf_executions (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    workflow        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED')),
    input           TEXT,
    output          TEXT,
    error           TEXT,
    started_at      REAL NOT NULL,
    stopped_at      REAL,
    deadline        REAL,
    trace_id        TEXT,
    redrive_count   INTEGER NOT NULL DEFAULT 0,
    snapshot        TEXT NOT NULL,
    next_seq        INTEGER NOT NULL,
    parent_id       TEXT,
    idempotency_key TEXT
) STRICT;
CREATE INDEX sf_executions_list ON sf_executions (tenant, started_at, id);
CREATE INDEX sf_executions_workflow ON sf_executions (tenant, workflow, started_at);
CREATE INDEX sf_executions_running ON sf_executions (status) WHERE status = 'RUNNING';
CREATE INDEX sf_executions_parent ON sf_executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX sf_executions_idem ON sf_executions (tenant, workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE sf_history (
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    ts           REAL NOT NULL,
    type         TEXT NOT NULL,
    state        TEXT,
    frame        TEXT,
    detail       TEXT,
    PRIMARY KEY (execution_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE sf_timers (
    execution_id TEXT NOT NULL,
    frame        TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    due_at       REAL NOT NULL,
    PRIMARY KEY (execution_id, frame)
) STRICT, WITHOUT ROWID;
CREATE INDEX sf_timers_due ON sf_timers (due_at);

CREATE TABLE sf_tokens (
    token        TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    frame        TEXT NOT NULL,
    created_at   REAL NOT NULL,
    status       TEXT,
    output       TEXT,
    error        TEXT,
    cause        TEXT,
    settled_at   REAL
) STRICT;
CREATE INDEX sf_tokens_execution ON sf_tokens (execution_id);
