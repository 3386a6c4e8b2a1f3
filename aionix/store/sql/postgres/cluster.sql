-- Nodes and leases (aionix/cluster.py). Every lease time is in the database's clock
-- (clock_timestamp()), so the nodes' own clocks need not agree.

-- name: clock
SELECT extract(epoch from clock_timestamp())::float8 AS now

-- name: register_node
INSERT INTO nodes (id, version, host, pid, url, started_at, heartbeat_at, stopped_at, load)
VALUES (:id, :version, :host, :pid, :url, extract(epoch from clock_timestamp()),
        extract(epoch from clock_timestamp()), NULL, :load)
ON CONFLICT (id) DO UPDATE SET version = excluded.version, host = excluded.host, pid = excluded.pid,
    url = excluded.url, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
    stopped_at = NULL, load = excluded.load

-- name: get_node
SELECT id, host, pid, stopped_at,
       CASE WHEN stopped_at IS NULL AND heartbeat_at >= extract(epoch from clock_timestamp()) - :lease THEN 1 ELSE 0 END AS live
FROM nodes WHERE id = :id

-- name: heartbeat
UPDATE nodes SET heartbeat_at = extract(epoch from clock_timestamp()), load = :load, url = :url
WHERE id = :id AND stopped_at IS NULL

-- name: stop_node
UPDATE nodes SET stopped_at = extract(epoch from clock_timestamp()), heartbeat_at = 0 WHERE id = :id

-- name: list_nodes
SELECT id, version, host, pid, url, started_at, heartbeat_at, stopped_at, load,
       extract(epoch from clock_timestamp())::float8 AS now,
       CASE WHEN stopped_at IS NULL AND heartbeat_at >= extract(epoch from clock_timestamp()) - :lease
            THEN 1 ELSE 0 END AS live
FROM nodes WHERE stopped_at IS NULL OR stopped_at >= extract(epoch from clock_timestamp()) - 86400
ORDER BY started_at, id

-- name: prune_nodes
DELETE FROM nodes WHERE heartbeat_at < extract(epoch from clock_timestamp()) - :keep

-- name: notify
SELECT pg_notify('aionix_cluster', :payload) AS payload
