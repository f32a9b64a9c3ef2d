"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from engine.bootstrap import Services, bootstrap
from engine.settings import Settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; the database and services are made here, not at import time."""
    services = services or bootstrap(settings or Settings())
    app = FastAPI(
        title="onewindow 一窗受理审批编排引擎",
        version="0.1.0",
        description=(
            "一窗受理审批编排引擎：BPMN 流程由 SpiffWorkflow 执行，办件、时限与电子证照持久化在数据库中。"
            "错误以 JSON 返回 {code, message, detail}：code 为稳定的英文代码，message 为中文说明。\n\n"
            "BPMN-driven approval orchestration for one-window government service. Errors are "
            "{code, message, detail} with a stable English code and a Chinese message."
        ),
    )
    app.state.services = services
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        from sqlalchemy import text

        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": services.engine.dialect.name}

    from api.routes_engine import router as engine_router

    app.include_router(engine_router)
    return app
