-- StepFlow: the result of each map item and parallel branch, recorded as it finishes (issue 24),
-- between two checkpoints of its execution's snapshot. A resume lays these over the snapshot,
-- so an item that finished before a crash is not run again. Rows go when the execution ends
-- (and when the map/parallel that owns them starts over: a retry, a loop back into it).
CREATE TABLE sf_item_results (
    execution_id TEXT COLLATE "C" NOT NULL,
    frame        TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    result       TEXT COLLATE "C",
    PRIMARY KEY (execution_id, frame)
);
