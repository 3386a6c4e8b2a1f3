"""CredVault's request and response models. No response model has a field for a secret's
value except `RevealedSecret`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SecretType = Literal["api_key", "password", "certificate", "oauth_token", "json"]
Stage = Literal["current", "previous", "pending"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
READERS_DESCRIPTION = (
    "who may resolve the value over the bus: TRN patterns (`*` matches any characters) of the "
    "workflows (trn:stepflow:{tenant}:template/NAME), functions (trn:aionixfn:{tenant}:function/NAME), "
    "connections, actions and triggers that may read it; default for a new secret: "
    '["trn:*:{tenant}:*"] (any resource of the tenant); [] lets none. Setting it needs the admin role.'
)
Readers = list[str]


class Rotation(BaseModel):
    """How a secret rotates without a supplied value: `target` (a function or workflow TRN) is
    invoked with `{"secret", "name", "type", "current_version"}` and returns the new value
    (or `{"value": …}`); `schedule` (cron, UTC) rotates it automatically."""

    model_config = ConfigDict(extra="forbid")

    target: str | None = Field(
        None, max_length=1024, description="trn:aionixfn:…:function/… or trn:stepflow:…:template/…"
    )
    schedule: str | None = Field(None, max_length=200, description="cron expression (UTC), e.g. '0 3 * * 0'")


class CreateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME_PATTERN)
    type: SecretType
    value: Any = Field(..., description="a string; any JSON for `json`; a string or object for `oauth_token`")
    description: str = Field("", max_length=2048)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    rotation: Rotation | None = None
    readers: Readers | None = Field(None, max_length=64, description=READERS_DESCRIPTION)


class UpdateSecret(BaseModel):
    """A new value becomes a new version (and the `current` stage); other fields change the
    metadata only."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(None, description="omit to change only the metadata")
    description: str | None = Field(None, max_length=2048)
    labels: dict[str, str] | None = Field(None, max_length=64)
    rotation: Rotation | None = None
    clear_rotation: bool = Field(False, description="remove the rotation settings")
    readers: Readers | None = Field(None, max_length=64, description=READERS_DESCRIPTION)


class SecretPolicy(BaseModel):
    """A secret's access policy, like a Secrets Manager resource policy (admin only)."""

    model_config = ConfigDict(extra="forbid")

    readers: Readers = Field(..., max_length=64, description=READERS_DESCRIPTION)


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(
        None, description="the new value; omitted: the rotation target makes one, or the pending version is promoted"
    )
    promote: bool = Field(True, description="move the pending version to current (current becomes previous)")


class RevealQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1)
    stage: Stage | None = None


class ListSecretsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=512)
    include_deleted: bool = False


class DeleteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="purge now, without the recovery window (admin only)")


class Stages(BaseModel):
    current: int | None = None
    previous: int | None = None
    pending: int | None = None


class SecretInfo(BaseModel):
    """A secret's metadata: never its value."""

    trn: str
    name: str
    type: SecretType
    description: str
    labels: dict[str, str]
    rotation: Rotation | None
    latest_version: int
    stages: Stages
    created_at: float
    created_by: str | None
    updated_at: float
    rotated_at: float | None
    next_rotation_at: float | None
    deleted_at: float | None
    purge_after: float | None
    readers: list[str] = Field(description=READERS_DESCRIPTION)


class SecretVersion(BaseModel):
    version: int
    stages: list[Stage]
    created_at: float
    created_by: str | None


class SecretVersions(BaseModel):
    name: str
    items: list[SecretVersion]


class RevealedSecret(BaseModel):
    name: str
    type: SecretType
    version: int
    stages: list[Stage]
    value: Any


class RotateMasterKey(BaseModel):
    """The new master key material, for the sources the server cannot make up itself: with
    `AIONIX_MASTER_KEY` send `new_key` (base64 of 32 bytes), with `AIONIX_MASTER_PASSPHRASE`
    send `new_passphrase`. With a key file the server generates the new key."""

    model_config = ConfigDict(extra="forbid")

    new_key: str | None = Field(None, max_length=256)
    new_passphrase: str | None = Field(None, min_length=8, max_length=1024)


class MasterKeyStatus(BaseModel):
    source: Literal["env", "passphrase", "file"]
    master_id: str
    created_at: float
    rotated_at: float | None
    versions: int
    rewrapped: int | None = None
    next_step: str | None = None
