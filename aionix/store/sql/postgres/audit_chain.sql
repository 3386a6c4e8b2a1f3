-- name: heads
SELECT chain, seq, hash, id FROM audit_heads ORDER BY chain

-- name: last_checkpoint
SELECT id, seq, details FROM audit
WHERE coalesce(tenant, '') = :chain AND action = :action AND seq IS NOT NULL
ORDER BY seq DESC LIMIT 1

-- name: checkpoint_before
SELECT id, seq, details FROM audit
WHERE coalesce(tenant, '') = :chain AND action = :action AND seq IS NOT NULL AND ts < :before
ORDER BY seq DESC LIMIT 1

-- name: delete_through
DELETE FROM audit WHERE coalesce(tenant, '') = :chain AND seq IS NOT NULL AND seq <= :seq

-- name: page
SELECT id, ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash, hash
FROM audit
WHERE coalesce(tenant, '') = :chain AND seq > :after
ORDER BY seq LIMIT :limit

-- name: row_by_seq
SELECT id, seq, hash FROM audit WHERE coalesce(tenant, '') = :chain AND seq = :seq

-- name: count_unchained
SELECT count(*) AS n FROM audit WHERE hash IS NULL

-- name: export_page
SELECT id, ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash, hash
FROM audit
WHERE (:all = 1 OR tenant = :tenant)
  AND (CAST(:since AS DOUBLE PRECISION) IS NULL OR ts >= :since)
  AND (CAST(:until AS DOUBLE PRECISION) IS NULL OR ts < :until)
  AND id > :after
ORDER BY id LIMIT :limit

-- name: last_before
SELECT seq, hash, ts FROM audit
WHERE coalesce(tenant, '') = :chain AND seq IS NOT NULL AND ts < :before
ORDER BY seq DESC LIMIT 1
