import time

import pytest

from aionix import expr


def test_undefined_and_null_stay_distinct():
    assert expr.evaluate_source("x", {"x": None}) is None
    assert expr.evaluate_source("y", {"x": None}) is expr.UNDEFINED
    assert expr.evaluate_source("$", None) is expr.UNDEFINED


def test_null_and_undefined_stay_distinct_inline_and_in_templates():
    # the engine's result is None for both: the inline attempt tells them apart as `evaluate` does
    deadline = time.perf_counter() + 5
    assert expr.compile_expression("x").evaluate_until(deadline, {"x": None}, None) is None
    assert expr.compile_expression("y").evaluate_until(deadline, {"x": None}, None) is expr.UNDEFINED
    assert expr.compile_expression("x.z").evaluate_until(deadline, {"x": {"z": 0}}, None) == 0
    assert expr.compile_expression("x = 1").evaluate_until(deadline, {"x": 2}, None) is False
    t = expr.compile_template(
        {"n": "{% x %}", "gone": "{% y %}", "zero": "{% 0 %}", "deep": {"a": ["{% x %}", "{% y %}", 1]}, "k": 2}
    )
    want = {"n": None, "zero": 0, "deep": {"a": [None, 1]}, "k": 2}
    assert t.evaluate({"x": None}) == want
    assert t.evaluate_inline({"x": None}) == want


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


# The whole JSONata reference suite runs through this module in tests/asl/test_conformance.py.
