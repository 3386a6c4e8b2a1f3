"""RELIABILITY S9: schemathesis against the running server's own OpenAPI document.

Bounded (a few dozen examples per operation, deterministic generation) so CI stays fast. Every
check runs except `positive_data_acceptance`, which demands that anything the schema allows is
accepted: rules that JSON Schema cannot express (a cursor this list did not issue, a
cross-tenant key that is not an admin) are refused with a 4xx naming the field, on purpose."""

import os
import subprocess
import sys
from pathlib import Path


def test_schemathesis_finds_no_5xx_and_no_schema_violations(make_server):
    srv = make_server(
        env={
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
            "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "100000",
        }
    ).start()
    st = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [
            str(st),
            "run",
            srv.url + "/api/openapi.json",
            "-H",
            f"Authorization: Bearer {srv.admin_key}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            os.environ.get("AIONIX_FUZZ_EXAMPLES", "25"),
            "--generation-deterministic",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = proc.stdout[-6000:]
    assert proc.returncode == 0, tail
    assert "500" not in "".join(line for line in srv.log().splitlines() if "unhandled error" in line)
    assert "unhandled error" not in srv.log()
