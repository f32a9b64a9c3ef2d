"""Bulk import of paper-era licences (存量证照) from CSV or JSON.

Input: UTF-8 CSV with a header row, a JSON array of objects, or JSON lines. Columns/keys are the record fields
(``RECORD_FIELDS``) plus the face fields as ``face.<name>`` (JSON objects may nest them under ``"face"``).
Every row is validated; bad rows are reported with their 1-based data row number (the CSV header is not
counted) and every good row is inserted in the caller's transaction, in batches. Nothing commits here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError
from tqdm import tqdm

from engine.errors import Conflict, InvalidInput
from licence.checkdigits import holder_id_kind, validate_holder_id
from licence.library import licence_row, new_id, next_serials, utc, utc_now
from licence.model import ROOT_CODE, STATUSES, LicenceIdentifier, LicenceStatus, format_licence_number
from licence.tables import licence_status_events, licences
from licence.types import LicenceType, find_type, holder_id_kind_for
from licence.values import parse_date

__all__ = [
    "RECORD_FIELDS",
    "REQUIRED_FIELDS",
    "RowError",
    "ImportReport",
    "read_rows",
    "import_rows",
    "import_file",
    "write_csv",
]

ImportFormat = Literal["csv", "json"]

RECORD_FIELDS = (
    "identifier",
    "licence_number",
    "type_code",
    "holder_id",
    "holder_name",
    "issuer_credit_code",
    "issuer_name",
    "issue_date",
    "valid_from",
    "valid_until",
    "status",
    "source_case",
)
REQUIRED_FIELDS = ("type_code", "holder_id", "holder_name", "issuer_credit_code", "issuer_name", "issue_date")
_MAX_LENGTH = {
    "licence_number": 64,
    "holder_name": 200,
    "issuer_name": 200,
    "source_case": 64,
    "identifier": 128,
}
_LOOKUP_CHUNK = 500
_RECORD_FIELD_SET = frozenset(RECORD_FIELDS)


@dataclass(frozen=True)
class RowError:
    """One problem of one input row; ``row_number`` counts data rows from 1 (header excluded)."""

    row_number: int
    field: str
    code: str
    message: str


@dataclass
class ImportReport:
    accepted: int
    rejected: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    dry_run: bool = False

    @property
    def rejected_rows(self) -> int:
        """How many distinct rows were rejected (a row may have several errors)."""
        return len({e.row_number for e in self.rejected})


@dataclass
class _Candidate:
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


# --- reading ------------------------------------------------------------------------------------------


def _bad_file(message: str, **detail: Any) -> InvalidInput:
    return InvalidInput(message, code="bad_file", **detail)


def _check_columns(columns: Iterable[str]) -> None:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidInput(f"表头列重复：{column}", code="bad_header", field=column)
        seen.add(column)
        if column not in RECORD_FIELDS and not (column.startswith("face.") and len(column) > 5):
            raise InvalidInput(
                f"未知的表头列：{column}（应为记录字段或 face.<照面项>）", code="bad_header", field=column
            )
    missing = [c for c in REQUIRED_FIELDS if c not in seen]
    if missing:
        raise InvalidInput(f"缺少必需的表头列：{', '.join(missing)}", code="bad_header", field=missing[0])


def _read_csv(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise _bad_file("CSV 文件为空，缺少表头行")
    names = [c.strip() for c in header]
    _check_columns(names)
    number = 0
    for raw in reader:
        if not any(cell.strip() for cell in raw):
            continue
        number += 1
        if len(raw) != len(names):
            yield number, _ShapeError(f"该行有 {len(raw)} 列，表头有 {len(names)} 列")
            continue
        yield number, dict(zip(names, raw, strict=True))


@dataclass(frozen=True)
class _ShapeError:
    message: str


def _read_json(text: str) -> Iterator[tuple[int, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _bad_file(f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列", line=exc.lineno) from exc
        yield from enumerate(items, start=1)
        return
    number = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number += 1
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError:
            yield number, _ShapeError(f"第 {line_no} 行不是有效的 JSON")


def read_rows(path: Path | str, format: ImportFormat | None = None) -> Iterator[tuple[int, Any]]:
    """``(row_number, raw_row)`` pairs of a CSV or JSON file (format guessed from the suffix if not given)."""
    path = Path(path)
    fmt = format or ("csv" if path.suffix.lower() == ".csv" else "json")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad_file("文件不是 UTF-8 编码", position=exc.start) from exc
    return _read_csv(text) if fmt == "csv" else _read_json(text)


# --- validating ---------------------------------------------------------------------------------------


def _text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _split_face(number: int, raw: Mapping[str, Any], errors: list[RowError]) -> dict[str, Any]:
    face: dict[str, Any] = {}
    nested = raw.get("face")
    if nested is not None:
        if isinstance(nested, dict):
            face.update(nested)
        else:
            errors.append(RowError(number, "face", "bad_format", "face 应为对象"))
    for key, value in raw.items():
        if key in _RECORD_FIELD_SET:
            continue
        if key[:5] == "face.":
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            face[key[5:]] = value
        elif key != "face":
            errors.append(RowError(number, key, "unknown_field", f"未知字段：{key}"))
    return face


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
        errors.append(RowError(number, name, "bad_date", f"{label}不是有效日期：{text}"))
        return None, False


def _holder(number: int, raw: Mapping[str, Any], name: str, errors: list[RowError]) -> str | None:
    text = _text(raw, name)
    if text is None:
        return None
    try:
        return validate_holder_id(text, name)
    except InvalidInput as exc:
        errors.append(RowError(number, name, exc.code, exc.message))
        return None


def _validate_row(number: int, raw: Any) -> tuple[_Candidate | None, list[RowError]]:
    if isinstance(raw, _ShapeError):
        return None, [RowError(number, "", "bad_format", raw.message)]
    if not isinstance(raw, dict):
        return None, [RowError(number, "", "bad_format", "每条记录应为 JSON 对象")]
    errors: list[RowError] = []
    for name in REQUIRED_FIELDS:
        if _text(raw, name) is None:
            errors.append(RowError(number, name, "required", f"{name} 为必填项"))
    for name, limit in _MAX_LENGTH.items():
        text = _text(raw, name)
        if text is not None and len(text) > limit:
            errors.append(RowError(number, name, "too_long", f"{name} 超过 {limit} 个字符"))
    face = _split_face(number, raw, errors)

    type_code = _text(raw, "type_code")
    licence_type = find_type(type_code) if type_code else None
    if type_code and licence_type is None:
        errors.append(RowError(number, "type_code", "unknown_licence_type", f"未知的证照类型：{type_code}"))

    holder_id = _holder(number, raw, "holder_id", errors)
    if holder_id and licence_type and holder_id_kind(holder_id) != holder_id_kind_for(licence_type):
        errors.append(
            RowError(
                number, "holder_id", "holder_kind_mismatch", f"{licence_type.name}的持证主体证件类型不符"
            )
        )
    issuer = _holder(number, raw, "issuer_credit_code", errors)
    if issuer and holder_id_kind(issuer) != "credit_code":
        errors.append(
            RowError(number, "issuer_credit_code", "bad_format", "颁发机构应以统一社会信用代码标识")
        )

    issue_date, _ = _date(number, raw, "issue_date", "颁发日期", errors)
    valid_from, from_ok = _date(number, raw, "valid_from", "有效期起始日期", errors)
    valid_until, until_ok = _date(number, raw, "valid_until", "有效期截止日期", errors)
    valid_from = valid_from or (issue_date if from_ok else None)
    if valid_from and valid_until and valid_until < valid_from:
        errors.append(RowError(number, "valid_until", "bad_validity", "有效期截止日期早于起始日期"))

    status = _text(raw, "status") or "valid"
    if status not in STATUSES:
        errors.append(RowError(number, "status", "bad_status", f"未知的证照状态：{status}"))

    clean_face: dict[str, Any] = {}
    if licence_type is not None:
        clean_face, problems = licence_type.check_face(face)
        errors.extend(RowError(number, p.field, p.code, p.message) for p in problems)
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
        return None, errors
    assert (
        licence_type and holder_id and issuer and issue_date and valid_from
    )  # guaranteed by the checks above
    return (
        _Candidate(
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
            licence_number=_text(raw, "licence_number"),
            identifier=identifier,
        ),
        [],
    )


def _existing(conn: Connection, column: Any, values: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), _LOOKUP_CHUNK):
        chunk = values[start : start + _LOOKUP_CHUNK]
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def _reject_duplicates(
    conn: Connection, candidates: list[_Candidate], errors: list[RowError]
) -> list[_Candidate]:
    seen_ids: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    unique: list[_Candidate] = []
    for c in candidates:
        ident = str(c.identifier) if c.identifier else None
        if ident and ident in seen_ids:
            errors.append(
                RowError(
                    c.row_number, "identifier", "duplicate_in_file", f"证照标识与第 {seen_ids[ident]} 行重复"
                )
            )
            continue
        if c.licence_number and c.licence_number in seen_numbers:
            where = seen_numbers[c.licence_number]
            errors.append(
                RowError(c.row_number, "licence_number", "duplicate_in_file", f"证照编号与第 {where} 行重复")
            )
            continue
        if ident:
            seen_ids[ident] = c.row_number
        if c.licence_number:
            seen_numbers[c.licence_number] = c.row_number
        unique.append(c)
    in_db_ids = _existing(conn, licences.c.identifier, list(seen_ids))
    in_db_numbers = _existing(conn, licences.c.licence_number, list(seen_numbers))
    kept: list[_Candidate] = []
    for c in unique:
        if c.identifier and str(c.identifier) in in_db_ids:
            errors.append(
                RowError(c.row_number, "identifier", "duplicate_in_db", "证照库中已有相同证照标识的证照")
            )
        elif c.licence_number and c.licence_number in in_db_numbers:
            errors.append(
                RowError(c.row_number, "licence_number", "duplicate_in_db", "证照库中已有相同编号的证照")
            )
        else:
            kept.append(c)
    return kept


def _assign_identifiers(conn: Connection, candidates: list[_Candidate], root_code: str) -> None:
    """Give identifiers (and numbers) to rows without them: serials above every one used in DB or file."""
    pairs = {(c.licence_type.code, c.issuer_credit_code) for c in candidates if c.identifier is None}
    if not pairs:
        return
    counters = next_serials(conn, pairs)
    for c in candidates:
        pair = (c.licence_type.code, c.issuer_credit_code)
        if c.identifier is not None and pair in counters:
            counters[pair] = max(counters[pair], c.identifier.serial + 1)
    taken_numbers = {c.licence_number for c in candidates if c.licence_number}
    pending = [c for c in candidates if c.identifier is None]
    while pending:
        generated: dict[str, _Candidate] = {}
        for c in pending:
            pair = (c.licence_type.code, c.issuer_credit_code)
            serial = counters[pair]
            counters[pair] += 1
            c.identifier = LicenceIdentifier.build(
                c.licence_type.type_id, c.issuer_credit_code, serial, root=root_code
            )
            if c.licence_number is None:
                number = format_licence_number(c.licence_type.type_id, c.issuer_credit_code, serial)
                generated[number] = c
        clash = (set(generated) & taken_numbers) | _existing(conn, licences.c.licence_number, list(generated))
        for number, c in generated.items():
            if number not in clash:
                c.licence_number = number
                taken_numbers.add(number)
        pending = [generated[n] for n in clash if n in generated]
        for c in pending:
            c.identifier = None


# --- importing ----------------------------------------------------------------------------------------


def import_rows(
    conn: Connection,
    rows: Iterable[tuple[int, Any]],
    *,
    dry_run: bool = False,
    progress: bool = False,
    batch_size: int = 5000,
    actor: str = "import",
    at: dt.datetime | None = None,
    id_factory: Callable[[], str] = new_id,
    root_code: str = ROOT_CODE,
    total: int | None = None,
) -> ImportReport:
    """Validate ``(row_number, raw)`` pairs and insert the good ones in batches (unless ``dry_run``)."""
    at = utc(at or utc_now())
    errors: list[RowError] = []
    candidates: list[_Candidate] = []
    count = 0
    for number, raw in tqdm(rows, total=total, desc="校验 validating", unit="行", disable=not progress):
        count += 1
        candidate, row_errors = _validate_row(number, raw)
        errors.extend(row_errors)
        if candidate is not None:
            candidates.append(candidate)
    candidates = _reject_duplicates(conn, candidates, errors)
    _assign_identifiers(conn, candidates, root_code)
    if not dry_run:
        _insert(conn, candidates, batch_size, actor, at, id_factory, progress)
    errors.sort(key=lambda e: e.row_number)
    return ImportReport(accepted=len(candidates), rejected=errors, total_rows=count, dry_run=dry_run)


def _insert(
    conn: Connection,
    candidates: list[_Candidate],
    batch_size: int,
    actor: str,
    at: dt.datetime,
    id_factory: Callable[[], str],
    progress: bool,
) -> None:
    bar = tqdm(total=len(candidates), desc="写入 inserting", unit="行", disable=not progress)
    with bar:
        for start in range(0, len(candidates), batch_size):
            batch = candidates[start : start + batch_size]
            rows = []
            events = []
            for c in batch:
                assert c.identifier is not None and c.licence_number is not None
                row = licence_row(
                    licence_id=id_factory(),
                    licence_type=c.licence_type,
                    identifier=c.identifier,
                    licence_number=c.licence_number,
                    holder_id=c.holder_id,
                    holder_name=c.holder_name,
                    issuer_credit_code=c.issuer_credit_code,
                    issuer_name=c.issuer_name,
                    issue_date=c.issue_date,
                    valid_from=c.valid_from,
                    valid_until=c.valid_until,
                    status=c.status,
                    face=c.face,
                    created_at=at,
                    source_case=c.source_case,
                )
                rows.append(row)
                events.append(
                    {
                        "licence_id": row["id"],
                        "from_status": None,
                        "status": c.status,
                        "at": at,
                        "reason": f"存量证照导入（第 {c.row_number} 行）",
                        "actor": actor,
                    }
                )
            try:
                conn.execute(insert(licences), rows)
            except IntegrityError as exc:
                raise Conflict(
                    "导入期间证照库中出现了相同的证照标识或编号（并发写入），请重试", code="conflict"
                ) from exc
            conn.execute(insert(licence_status_events), events)
            bar.update(len(batch))


def _count_rows(path: Path, format: ImportFormat | None) -> int | None:
    try:
        return sum(1 for _ in read_rows(path, format))
    except InvalidInput:
        return None


def import_file(
    conn: Connection,
    path: Path | str,
    format: ImportFormat | None = None,
    *,
    dry_run: bool = False,
    progress: bool = False,
    batch_size: int = 5000,
    actor: str = "import",
    at: dt.datetime | None = None,
    id_factory: Callable[[], str] = new_id,
) -> ImportReport:
    """Import a CSV/JSON file into the library in the caller's transaction; see ``import_rows``."""
    total = _count_rows(Path(path), format) if progress else None
    return import_rows(
        conn,
        read_rows(path, format),
        dry_run=dry_run,
        progress=progress,
        batch_size=batch_size,
        actor=actor,
        at=at,
        id_factory=id_factory,
        total=total,
    )


def write_csv(rows: Iterable[Mapping[str, Any]], path: Path | str) -> int:
    """Write import rows (record fields + ``face.<name>`` or a nested ``face`` dict) as a UTF-8 CSV."""
    flat: list[dict[str, Any]] = []
    columns: dict[str, None] = dict.fromkeys(RECORD_FIELDS)
    for row in rows:
        item = {k: v for k, v in row.items() if k != "face"}
        for key, value in (row.get("face") or {}).items():
            item[f"face.{key}"] = value
        columns.update(dict.fromkeys(item))
        flat.append(item)
    face_columns = sorted(c for c in columns if c.startswith("face."))
    header = [c for c in RECORD_FIELDS] + face_columns
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="raise")
        writer.writeheader()
        for item in flat:
            writer.writerow({k: ("" if v is None else v) for k, v in item.items()})
    return len(flat)
