"""SQLAlchemy Core tables of the licence library on their own ``metadata`` (engine migrations include it).

Portable between SQLite and PostgreSQL: strings with explicit lengths, ``JSON`` for the face data,
timezone-aware ``DateTime`` (SQLite returns naive values; the library reads them as UTC).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["metadata", "licences", "licence_status_events"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

licences = Table(
    "licences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("identifier", String(128), nullable=False, unique=True),
    Column("root_code", String(64), nullable=False),
    Column("type_code", String(64), nullable=False),
    Column("type_id", String(8), nullable=False),
    Column("serial", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("check_char", String(1), nullable=False),
    Column("licence_number", String(64), nullable=False, unique=True),
    Column("holder_id", String(18), nullable=False, index=True),
    Column("holder_id_kind", String(16), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("issuer_credit_code", String(18), nullable=False),
    Column("issuer_name", String(200), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=True),
    Column("status", String(16), nullable=False),
    Column("face", JSON, nullable=False),
    Column("integrity_hash", String(64), nullable=False),
    Column("renews_id", String(36), ForeignKey("licences.id"), nullable=True),
    Column("replaces_id", String(36), ForeignKey("licences.id"), nullable=True),
    Column("source_case", String(64), nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_licences_type_issuer_serial", "type_code", "issuer_credit_code", "serial"),
    Index("ix_licences_status_valid_until", "status", "valid_until"),
)

licence_status_events = Table(
    "licence_status_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("licence_id", String(36), ForeignKey("licences.id"), nullable=False, index=True),
    Column("from_status", String(16), nullable=True),
    Column("status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    # the licence whose status change this one follows (a renewal suspended because the licence it
    # continues was): its suspension is that licence's and ends with it, never on its own account
    Column("caused_by", String(36), ForeignKey("licences.id"), nullable=True),
)
