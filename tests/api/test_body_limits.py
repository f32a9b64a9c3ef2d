"""Request bodies are limited before they are read: per body class (document / json / upload) from settings,
by the declared Content-Length and by counting streamed bytes; the answer is a typed 413. A real uvicorn
server on 127.0.0.1 shows that a 500 MB body, declared or streamed, does not grow the server process."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import BODY_CLASS
from engine.bootstrap import bootstrap
from engine.settings import Settings
from engine.workflow.xml import MAX_BYTES
from tests.api.conftest import FAST_HASHER, add_account, sign_in
from tests.api.test_errors_api import typed

ROOT = Path(__file__).resolve().parents[2]
E = "/api/v1/engine"
MB = 1024 * 1024
JSON_LIMIT = 1 * MB  # of the real server: what it may buffer of a JSON body before refusing it


def json_of_size(size: int) -> bytes:
    """A start command of exactly ``size`` bytes."""
    head, tail = b'{"key": "nope", "data": {"pad": "', b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.fixture
def small(db, clock) -> Iterator[tuple[FastAPI, TestClient]]:
    settings = Settings(database_url="sqlite://", max_json_body_bytes=2000, max_upload_body_bytes=5000)
    services = bootstrap(settings, clock=clock, migrate=False, engine=db)
    services.accounts.hasher = FAST_HASHER
    add_account(services, "designer-1", "designer")
    app = create_app(services=services)

    @app.post("/probe/upload", openapi_extra={BODY_CLASS: "upload"})
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    with TestClient(app, raise_server_exceptions=False) as client:
        sign_in(client, "designer-1")  # the engine routes are the designers'
        yield app, client


def test_each_body_class_has_its_limit(small: tuple[FastAPI, TestClient]) -> None:
    app, client = small
    headers = {"content-type": "application/json"}
    at_limit = client.post(f"{E}/instances", content=json_of_size(2000), headers=headers)
    assert at_limit.status_code == 404  # read and handled: no such definition
    over = typed(
        app, client.post(f"{E}/instances", content=json_of_size(2001), headers=headers), 413, "body_too_large"
    )
    assert over["detail"] == {"limit": 2000, "body_class": "json"}
    assert over["message"].startswith("请求体过大")

    # a BPMN document is bounded by the parser's document limit, not by the JSON one
    document = b'<?xml version="1.0"?><d>' + b" " * 10_000 + b"</d>"
    assert client.post(f"{E}/validate", content=document).status_code == 400  # parsed: not BPMN
    huge = b"<d>" + b" " * (MAX_BYTES - 7) + b"</d>"
    assert len(huge) == MAX_BYTES
    assert client.post(f"{E}/validate", content=huge).status_code != 413
    refused = typed(app, client.post(f"{E}/validate", content=huge + b" "), 413, "body_too_large")
    assert refused["detail"] == {"limit": MAX_BYTES, "body_class": "document"}
    typed(app, client.post(f"{E}/definitions", content=huge + b" "), 413, "body_too_large")

    assert client.post("/probe/upload", content=b"u" * 5000).json() == {"received": 5000}
    upload = typed(app, client.post("/probe/upload", content=b"u" * 5001), 413, "body_too_large")
    assert upload["detail"] == {"limit": 5000, "body_class": "upload"}


def test_a_streamed_body_without_content_length_is_counted(small: tuple[FastAPI, TestClient]) -> None:
    app, client = small

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 500):
            yield b"y" * 500

    ok = client.post("/probe/upload", content=chunks(5000))
    assert ok.json() == {"received": 5000}
    refused = client.post("/probe/upload", content=chunks(50_000), headers={"content-type": "text/plain"})
    assert "content-length" not in refused.request.headers  # really streamed (chunked)
    typed(app, refused, 413, "body_too_large")
    streamed = client.post(
        f"{E}/instances", content=chunks(10_000), headers={"content-type": "application/json"}
    )
    typed(app, streamed, 413, "body_too_large")


# ---------------------------------------------------------------- a real server
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """uvicorn serving ``create_app`` on a free 127.0.0.1 port (the socket is bound here, handed over)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's memory")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    db = tmp_path_factory.mktemp("server") / "onewindow.db"
    env = {
        **os.environ,
        "ONEWINDOW_DATABASE_URL": f"sqlite:///{db}",
        "ONEWINDOW_MAX_JSON_BODY_BYTES": str(JSON_LIMIT),
        "ONEWINDOW_SECRET_KEY": "test-secret-key-" + "k" * 32,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--fd", str(sock.fileno())]
    command += ["--http", "h11", "--log-level", "warning"]
    process = subprocess.Popen(command, pass_fds=[sock.fileno()], env=env, cwd=ROOT)
    sock.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start (exit {process.poll()})")
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def send_raw(port: int, head: bytes, body: Iterable[bytes]) -> tuple[int, dict[str, str], bytes, int]:
    """Send ``head`` then ``body`` from a thread while the answer is read here; returns the status, the
    headers, the body of the answer and how many body bytes were sent before the server stopped us."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sent = [0]
    stop = threading.Event()

    def sender() -> None:
        try:
            sock.sendall(head)
            for chunk in body:
                if stop.is_set():
                    return
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            return  # the server closed the connection: what it did not read is never read

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer, sent[0]
    finally:
        stop.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        thread.join(timeout=30)


def _chunked(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    data = b"z" * size
    for _ in range(total // size):
        yield b"%x\r\n" % size + data + b"\r\n"
    yield b"0\r\n\r\n"


def _plain(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    data = b"z" * size
    for _ in range(total // size):
        yield data


def _check_413(status: int, headers: dict[str, str], body: bytes, body_class: str) -> dict[str, Any]:
    import json

    assert status == 413 and headers["content-type"].startswith("application/json"), (status, body[:200])
    parsed = json.loads(body)
    assert parsed["code"] == "body_too_large" and parsed["detail"]["body_class"] == body_class
    assert headers["x-request-id"]
    return parsed


def test_a_500_mb_body_is_refused_without_the_server_growing(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = server
    warm = b"POST /api/v1/engine/instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    _check_413(*send_raw(port, warm + b"Content-Length: 99999999\r\n\r\n", [b"{}"])[:3], "json")
    before = _rss_kib(process.pid)

    # declared: 500 MB of BPMN; refused on the header, before a byte of the body is read
    head = b"POST /api/v1/engine/definitions HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n"
    status, headers, body, sent = send_raw(
        port, head + b"Content-Length: 524288000\r\n\r\n", _plain(500 * MB)
    )
    assert _check_413(status, headers, body, "document")["detail"]["limit"] == MAX_BYTES
    assert sent < 100 * MB  # the client was stopped long before it sent it all

    # streamed: chunked JSON without Content-Length, 500 MB offered; counted and refused past the limit
    head = warm + b"Transfer-Encoding: chunked\r\n\r\n"
    status, headers, body, sent = send_raw(port, head, _chunked(500 * MB))
    assert _check_413(status, headers, body, "json")["detail"]["limit"] == JSON_LIMIT
    assert sent < 100 * MB

    # a polite client asks first (Expect: 100-continue) and is refused before it sends anything
    polite = head.replace(b"Transfer-Encoding: chunked", b"Expect: 100-continue\r\nContent-Length: 524288000")
    status, headers, body, sent = send_raw(port, polite, [])
    assert _check_413(status, headers, body, "json") and sent == 0

    grown = _rss_kib(process.pid) - before
    assert grown < 5 * 1024, f"the server grew by {grown} KiB"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200  # and it still serves


def test_a_content_length_that_is_no_number_is_refused(small: tuple[FastAPI, TestClient]) -> None:
    """Straight through the ASGI interface: HTTP clients (and h11) will not send such a header."""
    import asyncio
    import json

    app, _client = small
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{E}/instances",
        "raw_path": b"/api/v1/engine/instances",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-length", b"12x"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["status"] == 400 and json.loads(body)["code"] == "bad_content_length"
    assert any(name == b"x-request-id" for name, _value in start["headers"])


def test_a_body_that_does_not_arrive_in_time_is_refused_and_the_connection_closed(db, clock) -> None:
    """A client sending a byte now and then (or nothing after the headers) held its connection, its task
    and what it had sent for as long as it liked; anonymous too, since the body is read before the
    caller is known."""
    import anyio

    settings = Settings(database_url="sqlite://", body_read_seconds=0.3)
    app = create_app(services=bootstrap(settings, clock=clock, migrate=False, engine=db))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/login",
        "raw_path": b"/api/v1/auth/login",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": b'{"username"', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await anyio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> float:
        started = time.monotonic()
        with anyio.fail_after(10):
            await app(scope, receive, send)
        return time.monotonic() - started

    took = anyio.run(run)
    assert 0.3 <= took < 5, took
    start = sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 408
    assert (b"connection", b"close") in [(k.lower(), v) for k, v in start["headers"]]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    import json

    answer = json.loads(body)
    assert answer["code"] == "body_timeout" and answer["message"]
    assert answer["detail"] == {"limit_seconds": 0.3, "received": 11}
