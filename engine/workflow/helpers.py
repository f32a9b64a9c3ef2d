"""Functions that sandboxed BPMN expressions may call (besides the whitelisted builtins).

They read the injected clock (``engine.workflow.clock``) and the working-day calendar
(``engine.time.calendar.default_calendar()``, imported lazily). Dates in and out are ISO strings so that
whatever an expression stores in task data stays JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from engine.errors import InvalidInput

from .clock import SHANGHAI, current_calendar, current_now


def _calendar() -> Any:
    """The calendar of the running command (with overrides), else the package default."""
    installed = current_calendar()
    if installed is not None:
        return installed
    from engine.time.calendar import default_calendar

    return default_calendar()


def _to_date(value: Any) -> date:
    """An ISO date / datetime string (or date object) as a Shanghai calendar date."""
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"无法识别的日期：{value!r}", code="bad_date") from None
        return parsed.astimezone(SHANGHAI).date() if parsed.tzinfo else parsed.date()
    raise InvalidInput(f"无法识别的日期：{value!r}", code="bad_date")


def _to_count(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n) or abs(n) > 10_000:
        raise InvalidInput(f"{what}必须是不超过 10000 的整数：{n!r}", code="bad_number")
    return int(n)


def now() -> str:
    """The injected current time as an ISO 8601 UTC string."""
    return current_now().isoformat()


def today() -> str:
    """Today's date in Asia/Shanghai (ISO ``YYYY-MM-DD``)."""
    return current_now().astimezone(SHANGHAI).date().isoformat()


def add_working_days(start: Any, n: Any) -> str:
    """``start`` plus ``n`` working days (Chinese calendar), as an ISO date."""
    return _calendar().add_working_days(_to_date(start), _to_count(n, "工作日数")).isoformat()


def working_days_between(a: Any, b: Any) -> int:
    """Working days between two dates (as defined by the calendar)."""
    return int(_calendar().working_days_between(_to_date(a), _to_date(b)))


def working_deadline(start: Any, days: Any) -> str:
    """End (23:59:59 Asia/Shanghai) of the ``days``-th working day after ``start``: an ISO datetime
    usable as a timer ``timeDate``."""
    end = date.fromisoformat(add_working_days(start, days))
    return datetime.combine(end, time(23, 59, 59), SHANGHAI).isoformat()


def _number(n: Any) -> str:
    if isinstance(n, bool) or not isinstance(n, int | float) or n < 0 or n > 100_000:
        raise InvalidInput(f"时长必须是 0 到 100000 之间的数：{n!r}", code="bad_number")
    return str(int(n)) if n == int(n) else str(n)


def days(n: Any) -> str:
    """An ISO 8601 duration of ``n`` calendar days (``P3D``)."""
    return f"P{_number(n)}D"


def hours(n: Any) -> str:
    """An ISO 8601 duration of ``n`` hours (``PT2H``)."""
    return f"PT{_number(n)}H"


HELPERS: dict[str, Callable[..., Any]] = {
    "now": now,
    "today": today,
    "add_working_days": add_working_days,
    "working_days_between": working_days_between,
    "working_deadline": working_deadline,
    "days": days,
    "hours": hours,
}
