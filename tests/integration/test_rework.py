"""A single-window case returned for rework hundreds of times, through the case service and the workflow
service on a real database: it still moves and reaches its decision, its stored state stays the size of one
round, the audit trail is the one the full tree gives, and every ready task has its row.

SpiffWorkflow keeps every finished task; the adapter prunes the finished history (``engine.workflow.pruning``)
whenever it stores or restores a state. Without pruning such a case failed with ``RecursionError`` at about
163 returns (see issue 12).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import engine.workflow.runtime as runtime_module
from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.persistence.tables import audit_log, instances, tasks
from engine.service import WorkflowService
from engine.workflow import Runtime
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def shanghai(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:
    clock.set(shanghai(2025, 9, 29, 9))
    return services_on(db, clock)


@pytest.fixture
def unpruned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SpiffWorkflow's full tree: the adapter's pruning switched off (for comparisons on small cases)."""
    monkeypatch.setattr(runtime_module, "prune", lambda workflow: 0)
    yield


def ready_rows(svc: Services, business_key: str) -> list[tuple[str, str]]:
    """The ready rows of the task projection for a case: (element id, task id), oldest first."""
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.element_id, tasks.c.id)
            .where(tasks.c.business_key == business_key, tasks.c.state == "ready")
            .order_by(tasks.c.created_at, tasks.c.element_id)
        ).all()
    return [(r.element_id, r.id) for r in rows]


def ready(svc: Services, business_key: str) -> dict[str, str]:
    return {element: task_id for element, task_id in reversed(ready_rows(svc, business_key))}


def state_of(svc: Services, business_key: str) -> tuple[str, str, int, int]:
    """The instance of a case: its id, stored state, deployed definition and version."""
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(instances.c.id, instances.c.state, instances.c.definition_id, instances.c.version).where(
                instances.c.business_key == business_key
            )
        ).one()
    return row.id, row.state, row.definition_id, row.version


def submit(svc: Services) -> str:
    """A food business licence (MR-001) with every material, accepted at the window."""
    with svc.engine.connect() as conn:
        library = LicenceLibrary(conn)
        org = next(
            o
            for o in demo_organisations()
            if {"business_licence"} <= {lic.type_code for lic in library.by_holder(o.credit_code)}
            and "food_business_licence" not in {lic.type_code for lic in library.by_holder(o.credit_code)}
        )
    provided = {"MR-001": [m.code for m in svc.catalogue.get("MR-001").materials]}
    application = Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=provided)
    case_id = svc.cases.submit(application, "window-1")
    do(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    return case_id


def do(svc: Services, case_id: str, element: str, actor: str = "officer", **data: Any) -> None:
    svc.cases.complete_task(ready(svc, case_id)[element], data, actor)


def rework(svc: Services, case_id: str, round_: int) -> None:
    do(svc, case_id, "review", result="pass", opinion=f"第{round_}次审查", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="rework", opinion="请补充审查意见")
    assert set(ready(svc, case_id)) == {"review"}, f"after return {round_}"


def decide(svc: Services, case_id: str) -> None:
    do(svc, case_id, "review", result="pass", opinion="终审", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="同意")
    today = svc.clock().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    do(svc, case_id, "delivery", delivery_method="window", delivered_on=today)
    assert svc.cases.track(case_id)["case"]["status"] == "delivered"


def trail(svc: Services, case_id: str) -> list[tuple[Any, ...]]:
    """The audit trail of a case, without what differs between two runs (ids, case numbers)."""
    instance_id = state_of(svc, case_id)[0]
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.element_id, audit_log.c.detail)
            .where((audit_log.c.business_key == case_id) | (audit_log.c.instance_id == instance_id))
            .order_by(audit_log.c.id)
        ).all()

    def plain(value: Any) -> str:
        return UUID.sub("<id>", str(value)).replace(case_id, "<case>")

    return [(r.actor, r.action, r.element_id, plain(r.detail)) for r in rows]


def test_a_case_returned_200_times_reaches_its_decision_and_its_state_stays_one_round(
    svc: Services, clock: FakeClock
) -> None:
    case_id = submit(svc)
    sizes: dict[int, int] = {}
    for round_ in range(1, 201):
        clock.advance(minutes=5)
        rework(svc, case_id, round_)
        if round_ in (1, 200):
            sizes[round_] = len(state_of(svc, case_id)[1])
    assert sizes[200] <= 2 * sizes[1], sizes
    # the state in the database restores to the workflow this process holds live
    instance_id, state, definition_id, version = state_of(svc, case_id)
    with svc.engine.connect() as conn:
        definition = svc.workflow.definition(conn, definition_id)
    restored = Runtime.restore(definition, state, clock())
    live = svc.workflow.live.take(instance_id, version)
    assert live is not None
    assert restored.dump() == live.runtime.dump() == state
    assert [t.task_id for t in restored.ready_tasks()] == list(live.ready) == [ready(svc, case_id)["review"]]
    assert restored.data == live.runtime.data and restored.data["rework_count"] == 200
    decide(svc, case_id)  # on the restored path: the live copy was taken away above


def test_the_audit_trail_with_pruning_is_the_one_the_full_tree_gives(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> list[tuple[Any, ...]]:
        clock.set(shanghai(2025, 10, 9, 9))
        case_id = submit(svc)
        for round_ in range(1, 7):
            clock.advance(days=4)  # overdue from the fourth return: the review timer fires (in the worker,
            # then as soon as each new review opens: that deadline's escalation opened already)
            svc.workflow.fire_due_timers("worker")
            for element, task_id in ready_rows(svc, case_id):
                if element == "escalation" and round_ % 2:  # some escalations stay open a round or two
                    svc.cases.complete_task(task_id, {"opinion": "请尽快办结"}, "supervisor")
            do(svc, case_id, "review", result="pass", opinion=f"第{round_}次", needs_special_procedure=False)
            do(svc, case_id, "decision", decision="rework", opinion="请补充审查意见")
        decide(svc, case_id)
        return trail(svc, case_id)

    pruned = run()
    with monkeypatch.context() as patch:
        patch.setattr(runtime_module, "prune", lambda workflow: 0)
        full = run()
    steps = [(row[1], row[2]) for row in pruned]
    assert ("timer", None) in steps and steps.count(("complete", "escalation")) == 1
    assert pruned == full


def test_the_workflow_service_takes_a_case_through_1000_returns(db, clock: FakeClock) -> None:
    from processes.catalogue import PROCESS_DIR, load_catalogue

    service = WorkflowService(db, clock=clock)
    service.deploy((PROCESS_DIR / "single_window.bpmn").read_bytes(), "single_window.bpmn", "designer")
    data = load_catalogue().get("HC-001").start_data()
    instance_id = service.start("single_window", data, "window", business_key="R-1000").instance_id
    services = [service]

    def complete(element: str, **values: Any) -> None:
        services[-1].complete_task(ready_rows(element), values, "officer")

    def ready_rows(element: str) -> str:
        with db.connect() as conn:
            rows = conn.execute(
                select(tasks.c.element_id, tasks.c.id).where(
                    tasks.c.instance_id == instance_id, tasks.c.state == "ready"
                )
            ).all()
        assert [r.element_id for r in rows] == [element], rows  # the next ready task always has its row
        return str(rows[0].id)

    def size() -> int:
        with db.connect() as conn:
            return len(conn.execute(select(instances.c.state)).scalar_one())

    complete("intake", decision="accept", opinion="")
    sizes = {}
    for round_ in range(1, 1001):
        clock.advance(seconds=30)
        complete("review", result="pass", opinion=str(round_), needs_special_procedure=False)
        complete("decision", decision="rework", opinion="")
        if round_ in (1, 1000):
            sizes[round_] = size()
    assert sizes[1000] <= 2 * sizes[1], sizes
    services.append(WorkflowService(db, clock=clock))  # the restored path: no live workflow in this one
    complete("review", result="pass", opinion="终审", needs_special_procedure=False)
    complete("decision", decision="approve", opinion="同意")
    complete("delivery", delivery_method="window", delivered_on="2025-10-31")
    with db.connect() as conn:
        row = conn.execute(select(instances.c.status, instances.c.state)).one()
    assert row.status == "completed"
    assert '"rework_count":1000' in row.state.replace(" ", "")


def test_without_pruning_the_tree_grows_with_every_return(svc: Services, clock: FakeClock, unpruned) -> None:
    case_id = submit(svc)
    sizes = []
    for round_ in range(1, 6):
        clock.advance(minutes=5)
        rework(svc, case_id, round_)
        sizes.append(len(state_of(svc, case_id)[1]))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] * 1.5  # what pruning prevents (issue 12)
