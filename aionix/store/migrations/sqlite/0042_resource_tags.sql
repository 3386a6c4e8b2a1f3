-- Tags on resources (governance): a string map per resource TRN, read by the `tags` condition of
-- policies (aionix/iam/tags.py). A secret's own labels count as its tags too.
CREATE TABLE resource_tags (
    tenant     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    tags       TEXT NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant, resource)
) STRICT;
