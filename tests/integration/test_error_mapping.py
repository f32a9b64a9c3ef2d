"""Every error is typed: whatever SpiffWorkflow, the database or the JSON encoder raises while a command runs
leaves it as a ``OneWindowError`` with a code and the element/field, the instance unchanged (rolled back),
and the live workflow the failed step mutated is dropped, so the next command rebuilds from stored state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from engine.errors import Conflict, Internal, InvalidInput, OneWindowError, Unavailable
from engine.persistence.tables import audit_log, definitions, instances, messages, tasks, timers
from engine.service import WorkflowService
from engine.step import StepContext
from tests.unit.bpmn.models import document, flow, script_task, user_task

BPMN = Path(__file__).parent / "bpmn"


def after_intake(inner: str, first: str, last: str, process_id: str = "p") -> bytes:
    """start -> intake (user task) -> ``inner`` (first..last) -> after (user task) -> end."""
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "intake")
        + user_task("intake")
        + flow("intake", first)
        + inner
        + flow(last, "after")
        + user_task("after")
        + flow("after", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    return document(body, process_id)


def script_after_intake(script: str) -> bytes:
    return after_intake(script_task("calc", script), "calc", "calc")


def snapshot(db, instance_id: str) -> dict[str, Any]:
    """What is stored of an instance: its row, its ready tasks, its audit trail."""
    with db.connect() as conn:
        row = conn.execute(
            select(instances.c.version, instances.c.status, instances.c.state).where(
                instances.c.id == instance_id
            )
        ).one()
        ready = conn.execute(
            select(tasks.c.element_id).where(tasks.c.instance_id == instance_id, tasks.c.state == "ready")
        ).scalars()
        audit = conn.execute(
            select(audit_log.c.action).where(audit_log.c.instance_id == instance_id)
        ).scalars()
        return {"row": tuple(row), "ready": sorted(ready), "audit": sorted(audit)}


@pytest.fixture
def svc(db, clock) -> WorkflowService:
    return WorkflowService(db, clock=clock)


def started(svc: WorkflowService, model: bytes, data: dict[str, Any] | None = None) -> tuple[str, str]:
    svc.deploy(model, "m.bpmn", "designer")
    result = svc.start("p", data or {}, "applicant")
    assert result.instance_id in svc.live  # the committed start keeps its live workflow
    return result.instance_id, result.opened_tasks[0]


@pytest.mark.parametrize(
    ("script", "bad", "good", "error_type"),
    [
        ("result = 1 + label", {"label": "x"}, {"label": 2}, "TypeError"),
        ("result = 10 / divisor", {"divisor": 0}, {"divisor": 5}, "ZeroDivisionError"),
        (
            "result = prices[item]",
            {"prices": {"a": 1}, "item": "b"},
            {"prices": {"a": 1}, "item": "a"},
            "KeyError",
        ),
    ],
)
def test_a_script_that_raises_at_run_time_is_typed_and_changes_nothing(
    db, svc, script: str, bad: dict, good: dict, error_type: str
) -> None:
    instance_id, intake = started(svc, script_after_intake("note = 1\n" + script))
    before = snapshot(db, instance_id)
    with pytest.raises(InvalidInput) as failed:
        svc.complete_task(intake, bad, "officer")
    error = failed.value
    assert error.code == "expression_failed"
    assert error.detail["element_id"] == "calc" and error.detail["line"] == 2
    assert error.detail["error_type"] == error_type and "calc" in error.message
    assert snapshot(db, instance_id) == before  # rolled back: version, state, tasks, audit
    assert instance_id not in svc.live  # the mutated live workflow was dropped, not kept
    done = svc.complete_task(intake, good, "officer")  # rebuilt from the stored state, intake still ready
    assert done.status == "running" and [t["element_id"] for t in _ready(db)] == ["after"]


def test_a_gateway_with_no_true_condition_names_the_gateway(db, svc) -> None:
    inner = (
        '<bpmn:exclusiveGateway id="gw"/>'
        + flow("gw", "yes", "amount > 100", "f_yes")
        + flow("gw", "no", "amount < 10", "f_no")
        + user_task("yes")
        + user_task("no")
        + flow("yes", "join")
        + flow("no", "join")
        + '<bpmn:exclusiveGateway id="join"/>'
    )
    instance_id, intake = started(svc, after_intake(inner, "gw", "join"))
    before = snapshot(db, instance_id)
    with pytest.raises(InvalidInput) as failed:
        svc.complete_task(intake, {"amount": 50}, "officer")
    assert failed.value.code == "no_condition_satisfied" and failed.value.detail["element_id"] == "gw"
    assert snapshot(db, instance_id) == before and instance_id not in svc.live
    svc.complete_task(intake, {"amount": 500}, "officer")
    assert [t["element_id"] for t in _ready(db)] == ["yes"]


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (TypeError("'str' object cannot be interpreted as an integer"), "engine_error"),
        (KeyError("missing"), "engine_error"),
        (RecursionError("maximum recursion depth exceeded"), "too_deeply_nested"),
    ],
)
def test_a_bare_exception_from_inside_the_library_names_the_element(
    db, svc, monkeypatch: pytest.MonkeyPatch, raised: Exception, code: str
) -> None:
    """SpiffWorkflow raises some errors unwrapped from deep inside a step (a loop cardinality that is not a
    number: ``range("two")``); injected here where the library runs a script task, not in our code."""
    instance_id, intake = started(svc, script_after_intake("note = 1"))
    before = snapshot(db, instance_id)

    def broken(self: object, task: object) -> None:
        raise raised

    monkeypatch.setattr("SpiffWorkflow.bpmn.specs.mixins.script_task.ScriptTask._execute", broken)
    with pytest.raises(InvalidInput) as failed:
        svc.complete_task(intake, {}, "officer")
    assert failed.value.code == code and failed.value.detail["element_id"] == "calc"
    assert failed.value.__cause__ is raised
    assert snapshot(db, instance_id) == before and instance_id not in svc.live
    monkeypatch.undo()
    svc.complete_task(intake, {}, "officer")
    assert [t["element_id"] for t in _ready(db)] == ["after"]


def test_a_value_the_json_encoder_refuses_is_typed(db, svc) -> None:
    # the sandbox allows the integer; the JSON encoder refuses its 5000 digits when the state is written
    instance_id, intake = started(svc, script_after_intake("big = 10 ** digits"))
    before = snapshot(db, instance_id)
    with pytest.raises(OneWindowError) as failed:
        svc.complete_task(intake, {"digits": 5000}, "officer")
    assert not isinstance(failed.value, Internal) and failed.value.http_status == 422
    assert snapshot(db, instance_id) == before and instance_id not in svc.live


def _ready(db) -> list[dict]:
    with db.connect() as conn:
        query = select(tasks).where(tasks.c.state == "ready").order_by(tasks.c.element_id)
        return [dict(r._mapping) for r in conn.execute(query)]


def _duplicate_definition(ctx: StepContext) -> None:
    row = dict(ctx.conn.execute(select(definitions).limit(1)).one()._mapping)
    row.pop("id")
    ctx.conn.execute(insert(definitions).values(row))  # same (key, version): uq_definitions_key_version


def _audit_without_actor(ctx: StepContext) -> None:
    ctx.conn.execute(insert(audit_log).values(at=ctx.now, actor=None, action="x"))


def _message_of_no_instance(ctx: StepContext) -> None:
    ctx.conn.execute(
        insert(messages).values(instance_id="no-such-instance", name="m", payload={}, received_at=ctx.now)
    )


@pytest.mark.parametrize(
    ("observer", "kind", "code", "where"),
    [
        (_duplicate_definition, Conflict, "duplicate", "definitions"),
        (_audit_without_actor, InvalidInput, "required", "actor"),
        (_message_of_no_instance, Conflict, "reference_violation", None),
    ],
)
def test_a_violated_database_constraint_is_typed_and_not_retried(
    db, svc, observer, kind: type[OneWindowError], code: str, where: str | None
) -> None:
    instance_id, intake = started(svc, script_after_intake("note = 1"))
    before = snapshot(db, instance_id)
    calls: list[str] = []

    def once(ctx: StepContext) -> None:
        calls.append(ctx.action)
        observer(ctx)

    svc.observers.append(once)
    with pytest.raises(kind) as failed:
        svc.complete_task(intake, {}, "officer")
    assert failed.value.code == code and calls == ["complete"]  # not retried like a lost race
    if where is not None:
        assert where in str(failed.value.detail)
    assert snapshot(db, instance_id) == before and instance_id not in svc.live
    svc.observers.remove(once)
    svc.complete_task(intake, {}, "officer")
    assert [t["element_id"] for t in _ready(db)] == ["after"]


@pytest.mark.postgres
def test_postgres_data_and_operational_errors_are_typed(pg, clock) -> None:
    svc = WorkflowService(pg, clock=clock)
    instance_id, intake = started(svc, script_after_intake("note = 1"))
    before = snapshot(pg, instance_id)

    def too_long(ctx: StepContext) -> None:  # raw SQL: past the column guard, to PostgreSQL itself
        ctx.conn.execute(
            text("UPDATE instances SET business_key = :key WHERE id = :id"),
            {"key": "x" * 100, "id": ctx.instance_id},
        )

    svc.observers.append(too_long)
    with pytest.raises(InvalidInput) as failed:
        svc.complete_task(intake, {}, "officer")
    assert failed.value.code == "value_too_long" and failed.value.detail["max"] == 64
    svc.observers.remove(too_long)

    def times_out(ctx: StepContext) -> None:
        ctx.conn.execute(text("SET LOCAL statement_timeout = 1"))
        ctx.conn.execute(text("SELECT pg_sleep(0.2)"))

    svc.observers.append(times_out)
    with pytest.raises(Unavailable) as unavailable:
        svc.complete_task(intake, {}, "officer")
    assert unavailable.value.code == "database_unavailable" and unavailable.value.detail["reason"] == "57014"
    svc.observers.remove(times_out)
    assert snapshot(pg, instance_id) == before and instance_id not in svc.live
    svc.complete_task(intake, {}, "officer")


def test_a_bug_is_internal_with_its_cause_chained(db, svc) -> None:
    instance_id, intake = started(svc, script_after_intake("note = 1"))
    before = snapshot(db, instance_id)

    def buggy(ctx: StepContext) -> None:
        raise AssertionError("an invariant of ours broke")

    svc.observers.append(buggy)
    with pytest.raises(Internal) as failed:
        svc.complete_task(intake, {}, "officer")
    assert failed.value.code == "internal" and failed.value.http_status == 500
    assert isinstance(failed.value.__cause__, AssertionError)
    assert snapshot(db, instance_id) == before and instance_id not in svc.live


def test_a_timer_step_that_breaks_a_constraint_is_set_aside_and_the_others_fire(db, svc, clock) -> None:
    svc.deploy((BPMN / "timer_message.bpmn").read_bytes(), "timer_message.bpmn", "designer")
    broken = svc.start("timer_wait", {}, "a").instance_id
    healthy = svc.start("timer_wait", {}, "a").instance_id

    def duplicate_for_broken(ctx: StepContext) -> None:
        if ctx.action == "timer" and ctx.instance_id == broken:
            _duplicate_definition(ctx)

    svc.observers.append(duplicate_for_broken)
    clock.advance(hours=2)
    assert svc.fire_due_timers("w1") == 1  # the healthy one; the IntegrityError did not stop the round
    with db.connect() as conn:
        failed = conn.execute(select(timers).where(timers.c.instance_id == broken)).one()._mapping
        fired = conn.execute(select(timers.c.fired_at).where(timers.c.instance_id == healthy)).scalar_one()
    assert failed["fired_at"] is None and failed["attempts"] == 1 and "[duplicate]" in failed["last_error"]
    assert fired is not None
