"""Models drawn in other tools (issue 13), each run end to end on the workflow service (SQLite and
PostgreSQL) with the result BPMN 2.0 and the original engine's documentation give.

* implicit splits and joins (Camunda Modeler style, no gateways): an activity with two unconditioned outgoing
  flows starts both (a parallel split); an activity with two incoming flows runs once per arriving token (an
  uncontrolled merge, BPMN 2.0 §13.2.1: no synchronisation), so the case ends after two archive tasks;
* a catch event without ``messageRef`` is correlated by its name (SpiffWorkflow's rule) and a message
  without ``name`` by its id; a receive task without one waits for the message named as it;
* a call activity whose called process is in another file deploys when both files are deployed together
  (one transaction), and is refused, naming the element and what to do, when deployed alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.errors import InvalidModel, OneWindowError
from engine.modelling import deploy_documents
from engine.persistence.tables import instances, tasks
from engine.service import WorkflowService
from engine.workflow import validate_document, validate_documents

MODELS = Path(__file__).parent / "models"


def doc(name: str) -> tuple[bytes, str]:
    return (MODELS / name).read_bytes(), name


def open_tasks(db, instance_id: str) -> list[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(tasks.c.element_id, tasks.c.id)
            .where(tasks.c.instance_id == instance_id, tasks.c.state == "ready")
            .order_by(tasks.c.element_id)
        ).all()
    return [(r[0], str(r[1])) for r in rows]


def status(db, instance_id: str) -> str:
    with db.connect() as conn:
        return str(conn.execute(select(instances.c.status).where(instances.c.id == instance_id)).scalar_one())


def complete(svc: WorkflowService, db, instance_id: str, element_id: str, **data) -> None:
    task_id = next(t for e, t in open_tasks(db, instance_id) if e == element_id)
    svc.complete_task(task_id, data, "officer")


def test_implicit_split_and_uncontrolled_merge_run_as_bpmn_says(db, clock) -> None:
    (process,) = validate_document(*doc("implicit_split_join.bpmn")).processes
    assert process.executable and not process.problems
    assert {(n["element_id"], n["code"]) for n in process.notes} == {
        ("Task_intake", "implicit_parallel_split"),
        ("Task_archive", "implicit_merge"),
    }
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [doc("implicit_split_join.bpmn")], "designer")
    case = svc.start("implicit_split_join", {}, "applicant").instance_id
    complete(svc, db, case, "Task_intake")
    assert [e for e, _ in open_tasks(db, case)] == ["Task_fire", "Task_health"]  # both branches at once
    complete(svc, db, case, "Task_fire", fire_ok=True)
    assert [e for e, _ in open_tasks(db, case)] == ["Task_archive", "Task_health"]  # no waiting
    complete(svc, db, case, "Task_archive")
    assert status(db, case) == "running"
    complete(svc, db, case, "Task_health", health_ok=True)
    assert [e for e, _ in open_tasks(db, case)] == ["Task_archive"]  # the second token: archive again
    complete(svc, db, case, "Task_archive")
    assert status(db, case) == "completed" and open_tasks(db, case) == []


def test_messages_without_message_ref_or_name_correlate_by_name_and_id(db, clock) -> None:
    (process,) = validate_document(*doc("message_by_name.bpmn")).processes
    assert process.executable
    assert [(n["element_id"], n["code"]) for n in process.notes] == [
        ("Event_supplement", "message_by_event_name")
    ]
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [doc("message_by_name.bpmn")], "designer")
    case = svc.start("message_by_name", {}, "applicant").instance_id
    assert open_tasks(db, case) == []
    assert svc.correlate_message("材料补正", {"supplement": "营业执照副本"}, "applicant", instance_id=case)
    assert svc.correlate_message("Message_paid", {"paid": 120}, "cashier", instance_id=case)
    [(element, _)] = open_tasks(db, case)
    assert element == "Task_review"
    complete(svc, db, case, "Task_review", approved=True)
    assert status(db, case) == "completed"


RECEIVE_BY_NAME = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn"
  exporter="bpmn-js (https://demo.bpmn.io)" exporterVersion="17.0.0">
  <bpmn:process id="receive_by_name" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Activity_paid" />
    <bpmn:receiveTask id="Activity_paid" name="缴费确认">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:receiveTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Activity_paid" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="review" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_review" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


def test_a_receive_task_without_message_ref_waits_for_the_message_named_as_it(db, clock) -> None:
    """bpmn.io draws a receive task with a name and no message. The validator said it is correlated by its
    name, but the library read it as no event: the instance went past it at once, to the review, before any
    payment was confirmed. Camunda 7 and Flowable wait at a receive task until it is triggered."""
    (process,) = validate_document(RECEIVE_BY_NAME, "receive.bpmn").processes
    assert process.executable
    notes = [(n["element_id"], n["code"]) for n in process.notes]
    assert notes == [("Activity_paid", "message_by_event_name")]
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [(RECEIVE_BY_NAME, "receive.bpmn")], "designer")
    case = svc.start("receive_by_name", {}, "applicant").instance_id
    assert open_tasks(db, case) == [] and status(db, case) == "running"  # waiting for the payment
    assert svc.correlate_message("缴费确认", {"paid": 120}, "cashier", instance_id=case)
    assert [e for e, _ in open_tasks(db, case)] == ["Task_review"]
    complete(svc, db, case, "Task_review", approved=True)
    assert status(db, case) == "completed"


def _sending(element: str) -> bytes:
    """start -> parallel split: ``element`` (id ``Send``, sending) -> end, and the receive task
    ``Activity_paid`` -> review -> end."""
    split = (
        '<bpmn:parallelGateway id="Split" />'
        '<bpmn:sequenceFlow id="Flow_s" sourceRef="Split" targetRef="Send" />'
        f'{element}<bpmn:sequenceFlow id="Flow_e" sourceRef="Send" targetRef="End_sent" />'
        '<bpmn:endEvent id="End_sent" />'
        '<bpmn:sequenceFlow id="Flow_r" sourceRef="Split" targetRef="Activity_paid" />'
    ).encode()
    model = RECEIVE_BY_NAME.replace(b'targetRef="Activity_paid" />', b'targetRef="Split" />' + split, 1)
    return model.replace(b"receive_by_name", b"send_by_name")


THROW = '<bpmn:intermediateThrowEvent id="Send"><bpmn:messageEventDefinition /></bpmn:intermediateThrowEvent>'


@pytest.mark.parametrize(
    "element",
    [
        '<bpmn:sendTask id="Send" />',
        THROW,
    ],
)
def test_a_send_task_or_message_throw_without_message_or_name_is_a_problem_of_it(element: str) -> None:
    """Neither a message nor a name: nothing says what to send, and the library passed it by sending
    nothing. (Camunda 7 refuses a send task without an implementation.)"""
    (process,) = validate_document(_sending(element), "send.bpmn").processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("Send", "missing_message")]
    assert "messageRef" in process.problems[0]["message"]


def test_a_send_task_without_message_ref_sends_the_message_named_as_it(db, clock) -> None:
    """As a message throw event without ``messageRef`` sends the message named as it, a send task does: the
    receive task of the same name gets it (the library read the send task as no event: nothing was sent)."""
    model = _sending('<bpmn:sendTask id="Send" name="缴费确认" />')
    (process,) = validate_document(model, "send.bpmn").processes
    assert process.executable
    assert ("Send", "message_by_event_name") in [(n["element_id"], n["code"]) for n in process.notes]
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [(model, "send.bpmn")], "designer")
    case = svc.start("send_by_name", {}, "applicant").instance_id
    assert [e for e, _ in open_tasks(db, case)] == ["Task_review"]  # sent and received in the same step
    complete(svc, db, case, "Task_review", approved=True)
    assert status(db, case) == "completed"


DATA_OBJECT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="with_data_object" isExecutable="true">
    <bpmn:dataObject id="DataObject_form" name="申请表" />
    <bpmn:dataObjectReference id="DataObjectReference_1" name="申请表" dataObjectRef="DataObject_form" />
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_intake" />
    <bpmn:userTask id="Task_intake" camunda:candidateGroups="window">
      <bpmn:dataOutputAssociation id="DataOutputAssociation_1">
        <bpmn:targetRef>DataObjectReference_1</bpmn:targetRef>
      </bpmn:dataOutputAssociation>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_intake" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_review" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


def test_a_data_object_the_task_does_not_give_is_a_typed_error_naming_the_task_and_it(db, clock) -> None:
    """A data output association stores a value of the task's data in the data object (by the object's id).
    Completing the task without it failed with the library's English ``A data object could not be set;
    'DataObject_form' not exist in the task`` as ``engine_error``; nothing is stored either way."""
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [(DATA_OBJECT, "data.bpmn")], "designer")
    case = svc.start("with_data_object", {}, "applicant").instance_id
    with pytest.raises(OneWindowError) as info:
        complete(svc, db, case, "Task_intake", note="材料齐全")
    err = info.value
    found = (err.code, err.detail["element_id"], err.detail["data"])
    assert found == ("missing_data", "Task_intake", "DataObject_form")
    assert "DataObject_form" in err.message and "not exist" not in err.message
    assert [e for e, _ in open_tasks(db, case)] == ["Task_intake"]  # nothing of the command stored
    complete(svc, db, case, "Task_intake", DataObject_form={"items": 3})
    assert [e for e, _ in open_tasks(db, case)] == ["Task_review"]


def test_a_call_activity_into_another_file_deploys_with_it(db, clock) -> None:
    caller, shared = doc("call_caller.bpmn"), doc("call_shared_review.bpmn")
    (alone,) = validate_document(*caller).processes
    assert [(p["element_id"], p["code"]) for p in alone.problems] == [
        ("Call_review", "unknown_called_process")
    ]
    assert "一起部署" in alone.problems[0]["message"]
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidModel) as refused:
        deploy_documents(svc, [caller], "designer")
    assert refused.value.detail["filename"] == "call_caller.bpmn"
    reports = validate_documents([caller, shared])
    assert [r.executable for r in reports] == [True, True]
    deployed = deploy_documents(svc, [caller, shared], "designer")
    assert sorted((d["key"], d["filename"]) for d in deployed) == [
        ("call_caller", "call_caller.bpmn"),
        ("call_shared_review", "call_shared_review.bpmn"),
    ]
    again = deploy_documents(svc, [caller, shared], "designer")
    assert [d["created"] for d in again] == [False, False]
    case = svc.start("call_caller", {"applicant": "张三"}, "applicant").instance_id
    complete(svc, db, case, "Task_intake")
    complete(svc, db, case, "Task_review", expert_opinion="同意")  # the called process's task
    complete(svc, db, case, "Task_decide")
    assert status(db, case) == "completed"


CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="shared/conformance is not present")
def test_every_conformance_file_validates_deploys_and_starts_or_is_refused_typed(db, clock) -> None:
    svc = WorkflowService(db, clock=clock)
    files = sorted(CONFORMANCE.rglob("*.bpmn"))
    assert files
    documents = [(path.read_bytes(), path.name) for path in files]
    for report in validate_documents(documents):  # the corpus as one set, then each file alone
        for process in report.processes:
            assert process.executable or process.problems or report.document_problems, report.filename
    for data, name in documents:
        try:
            deployed = deploy_documents(svc, [(data, name)], "designer")
        except OneWindowError as err:  # typed, with a stable code
            assert err.code in ("invalid_model", "unsafe_expression", "no_executable_process"), (name, err)
            continue
        for d in deployed:
            svc.start(d["key"], {}, "conformance")


@pytest.mark.parametrize(
    ("data", "opened"),
    [
        ({"amount": 200000, "sells_food": True}, ["Task_director", "Task_health"]),  # both conditions hold
        ({"amount": 200000, "sells_food": False}, ["Task_director"]),
        ({"amount": 500, "sells_food": False}, ["Task_clerk"]),  # none: the activity's default flow
    ],
)
def test_conditional_flows_out_of_a_task_take_every_true_one_or_the_default(db, clock, data, opened) -> None:
    (process,) = validate_document(*doc("conditional_flows.bpmn")).processes
    assert process.executable, process.problems
    assert [(n["element_id"], n["code"]) for n in process.notes] == [("Task_intake", "conditional_flows")]
    svc = WorkflowService(db, clock=clock)
    deploy_documents(svc, [doc("conditional_flows.bpmn")], "designer")
    case = svc.start("conditional_flows", {}, "applicant").instance_id
    complete(svc, db, case, "Task_intake", **data)
    assert [e for e, _ in open_tasks(db, case)] == opened
    for element in opened:
        complete(svc, db, case, element)
    assert status(db, case) == "completed"
