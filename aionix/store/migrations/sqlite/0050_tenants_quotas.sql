-- Tenants (governance, issue 22 part 3): their status (a suspended tenant's keys and triggers
-- stop; nothing is deleted) and per-tenant quota overrides (JSON; absent keys take the defaults
-- of [quotas] in config.toml). A tenant known only from its keys is active with the defaults.
CREATE TABLE tenants (
    name         TEXT PRIMARY KEY,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    quotas       TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    created_by   TEXT,
    suspended_at REAL,
    updated_at   REAL NOT NULL
) STRICT;

INSERT INTO tenants (name, created_at, updated_at)
SELECT tenant, min(created_at), min(created_at) FROM api_keys GROUP BY tenant;

-- Quota counters: one row per tenant, quota and period (the period's start in Unix seconds;
-- 0 for a quota without one). Charged with `UPDATE … WHERE used + n <= limit` in the
-- transaction of what uses it, so concurrent requests never overshoot a limit.
CREATE TABLE quota_usage (
    tenant  TEXT NOT NULL,
    quota   TEXT NOT NULL,
    period  INTEGER NOT NULL,
    used    REAL NOT NULL,
    PRIMARY KEY (tenant, quota, period)
) STRICT, WITHOUT ROWID;

-- The concurrent-executions quota counts a tenant's RUNNING executions in the start transaction.
CREATE INDEX sf_executions_tenant_running ON sf_executions (tenant) WHERE status = 'RUNNING';
