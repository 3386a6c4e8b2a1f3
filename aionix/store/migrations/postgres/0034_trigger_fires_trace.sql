-- Tracing (issue 21): the trace a fire was made in (a webhook request's traceparent, the
-- execution that published the event), so that each delivery attempt, a retry after a restart
-- included, continues that trace. NULL: none known (a schedule); the delivery starts one.
ALTER TABLE trigger_fires ADD COLUMN trace_id TEXT COLLATE "C";
