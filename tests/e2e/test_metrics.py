"""Metrics for what operators page on, and the observability kit in deploy/observability/:
the series move with real work on the real server; `promtool` accepts the alert rules and the
Prometheus configuration; Debian's real `prometheus` scrapes the server (the target is up),
loads every rule and evaluates it without error, and answers every query of the Grafana
dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from serverproc import ServerProcess, free_port

ROOT = Path(__file__).parents[2]
KIT = ROOT / "deploy" / "observability"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NEEDS = "Debian's prometheus package (scripts/system-deps.sh installs it)"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: dict, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


def metric_names(text: str) -> set[str]:
    """The series an expression or rule reads (`aionix_…` and `process_…`), without the
    histogram suffixes."""
    names = set(re.findall(r"\b((?:aionix|process)_[a-z_]+)", text))
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}


def dashboard_queries() -> list[str]:
    dash = json.loads((KIT / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    # what Grafana substitutes before it asks Prometheus
    return [
        e.replace("$__rate_interval", "1m").replace('"$instance"', '".*"').replace('"$job"', '"aionix"') for e in exprs
    ]


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that has done some of everything the metrics count."""
    node = ServerProcess(tmp_path_factory.mktemp("metrics")).start()
    with node.client() as c:
        ok = {"entry": "A", "states": {"A": {"type": "set", "value": {"ok": True}, "end": True}}}
        bad = {"entry": "A", "states": {"A": {"type": "fail", "error": "Boom", "cause": "on purpose"}}}
        for name, definition in (("good", ok), ("bad", bad)):
            assert c.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
        for name in ("good", "good", "bad"):
            r = c.post(f"/api/v1/workflows/{name}/executions", json={"input": {}}, params={"mode": "sync"})
            assert r.status_code in (200, 201, 202), r.text
        r = c.post(
            "/api/v1/triggers",
            json={"name": "hook", "target": "trn:stepflow:default:template/good", "webhook": {}},
        )
        assert r.status_code == 201, r.text
        path = r.json()["webhook_path"]
    # an unsigned delivery: rejected, and counted by reason
    r = httpx.post(node.url + path, json={"x": 1}, timeout=10)
    assert r.status_code in (400, 401, 403), r.text
    yield node
    node.stop()


def test_metrics_count_executions_states_commits_levels_and_rejections(busy: ServerProcess) -> None:
    deadline = time.monotonic() + 30
    while True:
        found = samples(busy.url)
        if value(found, "aionix_executions_finished_total", status="FAILED") >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert value(found, "aionix_executions_started_total") == 3
    assert value(found, "aionix_executions_finished_total", status="SUCCEEDED") == 2
    assert value(found, "aionix_executions_finished_total", status="FAILED") == 1
    assert value(found, "aionix_state_seconds_count", type="set") == 2
    assert value(found, "aionix_state_seconds_count", type="fail") == 1
    assert value(found, "aionix_executions_running") == 0
    # every checkpoint went through a group commit, and each commit counted its transactions
    commits = value(found, "aionix_store_commit_seconds_count")
    assert commits >= 3 and value(found, "aionix_store_commit_transactions_sum") >= commits
    assert value(found, "aionix_store_wal_bytes") > 0 and "aionix_store_write_queue_depth" in {n for n, _ in found}
    assert ("aionix_trigger_outbox_pending", ()) in found and ("aionix_trigger_outbox_lag_seconds", ()) in found
    for runtime in ("python", "deno", "wasm"):
        assert ("aionix_function_workers", (("runtime", runtime), ("state", "live"))) in found
        assert value(found, "aionix_function_workers_max", runtime=runtime) >= 1
    assert total(found, "aionix_trigger_webhooks_rejected_total") >= 1
    assert value(found, "process_resident_memory_bytes") > 0
    assert value(found, "aionix_metrics_refresh_errors_total") == 0


def test_rules_and_dashboard_read_only_series_the_server_exports(busy: ServerProcess) -> None:
    assert Path(PROMTOOL).exists(), f"promtool missing: {NEEDS}"
    done = subprocess.run([PROMTOOL, "check", "rules", str(KIT / "alerts.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout
    done = subprocess.run([PROMTOOL, "check", "config", str(KIT / "prometheus.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    exported = set()  # every family, with or without samples yet (a labelled counter nobody used)
    for family in text_string_to_metric_families(httpx.get(busy.url + "/metrics", timeout=10).text):
        exported |= {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
    rules = yaml.safe_load((KIT / "alerts.yml").read_text())
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket")
            used |= metric_names(rule["expr"])
    for query in dashboard_queries():
        used |= metric_names(query)
    missing = sorted(n for n in used if n not in exported)
    assert not missing, f"rules or dashboard read series the server does not export: {missing}"


def test_real_prometheus_scrapes_the_server_and_loads_the_rules(busy: ServerProcess, tmp_path: Path) -> None:
    assert Path(PROMETHEUS).exists(), f"prometheus missing: {NEEDS}"
    config = yaml.safe_load((KIT / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(KIT / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{busy.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def get(path: str, **params: str) -> dict:
            r = httpx.get(api + path, params=params, timeout=5)
            assert r.status_code == 200, r.text
            return r.json()["data"]

        deadline = time.monotonic() + 60
        targets: list = []
        rules: list = []
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                targets = get("/targets")["activeTargets"]
                rules = [r for g in get("/rules")["groups"] for r in g["rules"]]
            except (httpx.HTTPError, AssertionError):
                time.sleep(0.5)
                continue
            evaluated = rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules)
            if targets and all(t["health"] == "up" for t in targets) and evaluated:
                break
            time.sleep(0.5)
        assert [t["labels"]["job"] for t in targets] == ["aionix"] and targets[0]["health"] == "up", targets
        assert targets[0]["scrapeUrl"] == f"{busy.url}/metrics"
        assert len(rules) == 12
        bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not bad, bad
        # the server is healthy and idle: nothing fires
        assert all(r["state"] == "inactive" for r in rules), [(r["name"], r["state"]) for r in rules]
        # what Prometheus scraped is what the server counted
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = get("/query", query="sum(aionix_executions_started_total)")["result"]
            if result:
                break
            time.sleep(0.5)
        assert float(result[0]["value"][1]) == 3
        # every query of the dashboard is one Prometheus accepts
        for query in dashboard_queries():
            r = httpx.get(api + "/query", params={"query": query}, timeout=5)
            assert r.status_code == 200 and r.json()["status"] == "success", (query, r.text)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
