"""``onewindow serve``: the API under uvicorn, in one process or in several sharing one listening socket.

With ``--workers N`` (N > 1) uvicorn's supervisor binds the socket once and spawns N processes, each of
which builds its own app from the factory ``api.app:create_app`` (settings from the environment; uvicorn
needs an import string to start processes). Before that, this process prepares the database once
(migrations, the catalogue's departments, demo data in demo mode), so that N processes starting at once
do not run the first migration side by side (PostgreSQL would take turns, SQLite would collide).
"""

from __future__ import annotations

import copy
import gc
import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api.cli import QUIET_LOGGERS
from engine.settings import Settings

__all__ = ["APP_FACTORY", "NoDelayConfig", "log_config", "serve", "settle_heap"]

APP_FACTORY = "api.app:create_app"
"""What every process of ``onewindow serve --workers N`` runs (``uvicorn --factory``)."""

log = logging.getLogger("onewindow.server")


class NoDelayConfig(uvicorn.Config):
    """uvicorn's ``Config``, whose pre-bound socket (``--workers`` > 1) is one asyncio sets TCP_NODELAY on.

    asyncio switches Nagle's algorithm off on every accepted connection, but only when the listening
    socket says it is TCP (``asyncio.base_events._set_nodelay`` checks ``sock.proto == IPPROTO_TCP``).
    uvicorn binds the shared socket of its worker processes with ``socket.socket(family)``, protocol 0, so
    each connection of a worker kept Nagle on: h11 sends a response's head and body in two writes, and the
    second waited for the client's delayed ACK, about 40 ms on every keep-alive request after the first
    (uvicorn issue #3149). One process is not affected: ``create_server(host, port)`` resolves the address
    with ``getaddrinfo``, which names the protocol. Here the socket bound by uvicorn is re-wrapped as
    ``IPPROTO_TCP`` (the same descriptor; the protocol survives the hand-over to the worker processes)."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
            family, kind = sock.family, sock.type
            sock = socket.socket(family, kind, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock

    def settle_heap(self) -> None:
        """What a process does with its heap once the app is built: :func:`settle_heap`."""
        settle_heap()

    def load(self) -> None:
        """Build the app (in a worker process: from the factory), then :func:`settle_heap`. A worker that
        cannot (a refused start, ``Settings.require_secret``; a database that cannot be reached) ends with
        uvicorn's start-up failure status, which stops the supervisor, instead of being restarted over and
        over."""
        try:
            super().load()
            self.settle_heap()
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                raise
            log.error("%s", exc.code)
            sys.exit(STARTUP_FAILURE)
        except Exception:
            log.exception("the application could not be built")
            sys.exit(STARTUP_FAILURE)


def settle_heap() -> None:
    """Move what start-up built out of the garbage collector's sight (``gc.freeze``), once per process.

    The modules, the app and its schemas, the parsed models, the catalogue and the forms live as long as
    the process: some 150,000 tracked objects that every full collection walked again, a pause of 80-250 ms
    in the middle of a request every few hundred requests on this machine kind (p99 of a task completion
    went over 100 ms). Frozen, a full collection walks only what requests made since (the live workflows
    of ``engine.live`` among them), a few milliseconds. Nothing is leaked: what start-up built is kept
    anyway, and everything made later is collected as before."""
    gc.collect()
    gc.freeze()


def log_config() -> dict[str, Any]:
    """uvicorn's logging (its format, access log on stdout) plus ours: ``onewindow.*`` at INFO, everything
    else from WARNING, the libraries in ``QUIET_LOGGERS`` from WARNING. Applied in every worker process."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    config["loggers"]["onewindow"] = {"level": "INFO"}
    for name in QUIET_LOGGERS:
        config["loggers"][name] = {"level": "WARNING"}
    return config


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    config_type: type[NoDelayConfig] = NoDelayConfig,
) -> int:
    """Prepare the database, then serve until stopped (SIGINT/SIGTERM). Returns the exit status: 0, or 3
    (uvicorn's start-up failure) when the server or a worker process could not start; a port already in
    use ends with 3 too. The caller checks the secret key first (``Settings.require_secret``).
    ``config_type``: the uvicorn configuration (a benchmark's variant of :class:`NoDelayConfig`)."""
    from api.app import create_app
    from engine.bootstrap import bootstrap

    services = bootstrap(settings)  # the schema, the departments, demo data: once, before any worker
    kind = "1 个进程 process" if workers == 1 else f"{workers} 个进程 processes"
    database = services.engine.dialect.name
    log.info("onewindow 服务 serving on http://%s:%d (%s, %s)", host, port, kind, database)
    common: dict[str, Any] = {"host": host, "port": port, "log_config": log_config()}
    try:
        if workers == 1:
            server = uvicorn.Server(config_type(create_app(services=services), **common))
            server.run()
            return 0 if server.started else STARTUP_FAILURE
        services.engine.dispose()  # each worker process builds its own engine and services
        config = config_type(APP_FACTORY, factory=True, workers=workers, **common)
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
        return STARTUP_FAILURE if failed else 0
    except KeyboardInterrupt:
        return 0
