"""Handing the first admin key to the user, once the server is serving (never before: a start
that fails must leave the CLI's profiles as they were).

The key goes into a CLI profile (mode 0600), and is printed only when standard output is a
terminal: a log file may be readable by others. When no profile can be written and standard
output is not a terminal, it goes into `<data dir>/initial-admin-key` (mode 0600). When it can be
handed over nowhere, it is not created (the next start tries again)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from aionix.credentials import first_start_profile, load_profiles, save_profile

log = logging.getLogger("aionix")
KEY_FILE_NAME = "initial-admin-key"


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at `url` (within a second)."""
    import httpx

    if not url.startswith(("http://", "https://")):
        return False
    try:
        httpx.get(url.rstrip("/") + "/healthz", timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def _save(path: Path, url: str, key: str) -> tuple[str, Path, str | None]:
    name, note = first_start_profile(load_profiles(path), url, _answers)
    return name, save_profile(path, name, url=url, api_key=key), note


def _write_key_file(path: Path, key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


async def deliver_first_key(cfg, url: str, key: str) -> bool:
    """Hand `key` to the user; False when there was no way to (the key is then not created)."""
    tty = sys.stdout.isatty()
    path = cfg.credentials_path
    saved: tuple[str, Path, str | None] | None
    try:
        saved = await asyncio.to_thread(_save, path, url, key)
    except (OSError, ValueError) as exc:  # ValueError: a credentials file that is not TOML
        log.warning("could not write the credentials file %s: %s", path, getattr(exc, "strerror", None) or exc)
        saved = None
    if tty:
        print(f"Aionix: created the first admin key (shown once): {key}", flush=True)
    if saved is not None:
        name, written, note = saved
        hidden = "" if tty else " (not printed: standard output is not a terminal)"
        print(f"Aionix: saved the first admin key as profile '{name}' in {written}{hidden}", flush=True)
        if note:
            print(
                f"Aionix: {note}; use this server with `aio --profile {name} …` or `aio profile use {name}`",
                flush=True,
            )
            log.warning("first admin key saved as profile %r: %s", name, note)
        return True
    if tty:
        return True
    key_file = cfg.data_dir / KEY_FILE_NAME
    try:
        await asyncio.to_thread(_write_key_file, key_file, key)
    except OSError as exc:
        log.error(
            "the first admin key was not created: the credentials file %s could not be written, standard output "
            "is not a terminal and %s could not be created (%s); fix one of them and restart",
            path,
            key_file,
            exc.strerror,
        )
        return False
    print(f"Aionix: saved the first admin key in {key_file} (mode 0600); delete that file once you hold it", flush=True)
    return True
