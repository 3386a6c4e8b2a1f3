-- name: insert_map_run
INSERT INTO sf_map_runs (id, execution_id, tenant, state, cursor, created_at, updated_at)
VALUES (:id, :execution_id, :tenant, :state, :cursor, :now, :now)
ON CONFLICT DO NOTHING

-- name: get_map_run
SELECT * FROM sf_map_runs WHERE id = :id

-- name: advance_map_run
UPDATE sf_map_runs SET cursor = :cursor, next_batch = :next_batch, reader_done = :reader_done, updated_at = :now
WHERE id = :id

-- name: set_map_run_redrive
UPDATE sf_map_runs SET redrive_count = :redrive_count, updated_at = :now WHERE id = :id

-- name: insert_batch
INSERT INTO sf_map_batches (map_run_id, batch, child_id, items, status)
VALUES (:map_run_id, :batch, :child_id, :items, :status)
ON CONFLICT (map_run_id, batch) DO UPDATE SET child_id = excluded.child_id, items = excluded.items, status = excluded.status

-- name: set_batch_status
UPDATE sf_map_batches SET status = :status WHERE map_run_id = :map_run_id AND batch = :batch

-- name: batches
SELECT batch, child_id, items, status FROM sf_map_batches
WHERE map_run_id = :map_run_id AND batch >= :after
ORDER BY batch
LIMIT :limit

-- name: batch_results
SELECT b.batch, b.child_id, b.items, e.status, e.input, e.output, e.error, e.started_at, e.stopped_at,
       e.redrive_count
FROM sf_map_batches b JOIN sf_executions e ON e.id = b.child_id
WHERE b.map_run_id = :map_run_id AND b.batch >= :after
ORDER BY b.batch
LIMIT :limit

-- name: delete_map_batches
DELETE FROM sf_map_batches WHERE map_run_id IN (SELECT id FROM sf_map_runs WHERE execution_id = ?)

-- name: delete_map_runs
DELETE FROM sf_map_runs WHERE execution_id = ?

-- name: child_status
SELECT status, error FROM sf_executions WHERE id = :id
