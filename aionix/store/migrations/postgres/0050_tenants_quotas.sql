-- Tenants (governance, issue 22 part 3): their status (a suspended tenant's keys and triggers
-- stop; nothing is deleted) and per-tenant quota overrides (JSON; absent keys take the defaults
-- of [quotas] in config.toml). A tenant known only from its keys is active with the defaults.
CREATE TABLE tenants (
    name         TEXT COLLATE "C" PRIMARY KEY,
    status       TEXT COLLATE "C" NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    quotas       TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    created_at   DOUBLE PRECISION NOT NULL,
    created_by   TEXT COLLATE "C",
    suspended_at DOUBLE PRECISION,
    updated_at   DOUBLE PRECISION NOT NULL
);

INSERT INTO tenants (name, created_at, updated_at)
SELECT tenant, min(created_at), min(created_at) FROM api_keys GROUP BY tenant;

-- Quota counters: one row per tenant, quota and period (the period's start in Unix seconds;
-- 0 for a quota without one). Charged with `UPDATE … WHERE used + n <= limit` in the
-- transaction of what uses it, so concurrent requests never overshoot a limit.
CREATE TABLE quota_usage (
    tenant  TEXT COLLATE "C" NOT NULL,
    quota   TEXT COLLATE "C" NOT NULL,
    period  BIGINT NOT NULL,
    used    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, quota, period)
);

-- The concurrent-executions quota counts a tenant's RUNNING executions in the start transaction.
CREATE INDEX sf_executions_tenant_running ON sf_executions (tenant) WHERE status = 'RUNNING';
