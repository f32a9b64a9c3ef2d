"""The rows of one engine step (engine/persistence/steps.py): one statement on PostgreSQL, several on
SQLite, the same rows and the same refusals on both."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from engine.errors import Conflict
from engine.persistence.database import make_engine, unit_of_work
from engine.persistence.repositories import DefinitionRepository, audit_row
from engine.persistence.steps import CaseWrite, StepWrite, write_step
from engine.persistence.tables import audit_log, case_clocks, figure_counts, instances, tasks
from engine.service import WorkflowService

NOW = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=UTC)
LATER = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def _definition(db) -> int:
    with unit_of_work(db) as conn:
        return DefinitionRepository(conn).insert(
            key="k",
            version=1,
            name="测试",
            filename="k.bpmn",
            bpmn="<x/>",
            checksum="c" * 64,
            spec_json="{}",
            deployed_by="d",
            deployed_at=NOW,
        )


def _task(task_id: str, **changes: object) -> dict:
    row = {
        "id": task_id,
        "instance_id": "i-1",
        "business_key": "260302-0001-3",
        "element_id": "review",
        "name": "审查（含“引号”）",
        "candidate_groups": ",market,",
        "candidate_users": "",
        "assignee": None,
        "state": "ready",
        "form_key": "food_review",
        "mi_index": None,
        "priority": 1,
        "created_at": NOW,
        "due_at": LATER,
        "deadline_days": 5,
        "deadline_hours": None,
        "warn_ratio": "0.6",
        "clock": "promised",
        "suspends_case_clock": True,
    }
    return {**row, **changes}


def _start(db, definition_id: int) -> None:
    with unit_of_work(db) as conn:
        write_step(
            conn,
            StepWrite(
                "i-1",
                "260302-0001-3",
                "running",
                '{"s": 1}',
                1,
                NOW,
                "申请人",
                definition_id=definition_id,
                new_tasks=[
                    _task("t-1"),
                    _task("t-2", assignee="officer-b", priority=0, suspends_case_clock=False),
                ],
                audit=[
                    audit_row(NOW, "申请人", "start", instance_id="i-1", detail={"材料": ["身份证", 1, None]})
                ],
            ),
        )


def _step(
    conn, version: int, task_id: str | None, actor: str = "officer-a", case: CaseWrite | None = None
) -> None:
    write_step(
        conn,
        StepWrite(
            "i-1",
            "260302-0001-3",
            "running",
            f'{{"s": {version}}}',
            version,
            LATER,
            actor,
            completed_task=task_id,
            new_tasks=[_task(f"t-{version + 1}", created_at=LATER)],
            audit=[audit_row(LATER, actor, "complete", instance_id="i-1", task_id=task_id)],
            case=case,
        ),
    )


def _snapshot(db) -> tuple:
    with db.connect() as conn:
        return (
            conn.execute(select(instances.c.version, instances.c.state)).one(),
            conn.execute(select(tasks.c.id, tasks.c.state).order_by(tasks.c.id)).all(),
            conn.execute(select(audit_log.c.action)).scalars().all(),
        )


def test_a_new_instance_is_written_with_its_tasks_and_audit_exactly(db) -> None:
    _start(db, _definition(db))
    with db.connect() as conn:
        instance = conn.execute(select(instances)).one()
        rows = {r.id: dict(r._mapping) for r in conn.execute(select(tasks))}
        audit = conn.execute(select(audit_log)).one()
    assert (instance.version, instance.status, instance.created_at, instance.updated_at) == (
        1,
        "running",
        NOW,
        NOW,
    )
    assert rows["t-1"] == {**_task("t-1"), "completed_at": None, "completed_by": None, "escalated_at": None}
    assert rows["t-2"]["assignee"] == "officer-b" and rows["t-2"]["suspends_case_clock"] is False
    assert (audit.actor, audit.action, audit.at, audit.detail) == (
        "申请人",
        "start",
        NOW,
        {"材料": ["身份证", 1, None]},
    )


def test_a_step_saves_over_its_version_and_closes_the_actor_s_task(db) -> None:
    _start(db, _definition(db))
    with unit_of_work(db) as conn:
        _step(conn, 2, "t-1")
    with db.connect() as conn:
        closed = conn.execute(
            select(tasks.c.state, tasks.c.completed_at, tasks.c.completed_by).where(tasks.c.id == "t-1")
        ).one()
    assert tuple(closed) == ("completed", LATER, "officer-a")
    assert _snapshot(db) == (
        (2, '{"s": 2}'),
        [("t-1", "completed"), ("t-2", "ready"), ("t-3", "ready")],
        ["start", "complete"],
    )


@pytest.mark.parametrize(
    ("version", "task_id", "actor", "code"),
    [
        (3, "t-1", "officer-a", "version_conflict"),  # someone else saved version 2 first
        (2, "t-2", "officer-a", "claimed_by_other"),  # t-2 is claimed by officer-b
        (2, "t-9", "officer-a", "claimed_by_other"),  # no such ready task
    ],
)
def test_a_refused_step_leaves_nothing_written(db, version: int, task_id: str, actor: str, code: str) -> None:
    _start(db, _definition(db))
    before = _snapshot(db)
    with pytest.raises(Conflict) as refused, unit_of_work(db) as conn:
        _step(conn, version, task_id, actor)
    assert refused.value.code == code
    assert _snapshot(db) == before


def _figures(received: int, online: int) -> list[dict]:
    key = {"grain": "d", "day": date(2026, 3, 2), "department": "market", "items": '["MR-001"]'}
    return [{**key, "event_day": date(2026, 3, 2), "received": received, "online": online}]


def _case_write(*, clock: bool) -> CaseWrite:
    """The case's rows of a step: an audit event, a figures row, and (``clock``) a clock of a case that has
    no row, which the foreign key refuses whenever it is written."""
    clocks = [{"case_id": "260302-0001-3", "task_id": "t-3", "kind": "task", "clock": {}}] if clock else []
    audit = [audit_row(LATER, "officer-a", "case_status", business_key="260302-0001-3")]
    return CaseWrite("260302-0001-3", {}, clocks, [], audit, _figures(1, 1))


def test_a_step_adds_its_figures_to_the_summary_row_it_finds(db) -> None:
    _start(db, _definition(db))
    with unit_of_work(db) as conn:
        _step(conn, 2, "t-1", case=CaseWrite("260302-0001-3", {}, [], [], [], _figures(1, 1)))
    with unit_of_work(db) as conn:
        _step(conn, 3, "t-2", "officer-b", case=CaseWrite("260302-0001-3", {}, [], [], [], _figures(2, 0)))
    counted = select(figure_counts.c.received, figure_counts.c.online, figure_counts.c.finished)
    with db.connect() as conn:
        assert conn.execute(counted).all() == [(3, 1, 0)]  # added to; a counter the rows leave out stays 0


def test_the_case_s_audit_rows_follow_the_engine_s_in_the_step_s_write(db) -> None:
    _start(db, _definition(db))
    with unit_of_work(db) as conn:
        _step(conn, 2, "t-1", case=_case_write(clock=False))
    assert _snapshot(db)[2] == ["start", "complete", "case_status"]


def test_a_step_that_lost_its_race_writes_none_of_the_case_s_rows(db) -> None:
    _start(db, _definition(db))
    before = _snapshot(db)
    with pytest.raises(Conflict) as refused, unit_of_work(db) as conn:
        _step(conn, 3, "t-1", case=_case_write(clock=True))  # version 2 is not there
    assert refused.value.code == "version_conflict"  # not the clock's foreign key: it was never written
    assert _snapshot(db) == before
    with db.connect() as conn:
        assert conn.execute(select(case_clocks.c.id)).all() == []
        assert conn.execute(select(figure_counts.c.received)).all() == []


def _prepared(pg) -> set[str]:
    with pg.connect() as conn:
        return set(conn.execute(text("SELECT name FROM pg_prepared_statements")).scalars())


def test_each_postgresql_session_prepares_the_step_statements_once(pg) -> None:
    pg.dispose()  # a fresh session: nothing prepared yet
    assert _prepared(pg) == set()
    _start(pg, _definition(pg))
    with unit_of_work(pg) as conn:
        _step(conn, 2, "t-1")
    assert _prepared(pg) == {"onewindow_step_insert", "onewindow_step_save"}
    with pytest.raises(Conflict), unit_of_work(pg) as conn:
        _step(conn, 2, "t-2", "officer-b")  # refused and rolled back: the session keeps its statements
    with unit_of_work(pg) as conn:
        _step(conn, 3, "t-2", "officer-b")
    pg.dispose()  # the pool's next session prepares again when it first needs to
    with unit_of_work(pg) as conn:
        _step(conn, 4, None)
    assert _prepared(pg) == {"onewindow_step_save"}
    assert _snapshot(pg)[0] == (4, '{"s": 4}')


def test_columns_left_out_of_a_row_get_their_defaults_on_every_database(db) -> None:
    row = _task("t-1")
    for name in ("candidate_users", "priority", "suspends_case_clock"):
        del row[name]
    definition_id = _definition(db)
    with unit_of_work(db) as conn:
        write_step(
            conn,
            StepWrite(
                "i-1", None, "running", "{}", 1, NOW, "x", definition_id=definition_id, new_tasks=[row]
            ),
        )
    with db.connect() as conn:
        stored = conn.execute(
            select(tasks.c.candidate_users, tasks.c.priority, tasks.c.suspends_case_clock)
        ).one()
    assert tuple(stored) == ("", 0, False)


def test_a_naive_time_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="naive"):
        StepWrite("i-1", None, "running", "{}", 1, NOW.replace(tzinfo=None), "x", definition_id=1)


def test_a_session_that_lost_its_prepared_statements_prepares_again(pg) -> None:
    _start(pg, _definition(pg))
    with pytest.raises(Conflict) as lost, unit_of_work(pg) as conn:
        _step(conn, 2, "t-1")  # prepared in this session now
        conn.exec_driver_sql("DEALLOCATE ALL")  # what a pooler's DISCARD ALL does
        _step(conn, 3, "t-2", "officer-b")
    assert lost.value.code == "prepared_statement_lost"
    # the command is retried like any lost race, on a session that prepares the statement again
    engine = make_engine(pg.url.render_as_string(hide_password=False))  # one session, so it is the same
    try:
        attempts: list[int] = []

        def command(conn) -> None:
            attempts.append(1)
            _step(conn, 2, "t-1")
            if len(attempts) == 1:
                conn.exec_driver_sql("DEALLOCATE ALL")
                _step(conn, 3, "t-2", "officer-b")

        WorkflowService(engine).run(command)  # the first attempt loses its statement, the second prepares
        assert len(attempts) == 2 and _snapshot(pg)[0] == (2, '{"s": 2}')
    finally:
        engine.dispose()
