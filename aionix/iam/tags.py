"""Tags on resources for the `tags` condition of policies.

Any resource a TRN names and its service can resolve (workflow templates, functions, secrets,
parameters, triggers, connections, saved actions, …) takes tags through `PUT /api/v1/tags`
(a string map per TRN, in `resource_tags`); a CredVault secret's own `labels` count as its tags
too (the tags set here win on a shared key). The policy engine asks the resolvers registered
here (`rt.policies.tag_resolvers`, keyed by TRN service and type) only for principals with a
statement that has a `tags` condition, keeps each answer a few seconds and forgets it after a
write through the API on the resource (aionix/api/dispatch.py): the store is read once per
resource, not once per call. Deleting a resource through the API deletes its tags.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from aionix import jsonutil
from aionix import trn as trnlib
from aionix.errors import AionixError, NotFound, ValidationFailed, field_error

if TYPE_CHECKING:
    from aionix.runtime import Runtime

#: the resources that take tags: (TRN service, type)
TAGGABLE = (
    ("stepflow", "template"),
    ("aionixfn", "function"),
    ("credvault", "credential"),
    ("paramstore", "param"),
    ("igniter", "trigger"),
    ("openact", "connection"),
    ("openact", "action"),
)
MAX_TAGS = 50
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+@-]{0,127}$")


def _string_map(text: Any) -> dict[str, str]:
    try:
        value = jsonutil.loads(text) if isinstance(text, (str, bytes)) else text
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise field_error("tags", f"at most {MAX_TAGS} tags")
    for key, value in tags.items():
        if not KEY_RE.match(key):
            raise field_error(f"tags.{key}", "a tag key starts with a letter or digit, [A-Za-z0-9_.:/=+@-], up to 128")
        if len(value) > 256:
            raise field_error(f"tags.{key}", "a tag value is at most 256 characters")


def parse_target(trn: str, tenant: str) -> trnlib.TRN:
    """The TRN to tag: a resource of the caller's tenant whose type takes tags (no qualifier)."""
    try:
        parsed = trnlib.parse(trn)
    except AionixError as exc:
        raise field_error("trn", exc.message, ValidationFailed) from None
    if (parsed.service, parsed.type) not in TAGGABLE:
        kinds = ", ".join(f"{s}:{t}" for s, t in TAGGABLE)
        raise field_error("trn", f"{parsed.service}:{parsed.type} takes no tags (these do: {kinds})")
    if parsed.qualifier:
        raise field_error(
            "trn", "tags belong to the resource, not to one of its versions or aliases: drop the qualifier"
        )
    if parsed.tenant != tenant:
        raise NotFound(f"{trn} not found")
    return parsed


async def _exists(rt: Runtime, parsed: trnlib.TRN) -> bool:
    resolver = rt.resolvers.get((parsed.service, parsed.type))
    if resolver is None:
        return False
    try:
        return await resolver(parsed) is not None
    except AionixError:
        return False


async def get(rt: Runtime, tenant: str, trn: str) -> dict[str, Any]:
    parsed = parse_target(trn, tenant)
    row = await rt.store.fetch_one("iam_tags.get", {"tenant": tenant, "resource": str(parsed)})
    if row is None and not await _exists(rt, parsed):
        raise NotFound(f"{trn} not found")
    return {
        "trn": str(parsed),
        "tags": _string_map(row["tags"]) if row else {},
        "updated_at": row["updated_at"] if row else None,
        "updated_by": row["updated_by"] if row else None,
    }


async def put(rt: Runtime, tenant: str, trn: str, tags: dict[str, str], by: str | None) -> dict[str, Any]:
    parsed = parse_target(trn, tenant)
    check_tags(tags)
    if not await _exists(rt, parsed):
        raise NotFound(f"{trn} not found")
    resource = str(parsed)
    params = {
        "tenant": tenant,
        "resource": resource,
        "tags": jsonutil.dumps(tags).decode(),
        "now": time.time(),
        "by": by,
    }
    await rt.store.transaction(lambda tx: tx.execute("iam_tags.put", params))
    rt.policies.tag_cache.pop(resource, None)
    return await get(rt, tenant, resource)


async def delete(rt: Runtime, tenant: str, trn: str) -> None:
    parsed = parse_target(trn, tenant)
    resource = str(parsed)
    n = await rt.store.transaction(lambda tx: tx.execute("iam_tags.delete", {"tenant": tenant, "resource": resource}))
    rt.policies.tag_cache.pop(resource, None)
    if not n:
        raise NotFound(f"{trn} has no tags")


async def forget_deleted(rt: Runtime, tenant: str, resource: str) -> None:
    """The resource was deleted: its tags go too (one created again later starts untagged)."""
    await rt.store.transaction(lambda tx: tx.execute("iam_tags.delete", {"tenant": tenant, "resource": resource}))


def register(rt: Runtime) -> None:
    async def tags_of(tenant: str, resource: str) -> dict[str, str] | None:
        row = await rt.store.fetch_one("iam_tags.get", {"tenant": tenant, "resource": resource})
        return _string_map(row["tags"]) if row is not None else {}

    async def secret_tags(tenant: str, resource: str) -> dict[str, str] | None:
        name = trnlib.parse(resource).path
        row = await rt.store.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        labels = _string_map(row["labels"]) if row is not None and row.get("deleted_at") is None else {}
        return {**labels, **(await tags_of(tenant, resource) or {})}

    for kind in TAGGABLE:
        rt.policies.tag_resolvers[kind] = tags_of
    rt.policies.tag_resolvers[("credvault", "credential")] = secret_tags
