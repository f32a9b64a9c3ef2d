"""Races on PostgreSQL: one task, many completers; sibling parallel tasks; timers with three workers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict
from engine.persistence.tables import audit_log, instances, tasks, timers
from engine.service import WorkflowService

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

        def attempt(task: dict) -> str:
            barrier.wait()
            service.complete_task(task["id"], {task["element_id"]: "approve"}, task["element_id"])
            return "ok"

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(attempt, siblings)) == ["ok", "ok", "ok"]
        [consolidate] = _ready(pg, instance_id)
        assert consolidate["element_id"] == "consolidate"
        with pg.connect() as conn:
            version = conn.execute(select(instances.c.version).where(instances.c.id == instance_id)).scalar_one()
        assert version == 4  # start + three completes, none lost


def test_three_workers_fire_each_timer_exactly_once(pg, service, clock) -> None:
    ids = [service.start("timer_wait", {}, "a").instance_id for _ in range(30)]
    clock.advance(hours=2)
    barrier = threading.Barrier(3)

    def work(name: str) -> int:
        barrier.wait()
        return service.fire_due_timers(name, limit=1000)

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(work, ["w1", "w2", "w3"]))
    assert sum(counts) == 30
    with pg.connect() as conn:
        unfired = conn.execute(select(func.count()).select_from(timers).where(timers.c.fired_at.is_(None)))
        assert unfired.scalar_one() == 0
    for instance_id in ids:
        assert [t["element_id"] for t in _ready(pg, instance_id)] == ["after_timer"]
