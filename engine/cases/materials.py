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

from engine.cases.status import CLOSED
from engine.persistence.tables import case_materials

__all__ = [
    "PENDING_MATERIALS",
    "Material",
    "closed_to_supplies",
    "keep",
    "mark",
    "materials_of",
    "takes_no_supplies",
]

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
    if _kept(conn, case_id) is None:
        m = case_materials.c
        query = select(m.code, m.name, m.key, m.state).where(m.case_id == case_id).order_by(m.id)
        keep(conn, case_id, conn.execute(query))
    return list(_kept(conn, case_id) or ())


def mark(
    conn: Connection,
    case_id: str,
    codes: Collection[str],
    state: str,
    now: datetime,
    from_states: Collection[str] | None = None,
) -> None:
    """Set the materials ``codes`` of the case (those in ``from_states``; None: in any state) to
    ``state``, and what is kept of them with it. Outside a step (which writes the instance row anyway)
    the caller also writes the case's instance row (``InstanceRepository.touch``): a step's locking read
    that waited for this transaction reads again only when the instance row changed
    (``engine.cases.lifecycle._LockingRead``), and would otherwise go on with the materials as they were."""
    listed, states = set(codes), None if from_states is None else set(from_states)
    where = [case_materials.c.case_id == case_id, case_materials.c.code.in_(sorted(listed))]
    if states is not None:
        where.append(case_materials.c.state.in_(sorted(states)))
    conn.execute(update(case_materials).where(*where).values(state=state, updated_at=now))
    kept = _kept(conn, case_id)
    if kept is not None:
        moved = [
            m._replace(state=state) if m.code in listed and (states is None or m.state in states) else m
            for m in kept
        ]
        keep(conn, case_id, moved)


def _kept(conn: Connection, case_id: str) -> list[Material] | None:
    """The materials kept for ``case_id`` in this transaction (None: none)."""
    kept = conn.info.get(_KEPT)
    if kept is not None and kept[0] is conn.get_transaction() and kept[1] == case_id:
        return kept[2]
    return None


def closed_to_supplies(conn: Connection, case_id: str, status: str) -> bool:
    """Whether a case in ``status`` takes no more materials (no supply, no upload): a closed case, except
    a tolerant acceptance whose licence was released and delivered before its tolerated materials came
    (送达, status ``delivered``): under the commitment it awaits them still, until they are supplied or its
    supplement deadline runs out (then it is terminated and its licence revoked)."""
    if status not in CLOSED:
        return False
    return status != "delivered" or takes_no_supplies(status, [m.state for m in materials_of(conn, case_id)])


def takes_no_supplies(status: str, states: Iterable[str]) -> bool:
    """:func:`closed_to_supplies` of a case in ``status`` whose materials are in ``states``."""
    if status not in CLOSED:
        return False
    return status != "delivered" or "missing_tolerated" not in set(states)
