"""Policy evaluation: p50/p99 of one decision for a principal with 20 statements (its role's
built-in policy plus an attached 20-statement document with wildcards, a CIDR and a time
window), the compiled set alone and through the engine's per-principal cache (what the API
dispatcher, the MCP server and the bus call). Target: p99 <= 50 µs."""

from __future__ import annotations

import asyncio
import gc
import importlib
import time
from typing import Any

from aionix.api.auth import Principal
from aionix.iam.policy import PolicyDocument, PolicySet, Request, builtin_documents
from aionix.iam.policy_engine import PolicyEngine

N = 20_000
TARGET_P99_US = 50.0


def _document() -> PolicyDocument:
    statements: list[dict[str, Any]] = []
    for i in range(17):
        statements.append(
            {
                "sid": f"team-{i}",
                "effect": "allow",
                "actions": [f"svc{i}:Get*", f"svc{i}:List*", f"svc{i}:Start{i}"],
                "resources": [f"trn:svc{i}:prod:thing/team-{i}-*"],
                "conditions": {"source_ip": ["10.0.0.0/8", "192.168.0.0/16"]},
            }
        )
    statements.append({"sid": "no-reveal", "effect": "deny", "actions": ["credvault:Reveal*"]})
    statements.append(
        {
            "sid": "office-hours",
            "effect": "deny",
            "actions": ["stepflow:Delete*"],
            "conditions": {"time": {"after": "18:00", "before": "08:00"}},
        }
    )
    statements.append(
        {
            "sid": "billing",
            "effect": "allow",
            "actions": ["stepflow:StartExecution"],
            "resources": ["trn:stepflow:prod:template/billing-*"],
            "conditions": {"tenant": ["prod"]},
        }
    )
    return PolicyDocument.model_validate({"statements": statements})


def _endpoints() -> list[Any]:
    from aionix.api.admin import api as core

    eps = list(core.endpoints)
    for name in ("vault", "params", "connectors", "functions", "stepflow", "triggers", "ai", "agents", "modules"):
        eps += importlib.import_module(f"aionix.{name}.routes").api.endpoints
    return eps


def _percentiles(samples: list[int]) -> dict[str, float]:
    samples.sort()
    return {
        "p50_us": round(samples[len(samples) // 2] / 1000, 2),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 2),
        "max_us": round(samples[-1] / 1000, 2),
    }


class _Store:
    def __init__(self, doc: PolicyDocument) -> None:
        self.doc = doc.model_dump_json(exclude_none=True)

    async def fetch_all(self, query: str, params: Any) -> list[dict[str, Any]]:
        return [{"principal_kind": "key", "principal_id": "key_bench", "policy": "team", "document": self.doc}]


class _Runtime:
    def __init__(self, eps: list[Any], doc: PolicyDocument) -> None:
        self._eps = eps
        self.plugins: list[Any] = []
        self.store = _Store(doc)

    def endpoints(self) -> list[Any]:
        return self._eps


def run() -> dict[str, Any]:
    eps = _endpoints()
    doc = _document()
    builtin = builtin_documents(eps)["aionix-operator"]
    pset = PolicySet([("aionix-operator", builtin), ("team", doc)])
    statements = len(doc.statements)
    requests = [
        # allowed by the attached document's last statement (every deny and most allows tried first)
        Request(
            "stepflow:StartExecution", "trn:stepflow:prod:template/billing-42", tenant="prod", source_ip="10.1.2.3"
        ),
        # denied explicitly
        Request("credvault:RevealSecret", "trn:credvault:prod:credential/db", tenant="prod", source_ip="10.1.2.3"),
        # matched by nothing in the document: the role policy's allow decides
        Request("aionixfn:GetFunction", "trn:aionixfn:prod:function/f", tenant="prod", source_ip="172.16.0.1"),
        # implicit deny: every statement tried
        Request("aionix:CreateKey", "trn:aionix:prod:service", tenant="prod", source_ip="172.16.0.1"),
    ]
    out: dict[str, Any] = {"statements_attached": statements, "statements_total": len(pset.allows) + len(pset.denies)}
    gc.disable()
    try:
        samples: list[int] = []
        clock = time.perf_counter_ns
        for i in range(N):
            r = requests[i % len(requests)]
            t = clock()
            pset.decide(r)
            samples.append(clock() - t)
        out["compiled_set"] = _percentiles(samples)

        engine = PolicyEngine(_Runtime(eps, doc))  # type: ignore[arg-type]
        who = Principal("key_bench", "prod", "operator", False, "prod")

        async def through_engine() -> list[int]:
            await engine.decide(who, "a:B", "trn:x")  # fills the cache
            got = []
            for i in range(N):
                r = requests[i % len(requests)]
                t = clock()
                await engine.decide(who, r.action, r.resource, source_ip=r.source_ip)
                got.append(clock() - t)
            return got

        out["engine_cached"] = _percentiles(asyncio.run(through_engine()))
    finally:
        gc.enable()
    out["target_p99_us"] = TARGET_P99_US
    out["target_met"] = (
        out["compiled_set"]["p99_us"] <= TARGET_P99_US and out["engine_cached"]["p99_us"] <= TARGET_P99_US
    )
    for key in ("compiled_set", "engine_cached"):
        f = out[key]
        print(f"  {key:14s} p50 {f['p50_us']:7.2f} µs  p99 {f['p99_us']:7.2f} µs  max {f['max_us']:8.2f} µs")
    print(f"  target p99 <= {TARGET_P99_US} µs: {'met' if out['target_met'] else 'NOT met'}")
    return out
