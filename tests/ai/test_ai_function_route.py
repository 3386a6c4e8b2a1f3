"""Local routes that are Aionix functions (`kind: function`, called through the bus), and the
hybrid low-confidence rule: a local answer below the intent's `min_confidence` goes to the API
route (the cloud stand-in of standin.py)."""

from __future__ import annotations

SOURCE = (
    "def handler(event, context):\n"
    "    text = event['messages'][-1]['content']\n"
    "    return {'text': 'local says ' + text, 'confidence': 0.2 if 'low' in text else 0.9}\n"
)


def test_function_route_and_low_confidence_escalation(ai):
    with ai.server.client(timeout=120) as c:
        r = c.post("/api/v1/functions", json={"name": "ai-local-fn", "runtime": "python", "code": {"source": SOURCE}})
        assert r.status_code == 201, r.text
        before = ai.api.connections
        env = c.post("/api/v1/tasks", json={"intent": "fn-local", "params": {"text": "hello"}}).json()
        assert env["status"] == "OK", env
        assert env["result"] == {"text": "local says hello", "confidence": 0.9}
        assert env["engine"]["provider"] == "fn" and env["usage"]["tokens_out"] >= 1
        assert ai.api.connections == before
        env = c.post("/api/v1/tasks", json={"intent": "fn-hybrid", "params": {"text": "high"}}).json()
        assert env["engine"]["provider"] == "fn" and env["result"]["confidence"] == 0.9
        env = c.post("/api/v1/tasks", json={"intent": "fn-hybrid", "params": {"text": "low"}}).json()
        assert env["status"] == "OK", env
        assert env["engine"]["provider"] == "cloud" and "confidence 0.2" in env["engine"]["reason"]
        assert env["result"]["text"] == "Hello from stand-in"
