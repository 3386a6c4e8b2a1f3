"""`aionix`: the server entry point (also `aionix aio …` for the CLI and `aionix --worker`).

    aionix --port 53000 [--host 127.0.0.1] [--config FILE] [--data-dir DIR]

Everything that can fail (configuration, data dir, migrations, keys) is checked before the
port is bound; a failure prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys

from aionix import __version__

log = logging.getLogger("aionix")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aionix", description="Aionix portable cloud runtime server")
    p.add_argument("--port", type=str, default=None, help="port to listen on (default 53000)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--config", default=None, help="config.toml to read")
    p.add_argument("--data-dir", default=None, help="directory for the database and keys (default ./data)")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "aio":
        from aionix.cli.main import run as run_cli

        return run_cli(argv[1:])
    args = _parser().parse_args(argv)
    if args.version:
        print(f"aionix {__version__}")
        return 0
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
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    return runner(_serve(cfg))


async def _serve(cfg) -> int:
    import uvicorn

    from aionix.api.app import create_app
    from aionix.runtime import Runtime

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
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=cfg.server.shutdown_grace_seconds,
    )
    server = uvicorn.Server(config)
    log.info("aionix %s listening on %s (data: %s)", __version__, base_url, cfg.data_dir)
    try:
        await server.serve()
    finally:
        await _safe_stop(rt)
        log.info("aionix stopped")
    return 0 if server.started else 1


async def _safe_stop(rt) -> None:
    try:
        await rt.stop()
    except Exception:
        log.exception("shutdown failed")


if __name__ == "__main__":
    sys.exit(main())
