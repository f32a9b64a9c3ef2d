"""The working-day overrides as the people who keep them see them: the overrides of a year with who set
them and why, the warning for a year the holiday calendar does not know, and setting or clearing one
date with a required note (through :func:`engine.cases.calendar_change.change_calendar`, the command the
CLI ``onewindow calendar`` uses too, so every open deadline follows in the same transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from engine.cases.calendar_change import CalendarChange, change_calendar
from engine.errors import InvalidInput, NotFound
from engine.persistence.tables import calendar_overrides
from engine.service import WorkflowService
from engine.time.calendar import known_years, supported_years, unknown_year_warning

__all__ = ["MAX_NOTE", "CalendarDayChange", "change_calendar_day", "check_year", "year_overrides"]

MAX_NOTE = 500
"""Characters of the note (the basis: a State Council notice, a local decision) of an override."""


def check_year(year: int) -> None:
    """A year the calendar answers for (``InvalidInput`` ``date_out_of_range`` otherwise)."""
    supported = supported_years()
    if isinstance(year, bool) or not isinstance(year, int) or year not in supported:
        raise InvalidInput(
            f"年份超出工作日日历支持的范围（{supported.start}–{supported.stop - 1} 年）",
            code="date_out_of_range",
            field="year",
            supported=f"{supported.start}-{supported.stop - 1}",
        )


def _warnings(year: int) -> list[str]:
    return [] if year in known_years() else [unknown_year_warning(year)]


def year_overrides(conn: Connection, year: int) -> dict[str, Any]:
    """The overrides of ``year`` (by date) and the calendar's coverage: ``{year, known_years: {first,
    last}, year_known, overrides: [{day, working, note, set_by, set_at}], warnings}``; ``warnings`` holds
    the unknown-year warning when the holiday data does not cover ``year``."""
    check_year(year)
    rows = conn.execute(
        select(calendar_overrides)
        .where(calendar_overrides.c.day.like(f"{year:04d}-%"))
        .order_by(calendar_overrides.c.day)
    ).mappings()
    known = known_years()
    return {
        "year": year,
        "known_years": {"first": known.start, "last": known.stop - 1},
        "year_known": year in known,
        "overrides": [
            {
                "day": date.fromisoformat(r["day"]),
                "working": bool(r["working"]),
                "note": r["note"],
                "set_by": r["set_by"],
                "set_at": r["set_at"],
            }
            for r in rows
        ],
        "warnings": _warnings(year),
    }


@dataclass(frozen=True)
class CalendarDayChange:
    """What :func:`change_calendar_day` did: the date, whether it is a working day now and whether an
    override stays on it, how many stored deadlines moved, the instances that could not be recounted, and
    the warnings of the new calendar (a year without holiday data)."""

    day: date
    working: bool
    overridden: bool
    clocks: int
    tasks: int
    timers: int
    failed: tuple[str, ...]
    warnings: tuple[str, ...]


def _note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput("调整工作日须说明依据（如国务院通知）", code="reason_required", field="note")
    text = note.strip()
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"说明不能超过 {MAX_NOTE} 个字符", code="too_long", field="note", limit=MAX_NOTE)
    return text


def change_calendar_day(
    workflow: WorkflowService, day: date, working: bool | None, note: str, actor: str
) -> CalendarDayChange:
    """Mark ``day`` a working day (True) or a rest day (False), or clear its override (None; ``NotFound``
    ``override_not_found`` when it has none), with a required ``note``; every open deadline follows."""
    text = _note(note)
    check_year(day.year)
    if working is None:
        with workflow.engine.connect() as conn:
            found = conn.execute(
                select(calendar_overrides.c.day).where(calendar_overrides.c.day == day.isoformat())
            ).first()
        if found is None:
            raise NotFound("该日期没有调整记录", code="override_not_found", day=day.isoformat())
    change: CalendarChange = change_calendar(workflow, day, working, text, actor)
    warnings = list(change.calendar.warnings)
    for warning in _warnings(day.year):
        if warning not in warnings:
            warnings.append(warning)
    return CalendarDayChange(
        day=day,
        working=change.working,
        overridden=working is not None,
        clocks=change.clocks,
        tasks=change.tasks,
        timers=change.timers,
        failed=change.failed,
        warnings=tuple(warnings),
    )
