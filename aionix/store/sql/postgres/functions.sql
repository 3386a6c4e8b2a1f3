-- name: insert_function
INSERT INTO functions (tenant, name, runtime, handler, description, config, code, code_sha256, latest_version, created_at, updated_at)
VALUES (:tenant, :name, :runtime, :handler, :description, :config, :code, :code_sha256, NULL, :now, :now)

-- name: update_latest
UPDATE functions SET handler = :handler, description = :description, config = :config, code = :code,
       code_sha256 = :code_sha256, updated_at = :now
WHERE tenant = :tenant AND name = :name

-- name: set_latest_version
UPDATE functions SET latest_version = :version, updated_at = :now WHERE tenant = :tenant AND name = :name

-- name: get_function
SELECT tenant, name, runtime, handler, description, config, code, code_sha256, latest_version, created_at, updated_at
FROM functions WHERE tenant = :tenant AND name = :name /*tx: FOR UPDATE*/

-- name: get_function_meta
SELECT tenant, name, runtime, handler, description, config, code_sha256, length(code) AS code_size, latest_version, created_at, updated_at
FROM functions WHERE tenant = :tenant AND name = :name

-- name: list_functions
SELECT name, runtime, description, latest_version, updated_at
FROM functions WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: delete_function
DELETE FROM functions WHERE tenant = :tenant AND name = :name

-- name: delete_versions
DELETE FROM function_versions WHERE tenant = :tenant AND name = :name

-- name: delete_aliases
DELETE FROM function_aliases WHERE tenant = :tenant AND name = :name

-- name: insert_version
INSERT INTO function_versions (tenant, name, version, runtime, handler, description, config, code, code_sha256, sha256, created_at)
VALUES (:tenant, :name, :version, :runtime, :handler, :description, :config, :code, :code_sha256, :sha256, :now)

-- name: get_version
SELECT tenant, name, version, runtime, handler, description, config, code, code_sha256, sha256, created_at
FROM function_versions WHERE tenant = :tenant AND name = :name AND version = :version

-- name: get_version_meta
SELECT name, version, runtime, handler, description, config, code_sha256, sha256, length(code) AS code_size, created_at
FROM function_versions WHERE tenant = :tenant AND name = :name AND version = :version

-- name: last_version
SELECT version, sha256 FROM function_versions WHERE tenant = :tenant AND name = :name ORDER BY version DESC LIMIT 1

-- name: list_versions
SELECT name, version, runtime, handler, description, config, code_sha256, sha256, length(code) AS code_size, created_at
FROM function_versions WHERE tenant = :tenant AND name = :name ORDER BY version

-- name: upsert_alias
INSERT INTO function_aliases (tenant, name, alias, version, routing_version, routing_weight, description, updated_at)
VALUES (:tenant, :name, :alias, :version, :routing_version, :routing_weight, :description, :now)
ON CONFLICT (tenant, name, alias) DO UPDATE SET version = excluded.version, routing_version = excluded.routing_version,
    routing_weight = excluded.routing_weight, description = excluded.description, updated_at = excluded.updated_at

-- name: set_alias_routing
UPDATE function_aliases SET routing_version = :routing_version, routing_weight = :routing_weight, updated_at = :now
WHERE tenant = :tenant AND name = :name AND alias = :alias

-- name: get_alias
SELECT name, alias, version, routing_version, routing_weight, description, updated_at
FROM function_aliases WHERE tenant = :tenant AND name = :name AND alias = :alias

-- name: delete_alias
DELETE FROM function_aliases WHERE tenant = :tenant AND name = :name AND alias = :alias

-- name: list_aliases
SELECT name, alias, version, routing_version, routing_weight, description, updated_at
FROM function_aliases WHERE tenant = :tenant AND name = :name ORDER BY alias

-- name: insert_invocation
INSERT INTO function_invocations (id, tenant, name, version, qualifier, mode, status, result, error, cold_start, duration_ms,
    billed_memory_mb, max_memory_mb, idempotency_key, trace_id, started_at, stopped_at, init_ms, run_ms)
VALUES (:id, :tenant, :name, :version, :qualifier, :mode, :status, :result, :error, :cold_start, :duration_ms,
    :billed_memory_mb, :max_memory_mb, :idempotency_key, :trace_id, :started_at, :stopped_at, :init_ms, :run_ms)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status, result = excluded.result,
    error = excluded.error, cold_start = excluded.cold_start, duration_ms = excluded.duration_ms,
    init_ms = excluded.init_ms, run_ms = excluded.run_ms,
    billed_memory_mb = excluded.billed_memory_mb, max_memory_mb = excluded.max_memory_mb, stopped_at = excluded.stopped_at

-- name: get_invocation
SELECT id, tenant, name, version, qualifier, mode, status, result, error, cold_start, duration_ms, billed_memory_mb,
    max_memory_mb, idempotency_key, trace_id, started_at, stopped_at, init_ms, run_ms, attempts
FROM function_invocations WHERE tenant = :tenant AND name = :name AND id = :id

-- name: list_invocations
SELECT id, tenant, name, version, qualifier, mode, status, result, error, cold_start, duration_ms, billed_memory_mb,
    max_memory_mb, idempotency_key, trace_id, started_at, stopped_at, init_ms, run_ms, attempts
FROM function_invocations WHERE tenant = :tenant AND name = :name AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit

-- name: insert_log
INSERT INTO function_logs (tenant, name, invocation_id, version, ts, stream, message)
VALUES (:tenant, :name, :invocation_id, :version, :ts, :stream, :message)

-- name: list_logs
SELECT id, invocation_id, version, ts, stream, message FROM function_logs
WHERE tenant = :tenant AND name = :name
  AND (CAST(:invocation_id AS TEXT) IS NULL OR invocation_id = :invocation_id)
  AND (CAST(:after AS BIGINT) IS NULL OR id > :after)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR ts >= :since)
ORDER BY id LIMIT :limit

-- name: delete_logs
DELETE FROM function_logs WHERE tenant = :tenant AND name = :name

-- name: delete_invocations
DELETE FROM function_invocations WHERE tenant = :tenant AND name = :name

-- name: prune_logs
DELETE FROM function_logs WHERE ts < :before

-- name: prune_invocations
DELETE FROM function_invocations WHERE started_at < :before AND status <> 'RUNNING'

-- name: insert_async_invocation
-- an accepted async invocation: RUNNING, claimed by the node that accepted it (attempt 1), with
-- what it needs to run again (the event, the caller's context) until it ends
INSERT INTO function_invocations (id, tenant, name, version, qualifier, mode, status, idempotency_key, trace_id,
    started_at, event, context, claimed_by, attempts)
VALUES (:id, :tenant, :name, :version, :qualifier, 'async', 'RUNNING', :idempotency_key, :trace_id,
    :started_at, :event, :context, :node, 1)

-- name: claim_async_invocations
-- take RUNNING async invocations to run them (again): those with no owner (released at a clean
-- stop), this node's own when :own = 1 (a start: the previous life of this node), those of nodes
-- whose heartbeat is older than the lease or that stopped (aionix/cluster.py), or every one when
-- :any = 1 (SQLite: one node). attempts goes up: it is the claim's epoch, and a record is
-- finished only under the claim that ran it.
UPDATE function_invocations SET claimed_by = :node, attempts = attempts + 1
WHERE id IN (
  SELECT i.id FROM function_invocations i LEFT JOIN nodes n ON n.id = i.claimed_by
  WHERE i.status = 'RUNNING' AND i.mode = 'async'
    AND (:any = 1 OR i.claimed_by IS NULL OR (:own = 1 AND i.claimed_by = :node)
         OR (i.claimed_by <> :node AND (n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < extract(epoch from clock_timestamp())::float8 - :lease)))
  ORDER BY i.started_at LIMIT :limit /*tx: FOR UPDATE OF i SKIP LOCKED*/)
RETURNING id, tenant, name, version, qualifier, event, context, idempotency_key, trace_id, started_at, attempts

-- name: finish_async_invocation
-- the outcome of an async invocation, written only under the claim that ran it (a node that lost
-- it cannot overwrite the new owner's result); the stored event is erased
UPDATE function_invocations SET version = :version, status = :status, result = :result, error = :error,
    cold_start = :cold_start, duration_ms = :duration_ms, init_ms = :init_ms, run_ms = :run_ms,
    billed_memory_mb = :billed_memory_mb, max_memory_mb = :max_memory_mb, stopped_at = :stopped_at, event = NULL
WHERE id = :id AND status = 'RUNNING' AND claimed_by = :node AND attempts = :attempt

-- name: release_async_invocation
-- a clean stop gives back the claim of an async invocation it cancelled (and the attempt: it did
-- not fail); any node (this one, restarted) runs it again
UPDATE function_invocations SET claimed_by = NULL, attempts = attempts - 1
WHERE id = :id AND status = 'RUNNING' AND claimed_by = :node AND attempts = :attempt
