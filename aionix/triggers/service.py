"""The triggers service: definitions (CRUD, enable/disable, secret rotation, history), event
intake, and the lifecycle of the scheduler and outbox loops."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from aionix import expr, jsonutil
from aionix.api.endpoint import int_cursor
from aionix.errors import Conflict, NotFound, PayloadTooLarge, field_error
from aionix.store.sqlite import UniqueViolation
from aionix.triggers.delivery import Delivery, fireable
from aionix.triggers.models import (
    CreateTrigger,
    PutEvent,
    ScheduleSpec,
    TriggerBody,
    TriggersConfig,
    WebhookSpec,
)
from aionix.triggers.patterns import Pattern
from aionix.triggers.records import deliverable, fire_record, to_api, trigger_trn
from aionix.triggers.schedule import parse_schedule
from aionix.triggers.scheduler import Scheduler, run_time
from aionix.triggers.signing import SYSTEM_KEY, SecretBox, WebhookSecrets, new_secret, new_token, token_hash
from aionix.triggers.webhooks import Webhooks

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.triggers")
CONTENT_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded", "text/plain"})


class TriggerService:
    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.time) -> None:
        self.rt = rt
        self.cfg: TriggersConfig = rt.config.service_section("triggers", TriggersConfig)
        self.clock = clock
        self.box = WebhookSecrets(rt.config.data_dir / "triggers.key")
        self.delivery = Delivery(rt, self.cfg, clock)
        self.scheduler = Scheduler(rt, self.cfg, self.delivery, clock)
        self.webhooks = Webhooks(rt, self.cfg, self.delivery, self.box, clock)
        self._patterns: dict[tuple[str, int], Pattern] = {}
        self._event_tenants: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.box.box = await self.rt.services["vault"].system_keys.box(SYSTEM_KEY)
        await self._migrate_legacy_secrets()
        await self._refresh_event_tenants()
        self.rt.event_sinks.append(self.platform_event)
        self.rt.resolvers[("igniter", "trigger")] = self.resolve
        self._tasks = [
            self.rt.spawn(self.scheduler.run(), "triggers-scheduler"),
            self.rt.spawn(self.delivery.run(), "triggers-outbox"),
            self.rt.spawn(self._prune_loop(), "triggers-pruner"),
        ]

    async def _migrate_legacy_secrets(self) -> None:
        """Re-seal webhook secrets of earlier versions (sealed under `triggers.key`) under the
        master-key-wrapped system key, in one transaction. Without the old key file they cannot
        be opened: say so once here (their webhooks answer a 500 naming the way out)."""
        rows = await self.rt.store.fetch_all("triggers.webhook_credentials")
        legacy = [
            r
            for r in rows
            if any(
                WebhookSecrets.is_legacy(item["sealed"])
                for item in jsonutil.loads(r["credentials"]).get("items", [])
                if "sealed" in item
            )
        ]
        if not legacy:
            return
        path = self.box.legacy_key_path
        if not path.exists():
            log.error(
                "%d webhook trigger(s) hold secrets sealed under %s, which is missing: %s answer 500 until "
                "an operator rotates their secret (aio tr rotate-secret NAME)",
                len(legacy),
                path,
                ", ".join(f"{r['tenant']}/{r['name']}" for r in legacy[:20]),
            )
            return
        old_box = SecretBox(path)
        updates = []
        failed = []
        for r in legacy:
            creds = jsonutil.loads(r["credentials"])
            aad = f"{r['tenant']}/{r['id']}"
            try:
                for item in creds.get("items", []):
                    if "sealed" in item and WebhookSecrets.is_legacy(item["sealed"]):
                        item["sealed"] = self.box.seal(old_box.open(item["sealed"], aad), aad)
            except (InvalidTag, ValueError):
                failed.append(f"{r['tenant']}/{r['name']}")
                continue
            updates.append({"id": r["id"], "old": r["credentials"], "credentials": jsonutil.dumps(creds).decode()})

        def reseal(tx: Any) -> int:
            return sum(tx.execute("triggers.reseal_credentials", u) for u in updates)

        moved = await self.rt.store.transaction(reseal)
        log.warning(
            "moved %d webhook secret set(s) from %s under the master key; the file is no longer needed "
            "once no backup made before this start is kept",
            moved,
            path,
        )
        if failed:
            log.error("webhook secrets that do not open under %s (left as they are): %s", path, ", ".join(failed))

    async def stop(self) -> None:
        if self.platform_event in self.rt.event_sinks:
            self.rt.event_sinks.remove(self.platform_event)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.delivery.drain(timeout=5.0)
        await self.delivery.cancel()
        try:  # what is still pending goes to the next sweep of any node, at once
            await self.delivery.release_own()
        except Exception as exc:
            log.warning("releasing this node's outbox claims failed: %s", exc)

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(3600)
            now = self.clock()
            await self.rt.store.execute(
                "triggers.prune_fires", {"before": now - self.cfg.history_retention_days * 86400}
            )
            await self.rt.store.execute(
                "triggers.prune_events", {"before": now - self.cfg.event_retention_days * 86400}
            )

    def wake(self) -> None:
        self.scheduler.wake.set()

    # ------------------------------------------------------------------ reads
    async def row(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.rt.store.fetch_one("triggers.get_trigger", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"trigger {name!r} not found", details={"trn": trigger_trn(tenant, name)})
        return row

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        return to_api(await self.row(tenant, name))

    async def list(self, tenant: str, *, kind: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = await self.rt.store.fetch_all(
            "triggers.list_triggers", {"tenant": tenant, "kind": kind, "cursor": cursor, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [to_api(r) for r in rows], "next_cursor": rows[-1]["name"] if more and rows else None}

    async def history(
        self, tenant: str, name: str, *, status: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        row = await self.row(tenant, name)
        after = int_cursor(cursor)
        rows = await self.rt.store.fetch_all(
            "triggers.history", {"trigger_id": row["id"], "status": status, "cursor": after, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": rows, "next_cursor": str(rows[-1]["id"]) if more and rows else None}

    async def doctor(self, tenant: str | None) -> list[dict[str, Any]]:
        """`aio admin doctor`: triggers whose target is gone (each fire would fail), and the
        outbox backlog (fires waiting for delivery, and how late the oldest is)."""
        from aionix import trn as trnlib

        out: list[dict[str, Any]] = []
        rows = await self.rt.store.fetch_all("doctor.trigger_targets", {"tenant": tenant})
        for row in rows:
            target = row["target"]
            gone: str | None = None
            if trnlib.is_trn(target):
                parsed = trnlib.parse(target)
                resolver = self.rt.resolvers.get((parsed.service, parsed.type))
                if resolver is not None and await resolver(parsed) is None:
                    gone = f"its target {target} no longer exists"
            elif not self.rt.bus.has_target(target):
                gone = f"its target action kind {target!r} is not known to this server"
            if gone is not None:
                state = "enabled: every fire fails" if row["enabled"] else "disabled"
                out.append(
                    {
                        "check": "trigger-targets",
                        "status": "problem" if row["enabled"] else "warn",
                        "tenant": row["tenant"],
                        "resource": f"trn:igniter:{row['tenant']}:trigger/{row['name']}",
                        "message": f"trigger {row['name']} ({row['kind']}, {state}): {gone}",
                        "fix": f"point it at an existing target (`aio tr update {row['name']} -f DEFINITION`), "
                        f"create the target again, or delete the trigger (`aio tr delete {row['name']}`)",
                    }
                )
        if not out:
            out.append(
                {"check": "trigger-targets", "status": "ok", "message": f"all {len(rows)} trigger targets exist"}
            )
        box = await self.rt.store.fetch_one("doctor.outbox", {"tenant": tenant}) or {}
        pending = int(box.get("pending") or 0)
        late = max(0.0, self.clock() - box["oldest_due"]) if box.get("oldest_due") is not None else 0.0
        details = {"pending": pending, "oldest_late_seconds": round(late, 3)}
        if pending and late > 300:  # past due by more than five minutes
            out.append(
                {
                    "check": "trigger-outbox",
                    "status": "warn",
                    "message": f"{pending} trigger fire(s) wait for delivery; the oldest is {late:.0f} s past due "
                    "(targets failing or slow: fires are retried with backoff, then dead)",
                    "fix": "look at the failing deliveries (`aio tr history NAME`) and fix their targets",
                    "details": details,
                }
            )
        else:
            out.append(
                {
                    "check": "trigger-outbox",
                    "status": "ok",
                    "message": f"{pending} trigger fire(s) pending delivery, none late",
                    "details": details,
                }
            )
        return out

    async def resolve(self, trn: Any) -> dict[str, Any] | None:
        row = await self.rt.store.fetch_one("triggers.get_trigger", {"tenant": trn.tenant, "name": trn.path})
        return to_api(row) if row is not None else None

    # ------------------------------------------------------------------ writes
    def _definition(self, tenant: str, body: TriggerBody, now: float, anchor: float, trigger_id: str) -> dict[str, Any]:
        """Validate a definition; the columns it sets (without credentials)."""
        kinds = [k for k in ("schedule", "webhook", "event") if getattr(body, k) is not None]
        if len(kinds) != 1:
            raise field_error("schedule", "give exactly one of schedule, webhook or event")
        kind = kinds[0]
        target = fireable(body.target, tenant, self.rt.bus.has_target)
        if body.input is not None:
            try:
                expr.compile_expression(body.input)
            except expr.ExpressionError as exc:
                raise field_error("input", exc.message) from None
        next_fire = None
        config: dict[str, Any]
        if body.schedule is not None:
            spec: ScheduleSpec = body.schedule
            sched = parse_schedule(spec.expression, spec.timezone, anchor=anchor)
            next_fire = sched.next_after(now)
            if next_fire is None:
                raise field_error("schedule.expression", "has no due time in the future")
            config = spec.model_dump()
        elif body.webhook is not None:
            hook: WebhookSpec = body.webhook
            types = [t.strip().lower() for t in hook.content_types]
            for i, t in enumerate(types):
                if t not in CONTENT_TYPES:
                    raise field_error(
                        f"webhook.content_types[{i}]", f"must be one of {', '.join(sorted(CONTENT_TYPES))}"
                    )
            config = {**hook.model_dump(), "content_types": types}
        else:
            assert body.event is not None
            Pattern(body.event.pattern, field="event.pattern")
            config = body.event.model_dump()
        try:
            config_text = jsonutil.dumps(config).decode()
        except TypeError as exc:
            raise field_error(kind, f"not storable as JSON: {exc}") from None
        enabled = next_fire is not None and body.enabled
        return {
            "kind": kind,
            "target": target,
            "input": body.input,
            "description": body.description,
            "enabled": int(body.enabled),
            "config": config_text,
            "retry": jsonutil.dumps(body.retry.model_dump()).decode(),
            "next_fire_at": next_fire if enabled else None,
            "next_run_at": run_time(trigger_id, next_fire, body.schedule) if enabled and body.schedule else None,
        }

    def _new_credentials(self, tenant: str, trigger_id: str, auth: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Fresh webhook credentials (stored form, and the one-time plaintext to show)."""
        now = self.clock()
        if auth == "hmac":
            secret = new_secret()
            item = {"sealed": self.box.seal(secret, f"{tenant}/{trigger_id}"), "created_at": now, "expires_at": None}
            return {"auth": "hmac", "items": [item]}, {"secret": secret}
        token = new_token()
        return {"auth": "token", "items": [{"hash": token_hash(token), "created_at": now, "expires_at": None}]}, {
            "token": token
        }

    async def create(self, tenant: str, body: CreateTrigger) -> dict[str, Any]:
        now = self.clock()
        trigger_id = "trg_" + uuid.uuid4().hex
        row = self._definition(tenant, body, now, float(int(now)), trigger_id)
        shown: dict[str, str] = {}
        credentials = None
        if body.webhook is not None:
            creds, shown = self._new_credentials(tenant, trigger_id, body.webhook.auth)
            credentials = jsonutil.dumps(creds).decode()
        params = {**row, "id": trigger_id, "tenant": tenant, "name": body.name, "credentials": credentials, "now": now}
        try:
            await self.rt.store.execute("triggers.insert_trigger", params)
        except UniqueViolation:
            raise Conflict(
                f"trigger {body.name!r} already exists", details={"trn": trigger_trn(tenant, body.name)}
            ) from None
        await self._changed(row["kind"])
        return {**await self.get(tenant, body.name), **shown}

    async def update(self, tenant: str, name: str, body: TriggerBody) -> dict[str, Any]:
        current = await self.row(tenant, name)
        now = self.clock()
        row = self._definition(tenant, body, now, current["created_at"], current["id"])
        if row["kind"] != current["kind"]:
            raise field_error(
                row["kind"],
                f"a {current['kind']} trigger cannot become a {row['kind']} trigger; delete and re-create it",
            )
        if (
            row["kind"] == "schedule"
            and current["enabled"]
            and row["config"] == current["config"]
            and current["next_fire_at"] is not None
        ):
            row["next_fire_at"], row["next_run_at"] = current["next_fire_at"], current["next_run_at"]
        credentials = current["credentials"]
        shown: dict[str, str] = {}
        if body.webhook is not None and jsonutil.loads(credentials or "{}").get("auth") != body.webhook.auth:
            creds, shown = self._new_credentials(tenant, current["id"], body.webhook.auth)
            credentials = jsonutil.dumps(creds).decode()
        params = {**row, "id": current["id"], "version": current["version"], "credentials": credentials, "now": now}
        if await self.rt.store.execute("triggers.update_trigger", params) != 1:
            raise Conflict(f"trigger {name!r} was changed at the same time; try again")
        await self._changed(row["kind"])
        return {**await self.get(tenant, name), **shown}

    async def set_enabled(self, tenant: str, name: str, enabled: bool) -> dict[str, Any]:
        current = await self.row(tenant, name)
        next_fire = next_run = None
        if enabled and current["kind"] == "schedule":
            spec = ScheduleSpec.model_validate(jsonutil.loads(current["config"]))
            if current["enabled"] and current["next_fire_at"] is not None:
                next_fire, next_run = current["next_fire_at"], current["next_run_at"]
            else:
                sched = parse_schedule(spec.expression, spec.timezone, anchor=current["created_at"])
                next_fire = sched.next_after(self.clock())
                next_run = run_time(current["id"], next_fire, spec)
        params = {
            "id": current["id"],
            "version": current["version"],
            "enabled": int(enabled),
            "next_fire_at": next_fire,
            "next_run_at": next_run,
            "now": self.clock(),
        }
        if await self.rt.store.execute("triggers.set_enabled", params) != 1:
            raise Conflict(f"trigger {name!r} was changed at the same time; try again")
        await self._changed(current["kind"])
        return await self.get(tenant, name)

    async def delete(self, tenant: str, name: str) -> dict[str, Any]:
        current = await self.row(tenant, name)
        await self.rt.store.execute("triggers.delete_trigger", {"id": current["id"]})
        await self._changed(current["kind"])
        return to_api(current)

    async def rotate(self, tenant: str, name: str, grace_seconds: float | None) -> dict[str, Any]:
        """A new webhook credential; the previous one stays valid for `grace_seconds`."""
        current = await self.row(tenant, name)
        if current["kind"] != "webhook":
            raise field_error("name", f"{name!r} is a {current['kind']} trigger; only webhooks have secrets")
        now = self.clock()
        grace = self.cfg.rotation_grace_seconds if grace_seconds is None else grace_seconds
        old = jsonutil.loads(current["credentials"] or "{}")
        spec = WebhookSpec.model_validate(jsonutil.loads(current["config"]))
        fresh, shown = self._new_credentials(tenant, current["id"], spec.auth)
        keep = []
        if old.get("auth") == spec.auth and grace > 0:
            for item in old.get("items", []):
                if item.get("expires_at") is None or item["expires_at"] > now:
                    expires = now + grace if item.get("expires_at") is None else min(item["expires_at"], now + grace)
                    keep.append({**item, "expires_at": expires})
        fresh["items"] = fresh["items"] + keep[:1]
        params = {
            "id": current["id"],
            "version": current["version"],
            "credentials": jsonutil.dumps(fresh).decode(),
            "now": now,
        }
        if await self.rt.store.execute("triggers.set_credentials", params) != 1:
            raise Conflict(f"trigger {name!r} was changed at the same time; try again")
        return {**await self.get(tenant, name), **shown}

    async def _changed(self, kind: str) -> None:
        if kind == "schedule":
            self.wake()
        elif kind == "event":
            await self._refresh_event_tenants()

    async def _refresh_event_tenants(self) -> None:
        rows = await self.rt.store.fetch_all("triggers.event_tenants")
        self._event_tenants = {r["tenant"] for r in rows}

    # ------------------------------------------------------------------ events
    async def platform_event(self, tenant: str, source: str, type: str, detail: Any) -> None:
        """The runtime's event sink: platform events go only where a trigger could match."""
        if tenant in self._event_tenants and tenant not in self.rt.tenants.suspended:  # suspended: triggers stop
            await self.put_event(tenant, PutEvent(source=source, type=type, detail=detail))

    async def put_event(self, tenant: str, event: PutEvent) -> dict[str, Any]:
        now = self.clock()
        event_id = "evt_" + uuid.uuid4().hex
        envelope = {
            "id": event_id,
            "source": event.source,
            "type": event.type,
            "detail": event.detail,
            "time": now,
            "tenant": tenant,
        }
        try:
            detail_text = jsonutil.dumps(event.detail).decode()
        except TypeError as exc:
            raise field_error("detail", f"not storable as JSON: {exc}") from None
        limit = self.rt.config.limits.payload_max_bytes
        if len(detail_text) > limit:
            raise PayloadTooLarge(
                f"detail: larger than {limit} bytes", details=[{"field": "detail", "message": "too large"}]
            )

        def publish(tx: Any) -> list[dict[str, Any]]:
            fires = []
            for row in tx.fetch_all("triggers.event_triggers", {"tenant": tenant}):
                if not self._pattern(row).matches(envelope):
                    continue
                record = fire_record(row, event_id, "event", envelope, now=now, node=self.rt.cluster.node_id)
                inserted = tx.fetch_one("triggers.insert_fire", record)
                if inserted is not None:
                    tx.execute("triggers.count_fired", {"id": row["id"], "now": now})
                    fires.append(deliverable(inserted["id"], record, row))
            tx.execute(
                "triggers.insert_event",
                {
                    "id": event_id,
                    "tenant": tenant,
                    "source": event.source,
                    "type": event.type,
                    "detail": detail_text,
                    "matched": len(fires),
                    "now": now,
                },
            )
            return fires

        fires = await self.rt.store.transaction(publish)
        self.delivery.dispatch(fires)
        return {"id": event_id, "matched": len(fires), "fires": [f["id"] for f in fires]}

    def _pattern(self, row: dict[str, Any]) -> Pattern:
        key = (row["id"], row["version"])
        pattern = self._patterns.get(key)
        if pattern is None:
            if len(self._patterns) > 10_000:
                self._patterns.clear()
            pattern = Pattern(jsonutil.loads(row["config"])["pattern"])
            self._patterns[key] = pattern
        return pattern
