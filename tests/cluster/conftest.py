from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.nodes import NodeGroup, config_env


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Any]:
    """`nodes(count, config=..., env=...)`: a NodeGroup of `count` nodes on a fresh PostgreSQL
    database (tests/cluster/nodes.py); every group is stopped at the end of the test."""
    groups: list[NodeGroup] = []

    def make(
        count: int, *, config: dict[str, dict[str, Any]] | None = None, env: dict[str, str] | None = None
    ) -> NodeGroup:
        group = NodeGroup(tmp_path / f"group{len(groups)}", {**config_env(config), **(env or {})})
        groups.append(group)
        if count:
            group.add(count)
        return group

    yield make
    for group in groups:
        group.stop()
