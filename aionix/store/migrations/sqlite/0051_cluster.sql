-- Many nodes on one database (issue 17). Each aionix process is a node: a row here, its
-- heartbeat renewed every few seconds. A node whose heartbeat is older than
-- [cluster] lease_seconds has lost every lease it held: other nodes claim its work.
-- (With SQLite there is one node; the rows still say which process ran what.)
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    url          TEXT,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at   REAL,
    load         TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- An execution's lease: the node that runs it and the lease epoch. Every checkpoint is written
-- only while the epoch is the one the writer claimed (fencing: a node that lost the lease — it
-- was paused or cut off past its expiry, and another node claimed the execution — cannot write
-- over the new owner).
ALTER TABLE sf_executions ADD COLUMN owner TEXT;
ALTER TABLE sf_executions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sf_executions_owner ON sf_executions (owner) WHERE status = 'RUNNING';

-- Which node holds an outbox delivery claim (a starting node releases only its own claims).
ALTER TABLE trigger_fires ADD COLUMN claimed_by TEXT;
