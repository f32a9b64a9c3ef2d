"""The values a page cursor carries back, checked before they reach a query.

A cursor is opaque to the client but comes back from it: anything the client can encode may be in it.
Every value a list decodes from its cursor passes one of these checks, so a forged cursor is the list's
``bad_cursor`` error (``bad``, the list's own) and never a value the database or ``datetime`` cannot take:

* :func:`cursor_instant`: an ISO instant with a time zone whose UTC a ``datetime`` can hold (no
  ``0001-01-01T00:00:00+14:00``), returned in UTC;
* :func:`cursor_int`: an ``int`` (not a ``bool``) within the 64-bit range of an SQL ``BIGINT``;
* :func:`cursor_text`: a ``str`` of at most ``max_length`` characters that a database text can store
  (no NUL, no lone surrogate).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from engine.errors import InvalidInput

__all__ = ["cursor_instant", "cursor_int", "cursor_text"]

Bad = Callable[[], InvalidInput]
_INT64 = 2**63


def cursor_instant(value: object, bad: Bad) -> datetime:
    if not isinstance(value, str):
        raise bad()
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise bad()
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad() from None


def cursor_int(value: object, bad: Bad) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
        raise bad()
    return value


def cursor_text(value: object, bad: Bad, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise bad()
    if any(ch == "\x00" or "\ud800" <= ch <= "\udfff" for ch in value):
        raise bad()
    return value
