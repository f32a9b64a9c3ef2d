"""``onewindow serve``: several processes without the keep-alive stall, and no start without a secret key."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from api.server import APP_FACTORY, NoDelayConfig

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-of-at-least-32-characters"
STALL_LIMIT = 0.025  # seconds: the stall is ~40 ms (delayed ACK); an answer takes a few ms
START_TIMEOUT = 120.0  # seconds: each process bootstraps (models, catalogue) on a possibly busy machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update(
        ONEWINDOW_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        ONEWINDOW_UPLOAD_DIR=str(tmp_path / "uploads"),
    )
    env.update(extra)
    return env


def onewindow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (the supervisor and its workers), SIGKILL what is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind (or a supervisor that hung)
        except ProcessLookupError:
            pass
        process.wait(timeout=20)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``onewindow serve --workers 2`` as a real subprocess (its own session: killed as a group), demo mode
    on a temporary SQLite database; yields once both worker processes have started."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = base_env(tmp_path, ONEWINDOW_DEMO="1", ONEWINDOW_SECRET_KEY=SECRET)
    command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(port, process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while running.output().count("Application startup complete") < 2:
            assert process.poll() is None, f"serve exited ({process.returncode}):\n{running.output()}"
            assert time.monotonic() < deadline, f"two workers not up in time:\n{running.output()}"
            time.sleep(0.2)  # waiting for a real subprocess to start (no timer is involved)
        yield running
    finally:
        stop(process)


def test_two_workers_answer_keep_alive_requests_without_the_nagle_stall(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.connect()
        local = conn.sock.getsockname()
        seconds: list[float] = []
        for _ in range(6):
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            body = json.loads(response.read())
            seconds.append(time.perf_counter() - start)
            assert response.status == 200 and body == {"status": "ok", "database": "sqlite"}
            assert not response.will_close  # keep-alive: the next request goes on this connection
            assert conn.sock is not None and conn.sock.getsockname() == local  # still ONE connection
    finally:
        conn.close()
    kept_alive = seconds[1:]  # the first request opens the connection; every later one used to stall
    shown = ", ".join(f"{s * 1000:.1f} ms" for s in seconds)
    assert statistics.median(kept_alive) < STALL_LIMIT, f"keep-alive requests stall: {shown}"
    assert min(kept_alive) < STALL_LIMIT, shown

    process = server.process  # a stop (SIGTERM, as `docker compose stop` sends) ends every process cleanly
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0, server.output()
    assert "Stopping parent process" in server.output()


def test_the_shared_socket_of_the_workers_gets_tcp_nodelay_on_each_connection() -> None:
    """Why there was a stall: asyncio sets TCP_NODELAY only on connections of an IPPROTO_TCP listener, and
    uvicorn before 0.55 bound the socket of its workers as protocol 0. ``NoDelayConfig`` binds one that is
    TCP whichever uvicorn is installed (later releases bind it so themselves: then both sockets are TCP)."""

    def nodelay_of_accepted(listener: socket.socket) -> int:
        async def accept_one() -> int:
            accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            class Probe(asyncio.Protocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    sock = transport.get_extra_info("socket")
                    accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                    transport.close()

            server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
            async with server:
                port = listener.getsockname()[1]
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    return await asyncio.wait_for(accepted, 10)
                finally:
                    writer.close()

        return asyncio.run(accept_one())

    plain = uvicorn.Config(APP_FACTORY, factory=True, host="127.0.0.1", port=0, log_config=None)
    ours = NoDelayConfig(APP_FACTORY, factory=True, host="127.0.0.1", port=0, log_config=None)
    theirs, mine = plain.bind_socket(), ours.bind_socket()
    assert mine.proto == socket.IPPROTO_TCP and mine.get_inheritable()
    assert nodelay_of_accepted(mine) != 0
    # the mechanism, on uvicorn's own socket: Nagle stays on (the ~40 ms stall) exactly when it is not TCP
    assert (nodelay_of_accepted(theirs) != 0) == (theirs.proto == socket.IPPROTO_TCP)
    protocol_0 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    protocol_0.bind(("127.0.0.1", 0))
    protocol_0.listen()
    assert protocol_0.proto == 0 and nodelay_of_accepted(protocol_0) == 0


def test_serve_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    for demo in ({}, {"ONEWINDOW_DEMO": "0"}):
        env = base_env(tmp_path, **demo)
        refused = onewindow("serve", "--workers", "2", "--port", str(free_port()), env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "拒绝启动" in refused.stderr and "ONEWINDOW_SECRET_KEY" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (tmp_path / "serve.db").exists()  # refused before any work: no database made


def test_serve_with_a_short_secret_key_names_the_setting(tmp_path: Path) -> None:
    refused = onewindow("serve", env=base_env(tmp_path, ONEWINDOW_SECRET_KEY="too-short"))
    assert refused.returncode == 2
    assert "配置无效" in refused.stderr and "ONEWINDOW_SECRET_KEY" in refused.stderr
    assert "too-short" not in refused.stderr + refused.stdout  # a secret is never echoed
    assert "Traceback" not in refused.stderr


def test_serve_rejects_a_worker_count_below_one(tmp_path: Path) -> None:
    refused = onewindow("serve", "--workers", "0", env=base_env(tmp_path, ONEWINDOW_DEMO="1"))
    assert refused.returncode == 2 and "--workers" in refused.stderr
    assert not (tmp_path / "serve.db").exists()


def test_each_worker_process_refuses_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app factory every uvicorn worker runs refuses a start without a secret key before any work,
    and a worker that cannot build its app ends with uvicorn's start-up failure (3), which stops the
    supervisor instead of restarting the worker forever."""
    for key in [k for k in os.environ if k.startswith("ONEWINDOW_")]:
        monkeypatch.delenv(key)
    for key, value in base_env(tmp_path).items():
        if key.startswith("ONEWINDOW_"):
            monkeypatch.setenv(key, value)
    from api.app import create_app

    with pytest.raises(SystemExit, match="ONEWINDOW_SECRET_KEY"):
        create_app()
    assert not (tmp_path / "serve.db").exists()

    config = NoDelayConfig(APP_FACTORY, factory=True, log_config=None)
    with pytest.raises(SystemExit) as stopped:
        config.load()
    assert stopped.value.code == 3


def test_a_server_process_freezes_what_start_up_built_out_of_the_collectors_sight() -> None:
    """Full collections walked the whole start-up heap (the app, the models, the catalogue) in the middle
    of requests; ``NoDelayConfig.load`` freezes it once the app is built (``settle_heap``)."""
    import gc

    from fastapi import FastAPI

    gc.unfreeze()
    try:
        config = NoDelayConfig(FastAPI(), log_config=None)
        config.load()
        assert config.loaded and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
