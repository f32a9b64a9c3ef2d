"""Pages of the designers: the deployed models and their versions, one model's diagram, the web modeler.

Each page is built from the ``/api/v1/designer`` route functions, called in process with the caller
(``api.routes.designer``): the models and their versions, a version's BPMN, the departments, form keys and
clock kinds the modeler's side panel offers. Validating and deploying go from the browser to the same API
(``static/modeler.js``), with the modeler's XML as the request body.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from api.pages.guard import DesignerPage
from api.pages.render import render
from api.pages.route import PageRoute
from api.routes.designer import clock_kinds, departments, form_keys, models, one_model, one_version
from engine.accounts.principal import Principal
from engine.workflow import MAX_DEADLINE_DAYS, MAX_DEADLINE_HOURS

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HERE = Path(__file__).parent
DESCRIPTOR = HERE / "static" / "ow-moddle.json"
NEW_MODEL = HERE / "templates" / "designer" / "new_model.bpmn"

Key = Annotated[str, PathParam(min_length=1, max_length=200)]
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
ModelKey = Annotated[str | None, Query(min_length=1, max_length=200)]

SPECIAL_GROUPS: tuple[dict[str, str], ...] = (
    {"code": "window", "name": "综合窗口"},
    {"code": "applicant", "name": "申请人"},
    {"code": "supervisor", "name": "督办人员"},
)
"""Groups that are no department but that the engine routes tasks to (``engine/assignment.py``)."""


@cache
def moddle_descriptor() -> dict[str, Any]:
    """The moddle extension of our namespace (``ow:``) that the modeler registers."""
    return dict(json.loads(DESCRIPTOR.read_text(encoding="utf-8")))


def new_model_xml() -> tuple[str, str]:
    """A minimal model (start, one user task, end) under a fresh process key: ``(key, xml)``."""
    key = f"process_{secrets.token_hex(3)}"
    return key, NEW_MODEL.read_text(encoding="utf-8").replace("{{KEY}}", key)


@router.get("/designer/models")
def models_page(request: Request, caller: DesignerPage) -> HTMLResponse:
    found = models(request, caller)
    return render(request, "designer/models.html", caller, models=found)


@router.get("/designer/models/{key}")
def model_page(request: Request, caller: DesignerPage, key: Key, version: Version = None) -> HTMLResponse:
    found = one_model(request, caller, key)
    chosen = one_version(request, caller, key, version or found.latest_version)
    return render(request, "designer/model.html", caller, model=found, chosen=chosen)


def _modeler_sources(request: Request, caller: Principal) -> dict[str, Any]:
    return {
        "departments": [d.model_dump() for d in departments(request, caller)],
        "specialGroups": list(SPECIAL_GROUPS),
        "forms": [{"key": f.key, "title": f.title} for f in form_keys(request, caller)],
        "clockKinds": [k.model_dump() for k in clock_kinds(caller)],
        # what the parser accepts (engine/workflow/parser.py): the panel refuses anything else as it is typed
        "deadlineLimits": {"days": MAX_DEADLINE_DAYS, "hours": MAX_DEADLINE_HOURS},
    }


def _document(request: Request, caller: Principal, key: str | None, version: int | None) -> dict[str, Any]:
    if key is None:
        new_key, xml = new_model_xml()
        return {"xml": xml, "key": new_key, "version": None, "filename": f"{new_key}.bpmn", "isNew": True}
    found = one_model(request, caller, key)
    chosen = one_version(request, caller, key, version or found.latest_version)
    return {
        "xml": chosen.bpmn,
        "key": chosen.key,
        "version": chosen.version,
        "latestVersion": found.latest_version,
        "name": chosen.name,
        "filename": chosen.filename or f"{chosen.key}.bpmn",
        "isNew": False,
    }


@router.get("/designer/modeler")
def modeler_page(
    request: Request, caller: DesignerPage, model: ModelKey = None, version: Version = None
) -> HTMLResponse:
    document = _document(request, caller, model, version)
    data = {**_modeler_sources(request, caller), "document": document, "descriptor": moddle_descriptor()}
    return render(request, "designer/modeler.html", caller, document=document, modeler_data=data)
