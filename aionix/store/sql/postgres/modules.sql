-- name: upsert_package
INSERT INTO modules_packages (tenant, name, version, digest, runtime, manifest, oci_manifest, state, reasons, signer,
    sbom_format, sbom_digest, intents, source, installed_at, installed_by, approved_at, approved_by)
VALUES (:tenant, :name, :version, :digest, :runtime, :manifest, :oci_manifest, :state, :reasons, :signer,
    :sbom_format, :sbom_digest, :intents, :source, :now, :by, NULL, NULL)
ON CONFLICT (tenant, name, version) DO UPDATE SET digest = excluded.digest, runtime = excluded.runtime,
    manifest = excluded.manifest, oci_manifest = excluded.oci_manifest, state = excluded.state,
    reasons = excluded.reasons, signer = excluded.signer, sbom_format = excluded.sbom_format,
    sbom_digest = excluded.sbom_digest, intents = excluded.intents, source = excluded.source,
    installed_at = excluded.installed_at, installed_by = excluded.installed_by, approved_at = NULL, approved_by = NULL

-- name: get_package
SELECT * FROM modules_packages WHERE tenant = :tenant AND name = :name AND version = :version

-- name: package_versions
SELECT * FROM modules_packages WHERE tenant = :tenant AND name = :name ORDER BY installed_at DESC, version DESC

-- name: list_packages
SELECT * FROM modules_packages
WHERE tenant = :tenant AND (CAST(:state AS TEXT) IS NULL OR state = :state)
  AND (CAST(:intent AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(intents::jsonb) AS i(value) WHERE i.value = :intent))
  AND (CAST(:cursor AS TEXT) IS NULL OR name || ':' || version > :cursor)
ORDER BY name || ':' || version LIMIT :limit

-- name: set_state
UPDATE modules_packages SET state = :state, reasons = :reasons, approved_at = :approved_at, approved_by = :approved_by
WHERE tenant = :tenant AND name = :name AND version = :version

-- name: delete_package
DELETE FROM modules_packages WHERE tenant = :tenant AND name = :name AND version = :version

-- name: digest_users
SELECT count(*) AS n FROM modules_packages WHERE oci_manifest ILIKE :pattern

-- name: insert_key
INSERT INTO modules_keys (tenant, name, algorithm, fingerprint, public_key, created_at, created_by)
VALUES (:tenant, :name, :algorithm, :fingerprint, :public_key, :now, :by)

-- name: list_keys
SELECT tenant, name, algorithm, fingerprint, public_key, created_at, created_by FROM modules_keys
WHERE tenant = :tenant ORDER BY name

-- name: get_key
SELECT tenant, name, algorithm, fingerprint, public_key, created_at, created_by FROM modules_keys
WHERE tenant = :tenant AND name = :name

-- name: delete_key
DELETE FROM modules_keys WHERE tenant = :tenant AND name = :name

-- name: insert_root
INSERT INTO modules_trust_roots (tenant, name, trusted_root, identities, issuers, fingerprint, created_at, created_by)
VALUES (:tenant, :name, :trusted_root, :identities, :issuers, :fingerprint, :now, :by)

-- name: list_roots
SELECT * FROM modules_trust_roots WHERE tenant = :tenant ORDER BY name

-- name: get_root
SELECT * FROM modules_trust_roots WHERE tenant = :tenant AND name = :name

-- name: delete_root
DELETE FROM modules_trust_roots WHERE tenant = :tenant AND name = :name
