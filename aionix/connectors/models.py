"""Request and response models of the connectors API (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME_PATTERN)
    kind: str = Field(..., min_length=1, max_length=64, description="a connector kind from GET /api/v1/connectors")
    config: dict[str, Any] = Field(
        default_factory=dict, description="the kind's connection schema; secrets only as *_secret CredVault references"
    )
    description: str = Field("", max_length=2000)


class ConnectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(default_factory=dict)
    description: str = Field("", max_length=2000)


class Connection(BaseModel):
    trn: str
    name: str
    kind: str
    config: dict[str, Any]
    description: str
    created_at: float
    updated_at: float


class ConnectionListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(None, max_length=64)
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=512)


class ConnectionTest(BaseModel):
    ok: bool
    detail: str = ""
    error: str | None = None
    latency_ms: float


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME_PATTERN)
    kind: str = Field(..., min_length=1, max_length=64)
    connection: str | None = Field(None, max_length=1024, description="connection name or TRN (of the same kind)")
    operation: str | None = Field(None, max_length=64, description="defaults to the kind's default operation")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="the operation's parameters; strings may be {% JSONata %} over {input}"
    )
    description: str = Field("", max_length=2000)


class ActionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(..., min_length=1, max_length=64)
    connection: str | None = Field(None, max_length=1024)
    operation: str | None = Field(None, max_length=64)
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str = Field("", max_length=2000)


class Action(BaseModel):
    trn: str
    name: str
    kind: str
    connection: str | None
    operation: str
    parameters: dict[str, Any]
    description: str
    created_at: float
    updated_at: float


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(None, description="available to the action's parameter expressions as `input`")
    parameters: dict[str, Any] | None = Field(None, description="override saved parameters (merged on top)")


class ExecuteResult(BaseModel):
    action: str
    result: Any = None
    duration_ms: float


class AuthorizeStart(BaseModel):
    authorization_url: str
    state: str
    redirect_uri: str


class AuthorizeStatus(BaseModel):
    state: str
    connection: str
    completed: bool
    error: str | None = None
    token_secret: str | None = Field(None, description="the CredVault credential the tokens belong in")
    tokens: dict[str, Any] | None = Field(
        None, description="handed over once after completion, to be stored in CredVault"
    )


class CallbackQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: str = Field(..., min_length=1, max_length=512, description="the state this server issued")
    code: str | None = Field(None, max_length=4096)
    error: str | None = Field(None, max_length=512)
    error_description: str | None = Field(None, max_length=2048)
