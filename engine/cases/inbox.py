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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.sql import Select

from engine.cases.cursors import cursor_instant, cursor_int, cursor_text
from engine.cases.status import LABELS
from engine.errors import InvalidInput
from engine.persistence.repositories import MAX_FILTER_GROUPS, member_name
from engine.persistence.tables import NO_DUE as SORT_NO_DUE
from engine.persistence.tables import UTCDateTime, case_clocks, cases, task_candidates, tasks
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
MAX_ID = 36
"""Characters of a task id (the cursor carries the last one)."""
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


def _with_clocks(start: FromClause) -> FromClause:
    """``start`` (holding ``tasks``) joined to the task's case and clocks."""
    return (
        start.join(cases, cases.c.id == tasks.c.business_key)
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


_FROM = _with_clocks(tasks)


def _pick(own: Any, counted: Any) -> ColumnElement[Any]:
    return case((_own.c.id.is_not(None), own), else_=counted)


CLOCK_ID = _pick(_own.c.id, _counted.c.id)
CLOCK_KIND = _pick(_own.c.kind, _counted.c.kind)
CLOCK_DUE = _pick(_own.c.due_at, _counted.c.due_at)
CLOCK_WARN = _pick(_own.c.warn_at, _counted.c.warn_at)
DUE: ColumnElement[datetime] = func.coalesce(CLOCK_DUE, tasks.c.due_at, type_=UTCDateTime())
NO_DUE = case((DUE.is_(None), 1), else_=0)


def _badge(now: datetime | ColumnElement[Any]) -> ColumnElement[str]:
    return case((CLOCK_DUE <= now, "red"), (CLOCK_WARN <= now, "yellow"), else_="normal")


Member = tuple[str, str]
"""A ``task_candidates`` (kind, name): ``("group", "market")``, ``("user", "m1")``."""


def _members(actor: str, groups: Iterable[str]) -> list[Member]:
    """What the caller's inbox is made of: their groups, and themselves as a candidate user."""
    names = sorted(set(groups))
    if len(names) > MAX_FILTER_GROUPS:
        raise InvalidInput(
            f"一次最多按 {MAX_FILTER_GROUPS} 个组筛选待办",
            code="too_many_groups",
            field="groups",
            count=len(names),
            max=MAX_FILTER_GROUPS,
        )
    members = [("group", member_name(g)) for g in names]
    if actor:
        members.append(("user", member_name(actor, "user")))
    return members


SORT_DUE: ColumnElement[datetime] = func.coalesce(
    CLOCK_DUE, tasks.c.due_at, literal(SORT_NO_DUE, UTCDateTime()), type_=UTCDateTime()
)
"""``task_candidates.sort_due`` computed from the task and its clocks (for the tasks assigned to the caller,
which are theirs whoever the candidates are)."""


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
    """The cursor after ``row``, from the keys the page was ordered by."""
    due = _aware(row.key_due)
    due = None if due == SORT_NO_DUE else due
    created = _aware(row.key_created)
    payload = {
        "s": sort,
        "p": int(row.key_priority),
        "d": due.isoformat() if due else None,
        "c": created.isoformat() if created else None,
        "i": str(row.key_id),
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
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise bad() from None
    return {
        "priority": cursor_int(priority, bad),
        "due": cursor_instant(due, bad) if due is not None else None,
        "created": cursor_instant(created, bad),
        "id": cursor_text(ident, bad, MAX_ID),
    }


Keys = list[tuple[ColumnElement[Any], bool]]


def _keys(sort: str, priority: Any, due: Any, created: Any, ident: Any) -> Keys:
    """The sort keys (expression, descending) in order: the due date counts rows without one as due on
    ``SORT_NO_DUE``, after every real date."""
    tail = [(created, False), (ident, False)]
    if sort == "priority":
        return [(priority, True), (due, False), *tail]
    return [(due, False), (priority, True), *tail]


def _after(keys: Keys, sort: str) -> list[ColumnElement[bool]]:
    """Rows strictly after the cursor row (bound as ``after_priority``, ``after_due``, ``after_created``,
    ``after_id``: :func:`_cursor_params`) in the order of ``keys`` (and the bound of the first key, which
    the same condition implies, for the index to start from)."""
    values: list[Any] = [
        bindparam("after_priority"),
        bindparam("after_due", type_=UTCDateTime()),
        bindparam("after_created", type_=UTCDateTime()),
        bindparam("after_id"),
    ]
    if sort != "priority":
        values[0], values[1] = values[1], values[0]
    options: list[ColumnElement[bool]] = []
    for index, ((expr, descending), value) in enumerate(zip(keys, values, strict=True)):
        equal = [k == v for (k, _), v in zip(keys[:index], values, strict=False)]
        options.append(and_(*equal, expr < value if descending else expr > value))
    (first, descending), start = keys[0], values[0]
    return [first <= start if descending else first >= start, or_(*options)]


def _cursor_params(after: dict[str, Any]) -> dict[str, Any]:
    return {
        "after_priority": after["priority"],
        "after_due": after["due"] or SORT_NO_DUE,
        "after_created": after["created"],
        "after_id": after["id"],
    }


def _ordered(keys: Keys) -> list[ColumnElement[Any]]:
    return [expr.desc() if descending else expr.asc() for expr, descending in keys]


def _member_badge(row: Any, now: datetime | ColumnElement[Any]) -> ColumnElement[str]:
    return case((row.c.clock_due_at <= now, "red"), (row.c.clock_warn_at <= now, "yellow"), else_="normal")


_NOW = bindparam("now", type_=UTCDateTime())
_ACTOR = bindparam("actor")


def _branches(
    kinds: Sequence[str],
    actor: bool,
    sort: str,
    after: bool,
    filters: Callable[[ColumnElement[str]], list[ColumnElement[bool]]] | None = None,
    limited: bool = False,
) -> list[Select[Any]]:
    """The caller's ready tasks of cases with their sort keys: one SELECT per member (``task_candidates``
    rows, read in the order of an index; member i of kind ``kinds[i]`` named by the parameter ``member_i``)
    and, with ``actor``, one for the tasks assigned to the caller (the parameter ``actor``). With
    ``limited``, each gives only its first ``limit`` rows after the cursor that pass ``filters``: the
    first ``limit`` tasks of the whole inbox are among them, as a task cannot rank lower in one member's
    list than in the union. A task several members bring comes with the same keys from each."""
    out: list[Select[Any]] = []
    if actor:
        keys = _keys(sort, tasks.c.priority, SORT_DUE, tasks.c.created_at, tasks.c.id)
        conds = [tasks.c.assignee == _ACTOR, tasks.c.state == "ready"]
        conds += filters(_badge(_NOW)) if filters else []
        conds += _after(keys, sort) if after else []
        mine = select(
            tasks.c.id.label("task_id"),
            tasks.c.priority,
            SORT_DUE.label("sort_due"),
            tasks.c.created_at,
            CLOCK_DUE.label("clock_due_at"),
        )
        out.append(_limited(mine.select_from(_FROM).where(*conds), keys, limited))
    for index, kind in enumerate(kinds):
        row = task_candidates.alias(f"member_{index}")
        keys = _keys(sort, row.c.priority, row.c.sort_due, row.c.created_at, row.c.task_id)
        source: FromClause = row
        conds = [
            row.c.kind == kind,
            row.c.name == bindparam(f"member_{index}"),
            row.c.state == "ready",
            row.c.case_id.is_not(None),
        ]
        if filters:
            source = row.join(tasks, tasks.c.id == row.c.task_id).join(cases, cases.c.id == row.c.case_id)
            conds += filters(_member_badge(row, _NOW))
        conds += _after(keys, sort) if after else []
        query = select(row.c.task_id, row.c.priority, row.c.sort_due, row.c.created_at, row.c.clock_due_at)
        out.append(_limited(query.select_from(source).where(*conds), keys, limited))
    return out


def _limited(query: Select[Any], keys: Keys, limited: bool) -> Select[Any]:
    return query.order_by(*_ordered(keys)).limit(bindparam("limit")) if limited else query


def _check_filters(flt: InboxFilter, catalogue: Catalogue) -> None:
    if flt.item is not None and not any(i.code == flt.item for i in catalogue.items):
        raise InvalidInput(
            "事项目录中没有该事项", code="unknown_item", field="item", value=str(flt.item)[:40]
        )
    if flt.state is not None and flt.state not in LABELS:
        raise InvalidInput("办件状态不存在", code="bad_state", field="state", allowed=sorted(LABELS))
    if flt.clock is not None and flt.clock not in BADGES:
        raise InvalidInput("时限状态只能是 normal、yellow 或 red", code="bad_clock", field="clock")
    if flt.claim not in get_args(ClaimFilter):
        raise InvalidInput("认领筛选只能是 all、mine 或 unclaimed", code="bad_claim", field="claim")


@dataclass(frozen=True)
class _Narrowed:
    """Which filters a query applies (their values are parameters: :func:`_filter_params`)."""

    item: bool
    state: bool
    clock: bool
    claim: ClaimFilter

    @classmethod
    def of(cls, flt: InboxFilter) -> _Narrowed | None:
        if flt == InboxFilter():
            return None
        return cls(flt.item is not None, flt.state is not None, flt.clock is not None, flt.claim)

    def conditions(self, badge: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """The conditions over ``tasks``, ``cases`` and the task's ``badge``."""
        conds: list[ColumnElement[bool]] = []
        if self.item:
            conds.append(cast(cases.c["items"], Text).like(bindparam("item_pattern")))
        if self.state:
            conds.append(cases.c.status == bindparam("case_state"))
        if self.clock:
            conds.append(badge == bindparam("badge"))
        if self.claim == "mine":
            conds.append(tasks.c.assignee == _ACTOR)
        elif self.claim == "unclaimed":
            conds.append(tasks.c.assignee.is_(None))
        return conds


def _filter_params(flt: InboxFilter) -> dict[str, Any]:
    """The values of ``flt`` (checked: an item code of the catalogue holds no wildcard)."""
    item = None if flt.item is None else f'%"{flt.item}"%'
    return {"item_pattern": item, "case_state": flt.state, "badge": flt.clock}


def _query(now: datetime | ColumnElement[Any], keys: FromClause) -> Select[Any]:
    """The inbox rows of the caller's tasks in ``keys`` (see :func:`_branches`), with those keys."""
    return select(
        keys.c.priority.label("key_priority"),
        keys.c.sort_due.label("key_due"),
        keys.c.created_at.label("key_created"),
        keys.c.task_id.label("key_id"),
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
    ).select_from(_with_clocks(keys.join(tasks, tasks.c.id == keys.c.task_id)))


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


@cache
def _counts_statement(kinds: tuple[str, ...], actor: bool, sort: str) -> Select[Any]:
    """Over the whole inbox: each task once (several members bring the same task with the same keys);
    the parameters of :func:`_branches` and ``day_start`` / ``day_end`` (today, Asia/Shanghai)."""
    branches = _branches(kinds, actor, sort, after=False)
    keys = union(
        *[b.with_only_columns(b.selected_columns.task_id, *list(b.selected_columns)[2::2]) for b in branches]
    ).subquery("inbox_all")
    start, end = bindparam("day_start", type_=UTCDateTime()), bindparam("day_end", type_=UTCDateTime())
    due_today = case((and_(keys.c.sort_due > start, keys.c.sort_due <= end), 1), else_=0)
    overdue = case((keys.c.clock_due_at <= _NOW, 1), else_=0)
    return select(func.count(), func.sum(due_today), func.sum(overdue)).select_from(keys)


@cache
def _page_statement(
    kinds: tuple[str, ...], actor: bool, sort: str, after: bool, narrowed: _Narrowed | None
) -> Select[Any]:
    """The first ``limit`` rows of the inbox after the cursor (if ``after``) through the filters of
    ``narrowed``: built once per shape, its values parameters (SQLAlchemy then compiles it once too)."""
    conditions = narrowed.conditions if narrowed else None
    firsts = _branches(kinds, actor, sort, after, conditions, limited=True)
    keys = union(*[select(*list(b.subquery().c)[:4]) for b in firsts]).subquery("inbox_keys")
    order = _ordered(_keys(sort, keys.c.priority, keys.c.sort_due, keys.c.created_at, keys.c.task_id))
    return _query(_NOW, keys).order_by(*order).limit(bindparam("limit"))


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
    """One page of the inbox: ``{"items": [...], "next_cursor": str | None, "counts": {...}}``.

    Read from the caller's ``task_candidates`` rows (per member, the first rows of an index range in the
    sort order) and the tasks assigned to them; a task several members bring is listed once."""
    if sort not in get_args(SortOrder):
        raise InvalidInput("排序方式只能是 priority 或 due", code="bad_sort", field="sort")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"每页条数须为 1-{MAX_LIMIT}", code="bad_limit", field="limit", max=MAX_LIMIT)
    members = _members(actor, groups)
    flt = filters or InboxFilter()
    _check_filters(flt, catalogue)
    after = _decode(cursor, sort) if cursor is not None else None
    if not members:
        return {"items": [], "next_cursor": None, "counts": {"total": 0, "due_today": 0, "overdue": 0}}
    kinds = tuple(kind for kind, _ in members)
    today = local_date(now)
    params: dict[str, Any] = {
        "actor": actor,
        "now": now,
        "limit": limit + 1,
        "day_start": local_midnight(today),
        "day_end": end_of_local_day(today),
        **{f"member_{i}": name for i, (_, name) in enumerate(members)},
        **_filter_params(flt),
        **(_cursor_params(after) if after else {}),
    }
    page_query = _page_statement(kinds, bool(actor), sort, after is not None, _Narrowed.of(flt))
    rows = conn.execute(page_query, params).all()
    page, more = rows[:limit], len(rows) > limit
    names = {i.code: i.name for i in catalogue.items}
    counted = conn.execute(_counts_statement(kinds, bool(actor), sort), params).one()
    return {
        "items": [_item(r, actor, names) for r in page],
        "next_cursor": _encode(sort, page[-1]) if more else None,
        "counts": {
            "total": int(counted[0] or 0),
            "due_today": int(counted[1] or 0),
            "overdue": int(counted[2] or 0),
        },
    }
