"""Races on PostgreSQL: one task, many completers; sibling parallel tasks; timers with three workers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict
from engine.persistence.tables import audit_log, instances, tasks, timers
from engine.service import WorkflowService
from tests.conftest import FOOD_FORM, services_on

BPMN = Path(__file__).parent / "bpmn"
pytestmark = pytest.mark.postgres


@pytest.fixture
def service(pg, clock) -> WorkflowService:
    svc = WorkflowService(pg, clock=clock)
    for name in ("three_tasks.bpmn", "parallel.bpmn", "timer_message.bpmn"):
        svc.deploy((BPMN / name).read_bytes(), name, "designer")
    return svc


def _ready(engine, instance_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id, tasks.c.state == "ready")
        ).all()
    return [dict(r._mapping) for r in rows]


def test_many_threads_completing_one_task_exactly_one_wins(pg, service) -> None:
    instance_id = service.start("three_tasks", {}, "a").instance_id
    [intake] = _ready(pg, instance_id)
    barrier = threading.Barrier(12)

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            service.complete_task(intake["id"], {"by": i}, f"officer-{i}")
            return "won"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count("won") == 1
    assert set(results) - {"won"} == {"task_not_ready"}
    with pg.connect() as conn:
        version = conn.execute(select(instances.c.version).where(instances.c.id == instance_id)).scalar_one()
        completes = conn.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.action == "complete")
        ).scalar_one()
    assert version == 2 and completes == 1
    assert [t["element_id"] for t in _ready(pg, instance_id)] == ["review"]


def test_sibling_parallel_tasks_completed_at_once_all_succeed(pg, service) -> None:
    for _ in range(5):
        instance_id = service.start("parallel_three", {}, "a").instance_id
        siblings = _ready(pg, instance_id)
        assert len(siblings) == 3
        barrier = threading.Barrier(3)

        def attempt(task: dict, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            service.complete_task(task["id"], {task["element_id"]: "approve"}, task["element_id"])
            return "ok"

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(attempt, siblings)) == ["ok", "ok", "ok"]
        [consolidate] = _ready(pg, instance_id)
        assert consolidate["element_id"] == "consolidate"
        with pg.connect() as conn:
            version = conn.execute(
                select(instances.c.version).where(instances.c.id == instance_id)
            ).scalar_one()
        assert version == 4  # start + three completes, none lost


def _three_workers_fire(service) -> list[int]:
    """Three workers fire the due timers at the same moment; how many each fired (an error raises here)."""
    barrier = threading.Barrier(3)

    def work(name: str) -> int:
        barrier.wait()
        return service.fire_due_timers(name, limit=1000)

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(work, ["w1", "w2", "w3"]))


def test_three_workers_fire_each_timer_exactly_once(pg, service, clock) -> None:
    ids = [service.start("timer_wait", {}, "a").instance_id for _ in range(30)]
    clock.advance(hours=2)
    assert sum(_three_workers_fire(service)) == 30
    with pg.connect() as conn:
        unfired = conn.execute(select(func.count()).select_from(timers).where(timers.c.fired_at.is_(None)))
        assert unfired.scalar_one() == 0
    for instance_id in ids:
        assert [t["element_id"] for t in _ready(pg, instance_id)] == ["after_timer"]


def test_three_workers_raise_each_clock_card_exactly_once(pg, clock) -> None:
    from engine.cases.clocks import tick_clocks
    from engine.cases.intake import Application
    from engine.persistence.tables import escalations
    from licence.demo import demo_organisations

    svc = services_on(pg, clock)
    org = [o for o in demo_organisations() if o.credit_code.startswith("91")][5]
    form = dict(FOOD_FORM)
    for _ in range(6):
        full = {"MR-001": [m.code for m in svc.catalogue.get("MR-001").materials]}
        application = Application(org.credit_code, org.name, ["MR-001"], form=dict(form), provided=full)
        case_id = svc.cases.submit(application, "a")
        with pg.connect() as conn:
            intake = conn.execute(
                select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.element_id == "intake")
            ).scalar_one()
        svc.cases.complete_task(intake, {"decision": "accept", "opinion": "齐全"}, "window")
    clock.advance(days=60)  # every legal and promised clock and the review task clocks are red
    barrier = threading.Barrier(3)

    def work(name: str) -> int:
        barrier.wait()
        return tick_clocks(pg, clock, svc.calendar, name)

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(work, ["w1", "w2", "w3"]))
    with pg.connect() as conn:
        rows = conn.execute(select(escalations.c.clock_id, escalations.c.level)).all()
    assert len(rows) == len(set(rows)) == sum(counts)
    assert {level for _, level in rows} == {"yellow", "red"}
    assert len({clock_id for clock_id, _ in rows}) >= 12  # legal + promised of six cases
    assert tick_clocks(pg, clock, svc.calendar, "w4") == 0


def test_audit_log_is_append_only_on_postgres(pg, service) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    service.start("three_tasks", {}, "a")
    with pg.connect() as conn:
        before = conn.execute(select(audit_log.c.id, audit_log.c.actor).order_by(audit_log.c.id)).all()
    for statement in (update(audit_log).values(actor="mallory"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"), pg.begin() as conn:
            conn.execute(statement)
    with pg.connect() as conn:
        after = conn.execute(select(audit_log.c.id, audit_log.c.actor).order_by(audit_log.c.id)).all()
    assert after == before and ("a" in {actor for _, actor in after})


def test_three_workers_on_instances_with_several_due_timers(pg, service, clock) -> None:
    service.deploy((BPMN / "timers_many.bpmn").read_bytes(), "timers_many.bpmn", "designer")
    ids = [service.start("three_timers", {}, "a").instance_id for _ in range(20)]
    clock.advance(hours=2)
    assert sum(_three_workers_fire(service)) == 60
    for instance_id in ids:
        assert [t["element_id"] for t in _ready(pg, instance_id)] == ["after"]


def committed_tolerant_case(svc, clock) -> tuple[str, list[str]]:
    """A tolerant acceptance whose commitment letter is signed: its case and the three materials owed."""
    from zoneinfo import ZoneInfo

    from engine.cases.intake import Application
    from licence.demo import demo_organisations

    clock.set(datetime(2026, 2, 11, 10, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))
    org = [o for o in demo_organisations() if o.credit_code.startswith("91")][6]
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            ["MR-001"],
            form=dict(FOOD_FORM),
            tolerant=True,
            provided={"MR-001": ["application", "legal_rep_id"]},
        ),
        "a",
    )
    with svc.engine.connect() as conn:
        commitment = conn.execute(
            select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.element_id == "commitment")
        ).scalar_one()
    missing = ["layout_plan", "safety_rules", "manager_health"]
    svc.cases.complete_task(
        commitment, {"missing_materials": missing, "promised_date": "2026-02-25", "signed": True}, "applicant"
    )
    return case_id, missing


def test_two_supplies_at_once_complete_the_commitment(pg, clock) -> None:
    from engine.persistence.tables import case_materials, messages

    svc = services_on(pg, clock)
    case_id, missing = committed_tolerant_case(svc, clock)
    barrier = threading.Barrier(2)

    def supply(codes: list[str]) -> bool:
        barrier.wait()
        return svc.cases.supply_materials(case_id, codes, "applicant")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(supply, [missing[:1], missing[1:]]))
    assert sorted(results) == [False, True]  # exactly one of them completed the set and told the flow
    with pg.connect() as conn:
        states = set(
            conn.execute(select(case_materials.c.state).where(case_materials.c.case_id == case_id)).scalars()
        )
        sent = conn.execute(select(messages.c.name, messages.c.delivered_at)).all()
    assert "missing_tolerated" not in states
    assert [name for name, delivered in sent if delivered] == ["materials_supplied"]
    clock.advance(days=30)
    assert svc.workflow.fire_due_timers("w1") == 0  # the supplement deadline no longer waits
