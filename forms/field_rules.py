"""Domain checks of single field values beyond JSON Schema.

Each rule takes the field label and a (non-empty) value and returns ``(code, message)`` for the first
broken rule, or None. Codes are stable English words; messages are Chinese and name the field.

=================  =====================================================================
validator          rule
=================  =====================================================================
resident_id        18-digit resident ID (GB 11643): shape ``format``, check ``bad_check_digit``
credit_code        unified social credit code (GB 32100): ``format`` / ``bad_check_digit``
identity_number    either of the two above
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

from licence.checkdigits import (
    CREDIT_CODE_ALPHABET,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_resident_id,
    resident_id_check_char,
)

__all__ = ["RULES", "check_value", "parse_date"]

Finding = tuple[str, str] | None

_RESIDENT_ID_SHAPE = re.compile(r"\d{17}[\dX]")
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


def _resident_id(label: str, value: Any) -> Finding:
    text = str(value)
    if not _RESIDENT_ID_SHAPE.fullmatch(text):
        return "format", f"「{label}」应为 18 位居民身份证号码（前 17 位数字，末位数字或 X）"
    if is_valid_resident_id(text):
        return None
    if resident_id_check_char(text[:17]) != text[17]:
        return "bad_check_digit", f"「{label}」校验位错误，请核对居民身份证号码（GB 11643）"
    return "format", f"「{label}」的行政区划代码或出生日期无效"


def _credit_code(label: str, value: Any) -> Finding:
    text = str(value)
    if len(text) != 18 or any(ch not in CREDIT_CODE_ALPHABET for ch in text):
        return "format", f"「{label}」应为 18 位统一社会信用代码（数字和除 I、O、Z、S、V 外的大写字母）"
    if is_valid_credit_code(text):
        return None
    if credit_code_check_char(text[:17]) != text[17]:
        return "bad_check_digit", f"「{label}」校验位错误，请核对统一社会信用代码（GB 32100）"
    return "bad_check_digit", f"「{label}」中的组织机构代码校验位错误（GB 11714）"


def _identity_number(label: str, value: Any) -> Finding:
    text = str(value)
    if is_valid_resident_id(text) or is_valid_credit_code(text):
        return None
    if _RESIDENT_ID_SHAPE.fullmatch(text):
        return _resident_id(label, text)
    return _credit_code(label, text)


def _date(label: str, value: Any) -> Finding:
    if parse_date(value) is None:
        return "format", f"「{label}」应为有效日期，格式 YYYY-MM-DD（如 2025-03-01）"
    return None


def _amount(label: str, value: Any) -> Finding:
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


def _phone(label: str, value: Any) -> Finding:
    text = str(value).strip()
    if _MOBILE.fullmatch(text) or _LANDLINE.fullmatch(text):
        return None
    return "bad_phone", f"「{label}」应为 11 位手机号或带区号的固定电话（如 0591-87654321）"


RULES: dict[str, Callable[[str, Any], Finding]] = {
    "resident_id": _resident_id,
    "credit_code": _credit_code,
    "identity_number": _identity_number,
    "date": _date,
    "amount": _amount,
    "phone": _phone,
}


def check_value(validator: str, label: str, value: Any) -> Finding:
    """Apply one named rule; ``(code, message)`` when it is broken, otherwise None."""
    return RULES[validator](label, value)
