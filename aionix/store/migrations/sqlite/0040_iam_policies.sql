-- Policies (governance): IAM-style JSON documents per tenant, attached to keys, users and
-- groups. The built-in role policies (aionix-viewer/-operator/-admin) are generated from the
-- endpoints, never stored; attachments may name them.
CREATE TABLE iam_policies (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    document    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (tenant, name)
) STRICT;

CREATE TABLE iam_policy_attachments (
    tenant         TEXT NOT NULL,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('key', 'user', 'group')),
    principal_id   TEXT NOT NULL,
    policy         TEXT NOT NULL,
    created_at     REAL NOT NULL,
    created_by     TEXT,
    PRIMARY KEY (tenant, principal_kind, principal_id, policy)
) STRICT;
CREATE INDEX iam_policy_attachments_policy ON iam_policy_attachments (tenant, policy);
