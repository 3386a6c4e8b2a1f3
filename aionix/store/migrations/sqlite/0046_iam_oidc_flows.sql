-- OIDC sign-ins in progress and their one-time handoff codes, in the store so that a sign-in may
-- start on one node and end on another. Only hashes of the state and of the handoff code are
-- kept; the PKCE verifier and the session's tokens are sealed under the system key 'iam-oidc'.
CREATE TABLE iam_oidc_flows (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    verifier_sealed TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX iam_oidc_flows_created ON iam_oidc_flows (created_at);

CREATE TABLE iam_oidc_handoffs (
    code_hash TEXT PRIMARY KEY,
    session_sealed TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX iam_oidc_handoffs_created ON iam_oidc_handoffs (created_at);
