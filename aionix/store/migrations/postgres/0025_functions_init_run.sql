-- Functions: an invocation's cold start (worker start, module import) and its handler's run are
-- recorded apart (issue 24): the init limit bounds the one, the invocation timeout the other.
ALTER TABLE function_invocations ADD COLUMN init_ms DOUBLE PRECISION;
ALTER TABLE function_invocations ADD COLUMN run_ms DOUBLE PRECISION;
