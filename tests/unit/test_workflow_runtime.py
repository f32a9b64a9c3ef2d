"""Runtime: start/complete, timers on the injected clock, messages, multi-instance, dump/restore."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from engine.errors import Conflict, NotFound
from engine.workflow import Definition, Runtime, load_definitions
from engine.workflow.serializer import full_dump
from tests.unit.bpmn.models import (
    document,
    flow,
    gateway_after_task_model,
    linear,
    mi_model,
    timer_model,
    user_task,
)

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai


def definition(model: bytes, process_id: str = "p") -> Definition:
    return load_definitions(model)[process_id]


def roundtrip(runtime: Runtime, now: datetime = NOW) -> Runtime:
    """Dump and restore against a definition rebuilt from its stored spec JSON."""
    stored = Definition.from_spec_json(runtime.definition.spec_json())
    return Runtime.restore(stored, runtime.dump(), now)


def test_start_complete_gateway_and_data() -> None:
    runtime = Runtime.start(definition(gateway_after_task_model("amount > 1000")), {"amount": 5}, NOW)
    (intake,) = runtime.ready_tasks()
    assert intake.element_id == "intake" and intake.data == {"amount": 5}
    assert runtime.task_state(intake.task_id) == "READY"
    runtime = roundtrip(runtime)
    runtime.complete(intake.task_id, {"amount": 5000, "note": "急"}, NOW)
    assert runtime.task_state(intake.task_id) == "COMPLETED"
    (yes,) = runtime.ready_tasks()
    assert yes.element_id == "yes"
    runtime.complete(yes.task_id, {"decision": "approve"}, NOW)
    assert runtime.completed
    assert runtime.data == {"amount": 5000, "note": "急", "decision": "approve"}
    json.dumps(runtime.data)


def test_complete_errors() -> None:
    runtime = Runtime.start(definition(gateway_after_task_model("amount > 1")), {"amount": 5}, NOW)
    with pytest.raises(NotFound):
        runtime.complete("not-a-uuid", {}, NOW)
    with pytest.raises(NotFound):
        runtime.complete("00000000-0000-0000-0000-000000000000", {}, NOW)
    (intake,) = runtime.ready_tasks()
    runtime.complete(intake.task_id, {}, NOW)
    with pytest.raises(Conflict) as info:
        runtime.complete(intake.task_id, {}, NOW)
    assert info.value.code == "task_not_ready"
    assert runtime.task_state("bogus") is None


def test_duration_timer_due_relative_to_injected_now() -> None:
    runtime = Runtime.start(definition(timer_model("P3D")), {}, NOW)
    (timer,) = runtime.pending_timers()
    assert timer.element_id == "wait"
    assert timer.due_at == NOW + timedelta(days=3)
    runtime = roundtrip(runtime)
    assert runtime.fire_due_timers(NOW + timedelta(days=2)) == []
    assert runtime.ready_tasks() == []
    assert runtime.fire_due_timers(NOW + timedelta(days=3)) == ["wait"]
    assert [t.element_id for t in runtime.ready_tasks()] == ["after"]
    assert runtime.pending_timers() == []


def test_timer_reached_later_counts_from_that_moment() -> None:
    inner = (
        user_task("first")
        + flow("first", "wait")
        + (
            '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT2H'
            "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        )
    )
    runtime = Runtime.start(definition(document(linear(inner, "first", "wait"))), {}, NOW)
    later = NOW + timedelta(days=10)
    runtime.complete(runtime.ready_tasks()[0].task_id, {}, later)
    assert runtime.pending_timers()[0].due_at == later + timedelta(hours=2)
    assert runtime.fire_due_timers(later + timedelta(hours=2)) == ["wait"]
    assert runtime.completed


def test_time_date_timer_naive_is_shanghai_and_expression_uses_working_days() -> None:
    runtime = Runtime.start(definition(timer_model("2024-05-07T09:00:00", "timeDate")), {}, NOW)
    assert runtime.pending_timers()[0].due_at == datetime(2024, 5, 7, 1, 0, tzinfo=UTC)
    runtime = Runtime.start(
        definition(timer_model("working_deadline(received, 3)", "timeDate")), {"received": "2024-04-29"}, NOW
    )
    # 2024-04-29 (Mon) + 3 working days skips the May Day holiday (May 1-5): 2024-05-07 (Tue)
    due = runtime.pending_timers()[0].due_at
    assert due.date() >= date(2024, 5, 6)
    assert due == datetime(2024, 5, 7, 16, 0, tzinfo=UTC)  # 24:00 on 7 May in Beijing: the whole day


def test_cycle_and_boundary_timers() -> None:
    inner = user_task("review") + (
        '<bpmn:boundaryEvent id="remind" attachedToRef="review" cancelActivity="false">'
        "<bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>"
        "</bpmn:boundaryEvent>" + flow("remind", "note") + '<bpmn:scriptTask id="note"><bpmn:script>'
        "reminders = reminders + 1</bpmn:script></bpmn:scriptTask>"
        + flow("note", "end_note")
        + '<bpmn:endEvent id="end_note"/>'
    )
    runtime = Runtime.start(definition(document(linear(inner, "review", "review"))), {"reminders": 0}, NOW)
    assert runtime.pending_timers()[0].due_at == NOW + timedelta(hours=1)
    assert runtime.fire_due_timers(NOW + timedelta(hours=1)) == ["remind"]
    runtime = roundtrip(runtime)
    assert runtime.pending_timers()[0].due_at == NOW + timedelta(hours=2)
    assert [t.element_id for t in runtime.ready_tasks()] == ["review"]


def message_model() -> bytes:
    inner = (
        user_task("request")
        + flow("request", "wait")
        + '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m_sup"/>'
        "</bpmn:intermediateCatchEvent>" + flow("wait", "check") + user_task("check")
    )
    return document(linear(inner, "request", "check"), extra='<bpmn:message id="m_sup" name="supplement"/>\n')


def test_message_delivery_by_name() -> None:
    defn = definition(message_model())
    assert defn.message_names == ("supplement",)
    runtime = Runtime.start(defn, {}, NOW)
    assert runtime.deliver_message("supplement", {"files": 1}, NOW) is False  # nobody waits yet
    runtime.complete(runtime.ready_tasks()[0].task_id, {}, NOW)
    (pending,) = runtime.pending_messages()
    assert (pending.element_id, pending.message_name) == ("wait", "supplement")
    runtime = roundtrip(runtime)
    assert runtime.deliver_message("other", {}, NOW) is False
    assert runtime.deliver_message("supplement", {"files": 2}, NOW) is True
    (check,) = runtime.ready_tasks()
    assert check.element_id == "check" and check.data["files"] == 2
    assert runtime.pending_messages() == []


def test_parallel_multi_instance_branches_do_not_overwrite() -> None:
    loop = (
        "<bpmn:loopDataInputRef>departments</bpmn:loopDataInputRef>"
        '<bpmn:inputDataItem id="department" name="department"/>'
    )
    runtime = Runtime.start(definition(mi_model(loop)), {"departments": ["规划", "消防", "环保"]}, NOW)
    tasks = runtime.ready_tasks()
    assert sorted(t.multi_instance_index for t in tasks) == [0, 1, 2]
    assert {t.data["department"] for t in tasks} == {"规划", "消防", "环保"}
    assert all(t.element_id == "review" and t.meta.candidate_groups == ("dept",) for t in tasks)
    by_index = {t.multi_instance_index: t for t in tasks}
    runtime.complete(by_index[2].task_id, {"opinion": "同意"}, NOW)
    runtime = roundtrip(runtime)
    runtime.complete(by_index[0].task_id, {"opinion": "不同意"}, NOW)
    runtime.complete(by_index[1].task_id, {"opinion": "补正"}, NOW)
    assert runtime.completed
    assert runtime.data["review_results"] == [{"opinion": "不同意"}, {"opinion": "补正"}, {"opinion": "同意"}]
    assert "opinion" not in runtime.data


def test_multi_instance_standard_output_and_camunda_collection() -> None:
    loop = (
        "<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef>"
        "<bpmn:loopDataOutputRef>results</bpmn:loopDataOutputRef>"
        '<bpmn:inputDataItem id="item" name="item"/><bpmn:outputDataItem id="result" name="result"/>'
    )
    runtime = Runtime.start(definition(mi_model(loop, sequential=True)), {"items": ["a", "b"]}, NOW)
    for value in ("A", "B"):
        (task,) = runtime.ready_tasks()
        runtime.complete(task.task_id, {"result": value}, NOW)
    assert runtime.data["results"] == ["A", "B"]

    camunda = mi_model("").replace(
        b"<bpmn:multiInstanceLoopCharacteristics>",
        b"<bpmn:multiInstanceLoopCharacteristics "
        b'camunda:collection="${people}" camunda:elementVariable="person">',
    )
    runtime = Runtime.start(definition(camunda), {"people": ["张三", "李四"]}, NOW)
    tasks = runtime.ready_tasks()
    assert sorted(t.data["person"] for t in tasks) == ["张三", "李四"]
    for task in tasks:
        runtime.complete(task.task_id, {"ok": task.data["person"] == "张三"}, NOW)
    assert runtime.data["review_results"] == [{"ok": True}, {"ok": False}]


def test_cancel() -> None:
    runtime = Runtime.start(definition(timer_model("P1D")), {}, NOW)
    runtime.cancel()
    assert runtime.pending_timers() == []
    assert runtime.ready_tasks() == []


def test_dump_excludes_spec_and_restores_without_it() -> None:
    """The state holds no spec (the speed this buys is measured by ``python -m bench``, not here)."""
    inner = user_task("a") + flow("a", "b") + user_task("b") + flow("b", "c") + user_task("c")
    defn = definition(document(linear(inner, "a", "c")))
    runtime = Runtime.start(defn, {"n": 1}, NOW)
    state = runtime.dump()
    parsed = json.loads(state)
    assert "spec" not in parsed and "subprocess_specs" not in parsed
    assert len(state) < len(full_dump(runtime.workflow))
    restored = Runtime.restore(defn, state, NOW)
    assert [t.element_id for t in restored.ready_tasks()] == ["a"]
    assert restored.dump() == state
