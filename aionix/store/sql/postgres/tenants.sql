-- name: get_tenant
SELECT name, status, quotas, created_at, created_by, suspended_at, updated_at FROM tenants WHERE name = :name

-- name: tenant_has_keys
SELECT count(*) AS n, min(created_at) AS created_at FROM api_keys WHERE tenant = :name

-- name: insert_tenant
INSERT INTO tenants (name, status, quotas, created_at, created_by, updated_at)
VALUES (:name, 'active', :quotas, :now, :by, :now)

-- name: ensure_tenant
INSERT INTO tenants (name, status, quotas, created_at, created_by, updated_at)
VALUES (:name, 'active', '{}', :now, :by, :now) ON CONFLICT (name) DO NOTHING

-- name: set_status
UPDATE tenants SET status = :status, suspended_at = :suspended_at, updated_at = :now WHERE name = :name

-- name: set_quotas
UPDATE tenants SET quotas = :quotas, updated_at = :now WHERE name = :name

-- name: list_tenants
SELECT name, status, quotas, created_at, created_by, suspended_at FROM (
    SELECT name, status, quotas, created_at, created_by, suspended_at FROM tenants
    UNION ALL
    SELECT tenant AS name, 'active' AS status, '{}' AS quotas, min(created_at) AS created_at, NULL AS created_by,
           NULL AS suspended_at
    FROM api_keys WHERE tenant NOT IN (SELECT name FROM tenants) GROUP BY tenant
) AS t WHERE (CAST(:cursor AS TEXT) IS NULL OR name > :cursor) ORDER BY name LIMIT :limit

-- name: suspended_tenants
SELECT name FROM tenants WHERE status = 'suspended'

-- name: overrides
SELECT name, quotas FROM tenants WHERE quotas != '{}'

-- name: charge
-- One atomic step: adds :n to the counter when the result stays within :limit (NULL: no
-- limit); no row changed means the quota is used up.
INSERT INTO quota_usage (tenant, quota, period, used)
SELECT :tenant, :quota, :period, CAST(:n AS DOUBLE PRECISION) WHERE CAST(:limit AS DOUBLE PRECISION) IS NULL OR :n <= :limit
ON CONFLICT (tenant, quota, period) DO UPDATE SET used = quota_usage.used + excluded.used
WHERE CAST(:limit AS DOUBLE PRECISION) IS NULL OR quota_usage.used + excluded.used <= :limit

-- name: adjust
INSERT INTO quota_usage (tenant, quota, period, used) VALUES (:tenant, :quota, :period, greatest(CAST(:n AS DOUBLE PRECISION), 0))
ON CONFLICT (tenant, quota, period) DO UPDATE SET used = greatest(quota_usage.used + :n, 0)

-- name: set_used
INSERT INTO quota_usage (tenant, quota, period, used) VALUES (:tenant, :quota, :period, :n)
ON CONFLICT (tenant, quota, period) DO UPDATE SET used = excluded.used

-- name: get_used
SELECT used FROM quota_usage WHERE tenant = :tenant AND quota = :quota AND period = :period /*tx: FOR UPDATE*/

-- name: usage_of
SELECT quota, period, used FROM quota_usage WHERE tenant = :tenant

-- name: current_usage
SELECT tenant, quota, period, used FROM quota_usage WHERE period = 0 OR period >= :since

-- name: prune_usage
DELETE FROM quota_usage WHERE period != 0 AND period < :before

-- name: running_of
SELECT count(*) AS n FROM sf_executions WHERE tenant = :tenant AND status = 'RUNNING'

-- name: running_by_tenant
SELECT tenant, count(*) AS n FROM sf_executions WHERE status = 'RUNNING' GROUP BY tenant

-- name: stored_bytes
-- What each tenant stores: execution records and their histories, function logs, parameter
-- versions and secret versions (sealed), in bytes.
SELECT tenant, sum(n) AS bytes FROM (
    SELECT tenant, sum(length(input) + coalesce(length(output), 0) + coalesce(length(error), 0) + length(snapshot)) AS n
    FROM sf_executions GROUP BY tenant
    UNION ALL
    SELECT e.tenant, sum(coalesce(length(h.detail), 0) + 32) AS n
    FROM sf_history h JOIN sf_executions e ON e.id = h.execution_id GROUP BY e.tenant
    UNION ALL
    SELECT tenant, sum(length(message)) AS n FROM function_logs GROUP BY tenant
    UNION ALL
    SELECT tenant, sum(length(value)) AS n FROM param_versions GROUP BY tenant
    UNION ALL
    SELECT tenant, sum(length(ciphertext)) AS n FROM vault_versions GROUP BY tenant
) AS s GROUP BY tenant
