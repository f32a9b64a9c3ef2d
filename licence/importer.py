"""Bulk import of paper-era licences (存量证照) from CSV or JSON.

Input: UTF-8 CSV with a header row, a JSON array of objects, or JSON lines, read as a stream with size
limits by ``licence.import_reader``. Columns/keys are the record fields (``RECORD_FIELDS``) plus the face
fields as ``face.<name>`` (JSON objects may nest them under ``"face"``). Every row is validated
(``licence.import_rows``); bad rows are reported with their 1-based data row number (the CSV header is not
counted) and good rows are inserted in the caller's transaction, batch by batch as the file is read, so
memory holds one batch, not the file. Nothing commits here.

- A row past its validity is stored ``expired`` and listed in ``ImportReport.notes``.
- Duplicates are one licence: the same identifier or licence number twice, and, for rows with neither, the
  same content (type, holder, issuer, dates, face, source case) twice, in the file or against the library.
  So importing the same file again stores nothing new; the repeated rows are reported as duplicates.
- The report keeps the first ``MAX_REPORTED`` errors and notes; its counts are exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError
from tqdm import tqdm

from engine.errors import Conflict
from licence.import_reader import (
    DEFAULT_LIMITS,
    RECORD_FIELDS,
    REQUIRED_FIELDS,
    ImportFormat,
    ReadLimits,
    read_rows,
)
from licence.import_rows import (
    MAX_CELL_CHARS,
    MAX_ERRORS_PER_ROW,
    Candidate,
    RowError,
    candidate_key,
    content_key,
    validate_row,
)
from licence.library import licence_row, new_id, next_serials, utc, utc_now
from licence.model import ROOT_CODE, LicenceIdentifier, format_licence_number
from licence.tables import licence_status_events, licences
from licence.types import all_types, find_type

__all__ = [
    "RECORD_FIELDS",
    "REQUIRED_FIELDS",
    "MAX_CELL_CHARS",
    "MAX_ERRORS_PER_ROW",
    "MAX_REPORTED",
    "ReadLimits",
    "RowError",
    "ImportReport",
    "read_rows",
    "import_rows",
    "import_file",
    "write_csv",
]

MAX_REPORTED = 10_000
"""Errors (and notes) kept in the report; counts stay exact beyond it."""
_LOOKUP_CHUNK = 500
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_LIBRARY_NUMBER = re.compile(r"[0-9A-Z]{16,}[0-9]{8}(?:-[0-9]+)?")


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: list[RowError] = field(default_factory=list)
    """The first ``MAX_REPORTED`` problems, by row number."""
    total_rows: int = 0
    dry_run: bool = False
    notes: list[RowError] = field(default_factory=list)
    """Accepted rows worth a look (``expired_on_import``), the first ``MAX_REPORTED``."""
    error_count: int = 0
    rejected_row_count: int = 0
    note_count: int = 0

    @property
    def rejected_rows(self) -> int:
        """How many distinct rows were rejected (a row may have several errors)."""
        return self.rejected_row_count

    def _reject(self, errors: list[RowError]) -> None:
        errors.sort(key=lambda e: e.row_number)
        previous = None
        for error in errors:
            if error.row_number != previous:
                self.rejected_row_count += 1
                previous = error.row_number
        self.error_count += len(errors)
        room = MAX_REPORTED - len(self.rejected)
        self.rejected.extend(errors[: max(room, 0)])

    def _note(self, note: RowError) -> None:
        self.note_count += 1
        if len(self.notes) < MAX_REPORTED:
            self.notes.append(note)


# --- the file as a whole: what generated identifiers and numbers must avoid --------------------------


@dataclass
class _Explicit:
    """Read once before the import: the highest serial given per (type, issuer) and the licence numbers
    in the library's own format, so that generated ones never collide with a row further down; and the
    serial counters of the rows without an identifier, locked before the first row is imported."""

    rows: int = 0
    serials: dict[tuple[str, str], int] = field(default_factory=dict)
    numbers: set[str] = field(default_factory=set)
    generated: set[tuple[str, str]] = field(default_factory=set)  # (type, issuer) of rows to number


def _scan_explicit(rows: Iterable[tuple[int, Any]]) -> _Explicit:
    found = _Explicit()
    type_by_id = {t.type_id: t.code for t in all_types()}
    for _, raw in rows:
        found.rows += 1
        if not isinstance(raw, dict):
            continue
        identifier = raw.get("identifier")
        if isinstance(identifier, str) and identifier.strip() and len(identifier) <= 128:
            try:
                parsed = LicenceIdentifier.parse(identifier)
            except ValueError:
                parsed = None
            type_code = type_by_id.get(parsed.type_id) if parsed else None
            if parsed and type_code:
                pair = (type_code, parsed.issuer_credit_code)
                found.serials[pair] = max(found.serials.get(pair, 0), parsed.serial)
        else:  # numbered by the import: its serial counter, as the row will name it once validated
            type_code, issuer = raw.get("type_code"), raw.get("issuer_credit_code")
            if isinstance(type_code, str) and isinstance(issuer, str) and len(issuer.strip()) == 18:
                licence_type = find_type(type_code.strip())
                if licence_type is not None:
                    found.generated.add((licence_type.code, issuer.strip().upper()))
        number = raw.get("licence_number")
        if isinstance(number, str) and 24 <= len(number.strip()) <= 64:
            text = number.strip()
            if _LIBRARY_NUMBER.fullmatch(text):
                found.numbers.add(text)
    return found


# --- importing ------------------------------------------------------------------------------------------


def _existing(conn: Connection, column: Any, values: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), _LOOKUP_CHUNK):
        chunk = values[start : start + _LOOKUP_CHUNK]
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def _existing_content(conn: Connection, holders: list[str]) -> dict[bytes, str]:
    """Content key -> licence number of the stored licences of these holders."""
    found: dict[bytes, str] = {}
    c = licences.c
    columns = (
        c.type_code,
        c.holder_id,
        c.holder_name,
        c.issuer_credit_code,
        c.issuer_name,
        c.issue_date,
        c.valid_from,
        c.valid_until,
        c.face,
        c.source_case,
        c.licence_number,
    )
    for start in range(0, len(holders), _LOOKUP_CHUNK):
        chunk = holders[start : start + _LOOKUP_CHUNK]
        for row in conn.execute(select(*columns).where(c.holder_id.in_(chunk))):
            key = content_key(*row[:-1])
            found.setdefault(key, row.licence_number)
    return found


class _Batches:
    """Rows validated one at a time, deduplicated, numbered and inserted one batch at a time."""

    def __init__(
        self,
        conn: Connection,
        report: ImportReport,
        explicit: _Explicit,
        *,
        dry_run: bool,
        batch_size: int,
        actor: str,
        at: dt.datetime,
        id_factory: Callable[[], str],
        root_code: str,
    ) -> None:
        self.conn = conn
        self.report = report
        self.explicit = explicit
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.actor = actor
        self.at = at
        self.id_factory = id_factory
        self.root_code = root_code
        self.candidates: list[Candidate] = []
        self.errors: list[RowError] = []
        self.pending_rows = 0
        self.seen_ids: dict[str, int] = {}
        self.seen_numbers: dict[str, int] = {}
        self.seen_content: dict[bytes, int] = {}
        self.counters: dict[tuple[str, str], int] = {}
        # every serial counter the file will number from, locked at once in key order before any row
        # (one statement on PostgreSQL): counters locked batch by batch, in the file's order, could wait
        # in a circle with another import or an approval locking the same counters in key order
        self._take_serials(explicit.generated)

    def add(self, candidate: Candidate | None, errors: list[RowError]) -> None:
        self.pending_rows += 1
        self.errors.extend(errors)
        if candidate is not None:
            self.candidates.append(candidate)
        if self.pending_rows >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        kept = self._deduplicate(self.candidates)
        self._assign_identifiers(kept)
        if not self.dry_run:
            self._insert(kept)
        self.report.accepted += len(kept)
        for c in kept:
            if c.note is not None:
                self.report._note(c.note)
        self.report._reject(self.errors)
        self.candidates, self.errors, self.pending_rows = [], [], 0

    def _take_serials(self, pairs: set[tuple[str, str]]) -> None:
        if pairs:
            for pair, serial in next_serials(self.conn, pairs).items():
                self.counters[pair] = max(serial, self.explicit.serials.get(pair, 0) + 1)

    def _deduplicate(self, candidates: list[Candidate]) -> list[Candidate]:
        unique: list[Candidate] = []
        keys: dict[int, bytes] = {}
        for c in candidates:
            ident = str(c.identifier) if c.identifier else None
            if ident and ident in self.seen_ids:
                where = self.seen_ids[ident]
                self.errors.append(
                    RowError(c.row_number, "identifier", "duplicate_in_file", f"证照标识与第 {where} 行重复")
                )
                continue
            if c.licence_number and c.licence_number in self.seen_numbers:
                where = self.seen_numbers[c.licence_number]
                self.errors.append(
                    RowError(
                        c.row_number, "licence_number", "duplicate_in_file", f"证照编号与第 {where} 行重复"
                    )
                )
                continue
            if not ident and not c.licence_number:
                key = candidate_key(c)
                if key in self.seen_content:
                    where = self.seen_content[key]
                    self.errors.append(
                        RowError(
                            c.row_number,
                            "",
                            "duplicate_in_file",
                            f"与第 {where} 行内容完全相同（均无证照编号），只导入一次",
                        )
                    )
                    continue
                self.seen_content[key] = c.row_number
                keys[c.row_number] = key
            if ident:
                self.seen_ids[ident] = c.row_number
            if c.licence_number:
                self.seen_numbers[c.licence_number] = c.row_number
            unique.append(c)
        in_db_ids = _existing(
            self.conn, licences.c.identifier, [str(c.identifier) for c in unique if c.identifier]
        )
        in_db_numbers = _existing(
            self.conn, licences.c.licence_number, [c.licence_number for c in unique if c.licence_number]
        )
        in_db_content = (
            _existing_content(self.conn, sorted({c.holder_id for c in unique if c.row_number in keys}))
            if keys
            else {}
        )
        kept: list[Candidate] = []
        for c in unique:
            key = keys.get(c.row_number)
            if c.identifier and str(c.identifier) in in_db_ids:
                self.errors.append(
                    RowError(c.row_number, "identifier", "duplicate_in_db", "证照库中已有相同证照标识的证照")
                )
            elif c.licence_number and c.licence_number in in_db_numbers:
                self.errors.append(
                    RowError(c.row_number, "licence_number", "duplicate_in_db", "证照库中已有相同编号的证照")
                )
            elif key is not None and key in in_db_content:
                self.errors.append(
                    RowError(
                        c.row_number,
                        "",
                        "duplicate_in_db",
                        f"证照库中已有内容完全相同的证照（编号 {in_db_content[key]}），未重复导入",
                    )
                )
            else:
                kept.append(c)
        return kept

    def _assign_identifiers(self, candidates: list[Candidate]) -> None:
        """Give identifiers (and numbers) to rows without them: serials above every one used in the
        library or anywhere in the file, numbers clear of every number in the library or the file."""
        pairs = {(c.licence_type.code, c.issuer_credit_code) for c in candidates if c.identifier is None}
        self._take_serials(pairs - set(self.counters))  # none left but a row the first pass misread
        taken_numbers = self.explicit.numbers
        pending = [c for c in candidates if c.identifier is None]
        while pending:
            generated: dict[str, Candidate] = {}
            for c in pending:
                pair = (c.licence_type.code, c.issuer_credit_code)
                serial = self.counters[pair]
                self.counters[pair] += 1
                c.identifier = LicenceIdentifier.build(
                    c.licence_type.type_id, c.issuer_credit_code, serial, root=self.root_code
                )
                if c.licence_number is None:
                    number = format_licence_number(c.licence_type.type_id, c.issuer_credit_code, serial)
                    generated[number] = c
            clash = (set(generated) & taken_numbers) | _existing(
                self.conn, licences.c.licence_number, list(generated)
            )
            for number, c in generated.items():
                if number not in clash:
                    c.licence_number = number
            pending = [generated[n] for n in clash if n in generated]
            for c in pending:
                c.identifier = None

    def _insert(self, candidates: list[Candidate]) -> None:
        if not candidates:
            return
        rows = []
        events = []
        for c in candidates:
            assert c.identifier is not None and c.licence_number is not None
            row = licence_row(
                licence_id=self.id_factory(),
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
                created_at=self.at,
                source_case=c.source_case,
            )
            rows.append(row)
            reason = f"存量证照导入（第 {c.row_number} 行）"
            if c.note is not None:
                reason += f"；{c.note.message}"
            events.append(
                {
                    "licence_id": row["id"],
                    "from_status": None,
                    "status": c.status,
                    "at": self.at,
                    "reason": reason,
                    "actor": self.actor,
                }
            )
        try:
            self.conn.execute(insert(licences), rows)
        except IntegrityError as exc:
            raise Conflict(
                "导入期间证照库中出现了相同的证照标识或编号（并发写入），请重试", code="conflict"
            ) from exc
        self.conn.execute(insert(licence_status_events), events)


def _import(
    conn: Connection,
    open_rows: Callable[[], Iterable[tuple[int, Any]]],
    *,
    dry_run: bool,
    progress: bool,
    batch_size: int,
    actor: str,
    at: dt.datetime | None,
    id_factory: Callable[[], str],
    root_code: str,
) -> ImportReport:
    at = utc(at or utc_now())
    today = at.astimezone(_SHANGHAI).date()
    explicit = _scan_explicit(open_rows())  # a file that is not a licence file is refused here
    report = ImportReport(dry_run=dry_run)
    bar = tqdm(total=explicit.rows, desc="导入 importing", unit="行", disable=not progress)
    with bar:
        batches = _Batches(
            conn,
            report,
            explicit,
            dry_run=dry_run,
            batch_size=max(batch_size, 1),
            actor=actor,
            at=at,
            id_factory=id_factory,
            root_code=root_code,
        )
        for number, raw in open_rows():
            report.total_rows += 1
            candidate, errors = validate_row(number, raw, today)
            batches.add(candidate, errors)
            bar.update()
        batches.flush()
    return report


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
) -> ImportReport:
    """Validate ``(row_number, raw)`` pairs and insert the good ones in batches (unless ``dry_run``).

    The rows are gone through twice (see ``_Explicit``): an iterator is first made a list. To import a
    file without holding it, use ``import_file``."""
    listed: Sequence[tuple[int, Any]] = rows if isinstance(rows, Sequence) else list(rows)
    return _import(
        conn,
        lambda: iter(listed),
        dry_run=dry_run,
        progress=progress,
        batch_size=batch_size,
        actor=actor,
        at=at,
        id_factory=id_factory,
        root_code=root_code,
    )


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
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ImportReport:
    """Import a CSV/JSON file into the library in the caller's transaction, reading it as a stream
    (twice: see ``_Explicit``); see ``import_rows``. A file that is not a licence file raises
    ``InvalidInput`` before anything is written."""

    def open_rows() -> Iterator[tuple[int, Any]]:
        return read_rows(path, format, limits)

    return _import(
        conn,
        open_rows,
        dry_run=dry_run,
        progress=progress,
        batch_size=batch_size,
        actor=actor,
        at=at,
        id_factory=id_factory,
        root_code=ROOT_CODE,
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
