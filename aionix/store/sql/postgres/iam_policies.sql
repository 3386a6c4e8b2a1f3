-- name: list
SELECT tenant, name, description, document, version, created_at, updated_at, created_by
FROM iam_policies WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: get
SELECT tenant, name, description, document, version, created_at, updated_at, created_by
FROM iam_policies WHERE tenant = :tenant AND name = :name

-- name: upsert
INSERT INTO iam_policies (tenant, name, description, document, version, created_at, updated_at, created_by)
VALUES (:tenant, :name, :description, :document, 1, :now, :now, :by)
ON CONFLICT (tenant, name) DO UPDATE SET description = excluded.description, document = excluded.document,
    version = iam_policies.version + 1, updated_at = excluded.updated_at
RETURNING version

-- name: delete
DELETE FROM iam_policies WHERE tenant = :tenant AND name = :name

-- name: delete_attachments
DELETE FROM iam_policy_attachments WHERE tenant = :tenant AND policy = :name

-- name: attach
INSERT INTO iam_policy_attachments (tenant, principal_kind, principal_id, policy, created_at, created_by)
VALUES (:tenant, :kind, :id, :policy, :now, :by)
ON CONFLICT DO NOTHING

-- name: detach
DELETE FROM iam_policy_attachments
WHERE tenant = :tenant AND principal_kind = :kind AND principal_id = :id AND policy = :policy

-- name: attachments_of_policy
SELECT principal_kind, principal_id, policy, created_at, created_by
FROM iam_policy_attachments WHERE tenant = :tenant AND policy = :policy
ORDER BY principal_kind, principal_id

-- name: attachments_of_principal
SELECT a.principal_kind, a.principal_id, a.policy, p.document
FROM iam_policy_attachments AS a
LEFT JOIN iam_policies AS p ON p.tenant = a.tenant AND p.name = a.policy
WHERE a.tenant = :tenant AND (
    (a.principal_kind = 'key' AND a.principal_id = :key_id)
    OR (a.principal_kind = 'user' AND a.principal_id = :user_id)
    OR (a.principal_kind = 'group' AND a.principal_id IN (SELECT jsonb_array_elements_text(CAST(:groups AS TEXT)::jsonb)))
)
ORDER BY a.principal_kind, a.principal_id, a.policy
