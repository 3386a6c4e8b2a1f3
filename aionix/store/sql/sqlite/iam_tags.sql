-- Tags on resources (aionix/iam/tags.py).

-- name: get
SELECT tenant, resource, tags, updated_at, updated_by FROM resource_tags
WHERE tenant = :tenant AND resource = :resource

-- name: put
INSERT INTO resource_tags (tenant, resource, tags, updated_at, updated_by)
VALUES (:tenant, :resource, :tags, :now, :by)
ON CONFLICT (tenant, resource) DO UPDATE SET tags = excluded.tags, updated_at = excluded.updated_at,
    updated_by = excluded.updated_by

-- name: delete
DELETE FROM resource_tags WHERE tenant = :tenant AND resource = :resource
