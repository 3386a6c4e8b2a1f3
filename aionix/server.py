"""`aionix`: the server entry point, and the one executable's other faces.

    aionix --port 53000 [--host 127.0.0.1] [--config FILE] [--data-dir DIR]
    aionix aio …            the CLI (also when the executable is invoked under the name `aio`)
    aionix --worker SPEC    a confined function worker (how the binary runs Python functions)
    aionix --version        version, commit, and the function runtimes and confinement here
    aionix --print-config   the documented default config.toml (bundled in the binary)

Everything that can fail (configuration, data dir, migrations, keys) is checked before the
port is bound; a failure prints one line and exits with status 2. Only `sys` is imported before
the dispatch: a worker or a CLI call must not pay for the server's imports.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from aionix import __version__

if TYPE_CHECKING:
    import argparse


def _parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(prog="aionix", description="Aionix portable cloud runtime server")
    p.add_argument("--port", type=str, default=None, help="port to listen on (default 53000)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--config", default=None, help="config.toml to read")
    p.add_argument("--data-dir", default=None, help="directory for the database and keys (default ./data)")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "--print-config", action="store_true", help="print the documented default config.toml (every key) and exit"
    )
    return p


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _invoked_as_cli() -> bool:
    """True when the executable was started under the name `aio` (a symlink or a copy)."""
    import os

    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return name == "aio" or name.startswith("aio.")


def main(argv: list[str] | None = None) -> int:
    from_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--worker":
        from aionix import frozen

        frozen.keep_archive_open()
        from aionix.functions.worker import main as worker_main

        return worker_main(argv[1:])
    if argv and argv[0] == "--netns-probe":
        from aionix.frozen import netns_probe

        return netns_probe()
    if from_process and _invoked_as_cli():
        from aionix.cli.main import run as run_cli

        return run_cli(argv)
    if argv and argv[0] == "aio":
        from aionix.cli.main import run as run_cli

        return run_cli(argv[1:])
    args = _parser().parse_args(argv)
    if args.version:
        from aionix.frozen import version_text

        print(version_text())
        return 0
    if args.print_config:
        from aionix.frozen import default_config_text

        text = default_config_text()
        if text is None:
            print("aionix: the default config.toml is not available in this installation", file=sys.stderr)
            return 1
        sys.stdout.write(text)
        return 0
    from aionix.frozen import skip_unused_imports

    skip_unused_imports()
    from aionix import config as configlib
    from aionix.errors import ConfigError

    try:
        cfg = configlib.load(
            args.config,
            overrides={
                "server.port": args.port,
                "server.host": args.host,
                "database.data_path": args.data_dir,
                "logging.level": args.log_level,
            },
            flag_names={
                "server.port": "--port",
                "server.host": "--host",
                "database.data_path": "--data-dir",
                "logging.level": "--log-level",
            },
        )
    except ConfigError as exc:
        print(f"aionix: {exc.message}", file=sys.stderr)
        return 2
    from aionix import log as logsetup

    logsetup.setup(cfg.logging.level, cfg.logging.format)
    try:
        return _run(cfg)
    except ConfigError as exc:
        print(f"aionix: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _run(cfg) -> int:
    import asyncio

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    return runner(_serve(cfg))


async def _serve(cfg) -> int:
    import logging
    import signal

    import uvicorn

    from aionix.api.app import create_app
    from aionix.frozen import share_bundle
    from aionix.runtime import Runtime

    share_bundle()
    log = logging.getLogger("aionix")

    host, port = cfg.server.host, cfg.server.port
    shown_host = f"[{host}]" if ":" in host else host
    base_url = cfg.server.public_url or f"http://{shown_host}:{port}"
    if not _is_loopback(host):
        log.warning("binding %s: the API is reachable from other machines (keys are still required)", host)
    rt = Runtime(cfg)
    try:
        await rt.start(base_url)
    except BaseException:
        await _safe_stop(rt)
        raise
    app = create_app(rt)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        ws="none",  # no WebSocket routes: do not import a WebSocket implementation
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=cfg.server.shutdown_grace_seconds,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the SIGTERM/SIGINT it shut down for, through the handlers it found: with the
    # defaults that kills the process before the runtime stops (services checkpoint, workers end,
    # the store closes). Handlers that do nothing let the shutdown finish and exit 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _after_shutdown_signal)
    log.info("aionix %s listening on %s (data: %s)", __version__, base_url, cfg.data_dir)
    try:
        await server.serve()
    finally:
        await _safe_stop(rt)
        log.info("aionix stopped")
    return 0 if server.started else 1


def _after_shutdown_signal(signum: int, frame: object) -> None:
    """The server is already shutting down (or has): nothing more to do for this signal."""


async def _safe_stop(rt) -> None:
    import logging

    log = logging.getLogger("aionix")
    try:
        await rt.stop()
    except Exception:
        log.exception("shutdown failed")


if __name__ == "__main__":
    sys.exit(main())
