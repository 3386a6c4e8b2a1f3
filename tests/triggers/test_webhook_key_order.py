"""A webhook body reaches the workflow input with its keys in the order they were sent
(JSON objects are ordered for the people reading them; the trigger must not sort them)."""

from __future__ import annotations

import json

from triggers.support import create_workflow, finished_execution, post_signed, unique


def test_webhook_body_keeps_its_key_order(server, admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("hook")
    r = admin.post(
        "/api/v1/triggers", json={"name": name, "target": f"trn:stepflow:default:template/{wf}", "webhook": {}}
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    body = b'{"zeta": 1, "alpha": {"yak": true, "bee": [3, {"z": 0, "a": 1}]}, "mid": "x"}'
    r = post_signed(server.url, hook["webhook_path"], hook["secret"], body, msg_id=unique("msg"))
    assert r.status_code == 202, r.text
    done = finished_execution(admin, r.json()["result_id"])
    assert done["status"] == "SUCCEEDED", done
    sent = json.loads(body)
    got = done["input"]["body"]
    assert got == sent
    assert list(got) == ["zeta", "alpha", "mid"]
    assert list(got["alpha"]) == ["yak", "bee"] and list(got["alpha"]["bee"][1]) == ["z", "a"]
    # the stored fire keeps the order too: a redelivery after a restart sends the same input
    assert json.dumps(got) == json.dumps(sent)
