-- name: function_durations
SELECT name, duration_ms FROM function_invocations
WHERE tenant = :tenant AND duration_ms IS NOT NULL AND status = 'SUCCEEDED'
ORDER BY started_at DESC LIMIT :limit

-- name: execution_durations
SELECT workflow, version, (stopped_at - started_at) * 1000.0 AS duration_ms FROM sf_executions
WHERE tenant = :tenant AND workflow = :workflow AND status = 'SUCCEEDED' AND stopped_at IS NOT NULL
ORDER BY started_at DESC LIMIT :limit

-- name: all_execution_durations
SELECT workflow, (stopped_at - started_at) * 1000.0 AS duration_ms FROM sf_executions
WHERE tenant = :tenant AND status = 'SUCCEEDED' AND stopped_at IS NOT NULL
ORDER BY started_at DESC LIMIT :limit

-- name: state_events
SELECT h.execution_id, h.ts, h.type, h.state, h.frame FROM sf_history h
JOIN sf_executions e ON e.id = h.execution_id
WHERE e.tenant = :tenant AND e.workflow = :workflow AND e.status != 'RUNNING'
  AND h.type IN ('StateEntered', 'StateExited', 'StateFailed')
ORDER BY e.started_at DESC, h.seq LIMIT :limit

-- name: finished_count
SELECT COUNT(*) AS n FROM sf_executions
WHERE tenant = :tenant AND workflow = :workflow AND status != 'RUNNING'

-- name: task_events
SELECT h.execution_id, h.ts, h.type, h.state, h.frame, e.workflow, e.version FROM sf_history h
JOIN sf_executions e ON e.id = h.execution_id
WHERE e.tenant = :tenant AND h.type IN ('TaskScheduled', 'TaskSucceeded')
ORDER BY e.started_at DESC, h.seq LIMIT :limit
