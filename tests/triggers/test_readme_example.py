"""The README's signed-webhook example (openssl + curl), run as written against the server."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from triggers.support import create_workflow, finished_execution, unique

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    text = README.read_text()
    block = text.split("<!-- webhook-signing-example -->", 1)[1]
    return re.search(r"```sh\n(.*?)```", block, re.DOTALL).group(1)


def test_readme_signing_example_is_accepted(server, admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("readme")
    r = admin.post(
        "/api/v1/triggers",
        json={"name": name, "target": f"trn:stepflow:default:template/{wf}", "input": "body", "webhook": {}},
    )
    assert r.status_code == 201, r.text
    script = example()
    script = re.sub(r"^SECRET=.*$", f"SECRET='{r.json()['secret']}'", script, flags=re.MULTILINE)
    script = re.sub(r"^URL=.*$", f"URL={server.url}/hooks/default/{name}", script, flags=re.MULTILINE)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["status"] == "delivered"
    assert finished_execution(admin, answer["result_id"])["input"] == {"orderId": 42}
