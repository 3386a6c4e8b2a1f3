"""Bounded data: with a retention of 1,000 per workflow, 20,000 executions leave the file bounded."""

from __future__ import annotations

import asyncio

import pgstore

from .harness import Harness


async def test_twenty_thousand_executions_with_retention_keep_the_file_bounded(tmp_path):
    root = tmp_path / "d"
    h = await Harness(root, retention_max_per_workflow=1000, prune_interval_seconds=3600).start()
    try:
        name = await h.define(
            {
                "entry": "A",
                "states": {
                    "A": {
                        "type": "set",
                        "value": {"id": "{% input %}", "pad": "{% $pad('', 200, '.') %}"},
                        "next": "B",
                    },
                    "B": {"type": "set", "value": "{% input.id %}", "end": True},
                },
            }
        )
        sizes = []
        for round_ in range(10):
            batch = [h.svc.start("default", name, round_ * 2000 + i) for i in range(2000)]
            started = await asyncio.gather(*batch)
            for envelope, _ in started:
                run = h.svc.runs.get(envelope["execution_id"])
                if run is not None:
                    await run.done.wait()
            await h.svc.prune()
            if pgstore.on_postgres():
                # PostgreSQL reuses deleted rows' space once vacuumed: what autovacuum does within
                # its naptime (a minute per database, longer than this test's rounds)
                pgstore.execute(root, "VACUUM")
            sizes.append(pgstore.database_size(root))
        left = await h.svc.list_executions(
            "default", workflow=name, status=None, since=None, until=None, limit=5000, cursor=None
        )
        assert len(left["items"]) == 1000
        assert all(18_000 <= e["input"] < 20_000 for e in left["items"])
        # after the first rounds the freed pages are reused: the file stops growing
        assert sizes[-1] <= sizes[2] * 1.15, sizes
    finally:
        await h.stop()
