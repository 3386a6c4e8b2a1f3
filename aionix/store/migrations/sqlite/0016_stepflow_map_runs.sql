-- StepFlow distributed Map (ASL ProcessorConfig.Mode DISTRIBUTED): one map run per entry of a
-- distributed Map state, its reader cursor (where the next batch starts) and one row per batch
-- (the child execution that processes it). A restart resumes from the cursor; finished batches
-- are never run again; a redrive re-runs the failed ones only.
CREATE TABLE sf_map_runs (
    id            TEXT PRIMARY KEY,
    execution_id  TEXT NOT NULL,
    tenant        TEXT NOT NULL,
    state         TEXT NOT NULL,
    cursor        TEXT NOT NULL,
    next_batch    INTEGER NOT NULL DEFAULT 0,
    reader_done   INTEGER NOT NULL DEFAULT 0,
    redrive_count INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
) STRICT;
CREATE INDEX sf_map_runs_execution ON sf_map_runs (execution_id);

CREATE TABLE sf_map_batches (
    map_run_id TEXT NOT NULL,
    batch      INTEGER NOT NULL,
    child_id   TEXT NOT NULL,
    items      INTEGER NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (map_run_id, batch)
) STRICT, WITHOUT ROWID;
