"""The per-state shortcuts of the engine's hot path keep what they replace (issue 21 part 6)."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from aionix import expr
from aionix.api.dispatch import _depth
from aionix.metrics import _STATES, Metrics


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_state_histogram_matches_prometheus_histogram_at_every_bucket_bound() -> None:
    metrics = Metrics()
    reference_registry = CollectorRegistry()
    reference = Histogram("aionix_state_seconds", "x", ["type"], registry=reference_registry, buckets=_STATES)
    rng = random.Random(7)
    values = [*_STATES, 0.0, 1e-9, 7200.0] + [rng.uniform(0, 2) for _ in range(200)]
    for i, seconds in enumerate(values):
        kind = ("set", "task", "wait")[i % 3]
        metrics.observe_state(kind, seconds)
        reference.labels(kind).observe(seconds)
    ours = _samples(metrics.registry, "aionix_state_seconds")
    theirs = _samples(reference_registry, "aionix_state_seconds")
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert abs(ours[key] - value) < 1e-9, key
    assert f'aionix_state_seconds_count{{type="set"}} {len(values[0::3])}.0'.encode() in metrics.render()


def test_template_roots_name_what_its_expressions_read() -> None:
    assert expr.compile_template({"i": 1, "v": "{% input.v + 1 %}"}).roots == {"input"}
    assert expr.compile_template(["{% vars.x %}", {"a": "{% context.state %}"}]).roots == {"vars", "context"}
    assert expr.compile_template("{% $secret.token %}").roots == frozenset()
    assert expr.compile_template({"plain": 1}).roots == frozenset()
    for whole in ("{% $ %}", "{% $keys($$) %}", "{% ** %}", '{% $param("/a") %}', "{% input.v & $string($) %}"):
        assert expr.compile_template(whole).roots is None, whole


def test_template_without_the_fields_it_does_not_read_gives_the_same_value() -> None:
    full = {
        "input": {"v": 2, "items": [1, 2]},
        "result": {"r": 1},
        "vars": {"x": 5},
        "error": None,
        "context": {"state": "S", "attempt": 1},
    }
    for value in (
        {"v": "{% input.v + 1 %}", "n": "{% $count(input.items) %}"},
        "{% vars.x * input.v %}",
        {"s": "{% context.state & '/' & $string(context.attempt) %}", "r": "{% result.r %}"},
    ):
        template = expr.compile_template(value)
        assert template.roots is not None
        trimmed = {k: v for k, v in full.items() if k in template.roots}
        assert template.evaluate(trimmed) == template.evaluate(full)


def test_body_depth_check_counts_containers_only() -> None:
    assert not _depth(5, 0) and not _depth("x", 0)
    assert _depth({"a": 1}, 0) and not _depth({"a": 1}, 1)
    assert _depth({"a": [{"b": [1]}]}, 3) and not _depth({"a": [{"b": [1]}]}, 4)
    assert _depth([[[[]]]], 3) and not _depth([[[[]]]], 4)
