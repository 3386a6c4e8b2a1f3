-- OpenAct: connections (config with CredVault references only), saved actions, AuthFlow state.
CREATE TABLE connections (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    config      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT;

CREATE TABLE actions (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    connection  TEXT,
    operation   TEXT NOT NULL,
    parameters  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant, name)
) STRICT;
CREATE INDEX actions_connection ON actions (tenant, connection);

CREATE TABLE authflow_states (
    state         TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    connection    TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    created_at    REAL NOT NULL,
    completed_at  REAL,
    error         TEXT
) STRICT;
CREATE INDEX authflow_states_created ON authflow_states (created_at);
