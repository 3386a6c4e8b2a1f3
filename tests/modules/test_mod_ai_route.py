"""Routing an intent to a module: the AI router's local route (`kind: function` with target
`trn:modules:{tenant}:module/summarize_text`) runs the signed example module, confined."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import install

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "modules"))

import build as example_build


def test_intent_routed_to_module(mc, example_key, tmp_path):
    mc.delete("/api/v1/modules/summarize_text")
    assert install(mc, example_build.build("summarize_text", tmp_path).read_bytes())["state"] == "verified"
    text = (
        "Modules run signed code on the server. Bananas are yellow. "
        "Signed modules are verified before the server runs the code. Lunch was late. "
        "The server keeps signed modules in quarantine when the code fails verification."
    )
    env = mc.post("/api/v1/tasks", json={"intent": "summarize", "params": {"text": text}}).json()
    assert env["status"] == "OK", env
    assert env["engine"]["provider"] == "modules", env
    summary = env["result"]["text"]
    assert summary.startswith("Modules run signed code") and "Bananas" not in summary and "Lunch" not in summary, (
        summary
    )
    serving = mc.get("/api/v1/modules", params={"intent": "summarize"}).json()["items"]
    assert "summarize_text" in {m["name"] for m in serving} and "text_extract" not in {m["name"] for m in serving}
    assert all("summarize" in m["intents"] for m in serving)
    got = mc.get("/api/v1/modules/summarize_text").json()
    assert got["invocations"]["total"] >= 1 and "summarize" in got["intents"]
