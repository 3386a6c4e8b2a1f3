-- Signed agent modules (issue 20): installed packages (their blobs live on disk under
-- data_dir/modules/blobs, content-addressed) and the keys an admin trusts to sign them.
CREATE TABLE modules_packages (
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    oci_manifest  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('verified', 'approved', 'quarantined')),
    reasons       TEXT NOT NULL DEFAULT '[]',
    signer        TEXT,
    sbom_format   TEXT,
    sbom_digest   TEXT,
    intents       TEXT NOT NULL DEFAULT '[]',
    source        TEXT NOT NULL DEFAULT '',
    installed_at  REAL NOT NULL,
    installed_by  TEXT,
    approved_at   REAL,
    approved_by   TEXT,
    PRIMARY KEY (tenant, name, version)
) STRICT;

CREATE TABLE modules_keys (
    tenant       TEXT NOT NULL,
    name         TEXT NOT NULL,
    algorithm    TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    created_by   TEXT,
    PRIMARY KEY (tenant, name)
) STRICT;
