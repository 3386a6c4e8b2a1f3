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
FROM api_keys WHERE id = :id AND tenant = :tenant

-- name: list_keys
SELECT id, tenant, name, role, prefix, cross_tenant, created_at, created_by, revoked_at
FROM api_keys
WHERE tenant = :tenant AND (:cursor IS NULL OR id > :cursor)
ORDER BY id LIMIT :limit

-- name: revoke_key
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND tenant = :tenant AND revoked_at IS NULL

-- name: insert_audit
INSERT INTO audit (ts, tenant, key_id, ip, method, path, action, resource, status, details)
VALUES (:ts, :tenant, :key_id, :ip, :method, :path, :action, :resource, :status, :details)

-- name: list_audit
SELECT id, ts, tenant, key_id, ip, method, path, action, resource, status, details
FROM audit
WHERE (tenant = :tenant OR (:include_global = 1 AND tenant IS NULL))
  AND (:cursor IS NULL OR id < :cursor)
  AND (:action IS NULL OR action = :action)
  AND (:since IS NULL OR ts >= :since)
ORDER BY id DESC LIMIT :limit

-- name: prune_audit
DELETE FROM audit WHERE ts < :before

-- name: get_idempotency
SELECT tenant, key, method, path, body_hash, state, status, response, media_type, created_at
FROM idempotency WHERE tenant = :tenant AND key = :key

-- name: reserve_idempotency
INSERT INTO idempotency (tenant, key, method, path, body_hash, state, created_at)
VALUES (:tenant, :key, :method, :path, :body_hash, 'in_flight', :now)

-- name: complete_idempotency
UPDATE idempotency SET state = 'done', status = :status, response = :response, media_type = :media_type
WHERE tenant = :tenant AND key = :key

-- name: release_idempotency
DELETE FROM idempotency WHERE tenant = :tenant AND key = :key AND state = 'in_flight'

-- name: prune_idempotency
DELETE FROM idempotency WHERE created_at < :before

-- name: delete_idempotency
DELETE FROM idempotency WHERE tenant = :tenant AND key = :key
