"""E-supervision (电子监察) for supervisors: the yellow/red list of open clocks, and the formal push (督办).

:func:`clock_alerts` lists the open clocks (case level: legal and promised; task level) that are yellow or
red at ``now`` by the instants the worker raises cards with (``warn_at`` / ``due_at`` of the clock row):
red when ``due_at <= now``, yellow when ``warn_at <= now < due_at``. A clock paused before its deadline
has neither instant and is not listed (it cannot turn colour while the applicant is awaited or a special
procedure runs); one paused after its deadline had passed is red still and listed.
The list is ordered by ``(due_at, id)``: every red clock comes before every yellow one (its deadline has
passed, theirs has not), the most overdue first; pages are cut by a keyset cursor on the same pair.

:func:`escalate` records a supervisor's push on a case, or on one ready task of it, with a note: a row of
``escalations`` with level :data:`SUPERVISOR_LEVEL` (repeatable, unlike the worker's cards, which are
raised once per clock and level) and an audit event ``supervision``. The row names the clock the push is
about: for a task its own clock (else the case's legal/promised clock), for a case its open clock with
the nearest deadline (running ones before paused ones). A closed case, and a case with no open clock
(waiting for the applicant before acceptance), are refused.

Both take the caller's connection and never commit; who may call them is decided by the caller (the
routes check the supervisor role and its departments).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, exists, func, insert, or_, select

from engine.cases.access import case_not_found
from engine.cases.cursors import cursor_instant, cursor_int
from engine.cases.status import CLOSED, LABELS, case_is
from engine.errors import Conflict, InvalidInput, NotFound
from engine.limits import check_plain_text
from engine.persistence.repositories import AuditRepository, member_name
from engine.persistence.tables import case_clocks, cases, escalations, task_candidates, tasks
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import Clock
from processes.catalogue import Catalogue

__all__ = [
    "CARD_LABELS",
    "DEFAULT_LIMIT",
    "KIND_LABELS",
    "MAX_LIMIT",
    "MAX_NOTE",
    "SUPERVISOR_LEVEL",
    "AlertLevel",
    "clock_alerts",
    "escalate",
]

AlertLevel = Literal["yellow", "red"]
SUPERVISOR_LEVEL = "supervisor"
"""The ``escalations.level`` of a supervisor's push (the worker writes ``yellow`` and ``red``)."""
MAX_NOTE = 500
"""Characters of a push's note."""
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CARD_LABELS: dict[str, str] = {"yellow": "黄牌", "red": "红牌", SUPERVISOR_LEVEL: "督办"}
KIND_LABELS: dict[str, str] = {"legal": "法定时限", "promised": "承诺时限", "task": "环节时限"}
CalendarLike = WorkingCalendar | Callable[[], WorkingCalendar]


# ------------------------------------------------------------------ the yellow/red list


def _cursor(due_at: datetime, clock_id: int) -> str:
    raw = f"{due_at.astimezone(UTC).isoformat()}|{clock_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    def bad() -> InvalidInput:
        return InvalidInput("分页游标无效", code="bad_cursor", field="cursor")

    if not isinstance(cursor, str) or not cursor or len(cursor) > 200:
        raise bad()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due_text, id_text = raw.split("|")
        clock_id = int(id_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad() from None
    return cursor_instant(due_text, bad), cursor_int(clock_id, bad)


def _department_filter(departments: Iterable[str]) -> Any:
    """The case's (lead) department is one of ``departments``, or the clock's task belongs to one."""
    names = sorted(set(departments))
    by_task = exists().where(
        task_candidates.c.task_id == case_clocks.c.task_id,
        task_candidates.c.kind == "group",
        task_candidates.c.name.in_([member_name(d, "departments") for d in names]),
    )
    return or_(cases.c.department.in_(names), and_(case_clocks.c.task_id.is_not(None), by_task))


def clock_alerts(
    conn: Connection,
    calendar: CalendarLike,
    now: datetime,
    *,
    departments: set[str] | None = None,
    level: AlertLevel | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    catalogue: Catalogue | None = None,
) -> dict[str, Any]:
    """One page of the yellow/red list at ``now``: ``{"items": [...], "next_cursor": str | None}``.

    ``departments``: only clocks of cases of these (lead) departments or of tasks of these groups
    (``None``: every department; an empty set: nothing). ``level``: only ``"red"`` or only ``"yellow"``.
    ``catalogue`` (optional) adds the item and department names. Each item holds the clock (id, kind,
    task), the case (number, items, department, status), the card (``level``), ``due_at``, the working
    days left (``remaining_working_days``, negative once overdue) and whether a red card or a supervisor
    has escalated it already (``escalated``, ``escalated_at``, ``supervisions``)."""
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInput("时间必须带时区（按 UTC 存储）", code="naive_datetime", field="now")
    if level not in (None, "yellow", "red"):
        raise InvalidInput(
            "预警级别只能是 yellow 或 red", code="bad_level", field="level", value=str(level)[:20]
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"每页条数须为 1-{MAX_LIMIT}", code="bad_limit", field="limit", limit=MAX_LIMIT)
    if departments is not None and not departments:
        return {"items": [], "next_cursor": None}
    due, warn = case_clocks.c.due_at, case_clocks.c.warn_at
    conditions: list[Any] = [case_clocks.c.stopped_at.is_(None), due.is_not(None)]
    if level == "red":
        conditions.append(due <= now)
    elif level == "yellow":
        conditions += [warn <= now, due > now]
    else:
        conditions.append(or_(warn <= now, due <= now))
    if departments is not None:
        conditions.append(_department_filter(departments))
    if cursor is not None:
        after_due, after_id = _parse_cursor(cursor)
        conditions.append(or_(due > after_due, and_(due == after_due, case_clocks.c.id > after_id)))
    query = (
        select(
            case_clocks.c.id,
            case_clocks.c.case_id,
            case_clocks.c.task_id,
            case_clocks.c.kind,
            case_clocks.c.clock,
            due,
            warn,
            cases.c["items"],
            cases.c.department,
            cases.c.status,
            cases.c.priority,
            tasks.c.name.label("task_name"),
            tasks.c.element_id.label("task_element"),
        )
        .select_from(
            case_clocks.join(cases, cases.c.id == case_clocks.c.case_id).outerjoin(
                tasks, tasks.c.id == case_clocks.c.task_id
            )
        )
        .where(*conditions)
        .order_by(due, case_clocks.c.id)
        .limit(limit + 1)
    )
    rows = conn.execute(query).mappings().all()
    page, more = rows[:limit], len(rows) > limit
    escalated = _escalations_of(conn, [int(r["id"]) for r in page])
    cal = calendar if isinstance(calendar, WorkingCalendar) else calendar()
    items = [_alert(r, now, cal, catalogue, escalated.get(int(r["id"]), {})) for r in page]
    last = page[-1] if more else None
    return {"items": items, "next_cursor": _cursor(last["due_at"], int(last["id"])) if last else None}


def _escalations_of(conn: Connection, clock_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per clock: the earliest red card or supervisor push, how many pushes, and the latest push (its note,
    who and when)."""
    if not clock_ids:
        return {}
    rows = conn.execute(
        select(
            escalations.c.clock_id,
            escalations.c.level,
            func.min(escalations.c.raised_at),
            func.count(),
        )
        .where(escalations.c.clock_id.in_(clock_ids), escalations.c.level.in_(["red", SUPERVISOR_LEVEL]))
        .group_by(escalations.c.clock_id, escalations.c.level)
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for clock_id, level, first, n in rows:
        entry = out.setdefault(int(clock_id), {"escalated_at": None, "supervisions": 0})
        if entry["escalated_at"] is None or first < entry["escalated_at"]:
            entry["escalated_at"] = first
        if level == SUPERVISOR_LEVEL:
            entry["supervisions"] = int(n)
    pushes = conn.execute(
        select(escalations.c.clock_id, escalations.c.note, escalations.c.raised_by, escalations.c.raised_at)
        .where(escalations.c.clock_id.in_(clock_ids), escalations.c.level == SUPERVISOR_LEVEL)
        .order_by(escalations.c.raised_at, escalations.c.id)
    ).all()
    for clock_id, note, by, at in pushes:  # in order: the last one stays
        out[int(clock_id)].update(last_note=note, last_supervised_by=by, last_supervised_at=at)
    return out


def _alert(
    row: Any, now: datetime, cal: WorkingCalendar, catalogue: Catalogue | None, escalated: dict[str, Any]
) -> dict[str, Any]:
    card = "red" if row["due_at"] <= now else "yellow"
    remaining = Clock.from_dict(row["clock"]).remaining_working_days(now, cal)
    codes = [str(c) for c in row["items"] or []]
    department = str(row["department"])
    dept = catalogue.departments.get(department) if catalogue else None
    return {
        "clock_id": int(row["id"]),
        "case_id": row["case_id"],
        "items": [{"code": c, "name": _item_name(catalogue, c)} for c in codes],
        "department": department,
        "department_label": dept.name if dept else None,
        "case_status": row["status"],
        "case_status_label": LABELS.get(row["status"], row["status"]),
        "green_channel": row["priority"] == "green",
        "kind": row["kind"],
        "kind_label": KIND_LABELS.get(row["kind"], row["kind"]),
        "task_id": row["task_id"],
        "task_name": row["task_name"],
        "task_element": row["task_element"],
        "level": card,
        "level_label": CARD_LABELS[card],
        "due_at": row["due_at"],
        "warn_at": row["warn_at"],
        "remaining_working_days": round(remaining, 2),
        "overdue_working_days": round(max(0.0, -remaining), 2),
        "escalated": escalated.get("escalated_at") is not None,
        "escalated_at": escalated.get("escalated_at"),
        "supervisions": escalated.get("supervisions", 0),
        "last_note": escalated.get("last_note"),
        "last_supervised_by": escalated.get("last_supervised_by"),
        "last_supervised_at": escalated.get("last_supervised_at"),
    }


def _item_name(catalogue: Catalogue | None, code: str) -> str | None:
    if catalogue is None:
        return None
    try:
        return catalogue.get(code).name
    except NotFound:
        return None


# ------------------------------------------------------------------ the push (督办)


def _check_note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput("督办须写明督办意见", code="note_required", field="note")
    text = note.strip()
    if len(text) > MAX_NOTE:
        raise InvalidInput(
            f"督办意见不能超过 {MAX_NOTE} 个字符", code="too_long", field="note", limit=MAX_NOTE
        )
    check_plain_text(text, "note", "督办意见", multiline=True)
    return text


def escalate(
    conn: Connection,
    case_id: str,
    note: str,
    actor: str,
    now: datetime,
    *,
    task_id: str | None = None,
) -> dict[str, Any]:
    """A supervisor's push (督办) on the case ``case_id``, or on its ready task ``task_id``, with ``note``
    (required, at most :data:`MAX_NOTE` characters). Returns the stored escalation row (with
    ``clock_kind``). Refuses an unknown case (``NotFound`` ``case_not_found``), a task that is not one of
    the case's (``NotFound`` ``task_not_found``) or not ready (``Conflict`` ``task_not_ready``), a closed
    case (``Conflict`` ``case_closed``) and a case without an open clock (``Conflict``
    ``nothing_to_escalate``)."""
    text = _check_note(note)
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput("督办人不能为空", code="actor_required", field="actor")
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInput("时间必须带时区（按 UTC 存储）", code="naive_datetime", field="now")
    if not isinstance(case_id, str):
        raise case_not_found(str(case_id)[:40])
    row = conn.execute(
        select(cases.c.id, cases.c.status, cases.c.instance_id).where(cases.c.id == case_id)
    ).first()
    if row is None:
        raise case_not_found(case_id)
    if row.status in CLOSED:
        raise Conflict(f"{case_is(row.status)}，不能督办", code="case_closed", case=case_id)
    if task_id is not None:
        task = conn.execute(
            select(tasks.c.id, tasks.c.state).where(tasks.c.id == task_id, tasks.c.business_key == case_id)
        ).first()
        if task is None:
            raise NotFound("任务不存在", code="task_not_found", task_id=str(task_id)[:40], case=case_id)
        if task.state != "ready":
            raise Conflict("任务已不在办理中，不能督办", code="task_not_ready", task_id=task_id, case=case_id)
    clock = _clock_to_push(conn, case_id, task_id)
    if clock is None:
        raise Conflict(
            "办件当前没有计时中的时限（如受理前等待申请人补正），无需督办",
            code="nothing_to_escalate",
            case=case_id,
        )
    clock_id, clock_task, kind = clock
    values = {
        "case_id": case_id,
        "clock_id": clock_id,
        "task_id": task_id or clock_task,
        "level": SUPERVISOR_LEVEL,
        "raised_at": now,
        "raised_by": actor.strip(),
        "note": text,
    }
    escalation_id = int(conn.execute(insert(escalations).values(**values)).inserted_primary_key[0])
    AuditRepository(conn).record(
        now,
        actor.strip(),
        "supervision",
        instance_id=row.instance_id,
        business_key=case_id,
        task_id=values["task_id"],
        detail={"escalation_id": escalation_id, "clock_id": clock_id, "clock": kind, "note": text},
    )
    return {"id": escalation_id, **values, "clock_kind": kind}


def _clock_to_push(conn: Connection, case_id: str, task_id: str | None) -> tuple[int, str | None, str] | None:
    """(id, task id, kind) of the open clock a push is about: the task's own when it has one, else the
    case's open clock with the nearest deadline (running ones before paused ones, which have none)."""
    order = (case_clocks.c.due_at.is_(None), case_clocks.c.due_at, case_clocks.c.id)
    base = select(case_clocks.c.id, case_clocks.c.task_id, case_clocks.c.kind).where(
        case_clocks.c.case_id == case_id, case_clocks.c.stopped_at.is_(None)
    )
    choices = [base]
    if task_id is not None:  # the task's clock, else the case's own (legal/promised), else any
        choices = [
            base.where(case_clocks.c.task_id == task_id),
            base.where(case_clocks.c.task_id.is_(None)),
            base,
        ]
    for query in choices:
        found = conn.execute(query.order_by(*order).limit(1)).first()
        if found is not None:
            return int(found[0]), found[1], str(found[2])
    return None
