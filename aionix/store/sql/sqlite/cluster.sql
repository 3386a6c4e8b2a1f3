-- Nodes and leases (aionix/cluster.py). SQLite serves one node: its clock is the node's
-- (`unixepoch` with milliseconds, from julianday).

-- name: clock
SELECT (julianday('now') - 2440587.5) * 86400.0 AS now

-- name: register_node
INSERT INTO nodes (id, version, host, pid, url, started_at, heartbeat_at, stopped_at, load)
VALUES (:id, :version, :host, :pid, :url, ((julianday('now') - 2440587.5) * 86400.0), ((julianday('now') - 2440587.5) * 86400.0), NULL, :load)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, host = excluded.host, pid = excluded.pid,
    url = excluded.url, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
    stopped_at = NULL, load = excluded.load

-- name: get_node
SELECT id, host, pid, stopped_at,
       CASE WHEN stopped_at IS NULL AND heartbeat_at >= ((julianday('now') - 2440587.5) * 86400.0) - :lease THEN 1 ELSE 0 END AS live
FROM nodes WHERE id = :id

-- name: heartbeat
UPDATE nodes SET heartbeat_at = ((julianday('now') - 2440587.5) * 86400.0), load = :load, url = :url WHERE id = :id AND stopped_at IS NULL

-- name: stop_node
UPDATE nodes SET stopped_at = ((julianday('now') - 2440587.5) * 86400.0), heartbeat_at = 0 WHERE id = :id

-- name: list_nodes
SELECT id, version, host, pid, url, started_at, heartbeat_at, stopped_at, load, ((julianday('now') - 2440587.5) * 86400.0) AS now,
       CASE WHEN stopped_at IS NULL AND heartbeat_at >= ((julianday('now') - 2440587.5) * 86400.0) - :lease THEN 1 ELSE 0 END AS live
FROM nodes WHERE stopped_at IS NULL OR stopped_at >= ((julianday('now') - 2440587.5) * 86400.0) - 86400
ORDER BY started_at, id

-- name: prune_nodes
DELETE FROM nodes WHERE heartbeat_at < ((julianday('now') - 2440587.5) * 86400.0) - :keep AND (stopped_at IS NOT NULL OR heartbeat_at < ((julianday('now') - 2440587.5) * 86400.0) - :keep)

-- name: notify
SELECT :payload AS payload
