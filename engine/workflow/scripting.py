"""What ordinary script tasks use besides plain expressions: ``print`` and date arithmetic.

* ``print(*values, sep=' ', end='')`` writes one line to the instance log: ``Runtime`` collects the lines of
  each engine call (``collect_output``) with the element that printed them, and the service layer records
  them as ``script_output`` audit events. A line is at most ``MAX_LINE`` characters, an engine call keeps at
  most ``MAX_LINES`` lines (then one line saying how many were dropped).
* ``datetime``, ``date`` and ``timedelta`` as SpiffWorkflow's default script environment offers them, without
  the modules: ``datetime(2025, 1, 2)``, ``datetime.now()`` / ``datetime.today()`` (the case clock, as a
  naive Asia/Shanghai wall time), ``datetime.fromisoformat(text)``, ``datetime.strptime(text, format)``,
  ``date(...)``, ``date.today()``, ``date.fromisoformat(text)``, ``timedelta(days=..., hours=...)``.
  Their values support the arithmetic and comparisons of the standard library (all O(1)) and the methods
  ``guards`` whitelists for them. Written back to the task data, a datetime or date becomes its ISO text and
  a timedelta an ISO 8601 duration (``P3DT3600S``), which timers and due dates read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any

from engine.errors import InvalidInput

from .clock import SHANGHAI, current_now

__all__ = [
    "DATE",
    "DATETIME",
    "MAX_LINE",
    "MAX_LINES",
    "collect_output",
    "in_element",
    "iso_duration",
    "print_line",
    "timedelta_of",
]

MAX_LINE = 2_000  # characters of one printed line
MAX_LINES = 200  # lines one engine call keeps
MAX_TEXT = 64  # characters of a date text to parse / of a strptime format
MAX_DAYS = 3_660_000  # |days| of one timedelta() (about 10,000 years)

_OUTPUT: ContextVar[list[tuple[str | None, str]] | None] = ContextVar("onewindow_script_output", default=None)
_ELEMENT: ContextVar[str | None] = ContextVar("onewindow_script_element", default=None)


@contextmanager
def collect_output() -> Iterator[list[tuple[str | None, str]]]:
    """Collect what ``print`` writes inside the block: ``(element id, line)`` pairs."""
    lines: list[tuple[str | None, str]] = []
    token = _OUTPUT.set(lines)
    try:
        yield lines
    finally:
        _OUTPUT.reset(token)


@contextmanager
def in_element(element_id: str | None) -> Iterator[None]:
    token = _ELEMENT.set(element_id)
    try:
        yield
    finally:
        _ELEMENT.reset(token)


def print_line(*values: Any, sep: Any = " ", end: Any = "") -> None:
    """The sandbox's ``print``: one bounded line to the instance log (nothing when no log collects)."""
    from .guards import BUILTINS

    if not isinstance(sep, str) or not isinstance(end, str):
        raise InvalidInput("print() 的 sep / end 必须是字符串", code="bad_argument", helper="print")
    text = sep.join(BUILTINS["str"](value) for value in values) + end
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE] + "…"
    lines = _OUTPUT.get()
    if lines is None:
        return
    if len(lines) < MAX_LINES:
        lines.append((_ELEMENT.get(), text.rstrip("\n")))
    elif len(lines) == MAX_LINES:
        lines.append((_ELEMENT.get(), f"……（超过 {MAX_LINES} 行，其余输出未记录）"))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        shown = repr(value) if isinstance(value, str) and len(value) <= 50 else type(value).__name__
        raise InvalidInput(f"{what} 的参数必须是不超过 {MAX_TEXT} 个字符的文字：{shown}", code="bad_date")
    return value


def _wall_now() -> datetime:
    return current_now().astimezone(SHANGHAI).replace(tzinfo=None)


class _DateTimeType:
    """The name ``datetime`` in a script: a constructor and the class methods that only make values."""

    __slots__ = ()

    def __call__(self, year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0,
                 second: int = 0, microsecond: int = 0) -> datetime:  # fmt: skip
        return datetime(year, month, day, hour, minute, second, microsecond)

    def now(self) -> datetime:
        return _wall_now()

    def today(self) -> datetime:
        return _wall_now()

    def fromisoformat(self, text: Any) -> datetime:
        return datetime.fromisoformat(_text(text, "datetime.fromisoformat()"))

    def strptime(self, text: Any, fmt: Any) -> datetime:
        return datetime.strptime(_text(text, "datetime.strptime()"), _text(fmt, "datetime.strptime()"))

    def combine(self, day: Any, moment: Any = None) -> datetime:
        if type(day) is not date:
            raise InvalidInput("datetime.combine() 的第一个参数必须是 date", code="bad_date")
        return datetime.combine(day, datetime.min.time() if moment is None else moment)

    def __repr__(self) -> str:
        return "datetime"


class _DateType:
    __slots__ = ()

    def __call__(self, year: int, month: int = 1, day: int = 1) -> date:
        return date(year, month, day)

    def today(self) -> date:
        return _wall_now().date()

    def fromisoformat(self, text: Any) -> date:
        return date.fromisoformat(_text(text, "date.fromisoformat()"))

    def __repr__(self) -> str:
        return "date"


DATETIME = _DateTimeType()
DATE = _DateType()
TYPE_METHODS = ("now", "today", "fromisoformat", "strptime", "combine")


def timedelta_of(
    days: Any = 0,
    seconds: Any = 0,
    microseconds: Any = 0,
    milliseconds: Any = 0,
    minutes: Any = 0,
    hours: Any = 0,
    weeks: Any = 0,
) -> timedelta:
    """``timedelta(...)`` with numbers only (no bigger than the standard library allows: O(1))."""
    parts = (days, seconds, microseconds, milliseconds, minutes, hours, weeks)
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, int | float) or part != part:
            raise InvalidInput(f"timedelta() 的参数必须是数：{type(part).__name__}", code="bad_number")
        if abs(part) > MAX_DAYS * 86_400_000:
            raise InvalidInput("timedelta() 的参数过大", code="bad_number")
    try:
        return timedelta(*parts)
    except OverflowError:
        raise InvalidInput("timedelta() 超出范围", code="bad_number") from None


def iso_duration(value: timedelta) -> str:
    """An ISO 8601 duration for a timedelta (``P3DT3600S``; negative: ``-P...``)."""
    if value < timedelta(0):
        return "-" + iso_duration(-value)
    seconds = value.seconds + value.microseconds / 1_000_000
    text = f"P{value.days}D" if value.days else "P"
    if seconds or not value.days:
        shown = f"{seconds:.6f}".rstrip("0").rstrip(".")
        text += f"T{shown}S"
    return text


_STRFTIME_FIELD = re.compile(r"%[^a-zA-Z%]")


def check_strftime(fmt: Any) -> str:
    """A ``strftime`` format: short, and no width or flag (``%1000000Y`` would print a million characters)."""
    text = _text(fmt, "strftime()")
    if _STRFTIME_FIELD.search(text):
        raise InvalidInput("strftime() 的格式中不允许宽度或标志（如 %10Y）", code="bad_argument")
    return text
