"""Event sub-processes (``subProcess triggeredByEvent="true"``) run as BPMN 2.0 (10.3.5) and Camunda 7 run
them, each model driven on the workflow service (SQLite and PostgreSQL) with every command restoring the
instance from its stored state (no live copy kept between commands):

* an event sub-process whose event has not come does not keep its scope open: the scope (the process, an
  embedded sub-process) ends with its main flow, and the waiting timer is dropped;
* it waits for its event while its scope is active, and only then: a message correlated through the
  engine's API (``correlate_message``) or a signal thrown in the scope starts it, one that comes after its
  scope ended does not, not even when the scope runs again (the engine keeps such a message for a catch
  event that waits later, never for an event sub-process);
* its timer fires through the worker (``fire_due_timers``), or with the next command on the instance when
  that comes first (a command is not refused for a timer of a sub-process the worker has not fired yet); a
  non-interrupting cycle runs it at each repetition and lets the instance end after the last;
* an interrupting one (BPMN's default) cancels the rest of its scope when its event comes (the inbox drops
  the cancelled tasks), runs, and ends the scope: the instance completes, or the flow goes on after the
  embedded sub-process;
* a non-interrupting one runs beside the main flow, once for each message that comes; the instance
  completes when both are done;
* an error or escalation start event waits for what is thrown in its scope (not from the start), and is
  found scope by scope from the thrower outwards: an event sub-process inside an embedded sub-process
  catches before a boundary event on it, and one of a sibling sub-process never does;
* it starts with its scope's data as it is when its event comes (as Camunda's event sub-process reads the
  scope's variables then), and an interrupting one ends the scope with that data and its own;
* the audit log records each event sub-process started (``event_subprocess``: which one, interrupting or
  not, and the tasks it cancelled);
* the designer's validation accepts every event sub-process above and names the element of one that
  cannot run as drawn (no or several start events, a start event without an event definition, a sequence
  flow in or out...), and deployment refuses it, instead of a failure or a silent difference at run time.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import InvalidModel
from engine.live import LiveWorkflows
from engine.persistence.repositories import InstanceRepository
from engine.persistence.tables import audit_log, tasks, timers
from engine.service import WorkflowService
from engine.workflow import Runtime, validate_document
from tests.processes.test_other_engines import ready, status

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="Message_withdraw" name="withdraw" />
  <bpmn:signal id="Signal_suspend" name="suspend" />
  <bpmn:error id="Error_missing" name="材料缺失" errorCode="missing" />
  <bpmn:escalation id="Escalation_late" name="超期" escalationCode="late" />
"""
TAIL = "</bpmn:definitions>\n"

MESSAGE = '<bpmn:messageEventDefinition messageRef="Message_withdraw" />'
SIGNAL = '<bpmn:signalEventDefinition signalRef="Signal_suspend" />'
ERROR = '<bpmn:errorEventDefinition errorRef="Error_missing" />'
ESCALATION = '<bpmn:escalationEventDefinition escalationRef="Escalation_late" />'
TIMER = "<bpmn:timerEventDefinition><bpmn:timeDuration>P2D</bpmn:timeDuration></bpmn:timerEventDefinition>"


def event_subprocess(
    start: str, *, interrupting: bool, element: str = "Sub_event", task: str = "Task_handle"
) -> str:
    flag = str(interrupting).lower()
    return f"""
    <bpmn:subProcess id="{element}" triggeredByEvent="true">
      <bpmn:startEvent id="{element}_start" isInterrupting="{flag}">{start}</bpmn:startEvent>
      <bpmn:sequenceFlow id="{element}_f1" sourceRef="{element}_start" targetRef="{task}" />
      <bpmn:userTask id="{task}" name="处理" camunda:candidateGroups="window" />
      <bpmn:sequenceFlow id="{element}_f2" sourceRef="{task}" targetRef="{element}_end" />
      <bpmn:endEvent id="{element}_end" />
    </bpmn:subProcess>"""


def process(inner: str) -> bytes:
    """A review (``Task_review``) with the event sub-process ``inner`` beside it."""
    return (
        HEAD
        + f"""
  <bpmn:process id="permit" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="审查" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />{inner}
  </bpmn:process>
"""
        + TAIL
    ).encode()


def embedded(inner: str) -> bytes:
    """A stage (embedded sub-process ``Sub_stage`` holding ``Task_review`` and the event sub-process
    ``inner``), then a decision ``Task_decide``."""
    return (
        HEAD
        + f"""
  <bpmn:process id="permit" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Sub_stage" />
    <bpmn:subProcess id="Sub_stage" name="审查阶段">
      <bpmn:startEvent id="Stage_start" />
      <bpmn:sequenceFlow id="Stage_f1" sourceRef="Stage_start" targetRef="Task_review" />
      <bpmn:userTask id="Task_review" name="审查" camunda:candidateGroups="market" />
      <bpmn:sequenceFlow id="Stage_f2" sourceRef="Task_review" targetRef="Stage_end" />
      <bpmn:endEvent id="Stage_end" />{inner}
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Sub_stage" targetRef="Task_decide" />
    <bpmn:userTask id="Task_decide" name="决定" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_decide" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
"""
        + TAIL
    ).encode()


def deployed(db, clock, data: bytes) -> WorkflowService:
    (report,) = validate_document(data, "event_subprocess.bpmn").processes
    assert report.executable, report.problems
    svc = WorkflowService(db, clock=clock)
    svc.live = LiveWorkflows(capacity=0)  # every command restores the instance from its stored state
    svc.deploy(data, "event_subprocess.bpmn", "designer")
    return svc


def open_ids(db, instance_id: str) -> list[str]:
    return [t["element_id"] for t in ready(db, instance_id)]


def complete(svc: WorkflowService, db, instance_id: str, element_id: str, **data) -> None:
    [task] = [t for t in ready(db, instance_id) if t["element_id"] == element_id]
    svc.complete_task(task["id"], data, "officer")


def task_states(db, instance_id: str) -> list[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(tasks.c.element_id, tasks.c.state).where(tasks.c.instance_id == instance_id)
        ).all()
    return sorted((row.element_id, row.state) for row in rows)


def waiting_timers(db, instance_id: str) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            select(timers.c.element_id).where(
                timers.c.instance_id == instance_id, timers.c.fired_at.is_(None)
            )
        ).all()
    return [row.element_id for row in rows]


# ---------------------------------------------------------------- the scope ends without an idle one


def test_a_timer_event_subprocess_that_never_fired_does_not_keep_the_process_running(db, clock) -> None:
    svc = deployed(db, clock, process(event_subprocess(TIMER, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    assert open_ids(db, case) == ["Task_review"]
    assert waiting_timers(db, case) == ["Sub_event_start"]
    complete(svc, db, case, "Task_review", approved=True)
    assert status(db, case) == "completed"
    assert ready(db, case) == [] and waiting_timers(db, case) == []
    clock.advance(days=3)
    assert svc.fire_due_timers() == 0


def test_an_embedded_subprocess_ends_with_its_main_flow_and_its_idle_event_subprocess(db, clock) -> None:
    svc = deployed(db, clock, embedded(event_subprocess(TIMER, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    complete(svc, db, case, "Task_review")
    assert open_ids(db, case) == ["Task_decide"]
    assert waiting_timers(db, case) == []
    clock.advance(days=3)
    assert svc.fire_due_timers() == 0
    complete(svc, db, case, "Task_decide")
    assert status(db, case) == "completed"


def test_a_timer_event_subprocess_that_runs_is_waited_for(db, clock) -> None:
    svc = deployed(db, clock, process(event_subprocess(TIMER, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    clock.advance(days=2, minutes=1)
    assert svc.fire_due_timers() == 1
    assert open_ids(db, case) == ["Task_handle", "Task_review"]
    complete(svc, db, case, "Task_review")
    assert status(db, case) == "running" and open_ids(db, case) == ["Task_handle"]
    complete(svc, db, case, "Task_handle")
    assert status(db, case) == "completed"


# ---------------------------------------------------------------- waiting while the scope is active


def test_a_message_correlated_through_the_api_starts_a_message_event_subprocess(db, clock) -> None:
    svc = deployed(db, clock, process(event_subprocess(MESSAGE, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    assert svc.correlate_message("withdraw", {"reason": "撤回申请"}, "applicant", instance_id=case)
    assert open_ids(db, case) == ["Task_handle", "Task_review"]
    complete(svc, db, case, "Task_handle")
    complete(svc, db, case, "Task_review")
    assert status(db, case) == "completed"


def test_an_event_subprocess_of_an_embedded_subprocess_waits_only_while_the_stage_runs(db, clock) -> None:
    svc = deployed(db, clock, embedded(event_subprocess(MESSAGE, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    assert open_ids(db, case) == ["Task_handle", "Task_review"]
    complete(svc, db, case, "Task_handle")
    complete(svc, db, case, "Task_review")
    assert open_ids(db, case) == ["Task_decide"]
    assert not svc.correlate_message("withdraw", {}, "applicant", instance_id=case)  # the stage ended
    assert open_ids(db, case) == ["Task_decide"]
    complete(svc, db, case, "Task_decide")
    assert status(db, case) == "completed"


def thrown_in_stage(throw_id: str, definition: str) -> str:
    """A second path in the stage: from its start to a throw event of ``definition``, then an end."""
    return f"""
      <bpmn:sequenceFlow id="Stage_f3" sourceRef="Stage_start" targetRef="{throw_id}" />
      <bpmn:intermediateThrowEvent id="{throw_id}">{definition}</bpmn:intermediateThrowEvent>
      <bpmn:sequenceFlow id="Stage_f4" sourceRef="{throw_id}" targetRef="Stage_end_2" />
      <bpmn:endEvent id="Stage_end_2" />"""


def test_a_signal_thrown_in_an_embedded_subprocess_starts_its_event_subprocess(db, clock) -> None:
    throw = thrown_in_stage("Throw_suspend", '<bpmn:signalEventDefinition signalRef="Signal_suspend" />')
    svc = deployed(db, clock, embedded(event_subprocess(SIGNAL, interrupting=False) + throw))
    case = svc.start("permit", {}, "applicant").instance_id
    assert open_ids(db, case) == ["Task_handle", "Task_review"]
    complete(svc, db, case, "Task_review")
    complete(svc, db, case, "Task_handle")
    assert open_ids(db, case) == ["Task_decide"]


def test_a_message_that_came_while_the_stage_was_not_active_never_starts_its_event_subprocess(
    db, clock
) -> None:
    rework = embedded(event_subprocess(MESSAGE, interrupting=False)).replace(
        b'<bpmn:sequenceFlow id="Flow_3" sourceRef="Task_decide" targetRef="EndEvent_1" />',
        b"""<bpmn:sequenceFlow id="Flow_3" sourceRef="Task_decide" targetRef="Gateway_rework" />
    <bpmn:exclusiveGateway id="Gateway_rework" default="Flow_done" />
    <bpmn:sequenceFlow id="Flow_again" sourceRef="Gateway_rework" targetRef="Sub_stage">
      <bpmn:conditionExpression>rework</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_done" sourceRef="Gateway_rework" targetRef="EndEvent_1" />""",
    )
    svc = deployed(db, clock, rework)
    case = svc.start("permit", {}, "applicant").instance_id
    complete(svc, db, case, "Task_review")
    assert not svc.correlate_message("withdraw", {}, "applicant", instance_id=case)  # kept, not delivered
    complete(svc, db, case, "Task_decide", rework=True)
    assert open_ids(db, case) == ["Task_review"]  # the stage again, its event sub-process not started
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)  # while it runs: starts
    assert open_ids(db, case) == ["Task_handle", "Task_review"]


# ---------------------------------------------------------------- timers


def test_a_timer_due_before_the_worker_fires_it_fires_with_the_next_command(db, clock) -> None:
    svc = deployed(db, clock, two_steps(event_subprocess(TIMER, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    clock.advance(days=3)  # due, and the worker has not run yet
    complete(svc, db, case, "Task_review")  # was refused: automatic_steps_too_deep
    assert open_ids(db, case) == ["Task_handle", "Task_sign"] and waiting_timers(db, case) == []
    assert svc.fire_due_timers() == 0
    complete(svc, db, case, "Task_sign")
    complete(svc, db, case, "Task_handle")
    assert status(db, case) == "completed"


def test_a_non_interrupting_cycle_timer_runs_at_each_repetition_then_lets_the_process_end(db, clock) -> None:
    cycle = "<bpmn:timerEventDefinition><bpmn:timeCycle>R2/P1D</bpmn:timeCycle></bpmn:timerEventDefinition>"
    svc = deployed(db, clock, process(event_subprocess(cycle, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    for _ in range(3):
        clock.advance(days=1, minutes=1)
        svc.fire_due_timers()
    assert open_ids(db, case) == ["Task_handle", "Task_handle", "Task_review"]
    assert waiting_timers(db, case) == []
    for task in ready(db, case):
        svc.complete_task(task["id"], {}, "officer")
    assert status(db, case) == "completed"


# ---------------------------------------------------------------- interrupting


def test_an_interrupting_message_event_subprocess_cancels_the_process_and_ends_it(db, clock) -> None:
    svc = deployed(db, clock, process(event_subprocess(MESSAGE, interrupting=True)))
    case = svc.start("permit", {}, "applicant").instance_id
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    assert task_states(db, case) == [("Task_handle", "ready"), ("Task_review", "cancelled")]
    complete(svc, db, case, "Task_handle")
    assert status(db, case) == "completed"


def test_an_interrupting_timer_event_subprocess_ends_its_embedded_subprocess(db, clock) -> None:
    svc = deployed(db, clock, embedded(event_subprocess(TIMER, interrupting=True)))
    case = svc.start("permit", {}, "applicant").instance_id
    clock.advance(days=2, minutes=1)
    assert svc.fire_due_timers() == 1
    assert task_states(db, case) == [("Task_handle", "ready"), ("Task_review", "cancelled")]
    complete(svc, db, case, "Task_handle")
    assert open_ids(db, case) == ["Task_decide"]
    complete(svc, db, case, "Task_decide")
    assert status(db, case) == "completed"


def test_an_interrupting_event_subprocess_cancels_the_others_of_its_scope(db, clock) -> None:
    beside = event_subprocess(TIMER, interrupting=False, element="Sub_remind", task="Task_remind")
    svc = deployed(db, clock, process(event_subprocess(MESSAGE, interrupting=True) + beside))
    case = svc.start("permit", {}, "applicant").instance_id
    clock.advance(days=2, minutes=1)
    assert svc.fire_due_timers() == 1
    assert open_ids(db, case) == ["Task_remind", "Task_review"]
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    assert task_states(db, case) == [
        ("Task_handle", "ready"),
        ("Task_remind", "cancelled"),
        ("Task_review", "cancelled"),
    ]
    complete(svc, db, case, "Task_handle")
    assert status(db, case) == "completed"


# ---------------------------------------------------------------- non-interrupting


def test_a_non_interrupting_event_subprocess_runs_once_for_each_message(db, clock) -> None:
    svc = deployed(db, clock, process(event_subprocess(MESSAGE, interrupting=False)))
    case = svc.start("permit", {}, "applicant").instance_id
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    assert svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    assert open_ids(db, case) == ["Task_handle", "Task_handle", "Task_review"]
    complete(svc, db, case, "Task_review")
    assert status(db, case) == "running"
    for task in ready(db, case):
        svc.complete_task(task["id"], {}, "officer")
    assert status(db, case) == "completed"


# ---------------------------------------------------------------- error and escalation


def stage(element: str, end: str, inner: str = "") -> str:
    """An embedded sub-process with one review ``Task_<element>`` ending in the end event ``end``."""
    return f"""
    <bpmn:subProcess id="{element}">
      <bpmn:startEvent id="{element}_start" />
      <bpmn:sequenceFlow id="{element}_f1" sourceRef="{element}_start" targetRef="Task_{element}" />
      <bpmn:userTask id="Task_{element}" camunda:candidateGroups="market" />
      <bpmn:sequenceFlow id="{element}_f2" sourceRef="Task_{element}" targetRef="{element}_end" />
      <bpmn:endEvent id="{element}_end">{end}</bpmn:endEvent>{inner}
    </bpmn:subProcess>"""


def parallel_stages(first: str, second: str, more: str = "") -> bytes:
    return (
        HEAD
        + f"""
  <bpmn:process id="permit" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Split" />
    <bpmn:parallelGateway id="Split" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Split" targetRef="Stage_a" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Split" targetRef="Stage_b" />{first}{second}
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Stage_a" targetRef="Join" />
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Stage_b" targetRef="Join" />
    <bpmn:parallelGateway id="Join" />
    <bpmn:sequenceFlow id="Flow_6" sourceRef="Join" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />{more}
  </bpmn:process>
"""
        + TAIL
    ).encode()


def test_an_error_event_subprocess_waits_for_the_error_thrown_in_its_scope(db, clock) -> None:
    data = parallel_stages(
        stage("Stage_a", ""), stage("Stage_b", ERROR), event_subprocess(ERROR, interrupting=True)
    )
    svc = deployed(db, clock, data)
    case = svc.start("permit", {}, "applicant").instance_id
    assert open_ids(db, case) == ["Task_Stage_a", "Task_Stage_b"]  # not started with the process
    complete(svc, db, case, "Task_Stage_b")  # its end event throws the error
    assert task_states(db, case) == [
        ("Task_Stage_a", "cancelled"),
        ("Task_Stage_b", "completed"),
        ("Task_handle", "ready"),
    ]
    complete(svc, db, case, "Task_handle")
    assert status(db, case) == "completed"


def test_the_event_subprocess_inside_a_subprocess_catches_before_a_boundary_event_on_it(db, clock) -> None:
    inner = event_subprocess(ERROR, interrupting=True)
    boundary = """
    <bpmn:boundaryEvent id="Boundary_missing" attachedToRef="Stage_b">
      <bpmn:errorEventDefinition errorRef="Error_missing" />
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="Flow_b1" sourceRef="Boundary_missing" targetRef="Task_outer" />
    <bpmn:userTask id="Task_outer" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="Flow_b2" sourceRef="Task_outer" targetRef="EndEvent_outer" />
    <bpmn:endEvent id="EndEvent_outer" />"""
    svc = deployed(db, clock, parallel_stages(stage("Stage_a", ""), stage("Stage_b", ERROR, inner), boundary))
    case = svc.start("permit", {}, "applicant").instance_id
    complete(svc, db, case, "Task_Stage_b")
    assert open_ids(db, case) == ["Task_Stage_a", "Task_handle"]
    complete(svc, db, case, "Task_handle")  # the stage ends (handled inside), the process goes on
    complete(svc, db, case, "Task_Stage_a")
    assert status(db, case) == "completed"


def test_an_error_thrown_in_a_sibling_subprocess_does_not_start_this_ones_event_subprocess(db, clock) -> None:
    inner = event_subprocess(ERROR, interrupting=True)
    svc = deployed(db, clock, parallel_stages(stage("Stage_a", "", inner), stage("Stage_b", ERROR)))
    case = svc.start("permit", {}, "applicant").instance_id
    complete(svc, db, case, "Task_Stage_b")
    assert open_ids(db, case) == ["Task_Stage_a"]
    complete(svc, db, case, "Task_Stage_a")
    assert status(db, case) == "completed"


def test_a_non_interrupting_escalation_event_subprocess_runs_beside_the_stage(db, clock) -> None:
    throw = thrown_in_stage(
        "Throw_late", '<bpmn:escalationEventDefinition escalationRef="Escalation_late" />'
    )
    svc = deployed(db, clock, embedded(event_subprocess(ESCALATION, interrupting=False) + throw))
    case = svc.start("permit", {}, "applicant").instance_id
    assert open_ids(db, case) == ["Task_handle", "Task_review"]
    complete(svc, db, case, "Task_handle")
    complete(svc, db, case, "Task_review")
    assert open_ids(db, case) == ["Task_decide"]


# ---------------------------------------------------------------- data


def two_steps(inner: str) -> bytes:
    """``Task_review`` (sets the department) then ``Task_sign``, with the event sub-process ``inner``."""
    return (
        HEAD
        + f"""
  <bpmn:process id="permit" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="审查" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="Task_sign" />
    <bpmn:userTask id="Task_sign" name="签发" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_sign" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />{inner}
  </bpmn:process>
"""
        + TAIL
    ).encode()


def instance_data(svc: WorkflowService, instance_id: str) -> dict:
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        return Runtime.restore(svc.definition(conn, row.definition_id), row.state, svc.clock()).data


def test_an_event_subprocess_starts_with_the_scopes_data_when_its_event_comes(db, clock) -> None:
    inner = event_subprocess(MESSAGE, interrupting=False).replace('"window"', '"${department}"')
    svc = deployed(db, clock, two_steps(inner))
    case = svc.start("permit", {"department": "market"}, "applicant").instance_id
    complete(svc, db, case, "Task_review", department="health", opinion="材料齐全")
    assert svc.correlate_message("withdraw", {"reason": "撤回"}, "applicant", instance_id=case)
    [handle] = [t for t in ready(db, case) if t["element_id"] == "Task_handle"]
    assert handle["candidate_groups"] == ",health,"


def test_an_interrupting_event_subprocess_ends_the_scope_with_the_scopes_data(db, clock) -> None:
    svc = deployed(db, clock, two_steps(event_subprocess(MESSAGE, interrupting=True)))
    case = svc.start("permit", {"applicant": "张三"}, "applicant").instance_id
    complete(svc, db, case, "Task_review", opinion="材料齐全")
    assert svc.correlate_message("withdraw", {"reason": "撤回"}, "applicant", instance_id=case)
    complete(svc, db, case, "Task_handle", handled=True)
    assert status(db, case) == "completed"
    assert instance_data(svc, case) == {
        "applicant": "张三",
        "opinion": "材料齐全",
        "reason": "撤回",
        "handled": True,
    }


# ---------------------------------------------------------------- audit


def audit(db, instance_id: str) -> list[tuple[str, str | None, dict | None]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.element_id, audit_log.c.detail)
            .where(audit_log.c.instance_id == instance_id)
            .order_by(audit_log.c.id)
        ).all()
    return [(row.action, row.element_id, row.detail) for row in rows]


def test_the_audit_log_records_the_event_subprocess_and_what_it_cancelled(db, clock) -> None:
    beside = event_subprocess(TIMER, interrupting=False, element="Sub_remind", task="Task_remind")
    svc = deployed(db, clock, process(event_subprocess(MESSAGE, interrupting=True) + beside))
    case = svc.start("permit", {}, "applicant").instance_id
    clock.advance(days=2, minutes=1)
    svc.fire_due_timers()
    opened = {t["element_id"]: t["id"] for t in ready(db, case)}
    svc.correlate_message("withdraw", {}, "applicant", instance_id=case)
    started = [
        (element, detail) for action, element, detail in audit(db, case) if action == "event_subprocess"
    ]
    assert started == [
        ("Sub_remind", {"start_event": "Sub_remind_start", "interrupting": False}),
        (
            "Sub_event",
            {
                "start_event": "Sub_event_start",
                "interrupting": True,
                "cancelled": sorted(
                    (
                        {"task_id": opened["Task_remind"], "element_id": "Task_remind"},
                        {"task_id": opened["Task_review"], "element_id": "Task_review"},
                    ),
                    key=lambda t: t["element_id"],
                ),
            },
        ),
    ]


# ---------------------------------------------------------------- validation

START = '<bpmn:startEvent id="Sub_event_start"{attrs}>{definition}</bpmn:startEvent>'
REST = """
      <bpmn:sequenceFlow id="Sub_event_f1" sourceRef="Sub_event_start" targetRef="Task_handle" />
      <bpmn:userTask id="Task_handle" camunda:candidateGroups="window" />
      <bpmn:sequenceFlow id="Sub_event_f2" sourceRef="Task_handle" targetRef="Sub_event_end" />
      <bpmn:endEvent id="Sub_event_end" />"""
CYCLE = "<bpmn:timerEventDefinition><bpmn:timeCycle>R3/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>"


def drawn(starts: str, *, outside: str = "") -> bytes:
    rest = REST if starts else REST.split("\n", 2)[2]  # no start event: no flow from it either
    inner = f'<bpmn:subProcess id="Sub_event" triggeredByEvent="true">{starts}{rest}</bpmn:subProcess>'
    return process(inner + outside)


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (drawn(""), [("Sub_event", "event_subprocess_start_count")]),
        (
            drawn(
                START.format(attrs="", definition=MESSAGE)
                + START.replace("Sub_event_start", "Sub_event_start_2").format(attrs="", definition=TIMER)
            ),
            [("Sub_event", "event_subprocess_start_count")],
        ),
        (drawn(START.format(attrs="", definition="")), [("Sub_event_start", "missing_event_definition")]),
        (
            drawn(START.format(attrs=' isInterrupting="false"', definition="")),
            [("Sub_event_start", "missing_event_definition")],
        ),
        (
            drawn(START.format(attrs="", definition=MESSAGE + TIMER)),
            [("Sub_event_start", "unsupported_element")],
        ),
        (
            drawn(START.format(attrs="", definition="<bpmn:terminateEventDefinition />")),
            [("Sub_event_start", "bad_event_definition")],
        ),
        (
            drawn(START.format(attrs=' isInterrupting="false"', definition=ERROR)),
            [("Sub_event_start", "bad_interrupting")],
        ),
        (
            drawn(START.format(attrs="", definition=CYCLE)),
            [("Sub_event_start", "unsupported_interrupting_cycle")],
        ),
        (
            drawn(
                START.format(attrs="", definition=MESSAGE),
                outside='<bpmn:sequenceFlow id="Flow_into" sourceRef="Task_review" targetRef="Sub_event" />',
            ),
            [("Flow_into", "event_subprocess_flow")],
        ),
        (
            drawn(
                START.format(attrs="", definition=MESSAGE),
                outside='<bpmn:boundaryEvent id="Boundary_on" attachedToRef="Sub_event">'
                f"{TIMER}</bpmn:boundaryEvent>"
                '<bpmn:sequenceFlow id="Flow_b" sourceRef="Boundary_on" targetRef="End_b" />'
                '<bpmn:endEvent id="End_b" />',
            ),
            [("Boundary_on", "bad_attachment")],
        ),
        (
            process("").replace(
                b'<bpmn:startEvent id="StartEvent_1" />',
                f'<bpmn:startEvent id="StartEvent_1">{ERROR}</bpmn:startEvent>'.encode(),
            ),
            [("StartEvent_1", "misplaced_start_event")],
        ),
    ],
)
def test_an_event_subprocess_that_cannot_run_as_drawn_is_a_problem_of_its_element(
    db, clock, data: bytes, found: list[tuple[str, str]]
) -> None:
    (report,) = validate_document(data, "event_subprocess.bpmn").processes
    assert not report.executable
    assert [(p["element_id"], p["code"]) for p in report.problems] == found
    assert all(p["line"] and "事件" in p["message"] for p in report.problems)
    with pytest.raises(InvalidModel):
        WorkflowService(db, clock=clock).deploy(data, "event_subprocess.bpmn", "designer")


def test_a_non_interrupting_cycle_timer_event_subprocess_is_accepted() -> None:
    (report,) = validate_document(
        drawn(START.format(attrs=' isInterrupting="false"', definition=CYCLE))
    ).processes
    assert report.executable, report.problems
