"""The injected clock of the workflow adapter.

SpiffWorkflow's timers and our sandbox helpers must never read the wall clock: the caller (service
layer, tests) passes ``now`` into every ``Runtime`` call and ``Runtime`` sets it here, in a
``ContextVar``, for the duration of the engine call. Reading it outside such a call is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China has no daylight saving time: a fixed +08:00 offset is exact (and needs no tz database)."""

_NOW: ContextVar[datetime | None] = ContextVar("onewindow_workflow_now", default=None)
_CALENDAR: ContextVar[Any] = ContextVar("onewindow_workflow_calendar", default=None)


def as_utc(now: datetime) -> datetime:
    """Check that ``now`` is aware and return it in UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return now.astimezone(UTC)


@contextmanager
def use_clock(now: datetime) -> Iterator[datetime]:
    """Make ``now`` the engine's current time inside the ``with`` block."""
    token = _NOW.set(as_utc(now))
    try:
        yield as_utc(now)
    finally:
        _NOW.reset(token)


@contextmanager
def use_calendar(calendar: Any) -> Iterator[None]:
    """Make ``calendar`` (an ``engine.time.calendar.WorkingCalendar`` with the administrator's overrides)
    the one working-day helpers use inside the ``with`` block; ``None`` keeps the package default."""
    token = _CALENDAR.set(calendar)
    try:
        yield
    finally:
        _CALENDAR.reset(token)


def current_calendar() -> Any:
    """The calendar installed by ``use_calendar`` or None."""
    return _CALENDAR.get()


def current_now() -> datetime:
    """The injected current time (UTC). Raises if no engine call set it."""
    now = _NOW.get()
    if now is None:
        raise RuntimeError("no injected clock: engine code ran outside Runtime (use_clock)")
    return now
