"""One task as its officer works it (办件审批页): the case, the materials, the form, the history, the model.

:func:`visible_task` is the scope rule of every officer read and command on a task: the task must belong
to a case the officer may see (:func:`engine.cases.access.is_officer_of`); otherwise, and for a task of an
instance that is not a case, it answers exactly like a task that does not exist
(:func:`engine.assignment.task_not_found`).

:func:`task_detail` gathers, in one read:

* the task (step, state, assignee, candidates, its clock and badge) and whether the caller may act on it;
* the case summary (number, items, department, applicant, channel, green channel, status, dates);
* the materials, each with the e-licence that satisfied it (type, number, validity, status today);
* the task's form definition pre-filled (:func:`forms.autofill.autofill`: the applicant's valid licences,
  the applicant's name and id, the data entered at earlier steps), each filled field with its provenance;
* the history: every audit event of the case in order, each with the opinion it recorded (the opinion,
  reason or result entered at a step; the reason of a status change; the note of a push);
* the BPMN XML of the instance's definition version and the element ids of its ready tasks (to highlight);
* the actions the flow allows at this step (:mod:`engine.cases.actions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from engine.assignment import listed, may_work, task_not_found
from engine.cases.access import Viewer, is_officer_of
from engine.cases.actions import ACTIONS, allowed_actions, model_reads
from engine.cases.inbox import BADGE_LABELS, task_clock
from engine.cases.licences import licences_for_form
from engine.cases.lifecycle import read_task_with_case
from engine.cases.status import LABELS
from engine.errors import NotFound
from engine.persistence.columns import check_row
from engine.persistence.repositories import AuditRepository, TaskRepository
from engine.persistence.tables import case_materials, definitions, instances, tasks
from engine.time.calendar import local_date
from forms.autofill import autofill
from forms.definition import FormDefinition
from forms.registry import FormRegistry
from licence.library import LicenceLibrary
from processes.catalogue import Catalogue

__all__ = [
    "EVENT_LABELS",
    "TASK_STATE_LABELS",
    "VisibleTask",
    "earlier_task_data",
    "history",
    "task_detail",
    "task_to_complete",
    "visible_task",
]

TASK_STATE_LABELS = {"ready": "待办", "completed": "已办结", "cancelled": "已取消"}
EVENT_LABELS: dict[str, str] = {
    "case_submitted": "提交申请",
    "start": "流程启动",
    "complete": "办理",
    "claim": "认领",
    "release": "释放认领",
    "message": "收到消息",
    "timer": "定时器触发",
    "timer_failed": "定时器失败",
    "event_subprocess": "事件子流程启动",
    "cancel": "撤销",
    "completed": "流程结束",
    "cancelled": "流程撤销",
    "case_status": "办件状态变更",
    "warning": "黄牌预警",
    "escalation": "红牌督办",
    "supervision": "督办",
    "rated": "评价",
    "licence_held": "暂缓出证",
    "licence_released": "补齐后出证",
    "withdrawal_requested": "申请撤回",
    "withdrawal_granted": "同意撤回",
    "withdrawal_refused": "不同意撤回",
}
_OPINION_FIELDS = ("opinion", "reason", "result", "note")


class VisibleTask:
    """A task the officer may see, with its case row and the instance's tasks (read once)."""

    def __init__(
        self, task: dict[str, Any], case: dict[str, Any], instance_tasks: list[dict[str, Any]]
    ) -> None:
        self.task = task
        self.case = case
        self.instance_tasks = instance_tasks


def visible_task(conn: Connection, task_id: str, viewer: Viewer) -> VisibleTask:
    """The task ``task_id`` if it belongs to a case ``viewer`` may see; else ``task_not_found``."""
    task, case = _task_and_case(conn, task_id, hand_over=False)
    instance_tasks = TaskRepository(conn).of_instance(task["instance_id"])
    if not is_officer_of(viewer, case, instance_tasks):
        raise task_not_found(task_id)
    return VisibleTask(task, case, instance_tasks)


def task_to_complete(conn: Connection, task_id: str, viewer: Viewer) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task ``task_id`` and its case row, read in the transaction of a completion (the case row handed
    over to the step's lifecycle, :func:`engine.cases.lifecycle.read_task_with_case`), if ``viewer`` may
    see the case (:func:`visible_task`) and work the task (``may_work``); else ``task_not_found``. The
    instance's other tasks are read only when the task itself does not show the viewer an officer of
    the case: its own groups and users are among those every task of the instance gives."""
    task, case = _task_and_case(conn, task_id, hand_over=True)
    if not may_work(task, viewer.actor, viewer.groups):
        raise task_not_found(task_id)
    if is_officer_of(viewer, case, [task]):
        return task, case
    if not is_officer_of(viewer, case, TaskRepository(conn).of_instance(task["instance_id"])):
        raise task_not_found(task_id)
    return task, case


def _task_and_case(
    conn: Connection, task_id: str, *, hand_over: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    check_row(tasks, {"id": task_id}, fields={"id": "task_id"})
    try:
        task, case = read_task_with_case(conn, task_id, hand_over=hand_over)
    except NotFound:
        raise task_not_found(task_id) from None
    if not task["business_key"] or case is None:
        raise task_not_found(task_id)
    return task, case


def may_act(task: Mapping[str, Any], viewer: Viewer) -> bool:
    """Whether the officer may complete ``task`` now: ready, theirs to work, not claimed by another."""
    if task["state"] != "ready" or not may_work(task, viewer.actor, viewer.groups):
        return False
    return not task["assignee"] or task["assignee"] == viewer.actor


# ------------------------------------------------------------------ pieces
def _completions(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        e for e in events if e["action"] == "complete" and isinstance((e["detail"] or {}).get("data"), dict)
    ]


def earlier_task_data(events: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The data last entered at each user task element of the case (``element_id -> data``)."""
    out: dict[str, dict[str, Any]] = {}
    for event in _completions(events):
        if event["element_id"]:
            out[str(event["element_id"])] = dict(event["detail"]["data"])
    return out


def _opinion(event: Mapping[str, Any]) -> str | None:
    detail = event["detail"] or {}
    source = detail.get("data") if event["action"] == "complete" else detail
    if not isinstance(source, Mapping):
        return None
    for name in _OPINION_FIELDS:
        value = source.get(name)
        if isinstance(value, str) and value.strip() and value not in ("pass", "fail"):
            return value
    return None


def history(
    events: Sequence[Mapping[str, Any]], instance_tasks: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every audit event of the case, with its label, the step it happened at and the opinion it recorded."""
    steps = {str(t["id"]): t["name"] for t in instance_tasks}
    out = []
    for event in events:
        detail = dict(event["detail"] or {})
        label = EVENT_LABELS.get(event["action"], event["action"])
        if event["action"] == "case_status":
            label = f"办件状态：{LABELS.get(str(detail.get('to')), detail.get('to'))}"
        out.append(
            {
                "id": int(event["id"]),
                "at": event["at"],
                "actor": event["actor"],
                "action": event["action"],
                "label": label,
                "task_id": event["task_id"],
                "element_id": event["element_id"],
                "step": steps.get(str(event["task_id"])) if event["task_id"] else None,
                "opinion": _opinion(event),
                "detail": detail,
            }
        )
    return out


def _department_denied(
    instance_tasks: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> bool:
    """A joint approval's department review ended in a denial (the last data entered at each of them)."""
    reviews = {str(t["id"]) for t in instance_tasks if t["form_key"] == "task.joint_review"}
    last: dict[str, Mapping[str, Any]] = {}
    for event in _completions(events):
        if str(event["task_id"]) in reviews:
            last[str(event["task_id"])] = event["detail"]["data"]
    return any(data.get("decision") == "deny" for data in last.values())


def _materials(conn: Connection, case_id: str, today: Any, clock: Any) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(case_materials).where(case_materials.c.case_id == case_id).order_by(case_materials.c.id)
    ).mappings()
    library = LicenceLibrary(conn, clock=clock)
    out = []
    for row in rows:
        licence = None
        if row["licence_id"]:
            try:
                record = library.get(row["licence_id"])
            except NotFound:
                record = None
            if record is not None:
                licence = {
                    "id": record.id,
                    "type_code": record.type_code,
                    "type_name": record.type_name,
                    "licence_number": record.licence_number,
                    "holder_name": record.holder_name,
                    "issuer_name": record.issuer_name,
                    "valid_from": record.valid_from,
                    "valid_until": record.valid_until,
                    "status": record.effective_status(today),
                }
        out.append(
            {
                "item_code": row["item_code"],
                "code": row["code"],
                "name": row["name"],
                "key": bool(row["key"]),
                "state": row["state"],
                "note": row["note"],
                "updated_at": row["updated_at"],
                "licence": licence,
            }
        )
    return out


def _definition(conn: Connection, instance_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(
            definitions.c.id,
            definitions.c.key,
            definitions.c.version,
            definitions.c.name,
            definitions.c.bpmn,
            definitions.c.checksum,
        )
        .join(instances, instances.c.definition_id == definitions.c.id)
        .where(instances.c.id == instance_id)
    ).one()
    return dict(row._mapping)


def _form(
    definition: FormDefinition | None,
    conn: Connection,
    case: Mapping[str, Any],
    earlier: Mapping[str, Mapping[str, Any]],
    today: Any,
    clock: Any,
) -> dict[str, Any] | None:
    if definition is None:
        return None
    licences = licences_for_form(
        conn, clock, case["applicant_id"], definition, today, holder_kind=case["applicant_kind"]
    )
    applicant = {"name": case["applicant_name"], "id": case["applicant_id"], "kind": case["applicant_kind"]}
    filled = autofill(definition, licences=licences, applicant=applicant, earlier_tasks=earlier, today=today)
    return {"definition": definition.to_dict(), **filled.to_dict()}


def form_of(forms: FormRegistry, form_key: str | None) -> FormDefinition | None:
    return forms.get(form_key) if form_key and form_key in forms else None


def actions_at(
    seen: VisibleTask, events: Sequence[Mapping[str, Any]], definition: Mapping[str, Any], forms: FormRegistry
) -> list[str]:
    """The actions the flow allows at the (ready) task; none once it is no longer ready."""
    task = seen.task
    if task["state"] != "ready":
        return []
    reads = model_reads(definition["bpmn"], definition["checksum"], task["element_id"])
    denied = _department_denied(seen.instance_tasks, events)
    return allowed_actions(form_of(forms, task["form_key"]), reads, department_denied=denied)


def task_detail(
    conn: Connection,
    seen: VisibleTask,
    viewer: Viewer,
    *,
    now: datetime,
    clock: Any,
    forms: FormRegistry,
    catalogue: Catalogue,
) -> dict[str, Any]:
    """Everything the officer's page of the task shows (see the module docstring)."""
    task, case = seen.task, seen.case
    today = local_date(now)
    events = AuditRepository(conn).for_business_key(case["id"])
    definition = _definition(conn, task["instance_id"])
    earlier = earlier_task_data(events)
    names = {i.code: i.name for i in catalogue.items}
    clock_row = task_clock(conn, task, now) if task["state"] == "ready" else None
    allowed = actions_at(seen, events, definition, forms)
    current = list(dict.fromkeys(t["element_id"] for t in seen.instance_tasks if t["state"] == "ready"))
    return {
        "task": {
            "id": task["id"],
            "element_id": task["element_id"],
            "name": task["name"],
            "state": task["state"],
            "state_label": TASK_STATE_LABELS.get(task["state"], task["state"]),
            "form_key": task["form_key"],
            "candidate_groups": sorted(listed(task["candidate_groups"])),
            "candidate_users": sorted(listed(task["candidate_users"])),
            "assignee": task["assignee"],
            "branch": task["mi_index"],
            "green_channel": int(task["priority"]) > 0,
            "created_at": task["created_at"],
            "due_at": clock_row["due_at"] if clock_row and clock_row["due_at"] else task["due_at"],
            "completed_at": task["completed_at"],
            "completed_by": task["completed_by"],
            "clock": clock_row,
            "badge": clock_row["badge"] if clock_row else "normal",
            "badge_label": BADGE_LABELS[clock_row["badge"] if clock_row else "normal"],
        },
        "can_act": may_act(task, viewer),
        "case": {
            "id": case["id"],
            "flow": case["flow"],
            "items": [{"code": c, "name": names.get(c, c)} for c in case["items"] or []],
            "department": case["department"],
            "applicant_kind": case["applicant_kind"],
            "applicant_id": case["applicant_id"],
            "applicant_name": case["applicant_name"],
            "contact_phone": case["contact_phone"],
            "channel": case["channel"],
            "green_channel": case["priority"] == "green",
            "status": case["status"],
            "status_label": LABELS.get(case["status"], case["status"]),
            "status_reason": case["status_reason"],
            "form_data": case["form_data"] or {},
            "submitted_at": case["submitted_at"],
            "accepted_at": case["accepted_at"],
            "decided_at": case["decided_at"],
            "closed_at": case["closed_at"],
        },
        "materials": _materials(conn, case["id"], today, clock),
        "form": _form(form_of(forms, task["form_key"]), conn, case, earlier, today, clock),
        "history": history(events, seen.instance_tasks),
        "model": {
            "definition_id": int(definition["id"]),
            "key": definition["key"],
            "version": int(definition["version"]),
            "name": definition["name"],
            "bpmn_xml": definition["bpmn"],
            "current_element_ids": current,
        },
        "actions": [{"action": a, "label": ACTIONS[a].label} for a in allowed],
    }
