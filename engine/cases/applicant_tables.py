"""Tables of the applicant's side of a case (issue 10): idempotent online submissions, uploaded material
files, withdrawal requests and the failed public tracking attempts.

The case's public tracking code itself is a column of ``cases`` (``check_code``,
:mod:`engine.cases.check_codes`). Migration ``0120_applicant`` creates all of them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, text

from engine.persistence.tables import BigId, UTCDateTime, metadata

__all__ = ["case_files", "case_withdrawals", "submission_keys", "tracking_failures"]


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, UTCDateTime(), nullable=nullable)


submission_keys = Table(
    "submission_keys",
    metadata,
    # (account, Idempotency-Key) -> the case its first submission made; written in the submit's transaction
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of the canonical JSON of the request
    Column("case_id", String(20), ForeignKey("cases.id")),  # set in the same transaction as the insert
    _ts("created_at", nullable=False),
)

case_files = Table(
    "case_files",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(20), ForeignKey("cases.id"), nullable=False, index=True),
    Column("material_code", String(60), nullable=False),  # a material of the case's items
    Column("original_name", String(200), nullable=False),  # sanitised; shown, never used as a path
    Column("stored_name", String(64), nullable=False, unique=True),  # <uuid hex>.<ext> under upload_dir
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(60), nullable=False),  # sniffed from the bytes, never the client's
    Column("sha256", String(64), nullable=False),
    Column("uploaded_by", String(200), nullable=False),  # the username (actor of the audit rows)
    _ts("uploaded_at", nullable=False),
)

case_withdrawals = Table(
    "case_withdrawals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(20), ForeignKey("cases.id"), nullable=False, index=True),
    Column("state", String(20), nullable=False),  # pending | granted | refused
    Column("reason", Text, nullable=False),
    Column("prior_status", String(30), nullable=False),  # the case status when the applicant asked
    Column("requested_by", String(200), nullable=False),
    _ts("requested_at", nullable=False),
    Column("decided_by", String(200)),
    _ts("decided_at"),
    Column("decision_note", Text),
    # at most one request waiting per case
    Index(
        "uq_case_withdrawals_pending",
        "case_id",
        unique=True,
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
)

tracking_failures = Table(
    "tracking_failures",
    metadata,
    Column("key", String(200), primary_key=True),  # "address:<ip>" or "case:<case number>"
    Column("count", Integer, nullable=False),
    _ts("window_started_at", nullable=False),
)
