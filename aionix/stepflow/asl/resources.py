"""Task `Resource`s: what an ASL Task calls through the executor bus.

- an Aionix TRN (`trn:aionixfn:…`, `trn:openact:…`, `trn:stepflow:…`) or a connector action kind
  (`http`, `sql`, …): called as is, the effective parameters as the payload;
- `arn:aws:states:::lambda:invoke`: the Aionix function named by `FunctionName` (a name or a
  Lambda ARN) gets `Payload`; the result is shaped like Lambda's (`Payload`, `StatusCode`, …);
- a Lambda function ARN `arn:aws:lambda:…:function:NAME[:QUALIFIER]`: that function, the
  result as is;
- `arn:aws:states:::bedrock:invokeModel`: an AI task (the `ai` action): `ModelId` names the
  intent (a plain name, or the last `/` segment of a Bedrock model ARN), `Body` (an object) is
  its params; the result is shaped like Bedrock's (`Body`: the task's `{task_id, result, engine,
  usage}`, `ContentType`);
- any other AWS ARN: only with a mock config (`mock_target`), else a validation error.

`.waitForTaskToken` selects callback mode (`$$.Task.Token` is the engine's callback token);
`.sync` is accepted and runs synchronously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aionix import trn as trnlib
from aionix.errors import field_error

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
BEDROCK_INVOKE = "arn:aws:states:::bedrock:invokeModel"
_LAMBDA_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[^:]*:[^:]*:function:([A-Za-z0-9_.-]+)(?::([A-Za-z0-9_$.-]+))?$")
_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")


def split_suffix(resource: str) -> tuple[str, str]:
    for suffix in (".waitForTaskToken", ".sync:2", ".sync"):
        if resource.endswith(suffix):
            return resource[: -len(suffix)], suffix
    return resource, ""


def check(resource: Any, pointer: str, mock_target: str | None = None) -> str | None:
    """Why `resource` cannot run here (None when it can)."""
    if not isinstance(resource, str) or not resource:
        return "Resource must be a non-empty string"
    base, _ = split_suffix(resource)
    if base in (LAMBDA_INVOKE, BEDROCK_INVOKE) or _LAMBDA_ARN.match(base):
        return None
    if trnlib.is_trn(base):
        try:
            trnlib.parse(base)
        except Exception as exc:
            return f"Resource is not a valid TRN: {exc}"
        return None
    if _KIND.match(base):
        return None
    if base.startswith("arn:") and mock_target is not None:
        return None
    if base.startswith("arn:"):
        return (
            f"Resource {resource!r} is an AWS service integration that Aionix cannot call offline; use an Aionix "
            "TRN, a connector action, a Lambda function ARN naming an Aionix function, or run it with a mock "
            "config (aio wf test --mock-config)"
        )
    return f"Resource {resource!r} is not a TRN, a connector action kind or a supported ARN"


@dataclass(slots=True)
class Target:
    resource: str
    state: str
    mode: str
    mock_target: str | None

    def _function_trn(self, tenant: str, ref: Any) -> str:
        if not isinstance(ref, str) or not ref:
            raise field_error("Parameters.FunctionName", "FunctionName must be a function name or a Lambda ARN")
        m = _LAMBDA_ARN.match(ref)
        name, qualifier = (m.group(1), m.group(2)) if m else (ref.split(":")[0], None)
        if not m and ":" in ref:
            name, qualifier = ref.split(":", 1)
        out = f"trn:aionixfn:{tenant}:function/{name}"
        return f"{out}:{qualifier}" if qualifier and qualifier != "$LATEST" else out

    @property
    def is_lambda(self) -> bool:
        base, _ = split_suffix(self.resource)
        return not self.mocked and (base == LAMBDA_INVOKE or _LAMBDA_ARN.match(base) is not None)

    @property
    def mocked(self) -> bool:
        return self.mock_target is not None and self.resource.startswith("arn:")

    def action(self, d: dict[str, Any], builder: Any) -> str:
        base, _ = split_suffix(self.resource)
        tenant = (d.get("context") or {}).get("tenant", "default")
        if self.mocked:
            return self.mock_target  # type: ignore[return-value]
        if base == LAMBDA_INVOKE:
            params = builder.parameters(builder.scope(d))
            return self._function_trn(tenant, params.get("FunctionName") if isinstance(params, dict) else None)
        if base == BEDROCK_INVOKE:
            return "ai"
        m = _LAMBDA_ARN.match(base)
        if m:
            return self._function_trn(tenant, base)
        return base

    def payload(self, d: dict[str, Any], builder: Any) -> Any:
        base, _ = split_suffix(self.resource)
        params = builder.parameters(builder.scope(d))
        if self.mocked:
            return {"state": self.state, "resource": self.resource, "parameters": params}
        if base == LAMBDA_INVOKE:
            return params.get("Payload") if isinstance(params, dict) else None
        if base == BEDROCK_INVOKE:
            if not isinstance(params, dict) or not isinstance(params.get("ModelId"), str):
                raise field_error("Parameters.ModelId", "bedrock:invokeModel needs ModelId (the intent's name)")
            body = params.get("Body", {})
            if not isinstance(body, dict):
                raise field_error("Parameters.Body", "must be an object (the intent's params)")
            return {"intent": params["ModelId"].rsplit("/", 1)[-1], "params": body}
        return params

    def shape(self, result: Any) -> Any:
        """Lambda's invoke answer around the function's result, as Step Functions returns it
        (a mock's answer is already shaped)."""
        base, suffix = split_suffix(self.resource)
        if base == LAMBDA_INVOKE and suffix != ".waitForTaskToken" and not self.mocked:
            return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200}
        if base == BEDROCK_INVOKE and suffix != ".waitForTaskToken" and not self.mocked:
            return {"Body": result, "ContentType": "application/json"}
        return result


def resolve(resource: str, state: str, mock_target: str | None) -> Target:
    _, suffix = split_suffix(resource)
    mode = "callback" if suffix == ".waitForTaskToken" else "sync"
    return Target(resource, state, mode, mock_target)
