"""Domain checks of single field values beyond JSON Schema.

Each rule takes the field label, a (non-empty) value and the day (``today``, for the birth date in a
resident ID; None: today) and returns ``(code, message)`` for the first broken rule, or None. Codes are
stable English words; messages are Chinese and name the field.

=================  =====================================================================
validator          rule
=================  =====================================================================
resident_id        18-digit resident ID (GB 11643), the rule of ``licence.checkdigits``:
                   ``bad_format``, ``bad_region``, ``bad_birth_date``,
                   ``birth_date_in_future``, ``birth_date_too_early``, ``bad_check_digit``
credit_code        unified social credit code (GB 32100), the rule of ``licence.checkdigits``:
                   ``bad_format``, ``bad_registration_authority``,
                   ``bad_organisation_category``, ``bad_region``, ``bad_check_digit``
identity_number    either of the two above (judged as the kind it most plausibly is)
date               ``YYYY-MM-DD`` and a real calendar date: ``format``
amount             number, not negative (``negative_amount``), at most 2 decimals (``amount_precision``)
phone              11-digit mainland mobile or landline ``0xx(x)-xxxxxxx(x)[-ext]``: ``bad_phone``
=================  =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from licence.checkdigits import IdProblem, credit_code_problem, identity_problem, resident_id_problem

__all__ = ["RULES", "check_value", "parse_date"]

Finding = tuple[str, str] | None

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: Any) -> date | None:
    """The date of an ISO ``YYYY-MM-DD`` string (or a date); None when it is not one."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _named(label: str, problem: IdProblem | None) -> Finding:
    return None if problem is None else (problem.code, f"「{label}」：{problem.message}")


def _resident_id(label: str, value: Any, today: date | None = None) -> Finding:
    return _named(label, resident_id_problem(str(value), today))


def _credit_code(label: str, value: Any, today: date | None = None) -> Finding:
    return _named(label, credit_code_problem(str(value)))


def _identity_number(label: str, value: Any, today: date | None = None) -> Finding:
    return _named(label, identity_problem(str(value), today=today))


def _date(label: str, value: Any, today: date | None = None) -> Finding:
    if parse_date(value) is None:
        return "format", f"「{label}」应为有效日期，格式 YYYY-MM-DD（如 2025-03-01）"
    return None


def _amount(label: str, value: Any, today: date | None = None) -> Finding:
    if isinstance(value, bool):
        return "type", f"「{label}」应为金额数字"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return "type", f"「{label}」应为金额数字"
    if not amount.is_finite():
        return "type", f"「{label}」应为金额数字"
    if amount < 0:
        return "negative_amount", f"「{label}」不能为负数"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return "amount_precision", f"「{label}」最多保留两位小数"
    return None


def _phone(label: str, value: Any, today: date | None = None) -> Finding:
    text = str(value).strip()
    if _MOBILE.fullmatch(text) or _LANDLINE.fullmatch(text):
        return None
    return "bad_phone", f"「{label}」应为 11 位手机号或带区号的固定电话（如 0591-87654321）"


RULES: dict[str, Callable[[str, Any, date | None], Finding]] = {
    "resident_id": _resident_id,
    "credit_code": _credit_code,
    "identity_number": _identity_number,
    "date": _date,
    "amount": _amount,
    "phone": _phone,
}


def check_value(validator: str, label: str, value: Any, today: date | None = None) -> Finding:
    """Apply one named rule (on ``today``; None: today); ``(code, message)`` when it is broken, else None."""
    return RULES[validator](label, value, today)
