-- Policies (governance): IAM-style JSON documents per tenant, attached to keys, users and
-- groups. The built-in role policies (aionix-viewer/-operator/-admin) are generated from the
-- endpoints, never stored; attachments may name them.
CREATE TABLE iam_policies (
    tenant      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    document    TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    created_by  TEXT COLLATE "C",
    PRIMARY KEY (tenant, name)
);

CREATE TABLE iam_policy_attachments (
    tenant         TEXT COLLATE "C" NOT NULL,
    principal_kind TEXT COLLATE "C" NOT NULL CHECK (principal_kind IN ('key', 'user', 'group')),
    principal_id   TEXT COLLATE "C" NOT NULL,
    policy         TEXT COLLATE "C" NOT NULL,
    created_at     DOUBLE PRECISION NOT NULL,
    created_by     TEXT COLLATE "C",
    PRIMARY KEY (tenant, principal_kind, principal_id, policy)
);
CREATE INDEX iam_policy_attachments_policy ON iam_policy_attachments (tenant, policy);
