"""The officer's inbox (待办): the ready tasks of their departments, with yellow/red badges, keyset pages.

A task is in the inbox of an officer when it is ready and one of its candidate groups is one of the
officer's groups (their departments, and ``window`` for a counter officer), or the officer is one of its
candidate users or its assignee. Such a task always belongs to a case the officer may see
(:func:`engine.cases.access.is_officer_of` counts exactly these groups and users), and only tasks of cases
are listed.

**Badge.** A task's clock is its own step clock (``ow:clock="task"`` with a limit) or, for a step that
counts against the case's ``legal`` / ``promised`` limit, that running case clock. Its badge is read from
the instants the worker raises cards with (``case_clocks.warn_at`` / ``due_at``, as the supervisors' list
does): ``red`` when ``due_at <= now``, ``yellow`` when ``warn_at <= now``, else ``normal``; a paused clock
(the applicant is awaited, a special procedure runs) and a task without a clock are ``normal``.

**Due date.** The deadline of the task's clock, else the task's own due date; tasks without either come
last.

**Order.** ``sort="priority"``: green channel (绿色通道) first, then by due date; ``sort="due"``: by due date,
the green channel first among equal dates. Ties by creation, then id. Pages are cut by a keyset cursor
over exactly these keys (opaque text, bound to the sort order it was made for): pages concatenate to the
full ordered list without duplicates or gaps, whatever is written meanwhile before the cursor.

**Counts** are over the whole inbox of the caller, not the filtered page: how many tasks, how many are due
today (the deadline falls within today, Asia/Shanghai) and how many are overdue (red).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Connection, Text, and_, case, cast, false, func, or_, select
from sqlalchemy.sql import Select

from engine.cases.status import LABELS
from engine.errors import InvalidInput
from engine.persistence.repositories import MAX_FILTER_GROUPS, like_member
from engine.persistence.tables import UTCDateTime, case_clocks, cases, tasks
from engine.time.calendar import end_of_local_day, local_date, local_midnight
from processes.catalogue import Catalogue

__all__ = [
    "BADGES",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Badge",
    "ClaimFilter",
    "InboxFilter",
    "SortOrder",
    "badge_of",
    "inbox",
    "task_clock",
]

Badge = Literal["normal", "yellow", "red"]
BADGES: tuple[str, ...] = get_args(Badge)
SortOrder = Literal["priority", "due"]
ClaimFilter = Literal["all", "mine", "unclaimed"]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
BADGE_LABELS = {"normal": "正常", "yellow": "黄牌预警", "red": "红牌超期"}


@dataclass(frozen=True)
class InboxFilter:
    """What the officer narrows the inbox to (None: no restriction)."""

    item: str | None = None
    """A service item code: tasks of cases that applied for it (alone or in a joint approval)."""
    state: str | None = None
    """A case status (:data:`engine.cases.status.LABELS`)."""
    clock: Badge | None = None
    claim: ClaimFilter = "all"


def badge_of(due_at: datetime | None, warn_at: datetime | None, now: datetime) -> Badge:
    """The badge of a clock from its stored instants (see the module docstring)."""
    if due_at is not None and due_at <= now:
        return "red"
    if warn_at is not None and warn_at <= now:
        return "yellow"
    return "normal"


# ------------------------------------------------------------------ the query
_own = case_clocks.alias("own_clock")  # the task's own step clock
_counted = case_clocks.alias("case_clock")  # the case clock the step counts against

_FROM = (
    tasks.join(cases, cases.c.id == tasks.c.business_key)
    .outerjoin(_own, and_(_own.c.task_id == tasks.c.id, _own.c.stopped_at.is_(None)))
    .outerjoin(
        _counted,
        and_(
            _counted.c.case_id == tasks.c.business_key,
            _counted.c.task_id.is_(None),
            _counted.c.kind == tasks.c.clock,
            _counted.c.stopped_at.is_(None),
        ),
    )
)


def _pick(own: Any, counted: Any) -> ColumnElement[Any]:
    return case((_own.c.id.is_not(None), own), else_=counted)


CLOCK_ID = _pick(_own.c.id, _counted.c.id)
CLOCK_KIND = _pick(_own.c.kind, _counted.c.kind)
CLOCK_DUE = _pick(_own.c.due_at, _counted.c.due_at)
CLOCK_WARN = _pick(_own.c.warn_at, _counted.c.warn_at)
DUE: ColumnElement[datetime] = func.coalesce(CLOCK_DUE, tasks.c.due_at, type_=UTCDateTime())
NO_DUE = case((DUE.is_(None), 1), else_=0)


def _badge(now: datetime) -> ColumnElement[str]:
    return case((CLOCK_DUE <= now, "red"), (CLOCK_WARN <= now, "yellow"), else_="normal")


def _scope(actor: str, groups: Iterable[str]) -> ColumnElement[bool]:
    names = sorted(set(groups))
    if len(names) > MAX_FILTER_GROUPS:
        raise InvalidInput(
            f"一次最多按 {MAX_FILTER_GROUPS} 个组筛选待办",
            code="too_many_groups",
            field="groups",
            count=len(names),
            max=MAX_FILTER_GROUPS,
        )
    conds: list[ColumnElement[bool]] = [
        tasks.c.candidate_groups.like(like_member(g), escape="\\") for g in names
    ]
    if actor:
        conds.append(tasks.c.assignee == actor)
        conds.append(tasks.c.candidate_users.like(like_member(actor, "user"), escape="\\"))
    return and_(tasks.c.state == "ready", or_(*conds) if conds else false())


def task_clock(conn: Connection, task: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The clock of one task with its badge (same rule as the inbox), or None when it has none."""
    query = (
        select(
            CLOCK_ID.label("id"), CLOCK_KIND.label("kind"), CLOCK_DUE.label("due"), CLOCK_WARN.label("warn")
        )
        .select_from(_FROM)
        .where(tasks.c.id == task["id"])
    )
    row = conn.execute(query).first()
    if row is None or row.id is None:
        return None
    due = _aware(row.due)
    warn = _aware(row.warn)
    return {
        "id": int(row.id),
        "kind": row.kind,
        "due_at": due,
        "warn_at": warn,
        "badge": badge_of(due, warn, now),
    }


def _aware(value: Any) -> datetime | None:
    """A datetime out of a CASE expression, aware and in UTC (SQLite may hand back the stored text)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime):
        raise TypeError(f"not a datetime: {parsed!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ------------------------------------------------------------------ cursor
def _encode(sort: str, row: Any) -> str:
    due = _aware(row.due)
    created = _aware(row.created_at)
    payload = {
        "s": sort,
        "p": int(row.priority),
        "d": due.isoformat() if due else None,
        "c": created.isoformat() if created else None,
        "i": str(row.id),
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> dict[str, Any]:
    def bad() -> InvalidInput:
        return InvalidInput("分页游标无效（或不是按当前排序方式取得的）", code="bad_cursor", field="cursor")

    if not isinstance(cursor, str) or not cursor or len(cursor) > 400:
        raise bad()
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(payload, dict) or payload.get("s") != sort:
            raise bad()
        priority, due, created, ident = payload["p"], payload["d"], payload["c"], payload["i"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not isinstance(ident, str):
            raise bad()
        due_at = datetime.fromisoformat(due) if due is not None else None
        created_at = datetime.fromisoformat(created)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise bad() from None
    if created_at.tzinfo is None or (due_at is not None and due_at.tzinfo is None):
        raise bad()
    return {"priority": priority, "due": due_at, "created": created_at, "id": ident}


def _keys(sort: str, after: dict[str, Any] | None) -> list[tuple[ColumnElement[Any], Any, bool]]:
    """The sort keys (expression, the cursor's value, descending) in order; the due date is a key only
    among rows that have one (a cursor on a row without one compares the later keys)."""
    values = after or {"priority": 0, "due": None, "created": None, "id": ""}
    has_due = values["due"] is not None
    due_keys: list[tuple[ColumnElement[Any], Any, bool]] = [(NO_DUE, 0 if has_due else 1, False)]
    if has_due or after is None:
        due_keys.append((DUE, values["due"], False))
    priority = [(tasks.c.priority, values["priority"], True)]
    tail = [(tasks.c.created_at, values["created"], False), (tasks.c.id, values["id"], False)]
    return (priority + due_keys if sort == "priority" else due_keys + priority) + tail


def _after(keys: Sequence[tuple[ColumnElement[Any], Any, bool]]) -> ColumnElement[bool]:
    """Rows strictly after the cursor row in the order of ``keys``."""
    options: list[ColumnElement[bool]] = []
    for index, (expr, value, descending) in enumerate(keys):
        equal = [k == v for k, v, _ in keys[:index]]
        options.append(and_(*equal, expr < value if descending else expr > value))
    return or_(*options)


def _order(sort: str) -> list[ColumnElement[Any]]:
    keys = _keys(sort, None)
    return [expr.desc() if descending else expr.asc() for expr, _, descending in keys]


# ------------------------------------------------------------------ the inbox
def _filters(flt: InboxFilter, catalogue: Catalogue, actor: str, now: datetime) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if flt.item is not None:
        if not any(i.code == flt.item for i in catalogue.items):
            raise InvalidInput(
                "事项目录中没有该事项", code="unknown_item", field="item", value=str(flt.item)[:40]
            )
        conds.append(cast(cases.c["items"], Text).like(f'%"{flt.item}"%'))
    if flt.state is not None:
        if flt.state not in LABELS:
            raise InvalidInput("办件状态不存在", code="bad_state", field="state", allowed=sorted(LABELS))
        conds.append(cases.c.status == flt.state)
    if flt.clock is not None:
        if flt.clock not in BADGES:
            raise InvalidInput("时限状态只能是 normal、yellow 或 red", code="bad_clock", field="clock")
        conds.append(_badge(now) == flt.clock)
    if flt.claim == "mine":
        conds.append(tasks.c.assignee == actor)
    elif flt.claim == "unclaimed":
        conds.append(tasks.c.assignee.is_(None))
    elif flt.claim != "all":
        raise InvalidInput("认领筛选只能是 all、mine 或 unclaimed", code="bad_claim", field="claim")
    return conds


def _query(now: datetime) -> Select[Any]:
    return select(
        tasks.c.id,
        tasks.c.element_id,
        tasks.c.name,
        tasks.c.form_key,
        tasks.c.business_key,
        tasks.c.candidate_groups,
        tasks.c.assignee,
        tasks.c.priority,
        tasks.c.created_at,
        tasks.c.mi_index,
        cases.c.flow,
        cases.c["items"].label("item_codes"),
        cases.c.department,
        cases.c.applicant_name,
        cases.c.status.label("case_status"),
        cases.c.submitted_at,
        CLOCK_ID.label("clock_id"),
        CLOCK_KIND.label("clock_kind"),
        CLOCK_DUE.label("clock_due"),
        CLOCK_WARN.label("clock_warn"),
        DUE.label("due"),
        _badge(now).label("badge"),
    ).select_from(_FROM)


def _item(row: Any, actor: str, names: dict[str, str]) -> dict[str, Any]:
    codes = [str(c) for c in row.item_codes or []]
    return {
        "id": row.id,
        "element_id": row.element_id,
        "name": row.name,
        "form_key": row.form_key,
        "case_id": row.business_key,
        "flow": row.flow,
        "items": [{"code": c, "name": names.get(c, c)} for c in codes],
        "department": row.department,
        "applicant_name": row.applicant_name,
        "case_status": row.case_status,
        "case_status_label": LABELS.get(row.case_status, row.case_status),
        "candidate_groups": [g for g in (row.candidate_groups or "").split(",") if g],
        "assignee": row.assignee,
        "claimed_by_me": bool(actor) and row.assignee == actor,
        "green_channel": int(row.priority) > 0,
        "branch": row.mi_index,
        "created_at": _aware(row.created_at),
        "submitted_at": _aware(row.submitted_at),
        "due_at": _aware(row.due),
        "clock": None
        if row.clock_id is None
        else {
            "id": int(row.clock_id),
            "kind": row.clock_kind,
            "due_at": _aware(row.clock_due),
            "warn_at": _aware(row.clock_warn),
        },
        "badge": row.badge,
        "badge_label": BADGE_LABELS[row.badge],
    }


def _counts(conn: Connection, scope: ColumnElement[bool], now: datetime) -> dict[str, int]:
    today = local_date(now)
    start, end = local_midnight(today), end_of_local_day(today)
    due_today = case((and_(DUE > start, DUE <= end), 1), else_=0)
    overdue = case((CLOCK_DUE <= now, 1), else_=0)
    row = conn.execute(
        select(func.count(), func.sum(due_today), func.sum(overdue)).select_from(_FROM).where(scope)
    ).one()
    return {"total": int(row[0] or 0), "due_today": int(row[1] or 0), "overdue": int(row[2] or 0)}


def inbox(
    conn: Connection,
    *,
    actor: str,
    groups: Iterable[str],
    now: datetime,
    catalogue: Catalogue,
    filters: InboxFilter | None = None,
    sort: SortOrder = "priority",
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of the inbox: ``{"items": [...], "next_cursor": str | None, "counts": {...}}``."""
    if sort not in get_args(SortOrder):
        raise InvalidInput("排序方式只能是 priority 或 due", code="bad_sort", field="sort")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"每页条数须为 1-{MAX_LIMIT}", code="bad_limit", field="limit", max=MAX_LIMIT)
    scope = _scope(actor, groups)
    conds = [scope, *_filters(filters or InboxFilter(), catalogue, actor, now)]
    if cursor is not None:
        conds.append(_after(_keys(sort, _decode(cursor, sort))))
    rows = conn.execute(_query(now).where(*conds).order_by(*_order(sort)).limit(limit + 1)).all()
    page, more = rows[:limit], len(rows) > limit
    names = {i.code: i.name for i in catalogue.items}
    return {
        "items": [_item(r, actor, names) for r in page],
        "next_cursor": _encode(sort, page[-1]) if more else None,
        "counts": _counts(conn, scope, now),
    }
