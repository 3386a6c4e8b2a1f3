"""StepFlow: the durable workflow engine.

The DSL (`models`) is validated (`validate`) and compiled into an executable plan (`compile`);
the interpreter (`engine`) walks plans, appending history events in one transaction per
checkpoint; `service` holds templates and executions, `routes` the HTTP API. A second front
end (Amazon States Language) compiles into the same plan.
"""
