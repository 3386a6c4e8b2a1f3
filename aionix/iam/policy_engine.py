"""The runtime's policy evaluator: effective policies per principal (cached, invalidated on
change), the checks the API dispatcher, the MCP server and the bus make, and the store of
policies and attachments.

Other parts call `rt.policies.effective_policies(principal)`, `rt.policies.decide(principal,
action, resource, …)` and `rt.policies.invalidate()` (after a user's groups change, say).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from aionix import trn as trnlib
from aionix.errors import Conflict, NotFound, ValidationFailed, field_error
from aionix.iam.policy import (
    BUILTIN_NAMES,
    BUILTIN_PREFIX,
    ROLE_ORDER,
    Decision,
    PolicyDenied,
    PolicyDocument,
    PolicySet,
    Request,
    endpoint_action,
    resource_for,
    resource_template,
)

if TYPE_CHECKING:
    from aionix.api.auth import Principal
    from aionix.bus import CallContext
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.iam")
CACHE_SECONDS = 5.0
MAX_CACHED = 10_000
PRINCIPAL_KINDS = ("key", "user", "group")
_BODY_KEYS = frozenset({"intent", "provider"})
#: bus targets: (service, type) -> the action a call to it is
BUS_ACTIONS = {
    ("aionixfn", "function"): "aionixfn:Invoke",
    ("stepflow", "template"): "stepflow:StartExecution",
    ("openact", "action"): "openact:ExecuteAction",
    ("ai", "intent"): "ai:SubmitTask",
    ("modules", "module"): "modules:RunModule",
}
TagResolver = Callable[[str, str], Awaitable[dict[str, str] | None]]


class PolicyEngine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._builtins: dict[str, PolicyDocument] | None = None
        self._builtins_for = -1
        self._endpoints: dict[int, tuple[str, tuple[str, str, str | None, str | None]]] = {}
        self._cache: dict[tuple[Any, ...], tuple[PolicySet, float]] = {}
        #: (service, type) -> `async fn(tenant, trn) -> tags`: the tags `conditions.tags` reads
        self.tag_resolvers: dict[tuple[str, str], TagResolver] = {}
        #: resource TRN -> (its tags, until): read only for principals whose statements have a
        #: `tags` condition; forgotten after a write through the API on the resource
        self.tag_cache: dict[str, tuple[dict[str, str], float]] = {}
        self.generation = 0

    # ------------------------------------------------------------------ built-ins
    def builtins(self) -> dict[str, PolicyDocument]:
        """The role policies, rebuilt when a service (and its endpoints) has loaded since."""
        loaded = len(self.rt.plugins)
        if self._builtins is None or loaded != self._builtins_for:
            from aionix.iam.policy import builtin_documents

            self._builtins = builtin_documents(self.rt.endpoints())
            if self._builtins_for != -1:
                self.invalidate()
            self._builtins_for = loaded
        return self._builtins

    def endpoint_meta(self, ep: Any) -> tuple[str, tuple[str, str, str | None, str | None]]:
        meta = self._endpoints.get(id(ep))
        if meta is None:
            meta = self._endpoints[id(ep)] = (endpoint_action(ep), resource_template(ep))
        return meta

    def actions(self) -> list[dict[str, Any]]:
        out = []
        for ep in self.rt.endpoints():
            if ep.role is None:
                continue
            action, template = self.endpoint_meta(ep)
            out.append(
                {
                    "action": action,
                    "method": ep.method,
                    "path": ep.path,
                    "role": ep.role,
                    "resource": resource_for(
                        template, "{tenant}", {template[2]: f"{{{template[2]}}}"} if template[2] else {}
                    ),
                }
            )
        return out

    # ------------------------------------------------------------------ effective policies
    def invalidate(self) -> None:
        """Forget every compiled set (a policy, an attachment, a user's groups changed), here
        and on the other nodes of a cluster."""
        self.forget_cached()
        self.rt.cluster.changed("policies")

    def forget_cached(self) -> None:
        self._cache.clear()
        self.generation += 1

    async def effective_policies(self, principal: Principal) -> list[tuple[str, PolicyDocument]]:
        """The principal's policies: its role's built-in one, then those attached to its key, its
        user and each of its groups (in the principal's home tenant)."""
        builtins = self.builtins()
        out: list[tuple[str, PolicyDocument]] = []
        seen: set[str] = set()
        if principal.role in ROLE_ORDER:
            name = f"{BUILTIN_PREFIX}{principal.role}"
            out.append((name, builtins[name]))
            seen.add(name)
        rows = await self.rt.store.fetch_all(
            "iam_policies.attachments_of_principal",
            {
                "tenant": principal.home_tenant or principal.tenant,
                "key_id": principal.key_id,
                "user_id": principal.user_id,
                "groups": orjson.dumps(list(principal.groups)).decode(),
            },
        )
        for row in rows:
            name = row["policy"]
            if name in seen:
                continue
            seen.add(name)
            if name in builtins:
                out.append((name, builtins[name]))
            elif row["document"] is not None:
                out.append((name, PolicyDocument.model_validate_json(row["document"])))
        return out

    async def policy_set(self, principal: Principal) -> PolicySet:
        key = (
            principal.home_tenant or principal.tenant,
            principal.key_id,
            principal.user_id,
            principal.groups,
            principal.role,
        )
        now = time.monotonic()
        self.builtins()  # a service loaded since: new endpoints, new role policies
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        generation = self.generation
        policies = await self.effective_policies(principal)
        only_role = len(policies) == 1 and policies[0][0] == f"{BUILTIN_PREFIX}{principal.role}"
        pset = PolicySet(policies, builtin_only=only_role or not policies)
        if generation == self.generation:  # not invalidated while it was read
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (pset, now + CACHE_SECONDS)
        return pset

    async def _tags(self, resource: str, tenant: str) -> dict[str, str] | None:
        """The resource's tags (a qualified TRN, a function's alias, has its function's), from
        the resolver its service registered; kept CACHE_SECONDS."""
        now = time.monotonic()
        hit = self.tag_cache.get(resource)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            parsed = trnlib.parse(resource)
        except Exception:
            return None
        resolver = self.tag_resolvers.get((parsed.service, parsed.type))
        if resolver is None:
            return None
        bare = str(parsed.with_qualifier(None)) if parsed.qualifier else resource
        if bare is not resource and (hit := self.tag_cache.get(bare)) is not None and hit[1] > now:
            return hit[0]
        tags = await resolver(parsed.tenant or tenant, bare)
        # a missing resource is not kept (it may be created with tags the next moment)
        if tags is not None:
            if len(self.tag_cache) >= MAX_CACHED:
                self.tag_cache.clear()
            self.tag_cache[bare] = (tags, now + CACHE_SECONDS)
        return tags

    async def after_write(self, ep: Any, tenant: str, path: dict[str, Any]) -> None:
        """After a successful write through `ep`: the resource's tags may have changed (a
        secret's labels), and a deleted resource's tags go with it."""
        if ep.method not in ("PUT", "PATCH", "DELETE"):  # (starting an execution changes no tags)
            return
        _, template = self.endpoint_meta(ep)
        if template[2] is None or (template[0], template[1]) not in self.tag_resolvers:
            return
        resource = resource_for((*template[:3], None), tenant, path)
        self.tag_cache.pop(resource, None)
        # a deleted secret can be restored: its tags stay
        if ep.method == "DELETE" and ep.path.endswith("}") and template[3] is None and template[0] != "credvault":
            last = ep.path.rsplit("/", 1)[-1]
            if last[1:-1].split(":")[0] == template[2]:  # the resource itself, not a part of it
                from aionix.iam import tags

                try:
                    await tags.forget_deleted(self.rt, tenant, resource)
                except Exception:  # the delete stands (`DELETE /api/v1/tags` drops them)
                    log.exception("could not drop the tags of %s", resource)

    async def decide(self, principal: Principal, action: str, resource: str, **context: Any) -> Decision:
        """May `principal` do `action` on `resource`? (context: source_ip, now, intent, route,
        provider, via, tags)."""
        pset = await self.policy_set(principal)
        context.setdefault("tenant", principal.tenant)
        req = Request(action=action, resource=resource, **context)
        if "tags" in pset.needs and req.tags is None:
            req = Request(**{**_fields(req), "tags": await self._tags(resource, principal.tenant)})
        return pset.decide(req)

    # ------------------------------------------------------------------ checks
    async def authorize_endpoint(
        self,
        ep: Any,
        principal: Principal,
        request: Any,
        path: dict[str, Any],
        body: Any = None,
        *,
        final: bool = False,
    ) -> bool:
        """Raise `PolicyDenied` unless the principal may call `ep`. Returns True when the decision
        waits for the body (a statement of the principal has an intent or provider condition):
        call again with `body` and `final=True` once it is validated."""
        pset = await self.policy_set(principal)
        if not final and ep.body is not None and pset.needs & _BODY_KEYS:
            return True
        action, template = self.endpoint_meta(ep)
        resource = resource_for(template, principal.tenant, path)
        req = Request(
            action=action,
            resource=resource,
            tenant=principal.tenant,
            source_ip=request.client.host if request.client else None,
            now=time.time(),
            intent=getattr(body, "intent", None) if body is not None else None,
            provider=getattr(body, "provider", None) if body is not None else None,
            # read only when a statement's condition needs it (building the URL is not free)
            route=f"{ep.method} {request.url.path}" if "route" in pset.needs else None,
            via=("mcp" if request.headers.get("user-agent") == "aionix-mcp" else "api")
            if "via" in pset.needs
            else "api",
        )
        if "tags" in pset.needs:
            req = Request(**{**_fields(req), "tags": await self._tags(resource, principal.tenant)})
        decision = pset.decide(req)
        if decision.allowed:
            return False
        if pset.builtin_only and decision.statement is None and ep.role is not None:
            # a key with only its role: the answer and message it always had
            raise PolicyDenied(
                decision, f"this action needs the {ep.role} role; the key has {principal.role}", audit=False
            )
        raise PolicyDenied(decision)

    async def authorize_bus(self, ctx: CallContext, target: str, parsed: Any, payload: Any) -> None:
        """A bus call made on behalf of a principal (`ctx.on_behalf_of`)."""
        principal = ctx.on_behalf_of
        if principal is None:
            return
        if isinstance(parsed, trnlib.TRN):
            op = payload.get("op") if isinstance(payload, dict) else None
            if isinstance(op, str) and op.isidentifier():
                action = f"{parsed.service}:{op[:1].upper()}{op[1:]}"
            else:
                action = BUS_ACTIONS.get((parsed.service, parsed.type), f"{parsed.service}:Invoke")
            resource = str(parsed)
            intent = parsed.name if parsed.type == "intent" else None
        else:
            action, resource, intent = "openact:Call", f"trn:openact:{ctx.tenant}:kind/{target}", None
        decision = await self.decide(principal, action, resource, tenant=ctx.tenant, via="bus", intent=intent)
        if not decision.allowed:
            exc = PolicyDenied(decision)
            await self.audit_denial(None, principal, exc, trace_id=ctx.trace_id)
            raise exc

    async def audit_denial(self, request: Any, principal: Principal, exc: PolicyDenied, **extra: Any) -> None:
        d = exc.decision
        details = {**d.to_dict(), **extra}
        try:
            await self.rt.audit(request, principal, "policy.denied", status=403, resource=d.resource, details=details)
        except Exception:  # the denial stands even if its audit row could not be written
            pass

    # ------------------------------------------------------------------ the store
    async def list(self, tenant: str, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        items: list[dict[str, Any]] = []
        if cursor is None:
            items.extend(self._builtin_view(name) for name in BUILTIN_NAMES)
        rows = await self.rt.store.fetch_all(
            "iam_policies.list", {"tenant": tenant, "cursor": cursor, "limit": limit + 1}
        )
        more = len(rows) > limit
        items.extend(_view(r) for r in rows[:limit])
        return items, rows[limit - 1]["name"] if more else None

    def _builtin_view(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "description": f"built-in: the {name[len(BUILTIN_PREFIX) :]} role",
            "document": self.builtins()[name].model_dump(mode="json", exclude_none=True),
            "builtin": True,
            "version": 1,
            "created_at": None,
            "updated_at": None,
        }

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        if name in BUILTIN_NAMES:
            return self._builtin_view(name)
        row = await self.rt.store.fetch_one("iam_policies.get", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"policy {name!r} not found")
        return _view(row)

    async def put(
        self, tenant: str, name: str, description: str, document: PolicyDocument, by: str | None
    ) -> dict[str, Any]:
        if name.startswith(BUILTIN_PREFIX):
            raise field_error("path.name", f"names starting with {BUILTIN_PREFIX!r} are reserved for built-in policies")
        doc = document.model_dump_json(exclude_none=True)
        await self.rt.store.transaction(
            lambda tx: tx.fetch_one(
                "iam_policies.upsert",
                {
                    "tenant": tenant,
                    "name": name,
                    "description": description,
                    "document": doc,
                    "now": time.time(),
                    "by": by,
                },
            )
        )
        self.invalidate()
        return await self.get(tenant, name)

    async def delete(self, tenant: str, name: str) -> None:
        if name in BUILTIN_NAMES:
            raise Conflict(f"{name} is built in and cannot be deleted")

        def fn(tx: Any) -> int:
            tx.execute("iam_policies.delete_attachments", {"tenant": tenant, "name": name})
            return tx.execute("iam_policies.delete", {"tenant": tenant, "name": name})

        if not await self.rt.store.transaction(fn):
            raise NotFound(f"policy {name!r} not found")
        self.invalidate()

    async def attach(self, tenant: str, name: str, kind: str, principal_id: str, by: str | None) -> None:
        await self.get(tenant, name)  # 404 for an unknown policy
        await self.rt.store.execute(
            "iam_policies.attach",
            {"tenant": tenant, "kind": kind, "id": principal_id, "policy": name, "now": time.time(), "by": by},
        )
        self.invalidate()

    async def detach(self, tenant: str, name: str, kind: str, principal_id: str) -> None:
        n = await self.rt.store.execute(
            "iam_policies.detach", {"tenant": tenant, "kind": kind, "id": principal_id, "policy": name}
        )
        if not n:
            raise NotFound(f"policy {name!r} is not attached to {kind} {principal_id!r}")
        self.invalidate()

    async def attachments(self, tenant: str, name: str) -> list[dict[str, Any]]:
        await self.get(tenant, name)
        return await self.rt.store.fetch_all("iam_policies.attachments_of_policy", {"tenant": tenant, "policy": name})

    async def key_principal(self, tenant: str, key_id: str) -> Principal:
        from aionix.api.auth import Principal

        row = await self.rt.store.fetch_one("core.get_key", {"id": key_id, "tenant": tenant})
        if row is None:
            raise field_error("body.key_id", f"no key {key_id!r} in this tenant", ValidationFailed)
        return Principal(row["id"], tenant, row["role"], bool(row["cross_tenant"]), tenant)


def _fields(req: Request) -> dict[str, Any]:
    return {name: getattr(req, name) for name in Request.__dataclass_fields__}


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "document": orjson.loads(row["document"]),
        "builtin": False,
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
