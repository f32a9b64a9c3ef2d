"""Check codes (查询码): the secret that, with the case number, lets anybody track a case without signing in.

A case number is not a secret (it is printed on receipts and read out over the phone, and it is a date and
a daily sequence); the check code is. Six characters of an alphabet without look-alikes (no ``0 O 1 I L``)
give 31**6 (about 8.9e8) codes, drawn with :mod:`secrets` at submission and stored on the case
(``cases.check_code``): the applicant reads it on the submission receipt and in "my cases". Guessing is
bounded by the failed-attempt limits of :mod:`engine.cases.public_tracking`.
"""

from __future__ import annotations

import hmac
import secrets

__all__ = ["ALPHABET", "LENGTH", "matches", "new_check_code", "normalise"]

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6


def new_check_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(given: str) -> str:
    """What a person typed, as stored: spaces and dashes dropped, upper case."""
    return "".join(ch for ch in given if ch not in " -\t").upper()


def matches(given: object, stored: str | None) -> bool:
    """Whether ``given`` is the stored code (constant time; a case without a code matches nothing)."""
    if not isinstance(given, str) or not stored:
        return False
    return hmac.compare_digest(normalise(given).encode(), stored.encode())
