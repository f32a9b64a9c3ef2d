"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ERROR_RESPONSES, CorrelationMiddleware, install_error_handlers
from api.limits import BodyLimitMiddleware, body_limits
from engine.bootstrap import Services, bootstrap
from engine.settings import Settings


class NoStoreMiddleware:
    """Every ``/api/`` answer is the caller's own (their cases, tasks, session, a check code's case): it
    is ``Cache-Control: no-store`` unless the route set its own, so no browser or proxy keeps a copy for
    the next person at that computer (the pages set the same header when they render)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; the database and services are made here, not at import time.

    Without ``services`` this is the application factory every process of ``onewindow serve --workers N``
    runs (``uvicorn --factory api.app:create_app``): settings from the environment (``ONEWINDOW_*``), and
    a start without demo mode and without ``ONEWINDOW_SECRET_KEY`` is refused (``SystemExit``, with the
    reason) before the database is touched."""
    if services is None:
        settings = settings or Settings()
        settings.require_secret()
        services = bootstrap(settings)
    app = FastAPI(
        title="onewindow 一窗受理审批编排引擎",
        version="0.1.0",
        description=(
            "一窗受理审批编排引擎：BPMN 流程由 SpiffWorkflow 执行，办件、时限与电子证照持久化在数据库中。"
            "错误以 JSON 返回 {code, message, detail}（ErrorBody）：code 为稳定的英文代码，"
            "message 为中文说明；每个响应带关联编号 X-Request-ID（客户端可自带）；"
            "请求体按接口类别限长（413）。\n\n"
            "BPMN-driven approval orchestration for one-window government service. Errors are "
            "{code, message, detail} (ErrorBody) with a stable English code and a Chinese message; every "
            "response carries its correlation id in X-Request-ID; request bodies are limited per route class."
        ),
        responses=ERROR_RESPONSES,  # every route documents the ErrorBody it may answer with
    )
    app.state.services = services
    install_error_handlers(app)
    # added inner first: the correlation id wraps everything, the body limits everything but it; the
    # cache rule wraps them all, so that the correlation middleware's own answers carry it too
    app.add_middleware(
        BodyLimitMiddleware,
        limits=body_limits(services.settings),
        read_seconds=services.settings.body_read_seconds,
    )
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(NoStoreMiddleware)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        from sqlalchemy import text

        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": services.engine.dialect.name}

    from api.pages import install_pages
    from api.routes import v1

    app.include_router(v1)
    install_pages(app)
    return app
