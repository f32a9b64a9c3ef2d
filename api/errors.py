"""One place maps every error to HTTP: a JSON body ``{code, message, detail}`` (:class:`ErrorBody`), always.

* ``OneWindowError`` -> its ``http_status`` and ``to_dict()`` (400/403/404/409/422/503); ``Internal``
  (a bug the engine caught, see ``engine.error_mapping``) -> the 500 answer below.
* FastAPI's ``RequestValidationError`` (a body or parameter that does not fit the schema, JSON that does
  not parse) -> 422 ``invalid_request`` with ``detail.errors = [{field, location, code, message}]``.
* Starlette's ``HTTPException`` (unknown route, wrong method, unparsable body) -> its status, typed.
* Anything else is a bug: :class:`CorrelationMiddleware` (and, for what escapes it, the ``Exception``
  handler that Starlette's ``ServerErrorMiddleware`` calls) logs it with its traceback and a correlation
  id and answers 500 ``{code: "internal", message: "服务器内部错误…", detail: {correlation_id}}``.

Every response carries the request's correlation id in ``X-Request-ID`` (a safe id the client sent in
``X-Request-ID`` or ``X-Correlation-ID`` is kept, otherwise one is made). :data:`ERROR_RESPONSES` documents
the error bodies in OpenAPI, so a generated client expects what the server sends.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.error_mapping import as_onewindow_error
from engine.errors import Internal, OneWindowError, Unavailable

__all__ = [
    "CORRELATION_HEADER",
    "ERROR_RESPONSES",
    "CorrelationMiddleware",
    "ErrorBody",
    "FieldProblem",
    "correlation_id",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger("onewindow.api")

CORRELATION_HEADER = "X-Request-ID"
_CLIENT_HEADERS = ("x-request-id", "x-correlation-id")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
INTERNAL_MESSAGE = "服务器内部错误，请稍后重试；如问题持续，请向管理员提供关联编号"


class FieldProblem(BaseModel):
    """One field that broke the request schema (``detail.errors`` of ``invalid_request``)."""

    field: str | None = Field(description="出错的字段（点分路径，如 data.amount）")
    location: str | None = Field(default=None, description="body / query / path / header")
    code: str = Field(description="稳定的英文代码（pydantic 错误类型，如 missing）")
    message: str = Field(description="中文说明")
    reason: str | None = Field(
        default=None, description="校验器的英文原文（供开发者参考，仅在没有中文说明对应时给出）"
    )


class ErrorBody(BaseModel):
    """Every error the API answers: a stable English ``code``, a Chinese ``message``, the context."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "task_not_ready",
                    "message": "任务已不在待办状态",
                    "detail": {"task_id": "0b6c6c55-6f1f-4bd3-8d0c-3f7f7d0f6a55"},
                },
                {"code": "internal", "message": INTERNAL_MESSAGE, "detail": {"correlation_id": "7f0c…"}},
            ]
        },
    )

    code: str = Field(description="稳定的英文错误代码，供客户端与日志使用（如 not_found、invalid_request）")
    message: str = Field(description="给办事人员看的中文说明")
    detail: dict[str, Any] = Field(
        description=(
            "上下文：case、task_id、element_id、field、line、problems（模型问题）、errors（字段问题，"
            "invalid_request 时为 FieldProblem 列表）、limit（请求体上限）、correlation_id（500 时）"
        )
    )


_HEADERS_DOC = {
    CORRELATION_HEADER: {"description": "关联编号（日志中可据此查找）", "schema": {"type": "string"}}
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description, "headers": _HEADERS_DOC}
    for status, description in {
        400: "请求无法处理：文档不安全（unsafe_document…）、请求体无法解析（bad_request）",
        401: "未登录或登录已失效（unauthenticated、session_expired、bad_token、bad_credentials）",
        403: "无权执行该操作（forbidden_role、csrf_failed…）",
        404: "对象或接口不存在（not_found、task_not_found、route_not_found…）",
        409: "与当前状态冲突：并发修改、任务已办理、数据重复（conflict、duplicate…）",
        413: "请求体超过该类接口的上限（body_too_large，detail.limit 为字节数）",
        422: "请求不符合接口定义（invalid_request）或违反业务规则（invalid_input、invalid_model…）",
        429: "登录失败次数过多，稍后再试（too_many_attempts，Retry-After 为秒数）",
        500: "服务器内部错误（internal，detail.correlation_id）",
        503: "数据库暂时不可用，请稍后重试（database_unavailable）",
    }.items()
}
"""The error responses of every route (``responses=`` of the app): each one an :class:`ErrorBody`."""


# ------------------------------------------------------------------ bodies
def _render(content: Mapping[str, Any]) -> bytes:
    """The JSON of an error body; a ``detail`` that cannot be JSON is left out rather than failing. One
    that quotes the caller's lone surrogate (no UTF-8 for it) is written with ASCII escapes (``\\ud800``)."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = json.dumps({"code": content["code"], "message": content["message"], "detail": {}})
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(json.loads(text), separators=(",", ":")).encode("ascii")


def error_response(
    status: int, code: str, message: str, detail: Mapping[str, Any] | None = None, **headers: str
) -> Response:
    """A typed error answer (``application/json``), the only shape of error this API sends."""
    body = {"code": code, "message": message, "detail": dict(detail or {})}
    return Response(_render(body), status_code=status, media_type="application/json", headers=headers or None)


def correlation_id(scope_or_request: Scope | Request) -> str:
    """The correlation id of the request (set by :class:`CorrelationMiddleware`; made here if missing)."""
    scope = scope_or_request.scope if isinstance(scope_or_request, Request) else scope_or_request
    state = scope.setdefault("state", {})
    cid = state.get("correlation_id")
    if not cid:
        sent = Headers(scope=scope)
        offered = [sent.get(h, "") for h in _CLIENT_HEADERS]
        cid = next((v for v in offered if _SAFE_ID.match(v)), "") or uuid.uuid4().hex
        state["correlation_id"] = cid
    return str(cid)


def internal_response(scope: Scope, exc: BaseException) -> Response:
    """The answer to a bug: logged with its traceback and the correlation id, which the body carries."""
    cid = correlation_id(scope)
    log.error(
        "internal error [%s] %s %s: %s",
        cid,
        scope.get("method"),
        scope.get("path"),
        type(exc).__name__,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        500, "internal", INTERNAL_MESSAGE, {"correlation_id": cid}, **{CORRELATION_HEADER: cid}
    )


def typed_response(scope: Scope, exc: BaseException) -> Response:
    """The answer to any exception. A ``OneWindowError`` by its class; anything else reached the API
    outside a command (a read, rendering): an unavailable database (``engine.error_mapping``) is 503, the
    rest a bug (a value the encoder cannot render here is the server's fault, not the caller's)."""
    typed: OneWindowError | None = exc if isinstance(exc, OneWindowError) else None
    if typed is None and isinstance(mapped := as_onewindow_error(exc), Unavailable):
        typed = mapped
    if typed is None or isinstance(typed, Internal):
        return internal_response(scope, exc)
    headers = {CORRELATION_HEADER: correlation_id(scope)}
    if isinstance(typed, Unavailable):
        log.warning("unavailable [%s]: %s", headers[CORRELATION_HEADER], typed)
        headers["Retry-After"] = "1"
    retry = typed.detail.get("retry_after_seconds")
    if typed.http_status == 429 and isinstance(retry, int) and not isinstance(retry, bool) and retry > 0:
        headers["Retry-After"] = str(retry)  # too many sign-in attempts: when to try again
    return error_response(typed.http_status, typed.code, typed.message, typed.detail, **headers)


# ------------------------------------------------------------------ schema errors
_PYDANTIC_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不接受该字段",
    "json_invalid": "不是有效的 JSON",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "list_type": "应为数组",
    "string_type": "应为字符串",
    "bytes_type": "应为字节串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为布尔值",
    "bool_parsing": "应为布尔值",
    "string_too_long": "过长（最多 {max_length} 个字符）",
    "string_too_short": "不能为空或过短（至少 {min_length} 个字符）",
    "too_long": "项目过多（最多 {max_length} 项）",
    "too_short": "项目过少（至少 {min_length} 项）",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "greater_than_equal": "取值过小（不能小于 {ge}）",
    "greater_than": "取值过小（须大于 {gt}）",
    "less_than_equal": "取值过大（不能大于 {le}）",
    "less_than": "取值过大（须小于 {lt}）",
    "datetime_parsing": "应为日期时间",
    "date_parsing": "应为日期",
    "duplicate_key": "同一对象中重复出现（每个字段只能出现一次）",
}
_PYDANTIC_FAMILIES = (  # the other error types, by how their names begin (pydantic has many of each)
    ("datetime", "应为有效的日期时间"),
    ("date", "应为有效的日期（YYYY-MM-DD）"),
    ("time", "应为有效的时间"),
    ("timezone", "时间须带时区"),
    ("int", "应为整数"),
    ("float", "应为数字"),
    ("decimal", "应为数字"),
    ("bool", "应为布尔值"),
    ("string", "字符串不符合要求"),
    ("uuid", "应为 UUID"),
    ("url", "应为网址"),
    ("enum", "取值不在允许范围内"),
    ("literal", "取值不在允许范围内"),
    ("greater", "取值过小"),
    ("less", "取值过大"),
)


_PLACEHOLDER = re.compile(r"（[^（）{]*\{\w+\}[^（）]*）| ?\{\w+\}")


def _pydantic_message(kind: str, context: Any = None) -> str:
    """The Chinese message of a pydantic error type (its English text stays in ``reason``), with the
    values its context names (``{max_length}``...) filled in."""
    known = _PYDANTIC_MESSAGES.get(kind)
    if known is not None:
        try:
            return known.format_map(context) if isinstance(context, dict) else known.format_map({})
        except (KeyError, ValueError, IndexError):  # without its value, the words around it go too
            return _PLACEHOLDER.sub("", known)
    return next((text for prefix, text in _PYDANTIC_FAMILIES if kind.startswith(prefix)), "不符合要求")


def field_problems(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each problem of a schema error: its field (dotted path), location, pydantic code, Chinese message."""
    problems = []
    for error in exc.errors()[:50]:
        loc = [str(part) for part in error.get("loc", ())]
        kind = str(error.get("type", "invalid"))
        field = ".".join(loc[1:]) if len(loc) > 1 else None
        location = loc[0] if loc else None
        message = _pydantic_message(kind, error.get("ctx"))
        problem = {"field": field, "location": location, "code": kind, "message": message}
        if kind not in _PYDANTIC_MESSAGES:  # for a developer: what pydantic said, in English
            problem["reason"] = str(error.get("msg", ""))[:200]
        problems.append(problem)
    return problems


# ------------------------------------------------------------------ handlers
def _wants_page(request: Request) -> bool:
    """A browser asking for a page (not an API or static path): it gets the HTML 404 page."""
    path = request.url.path
    if path.startswith(("/api/", "/static/")) or path in ("/api", "/healthz", "/docs", "/openapi.json"):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; :class:`CorrelationMiddleware` is added by ``create_app``."""

    async def onewindow_error(request: Request, exc: Exception) -> Response:
        return typed_response(request.scope, exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = field_problems(exc)
        first = problems[0] if problems else {"field": None, "message": "不符合要求"}
        where = f"{first['field']}：" if first["field"] else ""
        more = f"等 {len(problems)} 处问题" if len(problems) > 1 else ""
        return error_response(
            422,
            "invalid_request",
            f"请求不符合接口定义：{where}{first['message']}{more}",
            {"errors": problems},
            **{CORRELATION_HEADER: correlation_id(request)},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        code, message = {
            400: ("bad_request", "请求体无法解析"),
            404: ("route_not_found", f"接口不存在：{request.url.path}"),
            405: ("method_not_allowed", f"该接口不支持 {request.method} 方法"),
            413: ("body_too_large", "请求体过大"),
        }.get(status, (f"http_{status}", str(exc.detail)[:200]))
        headers = {**(exc.headers or {}), CORRELATION_HEADER: correlation_id(request)}
        if status in (404, 405) and _wants_page(request):
            from api.pages.route import error_page

            if status == 404:
                return error_page(request, 404, "page_not_found", f"页面不存在：{request.url.path}")
            # a form the browser sent itself (its page's script not loaded yet, or off): a page, not JSON
            page = error_page(
                request,
                405,
                "method_not_allowed",
                "该页面不能这样提交：页面尚未加载完成或脚本未运行，请刷新页面后重试",
            )
            page.headers.update(headers)
            return page
        return error_response(status, code, message, {}, **headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return typed_response(request.scope, exc)

    app.add_exception_handler(OneWindowError, onewindow_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)  # Starlette's ServerErrorMiddleware calls this one


class CorrelationMiddleware:
    """Outermost of our middleware: gives every request a correlation id (kept from a safe client header),
    echoes it in ``X-Request-ID`` and answers any exception that reaches it with a typed JSON body
    (dependencies, other middleware and bugs included), logging bugs with their traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = correlation_id(scope)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                if CORRELATION_HEADER not in headers:
                    headers[CORRELATION_HEADER] = cid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:  # the answer is on its way: nothing to replace; the server logs and closes
                raise
            await typed_response(scope, exc)(scope, receive, send_with_id)
