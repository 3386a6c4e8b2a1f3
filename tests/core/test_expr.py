import json
import time
from pathlib import Path

import pytest

from aionix import expr


def test_undefined_and_null_stay_distinct():
    assert expr.evaluate_source("x", {"x": None}) is None
    assert expr.evaluate_source("y", {"x": None}) is expr.UNDEFINED
    assert expr.evaluate_source("$", None) is expr.UNDEFINED


def test_compiled_once_per_source():
    assert expr.compile_expression("a + 1") is expr.compile_expression("a + 1")


def test_template_evaluates_only_expression_strings_and_drops_undefined_members():
    t = expr.compile_template(
        {"id": "{% input.id %}", "lit": "plain {% text", "gone": "{% input.missing %}", "list": ["{% 1+1 %}", "x"]}
    )
    assert t.evaluate({"input": {"id": 7}}) == {"id": 7, "lit": "plain {% text", "list": [2, "x"]}


def test_static_template_is_static():
    assert expr.compile_template({"a": [1, {"b": "c"}]}).is_static


def test_syntax_error_names_expression_position_and_pointer():
    with pytest.raises(expr.ExpressionError) as info:
        expr.compile_template({"parameters": {"url": "{% 'a' & %}"}}, pointer="/states/A")
    details = info.value.details
    assert details["pointer"] == "/states/A/parameters/url"
    assert details["expression"] == "'a' &"
    assert details["jsonata_code"].startswith("S0")
    assert isinstance(details["position"], int)


def test_runtime_error_position_is_in_the_users_source():
    with pytest.raises(expr.ExpressionError) as info:
        expr.evaluate_source('"a" + 1')
    assert info.value.jsonata_code == "T2001"
    assert info.value.position == 5  # the engine points just past the operator, as unwrapped


def test_runaway_expression_is_stopped_by_the_time_limit():
    expr.configure(timeout_ms=200, max_depth=500)
    try:
        started = time.perf_counter()
        with pytest.raises(expr.ExpressionError) as info:
            expr.evaluate_source("($f := function($x){ $x > 0 ? $f($x) : 0 }; $f(1))")
        assert time.perf_counter() - started < 5
        assert info.value.is_timeout or info.value.jsonata_code
    finally:
        expr.configure(timeout_ms=1000, max_depth=500)


def test_references_report_secrets_and_literal_params():
    t = expr.compile_template({"a": "{% $secret.db_password & $param('/app/x') %}", "b": '{% $param("/app/y") %}'})
    assert t.references.secrets == {"db_password"}
    assert t.references.params == {"/app/x", "/app/y"}
    assert not t.references.dynamic_params
    dyn = expr.compile_template("{% $param('/a/' & input.k) %}")
    assert dyn.references.dynamic_params


def test_bindings_reach_the_expression():
    t = expr.compile_template("{% $secret.k & ':' & $param('/p') %}")
    assert t.evaluate({}, {"secret": {"k": "S"}, "param": lambda path: path.upper()}) == "S:/P"


CASES = Path(__file__).parents[3] / "shared" / "conformance" / "jsonata_cases.jsonl"


@pytest.mark.skipif(not CASES.exists(), reason="the shared JSONata suite is not beside this checkout")
def test_engine_passes_the_jsonata_reference_suite_sample():
    """A fixed sample (every 10th case) of the JSONata reference suite through `aionix.expr`:
    the engine must keep passing it (the full run is `make conformance`)."""
    lines = CASES.read_text().splitlines()[::10]
    passed = 0
    for line in lines:
        case = json.loads(line)
        try:
            e = expr.compile_expression(case["expr"])
            out = e.evaluate(case.get("data"), case.get("bindings"))
        except expr.ExpressionError as exc:
            passed += "error" in case and exc.jsonata_code == case["error"].get("code")
            continue
        if "error" in case:
            continue
        if case.get("undefinedResult"):
            passed += out is expr.UNDEFINED
        elif "result" in case:
            passed += _same(out, case["result"], case.get("unordered", False))
    assert passed / len(lines) >= 0.95, f"{passed}/{len(lines)}"


def _same(a, b, unordered):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        if unordered:
            rest = list(b)
            for x in a:
                for i, y in enumerate(rest):
                    if _same(x, y, True):
                        rest.pop(i)
                        break
                else:
                    return False
            return True
        return all(_same(x, y, False) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], unordered) for k in a)
    return a == b
