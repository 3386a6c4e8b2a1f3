-- Users, groups and sessions (issue 22, part 2). Users and groups belong to one tenant. A local
-- user signs in with a password (scrypt hash, never the password); an OIDC user is found by the
-- issuer's subject. Group membership is 'manual' (set through the API) or 'oidc' (from the
-- group claim at each sign-in, replaced then).
CREATE TABLE iam_users (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    subject TEXT,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_login_at REAL
);
CREATE UNIQUE INDEX iam_users_tenant_name ON iam_users (tenant, name);
CREATE UNIQUE INDEX iam_users_subject ON iam_users (tenant, source, subject) WHERE subject IS NOT NULL;

CREATE TABLE iam_groups (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE iam_group_members (
    tenant TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (tenant, group_name, user_id)
);
CREATE INDEX iam_group_members_user ON iam_group_members (user_id);

-- Signing keys of the access tokens (ES256). The private key is sealed under the system key
-- 'iam-token-signing' (wrapped by the master key); `retired_at`: no longer signs, still verifies
-- tokens it signed until they expire.
CREATE TABLE iam_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at REAL NOT NULL,
    retired_at REAL
);

-- Refresh tokens: only a SHA-256 is stored. Each use makes a new one in the same family; a used
-- or revoked one presented again revokes the whole family (reuse detection).
CREATE TABLE iam_refresh_tokens (
    id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    revoked_at REAL
);
CREATE INDEX iam_refresh_tokens_family ON iam_refresh_tokens (family);
CREATE INDEX iam_refresh_tokens_expires ON iam_refresh_tokens (expires_at);
