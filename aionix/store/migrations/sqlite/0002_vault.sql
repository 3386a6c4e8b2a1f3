-- CredVault: the master key's check value, secrets, and their sealed versions.

-- One row per instance (id = 1). It holds no key: only what proves a master key is the right
-- one (a known string sealed under it), the scrypt salt for passphrase-derived keys, and the
-- current master key generation. It is instance-wide, so its tenant is always '*'.
CREATE TABLE vault_master (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    tenant      TEXT NOT NULL DEFAULT '*',
    master_id   TEXT NOT NULL,
    source      TEXT NOT NULL,
    salt        BLOB NOT NULL,
    check_nonce BLOB NOT NULL,
    check_value BLOB NOT NULL,
    created_at  REAL NOT NULL,
    rotated_at  REAL
) STRICT;

CREATE TABLE vault_secrets (
    tenant           TEXT NOT NULL,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL CHECK (type IN ('api_key', 'password', 'certificate', 'oauth_token', 'json')),
    description      TEXT NOT NULL DEFAULT '',
    labels           TEXT NOT NULL DEFAULT '{}',
    rotation         TEXT,
    latest_version   INTEGER NOT NULL,
    current_version  INTEGER,
    previous_version INTEGER,
    pending_version  INTEGER,
    created_at       REAL NOT NULL,
    created_by       TEXT,
    updated_at       REAL NOT NULL,
    rotated_at       REAL,
    next_rotation_at REAL,
    deleted_at       REAL,
    purge_after      REAL,
    PRIMARY KEY (tenant, name)
) STRICT;
CREATE INDEX vault_secrets_purge ON vault_secrets (purge_after) WHERE purge_after IS NOT NULL;
CREATE INDEX vault_secrets_rotation ON vault_secrets (next_rotation_at) WHERE next_rotation_at IS NOT NULL;

-- A sealed value: AES-256-GCM under its own data key (nonce, ciphertext); the data key wrapped
-- by the master key (key_nonce, wrapped_key). Both bind tenant, name and version as associated
-- data, so a row copied elsewhere fails to open.
CREATE TABLE vault_versions (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    master_id   TEXT NOT NULL,
    key_nonce   BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  REAL NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (tenant, name, version)
) STRICT;
