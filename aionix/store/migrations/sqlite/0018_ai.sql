-- AI tasks: policy versions, tasks, router decisions, the usage ledger, per-tenant budgets.
CREATE TABLE ai_policy_versions (
    version    INTEGER PRIMARY KEY,
    digest     TEXT NOT NULL,
    texts      TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    created_by TEXT
) STRICT;

CREATE TABLE ai_tasks (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    key_id     TEXT,
    intent     TEXT NOT NULL,
    status     TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) STRICT;
CREATE INDEX ai_tasks_tenant ON ai_tasks (tenant, id);

CREATE TABLE ai_decisions (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    intent         TEXT NOT NULL,
    route          TEXT NOT NULL,
    tier           TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    chosen_by      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    created_at     REAL NOT NULL
) STRICT;
CREATE INDEX ai_decisions_tenant ON ai_decisions (tenant, seq);

CREATE TABLE ai_usage (
    task_id      TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    key_id       TEXT,
    intent       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    tokens_in    INTEGER NOT NULL,
    tokens_out   INTEGER NOT NULL,
    cost_usd     REAL NOT NULL,
    latency_ms   REAL NOT NULL,
    day          TEXT NOT NULL,
    month        TEXT NOT NULL,
    execution_id TEXT,
    ts           REAL NOT NULL
) STRICT;
CREATE INDEX ai_usage_tenant_day ON ai_usage (tenant, day);
CREATE INDEX ai_usage_key_day ON ai_usage (key_id, day);
CREATE INDEX ai_usage_execution ON ai_usage (execution_id) WHERE execution_id IS NOT NULL;

CREATE TABLE ai_budgets (
    tenant      TEXT PRIMARY KEY,
    daily_usd   REAL,
    monthly_usd REAL,
    updated_at  REAL NOT NULL
) STRICT;
