"""`transform`: a pure JSONata action (no I/O), handy in workflows to reshape data."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from aionix import expr, jsonutil
from aionix.connectors.kind import ConnectorKind, Invocation, Operation, Params

LARGE_INPUT_BYTES = 65_536


class TransformParams(Params):
    expression: str = Field(..., min_length=1, description="JSONata source (without {% %}), evaluated against `data`")
    data: Any = Field(None, description="the value the expression sees as its context")
    bindings: dict[str, Any] = Field(default_factory=dict, description="extra $variables")

    @field_validator("expression")
    @classmethod
    def _compiles(cls, v: str) -> str:
        source = expr.expression_source(v) if expr.is_expression(v) else v
        try:
            expr.compile_expression(source)
        except expr.ExpressionError as exc:
            raise ValueError(exc.message) from None
        return source


def _large(data: Any) -> bool:
    if not isinstance(data, dict | list):
        return False
    try:
        return len(jsonutil.dumps(data)) > LARGE_INPUT_BYTES
    except TypeError:
        return False


async def run_transform(call: Invocation) -> Any:
    p: TransformParams = call.params
    compiled = expr.compile_expression(p.expression)
    try:
        # inline when quick, else in an expression worker process (bounded by [limits]); a big
        # input goes to the worker directly: reading it alone would hold the loop
        if _large(p.data):
            value = await expr.evaluate_async(lambda: expr.offloaded(compiled, p.data, p.bindings or None))
        else:
            value = await expr.evaluate_async(lambda: compiled.evaluate(p.data, p.bindings or None))
    except expr.ExpressionError as exc:
        raise KIND.error(
            "Error", exc.message, details={"jsonata_code": exc.jsonata_code, "position": exc.position}
        ) from None
    return None if value is expr.UNDEFINED else value


KIND = ConnectorKind(
    name="transform",
    title="JSONata transform",
    error_prefix="Transform",
    default_operation="evaluate",
    operations={
        "evaluate": Operation(
            "evaluate",
            "Evaluate a JSONata expression over data; undefined becomes null",
            TransformParams,
            {"description": "the expression's value"},
            run_transform,
        ),
    },
    examples=[{"expression": "$sum(items.price)", "data": {"items": [{"price": 2}, {"price": 3}]}}],
)
