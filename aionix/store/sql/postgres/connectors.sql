-- name: insert_connection
INSERT INTO connections (tenant, name, kind, config, description, created_at, updated_at)
VALUES (:tenant, :name, :kind, :config, :description, :now, :now)

-- name: update_connection
UPDATE connections SET config = :config, description = :description, updated_at = :now
WHERE tenant = :tenant AND name = :name

-- name: get_connection
SELECT tenant, name, kind, config, description, created_at, updated_at
FROM connections WHERE tenant = :tenant AND name = :name

-- name: list_connections
SELECT tenant, name, kind, config, description, created_at, updated_at
FROM connections
WHERE tenant = :tenant AND (CAST(:kind AS TEXT) IS NULL OR kind = :kind) AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: list_file_connections
SELECT tenant, name, kind, config FROM connections
WHERE kind IN ('fs', 'sql') AND (CAST(:tenant AS TEXT) IS NULL OR tenant = :tenant)
ORDER BY tenant, name

-- name: delete_connection
DELETE FROM connections WHERE tenant = :tenant AND name = :name

-- name: count_actions_using
SELECT count(*) AS n FROM actions WHERE tenant = :tenant AND connection = :connection

-- name: insert_action
INSERT INTO actions (tenant, name, kind, connection, operation, parameters, description, created_at, updated_at)
VALUES (:tenant, :name, :kind, :connection, :operation, :parameters, :description, :now, :now)

-- name: update_action
UPDATE actions SET kind = :kind, connection = :connection, operation = :operation, parameters = :parameters,
    description = :description, updated_at = :now
WHERE tenant = :tenant AND name = :name

-- name: get_action
SELECT tenant, name, kind, connection, operation, parameters, description, created_at, updated_at
FROM actions WHERE tenant = :tenant AND name = :name

-- name: list_actions
SELECT tenant, name, kind, connection, operation, parameters, description, created_at, updated_at
FROM actions
WHERE tenant = :tenant AND (CAST(:kind AS TEXT) IS NULL OR kind = :kind) AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: delete_action
DELETE FROM actions WHERE tenant = :tenant AND name = :name

-- name: insert_authflow_state
INSERT INTO authflow_states (state, tenant, connection, code_verifier, redirect_uri, created_at)
VALUES (:state, :tenant, :connection, :code_verifier, :redirect_uri, :now)

-- name: get_authflow_state
SELECT state, tenant, connection, code_verifier, redirect_uri, created_at, completed_at, error
FROM authflow_states WHERE state = :state

-- name: finish_authflow_state
UPDATE authflow_states SET completed_at = :now, error = :error WHERE state = :state AND completed_at IS NULL

-- name: prune_authflow_states
DELETE FROM authflow_states WHERE created_at < :before
