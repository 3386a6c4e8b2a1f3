"""Nodes and leases: several `aionix` processes on one PostgreSQL database (issue 17).

Every process is a **node**: a row in `nodes` with a heartbeat that the node renews every
`[cluster] heartbeat_seconds` (in the database's clock). A node whose heartbeat is older than
`[cluster] lease_seconds` — it was SIGKILLed, lost power, or is cut off from the database — has
lost every lease it held, and other nodes claim its work with `FOR UPDATE SKIP LOCKED`.

A node's identity is kept in its data dir (`node.id`), which one process at a time may hold
(the data dir's lock): a node that restarts is the same node and takes its own work back at
once; its lease epochs are bumped, so nothing its previous life left in flight writes again.

A node that could not renew its heartbeat for a whole lease stops acting on its work before it
beats again (`on_fenced`): by then another node may own that work. The database fences it
anyway — every checkpoint is written only under the epoch its writer claimed — so a paused
node that wakes up cannot write over the new owner.

Messages between nodes (cancel this execution, this callback token was settled, these
executions moved on) go over PostgreSQL's LISTEN/NOTIFY (`notify`, `subscribe`); with the
SQLite store there is one node and they are delivered in the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aionix import __version__, jsonutil
from aionix.errors import AionixError, ConfigError

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.cluster")

CHANNEL = "aionix_cluster"
_NOTIFY_MAX = 7000  # PostgreSQL refuses payloads of 8,000 bytes and more

Handler = Callable[[dict[str, Any]], Awaitable[None] | None]


class LeaseLost(AionixError):
    """This node no longer owns the work it tried to write (another node claimed it)."""

    status = 409
    code = "lease_lost"


class ClusterConfig(BaseModel):
    """`[cluster]`: how long a node's leases last without a heartbeat, how often it beats."""

    model_config = ConfigDict(extra="forbid")

    lease_seconds: float = Field(10.0, ge=1.0, le=3600.0)
    #: 0: a third of lease_seconds
    heartbeat_seconds: float = Field(0.0, ge=0.0, le=1200.0)
    #: how often a node looks for work whose owner lost its lease (PostgreSQL only)
    claim_interval_seconds: float = Field(1.0, gt=0.0, le=600.0)
    #: at most this many executions claimed per look
    claim_batch: int = Field(100, ge=1, le=100_000)

    @model_validator(mode="after")
    def _beat_within_lease(self) -> ClusterConfig:
        if self.heartbeat_seconds and self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError("heartbeat_seconds must be at most half of lease_seconds")
        return self

    @property
    def beat(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3


def node_id_for(data_dir: Path) -> str:
    """The node's id, made once and kept in the data dir (a restarted node is the same node)."""
    path = data_dir / "node.id"
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:40] or "node"
    value = f"{host}-{secrets.token_hex(4)}"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)
    return value


class Cluster:
    """This node: its id, its heartbeat, the other nodes, and messages between them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.config: ClusterConfig = rt.config.service_section("cluster", ClusterConfig)
        self.enabled = getattr(rt.store, "dialect", "sqlite") == "postgres"
        self.node_id = ""
        self.started_at = time.time()
        self.last_beat = time.monotonic()  # of the last heartbeat the database took
        self.fenced = False
        self.stats = {"claimed": 0, "lease_lost": 0, "fenced": 0, "notified": 0, "received": 0}
        self.on_fenced: list[Callable[[], Awaitable[None]]] = []
        self.on_resumed: list[Callable[[], Awaitable[None]]] = []
        self._handlers: dict[str, list[Handler]] = {}
        self._task: asyncio.Task[Any] | None = None
        self._listener: Any = None
        self._touched: set[str] = set()
        self._flusher: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.node_id = node_id_for(self.rt.config.data_dir)
        row = await self.rt.store.fetch_one("cluster.get_node", {"id": self.node_id, "lease": self.lease_seconds})
        host = socket.gethostname()
        if row is not None and row["live"] and row["host"] != host:
            # the data dir's lock keeps two processes of one host apart, not two hosts
            raise ConfigError(
                f"config error: database.data_path: node id {self.node_id} (in {self.rt.config.data_dir / 'node.id'}) "
                f"is in use by a live node on host {row['host']} (pid {row['pid']}): was this data dir copied? "
                "Give this node a data dir of its own (delete its node.id to get a new id)"
            )
        await self.rt.store.execute("cluster.register_node", self._row())
        self.last_beat = time.monotonic()
        if self.enabled:
            self.subscribe("changed", self._on_changed)
            self._listener = await self.rt.store.listen(CHANNEL, self._received, self._reconnected)
        self._task = asyncio.create_task(self._heartbeat_loop(), name="aionix-cluster-heartbeat")
        log.info("node %s%s", self.node_id, " (cluster on PostgreSQL)" if self.enabled else "")

    async def stop(self) -> None:
        """Leave: the node's row says it stopped, so other nodes take its work at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self.node_id:
            try:
                await self.rt.store.execute("cluster.stop_node", {"id": self.node_id, "now": time.time()})
            except AionixError as exc:
                log.warning("could not mark node %s stopped: %s", self.node_id, exc.message)

    def _row(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "version": __version__,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "url": self.rt.base_url or None,
            "now": time.time(),
            "load": self._load(),
        }

    def _load(self) -> str:
        sf = self.rt.health.get("stepflow") or {}
        try:
            load1 = os.getloadavg()[0]
        except OSError:
            load1 = 0.0
        return jsonutil.dumps({"executions": sf.get("running", 0), "loadavg": round(load1, 2)}).decode()

    # ------------------------------------------------------------------ heartbeat
    @property
    def lease_seconds(self) -> float:
        return self.config.lease_seconds

    def claim_params(self, *, own: bool, everything: bool) -> dict[str, Any]:
        """The parameters of a claim query (`stepflow.claim_executions`,
        `functions.claim_async_invocations`): `own`, this node's work from before its restart;
        `everything`, all of it (SQLite: one node); neither, the work of nodes whose lease ran
        out, a batch at a time. A start takes all that is its own at once (no limit)."""
        unbounded = own or everything
        no_limit = -1 if self.rt.store.dialect == "sqlite" else None
        return {
            "node": self.node_id,
            "own": int(own),
            "any": int(everything),
            "lease": self.config.lease_seconds,
            "limit": no_limit if unbounded else self.config.claim_batch,
        }

    def holds_leases(self) -> bool:
        """Whether this node's last heartbeat is recent enough that its leases still hold."""
        return time.monotonic() - self.last_beat < self.config.lease_seconds

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.beat)
            try:
                await self.beat()
            except Exception:  # the loop must outlive any one failure: without it the node's
                # leases lapse while it keeps taking work that the other nodes then take away
                log.exception("node %s: heartbeat failed", self.node_id)

    async def beat(self) -> None:
        gap = time.monotonic() - self.last_beat
        if gap >= self.config.lease_seconds and not self.fenced:
            # paused or cut off for a whole lease: other nodes may own our work by now
            await self._fence(gap)
        try:
            n = await self.rt.store.execute(
                "cluster.heartbeat",
                {"id": self.node_id, "now": time.time(), "load": self._load(), "url": self.rt.base_url or None},
            )
            if not n:
                await self.rt.store.execute("cluster.register_node", self._row())
        except AionixError as exc:
            log.warning("node %s: heartbeat failed: %s", self.node_id, exc.message)
            if time.monotonic() - self.last_beat >= self.config.lease_seconds and not self.fenced:
                await self._fence(time.monotonic() - self.last_beat)
            return
        self.last_beat = time.monotonic()
        if self.fenced:
            self.fenced = False
            log.warning("node %s: heartbeat renewed; taking back the work no other node claimed", self.node_id)
            for fn in list(self.on_resumed):
                try:
                    await fn()
                except Exception:
                    log.exception("resuming after a lost lease failed")

    async def _fence(self, gap: float) -> None:
        self.fenced = True
        self.stats["fenced"] += 1
        log.warning(
            "node %s: no heartbeat for %.1f s (lease %.1f s): its leases are lost; it stops its work",
            self.node_id,
            gap,
            self.config.lease_seconds,
        )
        for fn in list(self.on_fenced):
            try:
                await fn()
            except Exception:
                log.exception("stopping work after a lost lease failed")

    # ------------------------------------------------------------------ nodes
    async def nodes(self) -> list[dict[str, Any]]:
        rows = await self.rt.store.fetch_all(
            "cluster.list_nodes", {"now": time.time(), "lease": self.config.lease_seconds}
        )
        out = []
        for r in rows:
            try:
                load = jsonutil.loads(r["load"] or "{}")
            except ValueError:
                load = {}
            out.append(
                {
                    "id": r["id"],
                    "live": bool(r["live"]),
                    "self": r["id"] == self.node_id,
                    "version": r["version"],
                    "host": r["host"],
                    "pid": r["pid"],
                    "url": r["url"],
                    "started_at": r["started_at"],
                    "heartbeat_age_seconds": round(max(0.0, r["now"] - r["heartbeat_at"]), 3)
                    if r["stopped_at"] is None
                    else None,
                    "stopped_at": r["stopped_at"],
                    "load": load,
                }
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "store": "postgres" if self.enabled else "sqlite",
            "lease_seconds": self.config.lease_seconds,
            "holds_leases": self.holds_leases(),
        }

    # ------------------------------------------------------------------ shared caches
    def changed(self, what: str) -> None:
        """Something that other nodes cache for a few seconds changed here (a key revoked, a
        policy or a user changed, a tenant suspended): they drop their caches now."""
        if self.enabled:
            self.rt.spawn(self._send_changed(what), "aionix-cluster-changed")

    async def _send_changed(self, what: str) -> None:
        payload = jsonutil.dumps({"kind": "changed", "from": self.node_id, "to": None, "what": what}).decode()
        try:
            self.stats["notified"] += 1
            await self.rt.store.notify_now(CHANNEL, payload)
        except Exception as exc:  # the other nodes' caches still expire within seconds
            log.warning("cluster: telling the other nodes of a %s change failed: %s", what, exc)

    async def _on_changed(self, message: dict[str, Any]) -> None:
        rt = self.rt
        rt.authenticator.forget()
        if rt.authenticator.tokens is not None:
            rt.authenticator.tokens.forget()
        rt.policies.forget_cached()
        if message.get("what") == "tenants":
            await rt.tenants.refresh()

    # ------------------------------------------------------------------ messages
    def subscribe(self, kind: str, handler: Handler) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    async def notify(self, kind: str, body: dict[str, Any], *, to: str | None = None) -> None:
        """Send `body` to the nodes (`to`: one node; its handlers alone act). This node's own
        handlers get it at once; the others through NOTIFY once it is committed."""
        message = {"kind": kind, "from": self.node_id, "to": to, **body}
        if to is None or to == self.node_id:
            await self._dispatch(message)
        if not self.enabled or to == self.node_id:
            return
        payload = jsonutil.dumps(message).decode()
        if len(payload) > _NOTIFY_MAX:
            raise ValueError(f"cluster message {kind} is too large ({len(payload)} bytes)")
        self.stats["notified"] += 1
        await self.rt.store.execute("cluster.notify", {"payload": payload})

    def touch(self, execution_id: str) -> None:
        """`execution_id` committed a checkpoint: tell the other nodes (watchers of its events,
        waiters for its end) within ~50 ms, many executions to a message."""
        if not self.enabled:
            return
        self._touched.add(execution_id)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(0.05, self._flush_touched)

    def _flush_touched(self) -> None:
        self._flusher = None
        ids, self._touched = sorted(self._touched), set()
        chunk: list[str] = []
        size = 0
        for i in ids:
            if size + len(i) + 4 > _NOTIFY_MAX - 200 and chunk:
                self.rt.spawn(self._send_touched(chunk), "aionix-cluster-touch")
                chunk, size = [], 0
            chunk.append(i)
            size += len(i) + 4
        if chunk:
            self.rt.spawn(self._send_touched(chunk), "aionix-cluster-touch")

    async def _send_touched(self, ids: list[str]) -> None:
        try:
            payload = jsonutil.dumps({"kind": "executions", "from": self.node_id, "to": None, "ids": ids}).decode()
            self.stats["notified"] += 1
            await self.rt.store.notify_now(CHANNEL, payload)
        except Exception as exc:  # the watchers poll as well: a lost message only slows them
            log.debug("cluster: touch notification failed: %s", exc)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        for handler in self._handlers.get(str(message.get("kind")), ()):
            try:
                result = handler(message)
                if result is not None:
                    await result
            except Exception:
                log.exception("cluster message %s failed", message.get("kind"))

    def _received(self, payload: str) -> None:
        try:
            message = jsonutil.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("from") == self.node_id:
            return  # our own: handled when sent
        to = message.get("to")
        if to is not None and to != self.node_id:
            return
        self.stats["received"] += 1
        self.rt.spawn(self._dispatch(message), f"aionix-cluster-{message.get('kind')}")

    async def _reconnected(self) -> None:
        """The LISTEN connection was lost and is back: messages sent meanwhile are gone, so every
        handler of `"reconnected"` looks again at what it waits for."""
        await self._dispatch({"kind": "reconnected", "from": self.node_id, "to": self.node_id})
