"""A case's materials read once a command (engine.cases.materials), on both databases: what is kept is
what is stored, for one case and one transaction only."""

from __future__ import annotations

from sqlalchemy import Engine, event, select

from engine.cases.materials import PENDING_MATERIALS, mark, materials_of
from engine.persistence.tables import case_materials
from tests.conftest import FakeClock, services_on
from tests.integration.test_intake_rules import SINGLE, submit


def test_materials_are_read_once_a_transaction_and_marked_as_stored(db: Engine, clock: FakeClock) -> None:
    svc = services_on(db, clock)
    first = submit(svc, SINGLE, without=("layout_plan", "safety_rules"))
    other = submit(svc, SINGLE)
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "case_materials.name" in statement:
            reads.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        with db.begin() as conn:
            before = materials_of(conn, first)
            assert {m.code for m in before if m.state in PENDING_MATERIALS} == {"layout_plan", "safety_rules"}
            assert materials_of(conn, first) == before and len(reads) == 1  # kept
            mark(conn, first, iter(["layout_plan"]), "supplied", clock.now, ("missing",))  # any iterable
            mark(conn, first, ["safety_rules"], "rejected", clock.now, ("provided",))  # not in that state
            kept = {m.code: m.state for m in materials_of(conn, first)}
            m = case_materials.c
            stored = dict(conn.execute(select(m.code, m.state).where(m.case_id == first)).all())
            assert kept == stored and kept["layout_plan"] == "supplied" and kept["safety_rules"] == "missing"
            assert len(reads) == 1
            materials_of(conn, other)  # another case: read
            assert len(reads) == 2
        with db.begin() as conn:
            materials_of(conn, other)  # another transaction: read again
            assert len(reads) == 3
    finally:
        event.remove(db, "before_cursor_execute", count)
