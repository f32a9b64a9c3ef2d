"""An administrator's working-day override, with everything counted in working days following it.

:func:`change_calendar` sets (or clears) the override of one date and, in the same transaction, counts
again with the new calendar: the stored due and warning instants of every open case clock (so that
``tick_clocks`` raises the yellow and red cards the override brought forward), the ``due_at`` of every
ready task, and the due time of every waiting BPMN timer whose date came from the working-day helpers
(:mod:`engine.deadlines`). After the commit this process's calendar provider reads the overrides again;
other processes see the override when their provider next reloads (``CalendarProvider.ttl``).
:func:`recount_calendar` counts the same again with no override changed, after the holiday package was
updated (``onewindow calendar recount``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection

from engine.cases.clocks import ClockRepository
from engine.deadlines import follow_calendar_in
from engine.persistence.database import after_commit
from engine.persistence.repositories import AuditRepository
from engine.service import WorkflowService
from engine.time.calendar import WorkingCalendar, known_years
from engine.time.overrides import load_overrides, set_override

__all__ = ["CalendarChange", "Recount", "change_calendar", "recount_calendar"]


@dataclass(frozen=True)
class Recount:
    """The calendar the deadlines were counted with, how many stored deadlines moved, and the instances
    whose model failed to evaluate (their deadlines stay as they were; the audit log says why)."""

    calendar: WorkingCalendar
    clocks: int
    tasks: int
    timers: int
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalendarChange:
    """The calendar after the change, how many stored deadlines moved, and the instances whose model failed
    to evaluate (their deadlines stay as they were; the audit log says why)."""

    day: date
    working: bool  # whether ``day`` is a working day now
    calendar: WorkingCalendar
    clocks: int
    tasks: int
    timers: int
    failed: tuple[str, ...] = ()


def change_calendar(
    workflow: WorkflowService, day: date, working: bool | None, note: str, actor: str
) -> CalendarChange:
    """Mark ``day`` as a working day (True) or a rest day (False), or clear its override (None), and make
    every open deadline follow, as one (retried) transaction."""

    def command(conn: Connection) -> CalendarChange:
        now = workflow.clock()
        set_override(conn, day, working, note, actor, now)
        followed = _follow(workflow, conn, actor, {"day": day.isoformat()})
        cal = followed.calendar
        return CalendarChange(
            day,
            cal.is_working_day(day),
            cal,
            followed.clocks,
            followed.tasks,
            followed.timers,
            followed.failed,
        )

    return workflow.run(command)


def recount_calendar(workflow: WorkflowService, actor: str) -> Recount:
    """Count every open deadline again with the calendar as it is now, no override changed: after the
    holiday package was updated (a year it did not know, counted Monday to Friday with a warning, now has
    its holidays and adjusted workdays), as one (retried) transaction."""
    known = known_years()
    reason = {"recount": True, "known_years": [known.start, known.stop - 1]}
    return workflow.run(lambda conn: _follow(workflow, conn, actor, reason))


def _follow(workflow: WorkflowService, conn: Connection, actor: str, detail: dict[str, Any]) -> Recount:
    """Every open deadline counted with the calendar ``conn`` reads now (the overrides stored), audited as
    ``calendar_followed``; this process's calendar provider reads the overrides again after the commit."""
    now = workflow.clock()
    cal = WorkingCalendar(load_overrides(conn))
    moved = follow_calendar_in(workflow, conn, cal, actor)
    clocks = ClockRepository(conn, cal).follow_calendar(moved.to_due_date)
    failed = tuple(sorted(moved.failed))
    detail = {**detail, "clocks": clocks, "tasks": len(moved.tasks), "timers": len(moved.timers)}
    AuditRepository(conn).record(now, actor, "calendar_followed", detail={**detail, "failed": list(failed)})
    reload: Callable[[], None] | None = getattr(workflow.calendar, "invalidate", None)
    if reload is not None:
        after_commit(conn, reload)
    return Recount(cal, clocks, len(moved.tasks), len(moved.timers), failed)
