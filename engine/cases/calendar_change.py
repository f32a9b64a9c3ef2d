"""An administrator's working-day override, with everything counted in working days following it.

:func:`change_calendar` sets (or clears) the override of one date and, in the same transaction, counts
again with the new calendar: the stored due and warning instants of every open case clock (so that
``tick_clocks`` raises the yellow and red cards the override brought forward), the ``due_at`` of every
ready task, and the due time of every waiting BPMN timer whose date came from the working-day helpers
(:mod:`engine.deadlines`). After the commit this process's calendar provider reads the overrides again;
other processes see the override when their provider next reloads (``CalendarProvider.ttl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection

from engine.cases.clocks import ClockRepository
from engine.deadlines import follow_calendar_in
from engine.persistence.database import after_commit
from engine.persistence.repositories import AuditRepository
from engine.service import WorkflowService
from engine.time.calendar import WorkingCalendar
from engine.time.overrides import load_overrides, set_override

__all__ = ["CalendarChange", "change_calendar"]


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
        cal = WorkingCalendar(load_overrides(conn))
        moved = follow_calendar_in(workflow, conn, cal, actor)
        clocks = ClockRepository(conn, cal).follow_calendar(moved.to_due_date)
        detail = {
            "day": day.isoformat(),
            "clocks": clocks,
            "tasks": len(moved.tasks),
            "timers": len(moved.timers),
            "failed": sorted(moved.failed),
        }
        AuditRepository(conn).record(now, actor, "calendar_followed", detail=detail)
        reload: Callable[[], None] | None = getattr(workflow.calendar, "invalidate", None)
        if reload is not None:
            after_commit(conn, reload)
        failed = tuple(sorted(moved.failed))
        return CalendarChange(
            day, cal.is_working_day(day), cal, clocks, len(moved.tasks), len(moved.timers), failed
        )

    return workflow.run(command)
