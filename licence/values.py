"""Parsing of the plain values a licence carries: dates and numbers, from forms, CSV cells or JSON."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["FieldProblem", "parse_date", "parse_number"]

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
    raise ValueError(f"无法识别的日期：{value!r}")


def parse_number(value: object) -> int | float:
    """An ``int`` (when integral) or ``float`` from a number or numeric text; bools and NaN are refused."""
    if isinstance(value, bool):
        raise ValueError("应为数字")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation as exc:
            raise ValueError(f"无法识别的数字：{value!r}") from exc
    else:
        raise ValueError("应为数字")
    if not number.is_finite():
        raise ValueError("数字不能为无穷或 NaN")
    if number == number.to_integral_value():
        return int(number)
    result = float(number)
    if math.isinf(result):
        raise ValueError("数字超出范围")
    return result
