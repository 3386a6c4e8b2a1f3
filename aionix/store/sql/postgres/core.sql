-- name: ping
SELECT 1 AS ok

-- name: get_meta
SELECT value FROM meta WHERE key = :key

-- name: put_meta
INSERT INTO meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: insert_meta_if_absent
INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING

-- name: count_keys
SELECT count(*) AS n FROM api_keys

-- name: insert_key
INSERT INTO api_keys (id, tenant, name, role, hash, prefix, cross_tenant, created_at, created_by)
VALUES (:id, :tenant, :name, :role, :hash, :prefix, :cross_tenant, :created_at, :created_by)

-- name: key_by_hash
SELECT id, tenant, name, role, hash, prefix, cross_tenant, created_at, created_by, revoked_at
FROM api_keys WHERE hash = :hash

-- name: get_key
SELECT id, tenant, name, role, prefix, cross_tenant, created_at, created_by, revoked_at
FROM api_keys WHERE id = :id AND tenant = :tenant /*tx: FOR UPDATE*/

-- name: list_keys
SELECT id, tenant, name, role, prefix, cross_tenant, created_at, created_by, revoked_at
FROM api_keys
WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR id > :cursor)
ORDER BY id LIMIT :limit

-- name: revoke_key
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND tenant = :tenant AND revoked_at IS NULL

-- name: insert_audit
-- Chained like SQLite's (aionix/iam/audit.py), but PostgreSQL cannot call the server's Python:
-- the store computes :details (PII-masked), :seq, :prev_hash and :hash before running this,
-- reading the chain's head with pg_audit_head (FOR UPDATE: one writer per chain at a time).
INSERT INTO audit (ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash, hash)
VALUES (:ts, :tenant, :key_id, :ip, :method, :path, :action, :resource, :status, :details, :seq, :prev_hash, :hash)

-- name: pg_audit_head
SELECT seq, hash FROM audit_heads WHERE chain = coalesce(:tenant, '') FOR UPDATE

-- name: list_audit
SELECT id, ts, tenant, key_id, ip, method, path, action, resource, status, details
FROM audit
WHERE (tenant = :tenant OR (:include_global = 1 AND tenant IS NULL))
  AND (CAST(:cursor AS BIGINT) IS NULL OR id < :cursor)
  AND (CAST(:action AS TEXT) IS NULL OR action = :action)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR ts >= :since)
ORDER BY id DESC LIMIT :limit

-- name: prune_audit
-- rows from before the chain only; chained rows are pruned by whole days behind a checkpoint
DELETE FROM audit WHERE ts < :before AND hash IS NULL

-- name: get_idempotency
SELECT key_id, tenant, key, method, path, body_hash, state, status, response, media_type, created_at
FROM idempotency WHERE key_id = :key_id AND tenant = :tenant AND key = :key /*tx: FOR UPDATE*/

-- name: reserve_idempotency
INSERT INTO idempotency (key_id, tenant, key, method, path, body_hash, state, created_at)
VALUES (:key_id, :tenant, :key, :method, :path, :body_hash, 'in_flight', :now)

-- name: complete_idempotency
UPDATE idempotency SET state = 'done', status = :status, response = :response, media_type = :media_type
WHERE key_id = :key_id AND tenant = :tenant AND key = :key

-- name: release_idempotency
DELETE FROM idempotency WHERE key_id = :key_id AND tenant = :tenant AND key = :key AND state = 'in_flight'

-- name: prune_idempotency
DELETE FROM idempotency WHERE created_at < :before

-- name: delete_idempotency
DELETE FROM idempotency WHERE key_id = :key_id AND tenant = :tenant AND key = :key

-- name: insert_audit_returning
INSERT INTO audit (ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash, hash)
VALUES (:ts, :tenant, :key_id, :ip, :method, :path, :action, :resource, :status, :details, :seq, :prev_hash, :hash)
RETURNING id

-- name: update_audit_details
UPDATE audit SET details = :details WHERE id = :id

-- name: active_cross_tenant_admins
SELECT id FROM api_keys WHERE cross_tenant = 1 AND role = 'admin' AND revoked_at IS NULL

-- name: get_system_key
SELECT name, master_id, key_nonce, wrapped_key FROM system_keys WHERE name = :name

-- name: insert_system_key
INSERT INTO system_keys (name, master_id, key_nonce, wrapped_key, created_at)
VALUES (:name, :master_id, :key_nonce, :wrapped_key, :now)
ON CONFLICT (name) DO NOTHING

-- name: all_system_keys
SELECT name, master_id, key_nonce, wrapped_key FROM system_keys

-- name: rewrap_system_key
UPDATE system_keys SET master_id = :master_id, key_nonce = :key_nonce, wrapped_key = :wrapped_key
WHERE name = :name

-- name: pg_insert_audit_after
-- an audit row after the head of its chain the writer wrote last (aionix/store/postgres.py): the
-- head row is locked only while it is still (:prev_seq, :prev_hash); nothing is inserted otherwise
WITH head AS (
  SELECT chain FROM audit_heads
  WHERE chain = coalesce(:tenant, '') AND seq = :prev_seq AND hash = :prev_hash /*tx: FOR UPDATE*/)
INSERT INTO audit (ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash, hash)
SELECT :ts, :tenant, :key_id, :ip, :method, :path, :action, :resource, :status, :details, :seq, :prev_hash, :hash
FROM head
RETURNING id
