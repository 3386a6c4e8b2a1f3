-- Tags on resources (governance): a string map per resource TRN, read by the `tags` condition of
-- policies (aionix/iam/tags.py). A secret's own labels count as its tags too.
CREATE TABLE resource_tags (
    tenant     TEXT COLLATE "C" NOT NULL,
    resource   TEXT COLLATE "C" NOT NULL,
    tags       TEXT COLLATE "C" NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT COLLATE "C",
    PRIMARY KEY (tenant, resource)
);
