"""Check characters of the identifiers a licence library meets.

- GB 11643: the 18-digit citizen identity number (公民身份号码), check character MOD 11-2 over 17 digits.
- GB 32100: the 18-character unified social credit code (统一社会信用代码), check over a 31-character
  alphabet; its characters 9-17 are the organisation code (组织机构代码) which carries its own GB 11714
  check character at position 17.
- ISO/IEC 7064 MOD 37,36 (hybrid system, alphabet ``0-9A-Z``): used for the e-licence identifier.

The ``is_valid_*`` functions are strict: they accept only the canonical form (upper case, no spaces).
``validate_holder_id`` normalises (strip, upper case) and raises a typed error naming the broken rule.
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from operator import mul
from typing import Literal

from engine.errors import InvalidInput

__all__ = [
    "RESIDENT_ID_WEIGHTS",
    "CREDIT_CODE_ALPHABET",
    "CREDIT_CODE_WEIGHTS",
    "MOD37_36_ALPHABET",
    "HolderIdKind",
    "resident_id_check_char",
    "is_valid_resident_id",
    "credit_code_check_char",
    "organisation_code_check_char",
    "is_valid_organisation_code",
    "is_valid_credit_code",
    "mod37_36_check_char",
    "is_valid_mod37_36",
    "holder_id_kind",
    "holder_id_problem",
    "validate_holder_id",
]

HolderIdKind = Literal["resident_id", "credit_code"]

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"
# First two digits: province-level codes of GB/T 2260, plus 81/82/83 (Hong Kong, Macao, Taiwan residence
# permits) and 91 (foreigners' permanent residence, new style).
_PROVINCES = frozenset(
    [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46]
    + [50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91]
)
_EARLIEST_BIRTH_YEAR = 1850

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
_CREDIT_CHARS = frozenset(CREDIT_CODE_ALPHABET)

_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {ch: i for i, ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_CHARS = frozenset(_ORG_VALUE)

MOD37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_36_VALUE = {ch: i for i, ch in enumerate(MOD37_36_ALPHABET)}
_MOD37_36_CHARS = frozenset(MOD37_36_ALPHABET)


# --- GB 11643 resident identity number -------------------------------------------------------------


def resident_id_check_char(first17: str) -> str:
    """The check character (``0-9`` or ``X``) for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("居民身份号码本体码须为 17 位数字")
    total = sum(map(mul, map(int, first17), RESIDENT_ID_WEIGHTS))
    return _RESIDENT_ID_CHECK[total % 11]


def _resident_id_shape_problem(s: str) -> str | None:
    """Why ``s`` does not have the shape of an 18-digit resident ID, or None when the shape is right."""
    if len(s) != 18:
        return "公民身份号码应为 18 位"
    body, check = s[:17], s[17]
    if not (body.isascii() and body.isdigit()) or check not in "0123456789X":
        return "公民身份号码前 17 位应为数字，第 18 位应为数字或 X"
    if int(body[:2]) not in _PROVINCES or body[2:6] == "0000":
        return "公民身份号码前 6 位不是有效的行政区划代码"
    try:
        birth = _dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return "公民身份号码第 7-14 位不是有效的出生日期"
    if birth.year < _EARLIEST_BIRTH_YEAR:
        return "公民身份号码第 7-14 位的出生日期早于可能的年份"
    return None


@lru_cache(maxsize=4096)  # pure; ids repeat within a row (holder id, face id number) and across rows
def is_valid_resident_id(s: str) -> bool:
    """True for an 18-digit resident ID with a plausible region, a real birth date and a correct check."""
    if _resident_id_shape_problem(s) is not None:
        return False
    return resident_id_check_char(s[:17]) == s[17]


# --- GB 11714 organisation code and GB 32100 unified social credit code ----------------------------


def organisation_code_check_char(first8: str) -> str:
    """The GB 11714 check character (``0-9`` or ``X``) of an 8-character organisation code body."""
    if len(first8) != 8 or not _ORG_CHARS.issuperset(first8):
        raise ValueError("组织机构代码本体码须为 8 位数字或大写字母")
    total = sum(map(mul, map(_ORG_VALUE.__getitem__, first8), _ORG_CODE_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def is_valid_organisation_code(s: str) -> bool:
    """True for a 9-character organisation code (8 body characters + GB 11714 check character)."""
    if len(s) != 9 or not _ORG_CHARS.issuperset(s[:8]):
        return False
    return organisation_code_check_char(s[:8]) == s[8]


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a unified social credit code."""
    if len(first17) != 17 or not _CREDIT_CHARS.issuperset(first17):
        raise ValueError("统一社会信用代码前 17 位须取自 GB 32100 字符集")
    total = sum(map(mul, map(_CREDIT_VALUE.__getitem__, first17), CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def _credit_code_shape_problem(s: str) -> str | None:
    if len(s) != 18:
        return "统一社会信用代码应为 18 位"
    if not _CREDIT_CHARS.issuperset(s):
        return "统一社会信用代码只能由数字和除 I、O、Z、S、V 以外的大写字母组成"
    if not s[2:8].isdigit():
        return "统一社会信用代码第 3-8 位应为登记管理机关行政区划码（6 位数字）"
    return None


@lru_cache(maxsize=4096)
def is_valid_credit_code(s: str) -> bool:
    """True when both the GB 32100 check (position 18) and the GB 11714 check (position 17) hold."""
    if _credit_code_shape_problem(s) is not None:
        return False
    return credit_code_check_char(s[:17]) == s[17] and is_valid_organisation_code(s[8:17])


# --- ISO/IEC 7064 MOD 37,36 ------------------------------------------------------------------------


def _mod37_36_state(s: str) -> int:
    """Run the hybrid-system recurrence over ``s``; returns the last product P (before a check char)."""
    p = 36
    for ch in s:
        value = _MOD37_36_VALUE.get(ch)
        if value is None:
            raise ValueError(f"字符 {ch!r} 不在 MOD 37,36 字符集（0-9A-Z）中")
        total = (p + value) % 36 or 36
        p = (total * 2) % 37
    return p


def mod37_36_check_char(s: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character for the (non-empty) string ``s`` over ``0-9A-Z``."""
    if not s:
        raise ValueError("MOD 37,36 校验的字符串不能为空")
    return MOD37_36_ALPHABET[(37 - _mod37_36_state(s)) % 36]


def is_valid_mod37_36(s: str) -> bool:
    """True when the last character of ``s`` is the MOD 37,36 check character of the rest."""
    if len(s) < 2 or not _MOD37_36_CHARS.issuperset(s):
        return False
    return mod37_36_check_char(s[:-1]) == s[-1]


# --- holder ids --------------------------------------------------------------------------------------


def holder_id_kind(s: str) -> HolderIdKind | None:
    """``resident_id`` or ``credit_code`` when ``s`` is a valid one of them, otherwise None."""
    if s[:17].isdigit() and is_valid_resident_id(s):
        return "resident_id"
    if is_valid_credit_code(s):
        return "credit_code"
    return None


def holder_id_problem(value: str, kind: HolderIdKind) -> tuple[str, str] | None:
    """Why ``value`` (normalised) is not a valid identifier of ``kind``: ``(code, message)``, or None.

    ``code`` is ``bad_format`` when the shape is wrong and ``bad_check_digit`` when the shape is right but a
    check character does not match; the message names the standard of that kind (never another kind's).
    """
    if kind == "resident_id":
        problem = _resident_id_shape_problem(value)
        if problem is not None:
            return "bad_format", f"{problem}（GB 11643）"
        if resident_id_check_char(value[:17]) != value[17]:
            return "bad_check_digit", "公民身份号码校验码（第 18 位）错误（GB 11643 MOD 11-2）"
        return None
    problem = _credit_code_shape_problem(value)
    if problem is not None:
        return "bad_format", f"{problem}（GB 32100）"
    if credit_code_check_char(value[:17]) != value[17]:
        return "bad_check_digit", "统一社会信用代码校验码（第 18 位）错误（GB 32100）"
    if not is_valid_organisation_code(value[8:17]):
        return "bad_check_digit", "统一社会信用代码中的组织机构代码校验码（第 17 位）错误（GB 11714）"
    return None


def _likely_kind(value: str) -> HolderIdKind:
    """The kind an invalid 18-character id most plausibly meant (to name the right rule it breaks)."""
    resident_shaped = value[:17].isdigit() and value[17] in "0123456789X"
    if resident_shaped and _resident_id_shape_problem(value) is None:
        return "resident_id"  # region and birth date are plausible: only the check character is wrong
    if _credit_code_shape_problem(value) is None and (
        not resident_shaped or is_valid_organisation_code(value[8:17])
    ):
        return "credit_code"  # e.g. an all-digit credit code whose organisation code holds, last char wrong
    return "resident_id" if resident_shaped else "credit_code"


def validate_holder_id(s: str, field: str = "holder_id", expected: HolderIdKind | None = None) -> str:
    """Normalise ``s`` (strip, upper case) and return it when it is a valid resident ID or credit code.

    Raises ``InvalidInput`` with ``code="bad_format"`` when the shape is wrong and
    ``code="bad_check_digit"`` when the shape is right but a check character does not match. An invalid
    value is judged as the ``expected`` kind when the caller knows it (an issuer is always a credit code),
    otherwise as the kind it most plausibly is. A valid id of the other kind is returned: telling the
    caller that the kind does not fit is the caller's rule (``holder_kind_mismatch``).
    """
    value = (s or "").strip().upper()
    if len(value) != 18:
        raise InvalidInput(
            "证件号码应为 18 位公民身份号码（GB 11643）或 18 位统一社会信用代码（GB 32100）",
            code="bad_format",
            field=field,
            value=s,
        )
    if is_valid_resident_id(value) or is_valid_credit_code(value):
        return value
    found = holder_id_problem(value, expected or _likely_kind(value))
    code, message = found or ("bad_format", "证件号码无效")
    raise InvalidInput(message, code=code, field=field, value=s)
