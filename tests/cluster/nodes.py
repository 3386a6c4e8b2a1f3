"""Many `aionix` nodes on one PostgreSQL database, for cluster tests (issue 17).

    from cluster.nodes import start_nodes

    with start_nodes(tmp_path, 2, config={"cluster": {"lease_seconds": 2}}) as group:
        a, b = group.nodes                       # tests/serverproc.py ServerProcess objects
        a.client().get("/api/v1/...")            # every node takes the same admin key
        group.sql("SELECT count(*) FROM trigger_fires WHERE claimed_by = ?", (group.node_id(a),))
        group.kill(a)                            # SIGKILL: its leases run out after lease_seconds
        c = group.add()                          # one more node on the same database

Every node is a real server process with a data dir of its own (so a node id of its own,
`<data dir>/node.id`), the same master key (`AIONIX_MASTER_KEY`) and the same database, which is
always a fresh PostgreSQL database on the test PostgreSQL server (tests/pgstore.py), whatever
`AIONIX_TEST_STORE` says. The first node creates the schema and the first admin key; the
others start after it, together, and use that key. The `nodes` fixture (tests/cluster/conftest.py)
is the same as a factory that stops every group at the end of the test.

`config` is `{section: {key: value}}` as in config.toml; it is given as `AIONIX_<SECTION>_<KEY>`
environment variables (the server reads either). `env` adds raw variables to every node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pgstore
from serverproc import ServerProcess

from aionix.vault.envelope import new_key
from aionix.vault.masterkey import encode_key

#: what every test server of this suite gets: limits out of the way of tests that call often
BASE_ENV = {
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
}


def config_env(config: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """`{"cluster": {"lease_seconds": 2}}` -> `{"AIONIX_CLUSTER_LEASE_SECONDS": "2"}`."""
    out: dict[str, str] = {}
    for section, values in (config or {}).items():
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[f"AIONIX_{section.upper()}_{key.upper()}"] = text
    return out


class NodeGroup:
    """The nodes of one database. `nodes` in start order (stopped or killed ones stay listed)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = Path(root)
        self.url, self.password = pgstore.new_database("cluster")
        self.master_key = encode_key(new_key())
        self.env = {
            **BASE_ENV,
            **env,
            "AIONIX_DATABASE_URL": self.url,
            "AIONIX_DATABASE_PASSWORD": self.password,
            "AIONIX_MASTER_KEY": self.master_key,
        }
        self.nodes: list[ServerProcess] = []
        self.admin_key: str | None = None

    # ------------------------------------------------------------------ nodes
    def _new(self, env: dict[str, str] | None) -> ServerProcess:
        proc = ServerProcess(self.root / f"node{len(self.nodes)}", env={**self.env, **(env or {})})
        proc.admin_key = self.admin_key  # None for the first: it makes the key
        self.nodes.append(proc)
        return proc

    def add(self, count: int = 1, *, env: dict[str, str] | None = None, timeout: float = 60.0) -> ServerProcess:
        """Start `count` more nodes on the database (together, once the first is up); returns
        the last one started."""
        procs = [self._new(env) for _ in range(count)]
        if self.admin_key is None:
            procs[0].start(timeout)
            self.admin_key = procs[0].admin_key
            for p in procs[1:]:
                p.admin_key = self.admin_key
            procs = procs[1:]
        if procs:
            with ThreadPoolExecutor(len(procs)) as pool:
                for f in [pool.submit(p.start, timeout) for p in procs]:
                    f.result()
        return self.nodes[-1]

    def node_id(self, proc: ServerProcess) -> str:
        """The node's id (kept in its data dir), as `trigger_fires.claimed_by` and `nodes.id` hold it."""
        return (proc.data_dir / "node.id").read_text().strip()

    def kill(self, proc: ServerProcess) -> None:
        """SIGKILL (a crash): the node's row stays, its heartbeat stops; its leases run out."""
        proc.kill()

    def stop(self) -> None:
        """Stop every node still running (SIGTERM; SIGKILL if it does not end)."""
        for proc in self.nodes:
            try:
                proc.stop()
            except Exception:
                proc.kill()

    def logs(self) -> str:
        """Every node's log, for assertion messages."""
        return "\n".join(f"===== {p.root.name}\n{p.log()[-4000:]}" for p in self.nodes)

    # ------------------------------------------------------------------ the database
    def sql(self, query: str, params: tuple = (), *, write: bool = False) -> list[tuple]:
        """Raw SQL (`?` placeholders) on the shared database: rows as tuples."""
        import asyncpg

        from aionix.store.postgres import compile_query, parse_url

        args = {k: v for k, v in parse_url(self.url, self.password).items() if v}

        async def go() -> list[tuple]:
            conn = await asyncpg.connect(**args)
            try:
                q = compile_query(query)
                if write:
                    await conn.execute(q.sql, *params)
                    return []
                return [tuple(r.values()) for r in await conn.fetch(q.sql, *params)]
            finally:
                await conn.close()

        return asyncio.run(go())


@contextmanager
def start_nodes(
    root: Path,
    count: int,
    *,
    config: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[NodeGroup]:
    """Start `count` nodes on a fresh PostgreSQL database; stop them all on exit."""
    group = NodeGroup(root, {**config_env(config), **(env or {})})
    try:
        if count:
            group.add(count, timeout=timeout)
        yield group
    finally:
        group.stop()
