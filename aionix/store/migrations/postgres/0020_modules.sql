-- Signed agent modules (issue 20): installed packages (their blobs live on disk under
-- data_dir/modules/blobs, content-addressed) and the keys an admin trusts to sign them.
CREATE TABLE modules_packages (
    tenant        TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    version       TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL,
    runtime       TEXT COLLATE "C" NOT NULL,
    manifest      TEXT COLLATE "C" NOT NULL,
    oci_manifest  TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('verified', 'approved', 'quarantined')),
    reasons       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    signer        TEXT COLLATE "C",
    sbom_format   TEXT COLLATE "C",
    sbom_digest   TEXT COLLATE "C",
    intents       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    source        TEXT COLLATE "C" NOT NULL DEFAULT '',
    installed_at  DOUBLE PRECISION NOT NULL,
    installed_by  TEXT COLLATE "C",
    approved_at   DOUBLE PRECISION,
    approved_by   TEXT COLLATE "C",
    PRIMARY KEY (tenant, name, version)
);

CREATE TABLE modules_keys (
    tenant       TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    algorithm    TEXT COLLATE "C" NOT NULL,
    fingerprint  TEXT COLLATE "C" NOT NULL,
    public_key   TEXT COLLATE "C" NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    created_by   TEXT COLLATE "C",
    PRIMARY KEY (tenant, name)
);
