"""Administrator overrides of the working-day calendar, kept in the database.

The services read the calendar through a provider that rebuilds a ``WorkingCalendar`` with the stored
overrides when they change (the process caches it; another process picks a change up on its next reload).
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

from sqlalchemy import Connection, Engine, delete, insert, select

from engine.errors import InvalidInput
from engine.limits import check_plain_text
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import calendar_overrides
from engine.time.calendar import WorkingCalendar


def load_overrides(conn: Connection) -> dict[date, bool]:
    rows = conn.execute(select(calendar_overrides.c.day, calendar_overrides.c.working)).all()
    return {date.fromisoformat(day): bool(working) for day, working in rows}


def set_override(
    conn: Connection, day: date, working: bool | None, note: str, actor: str, now: datetime
) -> None:
    """Mark ``day`` as working (True) or rest (False); ``None`` removes the override.

    Only the override row and its audit event: stored deadlines do not follow by themselves. Commands use
    :func:`engine.cases.calendar_change.change_calendar`, which also counts every open clock, ready task
    and working-day timer again in the same transaction."""
    if working is not None and not note.strip():
        raise InvalidInput("调整工作日须说明依据（如国务院通知）", code="reason_required", field="note")
    check_plain_text(note, "note", "调整依据", multiline=True)
    conn.execute(delete(calendar_overrides).where(calendar_overrides.c.day == day.isoformat()))
    if working is not None:
        conn.execute(
            insert(calendar_overrides).values(
                day=day.isoformat(), working=working, note=note, set_by=actor, set_at=now
            )
        )
    detail = {"day": day.isoformat(), "working": working, "note": note}
    AuditRepository(conn).record(now, actor, "calendar_override", detail=detail)


class CalendarProvider:
    """Callable returning the current calendar (package data + stored overrides), re-read from the
    database at most every ``ttl_seconds`` so that an override made in another process is seen."""

    def __init__(self, engine: Engine, ttl_seconds: float = 60.0) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self._calendar: WorkingCalendar | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the cached calendar: the next call reads the overrides again (after this process changed
        them; see ``engine.cases.calendar_change``)."""
        with self._lock:
            self._calendar = None

    def __call__(self) -> WorkingCalendar:
        cal = self._calendar
        if cal is not None and time.monotonic() - self._loaded <= self.ttl:
            return cal
        # one thread reloads; the others keep serving the calendar they have meanwhile
        if not self._lock.acquire(blocking=cal is None):
            return cal  # type: ignore[return-value]
        try:
            if self._calendar is None or time.monotonic() - self._loaded > self.ttl:
                with self.engine.connect() as conn:
                    self._calendar = WorkingCalendar(load_overrides(conn))
                self._loaded = time.monotonic()
            return self._calendar
        finally:
            self._lock.release()
