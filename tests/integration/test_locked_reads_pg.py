"""The reads that lock a case's instance for the step that follows (PostgreSQL).

A step's lifecycle works on the case row and clocks read with the instance lock, in one statement. When
that statement has to wait for the lock, PostgreSQL returns the locked instance row as the command it
waited for committed it, but every other row of the statement as its snapshot saw them, before that
command: the case row and clocks the lifecycle would then work on are the ones the other command just
replaced (two parallel branches of a joint approval completed at once). The readers notice the moved
version and read again under the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select, text, update

from engine.cases.lifecycle import read_case_for_step, read_task_with_case
from engine.persistence.database import unit_of_work
from engine.persistence.tables import audit_log, case_clocks, case_materials, cases, instances, messages
from tests.conftest import FakeClock, services_on
from tests.integration.test_cases import branches, do, ready, shanghai
from tests.integration.test_concurrency_pg import committed_tolerant_case
from tests.integration.test_intake_rules import JOINT, SINGLE, submit


def _by_task(task_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    return lambda conn: read_task_with_case(conn, task_id)[1]


def _by_case(case_id: str) -> Callable[[Connection], dict[str, Any] | None]:
    return lambda conn: read_case_for_step(conn, case_id, "message")


@pytest.mark.parametrize("reader", [_by_task, _by_case], ids=["task_with_case", "case_for_step"])
def test_a_read_that_waited_for_the_instance_lock_sees_the_case_as_it_was_committed(
    pg, clock: FakeClock, reader: Any
) -> None:
    svc = services_on(pg, clock)
    case_id = submit(svc, SINGLE)
    intake = ready(svc, case_id)["intake"]
    read = reader(intake["id"] if reader is _by_task else case_id)
    found: dict[str, Any] = {}

    def wait_and_read() -> None:
        with unit_of_work(pg) as conn:
            found["case"] = read(conn)

    with pg.connect() as other:  # another command holds the instance and changes the case under it
        with other.begin():
            other.execute(
                select(instances.c.id).where(instances.c.id == intake["instance_id"]).with_for_update()
            )
            reader_thread = threading.Thread(target=wait_and_read)
            reader_thread.start()
            _until_a_lock_is_awaited(pg)
            other.execute(update(cases).where(cases.c.id == case_id).values(status_reason="另一命令所改"))
            other.execute(
                update(instances)
                .where(instances.c.id == intake["instance_id"])
                .values(version=instances.c.version + 1)
            )
        reader_thread.join(30)
    assert found["case"] is not None
    assert found["case"]["status_reason"] == "另一命令所改"


def test_the_departments_of_a_joint_approval_completing_at_once_each_count(pg, clock: FakeClock) -> None:
    """The case path of the race above: the three branches of a joint approval completed at the same
    moment, through the case service, each waiting for the others' instance lock. Every completion
    lands with its opinion, the case's clocks stay as the acceptance opened them, and the case goes on
    to the consolidation."""
    clock.set(shanghai(2025, 9, 29, 9))
    svc = services_on(pg, clock)
    for _ in range(3):
        case_id = submit(svc, JOINT)
        do(svc, case_id, "lead_intake", decision="accept", opinion="受理")
        by_group = branches(svc, case_id)
        assert set(by_group) == {"health", "market", "planning"}
        barrier = threading.Barrier(3)

        def complete(branch: tuple[str, str], barrier: threading.Barrier = barrier) -> str:
            group, task_id = branch
            barrier.wait()
            svc.cases.complete_task(
                task_id, {"decision": "approve", "opinion": f"{group} 同意"}, group, groups={group}
            )
            return group

        with ThreadPoolExecutor(3) as pool:
            assert sorted(pool.map(complete, by_group.items())) == ["health", "market", "planning"]
        assert set(ready(svc, case_id)) == {"consolidation"}
        with pg.connect() as conn:
            case_level = conn.execute(
                select(case_clocks.c.kind, case_clocks.c.stopped_at).where(
                    case_clocks.c.case_id == case_id, case_clocks.c.task_id.is_(None)
                )
            ).all()
            opinions = conn.execute(
                select(func.count()).where(
                    audit_log.c.business_key == case_id,
                    audit_log.c.action == "complete",
                    audit_log.c.task_id.in_(list(by_group.values())),
                )
            ).scalar_one()
        assert sorted(case_level) == [("legal", None), ("promised", None)]  # opened once, still running
        assert opinions == 3


def test_a_supply_that_waited_for_a_partial_supply_sees_its_materials(pg, clock: FakeClock) -> None:
    """The supply reads the case's materials with the instance lock, in one statement. A supply that
    leaves materials pending moves no step, so it writes the instance row to be seen: the supply that
    waited for its lock reads again, finds the set complete and tells the flow. Without that write it
    would work on the materials as they were before the first supply, and the flow would never hear."""
    svc = services_on(pg, clock)
    case_id, missing = committed_tolerant_case(svc, clock)
    paused, go = threading.Event(), threading.Event()
    results: dict[str, bool] = {}

    def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # the first supply stops once it has written the materials, its instance lock held, until the
        # second waits for that lock
        if threading.current_thread().name == "first" and statement.startswith("UPDATE case_materials"):
            paused.set()
            go.wait(30)

    def supply(name: str, codes: list[str]) -> threading.Thread:
        def run() -> None:
            results[name] = svc.cases.supply_materials(case_id, codes, "applicant")

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    event.listen(pg, "after_cursor_execute", hold)
    try:
        first = supply("first", missing[:1])
        assert paused.wait(30), "the first supply never wrote the materials"
        second = supply("second", missing[1:])
        _until_a_lock_is_awaited(pg)
        go.set()
        first.join(30)
        second.join(30)
    finally:
        go.set()
        event.remove(pg, "after_cursor_execute", hold)
    assert results == {"first": False, "second": True}
    with pg.connect() as conn:
        states = set(
            conn.execute(select(case_materials.c.state).where(case_materials.c.case_id == case_id)).scalars()
        )
        told = (
            conn.execute(select(messages.c.name).where(messages.c.delivered_at.is_not(None))).scalars().all()
        )
    assert "missing_tolerated" not in states
    assert told == ["materials_supplied"]


def _until_a_lock_is_awaited(pg: Any) -> None:
    with pg.connect() as watch:
        for _ in range(200):  # until a read waits for a lock (or 10 s)
            if watch.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
                return
            threading.Event().wait(0.05)
    pytest.fail("nothing ever waited for the instance lock")
