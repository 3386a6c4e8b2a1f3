"""Loading the policy files: YAML with line numbers, pydantic validation, cross-file checks.

A bad file is refused with the file, the line and the field at fault
(`models.yml:12: models.gpt-mini.provider: unknown provider 'x'`); the caller keeps running the
version it has. A valid set is a `PolicySet`; its `digest` identifies the content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from aionix import jsonutil
from aionix.ai.models import FILES, IntentsFile, ModelsFile, ModulesFile, PoliciesFile
from aionix.errors import ValidationFailed

MAX_FILE_BYTES = 1_048_576


@dataclass
class PolicySet:
    intents: IntentsFile
    policies: PoliciesFile
    models: ModelsFile
    modules: ModulesFile
    texts: dict[str, str]
    digest: str
    version: int = 0


class PolicyError(ValidationFailed):
    code = "policy_invalid"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        first = problems[0]
        where = f"{first['file']}:{first['line']}" if first.get("line") else first["file"]
        super().__init__(
            f"{where}: {first['field']}: {first['message']} (the running policy version stays active)",
            details=problems,
        )


def _line(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (the deepest one that exists)."""
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    best = key.start_mark.line + 1
                    node = value
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best


def read_dir(path: Path) -> dict[str, str]:
    """The four files' texts ('' for a missing one)."""
    out: dict[str, str] = {}
    if not path.is_dir():
        raise PolicyError(
            [
                {
                    "file": str(path),
                    "line": None,
                    "field": "",
                    "message": "no such directory ([ai] policy_dir or <data dir>/ai)",
                }
            ]
        )
    for name in FILES:
        file = path / name
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            out[name] = ""
            continue
        except OSError as exc:
            raise PolicyError(
                [{"file": name, "line": None, "field": "", "message": f"cannot read: {exc.strerror}"}]
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise PolicyError([{"file": name, "line": None, "field": "", "message": "larger than 1 MiB"}])
        try:
            out[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError([{"file": name, "line": None, "field": "", "message": "not UTF-8"}]) from None
    return out


def parse(texts: dict[str, str]) -> PolicySet:
    parsed: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, model in FILES.items():
        text = texts.get(name, "")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(
                {
                    "file": name,
                    "line": mark.line + 1 if mark else None,
                    "field": "",
                    "message": f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                }
            )
            continue
        nodes[name] = node
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append({"file": name, "line": 1, "field": "", "message": "must be a mapping at the top"})
            continue
        try:
            parsed[name] = model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
                problems.append(
                    {
                        "file": name,
                        "line": _line(node, loc),
                        "field": ".".join(str(p) for p in loc),
                        "message": "unknown field" if err["type"] == "extra_forbidden" else err["msg"],
                    }
                )
    if problems:
        raise PolicyError(problems)
    intents: IntentsFile = parsed["intents.yml"]
    models: ModelsFile = parsed["models.yml"]
    policies: PoliciesFile = parsed["policies.yml"]

    def fail(file: str, loc: tuple[Any, ...], message: str) -> None:
        problems.append(
            {"file": file, "line": _line(nodes.get(file), loc), "field": ".".join(map(str, loc)), "message": message}
        )

    for pname, provider in models.providers.items():
        if provider.base_url:
            host = (urlsplit(provider.base_url).hostname or "").lower()
            allowed = {h.lower().strip("[]") for h in provider.allow_hosts}
            if host not in allowed:
                fail("models.yml", ("providers", pname, "allow_hosts"), f"does not list the base_url host {host!r}")
    for mname, model in models.models.items():
        if model.provider not in models.providers:
            fail("models.yml", ("models", mname, "provider"), f"unknown provider {model.provider!r}")
    for iname, intent in intents.intents.items():
        if intent.router_model is not None:
            rm = models.models.get(intent.router_model)
            if rm is None:
                fail("intents.yml", ("intents", iname, "router_model"), f"unknown model {intent.router_model!r}")
            elif rm.provider in models.providers and models.providers[rm.provider].location != "local":
                fail("intents.yml", ("intents", iname, "router_model"), "must be a local model (it reads the prompt)")
        for i, cand in enumerate(intent.candidates):
            if cand not in models.models:
                fail("intents.yml", ("intents", iname, "candidates", i), f"unknown model {cand!r} (not in models.yml)")
    for i, name in enumerate(policies.providers.allow + policies.providers.deny):
        if name not in models.providers:
            lst = "allow" if i < len(policies.providers.allow) else "deny"
            idx = i if lst == "allow" else i - len(policies.providers.allow)
            fail("policies.yml", ("providers", lst, idx), f"unknown provider {name!r} (not in models.yml)")
    if policies.budget.default_usd > policies.budget.hard_cap_usd:
        fail("policies.yml", ("budget", "default_usd"), "is above budget.hard_cap_usd")
    if problems:
        raise PolicyError(problems)
    digest = hashlib.sha256(jsonutil.dumps(dict(sorted(texts.items())))).hexdigest()
    return PolicySet(
        intents=intents,
        policies=policies,
        models=models,
        modules=parsed["modules.yml"],
        texts=dict(texts),
        digest=digest,
    )
