"""Pages of the applicants and of everyone: the service catalogue and guides, applying, my cases, tracking.

* ``/guide``, ``/guide/{code}``: the catalogue (事项目录) and one item's service guide (办事指南), for
  anybody; an applicant (or a visitor, who signs in on the way) picks one item or several (点餐式) to
  apply for.
* ``/apply``: without ``items`` the catalogue with checkboxes; with them the merged application form
  (一表申请) pre-filled from the applicant's licences, each filled field with its source, and the materials
  of the chosen items with a file control each. The browser submits to ``POST /api/v1/applicant/cases``
  (with an ``Idempotency-Key`` made here, kept in the page) and then uploads the files to the new case.
* ``/my/cases``, ``/my/cases/{case}``: the applicant's cases; one case's steps, deadlines, missing
  materials, supplement, commitment letter, rating and withdrawal.
* ``/track``: tracking by case number and check code for anybody; the browser posts the pair to
  ``POST /api/v1/public/track`` so that the check code never stands in a URL.

Every page is built from the ``/api/v1`` route functions its user's browser may call, with the same caller.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api.auth import services
from api.limits import body_limits
from api.pages.guard import ApplicantPage, MaybeVisitor
from api.pages.render import render
from api.pages.route import PageRoute
from api.routes.applicant import (
    ApplicationFormOut,
    CaseDetailOut,
    ProvenanceOut,
    application_form,
    get_case,
    list_my_cases,
)
from api.routes.public import ClockOut, ItemSummaryOut, list_items, service_guide
from engine.accounts.principal import Principal
from engine.cases.applicant_tasks import COMMITMENT_FORM, SUPPLEMENT_FORM
from engine.cases.files import ALLOWED_TYPES
from engine.cases.materials import takes_no_supplies
from engine.cases.rating import MAX_COMMENT, RATINGS
from engine.cases.status import CLOSED, WITHDRAWABLE
from engine.time.calendar import SHANGHAI

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
MULTIPART_ROOM = 16 * 1024
"""Bytes of a multipart upload body that are not the file (boundaries, headers, the material code)."""
STATUS_BADGES: dict[str, str] = {
    "submitted": "badge-info",
    "accepted": "badge-info",
    "under_review": "badge-info",
    "special_procedure": "badge-yellow",
    "supplement_requested": "badge-yellow",
    "approved": "badge-normal",
    "finished": "badge-normal",
    "delivered": "badge-normal",
    "refused": "badge-red",
    "denied": "badge-red",
    "returned": "badge-red",
    "terminated": "badge-red",
    "withdrawn": "badge-muted",
}
CLOCK_BADGES = {
    "normal": "badge-normal",
    "yellow": "badge-yellow",
    "red": "badge-red",
    "stopped": "badge-muted",
}
CLOCK_LABELS = {"normal": "正常", "yellow": "黄牌预警", "red": "红牌超期", "stopped": "已停止"}

ItemCodes = Annotated[list[str], Query(max_length=20)]
CaseNumber = Annotated[str, Path(max_length=20)]


# ------------------------------------------------------------------ deadlines as people read them
def deadline_day(due_at: str | datetime | None) -> str:
    """The last day of a deadline in Beijing time: a deadline at 00:00 ends with the day before."""
    if not due_at:
        return ""
    moment = datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at
    local = moment.astimezone(SHANGHAI)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        local -= timedelta(days=1)
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M")


def _amount(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def time_left(clock: ClockOut | None) -> str:
    """What remains of a clock, in words: working days (or hours) left, overdue, paused or stopped."""
    if clock is None:
        return "受理后开始计时"
    unit = "小时" if clock.unit == "hours" else "个工作日"
    if clock.status == "stopped":
        if clock.finished_on_time is None:  # stopped by a withdrawal: not finished, no verdict
            return "已停止计时（未办结）"
        return "已办结，按时完成" if clock.finished_on_time else "已办结，超出时限"
    remaining = clock.remaining or 0.0
    text = f"剩余 {_amount(remaining)} {unit}" if remaining >= 0 else f"已超期 {_amount(-remaining)} {unit}"
    return text + ("（时限中止中）" if clock.paused else "")


TEMPLATE_HELPERS: dict[str, Any] = {
    "deadline_day": deadline_day,
    "time_left": time_left,
    "status_badge": lambda status: STATUS_BADGES.get(status, "badge-info"),
    "clock_badge": lambda status: CLOCK_BADGES.get(status, "badge-muted"),
    "clock_label": lambda status: CLOCK_LABELS.get(status, status),
}


# ------------------------------------------------------------------ the catalogue and the guides
def _by_department(items: list[ItemSummaryOut]) -> list[tuple[str, list[ItemSummaryOut]]]:
    groups: dict[str, list[ItemSummaryOut]] = {}
    for item in items:
        groups.setdefault(item.department.name or item.department.code, []).append(item)
    return list(groups.items())


def _may_apply(caller: Principal | None) -> bool:
    """Applicants apply; a visitor may pick items and sign in on the way; other roles only read."""
    return caller is None or caller.role == "applicant"


@router.get("/guide")
def guide_page(request: Request, caller: MaybeVisitor) -> Response:
    groups = _by_department(list_items(request))
    return render(request, "applicant/guide.html", caller, groups=groups, may_apply=_may_apply(caller))


@router.get("/guide/{code}")
def guide_item_page(
    request: Request, caller: MaybeVisitor, code: Annotated[str, Path(max_length=20)]
) -> Response:
    guide = service_guide(request, code)
    return render(request, "applicant/guide_item.html", caller, guide=guide, may_apply=_may_apply(caller))


# ------------------------------------------------------------------ the application form
@dataclass
class FieldView:
    """One control of the application form, from the form definition and the pre-fill."""

    name: str
    label: str
    help: str
    kind: str  # input | textarea | select | checkbox | checkboxes
    input_type: str = "text"
    data_type: str = ""
    value: Any = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    locked: bool = False
    prefilled: bool = False
    source: ProvenanceOut | None = None
    skipped: list[str] = field(default_factory=list)
    max_length: int | None = None


def _kind(prop: dict[str, Any], spec: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, input type, data-type for ow.js) of a field."""
    kind_of_data = prop.get("type")
    widget = spec.get("widget", "text")
    if kind_of_data == "boolean":
        return "checkbox", "checkbox", "bool"
    if kind_of_data == "array":
        if prop.get("items", {}).get("enum"):
            return "checkboxes", "checkbox", ""
        return "textarea", "", "list"
    if widget == "select" or prop.get("enum"):
        return "select", "", ""
    if widget == "textarea":
        return "textarea", "", ""
    if kind_of_data in ("integer", "number"):
        return "input", "number", "int" if kind_of_data == "integer" else "number"
    return "input", "date" if widget == "date" else "text", ""


def _options(prop: dict[str, Any], spec: dict[str, Any]) -> list[tuple[str, str]]:
    enum = prop.get("enum") or prop.get("items", {}).get("enum") or []
    labels = spec.get("options") or {}
    return [(str(v), str(labels.get(v, v))) for v in enum]


def _field_view(found: ApplicationFormOut, name: str) -> FieldView:
    form = found.form
    prop = form["schema"].get("properties", {}).get(name, {})
    spec = form.get("fields", {}).get(name, {})
    kind, input_type, data_type = _kind(prop, spec)
    source = found.prefill.provenance.get(name)
    value = found.prefill.values.get(name, "")
    return FieldView(
        name=name,
        label=spec.get("label", name),
        help=spec.get("help", ""),
        kind=kind,
        input_type=input_type,
        data_type=data_type,
        value="" if value is None else value,
        options=_options(prop, spec),
        required=name in form["schema"].get("required", []),
        locked=bool(source and source.locked),
        prefilled=name in found.prefill.values,
        source=source,
        skipped=[s.message for s in found.prefill.skipped.get(name, [])],
        max_length=prop.get("maxLength"),
    )


def _field_groups(found: ApplicationFormOut) -> list[tuple[str, list[FieldView]]]:
    return [
        (group["group"], [_field_view(found, name) for name in group["fields"]])
        for group in found.form.get("layout", [])
    ]


def upload_limits(request: Request) -> dict[str, Any]:
    """What the server accepts as a material file: its upload body limit and the types it recognises."""
    limit = body_limits(services(request).settings)["upload"]
    return {
        "max_bytes": max(limit - MULTIPART_ROOM, 1),
        "max_label": f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB",
        "types": {kind: {"extension": ext, "name": name} for kind, (ext, name) in ALLOWED_TYPES.items()},
        "names": "、".join(name for _, name in ALLOWED_TYPES.values()),
        "accept": ",".join(sorted({ext for ext, _ in ALLOWED_TYPES.values()} | {".jpeg"})),
    }


@router.get("/apply")
def apply_page(request: Request, caller: ApplicantPage, items: ItemCodes = []) -> Response:  # noqa: B006
    if not items:
        groups = _by_department(list_items(request))
        return render(request, "applicant/choose.html", caller, groups=groups, may_apply=True)
    found = application_form(request, caller, items=list(items))
    guides = [service_guide(request, item.code) for item in found.items]
    return render(
        request,
        "applicant/apply.html",
        caller,
        found=found,
        groups=_field_groups(found),
        guides=guides,
        limits=upload_limits(request),
        idempotency_key="apply-" + secrets.token_urlsafe(18),
    )


# ------------------------------------------------------------------ my cases
def _promised(detail: CaseDetailOut) -> ClockOut | None:
    return next((c for c in detail.clocks if c.kind == "promised"), None)


@router.get("/my/cases")
def my_cases_page(
    request: Request,
    caller: ApplicantPage,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = list_my_cases(request, caller, limit=PAGE_SIZE, cursor=cursor)
    promised = {c.case_number: c.promised for c in page.cases}
    return render(
        request,
        "applicant/my_cases.html",
        caller,
        page=page,
        promised=promised,
        first_page=cursor is None,
        **TEMPLATE_HELPERS,
    )


def _ready_step(detail: CaseDetailOut, form_key: str) -> bool:
    """Whether the case waits on the applicant's own step with that form (whatever the model names it)."""
    return any(s.form_key == form_key and s.state == "ready" and s.for_applicant for s in detail.steps)


def _case_actions(detail: CaseDetailOut) -> dict[str, Any]:
    """What the applicant may do on the case now (the API checks each again)."""
    open_case = detail.status not in CLOSED
    tolerated = [m for m in detail.missing if m.state == "missing_tolerated"]
    # a tolerant case delivered before its tolerated materials came awaits them still
    takes_supplies = not takes_no_supplies(detail.status, [m.state for m in detail.missing])
    pending_withdrawal = detail.withdrawal is not None and detail.withdrawal.state == "pending"
    commitment = open_case and _ready_step(detail, COMMITMENT_FORM)
    return {  # the commitment letter comes first: supplying the tolerated materials follows it
        "can_supplement": takes_supplies
        and not commitment
        and bool(detail.missing)
        and (_ready_step(detail, SUPPLEMENT_FORM) or bool(tolerated)),
        "commitment": commitment,
        "tolerated": tolerated,
        "can_rate": detail.status in CLOSED and detail.rating is None,
        "can_withdraw": detail.status in WITHDRAWABLE and not pending_withdrawal,
    }


@router.get("/my/cases/{case_id}")
def my_case_page(request: Request, caller: ApplicantPage, case_id: CaseNumber) -> Response:
    detail = get_case(request, caller, case_id)
    return render(
        request,
        "applicant/case.html",
        caller,
        case=detail,
        promised=_promised(detail),
        current=[s for s in detail.steps if s.state == "ready"],
        ratings=RATINGS,
        max_comment=MAX_COMMENT,
        limits=upload_limits(request),
        **_case_actions(detail),
        **TEMPLATE_HELPERS,
    )


# ------------------------------------------------------------------ tracking without signing in
@router.get("/track")
def track_page(request: Request, caller: MaybeVisitor) -> Response:
    return render(request, "applicant/track.html", caller, status_badges=STATUS_BADGES)
