"""The CLI's HTTP client: resolves URL and key (flag > `AIONIX_URL`/`AIONIX_API_KEY` > profile),
and turns every failure into one line and the documented exit code."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aionix.credentials import current_profile, load_profiles

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_UNREACHABLE = 5

DEFAULT_URL = "http://127.0.0.1:53000"


class CLIError(Exception):
    """Printed as one line on stderr; the process exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def credentials_path() -> Path:
    return Path(os.environ.get("AIONIX_SECURITY_CREDENTIALS_FILE") or "~/.config/aionix/credentials").expanduser()


#: API collection -> the TRN (service, type) its `{name}` segment names.
ROUTE_TYPES = {
    "workflows": ("stepflow", "template"),
    "executions": ("stepflow", "execution"),
    "functions": ("aionixfn", "function"),
    "triggers": ("igniter", "trigger"),
    "connections": ("openact", "connection"),
    "actions": ("openact", "action"),
    "secrets": ("credvault", "credential"),
    "params": ("paramstore", "param"),
}
#: sub-routes under a parameter path (reserved as a param path's last segment)
_PARAM_SUBROUTES = frozenset({"versions", "rollback", "labels"})
_TRN_IN_PATH = re.compile(r"^/api/v1/([a-z]+)/(trn:.*)$")


def rewrite_trn_path(path: str, params: dict[str, Any]) -> str:
    """Every resource argument may be a full TRN: `/api/v1/functions/trn:aionixfn:t:function/f:live/invoke`
    becomes `/api/v1/functions/f/invoke?qualifier=live`. A TRN of another service or type is a
    usage error that names the one expected."""
    from aionix import trn as trnlib
    from aionix.errors import TRNError

    m = _TRN_IN_PATH.match(path)
    if m is None or m.group(1) not in ROUTE_TYPES:
        return path
    collection, rest = m.groups()
    service, rtype = ROUTE_TYPES[collection]
    head, *segments = rest.split("/")
    if rtype == "param":
        take = next((i for i, seg in enumerate(segments) if seg in _PARAM_SUBROUTES and i > 0), len(segments))
    else:
        take = 2 if rtype in ("connection", "action") else 1
    text = "/".join([head, *segments[:take]])
    try:
        parsed = trnlib.parse(text)
    except TRNError as exc:
        raise CLIError(exc.message, EXIT_USAGE) from None
    if (parsed.service, parsed.type) != (service, rtype):
        raise CLIError(
            f"{text} is a {parsed.service} {parsed.type}; expected a trn:{service}:<tenant>:{rtype}/… TRN", EXIT_USAGE
        )
    name = parsed.path if rtype == "param" else parsed.name
    if parsed.qualifier is not None and rtype == "function":
        params.setdefault("qualifier", parsed.qualifier)
    return "/".join([f"/api/v1/{collection}", name, *segments[take:]])


def status_exit_code(status: int) -> int:
    if status in (401, 403):
        return EXIT_AUTH
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (400, 413, 415, 422):
        return EXIT_USAGE
    return EXIT_FAILED


@dataclass
class Client:
    url: str
    api_key: str | None
    timeout: float = 60.0
    #: where the key came from, named when the server refuses it (401)
    key_source: str = ""
    _http: httpx.Client | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, url: str | None, api_key: str | None, profile: str | None) -> Client:
        profiles = load_profiles(credentials_path())
        chosen = profile or os.environ.get("AIONIX_PROFILE") or current_profile(credentials_path())
        if profile and profile not in profiles:
            raise CLIError(f"no profile {profile!r} in {credentials_path()}", EXIT_USAGE)
        data = profiles.get(chosen, {})
        if api_key:
            source = "the --api-key flag"
        elif os.environ.get("AIONIX_API_KEY"):
            source = "the AIONIX_API_KEY environment variable"
        elif data.get("api_key"):
            source = f"profile {chosen!r} in {credentials_path()}"
        else:
            source = "nowhere: pass --api-key, set AIONIX_API_KEY or run `aio login`"
        return cls(
            url=(url or os.environ.get("AIONIX_URL") or data.get("url") or DEFAULT_URL).rstrip("/"),
            api_key=api_key or os.environ.get("AIONIX_API_KEY") or data.get("api_key"),
            key_source=source,
        )

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            headers = {"User-Agent": "aio"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)
        return self._http

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        path = rewrite_trn_path(path, params)
        try:
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.ConnectError:
            raise CLIError(
                f"cannot reach the server at {self.url} (start it with `aionix` or `make run`, or pass --url)",
                EXIT_UNREACHABLE,
            ) from None
        except httpx.TimeoutException:
            raise CLIError(f"the server at {self.url} did not answer in time", EXIT_UNREACHABLE) from None
        except httpx.HTTPError as exc:
            raise CLIError(f"request to {self.url} failed: {exc}", EXIT_UNREACHABLE) from None
        if response.status_code >= 400:
            line = _error_line(response)
            if response.status_code == 401 and self.key_source:
                line += f" (the API key came from {self.key_source})"
            raise CLIError(line, status_exit_code(response.status_code))
        if raw:
            return response
        if response.status_code == 204 or not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json if json is not None else {}, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json if json is not None else {}, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def _error_line(response: httpx.Response) -> str:
    try:
        err = response.json()["error"]
        return f"error {response.status_code} {err['code']}: {err['message']}"
    except Exception:
        return f"error {response.status_code}: {response.text[:200]}"


def sse_events(client: Any, resource: str) -> Iterator[tuple[str, Any]]:
    """`(event, data)` pairs of `GET {resource}/stream` as they arrive. An error answer is raised
    as the CLI error of `GET {resource}` (a 404 names the resource)."""
    with client.http.stream("GET", f"{resource}/stream", timeout=None) as response:
        if response.status_code >= 400:
            response.read()
            client.request("GET", resource)
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                yield kind, json.loads(line[6:])
