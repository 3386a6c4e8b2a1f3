"""Fixtures of the StepFlow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Harness


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await Harness(tmp_path / "data").start()
    yield h
    await h.stop()
