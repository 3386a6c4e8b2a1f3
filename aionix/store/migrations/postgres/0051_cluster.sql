-- Many nodes on one database (issue 17). Each aionix process is a node: a row here, its
-- heartbeat renewed every few seconds (in the database's clock, so the nodes' clocks need not
-- agree). A node whose heartbeat is older than [cluster] lease_seconds has lost every lease it
-- held: other nodes claim its work with FOR UPDATE SKIP LOCKED.
CREATE TABLE nodes (
    id           TEXT COLLATE "C" PRIMARY KEY,
    version      TEXT COLLATE "C" NOT NULL,
    host         TEXT COLLATE "C" NOT NULL,
    pid          BIGINT NOT NULL,
    url          TEXT COLLATE "C",
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    stopped_at   DOUBLE PRECISION,
    load         TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);

-- An execution's lease: the node that runs it and the lease epoch. Every checkpoint is written
-- only while the epoch is the one the writer claimed (fencing).
ALTER TABLE sf_executions ADD COLUMN owner TEXT COLLATE "C";
ALTER TABLE sf_executions ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sf_executions_owner ON sf_executions (owner) WHERE status = 'RUNNING';

-- Which node holds an outbox delivery claim (a starting node releases only its own claims).
ALTER TABLE trigger_fires ADD COLUMN claimed_by TEXT COLLATE "C";
