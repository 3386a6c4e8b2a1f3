-- OpenAct: connections (config with CredVault references only), saved actions, AuthFlow state.
CREATE TABLE connections (
    tenant      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    config      TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE actions (
    tenant      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    connection  TEXT COLLATE "C",
    operation   TEXT COLLATE "C" NOT NULL,
    parameters  TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX actions_connection ON actions (tenant, connection);

CREATE TABLE authflow_states (
    state         TEXT COLLATE "C" PRIMARY KEY,
    tenant        TEXT COLLATE "C" NOT NULL,
    connection    TEXT COLLATE "C" NOT NULL,
    code_verifier TEXT COLLATE "C" NOT NULL,
    redirect_uri  TEXT COLLATE "C" NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    completed_at  DOUBLE PRECISION,
    error         TEXT COLLATE "C"
);
CREATE INDEX authflow_states_created ON authflow_states (created_at);
