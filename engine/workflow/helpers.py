"""Functions that sandboxed BPMN expressions may call (besides the whitelisted builtins).

They read the injected clock (``engine.workflow.clock``) and the working-day calendar
(``engine.time.calendar.default_calendar()``, imported lazily). Dates in and out are ISO strings so that
whatever an expression stores in task data stays JSON.

Every argument is bounded before any work: a date is at most ``MAX_DATE_TEXT`` characters and lies within
the calendar's known years plus ``HELPER_YEAR_MARGIN`` on either side, a working-day count is at most
``MAX_WORKING_DAYS``, a span between two dates at most ``MAX_SPAN_DAYS``. Anything else is
``InvalidInput`` whose ``detail`` names the helper and the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from engine.errors import InvalidInput

from .clock import SHANGHAI, current_calendar, current_now
from .el import EL_HELPERS
from .scripting import DATE, DATETIME, print_line, timedelta_of

MAX_DATE_TEXT = 40  # characters of an ISO date / date-time argument
MAX_WORKING_DAYS = 1_000  # working days one call may count (about four years)
MAX_SPAN_DAYS = 3_660  # calendar days between the two dates of working_days_between (ten years)
HELPER_YEAR_MARGIN = 5  # years before / after the calendar's known years a date may lie in


def _calendar() -> Any:
    """The calendar of the running command (with overrides), else the package default."""
    installed = current_calendar()
    if installed is not None:
        return installed
    from engine.time.calendar import default_calendar

    return default_calendar()


def _day_of(moment: datetime, as_bound: bool) -> date:
    """The Asia/Shanghai date of ``moment`` (naive: Asia/Shanghai). ``as_bound``: the date of a bound of
    a count of working days (its start, or the end of ``working_days_between``), where 00:00:00 is 24:00
    of the day before, as ``working_deadline`` writes a deadline (``engine.time.calendar.local_start_date``
    for the clocks)."""
    local = moment.astimezone(SHANGHAI) if moment.tzinfo else moment
    if as_bound and local.time() == time(0):
        return local.date() - timedelta(days=1)
    return local.date()


def _parse_date(value: Any, helper: str, argument: str, as_bound: bool = False) -> date:
    if isinstance(value, datetime):
        return _day_of(value, as_bound)
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) <= MAX_DATE_TEXT:
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return _day_of(parsed, as_bound)
    shown = repr(value) if isinstance(value, str) and len(value) <= 50 else type(value).__name__
    raise InvalidInput(
        f"{helper}() 的参数 {argument} 不是可识别的日期：{shown}",
        code="bad_date",
        helper=helper,
        argument=argument,
    )


def _to_date(value: Any, helper: str = "helper", argument: str = "date", *, as_bound: bool = False) -> date:
    """An ISO date / datetime string (or date object) as a Shanghai calendar date, within the years the
    working-day calendar knows plus ``HELPER_YEAR_MARGIN``. ``as_bound``: the instant bounds a count of
    working days, and a date-time at exactly 00:00:00 is the end of the day before (a plain date is
    that date)."""
    from engine.time.calendar import known_years

    parsed = _parse_date(value, helper, argument, as_bound)
    known = known_years()
    low, high = known.start - HELPER_YEAR_MARGIN, known.stop - 1 + HELPER_YEAR_MARGIN
    if not low <= parsed.year <= high:
        raise InvalidInput(
            f"{helper}() 的参数 {argument} 超出工作日日历支持的范围（{low}–{high} 年）：{parsed.isoformat()}",
            code="date_out_of_range",
            helper=helper,
            argument=argument,
            supported=f"{low}-{high}",
        )
    return parsed


def _to_count(n: Any, what: str, helper: str = "helper", argument: str = "n") -> int:
    if (
        isinstance(n, bool)
        or not isinstance(n, int | float)
        or n != n
        or abs(n) > MAX_WORKING_DAYS
        or n != int(n)
    ):
        shown = repr(n) if isinstance(n, int | float) and abs(n) < 10**12 else type(n).__name__
        raise InvalidInput(
            f"{helper}() 的参数 {argument}（{what}）必须是绝对值不超过 {MAX_WORKING_DAYS} 的整数：{shown}",
            code="bad_number",
            helper=helper,
            argument=argument,
            limit=MAX_WORKING_DAYS,
        )
    return int(n)


def now() -> str:
    """The injected current time as an ISO 8601 UTC string."""
    return current_now().isoformat()


def today() -> str:
    """Today's date in Asia/Shanghai (ISO ``YYYY-MM-DD``)."""
    return current_now().astimezone(SHANGHAI).date().isoformat()


def add_working_days(start: Any, n: Any) -> str:
    """``start`` plus ``n`` working days (Chinese calendar), as an ISO date. A date-time ``start`` at
    exactly 00:00:00 Asia/Shanghai (a ``working_deadline``) is the end of the day before, except for
    ``n == 0``: the day ``start`` runs in (or the next working day), as ``working_deadline`` counts it."""
    count = _to_count(n, "工作日数", "add_working_days", "n")
    first = _to_date(start, "add_working_days", "start", as_bound=count != 0)
    return _calendar().add_working_days(first, count).isoformat()


def working_days_between(a: Any, b: Any) -> int:
    """Working days between two dates (as defined by the calendar): those after ``a``'s day up to
    ``b``'s. A date-time at exactly 00:00:00 Asia/Shanghai is the end of the day before, so that
    ``working_days_between(x, working_deadline(x, n))`` is ``n``."""
    first = _to_date(a, "working_days_between", "a", as_bound=True)
    last = _to_date(b, "working_days_between", "b", as_bound=True)
    _refuse_long_span(first, last, "working_days_between", "b")
    return int(_calendar().working_days_between(first, last))


def _refuse_long_span(first: date, last: date, helper: str, argument: str) -> None:
    if abs((last - first).days) > MAX_SPAN_DAYS:
        raise InvalidInput(
            f"{helper}() 的两个日期相距超过 {MAX_SPAN_DAYS} 天",
            code="span_too_long",
            helper=helper,
            argument=argument,
            limit=MAX_SPAN_DAYS,
        )


def paused_working_days(start: Any, end: Any, since: Any = None) -> int:
    """The working days a pause from ``start`` to ``end`` takes out of a working-day limit counted from
    ``since``, by the case clocks' rule: those from the start's day up to, not including, the end's day,
    and after ``since``'s day (which a limit never counts; at exactly 00:00:00 the day before, as for a
    clock started then). With the instants the engine recorded
    (``now()`` when the pause began and ended, ``accepted_at``), a model's timer moves as the suspended
    clock does."""
    first, last = _to_date(start, "paused_working_days", "start"), _to_date(end, "paused_working_days", "end")
    if since is not None:
        counted_from = _to_date(since, "paused_working_days", "since", as_bound=True)
        first = max(first, counted_from + timedelta(days=1))
    _refuse_long_span(first, last, "paused_working_days", "end")
    if last <= first:
        return 0
    return int(_calendar().working_days_between(first - timedelta(days=1), last - timedelta(days=1)))


MAX_PAUSES = 1_000  # pauses one paused_deadline() call counts


def _to_instant(value: Any, helper: str, argument: str) -> datetime:
    """An aware instant from an ISO date-time string (naive: Asia/Shanghai) within the calendar's years."""
    _to_date(value, helper, argument)  # bounded and dated, or refused naming the argument
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def paused_deadline(start: Any, days: Any, pauses: Any) -> str:
    """The deadline of a limit of ``days`` working days from ``start`` suspended by ``pauses`` (a list of
    ``{"paused_from": ..., "paused_until": ...}``, in order, as the engine recorded them with ``now()``),
    written as ``working_deadline`` writes one: what the case clock of the same limit and pauses says
    (``engine.time.clocks.Clock.due_at``). A pause takes its working days out only while the time has not
    run out: one begun after the deadline, as the deadline stood then, moves it no more than the clock's
    (``working_deadline(start, days + sum(paused_working_days(...)))`` would give the overdue case days
    it never had)."""
    from engine.time.clocks import Clock, Pause

    count = _to_count(days, "工作日数", "paused_deadline", "days")
    if count < 0:
        raise InvalidInput(
            "paused_deadline() 的参数 days 不能为负数",
            code="bad_number",
            helper="paused_deadline",
            argument="days",
        )
    if type(pauses) is not list or len(pauses) > MAX_PAUSES:
        raise InvalidInput(
            f"paused_deadline() 的参数 pauses 必须是不超过 {MAX_PAUSES} 项的列表",
            code="bad_argument",
            helper="paused_deadline",
            argument="pauses",
        )
    began = _to_instant(start, "paused_deadline", "start")
    spans: list[Pause] = []
    for p in pauses:
        if type(p) is not dict:
            raise InvalidInput(
                "paused_deadline() 的 pauses 每项须含 paused_from 与 paused_until",
                code="bad_argument",
                helper="paused_deadline",
                argument="pauses",
            )
        paused_from = _to_instant(p.get("paused_from"), "paused_deadline", "paused_from")
        paused_until = _to_instant(p.get("paused_until"), "paused_deadline", "paused_until")
        if paused_until < paused_from:
            raise InvalidInput(
                "paused_deadline() 的中止结束时间早于开始时间",
                code="time_out_of_order",
                helper="paused_deadline",
                argument="pauses",
            )
        spans.append(Pause(start=paused_from, end=paused_until))
    try:
        clock = Clock(kind="promised", started_at=began, limit_days=count, pauses=spans)
    except InvalidInput as err:  # pauses before the start or overlapping: not in the order they ran
        raise InvalidInput(
            "paused_deadline() 的中止记录须在起算之后、依次排列",
            code=err.code,
            helper="paused_deadline",
            argument="pauses",
        ) from None
    due = clock.due_at(_calendar())
    assert due is not None
    return due.astimezone(SHANGHAI).isoformat()


def working_deadline(start: Any, days: Any) -> str:
    """The instant the ``days``-th working day after ``start`` ends: 24:00 Asia/Shanghai, written as
    00:00 of the next day (an ISO datetime usable as a timer ``timeDate``). A deadline on day N is the
    whole of day N: a timer set to it fires at 00:00 of day N + 1, as ``Clock.due_at`` turns red then.
    For the day itself (to show it) use ``add_working_days``. A date-time ``start`` at exactly 00:00:00
    Asia/Shanghai is the end of the day before, so a deadline used as a start chains exactly:
    ``working_deadline(working_deadline(x, a), b) == working_deadline(x, a + b)`` for ``b >= 1``. A zero
    limit (即办件) is the end of the day ``start`` runs in (or of the next working day), as the case clock
    counts it: from 00:00:00 that is the day beginning then, never the start instant itself."""
    count = _to_count(days, "工作日数", "working_deadline", "days")
    first = _to_date(start, "working_deadline", "start", as_bound=count != 0)
    end = _calendar().add_working_days(first, count)
    return datetime.combine(end + timedelta(days=1), time(0), SHANGHAI).isoformat()


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


_DATA: ContextVar[tuple[Mapping[str, Any], ...]] = ContextVar("onewindow_expression_data", default=())
_TIME_UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
MAX_TIME_AMOUNT = 100_000  # units one plus_time() call may move (about 270 years of days)


@contextmanager
def use_data(*scopes: Mapping[str, Any]) -> Iterator[None]:
    """The task data ``get_variable`` reads during one evaluation (set by the sandbox environment)."""
    token = _DATA.set(scopes)
    try:
        yield
    finally:
        _DATA.reset(token)


def get_variable(name: Any) -> Any:
    """The task data value ``name`` (``None`` when it is not set): Camunda's ``execution.getVariable``.
    Only task data is read: a name starting with ``_`` (the sandbox's own names) is refused."""
    if not isinstance(name, str) or not name or name.startswith("_") or len(name) > 200:
        shown = repr(name) if isinstance(name, str) and len(name) <= 50 else type(name).__name__
        raise InvalidInput(
            f"get_variable() 的参数必须是数据名：{shown}", code="bad_argument", helper="get_variable"
        )
    for scope in _DATA.get():
        if name in scope:
            return scope[name]  # a copy already: a script's own, an expression's (sandbox._Copies)
    return None


def copy_json(value: Any) -> Any:
    """A copy of the JSON containers in ``value`` (task data holds JSON values only)."""
    if type(value) is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [copy_json(v) for v in value]
    return value


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


def plus_time(start: Any, amount: Any, unit: Any) -> str:
    """``start`` (an ISO date-time, naive = Asia/Shanghai) moved by ``amount`` ``unit`` (seconds ...
    years; months and years keep the day of the month where it exists, as Joda-Time's plusMonths does), as
    an ISO date-time: what ``${dateTime().plusDays(n)}`` becomes."""
    if unit not in _TIME_UNITS:
        raise InvalidInput(f"plus_time() 的单位无效：{unit!r}", code="bad_argument", helper="plus_time")
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int | float)
        or amount != amount
        or abs(amount) > MAX_TIME_AMOUNT
    ):
        shown = repr(amount) if isinstance(amount, int | float) and abs(amount) < 10**12 else type(amount)
        raise InvalidInput(
            f"plus_time() 的数量必须是绝对值不超过 {MAX_TIME_AMOUNT} 的数：{shown}",
            code="bad_number",
            helper="plus_time",
            limit=MAX_TIME_AMOUNT,
        )
    if isinstance(start, datetime):
        moment = start
    elif isinstance(start, str) and len(start) <= MAX_DATE_TEXT:
        try:
            moment = datetime.fromisoformat(start.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = datetime.combine(_parse_date(start, "plus_time", "start"), time(0))
    else:
        moment = datetime.combine(_parse_date(start, "plus_time", "start"), time(0))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    try:
        if unit in ("months", "years"):
            if amount != int(amount):
                raise InvalidInput("月数、年数必须是整数", code="bad_number", helper="plus_time")
            moment = _add_months(moment, int(amount) * (12 if unit == "years" else 1))
        else:
            moment = moment + timedelta(**{unit: amount})
    except (OverflowError, ValueError):
        raise InvalidInput(
            "plus_time() 的结果超出日期范围", code="date_out_of_range", helper="plus_time"
        ) from None
    return moment.astimezone(UTC).isoformat()


HELPERS: dict[str, Callable[..., Any]] = {
    "get_variable": get_variable,
    "plus_time": plus_time,
    "print": print_line,
    "datetime": DATETIME,
    "date": DATE,
    "timedelta": timedelta_of,
    "now": now,
    "today": today,
    "add_working_days": add_working_days,
    "working_days_between": working_days_between,
    "paused_working_days": paused_working_days,
    "working_deadline": working_deadline,
    "paused_deadline": paused_deadline,
    "days": days,
    "hours": hours,
    **EL_HELPERS,  # what translated JUEL calls: Java EL's operators and coercions (``el``)
}
