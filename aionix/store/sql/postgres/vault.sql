-- name: get_master
SELECT master_id, source, salt, check_nonce, check_value, created_at, rotated_at FROM vault_master WHERE id = 1 /*tx: FOR UPDATE*/

-- name: insert_master
INSERT INTO vault_master (id, master_id, source, salt, check_nonce, check_value, created_at)
VALUES (1, :master_id, :source, :salt, :check_nonce, :check_value, :now)

-- name: update_master
UPDATE vault_master
SET master_id = :master_id, source = :source, salt = :salt, check_nonce = :check_nonce,
    check_value = :check_value, rotated_at = :now
WHERE id = 1 AND master_id = :old_master_id

-- name: get_secret
SELECT tenant, name, type, description, labels, rotation, latest_version, current_version,
       previous_version, pending_version, created_at, created_by, updated_at, rotated_at,
       next_rotation_at, deleted_at, purge_after, readers
FROM vault_secrets WHERE tenant = :tenant AND name = :name /*tx: FOR UPDATE*/

-- name: list_secrets
SELECT tenant, name, type, description, labels, rotation, latest_version, current_version,
       previous_version, pending_version, created_at, created_by, updated_at, rotated_at,
       next_rotation_at, deleted_at, purge_after, readers
FROM vault_secrets
WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
  AND (:include_deleted = 1 OR deleted_at IS NULL)
ORDER BY name LIMIT :limit

-- name: insert_secret
INSERT INTO vault_secrets (tenant, name, type, description, labels, rotation, latest_version,
    current_version, created_at, created_by, updated_at, next_rotation_at, readers)
VALUES (:tenant, :name, :type, :description, :labels, :rotation, 1, 1, :now, :by, :now, :next_rotation_at, :readers)

-- name: set_readers
UPDATE vault_secrets SET readers = :readers, updated_at = :now
WHERE tenant = :tenant AND name = :name AND deleted_at IS NULL

-- name: update_secret
UPDATE vault_secrets
SET description = :description, labels = :labels, rotation = :rotation, latest_version = :latest_version,
    current_version = :current_version, previous_version = :previous_version,
    pending_version = :pending_version, updated_at = :now, rotated_at = :rotated_at,
    next_rotation_at = :next_rotation_at
WHERE tenant = :tenant AND name = :name

-- name: mark_deleted
UPDATE vault_secrets SET deleted_at = :now, purge_after = :purge_after, updated_at = :now
WHERE tenant = :tenant AND name = :name AND deleted_at IS NULL

-- name: restore_secret
UPDATE vault_secrets SET deleted_at = NULL, purge_after = NULL, updated_at = :now
WHERE tenant = :tenant AND name = :name AND deleted_at IS NOT NULL

-- name: purge_secret
DELETE FROM vault_secrets WHERE tenant = :tenant AND name = :name

-- name: purge_versions
DELETE FROM vault_versions WHERE tenant = :tenant AND name = :name

-- name: due_purges
-- In the purge transaction the rows are locked, skipping those another node is purging.
SELECT tenant, name FROM vault_secrets WHERE purge_after IS NOT NULL AND purge_after <= :now LIMIT :limit /*tx: FOR UPDATE SKIP LOCKED*/

-- name: due_rotations
SELECT tenant, name, next_rotation_at FROM vault_secrets
WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= :now AND deleted_at IS NULL
ORDER BY next_rotation_at LIMIT :limit

-- name: claim_rotation
-- A due rotation is run by the one node whose compare-and-set on its due time wins; the due time
-- moves to :until meanwhile (a node that dies while rotating leaves it due again then).
UPDATE vault_secrets SET next_rotation_at = :until
WHERE tenant = :tenant AND name = :name AND next_rotation_at = :expected AND deleted_at IS NULL

-- name: insert_version
INSERT INTO vault_versions (tenant, name, version, master_id, key_nonce, wrapped_key, nonce, ciphertext, created_at, created_by)
VALUES (:tenant, :name, :version, :master_id, :key_nonce, :wrapped_key, :nonce, :ciphertext, :now, :by)

-- name: get_version
SELECT tenant, name, version, master_id, key_nonce, wrapped_key, nonce, ciphertext, created_at, created_by
FROM vault_versions WHERE tenant = :tenant AND name = :name AND version = :version /*tx: FOR UPDATE*/

-- name: list_versions
SELECT version, master_id, created_at, created_by
FROM vault_versions WHERE tenant = :tenant AND name = :name ORDER BY version DESC

-- name: all_wrapped_keys
SELECT tenant, name, version, master_id, key_nonce, wrapped_key FROM vault_versions

-- name: rewrap_version
UPDATE vault_versions SET master_id = :master_id, key_nonce = :key_nonce, wrapped_key = :wrapped_key
WHERE tenant = :tenant AND name = :name AND version = :version

-- name: count_versions
SELECT count(*) AS n FROM vault_versions
