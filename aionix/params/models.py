"""ParamStore's request and response models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParamType = Literal["string", "number", "boolean", "json", "secret_ref"]
LABEL_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"


class PutParam(BaseModel):
    """Every put makes a new version. A `{% … %}` value (or, for `json`, a structure holding
    them) is evaluated at read time."""

    model_config = ConfigDict(extra="forbid")

    type: ParamType = "string"
    value: Any = Field(..., description="typed value; secret_ref: a CredVault TRN or secret name")
    description: str | None = Field(None, max_length=1024, description="omit to keep the previous one")
    json_schema: dict[str, Any] | None = Field(None, description="JSON Schema the value must satisfy")
    pattern: str | None = Field(
        None, max_length=1024, description="regular expression a string value must match in full"
    )
    labels: list[str] = Field(
        default_factory=list, max_length=10, description="version labels to put on the new version"
    )
    expected_version: int | None = Field(
        None, ge=0, description="fail with 409 unless the current version is this (0: must not exist)"
    )


class RollbackParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1)
    labels: list[str] = Field(default_factory=list, max_length=10)


class LabelParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1)
    labels: list[str] = Field(..., min_length=1, max_length=10)


class GetParamQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1)
    label: str | None = Field(None, max_length=100)
    evaluate: bool = Field(False, description="evaluate dynamic values and resolve secret_ref (admin only for secrets)")


class ListParamsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = Field("/", max_length=1024)
    recursive: bool = Field(False, description="the whole subtree as one nested object")
    evaluate: bool = Field(False, description="evaluate dynamic values (secret_ref values stay TRNs)")
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=1024)


class ParamInfo(BaseModel):
    trn: str
    path: str
    type: ParamType
    value: Any
    dynamic: bool
    evaluated: bool = False
    version: int
    labels: list[str]
    description: str
    json_schema: dict[str, Any] | None = None
    pattern: str | None
    created_at: float
    updated_at: float
    updated_by: str | None


class ParamPage(BaseModel):
    items: list[ParamInfo]
    next_cursor: str | None = None


class ParamTree(BaseModel):
    prefix: str
    count: int
    tree: dict[str, Any]


class ParamVersion(BaseModel):
    version: int
    type: ParamType
    value: Any
    dynamic: bool
    labels: list[str]
    description: str
    note: str | None
    created_at: float
    created_by: str | None


class ParamVersions(BaseModel):
    path: str
    items: list[ParamVersion]
    next_cursor: str | None = None


class DeletedParam(BaseModel):
    path: str
    versions_deleted: int
