"""The cluster's nodes (issue 17): every `aionix` process on one database, as this node sees them.

Any node answers: the list comes from the shared `nodes` table (each node's heartbeat, in the
database's clock), so two nodes asked at once give the same nodes. With the SQLite store there
is one node, this one. A viewer may read it, as any key may read `/healthz`'s node id and
version: the list names no tenant's data, only the processes that serve every tenant. Where
they run (host, pid, url) is shown to cross-tenant keys only: a tenant's key learns how many
nodes serve it and how loaded they are, not the operator's machines.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aionix.api.endpoint import Api, Call

api = Api("admin")


class NodeLoad(BaseModel):
    executions: int = Field(0, description="executions with a task on the node at its last heartbeat")
    loadavg: float = Field(0.0, description="the host's 1-minute load average at the node's last heartbeat")


class NodeInfo(BaseModel):
    id: str = Field(..., description="the node's id (kept in its data dir: a restarted node is the same node)")
    live: bool = Field(..., description="its heartbeat is younger than [cluster] lease_seconds and it did not stop")
    self: bool = Field(..., description="the node that answered this request")
    version: str
    host: str | None = None
    pid: int | None = None
    url: str | None = Field(None, description="where the node serves, as it reported itself")
    started_at: float | None = Field(None, description="Unix time")
    heartbeat_age_seconds: float | None = Field(None, description="null once the node stopped")
    stopped_at: float | None = Field(None, description="Unix time of a clean stop (null while it runs)")
    load: NodeLoad


class ClusterNodes(BaseModel):
    node: str = Field(..., description="the id of the node that answered")
    items: list[NodeInfo]


@api.get("/api/v1/cluster/nodes", role="viewer", response=ClusterNodes)
async def list_cluster_nodes(call: Call) -> dict[str, Any]:
    """The cluster's nodes (live ones first, then by id): version, host, load and heartbeat age."""
    cluster = call.rt.cluster
    items = await cluster.nodes()
    items.sort(key=lambda n: (not n["live"], n["id"]))
    for n in items:  # a row written by another version may lack a load field
        load = n.get("load") if isinstance(n.get("load"), dict) else {}
        n["load"] = {"executions": int(load.get("executions") or 0), "loadavg": float(load.get("loadavg") or 0.0)}
        if call.principal is None or not call.principal.cross_tenant:
            n["host"] = n["pid"] = n["url"] = None
    return {"node": cluster.node_id, "items": items}
