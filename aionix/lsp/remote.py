"""The Aionix server as the language server sees it (when a profile, URL or key is configured):
names of functions, actions, templates, secrets and parameters for completion, a secret's metadata
for hover (never its value), and the code lenses' validate/run. Lists are cached briefly so that
typing does not call the server on every keystroke."""

from __future__ import annotations

import os
import time
from typing import Any

from aionix.cli.client import Client, CLIError, credentials_path
from aionix.credentials import current_profile, load_profiles

CACHE_SECONDS = 30.0
TIMEOUT = 5.0

#: collection -> the field holding the name that expressions use
COLLECTIONS = {"functions": "name", "actions": "name", "workflows": "name", "secrets": "name", "params": "path"}


class Remote:
    def __init__(self, url: str | None = None, api_key: str | None = None, profile: str | None = None) -> None:
        self.url, self.api_key, self.profile = url, api_key, profile
        self._client: Client | None = None
        self._cache: dict[str, tuple[float, Any]] = {}

    def configure(self, url: str | None = None, api_key: str | None = None, profile: str | None = None) -> None:
        """Settings from the editor (initializationOptions / workspace/didChangeConfiguration)."""
        self.url = url or self.url
        self.api_key = api_key or self.api_key
        self.profile = profile or self.profile
        self._client = None
        self._cache.clear()

    @property
    def configured(self) -> bool:
        """A server to ask: an explicit URL/key/profile, the environment, or a saved profile."""
        if self.url or self.api_key or self.profile:
            return True
        if os.environ.get("AIONIX_URL") or os.environ.get("AIONIX_API_KEY") or os.environ.get("AIONIX_PROFILE"):
            return True
        try:
            path = credentials_path()
            return bool(load_profiles(path).get(current_profile(path)))
        except Exception:
            return False

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client.from_options(self.url, self.api_key, self.profile)
            self._client.timeout = TIMEOUT
        return self._client

    @property
    def base_url(self) -> str:
        return self.client.url

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, path, **kw)

    def listing(self, collection: str) -> list[dict[str, Any]]:
        """Every item of a collection (empty when no server is configured or it cannot answer)."""
        if not self.configured:
            return []
        hit = self._cache.get(collection)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        items: list[dict[str, Any]] = []
        try:
            cursor = None
            for _ in range(20):
                page = self.request("GET", f"/api/v1/{collection}", params={"limit": 500, "cursor": cursor})
                items.extend(page.get("items", []) if isinstance(page, dict) else page or [])
                cursor = page.get("next_cursor") if isinstance(page, dict) else None
                if not cursor:
                    break
        except (CLIError, ValueError):
            items = []
        self._cache[collection] = (time.monotonic(), items)
        return items

    def secret(self, name: str) -> dict[str, Any] | None:
        """A secret's metadata; the value is never asked for (the API does not return it here)."""
        if not self.configured:
            return None
        try:
            info = self.request("GET", f"/api/v1/secrets/{name}")
        except CLIError:
            return None
        if not isinstance(info, dict):
            return None
        return {k: v for k, v in info.items() if k not in ("value", "secret_value", "plaintext")}
