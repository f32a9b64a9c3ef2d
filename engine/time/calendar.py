"""The working-day calendar (工作日) of a government service centre.

A working day is Monday to Friday except the statutory holidays, plus the weekend days the State
Council declares workdays (调休). The holiday data comes from the ``chinese_calendar`` package
(PyPI ``chinesecalendar``); administrators may override single dates (kept in the database by the
service layer and handed in as ``overrides``). Overrides always win over the package.

The package only knows a range of years (``known_years()``). For any other year we never guess
silently: a ``strict`` calendar raises :class:`~engine.errors.CalendarUnknownYear`; a lenient one
(the default) falls back to Monday–Friday for that year, logs a warning once per year and process,
and records a bilingual warning in ``WorkingCalendar.warnings``.

Working-day questions are about Asia/Shanghai local dates: turn stored UTC instants into dates with
:func:`local_date` first (the calendar methods do so themselves when handed a ``datetime``); an instant a
count of working days starts from goes through :func:`local_start_date` (00:00:00 is the end of the day
before, as a deadline is written).

Speed: each calendar keeps, per year, the sorted tuple of its working days, so ``is_working_day`` is a
set lookup and ``add_working_days`` / ``working_days_between`` are a few bisections per year crossed.

Bounds: a calendar answers only for ``supported_years()`` (the known years plus ``YEAR_MARGIN`` on either
side); a date outside is :class:`~engine.errors.InvalidInput` (``date_out_of_range``), so no question can
make a calendar build, cache or warn about thousands of years. Per calendar the caches therefore hold at
most ``len(supported_years())`` years, the module-level weekday cache is an LRU of ``_WEEKDAY_CACHE``
years, and the unknown-year warning is recorded once per year and calendar and logged once per year and
process.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from engine.errors import CalendarUnknownYear, InvalidInput

__all__ = [
    "SHANGHAI",
    "WorkingCalendar",
    "default_calendar",
    "known_years",
    "local_date",
    "local_start_date",
    "local_midnight",
    "end_of_local_day",
    "unknown_year_warning",
    "supported_years",
    "YEAR_MARGIN",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

_log = logging.getLogger(__name__)
_logged_years: set[int] = set()  # years already logged by this process (the log says it once)
_ONE_DAY = timedelta(days=1)
YEAR_MARGIN = 10  # years before / after the known ones a calendar still answers for (Monday to Friday)
_WEEKDAY_CACHE = 64


def local_date(dt: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware instant. Naive datetimes are refused, not guessed."""
    if not isinstance(dt, datetime):
        raise InvalidInput("需要带时区的时间", code="not_a_datetime", value=repr(dt))
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInput("时间必须带时区（按 UTC 存储）", code="naive_datetime", value=dt.isoformat())
    return dt.astimezone(SHANGHAI).date()


def local_start_date(dt: datetime) -> date:
    """The Asia/Shanghai date a count of working days from the aware instant ``dt`` starts after (the day
    itself not counted): its local date, except that an instant at exactly 00:00:00 is 24:00 of the day
    before, the way every deadline is written (:func:`end_of_local_day`). So a deadline used as a start
    counts on from its own day: N working days and then M more are N + M, not N + M + 1."""
    day = local_date(dt)
    return day - _ONE_DAY if dt.astimezone(SHANGHAI).time() == time(0) else day


def local_midnight(d: date) -> datetime:
    """The instant (aware, UTC) at which the Asia/Shanghai day ``d`` begins."""
    return datetime.combine(d, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def end_of_local_day(d: date) -> datetime:
    """The instant (aware, UTC) at which the Asia/Shanghai day ``d`` ends: midnight starting the next day."""
    return local_midnight(d + _ONE_DAY)


@cache
def known_years() -> range:
    """The years the installed ``chinese_calendar`` has holiday data for."""
    days = chinese_calendar.holidays.keys()
    return range(min(days).year, max(days).year + 1)


def supported_years() -> range:
    """The years a calendar answers for: the known years and ``YEAR_MARGIN`` years on either side."""
    known = known_years()
    return range(known.start - YEAR_MARGIN, known.stop + YEAR_MARGIN)


def _check_year(year: int) -> None:
    supported = supported_years()
    if year not in supported:
        raise InvalidInput(
            f"日期超出工作日日历支持的范围（{supported.start}–{supported.stop - 1} 年）：{year} 年",
            code="date_out_of_range",
            year=year,
            supported=f"{supported.start}-{supported.stop - 1}",
        )


def unknown_year_warning(year: int) -> str:
    """The bilingual warning for a date in ``year`` when the holiday calendar does not know that year."""
    known = known_years()
    return (
        f"节假日日历没有 {year} 年的数据，{year} 年暂按周一至周五计算工作日，"
        "请更新节假日数据或由管理员维护调整。"
        f" / No holiday data for year {year} (known: {known.start}-{known.stop - 1}); working days in "
        f"{year} are assumed to be Monday to Friday until the calendar is updated or overridden."
    )


@cache
def _package_working_days(year: int) -> frozenset[date] | None:
    """The package's working days of ``year``; ``None`` when the package does not know the year."""
    if year not in known_years():
        return None
    first = date(year, 1, 1)
    days = (first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days))
    return frozenset(d for d in days if chinese_calendar.is_workday(d))


@lru_cache(maxsize=_WEEKDAY_CACHE)
def _weekdays(year: int) -> frozenset[date]:
    first = date(year, 1, 1)
    days = (first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days))
    return frozenset(d for d in days if d.weekday() < 5)


def _as_date(value: date) -> date:
    if isinstance(value, datetime):  # a datetime is a date subclass: never compare it as one
        return local_date(value)
    if not isinstance(value, date):
        raise InvalidInput("需要日期", code="not_a_date", value=repr(value))
    return value


def _as_bound(value: date) -> date:
    """A bound of a count of working days: a datetime through :func:`local_start_date`."""
    return local_start_date(value) if isinstance(value, datetime) else _as_date(value)


class WorkingCalendar:
    """Working days from the statutory holiday calendar, with administrator overrides.

    ``overrides`` maps a date to ``True`` (a working day) or ``False`` (a rest day).
    """

    def __init__(self, overrides: Mapping[date, bool] | None = None, *, strict: bool = False) -> None:
        self.strict = strict
        self.warnings: list[str] = []
        self._overrides: dict[date, bool] = {}
        for d, working in (overrides or {}).items():
            if isinstance(d, datetime) or not isinstance(d, date):
                raise InvalidInput("工作日覆盖的键必须是日期", code="bad_override", value=repr(d))
            self._overrides[d] = bool(working)
        self._days: dict[int, tuple[date, ...]] = {}
        self._sets: dict[int, frozenset[date]] = {}

    def __repr__(self) -> str:
        return f"WorkingCalendar(overrides={len(self._overrides)}, strict={self.strict})"

    # -- what the package knows -------------------------------------------------------------
    def known_years(self) -> range:
        """The years ``chinese_calendar`` has data for (other years: see the module docstring)."""
        return known_years()

    def _unknown_year(self, year: int) -> frozenset[date]:
        known = known_years()
        if self.strict:
            raise CalendarUnknownYear(
                f"节假日日历没有 {year} 年的数据，无法计算工作日",
                year=year,
                known=f"{known.start}-{known.stop - 1}",
            )
        text = unknown_year_warning(year)
        if text not in self.warnings:
            self.warnings.append(text)
        if year not in _logged_years:
            _logged_years.add(year)
            _log.warning(text)
        return _weekdays(year)

    def _year_days(self, year: int) -> tuple[date, ...]:
        days = self._days.get(year)
        if days is None:
            _check_year(year)
            base = _package_working_days(year)
            if base is None:
                base = self._unknown_year(year)
            mine = {d: w for d, w in self._overrides.items() if d.year == year}
            working = (base - {d for d, w in mine.items() if not w}) | {d for d, w in mine.items() if w}
            days = tuple(sorted(working))
            self._sets[year] = frozenset(working)
            self._days[year] = days
        return days

    # -- questions ----------------------------------------------------------------------------
    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` (a date, or an aware datetime taken in Asia/Shanghai) is a working day."""
        d = _as_date(d)
        override = self._overrides.get(d)
        if override is not None:
            return override
        if d.year not in self._sets:
            self._year_days(d.year)
        return d in self._sets[d.year]

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.add_working_days(d, 1)

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself is not counted).

        ``n == 0`` gives ``start`` when it is a working day, else the next working day. A negative
        ``n`` counts backwards: the ``|n|``-th working day before ``start``. An aware datetime ``start``
        is taken by :func:`local_start_date` (00:00:00 is the end of the day before).
        """
        start = _as_bound(start)
        if n == 0:
            return start if self.is_working_day(start) else self.next_working_day(start)
        year = start.year
        days = self._year_days(year)
        if n > 0:
            i = bisect_right(days, start)  # first working day after start
            remaining = n
            while i + remaining > len(days):
                remaining -= len(days) - i
                year += 1
                days, i = self._year_days(year), 0
            return days[i + remaining - 1]
        i = bisect_right(days, start - _ONE_DAY)  # days[:i] are the working days before start
        remaining = -n
        while remaining > i:
            remaining -= i
            year -= 1
            days = self._year_days(year)
            i = len(days)
        return days[i - remaining]

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in ``(start, end]``; negative (the mirror count) when ``end < start``.
        Aware datetimes are taken by :func:`local_start_date` (00:00:00 is the end of the day before)."""
        start, end = _as_bound(start), _as_bound(end)
        if end < start:
            return -self.working_days_between(end, start)
        total = 0
        for year in range(start.year, end.year + 1):
            days = self._year_days(year)
            lo = bisect_right(days, start) if year == start.year else 0
            hi = bisect_right(days, end) if year == end.year else len(days)
            total += hi - lo
        return total


@cache
def default_calendar() -> WorkingCalendar:
    """The process-wide lenient calendar without overrides (for callers that have no DB overrides)."""
    return WorkingCalendar()
