"""Request bodies are limited before they are read into memory (DESIGN, "Untrusted input": a size limit
before reading).

Every route belongs to a body class, named in its ``openapi_extra`` under :data:`BODY_CLASS` (so the
OpenAPI document shows it too); a route that names none is ``json``:

* ``document``: a BPMN/XML document; bounded by the hardened parser's document limit
  (``engine.workflow.xml.MAX_BYTES``; ``Settings.max_document_body_bytes`` may only lower it);
* ``json``: a JSON command (``Settings.max_json_body_bytes``);
* ``upload``: a file upload (``Settings.max_upload_body_bytes``).

:class:`BodyLimitMiddleware` refuses a declared ``Content-Length`` over the limit when the application
first asks for the body, without reading a byte of it, and counts the bytes of every body as the
application reads them (chunked bodies without a ``Content-Length`` too), refusing as soon as the count
passes the limit. Either way the answer is
``413 {code: "body_too_large", message, detail: {limit, body_class}}`` with ``Connection: close``. The rest
of the body is never stored: a client still sending would see the connection reset (the kernel discards
an answer not yet delivered when a socket with unread data closes), so after the answer the middleware
discards what keeps arriving for at most ``LINGER_SECONDS`` / ``LINGER_BYTES`` (a bounded "lingering
close", as web servers do), then ends the response. A client that sent ``Expect: 100-continue`` never
sends the body at all. A ``Content-Length`` that is not a number is ``400 bad_content_length``.

Starlette/FastAPI have a ``max_body_size`` of their own, but it answers in plain text and only once the
route is running; this middleware keeps the one error shape of the API.

A body that has not arrived in full ``Settings.body_read_seconds`` after the application first asked for it
is ``408 {code: "body_timeout", ...}`` with ``Connection: close``: a client sending a byte now and then
held its connection, its task and what it had sent for as long as it liked.

A JSON body that passed is parsed strictly (:class:`StrictJSONRoute`): ``NaN``/``Infinity`` (which Python's
parser accepts but no database JSON type stores and no response can render) and nesting too deep for the
parser are ``422 invalid_request`` like any other JSON that does not parse. A key twice in one object
(``{"decision": "approve", "decision": "deny"}``, which parsers read differently: Python keeps the last,
others the first) is ``422 invalid_request`` with the problem ``duplicate_key`` on that key's path, as a
multipart form field sent twice is ``repeated_form_field``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal

import anyio
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from engine.settings import Settings

__all__ = ["BODY_CLASS", "BodyClass", "BodyLimitMiddleware", "StrictJSONRoute", "body_limits"]

BODY_CLASS = "x-onewindow-body-class"
BodyClass = Literal["document", "json", "upload"]
DEFAULT_CLASS: BodyClass = "json"
LINGER_SECONDS = 0.5  # after a 413: how long the rest of a body still arriving is discarded, at most
LINGER_BYTES = 8 * 1024 * 1024  # and how much of it


def body_limits(settings: Settings) -> dict[str, int]:
    """The byte limit of each body class under ``settings``."""
    from engine.workflow.xml import MAX_BYTES

    document = settings.max_document_body_bytes
    return {
        "document": MAX_BYTES if document is None else min(document, MAX_BYTES),
        "json": settings.max_json_body_bytes,
        "upload": settings.max_upload_body_bytes,
    }


def _class_of(route: Any) -> str:
    extra = getattr(route, "openapi_extra", None) or {}
    value = extra.get(BODY_CLASS, DEFAULT_CLASS)
    return value if isinstance(value, str) else DEFAULT_CLASS


class _TooLarge(Exception):
    """Raised into the application when its body passes the limit (or its time); never leaves the
    middleware."""


class BodyLimitMiddleware:
    """Bounds each request body by the class of the route it is for (see the module docstring).

    The route is known once the router has matched (it puts it in ``scope["route"]``), which is before the
    application asks for the first byte of the body: that first ``receive`` decides the limit and refuses
    a declared ``Content-Length`` over it without reading anything."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int], read_seconds: float = 60.0) -> None:
        self.app = app
        self.limits = dict(limits)
        self.read_seconds = read_seconds

    def body_class(self, scope: Scope) -> str:
        """The body class of the route the router matched for ``scope`` (``json`` when none)."""
        kind = _class_of(scope.get("route"))
        return kind if kind in self.limits else DEFAULT_CLASS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not declared.strip().isdigit():
            refusal = error_response(
                400, "bad_content_length", "Content-Length 不是有效的字节数", {}, Connection="close"
            )
            await refusal(scope, receive, send)
            return
        kind = DEFAULT_CLASS
        limit: int | None = None
        received = 0
        too_large = False
        complete = declared == "0"  # the whole body has arrived
        started = False
        too_slow = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal kind, limit, received, too_large, complete, too_slow, deadline
            if limit is None:  # the first read: the router has matched by now
                kind = self.body_class(scope)
                limit = self.limits[kind]
                if declared is not None and int(declared) > limit:
                    too_large = True
            if too_large or too_slow:
                raise _TooLarge
            if complete:  # the body is in: what is awaited now is the client going away
                message = await receive()
            else:
                if deadline is None:
                    deadline = anyio.current_time() + self.read_seconds
                arrived: Message | None = None
                with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
                    arrived = await receive()
                if arrived is None:
                    too_slow = True
                    raise _TooLarge
                message = arrived
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    too_large = True
                    raise _TooLarge
            else:
                complete = True  # disconnected: nothing more will come
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large or too_slow:  # its answer to a body it could not read: ours replaces it
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not (too_large or too_slow):
                raise  # (FastAPI turns a failing body read into a 400 of its own; that is swallowed above)
        if too_slow and not started:
            refusal = error_response(
                408,
                "body_timeout",
                f"请求体未在 {self.read_seconds:g} 秒内传完，连接已关闭",
                {"limit_seconds": self.read_seconds, "received": received},
                Connection="close",
            )
            await refusal(scope, receive, send)
        elif too_large and not started:
            expects_continue = Headers(scope=scope).get("expect", "").lower() == "100-continue"
            linger = not complete and not (expects_continue and received == 0)
            await self._refuse(receive, send, kind, limit or 0, linger)

    @staticmethod
    async def _refuse(receive: Receive, send: Send, kind: str, limit: int, linger: bool) -> None:
        refusal = error_response(
            413,
            "body_too_large",
            f"请求体过大：此类接口（{kind}）最多接受 {limit} 字节",
            {"limit": limit, "body_class": kind},
            Connection="close",
        )
        await send({"type": "http.response.start", "status": 413, "headers": refusal.raw_headers})
        await send({"type": "http.response.body", "body": refusal.body, "more_body": linger})
        if not linger:
            return
        discarded = 0  # the answer is on its way; what still arrives is dropped, not kept
        with anyio.move_on_after(LINGER_SECONDS):
            while discarded < LINGER_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    break
                discarded += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} 不是 JSON 的取值", name, 0)


def _path_to(root: Any, target: object) -> list[str | int] | None:
    """The path from ``root`` to the object ``target`` (walked without recursion)."""
    pending: list[tuple[Any, list[str | int]]] = [(root, [])]
    while pending:
        node, path = pending.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            pending.extend((value, [*path, key]) for key, value in node.items())
        elif isinstance(node, list):
            pending.extend((value, [*path, index]) for index, value in enumerate(node))
    return None


class StrictJSONRequest(Request):
    """A request whose JSON refuses ``NaN``/``Infinity``, nesting too deep to parse and a key repeated in
    one object (as invalid JSON; the repeated key's path is kept in ``repeated_key``)."""

    repeated_key: list[str | int] | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            repeated: list[tuple[str, dict[str, Any]]] = []  # the first key seen twice, and its object

            def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
                made: dict[str, Any] = {}
                for key, value in items:
                    if key in made and not repeated:
                        repeated.append((key, made))
                    made[key] = value
                return made

            try:
                parsed = json.loads(body, parse_constant=_no_constant, object_pairs_hook=pairs)
            except RecursionError:
                raise json.JSONDecodeError("JSON 嵌套过深", "", 0) from None
            if repeated:
                key, holder = repeated[0]
                self.repeated_key = [*(_path_to(parsed, holder) or []), key]
                raise json.JSONDecodeError(f"键 {key} 重复", "", 0)
            self._json = parsed
        return self._json


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route declares: its own and its dependencies'."""
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        names.update(p.alias for p in current.query_params)
        todo.extend(current.dependencies)
    return frozenset(names)


class StrictJSONRoute(APIRoute):
    """The route class of the API: its handlers see a :class:`StrictJSONRequest`, and a query parameter
    the route does not declare is refused as an undeclared body field is (``422 invalid_request``, the
    error ``extra_forbidden`` naming it): a misspelt filter or sort (``?sort_by=due``) would otherwise be
    dropped without a word and the answer read as filtered or sorted."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = _query_names(self.dependant)

        async def strict(request: Request) -> Response:
            undeclared = sorted(set(request.query_params) - declared)
            if undeclared:
                raise RequestValidationError(
                    [
                        {
                            "type": "extra_forbidden",
                            "loc": ("query", name),
                            "msg": "Extra inputs are not permitted",
                        }
                        for name in undeclared
                    ]
                )
            strict_request = StrictJSONRequest(request.scope, request.receive)
            try:
                return await handler(strict_request)
            except RequestValidationError as exc:
                if strict_request.repeated_key is None:
                    raise
                problem = {
                    "type": "duplicate_key",
                    "loc": ("body", *strict_request.repeated_key),
                    "msg": "a key appears twice in one JSON object",
                    "input": None,
                }
                raise RequestValidationError([problem]) from exc

        return strict
