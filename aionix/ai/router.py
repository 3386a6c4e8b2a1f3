"""The policy router: `decide()` picks `{route, tier, provider, model, reason}` for one task.

Order (each step only removes candidates): privacy (the strictest of the intent's and the
task's; `local-only` keeps only `local` providers), provider allow/deny lists, the caller's
policies (`ai:SubmitTask` with the candidate's `provider` in the request context), tiers allowed,
the circuit breaker, budget (estimated cost = prompt tokens x input price + max_tokens x
output price; `max_tokens` is capped so the estimate never exceeds the budget, itself never
above the hard cap; a model that cannot fit even 1 output token is dropped), latency (observed
p95 per provider/model over the target: skipped), then ordering: local before api, lower tier
first, cheapest first. `hybrid` keeps local then api candidates: the API route is tried when
local fails, times out or answers below the intent's `min_confidence`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aionix.ai.models import PRIVACY_RANK, IntentSpec, RouterAnswer
from aionix.ai.policy import PolicySet
from aionix.ai.providers import Provider, estimate_tokens
from aionix.errors import AionixError

TIER_RANK = {"tier0": 0, "tier1": 1, "tier2": 2}


class BudgetExceeded(AionixError):
    """No candidate fits the task's budget (a retry cannot help: 422)."""

    status = 422
    code = "budget_exceeded"


class NoRoute(AionixError):
    status = 422
    code = "no_route"


@dataclass
class Choice:
    model: str
    provider: str
    upstream: str
    tier: str
    location: str
    max_tokens: int
    estimate_usd: float
    price_in: float
    price_out: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.price_in + tokens_out / 1000 * self.price_out


@dataclass
class Decision:
    route: str
    privacy: str
    chain: list[Choice]
    reason: str
    chosen_by: str
    budget_usd: float
    tokens_in_estimate: int
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def first(self) -> Choice:
        return self.chain[0]

    def engine(self, choice: Choice | None = None) -> dict[str, Any]:
        c = choice or self.first
        return {
            "route": self.route,
            "provider": c.provider,
            "model": c.model,
            "tier": c.tier,
            "chosen_by": self.chosen_by,
            "reason": self.reason,
        }


def effective_privacy(intent: IntentSpec, requested: str | None) -> str:
    if requested is None:
        return intent.privacy
    if PRIVACY_RANK[requested] < PRIVACY_RANK[intent.privacy]:
        from aionix.errors import field_error

        raise field_error("privacy", f"may only be stricter than the intent's {intent.privacy!r}")
    return requested


def decide(
    policy: PolicySet,
    providers: dict[str, Provider],
    intent_name: str,
    intent: IntentSpec,
    prompt: str,
    *,
    privacy: str | None,
    budget_usd: float | None,
    latency_ms: int | None,
    max_tokens: int | None,
    hint: RouterAnswer | None = None,
    hint_problem: str | None = None,
    permit: Callable[[str, str], Any] | None = None,
) -> Decision:
    """`permit(provider, route)`: the caller's policies on this task with that provider (None
    when they allow it, else the deciding iam `Decision`): a denied provider is skipped, and
    when nothing else fits the task is refused with 403 naming the statement."""
    pol = policy.policies
    priv = effective_privacy(intent, privacy)
    chosen_by = "override" if privacy is not None and privacy != intent.privacy else "policy"
    route = "local" if priv == "local-only" else intent.default_route
    if priv == "hybrid" and route == "api":
        route = "hybrid"
    preferred_tier = None
    router_note = f"router model ignored: {hint_problem}; " if hint_problem else ""
    if hint is not None:
        allowed = {"local-only": {"local"}, "hybrid": {"local", "hybrid"}, "allow-api": {"local", "api", "hybrid"}}[
            priv
        ]
        if hint.decision not in allowed:
            router_note = f"router model ignored: {hint.decision} is out of policy (privacy {priv}); "
        elif hint.tier is not None and hint.tier not in intent.tiers_allowed:
            router_note = f"router model ignored: {hint.tier} is not allowed; "
        else:
            route = hint.decision
            preferred_tier = hint.tier
            chosen_by = "router"
            router_note = f"router model: {hint.reason or hint.decision}; "
    cap = pol.budget.hard_cap_usd
    budget = min(budget_usd if budget_usd is not None else pol.budget.default_usd, cap)
    wanted = max_tokens or intent.max_tokens
    tin = estimate_tokens(prompt)
    skipped: list[dict[str, str]] = []
    denials: list[Any] = []
    fits: list[Choice] = []
    target = latency_ms or getattr(pol.latency_ms, route)
    slow: list[tuple[float, Choice]] = []
    for name in intent.candidates:
        spec = policy.models.models[name]
        pspec = policy.models.providers[spec.provider]

        def skip(why: str, name: str = name, provider: str = spec.provider) -> None:
            skipped.append({"model": name, "provider": provider, "why": why})

        if pspec.location == "api" and priv == "local-only":
            skip("privacy: local-only")
            continue
        if pspec.location == "api" and route == "local":
            skip("route local")
            continue
        if pspec.location == "local" and route == "api":
            skip("route api")
            continue
        if spec.provider in pol.providers.deny or (pol.providers.allow and spec.provider not in pol.providers.allow):
            skip("provider not allowed")
            continue
        if permit is not None:
            denial = permit(spec.provider, route)
            if denial is not None:
                st = denial.statement
                label = f"{st['policy']} ({st['sid'] or 'statement ' + str(st['index'])})" if st else "no allow"
                skip(f"policy: denied by {label}")
                denials.append(denial)
                continue
        if spec.tier not in intent.tiers_allowed:
            skip(f"{spec.tier} not allowed")
            continue
        prov = providers.get(spec.provider)
        if prov is not None and not prov.breaker.allow():
            skip("circuit open")
            continue
        in_cost = tin / 1000 * spec.price_in_per_1k
        if in_cost > budget:
            skip(f"budget: estimate above {budget:g} USD")
            continue
        if tin >= spec.context:
            skip("prompt longer than the context")
            continue
        room = min(wanted, spec.context - tin)
        if spec.price_out_per_1k > 0:
            room = min(room, math.floor((budget - in_cost) / spec.price_out_per_1k * 1000))
        if room < 1 or in_cost > budget:
            skip(f"budget: estimate above {budget:g} USD")
            continue
        choice = Choice(
            model=name,
            provider=spec.provider,
            upstream=spec.model or name,
            tier=spec.tier,
            location=pspec.location,
            max_tokens=room,
            estimate_usd=round(in_cost + room / 1000 * spec.price_out_per_1k, 8),
            price_in=spec.price_in_per_1k,
            price_out=spec.price_out_per_1k,
        )
        p95 = prov.p95(name, pol.latency_min_samples) if prov is not None else None
        if p95 is not None and p95 > target:
            skip(f"latency: p95 {p95:.0f} ms over {target} ms")
            slow.append((p95, choice))
            continue
        fits.append(choice)
    reason_extra = ""
    if not fits and slow:
        slow.sort(key=lambda pair: pair[0])
        fits = [slow[0][1]]
        reason_extra = "; every candidate over the latency target, the fastest kept"
    if not fits:
        if denials:  # the caller's policies left nothing: 403 naming the (first) deciding statement
            from aionix.iam.policy import PolicyDenied

            d = denials[0]
            raise PolicyDenied(
                d,
                f"not allowed: {d.action} on {d.resource} with any provider that fits intent {intent_name} "
                + (
                    f"(denied by policy {d.statement['policy']}, {d.statement['sid'] or 'statement ' + str(d.statement['index'])})"
                    if d.statement
                    else "(no policy allows it)"
                ),
            )
        if any(s["why"].startswith("budget") for s in skipped):
            raise BudgetExceeded(
                f"intent {intent_name}: no candidate fits the budget of {budget:g} USD "
                f"(estimated {tin} prompt tokens; hard cap {cap:g} USD)",
                details={"budget_usd": budget, "hard_cap_usd": cap, "tokens_in_estimate": tin, "skipped": skipped},
            )
        raise NoRoute(
            f"intent {intent_name}: no candidate model passes the policy (privacy {priv})",
            details={"skipped": skipped},
        )
    order = {t: i for i, t in enumerate(pol.fallback_order)}
    fits.sort(
        key=lambda c: (
            0 if c.location == "local" else 1,
            0 if preferred_tier is None or c.tier == preferred_tier else 1,
            order.get(c.tier, TIER_RANK[c.tier] + 10),
            c.estimate_usd,
        )
    )
    first = fits[0]
    reason = router_note + (
        f"privacy {priv}; route {route}; {first.model} on {first.provider} ({first.tier}), "
        f"est. {first.estimate_usd:g} USD of {budget:g}; max_tokens {first.max_tokens}"
    )
    if skipped:
        reason += "; skipped " + ", ".join(f"{s['model']} ({s['why']})" for s in skipped)
    return Decision(
        route=route,
        privacy=priv,
        chain=fits,
        reason=reason + reason_extra,
        chosen_by=chosen_by,
        budget_usd=budget,
        tokens_in_estimate=tin,
        skipped=skipped,
    )
