-- Named queries of the triggers service (Igniter).

-- name: insert_trigger
INSERT INTO triggers (id, tenant, name, kind, target, input, description, enabled, config, retry, credentials,
                      next_fire_at, next_run_at, version, created_at, updated_at)
VALUES (:id, :tenant, :name, :kind, :target, :input, :description, :enabled, :config, :retry, :credentials,
        :next_fire_at, :next_run_at, 1, :now, :now)

-- name: get_trigger
SELECT * FROM triggers WHERE tenant = :tenant AND name = :name

-- name: get_trigger_by_id
SELECT * FROM triggers WHERE id = :id

-- name: list_triggers
SELECT * FROM triggers
WHERE tenant = :tenant AND (:kind IS NULL OR kind = :kind) AND (:cursor IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: update_trigger
UPDATE triggers
SET target = :target, input = :input, description = :description, enabled = :enabled, config = :config,
    retry = :retry, credentials = :credentials, next_fire_at = :next_fire_at, next_run_at = :next_run_at,
    version = version + 1, updated_at = :now
WHERE id = :id AND version = :version

-- name: set_credentials
UPDATE triggers SET credentials = :credentials, version = version + 1, updated_at = :now
WHERE id = :id AND version = :version

-- name: set_enabled
UPDATE triggers SET enabled = :enabled, next_fire_at = :next_fire_at, next_run_at = :next_run_at,
    version = version + 1, updated_at = :now
WHERE id = :id AND version = :version

-- name: delete_trigger
DELETE FROM triggers WHERE id = :id

-- name: due_schedules
SELECT * FROM triggers
WHERE next_run_at IS NOT NULL AND enabled = 1 AND next_run_at <= :now
ORDER BY next_run_at LIMIT :limit

-- name: next_run
SELECT min(next_run_at) AS at FROM triggers WHERE next_run_at IS NOT NULL AND enabled = 1

-- name: advance_schedule
UPDATE triggers SET next_fire_at = :next_fire_at, next_run_at = :next_run_at,
    fire_count = fire_count + :fired, last_fired_at = coalesce(:last_fired_at, last_fired_at)
WHERE id = :id AND enabled = 1 AND next_fire_at = :expected

-- name: count_fired
UPDATE triggers SET fire_count = fire_count + 1, last_fired_at = :now WHERE id = :id

-- name: event_triggers
SELECT * FROM triggers WHERE tenant = :tenant AND kind = 'event' AND enabled = 1

-- name: insert_event
INSERT INTO trigger_events (id, tenant, source, type, detail, matched, created_at)
VALUES (:id, :tenant, :source, :type, :detail, :matched, :now)

-- name: insert_fire
INSERT INTO trigger_fires (tenant, trigger_id, fire_key, origin, due_at, payload, payload_digest, status, attempts,
                           next_attempt_at, claimed_at, error, cause, created_at, updated_at, trace_id, claimed_by)
VALUES (:tenant, :trigger_id, :fire_key, :origin, :due_at, :payload, :payload_digest, :status, 0,
        :next_attempt_at, :claimed_at, :error, :cause, :now, :now, :trace_id, :claimed_by)
ON CONFLICT (trigger_id, fire_key) DO NOTHING
RETURNING id

-- name: get_fire
SELECT * FROM trigger_fires WHERE id = :id

-- name: pending_fires
-- Fires due for an attempt that no live node holds: unclaimed, this node's own claims older than
-- [triggers] claim_lease_seconds (none of its deliveries holds them any more), and the claims of
-- a node whose heartbeat is older than [cluster] lease_seconds (dead or stopped: in the
-- database's clock). Inside the claim transaction the rows are locked, skipping those another
-- node is claiming (PostgreSQL), so two nodes never claim the same fire.
SELECT f.*, t.name AS trigger_name, t.target, t.input, t.retry, t.kind, t.enabled
FROM trigger_fires f JOIN triggers t ON t.id = f.trigger_id
WHERE f.status = 'pending' AND f.next_attempt_at <= :now
  AND (f.claimed_at IS NULL
       OR (f.claimed_at < :stale AND (f.claimed_by IS NULL OR f.claimed_by = :node))
       OR (f.claimed_by <> :node AND NOT EXISTS (
           SELECT 1 FROM nodes n WHERE n.id = f.claimed_by AND n.stopped_at IS NULL
             AND n.heartbeat_at >= ((julianday('now') - 2440587.5) * 86400.0) - :node_lease)))
ORDER BY f.next_attempt_at LIMIT :limit

-- name: next_pending
-- When the outbox loop looks again: the next attempt, or when this node's own claim goes stale;
-- while other nodes hold claims, at :others_at (whether their owner lost its lease).
SELECT min(CASE WHEN claimed_at IS NULL THEN next_attempt_at
                WHEN claimed_by IS NULL OR claimed_by = :node THEN max(next_attempt_at, claimed_at + :lease)
                ELSE max(next_attempt_at, :others_at) END) AS at
FROM trigger_fires WHERE status = 'pending'

-- name: claim_fire
UPDATE trigger_fires AS f SET claimed_at = :now, claimed_by = :node
WHERE f.id = :id AND f.status = 'pending' AND (f.claimed_at IS NULL
       OR (f.claimed_at < :stale AND (f.claimed_by IS NULL OR f.claimed_by = :node))
       OR (f.claimed_by <> :node AND NOT EXISTS (
           SELECT 1 FROM nodes n WHERE n.id = f.claimed_by AND n.stopped_at IS NULL
             AND n.heartbeat_at >= ((julianday('now') - 2440587.5) * 86400.0) - :node_lease)))

-- name: finish_fire
UPDATE trigger_fires
SET status = :status, attempts = attempts + 1, next_attempt_at = :next_attempt_at, claimed_at = NULL,
    claimed_by = NULL, result_id = :result_id, error = :error, cause = :cause, updated_at = :now
WHERE id = :id AND status = 'pending' AND (claimed_by IS NULL OR claimed_by = :node)

-- name: release_claims
-- A starting (or stopping) node's own claims, and those of no node (made before nodes had ids);
-- never another node's: it may be delivering them right now.
UPDATE trigger_fires SET claimed_at = NULL, claimed_by = NULL
WHERE status = 'pending' AND claimed_at IS NOT NULL AND (claimed_by = :node OR claimed_by IS NULL)

-- name: history
SELECT id, fire_key, origin, due_at, payload_digest, status, attempts, next_attempt_at, result_id, error, cause,
       created_at, updated_at
FROM trigger_fires
WHERE trigger_id = :trigger_id AND (:cursor IS NULL OR id < :cursor) AND (:status IS NULL OR status = :status)
ORDER BY id DESC LIMIT :limit

-- name: prune_fires
DELETE FROM trigger_fires WHERE created_at < :before AND status <> 'pending'

-- name: prune_events
DELETE FROM trigger_events WHERE created_at < :before

-- name: event_tenants
SELECT DISTINCT tenant FROM triggers WHERE kind = 'event' AND enabled = 1

-- name: webhook_credentials
SELECT id, tenant, name, credentials FROM triggers WHERE kind = 'webhook' AND credentials IS NOT NULL

-- name: reseal_credentials
UPDATE triggers SET credentials = :credentials WHERE id = :id AND credentials = :old
