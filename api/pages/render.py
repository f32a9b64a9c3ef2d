"""Render a page: the Jinja2 templates under ``templates/``, the header (who is signed in, their links).

Every page extends ``base.html``. Autoescape is on for every template, so data (applicant names, opinions,
model names) is text, never markup; data a script needs goes through ``|tojson`` into a
``<script type="application/json">`` block, which escapes ``<``, ``>`` and ``&``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth import services
from api.pages.nav import home_of, links_for
from engine.accounts.principal import ROLE_LABELS, Principal
from engine.time.calendar import SHANGHAI

# scripts only from our own files (no inline script, no eval); bpmn-js and Chart.js set inline styles and
# bpmn-js's icon font is a data: URL; nothing may frame a page or post a form elsewhere
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC instant as Beijing time (the pages' clock); empty for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.strftime(fmt)
    return value.astimezone(SHANGHAI).strftime(fmt)


def local_day(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return local_time(value, "%Y-%m-%d")
    if isinstance(value, str):
        return value[:10]
    return value.isoformat()


TEMPLATES.env.filters["local_time"] = local_time
TEMPLATES.env.filters["local_day"] = local_day


def department_names(request: Request, codes: frozenset[str] | list[str]) -> list[str]:
    departments = services(request).catalogue.departments
    return [departments[c].name if c in departments else c for c in sorted(codes)]


def render(
    request: Request,
    template: str,
    caller: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` for ``caller`` (None: not signed in), with the header's context."""
    header = {
        "caller": caller,
        "role_label": ROLE_LABELS[caller.role] if caller else None,
        "caller_departments": department_names(request, caller.departments) if caller else [],
        "links": links_for(caller),
        "home": home_of(caller),
        "current_path": request.url.path,
    }
    response = TEMPLATES.TemplateResponse(request, template, {**header, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
