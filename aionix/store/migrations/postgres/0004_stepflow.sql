-- StepFlow: workflow templates (immutable versions), executions, their history, timers and
-- callback task tokens.
CREATE TABLE sf_templates (
    tenant         TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    latest_version BIGINT NOT NULL,
    description    TEXT COLLATE "C",
    created_at     DOUBLE PRECISION NOT NULL,
    updated_at     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE sf_template_versions (
    tenant      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    definition  TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, name, version)
);

CREATE TABLE sf_executions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    tenant          TEXT COLLATE "C" NOT NULL,
    workflow        TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL,
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED')),
    input           TEXT COLLATE "C",
    output          TEXT COLLATE "C",
    error           TEXT COLLATE "C",
    started_at      DOUBLE PRECISION NOT NULL,
    stopped_at      DOUBLE PRECISION,
    deadline        DOUBLE PRECISION,
    trace_id        TEXT COLLATE "C",
    redrive_count   BIGINT NOT NULL DEFAULT 0,
    snapshot        TEXT COLLATE "C" NOT NULL,
    next_seq        BIGINT NOT NULL,
    parent_id       TEXT COLLATE "C",
    idempotency_key TEXT COLLATE "C"
);
CREATE INDEX sf_executions_list ON sf_executions (tenant, started_at, id);
CREATE INDEX sf_executions_workflow ON sf_executions (tenant, workflow, started_at);
CREATE INDEX sf_executions_running ON sf_executions (status) WHERE status = 'RUNNING';
CREATE INDEX sf_executions_parent ON sf_executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX sf_executions_idem ON sf_executions (tenant, workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE sf_history (
    execution_id TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    ts           DOUBLE PRECISION NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    state        TEXT COLLATE "C",
    frame        TEXT COLLATE "C",
    detail       TEXT COLLATE "C",
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE sf_timers (
    execution_id TEXT COLLATE "C" NOT NULL,
    frame        TEXT COLLATE "C" NOT NULL,
    tenant       TEXT COLLATE "C" NOT NULL,
    due_at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (execution_id, frame)
);
CREATE INDEX sf_timers_due ON sf_timers (due_at);

CREATE TABLE sf_tokens (
    token        TEXT COLLATE "C" PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL,
    tenant       TEXT COLLATE "C" NOT NULL,
    frame        TEXT COLLATE "C" NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    status       TEXT COLLATE "C",
    output       TEXT COLLATE "C",
    error        TEXT COLLATE "C",
    cause        TEXT COLLATE "C",
    settled_at   DOUBLE PRECISION
);
CREATE INDEX sf_tokens_execution ON sf_tokens (execution_id);
