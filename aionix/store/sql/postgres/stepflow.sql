-- name: get_template
SELECT t.tenant, t.name, t.latest_version AS version, t.description, t.created_at, t.updated_at, v.definition
FROM sf_templates t JOIN sf_template_versions v
  ON v.tenant = t.tenant AND v.name = t.name AND v.version = t.latest_version
WHERE t.tenant = :tenant AND t.name = :name

-- name: get_template_head
SELECT tenant, name, latest_version, description, created_at, updated_at FROM sf_templates
WHERE tenant = :tenant AND name = :name /*tx: FOR UPDATE*/

-- name: get_version
SELECT tenant, name, version, definition, description, created_at FROM sf_template_versions
WHERE tenant = :tenant AND name = :name AND version = :version

-- name: list_templates
SELECT tenant, name, latest_version AS version, description, created_at, updated_at FROM sf_templates
WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: list_versions
SELECT version, created_at, description FROM sf_template_versions
WHERE tenant = :tenant AND name = :name AND (CAST(:cursor AS BIGINT) IS NULL OR version < :cursor)
ORDER BY version DESC LIMIT :limit

-- name: insert_template
INSERT INTO sf_templates (tenant, name, latest_version, description, created_at, updated_at)
VALUES (:tenant, :name, :version, :description, :now, :now)

-- name: bump_template
UPDATE sf_templates SET latest_version = latest_version + 1, description = :description, updated_at = :now
WHERE tenant = :tenant AND name = :name
RETURNING latest_version

-- name: insert_version
INSERT INTO sf_template_versions (tenant, name, version, definition, description, created_at)
VALUES (:tenant, :name, :version, :definition, :description, :now)

-- name: delete_template
DELETE FROM sf_templates WHERE tenant = :tenant AND name = :name

-- name: delete_unused_versions
-- a deleted workflow's versions that no execution ran go for good
DELETE FROM sf_template_versions
WHERE tenant = :tenant AND name = :name AND NOT EXISTS (
  SELECT 1 FROM sf_executions e
  WHERE e.tenant = sf_template_versions.tenant AND e.workflow = :name AND e.version = sf_template_versions.version)

-- name: retire_versions
-- the rest stop being versions of `name` (not listed, not startable) and stay only as the
-- definition their executions ran, under `name#deleted_at`, which no workflow name can match
UPDATE sf_template_versions SET name = :name || '#' || :stamp WHERE tenant = :tenant AND name = :name

-- name: purge_retired_versions
-- retired versions whose executions retention has removed
DELETE FROM sf_template_versions
WHERE tenant = :tenant AND name > :name || '#' AND name < :name || '$' AND NOT EXISTS (
  SELECT 1 FROM sf_executions e
  WHERE e.tenant = sf_template_versions.tenant AND e.workflow = :name AND e.version = sf_template_versions.version)

-- name: execution_definition
-- the definition an execution ran: the live version or a retired one, the newest created before it started
SELECT definition FROM sf_template_versions
WHERE tenant = :tenant AND version = :version
  AND (name = :name OR (name > :name || '#' AND name < :name || '$'))
ORDER BY created_at <= :started_at DESC, created_at DESC LIMIT 1

-- name: running_of_workflow
SELECT count(*) AS n FROM sf_executions WHERE status = 'RUNNING' AND tenant = :tenant AND workflow = :name

-- name: max_version
SELECT max(version) AS v FROM sf_template_versions WHERE tenant = :tenant AND name = :name

-- name: insert_execution
-- the first checkpoint: RUNNING, or already ended (a run that finished before its first durable
-- point). :head, when not NULL: the latest version this node remembered; nothing is inserted
-- unless it still is the template's latest (another node may have written a new one)
INSERT INTO sf_executions (id, tenant, workflow, version, status, input, output, error, started_at, stopped_at, deadline, trace_id, snapshot, next_seq, parent_id, idempotency_key, owner, epoch)
SELECT :id, :tenant, :workflow, :version, :status, :input, :output, :error, :started_at, :stopped_at, :deadline, :trace_id, :snapshot, :next_seq, :parent_id, :idempotency_key, :owner, :epoch
WHERE CAST(:head AS BIGINT) IS NULL
   OR EXISTS (SELECT 1 FROM sf_templates WHERE tenant = :tenant AND name = :workflow AND latest_version = :head)

-- name: execution_by_idempotency
SELECT id FROM sf_executions WHERE tenant = :tenant AND workflow = :workflow AND idempotency_key = :key

-- name: checkpoint_execution
UPDATE sf_executions SET status = :status, output = :output, error = :error, stopped_at = :stopped_at,
  snapshot = :snapshot, next_seq = :next_seq, redrive_count = :redrive_count, deadline = :deadline, owner = :owner
WHERE id = :id AND epoch = :epoch

-- name: insert_event
INSERT INTO sf_history (execution_id, seq, ts, type, state, frame, detail) VALUES (?, ?, ?, ?, ?, ?, ?)

-- name: upsert_timer
INSERT INTO sf_timers (execution_id, frame, tenant, due_at) VALUES (?, ?, ?, ?)
ON CONFLICT (execution_id, frame) DO UPDATE SET due_at = excluded.due_at

-- name: delete_timer
DELETE FROM sf_timers WHERE execution_id = ? AND frame = ?

-- name: delete_timers
DELETE FROM sf_timers WHERE execution_id = :id

-- name: insert_token
INSERT INTO sf_tokens (token, execution_id, tenant, frame, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (token) DO NOTHING

-- name: get_token
SELECT token, execution_id, tenant, frame, created_at, status, output, error, cause, settled_at FROM sf_tokens WHERE token = :token /*tx: FOR UPDATE*/

-- name: settle_token
UPDATE sf_tokens SET status = :status, output = :output, error = :error, cause = :cause, settled_at = :now
WHERE token = :token AND status IS NULL

-- name: get_execution
SELECT id, tenant, workflow, version, status, input, output, error, started_at, stopped_at, deadline, trace_id,
       redrive_count, snapshot, next_seq, parent_id, idempotency_key, owner, epoch
FROM sf_executions WHERE id = :id

-- name: running_executions
SELECT id FROM sf_executions WHERE status = 'RUNNING'

-- name: claim_executions
-- take the lease of RUNNING executions (aionix/cluster.py): those with no owner, those of nodes
-- whose heartbeat is older than the lease (or that stopped), this node's own when :own = 1 (a
-- start: the previous life of this node), or every one when :any = 1 (SQLite: one node). The
-- epoch goes up: a checkpoint written under an older epoch is refused.
UPDATE sf_executions SET owner = :node, epoch = epoch + 1
WHERE id IN (
  SELECT e.id FROM sf_executions e LEFT JOIN nodes n ON n.id = e.owner
  WHERE e.status = 'RUNNING'
    AND (:any = 1 OR e.owner IS NULL OR (:own = 1 AND e.owner = :node)
         OR (e.owner <> :node AND (n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < extract(epoch from clock_timestamp()) - :lease)))
  ORDER BY e.started_at LIMIT :limit /*tx: FOR UPDATE OF e SKIP LOCKED*/)
RETURNING id, epoch

-- name: claim_execution
-- one execution's lease, from the epoch its claimer read (cancel of an execution whose owner is gone)
UPDATE sf_executions SET owner = :node, epoch = epoch + 1
WHERE id = :id AND status = 'RUNNING' AND epoch = :epoch
RETURNING id, epoch

-- name: fence
-- inside a transaction that writes for an execution: it must still hold the lease it claimed
UPDATE sf_executions SET epoch = epoch WHERE id = :id AND epoch = :epoch

-- name: execution_owner
SELECT e.owner, e.epoch, e.status,
       CASE WHEN n.id IS NOT NULL AND n.stopped_at IS NULL AND n.heartbeat_at >= extract(epoch from clock_timestamp()) - :lease THEN 1 ELSE 0 END AS owner_live
FROM sf_executions e LEFT JOIN nodes n ON n.id = e.owner WHERE e.id = :id

-- name: running_children
SELECT id FROM sf_executions WHERE parent_id = :id AND status = 'RUNNING'

-- name: list_executions
SELECT id, tenant, workflow, version, status, input, output, error, started_at, stopped_at, trace_id, redrive_count
FROM sf_executions
WHERE tenant = :tenant
  AND (CAST(:workflow AS TEXT) IS NULL OR workflow = :workflow)
  AND (CAST(:status AS TEXT) IS NULL OR status = :status)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR started_at >= :since)
  AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR started_at < :until)
  AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit

-- name: history
SELECT seq, ts, type, state, frame, detail FROM sf_history
WHERE execution_id = :id AND seq > :after ORDER BY seq LIMIT :limit

-- name: retention_candidates
-- (a child execution stays as long as its parent: a distributed Map's children are its results)
SELECT id FROM sf_executions e
WHERE tenant = :tenant AND workflow = :workflow AND status != 'RUNNING'
  AND (parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM sf_executions p WHERE p.id = e.parent_id))
ORDER BY id DESC LIMIT ALL OFFSET :keep

-- name: workflows_with_executions
SELECT tenant, workflow, count(*) AS n FROM sf_executions WHERE status != 'RUNNING' GROUP BY tenant, workflow

-- name: expired_executions
SELECT id FROM sf_executions e WHERE status != 'RUNNING' AND stopped_at < :before
  AND (parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM sf_executions p WHERE p.id = e.parent_id))
LIMIT :limit

-- name: delete_execution
DELETE FROM sf_executions WHERE id = ?

-- name: delete_history
DELETE FROM sf_history WHERE execution_id = ?

-- name: delete_tokens
DELETE FROM sf_tokens WHERE execution_id = ?
