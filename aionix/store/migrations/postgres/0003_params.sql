-- ParamStore: hierarchical parameters and their versions.
CREATE TABLE params (
    tenant      TEXT COLLATE "C" NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    type        TEXT COLLATE "C" NOT NULL CHECK (type IN ('string', 'number', 'boolean', 'json', 'secret_ref')),
    value       TEXT COLLATE "C" NOT NULL,
    dynamic     BIGINT NOT NULL DEFAULT 0,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    schema      TEXT COLLATE "C",
    pattern     TEXT COLLATE "C",
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    updated_by  TEXT COLLATE "C",
    PRIMARY KEY (tenant, path)
);

-- Every put is a version (rollback too: it copies an old version as the newest).
CREATE TABLE param_versions (
    tenant      TEXT COLLATE "C" NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    type        TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    dynamic     BIGINT NOT NULL DEFAULT 0,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    schema      TEXT COLLATE "C",
    pattern     TEXT COLLATE "C",
    note        TEXT COLLATE "C",
    created_at  DOUBLE PRECISION NOT NULL,
    created_by  TEXT COLLATE "C",
    PRIMARY KEY (tenant, path, version)
);

-- Version labels: a label names one version of a parameter at a time (moved on reuse).
CREATE TABLE param_labels (
    tenant  TEXT COLLATE "C" NOT NULL,
    path    TEXT COLLATE "C" NOT NULL,
    label   TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant, path, label)
);
