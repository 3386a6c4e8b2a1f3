-- Users, groups and sessions (issue 22, part 2). Users and groups belong to one tenant. A local
-- user signs in with a password (scrypt hash, never the password); an OIDC user is found by the
-- issuer's subject. Group membership is 'manual' (set through the API) or 'oidc' (from the
-- group claim at each sign-in, replaced then).
CREATE TABLE iam_users (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C",
    role TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C",
    password_hash TEXT COLLATE "C",
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    last_login_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX iam_users_tenant_name ON iam_users (tenant, name);
CREATE UNIQUE INDEX iam_users_subject ON iam_users (tenant, source, subject) WHERE subject IS NOT NULL;

CREATE TABLE iam_groups (
    tenant TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE iam_group_members (
    tenant TEXT COLLATE "C" NOT NULL,
    group_name TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    added_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, group_name, user_id)
);
CREATE INDEX iam_group_members_user ON iam_group_members (user_id);

-- Signing keys of the access tokens (ES256). The private key is sealed under the system key
-- 'iam-token-signing' (wrapped by the master key); `retired_at`: no longer signs, still verifies
-- tokens it signed until they expire.
CREATE TABLE iam_signing_keys (
    kid TEXT COLLATE "C" PRIMARY KEY,
    alg TEXT COLLATE "C" NOT NULL,
    private_sealed TEXT COLLATE "C" NOT NULL,
    public_jwk TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    retired_at DOUBLE PRECISION
);

-- Refresh tokens: only a SHA-256 is stored. Each use makes a new one in the same family; a used
-- or revoked one presented again revokes the whole family (reuse detection).
CREATE TABLE iam_refresh_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    family TEXT COLLATE "C" NOT NULL,
    hash TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant TEXT COLLATE "C" NOT NULL,
    subject_kind TEXT COLLATE "C" NOT NULL,
    subject_id TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX iam_refresh_tokens_family ON iam_refresh_tokens (family);
CREATE INDEX iam_refresh_tokens_expires ON iam_refresh_tokens (expires_at);
