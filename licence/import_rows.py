"""Validating one row of a licence import: cells first (size, characters, formulas), then the licence rules.

A row comes from ``licence.import_reader`` (a dict, or a ``BadRow``); ``validate_row`` returns a
``Candidate`` ready to store, or the ``RowError`` list of every rule it breaks (at most
``MAX_ERRORS_PER_ROW``, then one ``too_many_errors``). Beyond the licence library's own rules:

- every text value is at most ``MAX_CELL_CHARS`` characters, without NUL, other control characters (tab
  and line breaks are allowed) or lone surrogates (``bad_character``); nothing is converted (no ``str()``
  of a nested JSON value, no ``int()`` of a long number) before it is bounded;
- a value a spreadsheet would run as a formula is refused (``formula_value``), not rewritten: the library
  is the authoritative record and its face is hashed, so an officer corrects the source instead. Leading
  whitespace (tab, carriage return included) is trimmed from every value, which neutralises it, then a
  value starting with ``=`` or ``@`` is refused, and one starting with ``+`` or ``-`` unless it is only a
  signed number or a phone number (``-5``, ``+86 591 8765 4321``), which no spreadsheet can turn into a
  call;
- a row without a last valid day takes its type's term from the first one (as an issue in the library
  does; a type without a term is 长期有效); an issue date after ``today`` (``issued_in_future``) or
  before 1949-10-01, or validity starting before the issue, is an error of the row;
- a row whose status is ``valid`` but whose last valid day is before ``today`` is stored as ``expired``
  (its ``Candidate.note`` says so);
- a holder id or issuer code is judged as the kind the licence type expects (an issuer is always a credit
  code), so a broken rule is reported as that kind's (``licence.checkdigits``: ``bad_check_digit``,
  ``bad_region``, ``birth_date_in_future``...), a birth date against ``today``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from engine.errors import InvalidInput
from licence.checkdigits import HolderIdKind, is_holder_id_of, validate_holder_id
from licence.import_reader import RECORD_FIELDS, REQUIRED_FIELDS, BadRow
from licence.model import STATUSES, LicenceIdentifier, LicenceStatus, format_licence_number
from licence.types import LicenceType, find_type, holder_id_kind_for
from licence.values import parse_date, shown

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_ERRORS_PER_ROW",
    "RowError",
    "Candidate",
    "validate_row",
    "content_key",
    "candidate_key",
]

_MAX_LENGTH = {
    "licence_number": 64,
    "holder_name": 200,
    "issuer_name": 200,
    "source_case": 64,
    "identifier": 128,
}
MAX_CELL_CHARS = 4000
"""Characters of any one value (the longest face text a licence type allows)."""
MAX_ERRORS_PER_ROW = 20
"""Problems listed for one row; the rest are counted in one ``too_many_errors`` entry."""
_RECORD_FIELD_SET = frozenset(RECORD_FIELDS)
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FORMULA_START = frozenset("=+-@")
_INERT_SIGNED = re.compile(r"[+-][0-9 ().,eE\-]*")


@dataclass(frozen=True)
class RowError:
    """One problem (or note) of one input row; ``row_number`` counts data rows from 1 (header excluded)."""

    row_number: int
    field: str
    code: str
    message: str


@dataclass
class Candidate:
    row_number: int
    licence_type: LicenceType
    holder_id: str
    holder_name: str
    issuer_credit_code: str
    issuer_name: str
    issue_date: dt.date
    valid_from: dt.date
    valid_until: dt.date | None
    status: LicenceStatus
    face: dict[str, Any]
    source_case: str | None
    licence_number: str | None
    identifier: LicenceIdentifier | None
    note: RowError | None = None


# --- cells ----------------------------------------------------------------------------------------------


def _cell_problem(number: int, key: str, value: str, prefix: str = "") -> RowError | None:
    """Size, characters and formula rule of one text value (before any other rule looks at it)."""
    if (
        len(value) <= MAX_CELL_CHARS
        and _BAD_CHARS.search(value) is None
        and value.lstrip()[:1] not in _FORMULA_START
    ):
        return None
    name = prefix + shown(key)
    if len(value) > MAX_CELL_CHARS:
        return RowError(number, name, "too_long", f"{name} 超过 {MAX_CELL_CHARS} 个字符")
    bad = _BAD_CHARS.search(value)
    if bad is not None:
        ch = bad.group()
        what = "孤立的代理项（无效的 Unicode 字符）" if "\ud800" <= ch <= "\udfff" else "控制字符"
        return RowError(number, name, "bad_character", f"{name} 含有{what} U+{ord(ch):04X}")
    text = value.strip()
    if text and text[0] in _FORMULA_START and not (text[0] in "+-" and _INERT_SIGNED.fullmatch(text)):
        return RowError(
            number,
            name,
            "formula_value",
            f"{name} 以“{text[0]}”开头，电子表格会把它当作公式执行，已拒绝；请在源数据中改正后重新导入",
        )
    return None


def _cells(
    number: int, raw: Mapping[str, Any], errors: list[RowError]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The record fields (stripped text, blanks left out) and the face values of ``raw``, in one pass; an
    unusable value is left out and reported. Face values keep their JSON type for the licence type to
    judge; nothing is converted before it is bounded."""
    nested = raw.get("face")
    texts = [v for v in raw.values() if v.__class__ is str]
    if isinstance(nested, dict):
        texts.extend(v for v in nested.values() if v.__class__ is str)
    suspect = _BAD_CHARS.search("\n".join(texts)) is not None  # one search for the whole row

    def refused(key: str, value: str, prefix: str = "") -> bool:
        first = value[0]  # a formula start, or whitespace that strip() removes and that may hide one
        if suspect or len(value) > MAX_CELL_CHARS or first in _FORMULA_START or first.isspace():
            found = _cell_problem(number, key, value, prefix)
            if found is not None:
                errors.append(found)
                return True
        return False

    record: dict[str, str] = {}
    face: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        if key in _RECORD_FIELD_SET:
            if value.__class__ is str:
                if refused(key, value):
                    continue
            elif isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(RowError(number, key, "bad_format", f"{key} 应为文本"))
                continue
            else:
                value = str(value)  # a JSON number where text is expected (json bounds its digits)
            text = value.strip()
            if text:
                record[key] = text
        elif key[:5] == "face.":
            if value.__class__ is str and (not value.strip() or refused(key, value)):
                continue
            face[key[5:]] = value
        elif key == "face":
            if not isinstance(value, dict):
                errors.append(RowError(number, "face", "bad_format", "face 应为对象"))
                continue
            for name, item in value.items():
                if not (item.__class__ is str and item and refused(name, item, "face.")):
                    face[name] = item
        else:
            errors.append(RowError(number, shown(key), "unknown_field", f"未知字段：{shown(key)}"))
    return record, face


def _text(record: Mapping[str, str], name: str) -> str | None:
    """A record field of a row (``_cells``): stripped text, None when absent or blank."""
    return record.get(name)


# --- validating -----------------------------------------------------------------------------------------


def _date(
    number: int, raw: Mapping[str, Any], name: str, label: str, errors: list[RowError]
) -> tuple[dt.date | None, bool]:
    """The parsed date (None when absent) and whether the value was usable."""
    text = _text(raw, name)
    if text is None:
        return None, True
    try:
        return parse_date(text), True
    except ValueError:
        errors.append(RowError(number, name, "bad_date", f"{label}不是有效日期：{shown(text)}"))
        return None, False


def _holder(
    number: int,
    raw: Mapping[str, Any],
    name: str,
    expected: HolderIdKind | None,
    today: dt.date,
    errors: list[RowError],
) -> str | None:
    text = _text(raw, name)
    if text is None:
        return None
    try:
        return validate_holder_id(text, name, expected, today)
    except InvalidInput as exc:
        errors.append(RowError(number, name, exc.code, exc.message))
        return None


EARLIEST_ISSUE = dt.date(1949, 10, 1)
"""No licence of the library's types was issued before this day: an earlier one is a typing error."""


def validate_row(number: int, raw: Any, today: dt.date) -> tuple[Candidate | None, list[RowError]]:
    if isinstance(raw, BadRow):
        return None, [RowError(number, "", raw.code, raw.message)]
    if not isinstance(raw, dict):
        return None, [RowError(number, "", "bad_format", "每条记录应为 JSON 对象")]
    errors: list[RowError] = []
    raw, face = _cells(number, raw, errors)
    refused = {e.field for e in errors}
    for name in REQUIRED_FIELDS:
        if name not in refused and _text(raw, name) is None:
            errors.append(RowError(number, name, "required", f"{name} 为必填项"))
    for name, limit in _MAX_LENGTH.items():
        text = _text(raw, name)
        if text is not None and len(text) > limit:
            errors.append(RowError(number, name, "too_long", f"{name} 超过 {limit} 个字符"))

    type_code = _text(raw, "type_code")
    licence_type = find_type(type_code) if type_code else None
    if type_code and licence_type is None:
        errors.append(
            RowError(number, "type_code", "unknown_licence_type", f"未知的证照类型：{shown(type_code)}")
        )

    holder_kind = holder_id_kind_for(licence_type) if licence_type else None
    holder_id = _holder(number, raw, "holder_id", holder_kind, today, errors)
    if holder_id and licence_type and holder_kind and not is_holder_id_of(holder_id, holder_kind, today):
        errors.append(
            RowError(
                number, "holder_id", "holder_kind_mismatch", f"{licence_type.name}的持证主体证件类型不符"
            )
        )
    issuer = _holder(number, raw, "issuer_credit_code", "credit_code", today, errors)
    if issuer and not is_holder_id_of(issuer, "credit_code", today):
        errors.append(
            RowError(number, "issuer_credit_code", "bad_format", "颁发机构应以统一社会信用代码标识")
        )

    issue_date, _ = _date(number, raw, "issue_date", "颁发日期", errors)
    valid_from, from_ok = _date(number, raw, "valid_from", "有效期起始日期", errors)
    valid_until, until_ok = _date(number, raw, "valid_until", "有效期截止日期", errors)
    valid_from = valid_from or (issue_date if from_ok else None)
    if issue_date and issue_date > today:
        errors.append(RowError(number, "issue_date", "issued_in_future", "颁发日期晚于今天"))
    elif issue_date and issue_date < EARLIEST_ISSUE:
        errors.append(
            RowError(number, "issue_date", "bad_date", f"颁发日期早于 {EARLIEST_ISSUE.isoformat()}")
        )
    if issue_date and valid_from and valid_from < issue_date:
        errors.append(RowError(number, "valid_from", "bad_validity", "有效期起始日期早于颁发日期"))
    if valid_from and valid_until and valid_until < valid_from:
        errors.append(RowError(number, "valid_until", "bad_validity", "有效期截止日期早于起始日期"))
    if valid_until is None and until_ok and licence_type and valid_from:
        # no end date on the paper: the type's term, as an issue in the library gives it (None: 长期有效)
        try:
            valid_until = licence_type.default_valid_until(valid_from)
        except InvalidInput as exc:  # a term past 9999-12-31
            errors.append(RowError(number, "valid_until", exc.code, exc.message))

    status = _text(raw, "status") or "valid"
    if status not in STATUSES:
        errors.append(RowError(number, "status", "bad_status", f"未知的证照状态：{shown(status)}"))

    clean_face: dict[str, Any] = {}
    if licence_type is not None:
        clean_face, problems = licence_type.check_face(face, today=today)
        errors.extend(
            RowError(number, p.field, p.code, p.message) for p in problems if p.field not in refused
        )
        holder_name = _text(raw, "holder_name")
        id_field, name_field = licence_type.holder_id_field, licence_type.holder_name_field
        if id_field and holder_id and clean_face.get(id_field) not in (None, holder_id):
            errors.append(
                RowError(number, f"face.{id_field}", "face_holder_mismatch", "照面证件号码与持证主体不一致")
            )
        if name_field and holder_name and clean_face.get(name_field) not in (None, holder_name):
            errors.append(
                RowError(number, f"face.{name_field}", "face_holder_mismatch", "照面名称与持证主体名称不一致")
            )

    identifier = None
    identifier_text = _text(raw, "identifier")
    if identifier_text is not None:
        try:
            identifier = LicenceIdentifier.parse(identifier_text)
        except ValueError as exc:
            errors.append(RowError(number, "identifier", "bad_format", str(exc)))
        else:
            if not identifier.is_valid():
                errors.append(
                    RowError(number, "identifier", "bad_check_digit", "证照标识校验位错误（MOD 37,36）")
                )
            elif licence_type and (identifier.type_id, identifier.issuer_credit_code) != (
                licence_type.type_id,
                issuer,
            ):
                errors.append(
                    RowError(
                        number,
                        "identifier",
                        "identifier_mismatch",
                        "证照标识中的类型代码或颁发机构与记录不符",
                    )
                )

    if errors:
        if len(errors) > MAX_ERRORS_PER_ROW:
            rest = len(errors) - MAX_ERRORS_PER_ROW
            errors = errors[:MAX_ERRORS_PER_ROW]
            errors.append(RowError(number, "", "too_many_errors", f"该行还有 {rest} 个错误未列出"))
        return None, errors
    assert (
        licence_type and holder_id and issuer and issue_date and valid_from
    )  # guaranteed by the checks above
    note = None
    if status == "valid" and valid_until is not None and valid_until < today:
        status = "expired"
        note = RowError(
            number,
            "status",
            "expired_on_import",
            f"有效期已于 {valid_until.isoformat()} 届满，按“过期”状态导入",
        )
    return (
        Candidate(
            row_number=number,
            licence_type=licence_type,
            holder_id=holder_id,
            holder_name=_text(raw, "holder_name") or "",
            issuer_credit_code=issuer,
            issuer_name=_text(raw, "issuer_name") or "",
            issue_date=issue_date,
            valid_from=valid_from,
            valid_until=valid_until,
            status=cast(LicenceStatus, status),
            face=clean_face,
            source_case=_text(raw, "source_case"),
            # a row that names its identifier but no number gets the number the identifier implies, as
            # the library gives one (checked for clashes like any number the file gives)
            licence_number=_text(raw, "licence_number")
            or (
                format_licence_number(
                    identifier.type_id, identifier.issuer_credit_code, identifier.serial, identifier.version
                )
                if identifier is not None
                else None
            ),
            identifier=identifier,
            note=note,
        ),
        [],
    )


def content_key(
    type_code: str,
    holder_id: str,
    holder_name: str,
    issuer_credit_code: str,
    issuer_name: str,
    issue_date: dt.date,
    valid_from: dt.date,
    valid_until: dt.date | None,
    face: Mapping[str, Any],
    source_case: str | None,
) -> bytes:
    """What makes two licences without a number the same licence (the status is not part of it: a stored
    licence may have expired since it was imported)."""
    document = [
        type_code,
        holder_id,
        holder_name,
        issuer_credit_code,
        issuer_name,
        issue_date.isoformat(),
        valid_from.isoformat(),
        valid_until.isoformat() if valid_until else None,
        face,
        source_case or None,
    ]
    canonical = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).digest()


def candidate_key(c: Candidate) -> bytes:
    return content_key(
        c.licence_type.code,
        c.holder_id,
        c.holder_name,
        c.issuer_credit_code,
        c.issuer_name,
        c.issue_date,
        c.valid_from,
        c.valid_until,
        c.face,
        c.source_case,
    )
