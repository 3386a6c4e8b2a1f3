"""The CLI's HTTP client: resolves URL and key (flag > `AIONIX_URL`/`AIONIX_API_KEY` > profile),
and turns every failure into one line and the documented exit code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aionix.credentials import load_profiles

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
    _http: httpx.Client | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, url: str | None, api_key: str | None, profile: str | None) -> Client:
        profiles = load_profiles(credentials_path())
        chosen = profile or os.environ.get("AIONIX_PROFILE") or "default"
        if profile and profile not in profiles:
            raise CLIError(f"no profile {profile!r} in {credentials_path()}", EXIT_USAGE)
        data = profiles.get(chosen, {})
        return cls(
            url=(url or os.environ.get("AIONIX_URL") or data.get("url") or DEFAULT_URL).rstrip("/"),
            api_key=api_key or os.environ.get("AIONIX_API_KEY") or data.get("api_key"),
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
            raise CLIError(_error_line(response), status_exit_code(response.status_code))
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
