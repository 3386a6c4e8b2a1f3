"""The AI service's shapes: the four policy files (`intents.yml`, `policies.yml`, `models.yml`,
`modules.yml`), the `[ai]` config section and the Tasks API bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
Privacy = Literal["local-only", "hybrid", "allow-api"]
Route = Literal["local", "api", "hybrid"]
Tier = Literal["tier0", "tier1", "tier2"]
#: strictness of a privacy level: a task may only move to a stricter one
PRIVACY_RANK = {"allow-api": 0, "hybrid": 1, "local-only": 2}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- intents.yml
class HybridRule(Strict):
    """When a hybrid intent leaves the local route for the API one: the local route failed, took
    longer than `local_timeout_ms`, or answered with a `confidence` below `min_confidence`."""

    local_timeout_ms: int = Field(2000, ge=1, le=600_000)
    min_confidence: float | None = Field(None, ge=0, le=1)


class IntentSpec(Strict):
    description: str = ""
    default_route: Route = "local"
    candidates: list[str] = Field(..., min_length=1, description="model names from models.yml, in preference order")
    privacy: Privacy = "local-only"
    tiers_allowed: list[Tier] = ["tier0", "tier1", "tier2"]
    input_schema: dict[str, Any] | None = None
    prompt: str = Field("{input}", description="template; {name} is replaced by params.name")
    system: str | None = None
    max_tokens: int = Field(256, ge=1, le=1_000_000)
    hybrid: HybridRule = HybridRule()
    router_model: str | None = Field(
        None,
        description="a local model asked for {decision, reason, tier}; an invalid or out-of-policy answer is ignored",
    )
    router_timeout_ms: int = Field(1000, ge=1, le=60_000)

    @model_validator(mode="after")
    def _coherent(self) -> IntentSpec:
        if self.privacy == "local-only" and self.default_route != "local":
            raise ValueError("a local-only intent has default_route local")
        return self


class IntentsFile(Strict):
    intents: dict[str, IntentSpec] = {}


class RouterAnswer(Strict):
    """What an intent's router model must answer (as JSON)."""

    model_config = ConfigDict(extra="ignore")

    decision: Route
    reason: str = Field("", max_length=500)
    tier: Tier | None = None


# ---------------------------------------------------------------------- policies.yml
class BudgetPolicy(Strict):
    default_usd: float = Field(0.02, ge=0)
    hard_cap_usd: float = Field(0.20, ge=0)


class LatencyPolicy(Strict):
    local: int = Field(600, ge=1)
    api: int = Field(2000, ge=1)
    hybrid: int = Field(2300, ge=1)


class ProviderLists(Strict):
    allow: list[str] = []
    deny: list[str] = []


class PoliciesFile(Strict):
    budget: BudgetPolicy = BudgetPolicy()
    latency_ms: LatencyPolicy = LatencyPolicy()
    providers: ProviderLists = ProviderLists()
    fallback_order: list[Tier] = ["tier0", "tier1", "tier2"]
    latency_min_samples: int = Field(5, ge=1, le=10_000)


# ---------------------------------------------------------------------- models.yml
class ProviderSpec(Strict):
    """A model endpoint. `kind`: `openai` (any OpenAI-compatible chat completions server: OpenAI,
    vLLM, llama.cpp, TGI), `azure` (Azure OpenAI deployment URLs), `ollama` (`/api/chat`) or
    `function` (an Aionix function, `target`). `location` decides privacy: only `local`
    providers serve local-only tasks."""

    kind: Literal["openai", "azure", "ollama", "function"]
    location: Literal["local", "api"]
    base_url: str | None = None
    target: str | None = Field(
        None,
        description="function providers: trn:aionixfn:{tenant}:function/NAME or trn:modules:{tenant}:module/NAME"
        " (short: function:NAME, module:NAME)",
    )
    allow_hosts: list[str] = Field([], description="hosts this provider may connect to (its base_url's host)")
    api_key_ref: str | None = Field(None, description="a CredVault secret name or TRN")
    api_version: str = "2024-06-01"
    timeout_s: float = Field(30.0, gt=0, le=3600)
    first_byte_timeout_s: float = Field(10.0, gt=0, le=3600)
    retries: int = Field(2, ge=0, le=10)
    max_retry_wait_s: float = Field(5.0, ge=0, le=300)
    max_concurrency: int = Field(16, ge=1, le=10_000)
    queue_size: int = Field(64, ge=0, le=100_000)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_cooldown_s: float = Field(30.0, gt=0, le=3600)

    @field_validator("target")
    @classmethod
    def _short_target(cls, v: str | None) -> str | None:
        """The short forms of a local route: `module:NAME` (an agent module of the task's
        tenant), `function:NAME` (a function of the task's tenant) or `function:TRN`."""
        if v is None:
            return v
        if v.startswith("module:") and not v.startswith("module:trn:"):
            return f"trn:modules:{{tenant}}:module/{v[len('module:') :]}"
        if v.startswith("function:"):
            rest = v[len("function:") :]
            return rest if rest.startswith("trn:") else f"trn:aionixfn:{{tenant}}:function/{rest}"
        return v

    @model_validator(mode="after")
    def _coherent(self) -> ProviderSpec:
        if self.kind == "function":
            if not self.target or not self.target.startswith(("trn:aionixfn:", "trn:modules:")):
                raise ValueError(
                    "a function provider names target: trn:aionixfn:{tenant}:function/NAME"
                    " or an agent module, trn:modules:{tenant}:module/NAME"
                )
            if self.location != "local":
                raise ValueError("a function provider is local")
        else:
            if not self.base_url or not self.base_url.startswith(("http://", "https://")):
                raise ValueError("an HTTP provider needs base_url (http:// or https://)")
            if not self.allow_hosts:
                raise ValueError("an HTTP provider lists allow_hosts (at least its base_url's host)")
        return self


class ModelSpec(Strict):
    provider: str
    tier: Tier
    model: str | None = Field(None, description="the provider's model or deployment name (default: this entry's name)")
    context: int = Field(8192, ge=1)
    price_in_per_1k: float = Field(0.0, ge=0)
    price_out_per_1k: float = Field(0.0, ge=0)


class ModelsFile(Strict):
    providers: dict[str, ProviderSpec] = {}
    models: dict[str, ModelSpec] = {}


# ---------------------------------------------------------------------- modules.yml
class ModuleSpec(Strict):
    name: str = Field(..., pattern=NAME)
    description: str = ""


class ModulesFile(Strict):
    modules: list[ModuleSpec] = []


FILES: dict[str, type[BaseModel]] = {
    "intents.yml": IntentsFile,
    "policies.yml": PoliciesFile,
    "models.yml": ModelsFile,
    "modules.yml": ModulesFile,
}


# ---------------------------------------------------------------------- [ai] config
class AiBudgets(Strict):
    tenant_daily_usd: float = Field(0.0, ge=0, description="0: no limit")
    tenant_monthly_usd: float = Field(0.0, ge=0)
    key_daily_usd: float = Field(0.0, ge=0)
    key_monthly_usd: float = Field(0.0, ge=0)


class AiConfig(Strict):
    policy_dir: str = ""
    sync_wait_seconds: float = Field(30.0, ge=0, le=3600)
    task_retention_seconds: float = Field(600.0, ge=1)
    max_tasks_in_memory: int = Field(10_000, ge=10)
    budgets: AiBudgets = AiBudgets()
    # GET /api/v1/ws: per-connection send queue, how long it may stay full, keep-alive pings
    ws_queue_size: int = Field(256, ge=1, le=100_000)
    ws_slow_reader_seconds: float = Field(5.0, gt=0, le=3600)
    ws_ping_seconds: float = Field(15.0, gt=0, le=3600)
    # gRPC (aion.v1.AionTasks, extra aionix[grpc]): 0 = off
    grpc_port: int = Field(0, ge=0, le=65535)
    grpc_host: str = "127.0.0.1"
    grpc_tls_cert: str = ""
    grpc_tls_key: str = ""


# ---------------------------------------------------------------------- API bodies
class SubmitTask(Strict):
    schema_version: Literal["1.0"] = "1.0"
    intent: str = Field(..., pattern=NAME)
    params: dict[str, Any] = {}
    privacy: Privacy | None = None
    budget_usd: float | None = Field(None, gt=0, le=1_000_000)
    latency_ms: int | None = Field(None, ge=1, le=3_600_000)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stream: bool = False


class TaskListQuery(Strict):
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=64)
    status: Literal["OK", "ERROR", "TIMEOUT", "CANCELED", "RUNNING"] | None = None


class DecisionQuery(Strict):
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=64)
    task_id: str | None = Field(None, max_length=64)


class VersionsQuery(Strict):
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=64)


class RollbackBody(Strict):
    version: int = Field(..., ge=1)


class UsageQuery(Strict):
    group_by: Literal["intent", "provider", "model", "day", "key"] = "intent"
    since: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD (UTC)")


class TenantBudget(Strict):
    daily_usd: float | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)

    @field_validator("daily_usd", "monthly_usd")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and v != v:
            raise ValueError("must be a number")
        return v
