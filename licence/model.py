"""The e-licence record, in the spirit of GB/T 36901-36905.

An e-licence is identified by a dotted identifier built from a root code, the licence type code, the
issuer's unified social credit code, a serial number (per type and issuer), a version and a check character
(ISO/IEC 7064 MOD 37,36 over the identifier's alphanumeric characters). Its integrity hash is a SHA-256 over
the canonical JSON of what is printed and who it belongs to, so that a changed row is detected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import Problem
from licence.checkdigits import HolderIdKind, mod37_36_check_char

__all__ = [
    "ROOT_CODE",
    "LicenceStatus",
    "STATUSES",
    "FINAL_STATUSES",
    "LicenceIdentifier",
    "StatusEvent",
    "LicenceRecord",
    "VerifyResult",
    "integrity_hash",
    "format_licence_number",
]

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
ROOT_CODE = "1.2.156"  # the ISO country arc for China; deployments may extend it with their own arcs

LicenceStatus = Literal["valid", "suspended", "revoked", "cancelled", "expired"]
STATUSES: tuple[LicenceStatus, ...] = ("valid", "suspended", "revoked", "cancelled", "expired")
FINAL_STATUSES: frozenset[str] = frozenset({"revoked", "cancelled"})

STATUS_LABELS: dict[str, str] = {
    "valid": "有效",
    "suspended": "暂扣",
    "revoked": "吊销",
    "cancelled": "注销",
    "expired": "过期",
}


@dataclass(frozen=True)
class LicenceIdentifier:
    """``{root}.{type_id}.{issuer_credit_code}.{serial:08d}.{version:02d}.{check}``."""

    root: str
    type_id: str
    issuer_credit_code: str
    serial: int
    version: int
    check: str

    @staticmethod
    def _payload(root: str, type_id: str, issuer: str, serial: int, version: int) -> str:
        body = f"{root}{type_id}{issuer}{serial:08d}{version:02d}"
        return _NOT_ALNUM.sub("", body.upper())

    @classmethod
    def build(
        cls, type_id: str, issuer_credit_code: str, serial: int, version: int = 1, root: str = ROOT_CODE
    ) -> LicenceIdentifier:
        """A new identifier with its MOD 37,36 check character computed."""
        if serial < 1 or version < 1:
            raise ValueError("证照标识的顺序号和版本号须为正整数")
        check = mod37_36_check_char(cls._payload(root, type_id, issuer_credit_code, serial, version))
        return cls(root, type_id, issuer_credit_code, serial, version, check)

    @classmethod
    def parse(cls, text: str) -> LicenceIdentifier:
        """Split an identifier string into its parts (the check character is NOT verified here)."""
        parts = text.strip().split(".")
        if len(parts) < 6:
            raise ValueError("证照标识应由根代码、类型代码、颁发机构代码、顺序号、版本号和校验位组成")
        *root_parts, type_id, issuer, serial, version, check = parts
        if not (serial.isdigit() and version.isdigit()) or len(check) != 1 or not all(root_parts):
            raise ValueError("证照标识的顺序号、版本号应为数字，校验位为 1 个字符")
        return cls(".".join(root_parts), type_id, issuer, int(serial), int(version), check)

    def expected_check(self) -> str:
        return mod37_36_check_char(
            self._payload(self.root, self.type_id, self.issuer_credit_code, self.serial, self.version)
        )

    def is_valid(self) -> bool:
        try:
            return self.expected_check() == self.check
        except ValueError:
            return False

    def __str__(self) -> str:
        parts = (
            self.root,
            self.type_id,
            self.issuer_credit_code,
            f"{self.serial:08d}",
            f"{self.version:02d}",
        )
        return ".".join(parts) + f".{self.check}"


def format_licence_number(type_id: str, issuer_credit_code: str, serial: int, version: int = 1) -> str:
    """The human-readable licence number of a licence issued by the library (证照编号)."""
    number = f"{type_id}{issuer_credit_code[2:8]}{issuer_credit_code[8:16]}{serial:08d}"
    return number if version == 1 else f"{number}-{version}"


@dataclass(frozen=True)
class StatusEvent:
    """One entry of a licence's status history."""

    status: LicenceStatus
    at: dt.datetime
    reason: str
    actor: str
    from_status: LicenceStatus | None = None
    caused_by: str | None = None  # the licence whose change this follows (a renewal suspended with it)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def of(cls, problems: list[Problem]) -> VerifyResult:
        return cls(ok=not problems, problems=list(problems))


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def integrity_hash(
    *,
    identifier: str,
    licence_number: str,
    type_code: str,
    holder_id: str,
    holder_name: str,
    holder_id_kind: str,
    issuer_credit_code: str,
    issuer_name: str,
    issue_date: dt.date,
    valid_from: dt.date,
    valid_until: dt.date | None,
    face: dict[str, Any],
) -> str:
    """SHA-256 (hex) over the canonical JSON (sorted keys, no spaces, UTF-8) of the licence's content."""
    document = {
        "identifier": identifier,
        "licence_number": licence_number,
        "type_code": type_code,
        "holder": {"id": holder_id, "name": holder_name, "kind": holder_id_kind},
        "issuer": {"credit_code": issuer_credit_code, "name": issuer_name},
        "dates": {"issue": _iso(issue_date), "from": _iso(valid_from), "until": _iso(valid_until)},
        "face": face,
    }
    canonical = json.dumps(
        document, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LicenceRecord:
    """One electronic licence as stored in the library."""

    id: str
    identifier: LicenceIdentifier
    licence_number: str
    type_code: str
    holder_id: str
    holder_name: str
    holder_id_kind: HolderIdKind
    issuer_credit_code: str
    issuer_name: str
    issue_date: dt.date
    valid_from: dt.date
    valid_until: dt.date | None
    status: LicenceStatus
    face: dict[str, Any]
    integrity_hash: str
    history: tuple[StatusEvent, ...] = ()
    renews_id: str | None = None
    replaces_id: str | None = None
    source_case: str | None = None
    created_at: dt.datetime | None = None

    def compute_hash(self) -> str:
        return integrity_hash(
            identifier=str(self.identifier),
            licence_number=self.licence_number,
            type_code=self.type_code,
            holder_id=self.holder_id,
            holder_name=self.holder_name,
            holder_id_kind=self.holder_id_kind,
            issuer_credit_code=self.issuer_credit_code,
            issuer_name=self.issuer_name,
            issue_date=self.issue_date,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            face=self.face,
        )

    @property
    def type_name(self) -> str:
        """The licence type's Chinese name (e.g. 营业执照), shown beside every field it fills."""
        from licence.types import get_type

        return get_type(self.type_code).name

    def effective_status(self, today: dt.date) -> LicenceStatus:
        """The stored status, except that a ``valid`` licence past its last valid day reads ``expired``."""
        if self.status == "valid" and self.valid_until is not None and today > self.valid_until:
            return "expired"
        return self.status

    def is_usable(self, today: dt.date) -> bool:
        """True when the licence may be relied on today (valid and within its validity period)."""
        return self.effective_status(today) == "valid" and today >= self.valid_from

    def verify(self) -> VerifyResult:
        """Check the identifier's MOD 37,36 check character and the integrity hash."""
        problems: list[Problem] = []
        if not self.identifier.is_valid():
            problems.append(
                Problem("identifier", "bad_check_digit", "证照标识校验位错误（ISO/IEC 7064 MOD 37,36）")
            )
        try:
            actual = self.compute_hash()
        except (TypeError, ValueError):
            actual = None
        if actual != self.integrity_hash:
            problems.append(
                Problem("integrity_hash", "integrity_mismatch", "证照数据与完整性摘要不符，可能已被篡改")
            )
        return VerifyResult.of(problems)
