"""The AI service: policy versions, the task runner, streaming events, metering and budgets.

A task is decided by the router (`router.decide`), the decision recorded and published
(`aionix.router` / `Route Decided`), then run in the background along the decision's chain of
candidates (tier escalation, and for `hybrid` the API route after a local failure, timeout or
low confidence). Events (`token`, `partial`, `done`, `error`) are numbered so that a stream
resumes with `Last-Event-ID`. The usage ledger gets one row per finished task; the cost charged
never exceeds the task's budget (itself at most the policy's hard cap): `max_tokens` is capped
before the call and the stream is cut once the counted output reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from aionix import jsonutil
from aionix import usage as ai_usage
from aionix.ai.models import AiConfig, RouterAnswer, SubmitTask
from aionix.ai.policy import PolicyError, PolicySet, parse, read_dir
from aionix.ai.providers import LOCAL_ONLY, PrivacyViolation, Provider, ProviderFailure, estimate_tokens
from aionix.ai.router import BudgetExceeded, Choice, Decision, decide
from aionix.bus import BusError, CallContext
from aionix.errors import AionixError, Conflict, NotFound, RateLimited, field_error
from aionix.iam.policy import PolicyDenied
from aionix.redact import SecretSet

log = logging.getLogger("aionix.ai")
EVENT_SOURCE = "aionix.router"
TERMINAL = {"OK", "ERROR", "TIMEOUT", "CANCELED"}
BUDGET_CACHE_SECONDS = 5.0
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


AI_QUOTA = "ai_usd_per_day"  # the tenant quota (aionix/iam/quotas.py)


class LedgerBudgetExceeded(RateLimited):
    """A tenant's or key's daily/monthly AI budget is spent: 429 with the reset time."""

    code = "budget_exceeded"


#: ids need to be unique, not secret (every read checks the tenant): a PRNG seeded from the OS
#: instead of a getrandom() system call per task
_ids = random.Random(os.urandom(32))


def _task_id() -> str:
    return f"{int(time.time() * 1000):013x}{_ids.getrandbits(48):012x}"


_DAYS: dict[int, tuple[str, str]] = {}


def _day(ts: float) -> tuple[str, str]:
    """The UTC day and month of `ts` (cached by day number: Unix days are 86,400 s long)."""
    number = int(ts // 86400)
    hit = _DAYS.get(number)
    if hit is None:
        d = datetime.fromtimestamp(number * 86400, UTC)
        if len(_DAYS) > 64:
            _DAYS.clear()
        hit = _DAYS[number] = (d.strftime("%Y-%m-%d"), d.strftime("%Y-%m"))
    return hit


class _Text:
    """One provider call's output so far: its token texts, and the last prefix joined (a
    stream that sends the partials in order joins each token once)."""

    __slots__ = ("_n", "_text", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._n = 0
        self._text = ""

    def upto(self, n: int) -> str:
        if n < self._n:
            return "".join(self.parts[:n])
        if n > self._n:
            self._text += "".join(self.parts[self._n : n])
            self._n = n
        return self._text


class _Partial:
    """A stored `partial` event: the output's first `n` tokens, the text made when sent (the
    events hold each token once, not every prefix: no quadratic growth)."""

    __slots__ = ("n", "out")

    def __init__(self, out: _Text, n: int) -> None:
        self.out = out
        self.n = n


class TaskRun:
    def __init__(self, task_id: str, tenant: str, key_id: str | None, intent: str) -> None:
        self.id = task_id
        self.tenant = tenant
        self.key_id = key_id
        self.intent = intent
        self.status = "RUNNING"
        self.engine: dict[str, Any] | None = None
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self.usage = {"latency_ms": 0.0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
        self.events: list[tuple[int, str, Any]] = []  # as stored: read them with `event()`
        self.started = time.perf_counter()
        self.created_at = time.time()
        self.finished_at: float | None = None
        self.task: asyncio.Task[Any] | None = None
        self.done = asyncio.Event()
        self._wake = asyncio.Event()
        self.trace_id: str | None = None
        self.execution_id: str | None = None
        self.held: tuple[list[str], float] | None = None
        self.quota: tuple[int, float] | None = None  # the ai_usd_per_day reservation (period, USD)

    def emit(self, event: str, data: Any) -> None:
        self.events.append((len(self.events) + 1, event, data))
        self._wake.set()
        self._wake = asyncio.Event()

    def event(self, index: int) -> tuple[int, str, Any]:
        """The event at `index` (0-based; its seq is index + 1) as sent: `(seq, kind, data)`."""
        seq, kind, data = self.events[index]
        if type(data) is str:  # a token: its text
            data = {"text": data}
        elif type(data) is _Partial:
            data = {"text": data.out.upto(data.n)}
        return seq, kind, data

    async def wait_event(self, after: int, timeout: float) -> None:
        if len(self.events) > after or self.done.is_set():
            return
        wake = self._wake
        try:
            async with asyncio.timeout(timeout):  # not wait_for: no task per wait
                await wake.wait()
        except TimeoutError:
            pass

    def envelope(self) -> dict[str, Any]:
        return {
            "schema_version": "1.0",
            "task_id": self.id,
            "trn": f"trn:ai:{self.tenant}:task/{self.id}",
            "intent": self.intent,
            "status": self.status,
            "engine": self.engine,
            "result": self.result,
            "usage": dict(self.usage),
            "error": self.error,
            "trace_id": self.trace_id,
        }


class _Write:
    """A task's queued row write: its decisions, its usage (once finished), who waits."""

    __slots__ = ("decisions", "done", "run", "usage")

    def __init__(self, run: TaskRun) -> None:
        self.run = run
        self.decisions: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


_DECIDED = ("task_id", "intent", "policy_version", "route", "provider", "model", "tier", "chosen_by", "reason")


def _decided(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _DECIDED}


def _write_rows(tx: Any, rows: list[tuple[_Write, dict[str, Any]]]) -> None:
    for w, task_row in rows:
        if w.usage is not None:
            tx.execute("ai.insert_usage", w.usage)
        tx.execute("ai.upsert_task", task_row)
        for d in w.decisions:
            tx.execute("ai.insert_decision", d)


class AiService:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.store = rt.store
        self.config: AiConfig = rt.config.service_section("ai", AiConfig)
        self.policy: PolicySet | None = None
        self.providers: dict[str, Provider] = {}
        self._retired: list[Provider] = []
        self.runs: OrderedDict[str, TaskRun] = OrderedDict()
        self.inflight: dict[str, float] = {}
        self._budget_rows: dict[str, tuple[Any, float]] = {}
        self._writes: dict[str, _Write] = {}  # queued row writes, by task id
        self._flusher: asyncio.Task[None] | None = None
        reg = rt.metrics.registry
        self.m_tokens = Counter("aionix_ai_tokens_total", "AI tokens", ["provider", "model", "direction"], registry=reg)
        self.m_cost = Counter("aionix_ai_cost_usd_total", "AI cost charged (USD)", ["provider", "model"], registry=reg)
        self.m_tasks = Counter("aionix_ai_tasks_total", "AI tasks finished", ["intent", "status"], registry=reg)
        self.m_decide = Histogram(
            "aionix_ai_router_decision_seconds",
            "Router decision time",
            registry=reg,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
        )
        self.m_breaker = Gauge(
            "aionix_ai_breaker_state",
            "Circuit breaker per provider (0 closed, 1 half-open, 2 open)",
            ["provider"],
            registry=reg,
        )
        self.m_queue = Gauge(
            "aionix_ai_provider_pending", "Tasks running or queued per provider", ["provider"], registry=reg
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def policy_dir(self) -> Path:
        if self.config.policy_dir:
            return Path(self.config.policy_dir).expanduser()
        return self.rt.config.data_dir / "ai"

    async def start(self) -> None:
        await self.store.execute("ai.fail_running_tasks", {"now": time.time()})
        ai_usage.load(await self.store.fetch_all("ai.recent_execution_usage", {"since": time.time() - 30 * 86400}))
        row = await self.store.fetch_one("ai.active_policy")
        if row is not None:
            try:
                ps = parse(jsonutil.loads(row["texts"]))
                ps.version = row["version"]
                self._install(ps)
            except PolicyError as exc:
                log.error("stored AI policy version %s does not load: %s", row["version"], exc.message)
        elif self.policy_dir.is_dir():
            try:
                await self.reload(None)
            except PolicyError as exc:
                log.error("AI policy files in %s refused: %s", self.policy_dir, exc.message)
        # the observed latencies survive a restart: the most recent ones come from the ledger
        for r in reversed(await self.store.fetch_all("ai.recent_latencies", {"limit": 5000})):
            prov = self.providers.get(r["provider"])
            if prov is not None:
                prov.observe(r["model"], r["latency_ms"])

    async def stop(self) -> None:
        tasks = [r.task for r in self.runs.values() if r.task is not None and not r.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._flusher is not None:  # the rows of the tasks just ended, before the store closes
            await asyncio.gather(self._flusher, return_exceptions=True)
        for p in list(self.providers.values()) + self._retired:
            await p.close()

    def _install(self, ps: PolicySet) -> None:
        new: dict[str, Provider] = {}
        for name, spec in ps.models.providers.items():
            old = self.providers.get(name)
            if old is not None and old.spec == spec:
                new[name] = old
            else:
                new[name] = Provider(name, spec, self.rt)
                if old is not None:
                    self._retired.append(old)
                prov = new[name]
                self.m_breaker.labels(name).set_function(
                    lambda p=prov: {"closed": 0, "half_open": 1, "open": 2}[p.breaker.state]
                )
                self.m_queue.labels(name).set_function(lambda p=prov: p.pending)
        for name, old in self.providers.items():
            if name not in new:
                self._retired.append(old)
        self.providers = new
        self.policy = ps

    # ------------------------------------------------------------------ policy versions
    async def reload(self, by: str | None) -> dict[str, Any]:
        ps = parse(read_dir(self.policy_dir))  # PolicyError: the running version stays
        if self.policy is not None and self.policy.digest == ps.digest:
            return {"version": self.policy.version, "digest": ps.digest, "changed": False}

        def write(tx: Any) -> int:
            version = tx.fetch_one("ai.max_policy_version")["v"] + 1
            tx.execute("ai.deactivate_policies")
            tx.execute(
                "ai.insert_policy_version",
                {
                    "version": version,
                    "digest": ps.digest,
                    "texts": jsonutil.dumps(ps.texts).decode(),
                    "now": time.time(),
                    "by": by,
                },
            )
            return version

        ps.version = await self.store.transaction(write)
        self._install(ps)
        return {"version": ps.version, "digest": ps.digest, "changed": True}

    async def versions(self, limit: int, cursor: int | None) -> dict[str, Any]:
        rows = await self.store.fetch_all("ai.list_policy_versions", {"limit": limit + 1, "cursor": cursor})
        items = [{**r, "active": bool(r["active"])} for r in rows[:limit]]
        return {"items": items, "next_cursor": str(items[-1]["version"]) if len(rows) > limit else None}

    async def rollback(self, version: int) -> dict[str, Any]:
        row = await self.store.fetch_one("ai.get_policy_version", {"version": version})
        if row is None:
            raise NotFound(f"policy version {version} not found")
        ps = parse(jsonutil.loads(row["texts"]))
        ps.version = version

        def write(tx: Any) -> None:
            tx.execute("ai.deactivate_policies")
            tx.execute("ai.activate_policy", {"version": version})

        await self.store.transaction(write)
        self._install(ps)
        return {"version": version, "digest": ps.digest, "changed": True}

    def active(self) -> PolicySet:
        if self.policy is None:
            # a state of this server's configuration, not a failure of it: 409 (a retry cannot help
            # until an admin loads a policy)
            raise Conflict(
                f"no AI policy is loaded: put intents.yml, policies.yml and models.yml in {self.policy_dir} "
                "and POST /api/v1/router/policy/reload"
            )
        return self.policy

    # ------------------------------------------------------------------ budgets
    async def tenant_budget(self, tenant: str, *, cached: bool = False) -> dict[str, Any]:
        """The tenant's limits; `cached`: as read at most BUDGET_CACHE_SECONDS ago (the task path:
        a change by PUT /api/v1/usage/budget applies here at once, on other nodes within that)."""
        b = self.config.budgets
        now = time.monotonic()
        hit = self._budget_rows.get(tenant) if cached else None
        if hit is not None and hit[1] > now:
            row = hit[0]
        else:
            row = await self.store.fetch_one("ai.get_budget", {"tenant": tenant})
            if len(self._budget_rows) > 10_000:
                self._budget_rows.clear()
            self._budget_rows[tenant] = (row, now + BUDGET_CACHE_SECONDS)
        daily = row["daily_usd"] if row and row["daily_usd"] is not None else b.tenant_daily_usd
        monthly = row["monthly_usd"] if row and row["monthly_usd"] is not None else b.tenant_monthly_usd
        return {"tenant": tenant, "daily_usd": daily, "monthly_usd": monthly}

    async def put_budget(self, tenant: str, daily: float | None, monthly: float | None) -> dict[str, Any]:
        await self.store.execute(
            "ai.put_budget", {"tenant": tenant, "daily_usd": daily, "monthly_usd": monthly, "now": time.time()}
        )
        self._budget_rows.pop(tenant, None)
        return await self.tenant_budget(tenant)

    def _scopes(self, tenant: str, key_id: str | None) -> list[str]:
        return [f"tenant:{tenant}"] + ([f"key:{key_id}"] if key_id is not None else [])

    def _hold(self, scopes: list[str], amount: float) -> None:
        """Count the estimate of a task that runs against its scopes' budgets until it is charged
        (concurrent submits cannot all pass the same remaining budget)."""
        for scope in scopes:
            left = self.inflight.get(scope, 0.0) + amount
            if left > 1e-12:
                self.inflight[scope] = left
            else:
                self.inflight.pop(scope, None)

    async def check_budgets(self, tenant: str, key_id: str | None, estimate: float) -> None:
        """Raise LedgerBudgetExceeded when spent + the estimates of running tasks (this one's
        included, already held) would pass a daily/monthly limit."""
        limits = await self.tenant_budget(tenant, cached=True)
        b = self.config.budgets
        checks = [("tenant", "ai.spent_tenant", {"tenant": tenant}, limits["daily_usd"], limits["monthly_usd"])]
        if key_id is not None:
            checks.append(("key", "ai.spent_key", {"key_id": key_id}, b.key_daily_usd, b.key_monthly_usd))
        if not any(c[3] or c[4] for c in checks):
            return  # no limit applies: nothing to read
        now = time.time()
        day, month = _day(now)
        d = datetime.fromtimestamp(now, UTC)
        next_day = (d + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        next_month = (d.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for who, query, args, daily, monthly in checks:
            if not daily and not monthly:
                continue
            spent = await self.store.fetch_one(query, {**args, "day": day, "month": month})
            assert spent is not None
            held = self.inflight.get(f"{who}:{args.get('tenant') or args.get('key_id')}", 0.0)
            for period, limit, used, reset in (
                ("daily", daily, spent["day_usd"], next_day),
                ("monthly", monthly, spent["month_usd"], next_month),
            ):
                if limit and used + held > limit + 1e-12:
                    raise LedgerBudgetExceeded(
                        f"the {who}'s {period} AI budget of {limit:g} USD is spent ({used:.6f} USD used); "
                        f"it resets at {reset.isoformat()}",
                        retry_after=max(1.0, reset.timestamp() - now),
                        details={
                            "scope": who,
                            "period": period,
                            "limit_usd": limit,
                            "spent_usd": round(used, 8),
                            "resets_at": reset.isoformat(),
                        },
                    )

    # ------------------------------------------------------------------ tasks
    def _prompt(self, intent_name: str, spec: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        if spec.input_schema is not None:
            import jsonschema  # imported on use: ~2.5 MB less idle memory

            try:
                jsonschema.validate(params, spec.input_schema)
            except jsonschema.ValidationError as exc:
                where = ".".join(str(p) for p in exc.absolute_path)
                raise field_error("params" + (f".{where}" if where else ""), exc.message) from None
            except jsonschema.SchemaError:
                raise field_error(
                    "intent", f"intent {intent_name}: its input_schema is not a valid JSON Schema"
                ) from None

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in params:
                raise field_error(f"params.{key}", f"required by the prompt of intent {intent_name}")
            v = params[key]
            return v if isinstance(v, str) else jsonutil.dumps(v).decode()

        messages: list[dict[str, Any]] = []
        if spec.system:
            messages.append({"role": "system", "content": spec.system})
        messages.append({"role": "user", "content": _FIELD.sub(fill, spec.prompt)})
        return messages

    async def submit(
        self,
        tenant: str,
        key_id: str | None,
        body: SubmitTask,
        *,
        trace_id: str | None = None,
        execution_id: str | None = None,
        secrets: SecretSet | None = None,
        execution_budget: float | None = None,
        principal: Any = None,
        via: str = "api",
        route: str | None = None,
    ) -> TaskRun:
        """`principal`: the caller (API, WebSocket, gRPC) or whoever a bus call is made on behalf
        of; when its policies have a `provider` condition, each candidate provider is checked
        (`ai:SubmitTask` with the provider, the task's intent, `route` and `via` in the context)."""
        ps = self.active()
        spec = ps.intents.intents.get(body.intent)
        if spec is None:
            raise field_error(
                "intent", f"unknown intent {body.intent!r} (one of {', '.join(sorted(ps.intents.intents)) or 'none'})"
            )
        messages = self._prompt(body.intent, spec, body.params)
        prompt = "\n".join(m["content"] for m in messages)
        hint, hint_problem = (
            await self._ask_router(ps, spec, body.intent, prompt, tenant) if spec.router_model else (None, None)
        )
        started = time.perf_counter()
        budget = body.budget_usd
        if execution_budget is not None:
            budget = execution_budget if budget is None else min(budget, execution_budget)
        permit = await self._permit(principal, tenant, body.intent, via, route) if principal is not None else None
        decision = decide(
            ps,
            self.providers,
            body.intent,
            spec,
            prompt,
            privacy=body.privacy,
            budget_usd=budget,
            latency_ms=body.latency_ms,
            max_tokens=body.max_tokens,
            hint=hint,
            hint_problem=hint_problem,
            permit=permit,
        )
        self.m_decide.observe(time.perf_counter() - started)
        scopes = self._scopes(tenant, key_id)
        hold = decision.first.estimate_usd
        self._hold(scopes, hold)
        quota: tuple[int, float] | None = None
        try:
            # the tenant's ai_usd_per_day quota: the estimate reserved, settled at the end
            quota = await self.rt.quotas.reserve(tenant, AI_QUOTA, hold)
            await self.check_budgets(tenant, key_id, hold)
            provider = self.providers[decision.first.provider]
            provider.reserve()
        except BaseException:
            self._hold(scopes, -hold)
            if quota is not None:
                self.rt.quotas.settle(tenant, AI_QUOTA, quota[0], -quota[1])
            raise
        run = TaskRun(_task_id(), tenant, key_id, body.intent)
        run.held = (scopes, hold)
        run.quota = quota
        run.trace_id = trace_id
        run.execution_id = execution_id
        run.engine = decision.engine()
        self.runs[run.id] = run
        self._evict()
        # the RUNNING row and the decision are written while the provider is called (the task
        # is served from memory meanwhile), grouped with other tasks' writes; rows keep order
        self._write(run, decision_row=self._decision_row(run, decision, ps.version))
        run.task = asyncio.get_running_loop().create_task(
            self._run(run, decision, spec, messages, secrets or SecretSet()), name=f"ai-task-{run.id}"
        )
        return run

    async def _permit(
        self, principal: Any, tenant: str, intent: str, via: str, route: str | None
    ) -> Callable[[str, str], Any] | None:
        """The per-provider policy check for the router (None when no statement of the principal
        reads `provider`: the call's own check already decided, nothing varies per candidate)."""
        policies = getattr(self.rt, "policies", None)
        if policies is None:
            return None
        pset = await policies.policy_set(principal)
        if "provider" not in pset.needs:
            return None
        from aionix.iam.policy import Request

        # the resource the call itself was checked on: the service (API) or the intent (bus)
        resource = f"trn:ai:{tenant}:intent/{intent}" if via == "bus" else f"trn:ai:{tenant}:service"
        now = time.time()
        seen: dict[str, Any] = {}

        def permit(provider: str, ai_route: str) -> Any:
            if provider not in seen:
                req = Request(
                    action="ai:SubmitTask",
                    resource=resource,
                    tenant=tenant,
                    now=now,
                    intent=intent,
                    route=route,
                    provider=provider,
                    via=via,
                )
                d = pset.decide(req)
                seen[provider] = None if d.allowed else d
            return seen[provider]

        return permit

    async def _ask_router(
        self, ps: PolicySet, spec: Any, intent: str, prompt: str, tenant: str
    ) -> tuple[RouterAnswer | None, str | None]:
        """Ask the intent's router model (a local model, checked when the policy loads) where the
        task should run. Any failure, a late or an invalid answer gives (None, why)."""
        model = ps.models.models[spec.router_model]
        provider = self.providers.get(model.provider)
        if provider is None or not provider.breaker.allow():
            return None, f"{spec.router_model} is unavailable"
        question = [
            {
                "role": "system",
                "content": 'Decide where this task should run. Answer only JSON: {"decision": "local"|"api"|"hybrid", '
                '"reason": "...", "tier": "tier0"|"tier1"|"tier2"}',
            },
            {"role": "user", "content": f"intent: {intent}\n{prompt}"},
        ]
        token = LOCAL_ONLY.set(True)  # the router model reads the prompt: local providers only
        parts: list[str] = []
        try:
            async with asyncio.timeout(spec.router_timeout_ms / 1000):
                ctx = CallContext(tenant=tenant, caller=f"trn:ai:{tenant}:intent/{intent}")
                async for item in provider.stream(model.model or spec.router_model, question, 100, None, ctx):
                    if item[0] == "token":
                        parts.append(item[1])
        except TimeoutError:
            return None, f"{spec.router_model} did not answer within {spec.router_timeout_ms} ms"
        except (ProviderFailure, PrivacyViolation) as exc:
            return None, str(exc)
        finally:
            LOCAL_ONLY.reset(token)
        text = "".join(parts).strip()
        try:
            return RouterAnswer.model_validate(jsonutil.loads(text[text.find("{") : text.rfind("}") + 1])), None
        except Exception:
            return None, f"{spec.router_model} answered {text[:80]!r}, not {{decision, reason, tier}}"

    def _evict(self) -> None:
        now = time.time()
        while self.runs:
            first = next(iter(self.runs.values()))
            old = first.finished_at is not None and now - first.finished_at > self.config.task_retention_seconds
            if (len(self.runs) > self.config.max_tasks_in_memory and first.finished_at is not None) or old:
                self.runs.popitem(last=False)
            else:
                break

    @staticmethod
    def _task_row(run: TaskRun) -> dict[str, Any]:
        return {
            "id": run.id,
            "tenant": run.tenant,
            "key_id": run.key_id,
            "intent": run.intent,
            "status": run.status,
            "envelope": jsonutil.dumps(run.envelope()).decode(),
            "now": time.time(),
        }

    @staticmethod
    def _decision_row(run: TaskRun, decision: Decision, version: int, choice: Choice | None = None) -> dict[str, Any]:
        engine = decision.engine(choice)
        return {
            "tenant": run.tenant,
            "task_id": run.id,
            "intent": run.intent,
            "policy_version": version,
            "now": time.time(),
            **engine,
        }

    def _write(
        self, run: TaskRun, decision_row: dict[str, Any] | None = None, usage_row: dict[str, Any] | None = None
    ) -> asyncio.Future[None]:
        """Queue the task's row (as it is when written), with a decision or its usage: the queued
        writes of all tasks go in one transaction, and a task that finishes before its RUNNING row
        was taken is written once (decision, usage and final row together). The future settles
        once committed."""
        w = self._writes.get(run.id)
        if w is None:
            w = self._writes[run.id] = _Write(run)
        if decision_row is not None:
            w.decisions.append(decision_row)
        if usage_row is not None:
            w.usage = usage_row
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="ai-task-writer")
        return w.done

    async def _flush(self) -> None:
        """Write what is queued, one transaction at a time, until nothing is (rows keep order)."""
        try:
            while self._writes:
                batch = list(self._writes.values())
                self._writes = {}
                rows = [(w, self._task_row(w.run)) for w in batch]
                try:
                    await self.store.transaction(lambda tx, rows=rows: _write_rows(tx, rows))
                    outcomes: list[BaseException | None] = [None] * len(rows)
                except AionixError:  # one by one: a write that fails fails alone
                    outcomes = []
                    for one in rows:
                        try:
                            await self.store.transaction(lambda tx, one=one: _write_rows(tx, [one]))
                            outcomes.append(None)
                        except AionixError as exc:
                            outcomes.append(exc)
                for (w, _), exc in zip(rows, outcomes, strict=True):
                    if exc is not None:
                        w.done.set_exception(exc)
                        w.done.exception()  # retrieved: a RUNNING row's write has nobody waiting
                        log.warning("AI task %s: writing its row failed: %s", w.run.id, getattr(exc, "message", exc))
                        continue
                    w.done.set_result(None)
                    for d in w.decisions:
                        await self.rt.publish_event(w.run.tenant, EVENT_SOURCE, "Route Decided", _decided(d))
        finally:
            self._flusher = None

    async def _key(self, provider: Provider, run: TaskRun, secrets: SecretSet) -> str | None:
        ref = provider.spec.api_key_ref
        if not ref:
            return None
        caller = f"trn:ai:{run.tenant}:intent/{run.intent}"
        target = ref if ref.startswith("trn:") else f"trn:credvault:{run.tenant}:credential/{ref}"
        try:
            value = await self.rt.bus.invoke(
                target,
                {"op": "resolve", "reader": caller},
                CallContext(tenant=run.tenant, caller=caller, secrets=secrets),
            )
        except AionixError as exc:
            raise ProviderFailure(f"provider {provider.name}: key {ref!r} cannot be read: {exc.message}") from None
        if not isinstance(value, str):
            raise ProviderFailure(f"provider {provider.name}: key {ref!r} is not a string secret")
        secrets.add(value)
        return value

    async def _run(
        self, run: TaskRun, decision: Decision, spec: Any, messages: list[dict[str, Any]], secrets: SecretSet
    ) -> None:
        LOCAL_ONLY.set(decision.privacy == "local-only")
        reserved = self.providers.get(decision.first.provider)
        failures: list[str] = []
        timed_out = False
        try:
            for index, choice in enumerate(decision.chain):
                provider = self.providers.get(choice.provider)
                if provider is None:
                    failures.append(f"{choice.provider}: no longer configured")
                    continue
                if index > 0:
                    run.engine = decision.engine(choice)
                    run.engine["reason"] = f"escalated after: {failures[-1]}"
                    version = self.policy.version if self.policy else 0
                    self._write(run, decision_row=self._decision_row(run, decision, version, choice))
                    run.emit("partial", {"text": "", "reset": True, "reason": run.engine["reason"]})
                limit = None
                if decision.route == "hybrid" and choice.location == "local":
                    limit = spec.hybrid.local_timeout_ms / 1000
                try:
                    text, tin, tout, confidence, cut = await self._call(run, provider, choice, messages, secrets, limit)
                except (ProviderFailure, PrivacyViolation) as exc:
                    timed_out = getattr(exc, "timeout", False)
                    failures.append(secrets.text(str(exc)) if secrets else str(exc))
                    continue
                rest = decision.chain[index + 1 :]
                if (
                    decision.route == "hybrid"
                    and choice.location == "local"
                    and spec.hybrid.min_confidence is not None
                    and confidence is not None
                    and confidence < spec.hybrid.min_confidence
                    and any(c.location == "api" for c in rest)
                ):
                    failures.append(
                        f"{choice.provider}: confidence {confidence:g} below {spec.hybrid.min_confidence:g}"
                    )
                    continue
                cost = choice.cost(tin, tout)
                capped = cost > decision.budget_usd
                if capped:
                    cost = decision.budget_usd
                run.result = {"text": text, **({"confidence": confidence} if confidence is not None else {})}
                if cut:
                    run.result["truncated"] = True
                run.usage.update(tokens_in=tin, tokens_out=tout, cost_usd=round(cost, 8))
                if capped:
                    run.usage["capped"] = True
                await self._finish(run, "OK", choice)
                return
            run.error = {
                "code": "Ai.Timeout" if timed_out else "Ai.ProviderFailed",
                "message": "; ".join(failures) or "no candidate ran",
            }
            await self._finish(run, "TIMEOUT" if timed_out else "ERROR", None)
        except asyncio.CancelledError:
            if run.status == "RUNNING":
                run.error = {"code": "Ai.Canceled", "message": "the task was canceled"}
                await asyncio.shield(self._finish(run, "CANCELED", None))
            raise
        except Exception as exc:
            log.exception("AI task %s failed", run.id)
            run.error = {"code": "Ai.Internal", "message": type(exc).__name__}
            await self._finish(run, "ERROR", None)
        finally:
            if reserved is not None:
                reserved.release()

    async def _call(
        self,
        run: TaskRun,
        provider: Provider,
        choice: Choice,
        messages: list[dict[str, Any]],
        secrets: SecretSet,
        limit: float | None,
    ) -> tuple[str, int, int, float | None, bool]:
        key = await self._key(provider, run, secrets)
        out = _Text()
        parts = out.parts
        tin = tout = 0
        confidence = None
        cut = False
        began = time.perf_counter()
        ctx = CallContext(
            tenant=run.tenant,
            trace_id=run.trace_id or f"{_ids.getrandbits(128):032x}",
            caller=f"trn:ai:{run.tenant}:intent/{run.intent}",
            secrets=secrets,
        )
        counted = 0
        try:
            async with asyncio.timeout(limit):
                gen = provider.stream(choice.upstream, messages, choice.max_tokens, key, ctx)
                try:
                    async for item in gen:
                        if item[0] == "token":
                            parts.append(item[1])
                            run.emit("token", item[1])
                            counted += estimate_tokens(item[1]) if len(item[1]) > 4 else 1
                            if len(parts) % 16 == 0:
                                run.emit("partial", _Partial(out, len(parts)))
                            if counted > choice.max_tokens:
                                cut = True
                                break
                        elif item[0] == "confidence":
                            confidence = item[1]
                        elif item[0] == "usage":
                            tin, tout = item[1], item[2]
                finally:
                    await gen.aclose()
        except TimeoutError:
            provider.breaker.failure()
            raise ProviderFailure(
                f"provider {provider.name}: no complete answer within {limit:g} s (hybrid local limit)", timeout=True
            ) from None
        if cut:
            tin = tin or estimate_tokens("".join(m["content"] for m in messages))
            tout = choice.max_tokens
        tout = min(tout, choice.max_tokens) if cut else tout
        provider.observe(choice.model, (time.perf_counter() - began) * 1000)
        return "".join(parts), tin, tout, confidence, cut

    async def _finish(self, run: TaskRun, status: str, choice: Choice | None) -> None:
        run.status = status
        run.usage["latency_ms"] = round((time.perf_counter() - run.started) * 1000, 3)
        run.finished_at = time.time()
        day, month = _day(run.finished_at)
        usage_row = None
        if choice is not None:
            self.m_tokens.labels(choice.provider, choice.model, "in").inc(run.usage["tokens_in"])
            self.m_tokens.labels(choice.provider, choice.model, "out").inc(run.usage["tokens_out"])
            self.m_cost.labels(choice.provider, choice.model).inc(run.usage["cost_usd"])
            usage_row = {
                "task_id": run.id,
                "tenant": run.tenant,
                "key_id": run.key_id,
                "intent": run.intent,
                "provider": choice.provider,
                "model": choice.model,
                "tokens_in": run.usage["tokens_in"],
                "tokens_out": run.usage["tokens_out"],
                "cost_usd": run.usage["cost_usd"],
                "latency_ms": run.usage["latency_ms"],
                "day": day,
                "month": month,
                "execution_id": run.execution_id,
                "ts": run.finished_at,
            }
            if run.execution_id:
                ai_usage.add(run.execution_id, run.usage["tokens_in"] + run.usage["tokens_out"], run.usage["cost_usd"])
        self.m_tasks.labels(run.intent, status).inc()
        try:
            await asyncio.shield(self._write(run, usage_row=usage_row))
        except AionixError:
            pass  # logged by the writer; the task's answer stands (served from memory)
        if run.held is not None:
            self._hold(run.held[0], -run.held[1])
            run.held = None
        if run.quota is not None:
            spent = run.usage["cost_usd"] if choice is not None else 0.0
            self.rt.quotas.settle(run.tenant, AI_QUOTA, run.quota[0], spent - run.quota[1])
            run.quota = None
        envelope = run.envelope()
        run.emit("done" if status == "OK" else "error", envelope)
        run.done.set()

    async def get(self, tenant: str, task_id: str) -> dict[str, Any]:
        run = self.runs.get(task_id)
        if run is not None and run.tenant == tenant:
            return run.envelope()
        row = await self.store.fetch_one("ai.get_task", {"id": task_id, "tenant": tenant})
        if row is None:
            raise NotFound(f"task {task_id!r} not found")
        return jsonutil.loads(row["envelope"])

    async def list(self, tenant: str, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "ai.list_tasks", {"tenant": tenant, "status": status, "limit": limit + 1, "cursor": cursor}
        )
        items = []
        for r in rows[:limit]:
            run = self.runs.get(r["id"])
            items.append(run.envelope() if run is not None else jsonutil.loads(r["envelope"]))
        return {"items": items, "next_cursor": rows[limit - 1]["id"] if len(rows) > limit else None}

    async def cancel(self, tenant: str, task_id: str) -> dict[str, Any]:
        run = self.runs.get(task_id)
        if run is None or run.tenant != tenant:
            return await self.get(tenant, task_id)  # 404, or a finished task as it is
        if run.task is not None and not run.task.done():
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
        return run.envelope()

    async def wait(self, run: TaskRun, timeout: float) -> None:
        if run.done.is_set():
            return
        try:  # a timeout or a cancel here leaves the run alone (only this wait ends)
            async with asyncio.timeout(timeout):
                await run.done.wait()
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ usage
    async def usage(self, tenant: str, group_by: str, since: str | None) -> dict[str, Any]:
        since = since or _day(time.time() - 30 * 86400)[0]
        rows = await self.store.fetch_all(f"ai.usage_by_{group_by}", {"tenant": tenant, "since": since})
        items = [
            {
                group_by: r["grp"],
                "tasks": r["tasks"],
                "tokens_in": r["tokens_in"] or 0,
                "tokens_out": r["tokens_out"] or 0,
                "cost_usd": round(r["cost_usd"] or 0.0, 8),
                "avg_latency_ms": round(r["avg_latency_ms"] or 0.0, 3),
            }
            for r in rows
        ]
        return {"group_by": group_by, "since": since, "items": items, "budget": await self.tenant_budget(tenant)}

    async def execution_usage(self, execution_id: str) -> dict[str, Any]:
        row = await self.store.fetch_one("ai.spent_execution", {"execution_id": execution_id})
        return {"tokens": int(row["tokens"]) if row else 0, "cost_usd": round(row["cost_usd"], 8) if row else 0.0}

    # ------------------------------------------------------------------ bus executors
    async def execute_kind(self, target: Any, payload: Any, ctx: CallContext) -> Any:
        """`{"action": "ai", "parameters": {"intent", "params", "privacy"?, "budget_usd"?,
        "max_tokens"?, "execution_budget_usd"?}}` from a workflow."""
        if not isinstance(payload, dict):
            raise BusError("Ai.BadRequest", 'parameters must be {"intent": NAME, "params": {...}}')
        return await self._execute(payload, ctx)

    async def execute_trn(self, target: Any, payload: Any, ctx: CallContext) -> Any:
        """`trn:ai:{tenant}:intent/NAME`: the payload is the intent's params (or
        `{"params": …, "budget_usd"?: …}`)."""
        if target.type != "intent":
            raise BusError("Ai.BadRequest", "only intents can be invoked")
        body = (
            payload
            if isinstance(payload, dict) and "params" in payload
            else {"params": payload if isinstance(payload, dict) else {"input": payload}}
        )
        return await self._execute({**body, "intent": target.path}, ctx)

    async def _execute(self, payload: dict[str, Any], ctx: CallContext) -> Any:
        execution_budget = payload.pop("execution_budget_usd", None)
        if execution_budget is None and isinstance(ctx.extra, dict):
            execution_budget = ctx.extra.get("budget_usd")  # the workflow's own budget_usd
        try:
            body = SubmitTask.model_validate({k: v for k, v in payload.items() if k != "stream"})
        except Exception as exc:
            raise BusError("Ai.BadRequest", f"bad AI step parameters: {exc}") from None
        execution_id = ctx.extra.get("execution_id") if isinstance(ctx.extra, dict) else None
        budget = None
        if execution_budget is not None:
            if not isinstance(execution_budget, (int, float)) or execution_budget < 0:
                raise BusError("Ai.BadRequest", "execution_budget_usd must be a number >= 0")
            spent = (await self.execution_usage(execution_id))["cost_usd"] if execution_id else 0.0
            budget = float(execution_budget) - spent
            if budget <= 0:
                raise BusError(
                    "Ai.BudgetExceeded",
                    f"the execution's AI budget of {execution_budget:g} USD is spent ({spent:g} USD)",
                )
        try:
            run = await self.submit(
                ctx.tenant,
                None,
                body,
                trace_id=ctx.trace_id,
                execution_id=execution_id,
                secrets=ctx.secrets,
                execution_budget=budget,
                principal=ctx.on_behalf_of,
                via="bus",
            )
        except PolicyDenied as exc:  # no provider the starter's policies allow: as a bus denial
            await self.rt.policies.audit_denial(None, ctx.on_behalf_of, exc, trace_id=ctx.trace_id)
            raise
        except BudgetExceeded as exc:
            raise BusError("Ai.BudgetExceeded", exc.message) from None
        except LedgerBudgetExceeded as exc:
            raise BusError("Ai.BudgetExceeded", exc.message) from None
        except AionixError as exc:
            raise BusError("Ai.Refused", exc.message) from None
        try:
            await run.done.wait()
        except asyncio.CancelledError:
            if run.task is not None:
                run.task.cancel()
            raise
        env = run.envelope()
        if env["status"] != "OK":
            err = env["error"] or {}
            raise BusError(err.get("code", "Ai.Failed"), err.get("message", env["status"]), details={"task_id": run.id})
        return {"task_id": run.id, "result": env["result"], "engine": env["engine"], "usage": env["usage"]}
