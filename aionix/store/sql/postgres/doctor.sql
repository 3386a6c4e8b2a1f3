-- name: last_writes
-- the newest row of each busy table, found through its key or an index (no table scans)
SELECT
    (SELECT ts FROM audit ORDER BY id DESC LIMIT 1) AS audit,
    (SELECT started_at FROM sf_executions ORDER BY started_at DESC LIMIT 1) AS executions,
    (SELECT updated_at FROM trigger_fires ORDER BY id DESC LIMIT 1) AS trigger_fires,
    (SELECT max(created_at) FROM trigger_events) AS trigger_events,
    (SELECT started_at FROM function_invocations ORDER BY started_at DESC LIMIT 1) AS invocations

-- name: running_executions
SELECT id, tenant, workflow, version, started_at, owner FROM sf_executions
WHERE status = 'RUNNING' AND (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)
ORDER BY started_at LIMIT :limit

-- name: trigger_targets
SELECT id, tenant, name, kind, target, enabled FROM triggers
WHERE (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)
ORDER BY tenant, name

-- name: outbox
SELECT count(*) AS pending, min(coalesce(next_attempt_at, created_at)) AS oldest_due
FROM trigger_fires WHERE status = 'pending' AND (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)

-- name: function_configs
SELECT tenant, name, '$LATEST' AS version, runtime, config FROM functions
WHERE (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)
UNION ALL
SELECT tenant, name, CAST(version AS TEXT) AS version, runtime, config FROM function_versions
WHERE (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)
