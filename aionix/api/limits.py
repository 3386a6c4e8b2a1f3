"""Token buckets for rate limits (per API key and per client IP) and a sliding counter for
authentication failures. In memory: limits are per process."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class TokenBuckets:
    """`take(key)` returns 0 when allowed, else the seconds until a token is available."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000, clock=time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class FailureCounter:
    """Counts failures per key over a sliding minute; `blocked(key)` gives seconds to wait."""

    def __init__(self, limit: int, window: float = 60.0, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        hits = [t for t in self._hits.get(key, ()) if now - t < self.window]
        if hits:
            self._hits[key] = hits
        else:
            self._hits.pop(key, None)
        return hits

    def record(self, key: str) -> None:
        self._recent(key)
        self._hits.setdefault(key, []).append(self.clock())
        if len(self._hits) > 100_000:
            self._hits.pop(next(iter(self._hits)))

    def blocked(self, key: str) -> float:
        hits = self._recent(key)
        if len(hits) < self.limit:
            return 0.0
        return max(0.0, self.window - (self.clock() - hits[0]))


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
