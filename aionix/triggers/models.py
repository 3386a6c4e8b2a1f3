"""Request and response models of the triggers API, and the `[triggers]` config section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aionix.api.endpoint import PageQuery

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
Misfire = Literal["skip", "fire_once", "fire_all"]


class TriggersConfig(BaseModel):
    """`[triggers]` in config.toml."""

    model_config = ConfigDict(extra="forbid")

    misfire_grace_seconds: float = Field(60.0, ge=0, le=86400)
    max_concurrent_deliveries: int = Field(64, ge=1, le=4096)
    delivery_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    claim_lease_seconds: float = Field(600.0, gt=0, le=86400)
    scheduler_batch: int = Field(500, ge=1, le=10000)
    max_wake_interval_seconds: float = Field(60.0, gt=0, le=3600)
    rotation_grace_seconds: float = Field(86400.0, ge=0, le=30 * 86400)
    rejected_record_rate: float = Field(10.0, gt=0, le=10000)
    rejected_record_burst: int = Field(100, ge=1, le=100000)
    history_retention_days: float = Field(30.0, gt=0)
    event_retention_days: float = Field(7.0, gt=0)


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(
        ...,
        min_length=1,
        max_length=256,
        description="cron (5 fields, or 6 with seconds first; `cron(...)` accepted), `rate(5 minutes)` or `at(2026-12-01T10:00:00Z)`",
    )
    timezone: str = Field("UTC", max_length=64, description="IANA time zone of the cron wall clock")
    jitter_seconds: float = Field(0.0, ge=0, le=3600, description="delay each fire by a stable random 0..N s")
    misfire: Misfire = Field("fire_once", description="what to do with due times missed while the server was down")
    max_catchup: int = Field(100, ge=1, le=1000, description="fire_all: most missed due times fired")


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: Literal["hmac", "token"] = Field(
        "hmac", description="hmac: Standard Webhooks signature; token: static bearer token"
    )
    tolerance_seconds: int = Field(300, ge=1, le=3600, description="replay window for webhook-timestamp")
    content_types: list[str] = Field(
        default_factory=lambda: ["application/json"],
        min_length=1,
        max_length=8,
        description="accepted content types (application/json, application/x-www-form-urlencoded, text/plain)",
    )
    max_body_bytes: int = Field(262144, ge=1, le=16 * 1024 * 1024)
    reply: Literal["async", "sync"] = Field("async", description="sync: answer with the workflow's output")
    reply_timeout_seconds: float = Field(30.0, gt=0, le=300)


class EventSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: dict[str, Any] = Field(..., description="EventBridge-style pattern over source, type and detail")


class RetrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1, le=100)
    interval_seconds: float = Field(1.0, gt=0, le=3600)
    backoff_rate: float = Field(2.0, ge=1, le=10)
    max_delay_seconds: float = Field(300.0, gt=0, le=86400)


class TriggerBody(BaseModel):
    """The definition of a trigger: exactly one of `schedule`, `webhook`, `event`."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=1024)
    target: str = Field(
        ..., min_length=1, max_length=512, description="workflow template, function or action TRN, or an action kind"
    )
    input: str | None = Field(None, max_length=16384, description="JSONata transform of the triggering payload")
    enabled: bool = True
    schedule: ScheduleSpec | None = None
    webhook: WebhookSpec | None = None
    event: EventSpec | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)


class CreateTrigger(TriggerBody):
    name: str = Field(..., pattern=NAME_PATTERN)


class Trigger(BaseModel):
    id: str
    trn: str
    name: str
    tenant: str
    kind: Literal["schedule", "webhook", "event"]
    description: str
    target: str
    input: str | None
    enabled: bool
    schedule: ScheduleSpec | None = None
    webhook: WebhookSpec | None = None
    event: EventSpec | None = None
    retry: RetrySpec
    webhook_path: str | None = None
    next_fire_at: str | None = Field(None, description="next due time (UTC, ISO 8601)")
    version: int
    fire_count: int
    last_fired_at: float | None
    created_at: float
    updated_at: float


class TriggerWithCredential(Trigger):
    secret: str | None = Field(None, description="the webhook signing secret; shown only in this response")
    token: str | None = Field(None, description="the webhook bearer token; shown only in this response")


class ListQuery(PageQuery):
    kind: Literal["schedule", "webhook", "event"] | None = None


class HistoryQuery(PageQuery):
    status: Literal["pending", "delivered", "dead", "rejected", "skipped"] | None = None


class Fire(BaseModel):
    id: int
    fire_key: str
    origin: str
    due_at: float | None
    payload_digest: str | None
    status: str
    attempts: int
    next_attempt_at: float | None
    result_id: str | None
    error: str | None
    cause: str | None
    created_at: float
    updated_at: float


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: float | None = Field(
        None, ge=0, le=30 * 86400, description="how long the old credential stays valid"
    )


class PutEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=256)
    type: str = Field(..., min_length=1, max_length=256)
    detail: Any = Field(default_factory=dict)


class EventAccepted(BaseModel):
    id: str
    matched: int
    fires: list[int]


class WebhookAccepted(BaseModel):
    fire_id: int
    webhook_id: str
    status: str
    result_id: str | None = None
