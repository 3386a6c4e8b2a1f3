-- OIDC sign-ins in progress and their one-time handoff codes, in the store so that a sign-in may
-- start on one node and end on another. Only hashes of the state and of the handoff code are
-- kept; the PKCE verifier and the session's tokens are sealed under the system key 'iam-oidc'.
CREATE TABLE iam_oidc_flows (
    state_hash TEXT COLLATE "C" PRIMARY KEY,
    nonce TEXT COLLATE "C" NOT NULL,
    verifier_sealed TEXT COLLATE "C" NOT NULL,
    redirect_uri TEXT COLLATE "C" NOT NULL,
    return_to TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX iam_oidc_flows_created ON iam_oidc_flows (created_at);

CREATE TABLE iam_oidc_handoffs (
    code_hash TEXT COLLATE "C" PRIMARY KEY,
    session_sealed TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX iam_oidc_handoffs_created ON iam_oidc_handoffs (created_at);
