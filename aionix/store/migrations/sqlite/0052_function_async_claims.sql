-- Durable async invocations (issue 17 part 5). An async invocation keeps what it needs to run
-- again while it is RUNNING: the event (JSON, as the caller sent it; erased when it ends) and the
-- caller's context (principal identifiers, never a key or token). The node that runs it holds
-- its claim (`claimed_by`); `attempts` counts its starts and is the claim's epoch: a record is
-- finished only under the claim (node and attempt) that ran it. A node re-runs its own at
-- start; on PostgreSQL other nodes take those of a node whose lease ran out.
ALTER TABLE function_invocations ADD COLUMN event TEXT;
ALTER TABLE function_invocations ADD COLUMN context TEXT;
ALTER TABLE function_invocations ADD COLUMN claimed_by TEXT;
ALTER TABLE function_invocations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX function_invocations_running ON function_invocations (claimed_by) WHERE status = 'RUNNING';
