"""Prometheus metrics for the core: one registry per runtime (so tests can run several).

Counters and histograms are updated where things happen (HTTP requests, execution starts and
ends, each state, each store commit, bus calls and trigger deliveries in their own modules);
the gauges of levels (queue depths, outbox backlog, worker pools, WAL size) are read when
`/metrics` is scraped (`refresh`), so they cost nothing between scrapes. Alert rules and a
Grafana dashboard over these series are in `deploy/observability/`.
"""

from __future__ import annotations

import logging
import os
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

log = logging.getLogger("aionix.metrics")

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_STATES = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "aionix_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "aionix_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.up = Gauge("aionix_up", "1 while the server runs", registry=r)
        self.up.set(1)
        self.started_at = Gauge("aionix_start_time_seconds", "Unix time the server started", registry=r)
        self.started_at.set(time.time())
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, fds
        # ------------------------------------------------------------ executions and states
        self.executions_started = Counter(
            "aionix_executions_started_total", "Workflow executions started (first checkpoint committed)", registry=r
        )
        self.executions_finished = Counter(
            "aionix_executions_finished_total",
            "Workflow executions that reached a terminal status, by status",
            ["status"],
            registry=r,
        )
        self.executions_running = Gauge(
            "aionix_executions_running", "Executions with a task on this server (scraped)", registry=r
        )
        #: observed for every state a workflow runs: counted without a lock (the engine runs on
        #: the event loop only) and turned into the histogram at scrape
        self.state_seconds = _LoopHistogram(
            "aionix_state_seconds", "Time from entering a state to leaving it (or failing), by state type", _STATES
        )
        r.register(self.state_seconds)
        #: (method, route, status) -> the labelled children (looking labels up takes a lock)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.timers_pending = Gauge("aionix_stepflow_timers_pending", "Armed wait/retry timers (scraped)", registry=r)
        # ------------------------------------------------------------ store
        self.commit_seconds = Histogram(
            "aionix_store_commit_seconds",
            "Group commit latency (COMMIT and its fsync), per commit",
            registry=r,
            buckets=_FAST,
        )
        self.commit_batch = Histogram(
            "aionix_store_commit_transactions",
            "Transactions per group commit",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.write_queue = Gauge(
            "aionix_store_write_queue_depth", "Transactions waiting for the writer (scraped)", registry=r
        )
        self.wal_bytes = Gauge("aionix_store_wal_bytes", "Size of the SQLite WAL file (scraped)", registry=r)
        self.db_bytes = Gauge("aionix_store_database_bytes", "Size of the SQLite database file (scraped)", registry=r)
        # ------------------------------------------------------------ triggers
        self.outbox_pending = Gauge(
            "aionix_trigger_outbox_pending", "Trigger fires waiting for delivery (scraped)", registry=r
        )
        self.outbox_lag = Gauge(
            "aionix_trigger_outbox_lag_seconds",
            "How far past due the oldest undelivered fire is: the claim lag of the outbox (scraped)",
            registry=r,
        )
        # ------------------------------------------------------------ functions
        self.workers = Gauge(
            "aionix_function_workers",
            "Function worker processes by runtime and state (live: started and not retired; warm: idle, ready)",
            ["runtime", "state"],
            registry=r,
        )
        self.worker_limit = Gauge(
            "aionix_function_workers_max", "The cap on live workers, by runtime", ["runtime"], registry=r
        )
        # ------------------------------------------------------------ cluster (issue 17)
        self.nodes_live = Gauge(
            "aionix_cluster_nodes_live", "Nodes on this database with a live heartbeat (scraped)", registry=r
        )
        r.register(_ClusterCollector(self))  # aionix_node_info and the cluster's counters
        self.scrape_errors = Counter(
            "aionix_metrics_refresh_errors_total", "Scrapes whose level gauges could not all be read", registry=r
        )
        self._rt: Any = None

    # ------------------------------------------------------------------ hooks
    def attach(self, rt: Any) -> None:
        """Bind to the runtime: the store reports each commit; scrapes read the levels."""
        self._rt = rt
        if hasattr(rt.store, "observe_commit"):
            rt.store.observe_commit = self.observe_commit

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._request_children.get((method, route, status))
        if children is None:  # routes and statuses are a bounded set
            children = self._request_children[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_state(self, kind: str, seconds: float) -> None:
        self.state_seconds.observe(kind, seconds)

    def observe_commit(self, seconds: float, transactions: int) -> None:
        """Called by the store's writer thread after each group commit."""
        self.commit_seconds.observe(seconds)
        self.commit_batch.observe(transactions)

    # ------------------------------------------------------------------ scrape
    async def refresh(self) -> None:
        rt = self._rt
        if rt is None:
            return
        try:
            store = rt.store
            queue = getattr(store, "_queue", None)
            if queue is not None:
                self.write_queue.set(queue.qsize())
            path = getattr(store, "path", None)
            if path is not None:
                self.db_bytes.set(_size(str(path)))
                self.wal_bytes.set(_size(f"{path}-wal"))
            stepflow = rt.services.get("stepflow")
            if stepflow is not None:
                self.executions_running.set(len(stepflow.runs))
                self.timers_pending.set(len(stepflow.timers))
            if "triggers" in rt.services:
                row = await store.fetch_one("doctor.outbox", {"tenant": None}) or {}
                self.outbox_pending.set(int(row.get("pending") or 0))
                oldest = row.get("oldest_due")
                self.outbox_lag.set(max(0.0, time.time() - oldest) if oldest is not None else 0.0)
            functions = rt.services.get("functions")
            for name, runtime in (getattr(functions, "runtimes", None) or {}).items():
                pools = getattr(runtime, "pools", None)
                if pools is None:
                    continue
                self.workers.labels(name, "live").set(pools.total)
                self.workers.labels(name, "warm").set(pools.warm_count())
                self.worker_limit.labels(name).set(pools.max_workers)
            cluster = getattr(rt, "cluster", None)
            if cluster is not None and cluster.node_id:
                self.nodes_live.set(sum(1 for n in await cluster.nodes() if n["live"]))
            quotas = getattr(rt, "quotas", None)
            if quotas is not None:  # per-tenant quota use and limits (aionix/iam/quotas.py)
                await quotas.refresh_metrics()
        except Exception:
            self.scrape_errors.inc()
            log.exception("reading the metrics' levels failed")

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LoopHistogram:
    """A histogram with one label (`type`) for observations made on one thread (the event
    loop): a list of bucket counts per label value, no lock and no metric child per call
    (prometheus_client's `Histogram.observe` takes a lock per bucket, sum and count). Exposed
    like a `Histogram` of the same name and buckets (without the `_created` series)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(b) for b in buckets)
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        #: label value -> counts per bucket (not cumulative; the last one is +Inf), then the sum
        self.values: dict[str, list[float]] = {}

    def observe(self, label: str, seconds: float) -> None:
        counts = self.values.get(label)
        if counts is None:
            counts = self.values[label] = [0] * (len(self.bounds) + 1) + [0.0]
        counts[bisect_left(self.bounds, seconds)] += 1  # the first bucket whose bound is ≥ seconds
        counts[-1] += seconds

    def describe(self) -> list[Any]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=["type"])]

    def collect(self) -> Any:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["type"])
        for label, counts in list(self.values.items()):
            counts = list(counts)  # (a copy: the loop may observe meanwhile)
            running, buckets = 0, []
            for le, n in zip(self._le, counts[:-1], strict=True):
                running += n
                buckets.append((le, float(running)))
            family.add_metric([label], buckets, counts[-1])
        yield family


#: rt.cluster.stats key -> (counter name without _total, help)
_CLUSTER_COUNTERS = (
    ("claimed", "aionix_cluster_claimed", "Executions this node claimed from nodes that lost their lease"),
    ("lease_lost", "aionix_cluster_lease_lost", "Writes this node refused because another node owns the work now"),
    ("fenced", "aionix_cluster_fenced", "Times this node went a whole lease without a heartbeat and stopped its work"),
    ("notified", "aionix_cluster_messages_sent", "Messages this node sent to the other nodes (NOTIFY)"),
    ("received", "aionix_cluster_messages_received", "Messages this node received from the other nodes"),
)


class _ClusterCollector:
    """This node's identity and the cluster's counters, read from `rt.cluster` at each scrape
    (they are counted where they happen, in aionix/cluster.py and its callers)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []  # collected at scrape only: the node id is known once the runtime started

    def collect(self) -> Any:
        cluster = getattr(self.metrics._rt, "cluster", None)
        if cluster is None:
            return
        if cluster.node_id:
            from aionix import __version__

            info = InfoMetricFamily("aionix_node", "This node: its id and version (1)")
            info.add_metric([], {"node": cluster.node_id, "version": __version__})
            yield info
        stats = cluster.stats
        for key, name, doc in _CLUSTER_COUNTERS:
            yield CounterMetricFamily(name, doc, value=float(stats.get(key, 0)))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
