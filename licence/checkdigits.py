"""Identifiers a licence library meets, and the ONE rule each of them follows.

- GB 11643: the 18-digit citizen identity number (公民身份号码): a 6-digit administrative division
  (GB/T 2260), the birth date ``YYYYMMDD`` (a real day, not after today, not more than
  ``MAX_AGE_YEARS`` years ago), a 3-digit sequence, and the check character MOD 11-2 over the 17 digits.
- GB 32100: the 18-character unified social credit code (统一社会信用代码): the registration authority
  (登记管理部门, character 1) and the organisation category (机构类别, character 2) from the standard's
  table, the registration authority's administrative division (characters 3-8, GB/T 2260), the organisation
  code (组织机构代码, characters 9-17) with its own GB 11714 check character at position 17, and the check
  character over a 31-character alphabet at position 18.
- ISO/IEC 7064 MOD 37,36 (hybrid system, alphabet ``0-9A-Z``): used for the e-licence identifier.

:func:`resident_id_problem` and :func:`credit_code_problem` are the rule: the first rule a value breaks as
an :class:`IdProblem` (a stable English ``code`` and a Chinese ``message`` naming the positions and the
standard), or None. Every entry that takes such an identifier (form validators, licence faces, issue,
import, applicants, accounts) goes through them, through ``is_valid_*`` (strict: the canonical form only,
upper case, no spaces) or :func:`validate_holder_id` (normalises, then raises ``InvalidInput`` naming the
field and the rule). The birth date rule depends on the day: each takes ``today`` (the caller's, with an
injected clock), by default today in Asia/Shanghai.

Codes: ``bad_format`` (length or characters), ``bad_region`` (administrative division),
``bad_birth_date`` (no such day), ``birth_date_in_future``, ``birth_date_too_early``,
``bad_registration_authority``, ``bad_organisation_category``, ``bad_check_digit`` (position 18, or the
organisation code's GB 11714 character at position 17, as its message says).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache
from operator import mul
from typing import Literal
from zoneinfo import ZoneInfo

from engine.errors import InvalidInput

__all__ = [
    "RESIDENT_ID_WEIGHTS",
    "CREDIT_CODE_ALPHABET",
    "CREDIT_CODE_WEIGHTS",
    "CREDIT_CODE_CATEGORIES",
    "MAX_AGE_YEARS",
    "MOD37_36_ALPHABET",
    "HolderIdKind",
    "IdProblem",
    "local_today",
    "resident_id_check_char",
    "resident_id_problem",
    "is_valid_resident_id",
    "credit_code_check_char",
    "credit_code_problem",
    "organisation_code_check_char",
    "is_valid_organisation_code",
    "is_valid_credit_code",
    "is_valid_division_code",
    "mod37_36_check_char",
    "is_valid_mod37_36",
    "holder_id_kind",
    "holder_id_problem",
    "is_holder_id_of",
    "identity_problem",
    "validate_holder_id",
]

HolderIdKind = Literal["resident_id", "credit_code"]

_SHANGHAI = ZoneInfo("Asia/Shanghai")

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"
# Province-level codes of GB/T 2260 (71 Taiwan, 81 Hong Kong, 82 Macao).
_PROVINCES = frozenset(
    ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42"]
    + ["43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82"]
)
_MAINLAND = _PROVINCES - {"71", "81", "82"}
_RESIDENCE_PERMITS = frozenset({"810000", "820000", "830000"})
"""港澳台居民居住证 numbers (GB 11643 in form): the division is the whole region, 81/82/83 and 0000."""
MAX_AGE_YEARS = 130
"""A birth date more than this many years before today is refused (the oldest person ever lived 122)."""

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
_CREDIT_CHARS = frozenset(CREDIT_CODE_ALPHABET)

CREDIT_CODE_CATEGORIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": ("机构编制", {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"}),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {"1": "律师执业机构", "2": "公证处", "3": "基层法律服务所", "4": "司法鉴定机构", "5": "仲裁委员会"}
        | {"9": "其他"},
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻内地（大陆）代表机构", "9": "其他"},
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": ("农业", {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"}),
    "Y": ("其他", {"1": "不再具体划分机构类别"}),
}
"""GB 32100-2015 table 1 (with its amendments A and N): registration authority code (character 1) ->
(its name, {organisation category code (character 2) -> category name})."""

_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {ch: i for i, ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
_ORG_CHARS = frozenset(_ORG_VALUE)

MOD37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_36_VALUE = {ch: i for i, ch in enumerate(MOD37_36_ALPHABET)}
_MOD37_36_CHARS = frozenset(MOD37_36_ALPHABET)


@dataclass(frozen=True)
class IdProblem:
    """The first rule an identifier breaks: ``code`` stable English, ``message`` Chinese (it names the
    positions and the standard, never the caller's field: the caller names that)."""

    code: str
    message: str


def local_today() -> _dt.date:
    """Today in Asia/Shanghai: the day a birth date is judged against when the caller gives none."""
    return _dt.datetime.now(_SHANGHAI).date()


def is_valid_division_code(code: str) -> bool:
    """True for a plausible 6-digit administrative division code (GB/T 2260) of a registration authority:
    a province-level prefix (or 100000, the whole country, for the central authorities), never 000000."""
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return False
    return code == "100000" or code[:2] in _PROVINCES


# --- GB 11643 resident identity number -------------------------------------------------------------


def resident_id_check_char(first17: str) -> str:
    """The check character (``0-9`` or ``X``) for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("居民身份号码本体码须为 17 位数字")
    total = sum(map(mul, map(int, first17), RESIDENT_ID_WEIGHTS))
    return _RESIDENT_ID_CHECK[total % 11]


def _resident_division_ok(body: str) -> bool:
    region = body[:6]
    if region in _RESIDENCE_PERMITS:
        return True
    if region[0] == "9":  # 外国人永久居留身份证 (2023): 9, the province code, a 3-digit country code
        return region[1:3] in _MAINLAND and region[3:6] != "000"
    return region[:2] in _MAINLAND and region[2:6] != "0000"


def _earliest_birth(today: _dt.date) -> _dt.date:
    try:
        return today.replace(year=today.year - MAX_AGE_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - MAX_AGE_YEARS, day=28)


@lru_cache(maxsize=4096)  # pure in (s, today); ids repeat within a row and across rows
def _resident_id_problem(s: str, today: _dt.date) -> IdProblem | None:
    if len(s) != 18:
        return IdProblem("bad_format", "公民身份号码应为 18 位（GB 11643）")
    body, check = s[:17], s[17]
    if not (body.isascii() and body.isdigit()) or check not in "0123456789X":
        return IdProblem("bad_format", "公民身份号码前 17 位应为数字，第 18 位应为数字或 X（GB 11643）")
    if not _resident_division_ok(body):
        return IdProblem("bad_region", "公民身份号码第 1-6 位不是有效的行政区划代码（GB 11643、GB/T 2260）")
    try:
        birth = _dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return IdProblem("bad_birth_date", "公民身份号码第 7-14 位不是真实存在的出生日期（GB 11643）")
    if birth > today:
        return IdProblem(
            "birth_date_in_future",
            f"公民身份号码第 7-14 位的出生日期 {birth.isoformat()} 晚于今天（GB 11643）",
        )
    if birth < _earliest_birth(today):
        return IdProblem(
            "birth_date_too_early",
            f"公民身份号码第 7-14 位的出生日期 {birth.isoformat()} 早于 {MAX_AGE_YEARS} 年前（GB 11643）",
        )
    if resident_id_check_char(body) != check:
        return IdProblem("bad_check_digit", "公民身份号码校验码（第 18 位）错误（GB 11643 MOD 11-2）")
    return None


def resident_id_problem(s: str, today: _dt.date | None = None) -> IdProblem | None:
    """The first GB 11643 rule ``s`` (canonical: upper case, no spaces) breaks on ``today``, or None."""
    return _resident_id_problem(s, today or local_today())


def is_valid_resident_id(s: str, today: _dt.date | None = None) -> bool:
    """True for an 18-digit resident ID with a plausible division, a real birth date that is neither after
    ``today`` nor more than ``MAX_AGE_YEARS`` before it, and a correct check character."""
    return resident_id_problem(s, today) is None


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


@lru_cache(maxsize=4096)
def credit_code_problem(s: str) -> IdProblem | None:
    """The first GB 32100 rule ``s`` (canonical: upper case, no spaces) breaks, or None."""
    if len(s) != 18:
        return IdProblem("bad_format", "统一社会信用代码应为 18 位（GB 32100）")
    if not _CREDIT_CHARS.issuperset(s):
        return IdProblem(
            "bad_format", "统一社会信用代码只能由数字和除 I、O、Z、S、V 以外的大写字母组成（GB 32100）"
        )
    authority = CREDIT_CODE_CATEGORIES.get(s[0])
    if authority is None:
        codes = "、".join(CREDIT_CODE_CATEGORIES)
        return IdProblem(
            "bad_registration_authority",
            f"统一社会信用代码第 1 位“{s[0]}”不是登记管理部门代码（GB 32100：{codes}）",
        )
    name, categories = authority
    if s[1] not in categories:
        return IdProblem(
            "bad_organisation_category",
            f"统一社会信用代码第 2 位“{s[1]}”不是{name}的机构类别代码（GB 32100：{'、'.join(categories)}）",
        )
    if not is_valid_division_code(s[2:8]):
        return IdProblem(
            "bad_region", "统一社会信用代码第 3-8 位不是有效的登记管理机关行政区划码（GB 32100、GB/T 2260）"
        )
    if not is_valid_organisation_code(s[8:17]):
        return IdProblem(
            "bad_check_digit", "统一社会信用代码中的组织机构代码校验码（第 17 位）错误（GB 11714）"
        )
    if credit_code_check_char(s[:17]) != s[17]:
        return IdProblem("bad_check_digit", "统一社会信用代码校验码（第 18 位）错误（GB 32100）")
    return None


def is_valid_credit_code(s: str) -> bool:
    """True when every GB 32100 rule holds: registration authority and category of the standard's table, a
    plausible division, the organisation code's GB 11714 check (position 17) and the check at 18."""
    return credit_code_problem(s) is None


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


def holder_id_kind(s: str, today: _dt.date | None = None) -> HolderIdKind | None:
    """``resident_id`` or ``credit_code`` when ``s`` is a valid one of them (on ``today``), otherwise None."""
    if s[:17].isdigit() and is_valid_resident_id(s, today):
        return "resident_id"
    if is_valid_credit_code(s):
        return "credit_code"
    return None


def is_holder_id_of(s: str, kind: HolderIdKind, today: _dt.date | None = None) -> bool:
    """Whether ``s`` is a valid id of ``kind`` (on ``today``). Not ``holder_id_kind(s) == kind``: a code can
    be valid as both (``121101196005011081`` is a 事业单位's credit code and has a resident ID's shape), and
    where the caller knows the kind, that kind decides."""
    return holder_id_problem(s, kind, today) is None


def holder_id_problem(value: str, kind: HolderIdKind, today: _dt.date | None = None) -> IdProblem | None:
    """The first rule of ``kind`` that ``value`` (normalised) breaks on ``today``, or None; the message names
    the standard of that kind (never another kind's)."""
    return resident_id_problem(value, today) if kind == "resident_id" else credit_code_problem(value)


_SHAPE_RULES = frozenset({"bad_format", "bad_region", "bad_birth_date"})
"""The rules that tell an 18-digit string is no resident ID at all (a wrong date or check character is a
resident ID typed wrong)."""
_PREFIX_RULES = frozenset(
    {"bad_format", "bad_registration_authority", "bad_organisation_category", "bad_region"}
)


def _likely_kind(value: str, today: _dt.date | None) -> HolderIdKind:
    """The kind an invalid 18-character id most plausibly meant (to name the right rule it breaks)."""
    resident_shaped = value[:17].isdigit() and value[17] in "0123456789X"
    resident = resident_id_problem(value, today)
    if resident_shaped and resident is not None and resident.code not in _SHAPE_RULES:
        return "resident_id"  # a division and a real birth date: its range or the check character is wrong
    credit = credit_code_problem(value)
    if (
        credit is not None
        and credit.code not in _PREFIX_RULES
        and (not resident_shaped or is_valid_organisation_code(value[8:17]))
    ):
        return "credit_code"  # e.g. an all-digit credit code whose organisation code holds, last char wrong
    return "resident_id" if resident_shaped else "credit_code"


def identity_problem(
    value: str, expected: HolderIdKind | None = None, today: _dt.date | None = None
) -> IdProblem | None:
    """None when ``value`` (canonical) is a valid resident ID or credit code on ``today``; otherwise the rule
    it breaks, judged as the ``expected`` kind or, without one, as the kind it most plausibly is."""
    if len(value) != 18:
        return IdProblem(
            "bad_format", "证件号码应为 18 位公民身份号码（GB 11643）或 18 位统一社会信用代码（GB 32100）"
        )
    if is_valid_resident_id(value, today) or is_valid_credit_code(value):
        return None
    found = holder_id_problem(value, expected or _likely_kind(value, today), today)
    return found or IdProblem("bad_format", "证件号码无效")


def validate_holder_id(
    s: str, field: str = "holder_id", expected: HolderIdKind | None = None, today: _dt.date | None = None
) -> str:
    """Normalise ``s`` (strip, upper case) and return it when it is a valid resident ID or credit code.

    Otherwise raises ``InvalidInput`` naming ``field``, with the code and message of the rule broken
    (module docstring). An invalid value is judged as the ``expected`` kind when the caller knows it (an
    issuer is always a credit code), otherwise as the kind it most plausibly is. A valid id of the other
    kind is returned: telling the caller that the kind does not fit is the caller's rule
    (``holder_kind_mismatch``). ``today``: the day a birth date is judged against (default: today).
    """
    value = (s or "").strip().upper()
    problem = identity_problem(value, expected, today)
    if problem is None:
        return value
    raise InvalidInput(problem.message, code=problem.code, field=field, value=s)
