-- A tamper-evident audit trail: each row carries its chain's sequence number, the hash of the
-- previous row of its chain (one chain per tenant; '' for tenant-less rows) and its own hash,
-- computed by the insert itself in the writer's transaction. `audit_heads` holds each chain's
-- last row (kept by the trigger), so a deleted tail is detected too. Rows written before this
-- migration have no hash and are reported as unchained by the verifier.
ALTER TABLE audit ADD COLUMN seq BIGINT;
ALTER TABLE audit ADD COLUMN prev_hash TEXT COLLATE "C";
ALTER TABLE audit ADD COLUMN hash TEXT COLLATE "C";
CREATE INDEX audit_chain ON audit (coalesce(tenant, ''), seq);

CREATE TABLE audit_heads (
    chain TEXT COLLATE "C" PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT COLLATE "C" NOT NULL,
    id    BIGINT NOT NULL
);

CREATE FUNCTION aionix_audit_chain_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (chain, seq, hash, id)
    VALUES (coalesce(NEW.tenant, ''), NEW.seq, NEW.hash, NEW.id)
    ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, id = excluded.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_chain_head AFTER INSERT ON audit FOR EACH ROW WHEN (NEW.hash IS NOT NULL)
EXECUTE FUNCTION aionix_audit_chain_head();
