"""The pages (Simplified Chinese, server-rendered Jinja2, a little JavaScript) for the four kinds of users.

Each page module builds its page from the same ``/api/v1`` route functions its user's browser may call, in
process, with the same caller: a page shows only what that user's API answers. Every write a page offers
is a ``fetch`` from the browser to ``/api/v1`` (``static/ow.js``, with the CSRF secret), so the API's role
checks, schemas and rules decide it. Front-end packages (bpmn-js, Chart.js) come from npm
(``api/pages/package.json``, installed by the set-up command) and are served from ``/static/vendor/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"
VENDOR = {"bpmn-js": NODE_MODULES / "bpmn-js" / "dist", "chart.js": NODE_MODULES / "chart.js" / "dist"}

log = logging.getLogger("onewindow.pages")


class Static(StaticFiles):
    """Static files a browser must take for what their type says (``nosniff``)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_pages(app: FastAPI) -> None:
    """Mount the static files and include every page router."""
    from api.pages import applicant, designer, officer, public, supervisor

    for name, folder in VENDOR.items():
        if folder.is_dir():
            app.mount(f"/static/vendor/{name}", Static(directory=folder), name=f"vendor-{name}")
        else:
            log.warning("front-end package %s is not installed (npm ci --prefix api/pages)", name)
    app.mount("/static", Static(directory=HERE / "static"), name="static")
    for module in (public, applicant, officer, designer, supervisor):
        app.include_router(module.router)
