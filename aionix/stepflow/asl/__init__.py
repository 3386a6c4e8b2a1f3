"""Amazon States Language on the StepFlow engine.

An ASL definition (`StartAt`/`States`, or `"dialect": "asl"`) is validated with ASL's field
names (`validate`), compiled into the engine's plan (`compiler`) and run by the same durable
interpreter as the native DSL. JSONPath mode (`jsonpath`, `intrinsics`, `choice`) and JSONata
mode (`evaluate`, on `aionix.expr`) are both supported; `history` shapes the execution history
like `GetExecutionHistory`; `mock` reads the Step Functions Local MockConfigFile format; `local`
runs a definition in-process (conformance harness, `aio wf test`).
"""

from __future__ import annotations

from typing import Any


def is_asl(definition: Any) -> bool:
    """True for an Amazon States Language definition (as opposed to the native DSL)."""
    if not isinstance(definition, dict):
        return False
    if definition.get("dialect") == "asl":
        return True
    return "StartAt" in definition and "States" in definition
