-- Keyless Sigstore signatures for modules (issue 20): the trusted roots an admin configured (a
-- Sigstore trusted_root.json: Fulcio CA certificates, Rekor and CT log keys) and, per root,
-- the certificate identities (SAN email/URI) and OIDC issuers it accepts.
CREATE TABLE modules_trust_roots (
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    trusted_root  TEXT NOT NULL,
    identities    TEXT NOT NULL DEFAULT '[]',
    issuers       TEXT NOT NULL DEFAULT '[]',
    fingerprint   TEXT NOT NULL,
    created_at    REAL NOT NULL,
    created_by    TEXT,
    PRIMARY KEY (tenant, name)
) STRICT;
