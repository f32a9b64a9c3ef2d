"""Summary rows of the supervisor's figures (``figure_counts``), kept in the transaction of each change.

:func:`engine.cases.figures.figures` counts the cases **received** in a period (by their Beijing day of
receipt) and, of those, the ones closed / rated **before the period ends**. So every count a case adds
is filed under its day of receipt (``day``, the cohort) and the Beijing day of the event that made it
count (``event_day``); the figures of a period are a SUM over ``day`` in the period and ``event_day`` up
to its last day, and the series buckets are buckets of ``event_day``. Every count is kept in two grains:
by day (``grain`` 'd') and by month (``grain`` 'm': ``day`` and ``event_day`` are the first of their
month), so that a long period reads its whole months from a few month rows and only the days at its
ends (and the last month's events of a period ending inside a month) from day rows (:func:`pieces`).

======================  ===========================  ==================================================
row                     rows of                      counters
======================  ===========================  ==================================================
received (``items``:    :func:`received_rows`        ``received``, ``online``, ``at_most_one_visit``,
the case's item codes,  (submission);                ``zero_visits`` (visits are the *current* count:
``event_day = day``)    :func:`visit_rows`           a visit at the counter moves the case out of a
                        (a visit at the counter)     bucket, on its day of receipt)
event (``items`` '')    :func:`closing_rows`         one of ``withdrawn`` (the applicant withdrew,
                        (the case closes; a          撤回件: whether accepted or not), ``finished``
                        re-closing moves it)         (closed otherwise after acceptance: 办结) or
                                                     ``not_accepted`` (:func:`closing_counter`); of a
                                                     finished case its promised clock once stopped:
                                                     ``promised_stopped``, ``promised_late``
                                                     (stopped at or after its kept deadline),
                                                     ``promised_no_due`` (no deadline kept: the
                                                     figures recount those from the clock's JSON); a
                                                     withdrawn case has none (not in 按时办结率)
                        :func:`count_rating`         ``rated_1`` .. ``rated_5`` (once per case; none
                        (a rating)                   for a withdrawn case: not in 满意度)
======================  ===========================  ==================================================

Why sums stay exact (what never changes after the fact): ``submitted_at``, ``department``, ``items`` and
``channel`` are written once; ``accepted_at`` is set only while a case is open; a closed status only
moves to another closed status (``closed_at`` moves to the later day: :func:`closing_rows` moves the
case's counts, to another counter too if the new status counts elsewhere); a case's case-level clocks
are stopped at the decision, before or when it closes, and a stopped clock row never changes again
(calendar changes recount open clocks only); a rating is written once. The item set is kept (its codes,
sorted), so handled-at-once (马上就办) follows the catalogue of the day the figures are asked for, as the
scan does.

:func:`rebuild` recomputes the rows from the cases (operators, and the 0140 migration's backfill does
the same); :func:`engine.cases.figures.scan_figures` is the reference the rows must equal.

Every write is one ``INSERT .. ON CONFLICT DO UPDATE`` adding to its rows. What a step of a case adds
(received at its start, a visit at the counter, a closing with the verdict of the promised clock the step
holds, :func:`promised_counts`) rides in the step's own write, the last of the command
(``CaseWrite.figures``: on PostgreSQL a part of the step's one statement); a withdrawal's closing
(:func:`count_closing`, reading the verdict by sub-queries) and a rating write theirs at the end of their
transaction, before its audit row. Lock order: event rows before received rows, day rows (ascending
``event_day``) before month rows (:func:`in_lock_order`), so two transactions never wait on each other in a
circle; and as a row lock is held only until the commit, cases received the same day in the same department
and item set, or closing on the same day, commit one after the other from that point on only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from engine.cases.status import WITHDRAWN
from engine.persistence.tables import FIGURE_COUNTERS, case_clocks, cases, figure_counts
from engine.time.calendar import local_date, local_midnight

__all__ = [
    "EVENT_ROW",
    "closing_counter",
    "closing_rows",
    "count_closing",
    "count_rating",
    "count_received",
    "visit_rows",
    "in_lock_order",
    "items_key",
    "month_of",
    "pieces",
    "promised_counts",
    "rating_counts",
    "rebuild",
    "received_rows",
    "summary_query",
    "summary_rows",
]

EVENT_ROW = ""
"""``items`` of the event rows (closings and ratings)."""
DAY, MONTH = "d", "m"
"""The grains of the rows: by day (any period) and by month (the whole months of a long period)."""
KEY = ("grain", "day", "department", "items", "event_day")
_BATCH = 5000


def items_key(codes: Iterable[Any]) -> str:
    """The item set of a case as a row key: its codes, sorted, as JSON (what handled-at-once reads)."""
    return json.dumps(sorted({str(c) for c in codes}), ensure_ascii=False)


def month_of(day: date) -> date:
    """The first day of the month of ``day`` (the ``day`` / ``event_day`` of grain 'm' rows)."""
    return day.replace(day=1)


def _grains(key: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The keys of one count in both grains."""
    by_month = {"day": month_of(key["day"]), "event_day": month_of(key["event_day"])}
    return [{**key, "grain": DAY}, {**key, **by_month, "grain": MONTH}]


_CLOCK_COUNTS = ("promised_stopped", "promised_late", "promised_no_due")


def _bump(conn: Connection, key: Mapping[str, Any], deltas: Mapping[str, Any]) -> None:
    """Add ``deltas`` to the rows of ``key`` in both grains (created with them when missing)."""
    _add(conn, [{**k, **deltas} for k in _grains(key)])


def _add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add to rows (keys with their grain, the same counters in each; with ``case_id`` and ``sign``: the
    case's promised clock counts too) in one statement (several rows: one multi-row INSERT)."""
    names = tuple(sorted({k for r in rows for k in r if k not in KEY and k not in ("case_id", "sign")}))
    rows = [{**dict.fromkeys(names, 0), **r} for r in rows]  # a moved closing may change its counter
    stmt = _upsert(conn.dialect.name, names, "case_id" in rows[0])
    conn.execute(stmt, rows if len(rows) > 1 else rows[0])


@cache
def _upsert(dialect_name: str, names: tuple[str, ...], clock_counts: bool) -> Any:
    """``INSERT .. ON CONFLICT DO UPDATE`` adding ``names`` (bound by name) to the row of the bound key;
    built once per shape, so that SQLAlchemy compiles it once."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    values: dict[str, Any] = {name: bindparam(name) for name in (*KEY, *names)}
    if clock_counts:
        case_id, sign = bindparam("case_id"), bindparam("sign", type_=Integer)
        values.update(
            promised_stopped=sign * _promised(case_id),
            promised_late=sign * _promised(case_id, case_clocks.c.stopped_at >= case_clocks.c.due_at),
            promised_no_due=sign * _promised(case_id, case_clocks.c.due_at.is_(None)),
        )
    stmt = dialect.insert(figure_counts).values(values)
    added = (*names, *(_CLOCK_COUNTS if clock_counts else ()))
    return stmt.on_conflict_do_update(
        index_elements=list(KEY),
        set_={name: figure_counts.c[name] + stmt.excluded[name] for name in added},
    )


def received_rows(
    *, submitted_at: datetime, department: str, items: Iterable[Any], channel: str, visits: int
) -> list[dict[str, Any]]:
    """What a case submitted (received) adds: its rows' keys in both grains with their counters (the
    lifecycle hands them to the start step's own write, ``CaseWrite.figures``)."""
    day = local_date(submitted_at)
    key = {"day": day, "department": department, "items": items_key(items), "event_day": day}
    deltas = {
        "received": 1,
        "online": int(channel == "online"),
        "at_most_one_visit": int(visits <= 1),
        "zero_visits": int(visits == 0),
    }
    return [{**k, **deltas} for k in _grains(key)]


def count_received(
    conn: Connection,
    *,
    submitted_at: datetime,
    department: str,
    items: Iterable[Any],
    channel: str,
    visits: int,
) -> None:
    """A case was submitted (received): :func:`received_rows` written on ``conn`` (the benchmark's data;
    a submission's rows ride in its start step's write)."""
    rows = received_rows(
        submitted_at=submitted_at, department=department, items=items, channel=channel, visits=visits
    )
    _add(conn, rows)


def in_lock_order(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows to add (keys with their grain and counters) as one write adds them: one per key (the
    counters of a key summed), event rows before received rows, day rows before month rows, ascending
    ``event_day``."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        into = merged.setdefault(tuple(row[k] for k in KEY), {k: row[k] for k in KEY})
        for name, n in row.items():
            if name not in KEY:
                into[name] = into.get(name, 0) + n
    return sorted(
        merged.values(), key=lambda r: (r["items"] != EVENT_ROW, r["grain"] != DAY, r["event_day"], r["day"])
    )


def visit_rows(case: Mapping[str, Any], visits: int) -> list[dict[str, Any]]:
    """What one more trip of the applicant to the counter changes (``case``: its row, with
    ``submitted_at``, ``department``, ``items``; ``visits``: its count with this trip): crossing 0 -> 1
    or 1 -> 2, the case leaves a visit bucket of its received rows; otherwise nothing."""
    if visits not in (1, 2):
        return []
    day = local_date(case["submitted_at"])
    key = {"day": day, "department": case["department"], "items": items_key(case["items"]), "event_day": day}
    left = "zero_visits" if visits == 1 else "at_most_one_visit"
    return [{**k, left: -1} for k in _grains(key)]


def _promised(case_id: ColumnElement[Any], *condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many of the case's promised clocks (one at most) are stopped and meet ``condition``."""
    return (
        select(func.count())
        .where(
            case_clocks.c.case_id == case_id,
            case_clocks.c.kind == "promised",
            case_clocks.c.task_id.is_(None),
            case_clocks.c.stopped_at.is_not(None),
            *condition,
        )
        .scalar_subquery()
    )


def promised_counts(stopped: tuple[datetime, datetime | None] | None) -> dict[str, int]:
    """The promised-clock counters of a finished case whose promised clock stopped at ``stopped[0]``
    against the deadline ``stopped[1]`` (None: none kept); ``stopped`` None: no stopped promised clock."""
    if stopped is None:
        return dict.fromkeys(_CLOCK_COUNTS, 0)
    stopped_at, due_at = stopped
    return {
        "promised_stopped": 1,
        "promised_late": int(due_at is not None and stopped_at >= due_at),
        "promised_no_due": int(due_at is None),
    }


def closing_counter(status: str, accepted: bool) -> str:
    """The counter a case closing with ``status`` (``accepted``: it had been accepted) adds to: a case
    the applicant withdrew (撤回) is ``withdrawn``, accepted or not: neither 办结 nor in the on-time rate;
    any other closing after acceptance is ``finished`` (办结: approved or denied and delivered, 不予许可
    included, or terminated by the office, 终止办理); a closing without acceptance is ``not_accepted``
    (不予受理, or ended at intake)."""
    if status == WITHDRAWN:
        return "withdrawn"
    return "finished" if accepted else "not_accepted"


def _closing(
    case: Mapping[str, Any], status: str, sign: int, promised: Mapping[str, int] | None
) -> dict[str, Any]:
    counter = closing_counter(status, case["accepted_at"] is not None)
    if counter != "finished":
        return {counter: sign}
    if promised is None:  # its promised clock's counts, read by the statement
        return {"finished": sign, "case_id": str(case["id"]), "sign": sign}
    return {"finished": sign, **{name: sign * n for name, n in promised.items()}}


def closing_rows(
    case: Mapping[str, Any],
    status: str,
    closed_at: datetime,
    was_closed_at: datetime | None,
    promised: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """What the case closing with ``status`` at ``closed_at`` adds (``case``: its row as it was, with
    ``id``, ``status``, ``submitted_at``, ``department``, ``accepted_at``); ``was_closed_at``: when it had
    closed before (with ``case["status"]``, a closed status moving on to another one), whose counts move
    to the new day and counter (none when both are the same). ``promised``: the :func:`promised_counts` of
    a finished case; None: the rows name the case for :func:`count_closing`'s statement to count its
    stored promised clock."""
    key = {"day": local_date(case["submitted_at"]), "department": case["department"], "items": EVENT_ROW}
    new_day = local_date(closed_at)
    if was_closed_at is None:
        return [{**k, **_closing(case, status, 1, promised)} for k in _grains({**key, "event_day": new_day})]
    old_day, was = local_date(was_closed_at), str(case["status"])
    accepted = case["accepted_at"] is not None
    same_counter = closing_counter(was, accepted) == closing_counter(status, accepted)
    if old_day == new_day and same_counter:
        return []
    # moved: the day rows (earlier day first), then the month rows if the month or the counter changed
    old, new = _grains({**key, "event_day": old_day}), _grains({**key, "event_day": new_day})
    removed, added = _closing(case, was, -1, promised), _closing(case, status, 1, promised)
    rows = [{**old[0], **removed}, {**new[0], **added}]
    if old[1] != new[1] or not same_counter:
        rows += [{**old[1], **removed}, {**new[1], **added}]
    return rows


def count_closing(
    conn: Connection,
    case: Mapping[str, Any],
    status: str,
    closed_at: datetime,
    was_closed_at: datetime | None,
) -> None:
    """:func:`closing_rows` written on ``conn``, the promised clock's counts read from its stored row:
    call it after the case's clocks were stopped in the same transaction."""
    rows = closing_rows(case, status, closed_at, was_closed_at)
    if rows:
        _add(conn, rows)


def rating_counts(status: str) -> bool:
    """Whether the rating of a case in ``status`` counts in the figures (满意度, the ratings per level,
    the mean): not that of a case the applicant withdrew (撤回件), which is neither 办结 nor in the on-time
    rate either. A withdrawn case stays withdrawn (no closed status moves to it or from it)."""
    return status != WITHDRAWN


def count_rating(
    conn: Connection,
    *,
    submitted_at: datetime,
    department: str,
    status: str,
    level: int,
    rated_at: datetime,
) -> None:
    """The case (closed with ``status``) was rated ``level`` (1-5) at ``rated_at`` (once per case); a
    rating that does not count (:func:`rating_counts`) writes nothing."""
    if not rating_counts(status):
        return
    key = {
        "day": local_date(submitted_at),
        "department": department,
        "items": EVENT_ROW,
        "event_day": local_date(rated_at),
    }
    _bump(conn, key, {f"rated_{int(level)}": 1})


# ------------------------------------------------------------------ reading and rebuilding


def summary_rows(
    conn: Connection, first: date, last: date, department: str | None, bounds: list[date], weekly: bool
) -> list[dict[str, Any]]:
    """The rows of :func:`summary_query`, as dicts."""
    query = summary_query(first, last, department, bounds, weekly)
    return [dict(r) for r in conn.execute(query).mappings()]


Piece = tuple[str, date, date, date | None, date]
"""(grain, first and last ``day``, first and last ``event_day`` (None: no lower bound))."""


def pieces(first: date, last: date, weekly: bool) -> list[Piece]:
    """The rows that sum to the figures of the cases received from ``first`` to ``last`` with events up
    to ``last``: the whole months of a long period (monthly series) from the month rows, the other days
    from the day rows. Month rows count events by month: the events of the last month, when the period
    ends inside it, come from the day rows (found by ``event_day``)."""
    everything: list[Piece] = [(DAY, first, last, None, last)]
    if weekly:  # weekly buckets need the days
        return everything
    whole_first = first if first.day == 1 else _next_month(first)
    ends_a_month = (last + timedelta(days=1)).day == 1
    whole_last = month_of(last) if ends_a_month else _previous_month(month_of(last))
    if whole_first > whole_last:
        return everything
    whole_end = _next_month(whole_last) - timedelta(days=1)
    found: list[Piece] = []
    if first < whole_first:
        found.append((DAY, first, whole_first - timedelta(days=1), None, last))
    if whole_end < last:
        found.append((DAY, whole_end + timedelta(days=1), last, None, last))
    if ends_a_month:
        found.append((MONTH, whole_first, whole_last, None, month_of(last)))
    else:
        found.append((MONTH, whole_first, whole_last, None, _previous_month(month_of(last))))
        found.append((DAY, whole_first, whole_end, month_of(last), last))
    return found


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def summary_query(
    first: date, last: date, department: str | None, bounds: list[date], weekly: bool
) -> Select[Any]:
    """The summed counters of the cases received from ``first`` to ``last`` (Beijing days), for events
    up to ``last``, by department, item set and bucket of the event day (``bounds``: the first days of
    buckets 1..n-1; received rows have event_day = day, so their bucket is the day of receipt's)."""
    t = figure_counts
    parts = []
    for grain, day_from, day_to, event_from, event_to in pieces(first, last, weekly):
        where = [t.c.grain == grain, t.c.day >= day_from, t.c.day <= day_to, t.c.event_day <= event_to]
        if event_from is not None:
            where.append(t.c.event_day >= event_from)
        if department is not None:
            where.append(t.c.department == department)
        parts.append(
            select(t.c.department, t.c["items"], t.c.event_day, *[t.c[n] for n in FIGURE_COUNTERS]).where(
                *where
            )
        )
    sub = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("summary")
    bucket: ColumnElement[int] = literal(0, Integer)
    if bounds:
        bucket = case(*[(sub.c.event_day < b, i) for i, b in enumerate(bounds)], else_=len(bounds))
    inner = select(
        sub.c.department, sub.c["items"], bucket.label("bucket"), *[sub.c[n] for n in FIGURE_COUNTERS]
    )
    grouped = inner.subquery("bucketed")
    return select(
        grouped.c.department,
        grouped.c["items"],
        grouped.c.bucket,
        *[cast(func.sum(grouped.c[n]), Integer).label(n) for n in FIGURE_COUNTERS],
    ).group_by(grouped.c.department, grouped.c["items"], grouped.c.bucket)


def _contributions(row: Mapping[str, Any]) -> Iterable[tuple[tuple[Any, ...], dict[str, int]]]:
    """What one case (joined to its stopped promised clock) adds, as (key, counters)."""
    day = local_date(row["submitted_at"])
    visits = int(row["visits"])
    yield (
        (day, row["department"], items_key(row["items"]), day),
        {
            "received": 1,
            "online": int(row["channel"] == "online"),
            "at_most_one_visit": int(visits <= 1),
            "zero_visits": int(visits == 0),
        },
    )
    if row["closed_at"] is not None:
        key = (day, row["department"], EVENT_ROW, local_date(row["closed_at"]))
        counter = closing_counter(str(row["status"]), row["accepted_at"] is not None)
        if counter != "finished":
            yield key, {counter: 1}
        else:
            stopped, due = row["promised_stopped_at"], row["promised_due_at"]
            yield (
                key,
                {
                    "finished": 1,
                    "promised_stopped": int(stopped is not None),
                    "promised_late": int(stopped is not None and due is not None and stopped >= due),
                    "promised_no_due": int(stopped is not None and due is None),
                },
            )
    if row["rating"] is not None and row["rated_at"] is not None and rating_counts(str(row["status"])):
        key = (day, row["department"], EVENT_ROW, local_date(row["rated_at"]))
        yield key, {f"rated_{int(row['rating'])}": 1}


def rebuild(conn: Connection, since: date | None = None) -> int:
    """Recompute the rows of the cases received from the month of ``since`` (every case when None) from
    the cases and their clocks, replacing what is there; returns how many rows it wrote. For operators
    (after a repair by hand in the database); run it in one transaction with the commands stopped, or at
    least for months no command changes any more."""
    clear = delete(figure_counts)
    promised = case_clocks.alias("promised")
    query = select(
        cases.c.submitted_at,
        cases.c.department,
        cases.c["items"],
        cases.c.channel,
        cases.c.visits,
        cases.c.status,
        cases.c.accepted_at,
        cases.c.closed_at,
        cases.c.rating,
        cases.c.rated_at,
        promised.c.stopped_at.label("promised_stopped_at"),
        promised.c.due_at.label("promised_due_at"),
    ).select_from(
        cases.outerjoin(
            promised,
            and_(
                promised.c.case_id == cases.c.id,
                promised.c.kind == "promised",
                promised.c.task_id.is_(None),
                promised.c.stopped_at.is_not(None),
            ),
        )
    )
    if since is not None:
        since = month_of(since)  # the month rows of its month are recounted whole
        clear = clear.where(figure_counts.c.day >= since)
        query = query.where(cases.c.submitted_at >= local_midnight(since))
    conn.execute(clear)
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(query.execution_options(yield_per=_BATCH)).mappings():
        for (day, department, items, event_day), counts in _contributions(row):
            for key in (
                (DAY, day, department, items, event_day),
                (MONTH, month_of(day), department, items, month_of(event_day)),
            ):
                into = totals.setdefault(key, dict.fromkeys(FIGURE_COUNTERS, 0))
                for name, n in counts.items():
                    into[name] += n
    rows = [dict(zip(KEY, key, strict=True), **counts) for key, counts in totals.items()]
    for start in range(0, len(rows), _BATCH):
        conn.execute(figure_counts.insert(), rows[start : start + _BATCH])
    return len(rows)
