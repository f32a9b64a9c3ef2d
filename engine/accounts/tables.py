"""Tables of accounts, departments and sign-in (sessions, API tokens, failed-login counters).

Secrets are never stored: a session or API token is kept as the HMAC of its value under the server's
secret key, a password as its argon2 hash.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table

from engine.persistence.tables import BigId, UTCDateTime, metadata


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, UTCDateTime(), nullable=nullable)


departments = Table(
    "departments",
    metadata,
    Column("code", String(40), primary_key=True),  # the candidate group the models name
    Column("name", String(200), nullable=False),
    _ts("created_at", nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # applicant | officer | designer | supervisor | administrator
    Column("password_hash", String(200), nullable=False),
    Column("holder_id", String(18), index=True),  # an applicant's resident ID or credit code
    Column("intake", Boolean, nullable=False, default=False),  # an officer who works at the counter (window)
    Column("active", Boolean, nullable=False, default=True),
    _ts("created_at", nullable=False),
)

account_departments = Table(
    "account_departments",
    metadata,
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("department_code", String(40), ForeignKey("departments.code"), primary_key=True),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # HMAC-SHA256 of the cookie value
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("address", String(64)),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    _ts("revoked_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),  # shown in lists so that a person recognises a token
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    _ts("revoked_at"),
    _ts("last_used_at"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),  # "account:<username>" or "address:<ip>"
    Column("count", Integer, nullable=False),
    _ts("window_started_at", nullable=False),
)
