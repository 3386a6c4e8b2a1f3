"""RELIABILITY S9: schemathesis against the running server's own OpenAPI document (issue 26).

Every operation of `/api/openapi.json` is fuzzed: operations added later are covered without a
test of their own. The run checks `not_a_server_error`, `status_code_conformance`,
`content_type_conformance` and `response_schema_conformance` (no 5xx; every status, content
type and body is one the document declares). It is bounded and reproducible: a fixed seed, the
coverage phase (the schema's boundary and negative values, operation by operation), then fuzzing
until the time budget is spent (`--max-time`, 180 s on CI). `AIONIX_FUZZ_SCALE=10` runs ten times
as long, with ten times as many examples per operation and round.

The server is seeded first (a workflow with a finished and a running execution, a parameter, a
secret, a function, a trigger, a connection and an action, a throwaway API key), and path
parameters are drawn from those names half of the time, so requests reach real resources and
not only 404s.

Excluded: one operation, `DELETE /api/v1/keys/{key_id}`, because it ends the run's own access:
schemathesis learns ids from answers (`GET /api/v1/keys` lists the run's own key), and once it
has created another cross-tenant admin key (`POST /api/v1/keys`, fuzzed) the last-admin guard
rightly lets the run's key be revoked — after which every operation answers 401 (seen in a 10×
run: 67 operations "returned only 401/403"). Revocation is tested on its own
(`tests/e2e/test_api_core.py`, `tests/security/test_last_admin.py`, the policy matrix).
`positive_data_acceptance` is not among the checks: rules JSON Schema cannot express (a cursor
this list did not issue, a definition whose `next` names no state) are refused with a 4xx
naming the field, on purpose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SEED = 26
#: examples per operation and fuzzing round, and the time budget of the whole run (seconds), at scale 1
EXAMPLES = 12
BUDGET_S = 180
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _seed(url: str, key: str) -> dict[str, list[str]]:
    """Resources for the fuzzer to hit; returns the dictionaries of their names and ids."""
    h = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=h, timeout=30) as c:

        def ok(r: httpx.Response) -> dict:
            assert r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text)
            return r.json() if r.content else {}

        ok(
            c.post(
                "/api/v1/workflows",
                json={"name": "fuzzwf", "definition": {"entry": "Done", "states": {"Done": {"type": "succeed"}}}},
            )
        )
        ok(
            c.post(
                "/api/v1/workflows",
                json={
                    "name": "fuzzwait",
                    "definition": {"entry": "Wait", "states": {"Wait": {"type": "wait", "seconds": 3600, "end": True}}},
                },
            )
        )
        done = ok(c.post("/api/v1/workflows/fuzzwf/executions", json={"input": {"n": 1}, "mode": "sync"}))
        running = ok(c.post("/api/v1/workflows/fuzzwait/executions", json={"input": {}}))
        ok(c.put("/api/v1/params/fuzz/p", json={"type": "json", "value": {"a": 1}}))
        ok(c.post("/api/v1/secrets", json={"name": "fuzzsecret", "type": "password", "value": "s3cret-value"}))
        ok(
            c.post(
                "/api/v1/functions",
                json={
                    "name": "fuzzfn",
                    "runtime": "python",
                    "code": {"source": "def handler(event, context):\n    return event\n"},
                },
            )
        )
        ok(
            c.post(
                "/api/v1/triggers",
                json={"name": "fuzztrig", "target": "trn:stepflow:default:template/fuzzwf", "webhook": {}},
            )
        )
        ok(
            c.post(
                "/api/v1/connections",
                json={"name": "fuzzconn", "kind": "http", "config": {"base_url": "http://127.0.0.1:9"}},
            )
        )
        ok(
            c.post(
                "/api/v1/actions",
                json={"name": "fuzzact", "kind": "transform", "parameters": {"expression": "{% $ %}"}},
            )
        )
        throwaway = ok(c.post("/api/v1/keys", json={"name": "fuzz-throwaway", "role": "viewer"}))
    return {
        "workflows": ["fuzzwf", "fuzzwait"],
        "secrets": ["fuzzsecret"],
        "functions": ["fuzzfn"],
        "triggers": ["fuzztrig"],
        "connections": ["fuzzconn"],
        "actions": ["fuzzact"],
        "ids": [done["execution_id"], running["execution_id"]],
        "finished": [done["execution_id"]],
        "paths": ["fuzz/p"],
        "keys": [throwaway["id"]],
        "tenants": ["default"],
    }


#: the dictionary of names for the operations under each path prefix
NAMES_BY_PREFIX = {
    "/api/v1/workflows/": "workflows",
    "/api/v1/secrets/": "secrets",
    "/api/v1/functions/": "functions",
    "/api/v1/triggers/": "triggers",
    "/api/v1/connections/": "connections",
    "/api/v1/actions/": "actions",
    "/hooks/": "triggers",
}


def _config(dicts: dict[str, list[str]], examples: int) -> str:
    # above the API's longest legitimate wait (a sync start may ask for wait_seconds up to 300)
    lines = [f"generation.max-examples = {examples}", "request-timeout = 320", ""]
    for name, values in dicts.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines += [
        "[parameters]",
        '"path.id" = { dictionary = "ids", probability = 0.5 }',
        '"path.path" = { dictionary = "paths", probability = 0.5 }',
        '"path.key_id" = { dictionary = "keys", probability = 0.5 }',
        '"path.tenant" = { dictionary = "tenants", probability = 0.5 }',
        "",
    ]
    for prefix, dictionary in NAMES_BY_PREFIX.items():
        lines += [
            "[[operations]]",
            f'include-path-regex = "^{prefix}"',
            f'parameters = {{ "path.name" = {{ dictionary = "{dictionary}", probability = 0.5 }} }}',
            "",
        ]
    lines += [
        # revoking keys ends the run's own access (see the module docstring)
        "[[operations]]",
        'include-name = "DELETE /api/v1/keys/{key_id}"',
        "enabled = false",
        "",
        # the stream of a RUNNING execution never ends: stream only finished ones
        "[[operations]]",
        'include-path = "/api/v1/executions/{id}/stream"',
        'parameters = { "path.id" = { dictionary = "finished", probability = 0.5 } }',
        "",
    ]
    return "\n".join(lines)


SCALE = float(os.environ.get("AIONIX_FUZZ_SCALE", "1"))
#: operations that check credentials of their own, so that a fuzzed body may only ever get a 401
#: (which ones do in a run depends on what the fuzzer drew: a 422 for a malformed body saves them)
SELF_AUTHENTICATED = {
    "POST /hooks/{tenant}/{name}",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/refresh",
    "POST /api/v1/auth/oidc/exchange",
}


def _only_401_403(out: str) -> set[str]:
    """The operations schemathesis' "Authentication failed" warning names: those that answered
    nothing but 401/403 (listed as `  - METHOD PATH` under the warning, before its tip)."""
    at = out.find("Authentication failed:")
    if at < 0:
        return set()
    end = out.find("\U0001f4a1", at)  # the tip that closes the warning
    block = out[at : end if end > 0 else len(out)]
    return set(re.findall(r"^\s+- ((?:GET|POST|PUT|PATCH|DELETE|HEAD) \S+)", block, re.M))


@pytest.mark.timeout(round(BUDGET_S * SCALE) + 900)
def test_schemathesis_finds_no_5xx_and_no_conformance_failure(make_server, tmp_path):
    scale = SCALE
    examples = max(1, round(EXAMPLES * scale))
    budget = BUDGET_S * scale
    srv = make_server(
        env={
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "1000000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "1000000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "1000000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "1000000",
            "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "1000000",
            # a sync start answers (202) well within the fuzzer's request timeout
            "AIONIX_STEPFLOW_SYNC_WAIT_SECONDS": "5",
        }
    ).start()
    dicts = _seed(srv.url, srv.admin_key)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(dicts, examples))
    report = tmp_path / "report.ndjson"
    st = Path(sys.executable).with_name("schemathesis")
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            srv.url + "/api/openapi.json",
            "-H",
            f"Authorization: Bearer {srv.admin_key}",
            "--checks",
            CHECKS,
            "--max-time",
            str(round(budget)),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            str(SEED),
            # one worker: schemathesis' coverage phase is not thread-safe on CPython 3.11
            # ("SystemError: AST constructor recursion depth mismatch" with two)
            "--workers",
            "1",
            "--max-failures",
            "20",
            "--no-color",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=budget + 700,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    out = proc.stdout
    summary = out[out.rfind("SUMMARY") :] if "SUMMARY" in out else out[-3000:]
    generated = re.search(r"(\d+) generated", summary)
    print(
        f"schemathesis: scale {scale:g}, {examples} examples per operation and phase, "
        f"{generated.group(1) if generated else '?'} test cases, {elapsed:.0f} s\n{summary}"
    )
    assert proc.returncode == 0, out[-8000:] + proc.stderr[-2000:]
    operations = sum(len(ops) for ops in httpx.get(srv.url + "/api/openapi.json").json()["paths"].values())
    fuzzed = operations - 1  # all but DELETE /api/v1/keys/{key_id}
    assert re.search(rf"Selected: {fuzzed}/{operations}\b", summary), summary
    assert re.search(rf"Tested: {fuzzed}\b", summary), summary
    # the run kept its access throughout: only operations that take credentials of their own
    # (the webhook receiver's signature, a password, a refresh token) may answer 401 alone
    only_401 = _only_401_403(out)
    assert "Authentication failed" not in summary or only_401, out[-8000:]
    assert only_401 <= SELF_AUTHENTICATED, (only_401 - SELF_AUTHENTICATED, summary)
    # one case may still be waiting (up to the 320 s request timeout) when the budget ends
    assert elapsed < budget + 400, f"the fuzz run took {elapsed:.0f} s, over its {budget:.0f} s budget"
    log = srv.log()
    assert "unhandled error" not in log and "Traceback" not in log, log[-4000:]
