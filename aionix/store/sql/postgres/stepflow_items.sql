-- name: record_item
INSERT INTO sf_item_results (execution_id, frame, status, result) VALUES (?, ?, ?, ?)
ON CONFLICT (execution_id, frame) DO UPDATE SET status = excluded.status, result = excluded.result

-- name: advance_seq
-- the item's events are written ahead of the next snapshot: a resume numbers on after them
UPDATE sf_executions SET next_seq = greatest(next_seq, CAST(:next_seq AS BIGINT)) WHERE id = :id AND status = 'RUNNING'

-- name: item_results
SELECT frame, status, result FROM sf_item_results WHERE execution_id = :id

-- name: clear_scope
-- the children of one map/parallel entry (frame ids `<scope>.<n>` and below) start over
DELETE FROM sf_item_results WHERE execution_id = :id AND frame > :scope || '.' AND frame < :scope || '/'

-- name: clear_execution
DELETE FROM sf_item_results WHERE execution_id = ?

-- name: last_seq
SELECT coalesce(max(seq), 0) AS n FROM sf_history WHERE execution_id = ?
