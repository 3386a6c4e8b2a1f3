-- ParamStore: hierarchical parameters and their versions.
CREATE TABLE params (
    tenant      TEXT NOT NULL,
    path        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('string', 'number', 'boolean', 'json', 'secret_ref')),
    value       TEXT NOT NULL,
    dynamic     INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    schema      TEXT,
    pattern     TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (tenant, path)
) STRICT;

-- Every put is a version (rollback too: it copies an old version as the newest).
CREATE TABLE param_versions (
    tenant      TEXT NOT NULL,
    path        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    value       TEXT NOT NULL,
    dynamic     INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    schema      TEXT,
    pattern     TEXT,
    note        TEXT,
    created_at  REAL NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (tenant, path, version)
) STRICT;

-- Version labels: a label names one version of a parameter at a time (moved on reuse).
CREATE TABLE param_labels (
    tenant  TEXT NOT NULL,
    path    TEXT NOT NULL,
    label   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant, path, label)
) STRICT;
