"""Igniter: schedule, webhook and event triggers that start workflows, functions and actions.

Every firing is first recorded in the fires table (the outbox), in the same transaction that
advances the trigger's schedule or accepts the webhook or event; delivery to the target then
happens through the executor bus with a stable idempotency key `{trigger_id}:{fire_key}`.
Recording is exactly-once (`UNIQUE(trigger_id, fire_key)`); delivery is at-least-once and
de-duplicated by the key on the target side.
"""
