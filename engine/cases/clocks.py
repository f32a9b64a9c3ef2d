"""Case and task deadline clocks kept in the database, and the worker job that raises yellow/red cards.

A clock row holds the ``engine.time.clocks.Clock`` as JSON plus two instants the worker can query cheaply:
``warn_at`` (turns yellow) and ``due_at`` (turns red). Both are recomputed whenever the clock is paused,
resumed or stopped, and for every open clock when an administrator changes the working-day calendar
(:meth:`ClockRepository.follow_calendar`); a clock paused before its deadline has neither (it cannot turn
colour while the applicant is awaited), one paused once its time had run out keeps its deadline (no pause
moves it then: it stays red). A stopped clock keeps its last ``due_at`` (the deadline it finished against:
``stopped_at < due_at`` is on time, see ``engine.cases.figures``) and has no ``warn_at``.
Yellow and red cards are raised once each per clock: rows are claimed with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL and the escalations table has one row per (clock, card level).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select, update

from engine.persistence.database import is_postgres, unit_of_work
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import case_clocks, escalations
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import MAX_HOURS, Clock

CalendarProvider = Callable[[], WorkingCalendar]


_MICROSECOND = timedelta(microseconds=1)


def hours_until(due: datetime, start: datetime) -> float:
    """The limit in hours of a task clock started at ``start`` that counts up to the due date ``due``: 0
    when the due date has passed already (the clock is red from its start), at most ``MAX_HOURS``."""
    return min(max((due - start).total_seconds() / 3600, 0.0), MAX_HOURS)


def warn_at(clock: Clock, cal: WorkingCalendar) -> datetime | None:
    """The first instant the clock is yellow (or red); None when it cannot change colour (paused, stopped
    or without a limit). For a clock never paused it is worked out (``Clock.warning_from``, or the
    deadline when that comes first) and checked against the status: the first instant that is not normal,
    the one before it normal. Otherwise, or should that check fail, a bisection between the start and the
    deadline finds it to the minute: status only moves forward while the clock runs."""
    due = clock.due_at(cal)
    if due is None or clock.stopped_at is not None:
        return None

    def normal(at: datetime) -> bool:
        if clock.pauses:
            return clock.status(at, cal) == "normal"
        # without a pause the deadline is ``due`` at every instant: the status's own test, without
        # computing the deadline again at each step of the bisection
        return at < due and not clock.past_warning(at, cal)

    low, high = clock.started_at, due
    if not normal(low):
        return low
    worked_out = clock.warning_from(cal)
    first = due if worked_out is None else min(worked_out, due)
    if not clock.pauses and not normal(first) and normal(first - _MICROSECOND):
        return first
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        if normal(middle):
            low = middle
        else:
            high = middle
    return high


def _instants(clock: Clock, cal: WorkingCalendar) -> dict[str, Any]:
    return {
        "clock": clock.to_dict(),
        # a stopped clock keeps the deadline it finished against: the on-time figures compare the two
        "due_at": clock.due_at(cal),
        "warn_at": warn_at(clock, cal),
        "stopped_at": clock.stopped_at,
    }


RunningClock = tuple[int, str | None, Clock]
"""A running clock row: id, task id (None: a case clock), the clock."""


class ClockRepository:
    """Clock rows of a case; never commits.

    A step of a case (:class:`engine.cases.lifecycle.CaseLifecycle`) hands it the case's running clocks read
    with the case row (:meth:`preload`): :meth:`running` then answers without a query, and new and changed
    clocks wait (the rows computed from their final state) until :meth:`take_writes` hands them to the step's
    one case write. A clock opened in such a step has a negative stand-in id until then. Without a preload
    every call goes to the database at once."""

    def __init__(self, conn: Connection, cal: WorkingCalendar) -> None:
        self.conn = conn
        self.cal = cal
        self._case: str | None = None
        self._running: list[RunningClock] = []
        self._new: list[tuple[int, str | None, Clock]] = []  # stand-in id, task id, clock
        self._changed: dict[int, Clock] = {}

    def preload(self, case_id: str, running: list[RunningClock]) -> None:
        """The running clocks of ``case_id`` (in id order) as the caller read them in this transaction;
        from now on writes wait for :meth:`take_writes`."""
        self._case, self._running = case_id, list(running)

    def open(self, case_id: str, clock: Clock, task_id: str | None = None) -> int:
        return self.open_many(case_id, [(clock, task_id)])[0]

    def open_many(self, case_id: str, clocks: list[tuple[Clock, str | None]]) -> list[int]:
        """Open clocks (with their task ids), their rows in this order; their ids (stand-ins while the
        writes wait)."""
        if not clocks:
            return []
        if case_id == self._case:
            ids = [-(len(self._new) + n + 1) for n in range(len(clocks))]
            self._new += [(i, task_id, clock) for i, (clock, task_id) in zip(ids, clocks, strict=True)]
            self._running += [(i, task_id, clock) for i, (clock, task_id) in zip(ids, clocks, strict=True)]
            return ids
        rows = [self._new_row(case_id, task_id, clock) for clock, task_id in clocks]
        if len(rows) == 1:
            return [int(self.conn.execute(insert(case_clocks).values(**rows[0])).inserted_primary_key[0])]
        returning = insert(case_clocks).returning(case_clocks.c.id, sort_by_parameter_order=True)
        return [int(i) for i in self.conn.execute(returning, rows).scalars()]

    def _new_row(self, case_id: str, task_id: str | None, clock: Clock) -> dict[str, Any]:
        return {"case_id": case_id, "task_id": task_id, "kind": clock.kind, **_instants(clock, self.cal)}

    def running(
        self, case_id: str, *, task_id: str | None = None, case_level: bool = False
    ) -> list[tuple[int, Clock]]:
        if case_id == self._case:
            return [
                (i, clk)
                for i, task, clk in self._running
                if (task_id is None or task == task_id) and (not case_level or task is None)
            ]
        query = select(case_clocks.c.id, case_clocks.c.clock).where(
            case_clocks.c.case_id == case_id, case_clocks.c.stopped_at.is_(None)
        )
        if task_id is not None:
            query = query.where(case_clocks.c.task_id == task_id)
        if case_level:
            query = query.where(case_clocks.c.task_id.is_(None))
        return [(int(r[0]), Clock.from_dict(r[1])) for r in self.conn.execute(query).all()]

    def save(self, clock_id: int, clock: Clock) -> None:
        if self._case is None:
            self.conn.execute(
                update(case_clocks).where(case_clocks.c.id == clock_id).values(**_instants(clock, self.cal))
            )
            return
        if clock_id > 0:  # a new clock's row is computed from its final state anyway
            self._changed[clock_id] = clock
        if clock.stopped_at is not None:  # no longer running
            self._running = [r for r in self._running if r[0] != clock_id]

    def take_writes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows of the clocks opened (in order) and changed (by id) since the last call, computed
        now; the caller writes them (``engine.persistence.steps.CaseWrite``)."""
        assert self._case is not None, "take_writes needs a preload"
        new = [self._new_row(self._case, task_id, clock) for _, task_id, clock in self._new]
        changed = [{"id": i, **_instants(clock, self.cal)} for i, clock in sorted(self._changed.items())]
        self._new, self._changed = [], {}
        return new, changed

    def stopped_here(self, kind: str) -> tuple[datetime, datetime | None] | None:
        """(stopped_at, due_at) of the case clock of ``kind`` (legal, promised) that this step stopped,
        its row still waiting; None when none did."""
        waiting = [clock for _, task_id, clock in self._new if task_id is None] + [*self._changed.values()]
        for clock in waiting:
            if clock.kind == kind and clock.stopped_at is not None:
                return clock.stopped_at, clock.due_at(self.cal)
        return None

    def follow_calendar(self, task_dues: dict[str, datetime] | None = None) -> int:
        """Count every open clock again with this repository's calendar (an administrator changed it) and
        store its due and warning instants; returns how many rows moved. ``task_dues`` are the new due
        dates of tasks whose deadline came from a due-date expression: their clocks count hours up to
        the due date (see ``CaseLifecycle._task_clock``), so the limit moves with it."""
        moved = 0
        rows = self.conn.execute(
            select(
                case_clocks.c.id,
                case_clocks.c.task_id,
                case_clocks.c.clock,
                case_clocks.c.due_at,
                case_clocks.c.warn_at,
            ).where(case_clocks.c.stopped_at.is_(None))
        ).all()
        for clock_id, task_id, data, due_at, warn_at_ in rows:
            clock = Clock.from_dict(data)
            due = (task_dues or {}).get(task_id) if task_id else None
            if due is not None and clock.limit_hours is not None:
                clock.limit_hours = hours_until(due, clock.started_at)
            values = _instants(clock, self.cal)
            if values["clock"] != data or values["due_at"] != due_at or values["warn_at"] != warn_at_:
                self.conn.execute(update(case_clocks).where(case_clocks.c.id == clock_id).values(**values))
                moved += 1
        return moved

    def all_for(self, case_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(case_clocks).where(case_clocks.c.case_id == case_id).order_by(case_clocks.c.id)
        )
        return [dict(r._mapping) for r in rows]


def tick_clocks(
    engine: Engine, clock: Callable[[], datetime], calendar: CalendarProvider, worker: str, limit: int = 200
) -> int:
    """Raise due yellow and red cards once each; returns how many were raised."""
    raised = 0
    skip_locked = is_postgres(engine)
    with unit_of_work(engine) as conn:
        now = clock()
        cal = calendar()
        query = (
            select(case_clocks)
            .where(
                case_clocks.c.stopped_at.is_(None),
                or_(
                    and_(case_clocks.c.warn_at <= now, case_clocks.c.yellow_at.is_(None)),
                    and_(case_clocks.c.due_at <= now, case_clocks.c.red_at.is_(None)),
                ),
            )
            .order_by(case_clocks.c.warn_at)
            .limit(limit)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        for row in conn.execute(query).all():
            m = row._mapping
            status = Clock.from_dict(m["clock"]).status(now, cal)
            levels = []
            if status in ("yellow", "red") and m["yellow_at"] is None:
                levels.append("yellow")
            if status == "red" and m["red_at"] is None:
                levels.append("red")
            for level in levels:
                conn.execute(
                    insert(escalations).values(
                        case_id=m["case_id"],
                        clock_id=m["id"],
                        task_id=m["task_id"],
                        level=level,
                        raised_at=now,
                        raised_by=worker,
                        note=_note(m["kind"], level),
                    )
                )
                AuditRepository(conn).record(
                    now,
                    worker,
                    "escalation" if level == "red" else "warning",
                    business_key=m["case_id"],
                    task_id=m["task_id"],
                    detail={"clock": m["kind"], "level": level, "clock_id": m["id"]},
                )
                raised += 1
            if levels:
                conn.execute(
                    update(case_clocks)
                    .where(case_clocks.c.id == m["id"])
                    .values(
                        yellow_at=m["yellow_at"] or now,
                        red_at=now if "red" in levels else m["red_at"],
                    )
                )
    return raised


_KIND_ZH = {"legal": "法定时限", "promised": "承诺时限", "task": "环节时限"}


def _note(kind: str, level: str) -> str:
    if level == "red":
        return f"{_KIND_ZH.get(kind, kind)}已超期（红牌），已发起督办"
    return f"{_KIND_ZH.get(kind, kind)}即将到期（黄牌预警）"
