"""EventBridge-style pattern matching, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from aionix.errors import ValidationFailed
from aionix.triggers.patterns import Pattern

ORDER = {
    "source": "shop.orders",
    "type": "Order Placed",
    "detail": {
        "status": "FAILED",
        "amount": 250,
        "tags": ["vip", "eu"],
        "customer": {"country": "DE", "email": "a@example.com"},
        "note": None,
        "express": False,
    },
}

CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("exact source", {"source": ["shop.orders"]}, True),
    ("exact source, other value", {"source": ["shop.billing"]}, False),
    ("one of several values", {"source": ["x", "shop.orders"]}, True),
    ("source and type both", {"source": ["shop.orders"], "type": ["Order Placed"]}, True),
    ("source matches, type not", {"source": ["shop.orders"], "type": ["Order Shipped"]}, False),
    ("nested exact", {"detail": {"customer": {"country": ["DE"]}}}, True),
    ("nested exact, other", {"detail": {"customer": {"country": ["FR"]}}}, False),
    ("number equals numerically", {"detail": {"amount": [250.0]}}, True),
    ("string is not a number", {"detail": {"amount": ["250"]}}, False),
    ("null literal", {"detail": {"note": [None]}}, True),
    ("boolean literal", {"detail": {"express": [False]}}, True),
    ("boolean is not 0", {"detail": {"express": [0]}}, False),
    ("prefix", {"type": [{"prefix": "Order "}]}, True),
    ("prefix, no", {"type": [{"prefix": "Invoice"}]}, False),
    ("suffix", {"detail": {"customer": {"email": [{"suffix": "@example.com"}]}}}, True),
    ("equals-ignore-case", {"detail": {"status": [{"equals-ignore-case": "failed"}]}}, True),
    ("anything-but a value", {"detail": {"status": [{"anything-but": "SUCCEEDED"}]}}, True),
    ("anything-but the value", {"detail": {"status": [{"anything-but": "FAILED"}]}}, False),
    ("anything-but a list", {"detail": {"status": [{"anything-but": ["FAILED", "ABORTED"]}]}}, False),
    ("anything-but a prefix", {"detail": {"status": [{"anything-but": {"prefix": "SUCC"}}]}}, True),
    ("anything-but on a missing field", {"detail": {"missing": [{"anything-but": "x"}]}}, False),
    ("numeric range inside", {"detail": {"amount": [{"numeric": [">", 100, "<=", 250]}]}}, True),
    ("numeric range outside", {"detail": {"amount": [{"numeric": [">", 250]}]}}, False),
    ("numeric equal", {"detail": {"amount": [{"numeric": ["=", 250]}]}}, True),
    ("numeric on a string", {"detail": {"status": [{"numeric": [">", 0]}]}}, False),
    ("exists true", {"detail": {"customer": {"email": [{"exists": True}]}}}, True),
    ("exists true on missing", {"detail": {"coupon": [{"exists": True}]}}, False),
    ("exists false on missing", {"detail": {"coupon": [{"exists": False}]}}, True),
    ("exists false on present", {"detail": {"status": [{"exists": False}]}}, False),
    ("exists true on null", {"detail": {"note": [{"exists": True}]}}, True),
    ("array value: any element", {"detail": {"tags": ["eu"]}}, True),
    ("array value: none", {"detail": {"tags": ["us"]}}, False),
    ("array value with prefix", {"detail": {"tags": [{"prefix": "vi"}]}}, True),
    ("matchers are OR-ed", {"detail": {"status": ["OK", {"prefix": "FAIL"}]}}, True),
    ("fields are AND-ed", {"detail": {"status": ["FAILED"], "amount": [{"numeric": ["<", 10]}]}}, False),
    ("object pattern on a scalar", {"detail": {"status": {"code": ["x"]}}}, False),
]


@pytest.mark.parametrize(("name", "spec", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pattern_matching(name: str, spec: dict[str, Any], expected: bool) -> None:
    assert Pattern(spec).matches(ORDER) is expected


BAD: list[tuple[dict[str, Any] | Any, str]] = [
    ({}, "pattern"),
    ([], "pattern"),
    ({"region": ["eu"]}, "pattern.region"),
    ({"source": "shop"}, "pattern.source"),
    ({"source": []}, "pattern.source"),
    ({"detail": {"a": [{"prefix": 1}]}}, "pattern.detail.a[0].prefix"),
    ({"detail": {"a": [{"numeric": [">"]}]}}, "pattern.detail.a[0].numeric"),
    ({"detail": {"a": [{"numeric": ["~", 1]}]}}, "pattern.detail.a[0].numeric[0]"),
    ({"detail": {"a": [{"numeric": [">", "x"]}]}}, "pattern.detail.a[0].numeric[1]"),
    ({"detail": {"a": [{"exists": "yes"}]}}, "pattern.detail.a[0].exists"),
    ({"detail": {"a": [{"regex": ".*"}]}}, "pattern.detail.a[0]"),
    ({"detail": {"a": [{"prefix": "a", "suffix": "b"}]}}, "pattern.detail.a[0]"),
    ({"detail": {"a": [{"anything-but": {"suffix": "x"}}]}}, "pattern.detail.a[0].anything-but"),
    ({"detail": {"a": [[1]]}}, "pattern.detail.a[0]"),
]


@pytest.mark.parametrize(("spec", "field"), BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_patterns_name_the_field(spec: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        Pattern(spec)
    assert err.value.details[0]["field"] == field
