-- Keyless Sigstore signatures for modules (issue 20): the trusted roots an admin configured (a
-- Sigstore trusted_root.json: Fulcio CA certificates, Rekor and CT log keys) and, per root,
-- the certificate identities (SAN email/URI) and OIDC issuers it accepts.
CREATE TABLE modules_trust_roots (
    tenant        TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    trusted_root  TEXT COLLATE "C" NOT NULL,
    identities    TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    issuers       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    fingerprint   TEXT COLLATE "C" NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    created_by    TEXT COLLATE "C",
    PRIMARY KEY (tenant, name)
);
