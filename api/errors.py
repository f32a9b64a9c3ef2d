"""One handler maps the engine's typed errors to HTTP: ``{code, message, detail}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.errors import OneWindowError


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OneWindowError)
    async def _onewindow_error(_request: Request, exc: OneWindowError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content=exc.to_dict())
