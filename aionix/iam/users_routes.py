"""Users and groups of the caller's tenant (admin role)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aionix.api.endpoint import Api, Call, Page, PageQuery

api = Api("users")
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
Role = Literal["viewer", "operator", "admin"]


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME, description="the sign-in name, unique in the tenant")
    role: Role
    email: str | None = Field(None, max_length=320)
    password: str | None = Field(
        None, min_length=1, max_length=1024, description="a local user's password ([auth] password_min_length)"
    )
    groups: list[str] = Field([], max_length=100)


class UpdateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    email: str | None = Field(None, max_length=320)
    disabled: bool | None = Field(None, description="a disabled user cannot sign in; its sessions end")
    password: str | None = Field(None, min_length=1, max_length=1024, description="sets a new password; sessions end")


class User(BaseModel):
    id: str
    tenant: str
    name: str
    email: str | None = None
    role: str
    source: str = Field(..., description="local (password) or oidc")
    disabled: bool
    created_at: float
    updated_at: float
    last_login_at: float | None = None
    groups: list[str] | None = None


class CreateGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME)
    description: str = Field("", max_length=1000)


class Member(BaseModel):
    id: str
    name: str
    source: str = Field(..., description="manual, or oidc (from the group claim at sign-in)")


class Group(BaseModel):
    tenant: str
    name: str
    description: str
    created_at: float
    members: list[Member] | int = Field(..., description="the members (one group) or their number (a list)")


class AddMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(..., pattern=NAME, description="the user's name")


def _users(call: Call) -> Any:
    return call.service("iam").users


@api.get("/api/v1/users", role="admin", query=PageQuery, response=Page[User])
async def list_users(call: Call) -> dict[str, Any]:
    """The tenant's users."""
    return await _users(call).list(call.tenant, call.query.cursor, call.page_limit(call.query.limit))


@api.post("/api/v1/users", role="admin", body=CreateUser, response=User, status=201)
async def create_user(call: Call) -> dict[str, Any]:
    """Create a user (with a password: a local user who signs in at /api/v1/auth/login)."""
    b: CreateUser = call.body
    return await _users(call).create(call.tenant, b.name, b.role, b.email, b.password, b.groups)


@api.get("/api/v1/users/{name}", role="admin", response=User)
async def get_user(call: Call) -> dict[str, Any]:
    """One user, with its groups."""
    return await _users(call).get(call.tenant, call.path["name"])


@api.put("/api/v1/users/{name}", role="admin", body=UpdateUser, response=User)
async def update_user(call: Call) -> dict[str, Any]:
    """Change a user's role, email, password or disabled flag."""
    b: UpdateUser = call.body
    return await _users(call).update(
        call.tenant, call.path["name"], role=b.role, email=b.email, disabled=b.disabled, password=b.password
    )


@api.delete("/api/v1/users/{name}", role="admin", status=204)
async def delete_user(call: Call) -> None:
    """Delete a user; its sessions end."""
    await _users(call).delete(call.tenant, call.path["name"])


@api.get("/api/v1/groups", role="admin", query=PageQuery, response=Page[Group])
async def list_groups(call: Call) -> dict[str, Any]:
    """The tenant's groups, with their number of members."""
    return await _users(call).list_groups(call.tenant, call.query.cursor, call.page_limit(call.query.limit))


@api.post("/api/v1/groups", role="admin", body=CreateGroup, response=Group, status=201)
async def create_group(call: Call) -> dict[str, Any]:
    """Create a group (policies attach to groups)."""
    b: CreateGroup = call.body
    return await _users(call).create_group(call.tenant, b.name, b.description)


@api.get("/api/v1/groups/{name}", role="admin", response=Group)
async def get_group(call: Call) -> dict[str, Any]:
    """One group and its members."""
    return await _users(call).get_group(call.tenant, call.path["name"])


@api.delete("/api/v1/groups/{name}", role="admin", status=204)
async def delete_group(call: Call) -> None:
    """Delete a group (its members stay, without it)."""
    await _users(call).delete_group(call.tenant, call.path["name"])


@api.post("/api/v1/groups/{name}/members", role="admin", body=AddMember, response=Group)
async def add_group_member(call: Call) -> dict[str, Any]:
    """Add a user to a group."""
    return await _users(call).add_member(call.tenant, call.path["name"], call.body.user)


@api.delete("/api/v1/groups/{name}/members/{user}", role="admin", status=204)
async def remove_group_member(call: Call) -> None:
    """Remove a user from a group."""
    await _users(call).remove_member(call.tenant, call.path["name"], call.path["user"])
