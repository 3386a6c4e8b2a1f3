-- A tamper-evident audit trail: each row carries its chain's sequence number, the hash of the
-- previous row of its chain (one chain per tenant; '' for tenant-less rows) and its own hash,
-- computed by the insert itself in the writer's transaction. `audit_heads` holds each chain's
-- last row (kept by the trigger), so a deleted tail is detected too. Rows written before this
-- migration have no hash and are reported as unchained by the verifier.
ALTER TABLE audit ADD COLUMN seq INTEGER;
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
CREATE INDEX audit_chain ON audit (coalesce(tenant, ''), seq);

CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL,
    id    INTEGER NOT NULL
) STRICT;

CREATE TRIGGER audit_chain_head AFTER INSERT ON audit WHEN NEW.hash IS NOT NULL
BEGIN
    INSERT OR REPLACE INTO audit_heads (chain, seq, hash, id)
    VALUES (coalesce(NEW.tenant, ''), NEW.seq, NEW.hash, NEW.id);
END;
