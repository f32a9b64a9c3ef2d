"""A case's material rows, read at most once a command.

The locking reads of a step (:mod:`engine.cases.lifecycle`) bring the case's materials with its row on
PostgreSQL and :func:`keep` them for the transaction; the rules that need them (the commitment letter,
the acceptance rule, the supply, a licence held until supplied) take them from :func:`materials_of`
instead of reading again. Every write of a case's materials in a command goes through :func:`mark`,
which keeps what is kept as stored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select, update

from engine.persistence.tables import case_materials

__all__ = ["PENDING_MATERIALS", "Material", "keep", "mark", "materials_of"]

PENDING_MATERIALS = ("missing_tolerated", "missing", "rejected")
"""Material states that are still owed by the applicant."""

_KEPT = "onewindow.case_materials"
"""``Connection.info`` key of the materials read in the current transaction: (transaction, case id,
rows)."""


class Material(NamedTuple):
    """A material row of a case, in the case's order (its id)."""

    code: str
    name: str
    key: bool
    state: str


def keep(conn: Connection, case_id: str, rows: Iterable[Any]) -> None:
    """Keep the materials of ``case_id`` as read on ``conn`` in this transaction: (code, name, key,
    state) in id order."""
    conn.info[_KEPT] = (conn.get_transaction(), case_id, [Material(*r) for r in rows])


def materials_of(conn: Connection, case_id: str) -> list[Material]:
    """The case's materials as they stand in this transaction: those kept, or read (and kept)."""
    kept = conn.info.get(_KEPT)
    if kept is not None and kept[0] is conn.get_transaction() and kept[1] == case_id:
        return list(kept[2])
    rows = conn.execute(
        select(case_materials.c.code, case_materials.c.name, case_materials.c.key, case_materials.c.state)
        .where(case_materials.c.case_id == case_id)
        .order_by(case_materials.c.id)
    ).all()
    keep(conn, case_id, rows)
    return list(conn.info[_KEPT][2])


def mark(
    conn: Connection,
    case_id: str,
    codes: Collection[str],
    state: str,
    now: datetime,
    from_states: Collection[str] | None = None,
) -> None:
    """Set the materials ``codes`` of the case (those in ``from_states``; None: in any state) to
    ``state``, and what is kept of them with it."""
    where = [case_materials.c.case_id == case_id, case_materials.c.code.in_(list(codes))]
    if from_states is not None:
        where.append(case_materials.c.state.in_(list(from_states)))
    conn.execute(update(case_materials).where(*where).values(state=state, updated_at=now))
    kept = conn.info.get(_KEPT)
    if kept is not None and kept[0] is conn.get_transaction() and kept[1] == case_id:
        moved = [m._replace(state=state) if _moves(m, codes, from_states) else m for m in kept[2]]
        conn.info[_KEPT] = (kept[0], case_id, moved)


def _moves(m: Material, codes: Collection[str], from_states: Collection[str] | None) -> bool:
    return m.code in codes and (from_states is None or m.state in from_states)
