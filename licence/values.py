"""Parsing of the plain values a licence carries: dates and numbers, from forms, CSV cells or JSON."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["FieldProblem", "MAX_NUMBER_TEXT", "MAX_INTEGER_DIGITS", "parse_date", "parse_number", "shown"]

MAX_NUMBER_TEXT = 64
"""Characters of a number written as text (a 5,000-digit cell is refused before it is converted)."""
MAX_INTEGER_DIGITS = 15
"""Digits before the decimal point: an amount of 10^15 (万元) is no licence's, and it stays exact in JSON."""
_NUMBER_LIMIT = 10**MAX_INTEGER_DIGITS
_SHOWN_CHARS = 32

_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule of one field: ``field`` names it, ``code`` is stable English, ``message`` Chinese."""

    field: str
    code: str
    message: str


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """``value`` as it may be quoted in a message: at most ``limit`` characters (then "…"), invisible
    characters (controls, NUL, lone surrogates) as ``\\uXXXX`` escapes, so that no message echoes a
    whole cell or carries characters a terminal or a database would choke on."""
    text = value if isinstance(value, str) else type(value).__name__
    if len(text) <= limit and text.isprintable():
        return text
    cut = text[:limit]
    safe = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in cut)
    return safe + ("…" if len(text) > limit else "")


def parse_date(value: object) -> dt.date:
    """A ``date`` from a date, an ISO ``YYYY-MM-DD`` string or the common paper forms
    (``YYYY/MM/DD``, ``YYYY.MM.DD``, ``YYYY年M月D日``, ``YYYYMMDD``). Raises ValueError otherwise."""
    if isinstance(value, dt.datetime):
        raise ValueError("应为日期而非日期时间")
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("日期应为文本")
    text = value.strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            return dt.date(year, month, day)
    raise ValueError(f"无法识别的日期：{shown(text)}")


def parse_number(value: object) -> int | float:
    """An ``int`` (when integral) or ``float`` from a number or numeric text; bools and NaN are refused.

    Bounded before any conversion: text of more than ``MAX_NUMBER_TEXT`` characters and magnitudes of
    ``10**MAX_INTEGER_DIGITS`` or more are refused (``1e999999999`` never becomes a Python int)."""
    if isinstance(value, bool):
        raise ValueError("应为数字")
    if isinstance(value, int):
        if not -_NUMBER_LIMIT < value < _NUMBER_LIMIT:
            raise ValueError(f"数字超出范围（整数部分最多 {MAX_INTEGER_DIGITS} 位）")
        return value
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("数字不能为无穷或 NaN")
        number = Decimal(repr(value)) if isinstance(value, float) else value
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if len(text) > MAX_NUMBER_TEXT:
            raise ValueError(f"数字过长（超过 {MAX_NUMBER_TEXT} 个字符）")
        try:
            number = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"无法识别的数字：{shown(text)}") from exc
    else:
        raise ValueError("应为数字")
    if not number.is_finite():
        raise ValueError("数字不能为无穷或 NaN")
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(f"数字超出范围（整数部分最多 {MAX_INTEGER_DIGITS} 位）")
    if number == number.to_integral_value():
        return int(number)
    return float(number)
