"""Case numbers a person can read out over the phone: ``YYMMDD-NNNN-C``.

Six digits of the Beijing date, a four-digit sequence of the day and a Luhn check digit, so that a digit
misheard on the phone is caught before a wrong case is looked up.
"""

from __future__ import annotations

import re
from datetime import date

_PATTERN = re.compile(r"^(\d{6})-(\d{4})-(\d)$")


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def format_case_number(day: date, sequence: int) -> str:
    if not 1 <= sequence <= 9999:
        raise ValueError("daily sequence out of range 1..9999")
    body = f"{day:%y%m%d}{sequence:04d}"
    return f"{body[:6]}-{body[6:]}-{luhn_digit(body)}"


def is_valid_case_number(text: str) -> bool:
    m = _PATTERN.match(text.strip())
    return bool(m) and luhn_digit(m.group(1) + m.group(2)) == m.group(3)
