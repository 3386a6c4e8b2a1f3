"""`aionix`: the server entry point, and the one executable's other faces.

    aionix --port 53000 [--host 127.0.0.1] [--config FILE] [--data-dir DIR] [--port-file FILE]
    aionix aio …            the CLI (also when the executable is invoked under the name `aio`)
    aionix --worker SPEC    a confined function worker (how the binary runs Python functions)
    aionix --version        version, commit, and the function runtimes and confinement here
    aionix --print-config   the documented default config.toml (bundled in the binary)

The configuration is checked first; then the listening socket is bound (`--port 0`: the kernel
picks a free port), and only then is anything created for the user (data dir, database, keys).
Once the server answers, its URL is the first line on standard output, the first admin key (on a
fresh data dir) is saved in a CLI profile, and `--port-file` receives the bound port. A failure
before that prints one line and exits with status 2, leaving the CLI's profiles untouched.

`AIONIX_MASTER_KEY` / `AIONIX_MASTER_PASSPHRASE` never stay in the server's initial environment
block (`/proc/<pid>/environ`, which removing them from `os.environ` does not change): the server
re-executes itself once (same pid) without them and receives them through an inherited pipe.

Only `sys` is imported before the dispatch: a worker or a CLI call must not pay for the server's
imports.
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
    p.add_argument("--port", type=str, default=None, help="port to listen on (default 53000; 0: any free port)")
    p.add_argument(
        "--port-file",
        default=None,
        help="once serving, write the bound port to this file (atomically); with --port 0 in tests and CI",
    )
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


def _defer_model_builds() -> None:
    """In the server process, a pydantic model builds its validator when it is first used rather
    than when its module is imported (pydantic's `defer_build`, set on the base class whose config
    every model inherits): most models belong to routes or config sections that a start does not
    need yet. 3 MB less idle memory (issue 21 part 5: idle RSS <= 80 MB) and less CPU at start."""
    from pydantic import BaseModel

    BaseModel.model_config["defer_build"] = True


def _websocket_protocol(*args, **kwargs):
    """uvicorn's `websockets-sansio` protocol, imported by the first WebSocket upgrade instead of
    at start: 0.6 MB less idle memory in a server that no WebSocket client has used."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    return WebSocketsSansIOProtocol(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    from_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--worker":
        from aionix import frozen

        frozen.keep_archive_open()
        from aionix.functions.worker import main as worker_main

        return worker_main(argv[1:])
    if argv and argv[0] == "--expr-worker":
        from aionix.exprworker import main as expr_worker_main

        return expr_worker_main()
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
    if args.port_file is not None:
        import os

        folder = os.path.dirname(os.path.abspath(args.port_file))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
            print(f"aionix: --port-file: the directory {folder} does not exist or is not writable", file=sys.stderr)
            return 2
    try:
        _receive_or_scrub_secrets(from_process)
    except OSError as exc:
        print(f"aionix: cannot pass the master key to the server process: {exc}", file=sys.stderr)
        return 2
    from aionix.frozen import skip_unused_imports

    skip_unused_imports()
    _defer_model_builds()
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
        return _run(cfg, args.port_file)
    except ConfigError as exc:
        print(f"aionix: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


#: variables that hold the master key; the server's initial environment must not keep them
SECRET_VARS = ("AIONIX_MASTER_KEY", "AIONIX_MASTER_PASSPHRASE")
#: set only for the re-executed server: the inherited pipe that holds SECRET_VARS
SECRET_FD_VAR = "_AIONIX_SECRETS_FD"
_MAX_SECRETS_BYTES = 60_000  # below a pipe's 64 KiB buffer: the write never blocks


def _receive_or_scrub_secrets(from_process: bool) -> None:
    """Keep the master key out of `/proc/<pid>/environ`. The first time: when a secret variable
    is set, write them to a pipe and re-execute this program (same pid, same arguments) with an
    environment without them. The second time: read them back from the pipe into `os.environ`
    (which changes no initial environment block; the vault removes them once read)."""
    import json
    import os

    fd_text = os.environ.pop(SECRET_FD_VAR, None)
    if fd_text is not None:
        if not fd_text.isdigit():
            raise OSError(f"{SECRET_FD_VAR} is not a file descriptor")
        fd = int(fd_text)
        chunks = []
        try:
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(fd)
        values = json.loads(b"".join(chunks) or b"{}")
        os.environ.update({k: v for k, v in values.items() if k in SECRET_VARS and isinstance(v, str)})
        return
    present = {k: os.environ[k] for k in SECRET_VARS if k in os.environ}
    if not present or not from_process or not sys.platform.startswith("linux"):
        return
    data = json.dumps(present).encode()
    if len(data) > _MAX_SECRETS_BYTES:
        raise OSError(f"{' / '.join(present)} is longer than {_MAX_SECRETS_BYTES} bytes")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env[SECRET_FD_VAR] = str(read_end)
    # From source, orig_argv is the interpreter's own command line (`python -m aionix …`, or the
    # entry-point script); the single executable is re-run as itself, and the bootloader's
    # `_PYI_*` variables (kept) make it reuse the bundle already unpacked, as workers do.
    from aionix.frozen import is_frozen

    argv = list(sys.argv) if is_frozen() else list(sys.orig_argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _run(cfg, port_file: str | None = None) -> int:
    from aionix.loops import run

    return run(_serve(cfg, port_file))


def _bind(host: str, port: int):
    """The listening socket, bound before anything is written for the user (a busy port must
    not leave a key, a profile or a data dir behind)."""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve server.host {host!r}: {exc.strerror}") from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


def write_port_file(path: str, port: int) -> None:
    """`port` and a newline, replaced atomically: a reader sees nothing or the whole port."""
    import os
    from pathlib import Path

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    tmp.replace(target)


async def _serve(cfg, port_file: str | None = None) -> int:
    import asyncio
    import logging
    import signal

    import uvicorn

    from aionix.errors import ConfigError
    from aionix.frozen import share_bundle
    from aionix.runtime import Runtime

    log = logging.getLogger("aionix")

    host, port = cfg.server.host, cfg.server.port
    try:
        sock = _bind(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        port = sock.getsockname()[1]
        share_bundle()
        shown_host = f"[{host}]" if ":" in host else host
        base_url = cfg.server.public_url or f"http://{shown_host}:{port}"
        if not _is_loopback(host):
            log.warning("binding %s: the API is reachable from other machines (keys are still required)", host)
        rt = Runtime(cfg)
        rt.listen_port = port  # connectors refuse this port on this host's addresses (never self-SSRF)
        try:
            await rt.start_core(base_url)  # the store and the vault: what /healthz needs
        except BaseException:
            await _safe_stop(rt)
            raise
        # The server answers from here on: /healthz at once; any other request waits until the
        # other services have loaded and the app is built (`Gate`), which happens meanwhile.
        app = Gate(rt)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            http="httptools",
            ws=_websocket_protocol,  # GET /api/v1/ws (AI task events)
            ws_max_size=64 * 1024,  # a client message over 64 KiB closes the socket (1009), never buffered
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=cfg.server.shutdown_grace_seconds,
        )

        async def on_serving() -> None:
            from aionix.firststart import deliver_first_key

            print(base_url, flush=True)  # the first line on standard output, for scripts and CI
            await rt.create_first_key(lambda key: deliver_first_key(cfg, base_url, key))
            app.serving.set()  # /healthz answers 200 once the first key is in the user's hands
            loading.append(asyncio.create_task(load_the_rest(), name="aionix-start-services"))

        async def load_the_rest() -> None:
            try:
                await rt.start_services()
                # the app (its routes, every service's endpoints) is built off the loop, so the
                # executions that start_services resumed take their first steps meanwhile
                app.app = await asyncio.to_thread(_create_app, rt)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                app.fail()
                if isinstance(exc, ConfigError):
                    print(f"aionix: {exc.message}", file=sys.stderr, flush=True)
                    server.exit_code = 2
                else:
                    log.exception("the server could not finish starting")
                server.failed = server.should_exit = True
                return
            app.ready.set()
            if port_file:  # every service answers: what tests and scripts that wait for the file expect
                write_port_file(port_file, port)
            await asyncio.to_thread(_release_start_memory)

        loading: list[asyncio.Task[None]] = []
        server = _server_class()(config, on_serving)
        # uvicorn re-raises the SIGTERM/SIGINT it shut down for, through the handlers it found: with
        # the defaults that kills the process before the runtime stops (services checkpoint, workers
        # end, the store closes). Handlers that do nothing let the shutdown finish and exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _after_shutdown_signal)
        log.info("aionix %s listening on %s (data: %s)", __version__, base_url, cfg.data_dir)
        try:
            await server.serve(sockets=[sock])
        finally:
            for task in loading:  # a shutdown while the services still load
                task.cancel()
            await asyncio.gather(*loading, return_exceptions=True)
            await _safe_stop(rt)
            log.info("aionix stopped")
        if server.started and not server.failed:
            return 0
        return server.exit_code
    finally:
        sock.close()


class Gate:
    """The ASGI app the server answers with from the moment the store is open: `GET /healthz`
    at once (with `"starting": true` while the services load); any other request waits until
    the full app is built, then goes to it (or, when the start failed, gets a 503)."""

    def __init__(self, rt) -> None:
        import asyncio

        self.rt = rt
        self.app = None
        self.serving = asyncio.Event()
        self.ready = asyncio.Event()

    def fail(self) -> None:
        self.ready.set()

    async def __call__(self, scope, receive, send) -> None:
        app = self.app
        if app is None:
            if scope["type"] == "http" and scope["path"] == "/healthz" and scope["method"] in ("GET", "HEAD"):
                await self._healthz(scope, send)
                return
            await self.ready.wait()
            app = self.app
            if app is None:
                if scope["type"] == "http":
                    from aionix.api.dispatch import error_response
                    from aionix.errors import Unavailable

                    await error_response(Unavailable("the server could not start"))(scope, receive, send)
                return
        await app(scope, receive, send)

    async def _healthz(self, scope, send) -> None:
        await self.serving.wait()
        ok = await self.rt.store.healthy()
        body = {"status": "ok" if ok else "degraded", "store": "ok" if ok else "error", **self.rt.describe()}
        body["starting"] = True
        await self._reply(send, 200 if ok else 503, body, head=scope["method"] == "HEAD")

    @staticmethod
    async def _reply(send, status: int, body: dict, head: bool = False) -> None:
        from aionix import jsonutil

        data = jsonutil.dumps(body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else data})


def _release_start_memory() -> None:
    """Once started: hand the memory that the imports (in several threads, each with its own
    malloc arena) used and freed back to the system — a few MB less idle RSS."""
    import ctypes
    import gc

    gc.collect()
    tune_gc()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


#: allocations between two young-generation collections (CPython's default: 700)
GC_GEN0_THRESHOLD = 10_000
#: young collections between two of the middle generation (CPython's default: 10). What
#: survives a young collection is mostly running executions' state, dead a moment later: a
#: middle collection every 10 young ones scanned it again (15-20 ms each at 1,000 executions
#: in flight, 5% of the engine's CPU), one every 50 finds most of it gone
GC_GEN1_THRESHOLD = 50


def tune_gc() -> None:
    """Once started: what the start built (modules, plans, caches: most of the heap) lives as
    long as the process, so it is left out of the garbage collector's scans (`gc.freeze`), and
    young collections run every 10,000 allocations instead of 700, the middle generation every
    50 young ones instead of 10. Each running execution holds a few dozen container objects;
    with the defaults the collector's passes over them took about a fifth of the CPU per durable
    state transition at 1,000 executions in flight (bench/results/profile-chain10.md). Garbage
    without cycles is freed at once either way."""
    import gc

    gc.freeze()
    _, _, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, gen2)


def _create_app(rt):
    """The ASGI app, imported and built in a thread (the API's modules load after the resume)."""
    from aionix.api.app import create_app

    return create_app(rt)


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, with a step once it accepts connections (the first key, the port file)."""

        def __init__(self, config, on_serving) -> None:
            super().__init__(config)
            self.on_serving = on_serving
            self.failed = False
            self.exit_code = 1

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.started or self.should_exit:
                return
            try:
                await self.on_serving()
            except Exception:
                import logging

                logging.getLogger("aionix").exception("the server could not finish starting")
                self.failed = True
                self.should_exit = True

    return Server


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
