-- StepFlow distributed Map (ASL ProcessorConfig.Mode DISTRIBUTED): one map run per entry of a
-- distributed Map state, its reader cursor (where the next batch starts) and one row per batch
-- (the child execution that processes it). A restart resumes from the cursor; finished batches
-- are never run again; a redrive re-runs the failed ones only.
CREATE TABLE sf_map_runs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    execution_id  TEXT COLLATE "C" NOT NULL,
    tenant        TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL,
    cursor        TEXT COLLATE "C" NOT NULL,
    next_batch    BIGINT NOT NULL DEFAULT 0,
    reader_done   BIGINT NOT NULL DEFAULT 0,
    redrive_count BIGINT NOT NULL DEFAULT 0,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX sf_map_runs_execution ON sf_map_runs (execution_id);

CREATE TABLE sf_map_batches (
    map_run_id TEXT COLLATE "C" NOT NULL,
    batch      BIGINT NOT NULL,
    child_id   TEXT COLLATE "C" NOT NULL,
    items      BIGINT NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (map_run_id, batch)
);
