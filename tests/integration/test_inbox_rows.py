"""The officer's inbox returns the same rows in the same order whatever stores the assignment (issue 12).

A varied set of cases and tasks is written through the engine's own writers (the step writer, the clock
repository, the task repository, a due-date update as the deadline recount does), then every viewer's
inbox is read for each filter and both sort orders, in one page and in pages of three. The answers were
recorded from the inbox as it stood before the assignment moved out of the ``",a,b,"`` columns (the LIKE
query) into rows an index serves: ``inbox_rows.json`` beside this file. Both databases give that answer.

Re-record (only when the inbox's documented behaviour changes on purpose):
``ONEWINDOW_RECORD_INBOX=1 pytest tests/integration/test_inbox_rows.py -k sqlite``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, text, update

from engine.cases.clocks import ClockRepository
from engine.cases.inbox import InboxFilter, inbox
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import DefinitionRepository, TaskRepository
from engine.persistence.steps import StepWrite, write_step
from engine.persistence.tables import cases, task_candidates, tasks
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import Clock
from processes.catalogue import load_catalogue

GOLDEN = Path(__file__).with_name("inbox_rows.json")
MIGRATION = Path(__file__).parents[2] / "engine/persistence/migrations/versions/0130_task_assignment.py"
RECORD = os.environ.get("ONEWINDOW_RECORD_INBOX") == "1"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 Beijing
NOW = T0 + timedelta(days=6, hours=3)
CAL = WorkingCalendar()

DEPARTMENTS = ["market", "health", "planning", "x_y", "xzy"]
ITEMS = {
    "market": ["MR-001"],
    "health": ["HE-001"],
    "planning": ["PL-001"],
    "x_y": ["MR-002"],
    "xzy": ["HE-002"],
}
STATUSES = ["accepted", "under_review", "supplement_requested", "submitted"]
VIEWERS: list[tuple[str, list[str]]] = [
    ("m1", ["market", "health"]),
    ("w1", ["window"]),
    ("u1", ["planning"]),
    ("p1", ["x_y"]),
    ("a1", ["applicant"]),
    ("z1", []),
    ("m2", ["market"]),
]
FILTERS: dict[str, InboxFilter] = {
    "all": InboxFilter(),
    "item": InboxFilter(item="MR-001"),
    "state": InboxFilter(state="under_review"),
    "red": InboxFilter(clock="red"),
    "yellow": InboxFilter(clock="yellow"),
    "normal": InboxFilter(clock="normal"),
    "mine": InboxFilter(claim="mine"),
    "unclaimed": InboxFilter(claim="unclaimed"),
}


def _definition(conn: Any) -> int:
    return DefinitionRepository(conn).insert(
        key="k",
        version=1,
        name="收件箱",
        filename="k.bpmn",
        bpmn="<x/>",
        checksum="c" * 64,
        spec_json="{}",
        deployed_by="d",
        deployed_at=T0,
    )


def _listed(values: list[str]) -> str:
    return ("," + ",".join(values) + ",") if values else ""


def _task(rng: random.Random, task_id: str, case_id: str, dept: str) -> dict[str, Any]:
    groups, users = rng.choice(
        [
            ([dept], []),
            ([dept], []),
            ([dept, "window"], []),
            (["window"], []),
            (["applicant"], []),
            (["market", "health"], []),
            ([], ["u1"]),
            (["planning"], ["u1", "u2"]),
            (["xzy"], []),
        ]
    )
    due = rng.choice(
        [
            None,
            None,
            T0 + timedelta(days=3),
            T0 + timedelta(days=5),
            T0 + timedelta(hours=rng.randint(1, 300)),
        ]
    )
    return {
        "id": task_id,
        "instance_id": f"i{case_id}",
        "business_key": case_id,
        "element_id": rng.choice(["review", "intake", "decision"]),
        "name": "环节",
        "candidate_groups": _listed(groups),
        "candidate_users": _listed(users),
        "assignee": rng.choice([None, None, None, "m1", "u1"]),
        "state": "ready",
        "form_key": None,
        "mi_index": None,
        "priority": rng.choice([0, 0, 1]),
        "created_at": T0 + timedelta(minutes=rng.choice([0, 0, 30, 90, 600, 2000])),
        "due_at": due,
        "deadline_days": None,
        "deadline_hours": None,
        "warn_ratio": None,
        "clock": rng.choice([None, "legal", "promised", "promised", "task", "task"]),
        "suspends_case_clock": False,
        "escalated_at": None,
    }


def build(db: Engine) -> None:
    """36 cases, their instances and 2-4 tasks each, clocks of every kind and state, later changes."""
    rng = random.Random(12)
    with unit_of_work(db) as conn:
        definition = _definition(conn)
        clocks = ClockRepository(conn, CAL)
        all_tasks: list[dict[str, Any]] = []
        for n in range(36):
            case_id = f"c{n:02d}"
            dept = DEPARTMENTS[n % len(DEPARTMENTS)]
            items = ITEMS[dept] + (["HE-001"] if n % 7 == 0 and dept != "health" else [])
            conn.execute(
                insert(cases).values(
                    id=case_id,
                    flow="single_window",
                    items=items,
                    department=dept,
                    applicant_kind="person",
                    applicant_id=f"1101{n:014d}",
                    applicant_name=f"申请人{n}",
                    channel="online",
                    status=STATUSES[n % len(STATUSES)],
                    submitted_at=T0 - timedelta(days=n % 5),
                )
            )
            started = T0 - timedelta(days=rng.randint(0, 12))
            case_clocks: list[tuple[int, Clock]] = []
            if n % 6 != 5:  # some cases were never accepted: no case clocks
                for kind, days in (("legal", rng.randint(5, 20)), ("promised", rng.randint(3, 10))):
                    clock = Clock(kind=kind, started_at=started, limit_days=days)
                    if rng.random() < 0.2:
                        clock.pause(started + timedelta(days=1), "等待申请人补正")
                    case_clocks.append((clocks.open(case_id, clock), clock))
            rows = [_task(rng, f"c{n:02d}t{k}", case_id, dept) for k in range(rng.randint(2, 4))]
            write_step(
                conn,
                StepWrite(
                    f"i{case_id}", case_id, "running", "{}", 1, T0, "system", definition, new_tasks=rows
                ),
            )
            all_tasks += rows
            for row in rows:  # task clocks open after the step, as the case lifecycle opens them
                if row["clock"] == "task" and rng.random() < 0.8:
                    clock = Clock(
                        kind="task", started_at=row["created_at"], limit_hours=rng.choice([8, 48, 200])
                    )
                    clock_id = clocks.open(case_id, clock, task_id=row["id"])
                    if rng.random() < 0.15:
                        clock.stop(row["created_at"] + timedelta(hours=1))
                        clocks.save(clock_id, clock)
            for clock_id, clock in case_clocks:  # later: a pause ends, another starts, a clock stops
                roll = rng.random()
                if clock.is_paused(NOW) and roll < 0.5:
                    clock.resume(started + timedelta(days=3))
                    clocks.save(clock_id, clock)
                elif not clock.is_paused(NOW) and roll < 0.15:
                    clock.pause(started + timedelta(days=2), "特别程序")
                    clocks.save(clock_id, clock)
                elif not clock.is_paused(NOW) and roll < 0.25:
                    clock.stop(started + timedelta(days=2))
                    clocks.save(clock_id, clock)
        repo = TaskRepository(conn)
        closing = [t["id"] for t in all_tasks if rng.random() < 0.2]
        repo.close(closing[: len(closing) // 2], "completed", NOW - timedelta(hours=1), "m1")
        repo.close(closing[len(closing) // 2 :], "cancelled", NOW - timedelta(hours=1), None)
        for t in all_tasks:
            if t["id"] in closing:
                continue
            if t["assignee"] is None and rng.random() < 0.15:
                repo.claim(t["id"], rng.choice(["m1", "w1", "u1"]))
            elif rng.random() < 0.1:  # the deadline recount moves a task's own due date
                conn.execute(update(tasks).where(tasks.c.id == t["id"]).values(due_at=T0 + timedelta(days=4)))
        # a later step of one case: its officer completes a task and the flow opens the next
        done = next(t for t in all_tasks if t["id"] not in closing and t["assignee"] == "m1")
        follow = _task(rng, f"{done['business_key']}t9", done["business_key"], "market")
        follow.update(candidate_groups=",market,", assignee=None, created_at=NOW - timedelta(hours=2))
        instance = done["instance_id"]
        write_step(
            conn,
            StepWrite(
                instance,
                done["business_key"],
                "running",
                "{}",
                2,
                NOW - timedelta(hours=2),
                "m1",
                completed_task=done["id"],
                new_tasks=[follow],
            ),
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def answers(db: Engine) -> dict[str, Any]:
    catalogue = load_catalogue()
    out: dict[str, Any] = {}
    with db.connect() as conn:
        for actor, groups in VIEWERS:
            for name, flt in FILTERS.items():
                for sort in ("priority", "due"):
                    page = partial(
                        inbox,
                        conn,
                        actor=actor,
                        groups=groups,
                        now=NOW,
                        catalogue=catalogue,
                        filters=flt,
                        sort=sort,
                    )
                    whole = page(limit=100)
                    assert whole["next_cursor"] is None
                    paged: list[str] = []
                    cursor: str | None = None
                    while True:
                        part = page(limit=3, cursor=cursor)
                        paged += [i["id"] for i in part["items"]]
                        assert part["counts"] == whole["counts"]
                        cursor = part["next_cursor"]
                        if cursor is None:
                            break
                    ids = [i["id"] for i in whole["items"]]
                    assert paged == ids, (actor, name, sort)
                    answer: dict[str, Any] = {"ids": ids, "counts": whole["counts"]}
                    if name == "all":
                        answer["items"] = _jsonable(whole["items"])
                    out[f"{actor}|{name}|{sort}"] = answer
    return out


def test_the_inbox_gives_the_recorded_rows_in_the_recorded_order(db: Engine) -> None:
    build(db)
    got = answers(db)
    if RECORD and db.dialect.name == "sqlite":
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=0, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sum(len(a["ids"]) for a in got.values()) > 300  # the data set is not trivially empty
    assert {k: v["ids"] for k, v in got.items()} == {k: v["ids"] for k, v in expected.items()}
    assert {k: v["counts"] for k, v in got.items()} == {k: v["counts"] for k, v in expected.items()}
    assert got == expected


def test_the_migration_gives_existing_tasks_the_rows_the_writers_keep(db: Engine) -> None:
    """Migration 0130's backfill, run over the same data, makes the rows the step writer and the
    triggers made (ready tasks: all their keys; finished ones: who the candidates were)."""
    build(db)
    spec = importlib.util.spec_from_file_location("migration_0130", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    ready = task_candidates.c.state == "ready"
    columns = [c for c in task_candidates.c]
    with unit_of_work(db) as conn:
        kept_ready = conn.execute(select(*columns).where(ready).order_by(*task_candidates.primary_key)).all()
        who = [
            task_candidates.c.task_id,
            task_candidates.c.kind,
            task_candidates.c.name,
            task_candidates.c.state,
        ]
        kept_all = conn.execute(select(*who).order_by(*task_candidates.primary_key)).all()
        conn.execute(delete(task_candidates))
        for statement in migration.backfill(db.dialect.name):
            conn.execute(text(statement))
        assert (
            conn.execute(select(*columns).where(ready).order_by(*task_candidates.primary_key)).all()
            == kept_ready
        )
        assert conn.execute(select(*who).order_by(*task_candidates.primary_key)).all() == kept_all
    assert len(kept_ready) > 50
