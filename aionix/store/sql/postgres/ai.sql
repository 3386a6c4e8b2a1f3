-- name: active_policy
SELECT version, digest, texts, created_at, created_by FROM ai_policy_versions WHERE active = 1

-- name: max_policy_version
SELECT COALESCE(MAX(version), 0) AS v FROM ai_policy_versions

-- name: get_policy_version
SELECT version, digest, texts, active, created_at, created_by FROM ai_policy_versions WHERE version = :version

-- name: list_policy_versions
SELECT version, digest, active, created_at, created_by FROM ai_policy_versions
WHERE (CAST(:cursor AS BIGINT) IS NULL OR version < :cursor) ORDER BY version DESC LIMIT :limit

-- name: deactivate_policies
UPDATE ai_policy_versions SET active = 0 WHERE active = 1

-- name: activate_policy
UPDATE ai_policy_versions SET active = 1 WHERE version = :version

-- name: insert_policy_version
INSERT INTO ai_policy_versions (version, digest, texts, active, created_at, created_by)
VALUES (:version, :digest, :texts, 1, :now, :by)

-- name: upsert_task
INSERT INTO ai_tasks (id, tenant, key_id, intent, status, envelope, created_at, updated_at)
VALUES (:id, :tenant, :key_id, :intent, :status, :envelope, :now, :now)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, envelope = excluded.envelope, updated_at = excluded.updated_at

-- name: get_task
SELECT id, tenant, key_id, intent, status, envelope, created_at FROM ai_tasks WHERE id = :id AND tenant = :tenant

-- name: list_tasks
SELECT id, tenant, intent, status, envelope, created_at FROM ai_tasks
WHERE tenant = :tenant AND (CAST(:status AS TEXT) IS NULL OR status = :status) AND (CAST(:cursor AS TEXT) IS NULL OR id < :cursor)
ORDER BY id DESC LIMIT :limit

-- name: fail_running_tasks
UPDATE ai_tasks SET status = 'ERROR', updated_at = :now,
    envelope = (envelope::jsonb || jsonb_build_object('status', 'ERROR', 'error',
        jsonb_build_object('code', 'Ai.Interrupted', 'message', 'the server stopped while the task ran')))::text
WHERE status = 'RUNNING'

-- name: insert_decision
INSERT INTO ai_decisions (tenant, task_id, intent, route, tier, provider, model, chosen_by, reason, policy_version, created_at)
VALUES (:tenant, :task_id, :intent, :route, :tier, :provider, :model, :chosen_by, :reason, :policy_version, :now)

-- name: list_decisions
SELECT seq, task_id, intent, route, tier, provider, model, chosen_by, reason, policy_version, created_at
FROM ai_decisions
WHERE tenant = :tenant AND (CAST(:task_id AS TEXT) IS NULL OR task_id = :task_id) AND (CAST(:cursor AS BIGINT) IS NULL OR seq < :cursor)
ORDER BY seq DESC LIMIT :limit

-- name: insert_usage
INSERT INTO ai_usage (task_id, tenant, key_id, intent, provider, model, tokens_in, tokens_out, cost_usd, latency_ms, day, month, execution_id, ts)
VALUES (:task_id, :tenant, :key_id, :intent, :provider, :model, :tokens_in, :tokens_out, :cost_usd, :latency_ms, :day, :month, :execution_id, :ts)
ON CONFLICT DO NOTHING

-- name: spent_tenant
SELECT COALESCE(SUM(CASE WHEN day = :day THEN cost_usd END), 0.0) AS day_usd, COALESCE(SUM(cost_usd), 0.0) AS month_usd
FROM ai_usage WHERE tenant = :tenant AND month = :month

-- name: spent_key
SELECT COALESCE(SUM(CASE WHEN day = :day THEN cost_usd END), 0.0) AS day_usd, COALESCE(SUM(cost_usd), 0.0) AS month_usd
FROM ai_usage WHERE key_id = :key_id AND month = :month

-- name: spent_execution
SELECT COALESCE(SUM(tokens_in + tokens_out), 0) AS tokens, COALESCE(SUM(cost_usd), 0.0) AS cost_usd
FROM ai_usage WHERE execution_id = :execution_id

-- name: usage_by_intent
SELECT intent AS grp, COUNT(*) AS tasks, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
       SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms
FROM ai_usage WHERE tenant = :tenant AND day >= :since GROUP BY grp ORDER BY grp

-- name: usage_by_provider
SELECT provider AS grp, COUNT(*) AS tasks, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
       SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms
FROM ai_usage WHERE tenant = :tenant AND day >= :since GROUP BY grp ORDER BY grp

-- name: usage_by_model
SELECT model AS grp, COUNT(*) AS tasks, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
       SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms
FROM ai_usage WHERE tenant = :tenant AND day >= :since GROUP BY grp ORDER BY grp

-- name: usage_by_day
SELECT day AS grp, COUNT(*) AS tasks, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
       SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms
FROM ai_usage WHERE tenant = :tenant AND day >= :since GROUP BY grp ORDER BY grp

-- name: usage_by_key
SELECT key_id AS grp, COUNT(*) AS tasks, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,
       SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms
FROM ai_usage WHERE tenant = :tenant AND day >= :since GROUP BY grp ORDER BY grp

-- name: get_budget
SELECT tenant, daily_usd, monthly_usd, updated_at FROM ai_budgets WHERE tenant = :tenant

-- name: put_budget
INSERT INTO ai_budgets (tenant, daily_usd, monthly_usd, updated_at) VALUES (:tenant, :daily_usd, :monthly_usd, :now)
ON CONFLICT (tenant) DO UPDATE SET daily_usd = excluded.daily_usd, monthly_usd = excluded.monthly_usd, updated_at = excluded.updated_at

-- name: recent_execution_usage
SELECT execution_id, SUM(tokens_in + tokens_out) AS tokens, SUM(cost_usd) AS cost_usd
FROM ai_usage WHERE execution_id IS NOT NULL AND ts >= :since GROUP BY execution_id

-- name: recent_latencies
SELECT provider, model, latency_ms FROM ai_usage ORDER BY ts DESC LIMIT :limit
