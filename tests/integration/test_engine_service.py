"""The engine's commands on a real database (SQLite and PostgreSQL): persistence, timers, messages, errors."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.assignment import may_work
from engine.errors import Conflict, InvalidInput, NotFound, UnsafeExpression
from engine.persistence.tables import audit_log, definitions, instances, messages, tasks, timers
from engine.service import WorkflowService
from tests.unit.bpmn.models import gateway_after_task_model

BPMN = Path(__file__).parent / "bpmn"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def ready(db, group: str | None = None) -> list[dict]:
    with db.connect() as conn:
        query = select(tasks).where(tasks.c.state == "ready")
        if group:
            query = query.where(tasks.c.candidate_groups.like(f"%,{group},%"))
        return [dict(r._mapping) for r in conn.execute(query.order_by(tasks.c.element_id))]


def count(db, table) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def service(db, clock) -> WorkflowService:
    svc = WorkflowService(db, clock=clock)
    for name in ("three_tasks.bpmn", "parallel.bpmn", "timer_message.bpmn"):
        svc.deploy((BPMN / name).read_bytes(), name, "designer")
    return svc


def test_deploy_is_versioned_and_idempotent(db, clock) -> None:
    svc = WorkflowService(db, clock=clock)
    xml = (BPMN / "three_tasks.bpmn").read_bytes()
    first = svc.deploy(xml, "three_tasks.bpmn", "designer")
    again = svc.deploy(xml, "three_tasks.bpmn", "designer")
    changed = svc.deploy(
        xml.replace("三步审批".encode(), "三步审批（修订）".encode()), "three_tasks.bpmn", "d2"
    )
    assert [(d.key, d.version, d.created) for d in first] == [("three_tasks", 1, True)]
    assert [(d.version, d.created) for d in again] == [(1, False)]
    assert [(d.version, d.created) for d in changed] == [(2, True)]
    with db.connect() as conn:
        rows = conn.execute(select(definitions.c.version, definitions.c.deployed_by)).all()
    assert sorted(rows) == [(1, "designer"), (2, "d2")]


def test_a_document_read_by_an_earlier_release_is_read_again_when_deployed_again(db, clock) -> None:
    """The same text deployed again is no new version, unless the stored spec came from an earlier
    release's reading of it (a bpmn:task that waited, JUEL with Python's semantics): then a new version
    runs as this release reads it, while an instance started on the old one still moves on it."""
    svc = WorkflowService(db, clock=clock)
    xml = (BPMN / "three_tasks.bpmn").read_bytes()
    [first] = svc.deploy(xml, "three_tasks.bpmn", "designer")
    with db.begin() as conn:  # as an earlier release stored it: no reading mark
        stored = json.loads(
            conn.execute(
                select(definitions.c.spec_json).where(definitions.c.id == first.definition_id)
            ).scalar_one()
        )
        stored.pop("reading")
        conn.execute(
            definitions.update()
            .where(definitions.c.id == first.definition_id)
            .values(spec_json=json.dumps(stored, ensure_ascii=False))
        )
    old = WorkflowService(db, clock=clock).start("three_tasks", {}, "applicant")
    [again] = WorkflowService(db, clock=clock).deploy(xml, "three_tasks.bpmn", "designer")
    assert (again.version, again.created) == (2, True)
    [same] = WorkflowService(db, clock=clock).deploy(xml, "three_tasks.bpmn", "designer")
    assert (same.version, same.created) == (2, False)
    fresh = WorkflowService(db, clock=clock)
    fresh.complete_task(old.opened_tasks[0], {}, "officer")  # the old version still runs its instance
    with db.connect() as conn:
        assert (
            conn.execute(
                select(definitions.c.version)
                .join(instances, instances.c.definition_id == definitions.c.id)
                .where(instances.c.id == old.instance_id)
            ).scalar_one()
            == 1
        )


def test_unsafe_model_is_refused_and_nothing_is_stored(db, clock, tmp_path) -> None:
    target = tmp_path / "pwned"
    xml = (BPMN / "parallel.bpmn").read_text()
    payload = f"__import__('os').system('touch {target}')"
    evil = xml.replace(
        '<bpmn:sequenceFlow id="f10" sourceRef="consolidate" targetRef="end" />',
        '<bpmn:sequenceFlow id="f10" sourceRef="consolidate" targetRef="end">'
        f"<bpmn:conditionExpression>{payload}</bpmn:conditionExpression></bpmn:sequenceFlow>",
    )
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(UnsafeExpression):
        svc.deploy(evil.encode(), "evil.bpmn", "mallory")
    assert not target.exists()
    assert count(db, definitions) == 0
    assert count(db, audit_log) == 0


def test_single_window_case_round_trips_through_the_database(db, service, clock) -> None:
    instance_id = service.start(
        "three_tasks", {"applicant": "张三"}, "applicant", business_key="B-1"
    ).instance_id
    [intake] = ready(db, "window")
    assert intake["element_id"] == "intake" and intake["form_key"] == "task.intake"
    assert intake["business_key"] == "B-1" and intake["due_at"] is not None
    service.complete_task(intake["id"], {"decision": "accept"}, "officer-w")
    [review] = ready(db, "market")
    assert review["element_id"] == "review"
    # the clock moved past the holiday; the review deadline was computed on working days
    service.complete_task(review["id"], {"result": "pass"}, "officer-m")
    [deliver] = ready(db, "window")
    service.complete_task(deliver["id"], {}, "officer-w")
    with db.connect() as conn:
        inst = conn.execute(select(instances).where(instances.c.id == instance_id)).one()._mapping
        done = conn.execute(select(tasks.c.element_id, tasks.c.state, tasks.c.completed_by)).all()
        actions = [r[0] for r in conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))]
    assert inst["status"] == "completed" and inst["version"] == 4
    state = json.loads(inst["state"])
    assert "spec" not in state and "subprocess_specs" not in state  # spec is stored once per version
    assert state["data"].get("applicant") == "张三" or "张三" in inst["state"]
    assert sorted(done) == [
        ("deliver", "completed", "officer-w"),
        ("intake", "completed", "officer-w"),
        ("review", "completed", "officer-m"),
    ]
    assert actions[-5:] == ["start", "complete", "complete", "complete", "completed"]


def test_completing_a_finished_task_is_a_typed_conflict(db, service) -> None:
    service.start("three_tasks", {}, "a")
    [intake] = ready(db)
    service.complete_task(intake["id"], {}, "a")
    with pytest.raises(Conflict) as err:
        service.complete_task(intake["id"], {}, "b")
    assert err.value.code == "task_not_ready"
    with pytest.raises(InvalidInput):
        service.complete_task(ready(db)[0]["id"], ["not", "a", "dict"], "b")  # type: ignore[arg-type]


def test_timer_fires_once_when_the_injected_clock_passes_it(db, service, clock) -> None:
    service.start("timer_wait", {}, "a")
    assert ready(db) == []
    assert count(db, timers) == 1
    assert service.fire_due_timers("w1") == 0
    clock.advance(minutes=59)
    assert service.fire_due_timers("w1") == 0
    clock.advance(minutes=2)
    assert service.fire_due_timers("w1") == 1
    assert service.fire_due_timers("w2") == 0
    assert [t["element_id"] for t in ready(db)] == ["after_timer"]
    with db.connect() as conn:
        assert conn.execute(select(timers.c.fired_by)).scalars().all() == ["w1"]


def test_message_sent_early_is_buffered_then_delivered(db, service) -> None:
    instance_id = service.start("message_wait", {}, "a").instance_id
    assert service.correlate_message("fee_paid", {"amount": 100}, "bank", instance_id=instance_id) is False
    assert count(db, messages) == 1
    [prepare] = ready(db)
    service.complete_task(prepare["id"], {}, "officer")
    assert [t["element_id"] for t in ready(db)] == ["issue"]
    with db.connect() as conn:
        assert conn.execute(select(messages.c.delivered_at)).scalar_one() is not None


def test_an_instance_keeps_a_bounded_number_of_undelivered_messages_and_still_takes_a_waited_one(
    db, service
) -> None:
    """The buffer of messages sent before their catch event waits was unbounded (each up to a megabyte of
    payload, all read whole when the event is reached)."""
    from engine.service import MAX_BUFFERED_MESSAGES

    instance_id = service.start("message_wait", {}, "a").instance_id
    for n in range(MAX_BUFFERED_MESSAGES):
        assert service.correlate_message("fee_paid", {"n": n}, "bank", instance_id=instance_id) is False
    with pytest.raises(Conflict) as err:
        service.correlate_message("fee_paid", {"n": "one more"}, "bank", instance_id=instance_id)
    assert err.value.code == "message_buffer_full" and err.value.detail["max"] == MAX_BUFFERED_MESSAGES
    assert count(db, messages) == MAX_BUFFERED_MESSAGES  # nothing of the refused one kept
    [prepare] = ready(db)
    service.complete_task(prepare["id"], {}, "officer")  # the catch event takes the first one kept
    assert [t["element_id"] for t in ready(db)] == ["issue"]


def test_message_to_a_waiting_catch_is_delivered_at_once(db, service) -> None:
    instance_id = service.start("message_wait", {}, "a", business_key="B-9").instance_id
    service.complete_task(ready(db)[0]["id"], {}, "officer")
    assert ready(db) == []
    assert service.correlate_message("fee_paid", {"amount": 1}, "bank", business_key="B-9") is True
    assert [t["element_id"] for t in ready(db)] == ["issue"]
    assert instance_id


def test_a_message_names_its_instance_by_id_or_by_business_key_never_both(db, service) -> None:
    """The id won over a business key naming another instance: both together are refused, nothing kept."""
    first = service.start("message_wait", {}, "a", business_key="B-1").instance_id
    service.start("message_wait", {}, "a", business_key="B-2")
    for business_key in ("B-2", "B-1"):
        with pytest.raises(InvalidInput) as err:
            service.correlate_message("fee_paid", {}, "bank", instance_id=first, business_key=business_key)
        assert err.value.code == "message_two_targets"
        assert err.value.detail["fields"] == ["instance_id", "business_key"]
    assert count(db, messages) == 0


def test_cancel_needs_a_reason_and_closes_tasks(db, service) -> None:
    instance_id = service.start("parallel_three", {}, "a").instance_id
    assert len(ready(db)) == 3
    with pytest.raises(InvalidInput):
        service.cancel(instance_id, "sup", "  ")
    service.cancel(instance_id, "sup", "申请人撤回")
    assert ready(db) == []
    with pytest.raises(Conflict) as err:
        service.correlate_message("x", {}, "a", instance_id=instance_id)
    assert err.value.code == "instance_not_running"


def test_cycle_timer_fires_each_repetition_once(db, service, clock) -> None:
    service.deploy((BPMN / "timers_many.bpmn").read_bytes(), "timers_many.bpmn", "designer")
    service.start("reminders", {}, "a")
    fired = []
    for _ in range(5):
        clock.advance(minutes=61)
        fired.append(service.fire_due_timers("w1"))
    assert fired == [1, 1, 1, 0, 0]
    assert sorted(t["element_id"] for t in ready(db)) == ["nudge", "nudge", "nudge", "review"]


def test_gbk_encoded_model_deploys_and_is_stored_as_text(db, clock) -> None:
    xml = (BPMN / "three_tasks.bpmn").read_text(encoding="utf-8")
    gbk = xml.replace('encoding="UTF-8"', 'encoding="GBK"').encode("gbk")
    [deployed] = WorkflowService(db, clock=clock).deploy(gbk, "gbk.bpmn", "designer")
    with db.connect() as conn:
        stored = conn.execute(select(definitions.c.bpmn)).scalar_one()
    assert deployed.version == 1 and "三步审批" in stored


def test_camunda_due_date_sets_the_task_deadline(db, clock) -> None:
    xml = (BPMN / "three_tasks.bpmn").read_text()
    xml = xml.replace(
        'xmlns:ow="http://onewindow.org/schema/bpmn"',
        'xmlns:ow="http://onewindow.org/schema/bpmn" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"',
    )
    xml = xml.replace(' ow:formKey="task.intake" ow:deadlineDays="1"', ' camunda:dueDate="PT2H"')
    xml = xml.replace(
        ' ow:deadlineDays="5" ow:warnRatio="0.6"', ' camunda:dueDate="working_deadline(start_day, 3)"'
    )
    svc = WorkflowService(db, clock=clock)
    svc.deploy(xml.encode(), "due.bpmn", "designer")
    svc.start("three_tasks", {"start_day": "2025-09-30"}, "a")  # clock: 2025-09-30 09:00 Beijing
    [intake] = ready(db)
    assert intake["due_at"] == clock.now + timedelta(hours=2)
    svc.complete_task(intake["id"], {}, "a")
    [review] = ready(db)
    # three working days after 30 Sep 2025: 9, 10 and 11 Oct (the adjusted Saturday), to the end of 11 Oct
    assert review["due_at"] == datetime.combine(date(2025, 10, 12), time(0), SHANGHAI)


def test_the_person_the_model_assigns_a_task_to_is_its_candidate_and_a_claim_alone_is_no_right(
    db, clock
) -> None:
    """A task the model assigns to one person (ow:assignee, no groups) is theirs: projected as its
    candidate user, it is nobody else's to claim or work, whatever their groups (it was open to all).
    A claim is no right of its own: once the claimant is not a candidate any more, they may not work it."""
    xml = (BPMN / "three_tasks.bpmn").read_text()
    xml = xml.replace(
        'ow:candidateGroups="market" ow:deadlineDays="5"', 'ow:assignee="alice" ow:deadlineDays="5"'
    )
    svc = WorkflowService(db, clock=clock)
    svc.deploy(xml.encode(), "assigned.bpmn", "designer")
    svc.start("three_tasks", {}, "a")
    [intake] = ready(db)
    svc.claim_task(intake["id"], "wang", groups={"window"})
    assert may_work({**intake, "assignee": "wang"}, "wang", {"window"})
    assert not may_work({**intake, "assignee": "wang"}, "wang", {"market"})  # moved out of the counter
    svc.complete_task(intake["id"], {}, "wang")
    [review] = ready(db)
    assert (review["assignee"], review["candidate_users"], review["candidate_groups"]) == (
        "alice",
        ",alice,",
        "",
    )
    assert may_work(review, "alice", set()) and not may_work(review, "bob", {"market", "window"})
    with pytest.raises(NotFound):
        svc.claim_task(review["id"], "bob", groups={"market"})
    legacy = {**review, "candidate_users": ""}  # a row projected before the assignee was a candidate
    assert may_work(legacy, "alice", set()) and not may_work(legacy, "bob", {"market"})


def test_a_start_over_the_command_budget_stores_nothing_and_says_why(db, clock) -> None:
    from engine.errors import CommandBudgetExceeded
    from tests.unit.test_command_budget import automatic_loop

    svc = WorkflowService(db, clock=clock)
    svc.deploy(automatic_loop(2_000), "loop.bpmn", "designer")
    with pytest.raises(CommandBudgetExceeded) as err:
        svc.start("p", {"n": 0}, "a")
    assert err.value.code == "automatic_steps_too_deep"
    assert count(db, instances) == 0 and count(db, tasks) == 0 and count(db, timers) == 0
    assert svc.start("p", {"n": 1_990}, "a").instance_id  # the same model within the budget


def test_an_instance_whose_timer_fails_is_set_aside_and_the_others_still_fire(db, service, clock) -> None:
    service.deploy((BPMN / "timer_fails.bpmn").read_bytes(), "timer_fails.bpmn", "designer")
    broken = service.start("timer_then_broken_script", {"count": 1, "total": 0}, "a").instance_id
    healthy = service.start("timer_wait", {}, "a").instance_id
    clock.advance(hours=2)
    assert service.fire_due_timers("w1") == 1  # the healthy one; the broken one did not stop the round
    assert [t["element_id"] for t in ready(db)] == ["after_timer"]
    with db.connect() as conn:
        failed = conn.execute(select(timers).where(timers.c.instance_id == broken)).one()._mapping
        audit = conn.execute(
            select(audit_log.c.action, audit_log.c.detail).where(audit_log.c.instance_id == broken)
        )
        actions = {action: detail for action, detail in audit}
    assert failed["fired_at"] is None and failed["attempts"] == 1 and failed["retry_at"] > clock.now
    assert (
        "expression_failed" in failed["last_error"] and actions["timer_failed"]["code"] == "expression_failed"
    )
    assert service.fire_due_timers("w1") == 0  # not retried before its back-off ends
    clock.advance(minutes=6)
    assert service.fire_due_timers("w1") == 0
    with db.connect() as conn:
        assert conn.execute(select(timers.c.attempts).where(timers.c.instance_id == broken)).scalar() == 2
    assert healthy


def test_live_workflows_kept_by_one_process_never_hide_another_process_s_step(db, clock) -> None:
    a, b = WorkflowService(db, clock=clock), WorkflowService(db, clock=clock)  # two API processes
    a.deploy((BPMN / "three_tasks.bpmn").read_bytes(), "three_tasks.bpmn", "designer")
    started = a.start("three_tasks", {}, "x")
    a.complete_task(started.opened_tasks[0], {"step": 1}, "x")  # a keeps the live workflow at version 2
    [review] = ready(db)
    b.complete_task(review["id"], {"step": 2}, "y")  # b moves the instance to version 3
    [deliver] = ready(db)
    assert deliver["element_id"] == "deliver"
    done = a.complete_task(deliver["id"], {"step": 3}, "x")  # a must rebuild from the stored state
    assert done.status == "completed"


def test_a_failed_command_leaves_no_half_moved_live_workflow(db, clock) -> None:
    svc = WorkflowService(db, clock=clock)
    svc.deploy((BPMN / "three_tasks.bpmn").read_bytes(), "three_tasks.bpmn", "designer")
    started = svc.start("three_tasks", {}, "x")
    calls = []

    def refuse_once(ctx) -> None:
        if ctx.action == "complete" and not calls:
            calls.append(ctx.instance_id)
            raise InvalidInput("observer refuses", code="refused_by_observer")

    svc.observers.append(refuse_once)
    intake = started.opened_tasks[0]
    with pytest.raises(InvalidInput):
        svc.complete_task(intake, {}, "x")
    assert [t["element_id"] for t in ready(db)] == ["intake"]  # rolled back
    result = svc.complete_task(intake, {}, "x")  # the same task again: the live object was not kept
    assert result.status == "running" and [t["element_id"] for t in ready(db)] == ["review"]


def test_a_stale_live_workflow_never_completes_a_task_twice(db, clock) -> None:
    a, b = WorkflowService(db, clock=clock), WorkflowService(db, clock=clock)  # two API processes
    a.deploy((BPMN / "three_tasks.bpmn").read_bytes(), "three_tasks.bpmn", "designer")
    intake = a.start("three_tasks", {}, "x").opened_tasks[0]  # a keeps the live workflow, intake ready
    b.complete_task(intake, {"by": "b"}, "y")
    with pytest.raises(Conflict) as refused:
        a.complete_task(intake, {"by": "a"}, "x")  # a's copy still has intake ready: the database decides
    assert refused.value.code == "task_not_ready"
    with db.connect() as conn:
        completes = conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "complete")).scalars()
        assert list(completes) == ["y"]
        closed = conn.execute(select(tasks.c.completed_by).where(tasks.c.id == intake)).scalar_one()
        assert closed == "y"
    assert [t["element_id"] for t in ready(db)] == ["review"]


def test_a_stale_live_workflow_is_rebuilt_and_the_other_step_is_kept(db, clock) -> None:
    a, b = WorkflowService(db, clock=clock), WorkflowService(db, clock=clock)
    a.deploy((BPMN / "parallel.bpmn").read_bytes(), "parallel.bpmn", "designer")
    started = a.start("parallel_three", {}, "x")  # a keeps the live workflow: three siblings ready
    by_element = {t["element_id"]: t["id"] for t in ready(db)}
    assert set(by_element) == {"review_market", "review_health", "review_housing"}
    b.complete_task(by_element["review_market"], {"market": "approve"}, "m")
    a.complete_task(by_element["review_health"], {"health": "approve"}, "h")  # stale copy: retried
    a.complete_task(by_element["review_housing"], {"housing": "approve"}, "u")
    assert [t["element_id"] for t in ready(db)] == ["consolidate"]
    with db.connect() as conn:
        row = conn.execute(select(instances.c.version, instances.c.state)).one()
        done = conn.execute(
            select(tasks.c.element_id, tasks.c.completed_by).where(tasks.c.state == "completed")
        ).all()
    assert row.version == 4 and started.status == "running"
    assert sorted(done) == [("review_health", "h"), ("review_housing", "u"), ("review_market", "m")]


def test_an_error_on_a_stale_live_workflow_is_decided_by_the_stored_state(db, clock) -> None:
    a, b = WorkflowService(db, clock=clock), WorkflowService(db, clock=clock)
    a.deploy(gateway_after_task_model("ok == True"), "gw.bpmn", "designer")
    intake = a.start("p", {}, "x").opened_tasks[0]  # a keeps the live workflow, intake ready
    b.complete_task(intake, {"ok": True}, "y")
    # on a's stale copy the gateway fails (no ``ok``); the stored state says the task is done
    with pytest.raises(Conflict) as refused:
        a.complete_task(intake, {}, "x")
    assert refused.value.code == "task_not_ready"
    # a genuine error on a fresh live workflow is still that error
    fresh = a.start("p", {}, "x").opened_tasks[0]
    with pytest.raises(InvalidInput) as failed:
        a.complete_task(fresh, {}, "x")
    assert failed.value.code == "expression_failed"


@pytest.mark.parametrize(
    "element",
    [
        '<bpmn:userTask id="t" name="' + "名" * 401 + '" ow:candidateGroups="market"/>',
        '<bpmn:userTask id="' + "t" * 201 + '" name="t" ow:candidateGroups="market"/>',
    ],
    ids=["task name", "element id"],
)
def test_an_element_no_instance_could_store_is_refused_at_deploy(db, clock, element: str) -> None:
    """A task name or element id longer than its column deployed, and then every start of the process was
    refused (value_too_long) before it began."""
    from tests.unit.bpmn.models import document, linear

    task_id = element.split('id="')[1].split('"')[0]
    model = document(linear(element, task_id, task_id))
    service = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidInput) as err:
        service.deploy(model, "long.bpmn", "designer")
    assert err.value.code == "value_too_long" and err.value.detail["key"] == "p"
    assert count(db, definitions) == 0
