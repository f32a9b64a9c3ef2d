"""Material files an applicant uploads to their case (申请材料电子件).

Nothing the client says about a file is trusted:

* **Type by content.** The type is sniffed from the bytes (magic numbers), never taken from the client's
  content type or file name: PDF (``%PDF-``), JPEG (``FF D8 FF``), PNG (its 8-byte signature) and OFD (the
  national standard for electronic documents, GB/T 33190: a ZIP package with ``OFD.xml`` at its root).
  Anything else is ``422 unsupported_file_type``; a PNG named ``x.pdf`` is stored and served as a PNG.
* **Safe names.** The file is stored under a generated name (``<uuid>.<extension of the sniffed type>``)
  directly in ``Settings.upload_dir``; the original name is kept only as text (its last path component,
  control characters removed, NFC, at most 200 characters) and never used as a path.
* **Streamed.** The content is copied in chunks to a temporary file beside its final place, counting the
  bytes and hashing (SHA-256) as it goes, and refused as soon as it passes the limit (the API's body limit
  refuses a larger upload before this runs); it is renamed into place only when complete, and removed
  again if the database refuses the row.
* **Scope.** Only the case's applicant uploads, only for a material of the case's items, only while the
  case is open; outside the applicant's scope the case does not exist (:func:`case_not_found`).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import uuid
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, func, insert, select

from engine.cases.access import case_not_found, same_holder
from engine.cases.applicant_tables import case_files
from engine.cases.materials import closed_to_supplies
from engine.cases.status import case_is
from engine.errors import Conflict, InvalidInput, NotFound, OneWindowError
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import case_materials, cases

__all__ = [
    "ALLOWED_TYPES",
    "CHUNK",
    "MAX_FILES_PER_CASE",
    "CaseFiles",
    "FileTooLarge",
    "safe_original_name",
    "sniff",
]

ALLOWED_TYPES: dict[str, tuple[str, str]] = {
    "application/pdf": (".pdf", "PDF"),
    "image/jpeg": (".jpg", "JPEG"),
    "image/png": (".png", "PNG"),
    "application/ofd": (".ofd", "OFD"),
}
"""Content type -> (stored extension, name shown to people)."""
CHUNK = 64 * 1024
MAX_FILES_PER_CASE = 100
MAX_NAME = 200
_PNG = b"\x89PNG\r\n\x1a\n"


class FileTooLarge(OneWindowError):
    """A file past the upload limit (the API refuses such a body before reading it: 413
    ``body_too_large``)."""

    code = "file_too_large"
    http_status = 413


def sniff(head: bytes, path: Path) -> str | None:
    """The content type of the file at ``path`` from its bytes (``head``: its first bytes), or None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(_PNG):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        try:  # the central directory only: nothing is extracted
            with zipfile.ZipFile(path) as package:
                names = {n.lower() for n in package.namelist()}
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        return "application/ofd" if "ofd.xml" in names else None
    return None


def safe_original_name(name: object) -> str:
    """The client's file name as text to show: the last path component (``/`` or ``\\``), Unicode NFC,
    no control or format characters, at most :data:`MAX_NAME` characters (the extension kept)."""
    text = unicodedata.normalize("NFC", name if isinstance(name, str) else "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().strip(".").strip()
    if not text:
        return "未命名文件"
    if len(text) > MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: MAX_NAME - len(ext) - 1] + "." + ext
        else:
            text = text[:MAX_NAME]
    return text


class CaseFiles:
    """Uploads and the list of a case's material files."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], upload_dir: Path, max_bytes: int
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.upload_dir = Path(upload_dir)
        self.max_bytes = max_bytes

    def store(
        self,
        case_id: str,
        material_code: str,
        original_name: object,
        source: BinaryIO,
        *,
        holder_id: str | None,
        actor: str,
    ) -> dict[str, Any]:
        """Store one file for ``material_code`` of the holder's case ``case_id``; returns its row."""
        with self.engine.connect() as conn:
            self._check(conn, case_id, material_code, holder_id)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        partial = self.upload_dir / f"{token}.part"
        final: Path | None = None
        try:
            size, digest, head = self._copy(source, partial)
            if size == 0:
                raise InvalidInput("上传的文件是空的", code="empty_file", field="file")
            content_type = sniff(head, partial)
            if content_type is None:
                allowed = "、".join(name for _, name in ALLOWED_TYPES.values())
                raise InvalidInput(
                    f"文件类型不支持：只接受 {allowed}（按文件内容判断，与文件名无关）",
                    code="unsupported_file_type",
                    field="file",
                    allowed=sorted(ALLOWED_TYPES),
                )
            final = self.upload_dir / (token + ALLOWED_TYPES[content_type][0])
            os.replace(partial, final)
            row = {
                "case_id": case_id,
                "material_code": material_code,
                "original_name": safe_original_name(original_name),
                "stored_name": final.name,
                "size": size,
                "content_type": content_type,
                "sha256": digest,
                "uploaded_by": actor,
                "uploaded_at": self.clock(),
            }
            with unit_of_work(self.engine) as conn:
                self._check(conn, case_id, material_code, holder_id, lock=True)  # still open, still theirs
                file_id = conn.execute(
                    insert(case_files).values(**row).returning(case_files.c.id)
                ).scalar_one()
                AuditRepository(conn).record(
                    row["uploaded_at"],
                    actor,
                    "material_file_uploaded",
                    business_key=case_id,
                    detail={
                        "file_id": int(file_id),
                        "material": material_code,
                        "content_type": content_type,
                        "size": size,
                        "sha256": digest,
                    },
                )
            return {"id": int(file_id), **row}
        except BaseException:
            partial.unlink(missing_ok=True)
            if final is not None:
                final.unlink(missing_ok=True)
            raise

    def _copy(self, source: BinaryIO, target: Path) -> tuple[int, str, bytes]:
        """Copy ``source`` to ``target`` in chunks; returns the size, the SHA-256 and the first bytes."""
        sha = hashlib.sha256()
        size = 0
        head = b""
        with target.open("xb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FileTooLarge(
                        f"文件过大：最多 {self.max_bytes} 字节", field="file", limit=self.max_bytes
                    )
                if len(head) < 16:
                    head += chunk[: 16 - len(head)]
                sha.update(chunk)
                out.write(chunk)
        return size, sha.hexdigest(), head

    @staticmethod
    def _check(
        conn: Connection, case_id: str, material_code: str, holder_id: str | None, *, lock: bool = False
    ) -> None:
        query = select(cases.c.applicant_id, cases.c.status).where(cases.c.id == case_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None or not same_holder(holder_id, row.applicant_id):
            raise case_not_found(case_id)
        if closed_to_supplies(conn, case_id, row.status):
            raise Conflict(
                f"{case_is(row.status)}，不能再上传材料",
                code="case_closed",
                case=case_id,
            )
        known = conn.execute(
            select(case_materials.c.id).where(
                case_materials.c.case_id == case_id, case_materials.c.code == material_code
            )
        ).first()
        if known is None:
            raise InvalidInput(
                "该材料不是本办件所申请事项需要的材料",
                code="unknown_material",
                field="material",
                material=material_code[:60],
                case=case_id,
            )
        count = conn.execute(
            select(func.count()).select_from(case_files).where(case_files.c.case_id == case_id)
        ).scalar_one()
        if count >= MAX_FILES_PER_CASE:
            raise Conflict(
                f"每个办件最多上传 {MAX_FILES_PER_CASE} 个文件", code="too_many_files", case=case_id
            )

    def stored(self, conn: Connection, case_id: str, file_id: int) -> tuple[dict[str, Any], Path]:
        """The row of one of the case's files and where its content lies (``NotFound`` ``file_not_found``
        for another case's file, as for none). The caller has checked the reader may see the case."""
        row = conn.execute(
            select(case_files).where(case_files.c.id == file_id, case_files.c.case_id == case_id)
        ).first()
        path = self.upload_dir / row.stored_name if row is not None else None
        if path is None or not path.is_file():
            raise NotFound("文件不存在", code="file_not_found", case=case_id, file_id=file_id)
        return dict(row._mapping), path

    def list(self, conn: Connection, case_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(case_files).where(case_files.c.case_id == case_id).order_by(case_files.c.id)
        )
        return [dict(r._mapping) for r in rows]
