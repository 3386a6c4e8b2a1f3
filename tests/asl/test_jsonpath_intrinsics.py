"""Pure logic: the JSONPath subset, the States.* intrinsics and Choice comparisons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aionix.stepflow.asl import choice, intrinsics, jsonpath
from aionix.stepflow.asl.evaluate import Scope

DATA = {
    "store": {
        "book": [
            {"title": "A", "price": 8, "tags": ["x"]},
            {"title": "B", "price": 12},
            {"title": "C", "price": 5, "isbn": "1"},
        ],
        "name": "shop",
    },
    "odd key": 1,
}


def ev(path: str, data=DATA):
    return jsonpath.evaluate(jsonpath.parse(path), data)


def test_definite_paths_give_one_value_and_fail_when_missing():
    assert ev("$") is DATA
    assert ev("$.store.name") == "shop"
    assert ev("$.store.book[1].title") == "B"
    assert ev("$.store.book[-1].title") == "C"
    assert ev("$['odd key']") == 1
    assert ev("$.store.book.length()") == 3
    with pytest.raises(jsonpath.PathError) as exc:
        ev("$.store.nothing")
    assert exc.value.message == "No results for path: $['store']['nothing']"


def test_indefinite_paths_give_lists():
    assert ev("$.store.book[*].title") == ["A", "B", "C"]
    assert ev("$.store.book[0:2].price") == [8, 12]
    assert ev("$.store.book[0,2].title") == ["A", "C"]
    assert ev("$..price") == [8, 12, 5]
    assert ev("$.store.book[?(@.price < 10)].title") == ["A", "C"]
    assert ev("$.store.book[?(@.price >= 8 && @.title != 'A')].title") == ["B"]
    assert ev("$.store.book[?(@.isbn)].title") == ["C"]
    assert ev("$.store.nothing[*]") == []


def test_result_path_assignment_copies_and_creates_objects():
    base = {"a": {"b": 1}, "keep": True}
    out = jsonpath.assign("$.a.c.d", base, 5)
    assert out == {"a": {"b": 1, "c": {"d": 5}}, "keep": True}
    assert base == {"a": {"b": 1}, "keep": True}
    assert jsonpath.assign("$", base, 7) == 7
    with pytest.raises(jsonpath.PathError):
        jsonpath.assign("$.a[*]", base, 1)


@given(
    st.dictionaries(st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=5), st.integers())
)
def test_every_key_reads_back_by_dot_and_bracket(d):
    for k, v in d.items():
        assert ev(f"$.{k}", d) == v
        assert ev(f"$['{k}']", d) == v


def call(text: str, data=None):
    return intrinsics.evaluate(intrinsics.parse(text), lambda p: jsonpath.evaluate(p, data or {}))


def test_intrinsics_match_step_functions():
    assert call("States.Format('Hello {}, you are {}', $.n, $.age)", {"n": "Ada", "age": 36}) == "Hello Ada, you are 36"
    assert call("States.Format('a\\{\\}b {}', 'x')") == "a{}b x"
    assert call("States.Format('{}', $.v)", {"v": None}) == "null"
    assert call("States.StringToJson('{\"a\": [1]}')") == {"a": [1]}
    assert call("States.JsonToString($.v)", {"v": {"a": [1, "x"]}}) == '{"a":[1,"x"]}'
    assert call("States.Array(1, 'two', true, null)") == [1, "two", True, None]
    assert call("States.ArrayPartition(States.Array(1,2,3,4,5), 2)") == [[1, 2], [3, 4], [5]]
    assert call("States.ArrayContains(States.Array(1,2), 2)") is True
    assert call("States.ArrayRange(1, 9, 2)") == [1, 3, 5, 7, 9]
    assert call("States.ArrayGetItem(States.Array('a','b'), 1)") == "b"
    assert call("States.ArrayLength(States.Array(1,2,3))") == 3
    assert call("States.ArrayUnique(States.Array(1,2,1,'1'))") == [1, 2, "1"]
    assert call("States.Base64Decode(States.Base64Encode('héllo'))") == "héllo"
    assert call("States.Hash('input data', 'MD5')") == "812f45842bc6d66ee14572ce20db8e86"
    assert call("States.JsonMerge($.a, $.b, false)", {"a": {"x": {"p": 1}, "y": 1}, "b": {"x": {"q": 2}}}) == {
        "x": {"q": 2},
        "y": 1,
    }
    assert call("States.MathAdd(1.5, -1.5)") == 1  # Java Math.round on each argument
    assert call("States.StringSplit('a,b,,c', ',')") == ["a", "b", "c"]
    assert 1 <= call("States.MathRandom(1, 10)") < 10
    assert len(call("States.UUID()")) == 36


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("States.ArrayRange(1, 2000, 1)", "limit of 1000"),
        ("States.Hash('x', 'SHA-3')", "not supported"),
        ("States.JsonMerge($.a, $.a, true)", "shallow"),
        ("States.ArrayGetItem(States.Array(1), 5)", "out of bounds"),
        ("States.Format('{} {}', 1)", "placeholder"),
    ],
)
def test_intrinsic_errors_name_the_problem(text, fragment):
    with pytest.raises(intrinsics.IntrinsicError) as exc:
        call(text, {"a": {}})
    assert fragment in exc.value.message


def test_unknown_intrinsic_and_bad_syntax_do_not_parse():
    with pytest.raises(intrinsics.IntrinsicError):
        intrinsics.parse("States.Nope(1)")
    with pytest.raises(intrinsics.IntrinsicError):
        intrinsics.parse("States.Format('x'")


def rule(r: dict, data) -> bool:
    return choice.compile_rule(r)(Scope("S", data, {}, {}), data)


def test_choice_operators_ignore_values_of_the_wrong_type():
    assert rule({"Variable": "$.n", "NumericGreaterThan": 1}, {"n": 2})
    assert not rule({"Variable": "$.n", "NumericGreaterThan": 1}, {"n": "2"})
    assert not rule({"Variable": "$.b", "NumericEquals": 1}, {"b": True})
    assert rule({"Variable": "$.s", "StringMatches": "log-*.txt"}, {"s": "log-1.txt"})
    assert rule({"Variable": "$.s", "StringMatches": "a\\*"}, {"s": "a*"})
    assert not rule({"Variable": "$.s", "StringMatches": "a\\*"}, {"s": "ab"})
    assert rule({"Variable": "$.t", "TimestampLessThan": "2026-01-01T00:00:00Z"}, {"t": "2025-12-31T23:00:00+00:00"})
    assert not rule({"Variable": "$.t", "TimestampEquals": "2026-01-01T00:00:00Z"}, {"t": "2026-01-01"})
    assert rule({"Variable": "$.a", "NumericEqualsPath": "$.b"}, {"a": 1, "b": 1.0})
    assert rule({"Not": {"Variable": "$.x", "IsPresent": True}}, {})
    assert rule({"And": [{"Variable": "$.x", "IsNull": True}, {"Variable": "$.x", "IsPresent": True}]}, {"x": None})
    assert rule({"Or": [{"Variable": "$.x", "IsString": True}, {"Variable": "$.x", "IsNumeric": True}]}, {"x": 1})
    assert rule({"Variable": "$.x", "IsTimestamp": True}, {"x": "2026-01-01T00:00:00.5Z"})


def test_choice_on_a_missing_variable_is_a_runtime_error():
    from aionix.stepflow.engine import Failure

    with pytest.raises(Failure) as exc:
        rule({"Variable": "$.missing", "StringEquals": "x"}, {})
    assert exc.value.error == "States.Runtime"
    assert "$.missing" in (exc.value.cause or "")
