-- name: get_param
SELECT tenant, path, version, type, value, dynamic, description, schema, pattern, created_at, updated_at, updated_by
FROM params WHERE tenant = :tenant AND path = :path /*tx: FOR UPDATE*/

-- name: get_version
SELECT tenant, path, version, type, value, dynamic, description, schema, pattern, note, created_at, created_by
FROM param_versions WHERE tenant = :tenant AND path = :path AND version = :version

-- name: list_versions
SELECT version, type, value, dynamic, description, schema, pattern, note, created_at, created_by
FROM param_versions WHERE tenant = :tenant AND path = :path
  AND (CAST(:cursor AS BIGINT) IS NULL OR version < :cursor)
ORDER BY version DESC LIMIT :limit

-- name: list_params
SELECT tenant, path, version, type, value, dynamic, description, schema, pattern, created_at, updated_at, updated_by
FROM params
WHERE tenant = :tenant AND (path = :prefix OR (path >= :lo AND path < :hi))
  AND (CAST(:cursor AS TEXT) IS NULL OR path > :cursor)
ORDER BY path LIMIT :limit

-- name: insert_param
INSERT INTO params (tenant, path, version, type, value, dynamic, description, schema, pattern, created_at, updated_at, updated_by)
VALUES (:tenant, :path, :version, :type, :value, :dynamic, :description, :schema, :pattern, :now, :now, :by)

-- name: update_param
UPDATE params SET version = :version, type = :type, value = :value, dynamic = :dynamic,
    description = :description, schema = :schema, pattern = :pattern, updated_at = :now, updated_by = :by
WHERE tenant = :tenant AND path = :path

-- name: insert_version
INSERT INTO param_versions (tenant, path, version, type, value, dynamic, description, schema, pattern, note, created_at, created_by)
VALUES (:tenant, :path, :version, :type, :value, :dynamic, :description, :schema, :pattern, :note, :now, :by)

-- name: delete_param
DELETE FROM params WHERE tenant = :tenant AND path = :path

-- name: delete_versions
DELETE FROM param_versions WHERE tenant = :tenant AND path = :path

-- name: delete_labels
DELETE FROM param_labels WHERE tenant = :tenant AND path = :path

-- name: put_label
INSERT INTO param_labels (tenant, path, label, version) VALUES (:tenant, :path, :label, :version)
ON CONFLICT (tenant, path, label) DO UPDATE SET version = excluded.version

-- name: label_version
SELECT version FROM param_labels WHERE tenant = :tenant AND path = :path AND label = :label

-- name: labels_of
SELECT label, version FROM param_labels WHERE tenant = :tenant AND path = :path ORDER BY label
