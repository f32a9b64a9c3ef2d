"""Pages of the officers (审批人员): the inbox, the task page, the officer view of a case.

Every page is built from the ``/api/v1/officer`` route functions called in process with the signed-in
officer (:mod:`api.routes.officer`), so a page shows exactly what that officer's API answers; every write
(claim, release, accept, approve...) is a form that the browser posts to ``/api/v1/officer/...`` through
``static/ow.js``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api.pages.guard import OfficerPage
from api.pages.render import department_names, local_time, render
from api.pages.route import PageRoute
from api.routes import officer as api
from api.routes.public import list_items
from engine.accounts.principal import Principal
from engine.cases.status import LABELS as CASE_STATUS_LABELS
from engine.errors import NotFound
from engine.time.calendar import SHANGHAI

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
CLOCK_OPTIONS = {"normal": "正常", "yellow": "黄牌预警", "red": "红牌超期"}
CLAIM_OPTIONS = {"all": "全部", "mine": "我认领的", "unclaimed": "未认领"}
SORT_OPTIONS = {"priority": "绿色通道优先", "due": "按期限"}
CHANNEL_LABELS = {"online": "网上申请", "counter": "窗口收件"}
FLOW_LABELS = {
    "single_window": "一窗受理",
    "joint_approval": "并联审批",
    "tolerant_acceptance": "容缺受理",
}
ACTION_PATHS = {
    "start_special_procedure": "special-procedure/start",
    "end_special_procedure": "special-procedure/end",
}
SPECIAL_KINDS = {
    "inspection": "现场核查",
    "expert_review": "专家评审",
    "hearing": "听证",
    "testing": "检验检测",
}
DELIVERY_METHODS = {"window": "窗口领取", "mail": "邮寄送达", "online": "网上送达"}
OUTSTANDING = ("missing", "rejected")

FACT_LABELS = {
    "decision": "决定",
    "outcome": "汇总结论",
    "result": "结论",
    "reason": "理由",
    "missing_materials": "需补正材料",
    "special_kind": "特别程序",
    "kind": "程序类型",
    "started_on": "开始日期",
    "finished_on": "结束日期",
    "delivery_method": "送达方式",
    "delivered_on": "送达日期",
}
FACT_VALUES = {
    "accept": "受理",
    "supplement": "一次性告知补正",
    "refuse": "不予受理",
    "approve": "准予许可",
    "deny": "不予许可",
    "rework": "退回重审",
    "pass": "通过",
    "fail": "不通过",
    **SPECIAL_KINDS,
    **DELIVERY_METHODS,
}

ClockChoice = Literal["", "normal", "yellow", "red"]
ClaimChoice = Literal["all", "mine", "unclaimed"]
SortChoice = Literal["priority", "due"]


def due_text(value: datetime | str | None) -> str:
    """A deadline in Beijing time; a deadline at local midnight is the end of the day before."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(SHANGHAI)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return (local - timedelta(days=1)).strftime("%Y-%m-%d") + " 当日"
    return local.strftime("%Y-%m-%d %H:%M")


def history_facts(entry: api.HistoryEntryOut) -> list[tuple[str, str]]:
    """What a completed step decided, beside its opinion: decision, result, materials, dates, method."""
    data = entry.detail.get("data") if entry.action == "complete" else None
    if not isinstance(data, dict):
        return []
    facts = []
    for name, label in FACT_LABELS.items():
        value = data.get(name)
        if value in (None, "", [], False) or value == entry.opinion:
            continue
        if isinstance(value, list):
            text = "、".join(str(v) for v in value)
        else:
            text = FACT_VALUES.get(str(value), str(value))
        facts.append((label, text))
    return facts


def group_names(request: Request, groups: Iterable[str]) -> list[str]:
    """Candidate groups as the officer reads them: department names, 综合窗口 for ``window``."""
    codes = sorted(set(groups))
    named = department_names(request, [c for c in codes if c != "window"])
    return (["综合窗口"] if "window" in codes else []) + named


def _page_helpers() -> dict[str, Any]:
    return {
        "due_text": due_text,
        "history_facts": history_facts,
        "local_time": local_time,
        "flow_labels": FLOW_LABELS,
        "channel_labels": CHANNEL_LABELS,
    }


# ------------------------------------------------------------------ the inbox
def _inbox_query(**params: str | None) -> str:
    return urlencode({k: v for k, v in params.items() if v})


@router.get("/officer/inbox")
def inbox_page(
    request: Request,
    caller: OfficerPage,
    item: Annotated[str, Query(max_length=20)] = "",
    state: Annotated[str, Query(max_length=30)] = "",
    clock: Annotated[ClockChoice, Query()] = "",
    claim: Annotated[ClaimChoice, Query()] = "all",
    sort: Annotated[SortChoice, Query()] = "priority",
    cursor: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    page = api.get_inbox(
        request,
        caller,
        item=item or None,
        state=state or None,
        clock=clock or None,
        claim=claim,
        sort=sort,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    filters = {"item": item, "state": state, "clock": clock, "claim": claim, "sort": sort}
    next_href = (
        "/officer/inbox?" + _inbox_query(**filters, cursor=page.next_cursor) if page.next_cursor else None
    )
    first_href = "/officer/inbox?" + _inbox_query(**filters) if cursor else None
    filtered = bool(item or state or clock or claim != "all")
    return render(
        request,
        "officer/inbox.html",
        caller,
        page=page,
        filters=filters,
        filtered=filtered,
        next_href=next_href,
        first_href=first_href,
        catalogue=list_items(request),
        state_options=CASE_STATUS_LABELS,
        clock_options=CLOCK_OPTIONS,
        claim_options=CLAIM_OPTIONS,
        sort_options=SORT_OPTIONS,
        group_names=lambda groups: group_names(request, groups),
        **_page_helpers(),
    )


# ------------------------------------------------------------------ the task page
def _case_view(request: Request, caller: Principal, case_id: str) -> api.OfficerCaseOut | None:
    try:
        return api.get_case(request, caller, case_id)
    except NotFound:  # the task is visible but not its case: show the task alone
        return None


def _promised_due(view: api.OfficerCaseOut | None) -> str | None:
    if view is None:
        return None
    for clock in view.clocks:
        if clock.kind == "promised" and clock.task_id is None:
            return clock.due_at
    return None


def _open_branches(request: Request, view: api.OfficerCaseOut | None) -> list[dict[str, Any]]:
    """The case's ready tasks (for a joint approval: one per department still reviewing)."""
    if view is None:
        return []
    return [
        {
            "id": t.id,
            "name": t.name or t.element_id,
            "element_id": t.element_id,
            "groups": group_names(request, t.candidate_groups),
            "assignee": t.assignee,
        }
        for t in view.tasks
        if t.state == "ready"
    ]


def _material_choices(detail: api.TaskDetailOut) -> list[dict[str, Any]]:
    """The case's materials for the one-time notice, one per code; the outstanding ones come checked."""
    by_code: dict[str, dict[str, Any]] = {}
    for m in detail.materials:
        entry = by_code.setdefault(
            m.code, {"code": m.code, "name": m.name, "item_codes": [], "states": [], "outstanding": False}
        )
        entry["item_codes"].append(m.item_code)
        if m.state_label not in entry["states"]:
            entry["states"].append(m.state_label)
        entry["outstanding"] = entry["outstanding"] or m.state in OUTSTANDING
    return list(by_code.values())


def _opinion_label(detail: api.TaskDetailOut) -> str:
    fields = (detail.form.definition.get("fields") or {}) if detail.form else {}
    label = (fields.get("opinion") or {}).get("label")
    return str(label) if label else "办理意见"


def _application_fields(detail: api.TaskDetailOut) -> list[dict[str, Any]]:
    """The application form as submitted, field by field, each pre-filled one with its source."""
    form = detail.application_form
    if form is None:
        return []
    fields = form.definition.get("fields") or {}
    order = [name for group in form.definition.get("layout") or [] for name in group.get("fields", [])]
    order += [name for name in form.values if name not in order]
    out = []
    for name in order:
        if name not in form.values and name not in fields:
            continue
        spec = fields.get(name) or {}
        value = form.values.get(name)
        options = spec.get("options") or {}
        shown = options.get(value, value) if isinstance(value, str) else value
        source = form.provenance.get(name)
        out.append({"name": name, "label": spec.get("label", name), "value": shown, "source": source})
    return out


def _task_form_sources(detail: api.TaskDetailOut) -> dict[str, Any]:
    """Values this step's own form pre-fills (from earlier steps or licences), with their sources."""
    if detail.form is None:
        return {}
    return {
        name: {"value": value, "source": detail.form.provenance.get(name)}
        for name, value in detail.form.values.items()
    }


@router.get("/officer/tasks/{task_id}")
def task_page(
    request: Request,
    caller: OfficerPage,
    task_id: Annotated[str, Path(min_length=1, max_length=36)],
) -> Response:
    detail = api.get_task(request, caller, task_id)
    view = _case_view(request, caller, detail.case.id)
    task = detail.task
    return render(
        request,
        "officer/task.html",
        caller,
        detail=detail,
        task=task,
        case=detail.case,
        promised_due=_promised_due(view),
        branches=_open_branches(request, view),
        files=view.files if view else [],
        allowed=[a.action for a in detail.actions],
        action_labels={a.action: a.label for a in detail.actions},
        action_paths=ACTION_PATHS,
        materials_choice=_material_choices(detail),
        application_fields=_application_fields(detail),
        prefilled=_task_form_sources(detail),
        opinion_label=_opinion_label(detail),
        history=detail.history,
        held_by_other=bool(task.assignee and task.assignee != caller.actor and task.state == "ready"),
        mine=task.assignee == caller.actor,
        candidate_names=group_names(request, task.candidate_groups),
        special_kinds=SPECIAL_KINDS,
        delivery_methods=DELIVERY_METHODS,
        diagram={"xml": detail.model.bpmn_xml, "highlight": detail.model.current_element_ids},
        **_page_helpers(),
    )


# ------------------------------------------------------------------ the case view
def _case_history(request: Request, caller: Principal, view: api.OfficerCaseOut) -> api.TaskDetailOut | None:
    """The case's history and diagram as its latest task's page answers them (labels, opinions)."""
    if not view.tasks:
        return None
    latest = max(view.tasks, key=lambda t: (t.state == "ready", t.created_at))
    try:
        return api.get_task(request, caller, latest.id)
    except NotFound:
        return None


@router.get("/officer/cases/{case_id}")
def case_page(
    request: Request,
    caller: OfficerPage,
    case_id: Annotated[str, Path(min_length=1, max_length=20)],
) -> Response:
    view = api.get_case(request, caller, case_id)
    latest = _case_history(request, caller, view)
    item_names = {i.code: i.name for i in list_items(request)}
    return render(
        request,
        "officer/case.html",
        caller,
        view=view,
        case=view.case,
        item_names=item_names,
        latest=latest,
        history=latest.history if latest else [],
        branches=_open_branches(request, view),
        promised_due=_promised_due(view),
        diagram={"xml": latest.model.bpmn_xml, "highlight": latest.model.current_element_ids}
        if latest
        else None,
        **_page_helpers(),
    )
