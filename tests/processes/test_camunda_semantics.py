"""What a Camunda 7 / Flowable author means by the elements and attributes a second reading found run
differently here (issue 13's rule: executed as the original engine does, or reported on the element), each
model run end to end on the workflow service (SQLite and PostgreSQL).

* an abstract task (``bpmn:task``, no type) passes through: "a Task which is not further specified" does no
  work (BPMN 2.0, 10.3.3), and Camunda 7 runs it as a pass-through;
* a call activity's ``camunda:in`` / ``camunda:out`` (Camunda 7 reference, Call Activity, "Passing
  Variables"): the called instance gets only what ``in`` names, the caller only what ``out`` names back;
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.persistence.repositories import InstanceRepository
from engine.persistence.tables import instances, tasks
from engine.service import WorkflowService
from engine.workflow import Runtime, validate_document

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  xmlns:flowable="http://flowable.org/bpmn"
                  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn"
                  exporter="Camunda Modeler" exporterVersion="5.20.0">
"""
TAIL = "</bpmn:definitions>\n"


def model(body: str) -> bytes:
    return (HEAD + body + TAIL).encode()


def ready(db, instance_id: str) -> list[dict]:
    with db.connect() as conn:
        rows = conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id, tasks.c.state == "ready")
        ).all()
    return sorted((dict(r._mapping) for r in rows), key=lambda r: r["element_id"])


def status(db, instance_id: str) -> str:
    with db.connect() as conn:
        return str(conn.execute(select(instances.c.status).where(instances.c.id == instance_id)).scalar_one())


def case_data(svc: WorkflowService, instance_id: str) -> dict:
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        return Runtime.restore(svc.definition(conn, row.definition_id), row.state, svc.clock()).data


def complete(svc: WorkflowService, db, instance_id: str, element_id: str, **data) -> None:
    [task] = [t for t in ready(db, instance_id) if t["element_id"] == element_id]
    svc.complete_task(task["id"], data, "officer")


# ---------------------------------------------------------------- abstract task

ABSTRACT_TASK = model("""
  <bpmn:process id="abstract_task" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_archive" />
    <bpmn:task id="Task_archive" name="归档（未细化）" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_archive" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="审查" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_review" targetRef="Task_note" />
    <bpmn:task id="Task_note" name="登记（未细化）" />
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Task_note" targetRef="End" />
    <bpmn:endEvent id="End" />
  </bpmn:process>
""")


def test_an_abstract_task_passes_through_as_bpmn_and_camunda_run_it(db, clock) -> None:
    (process,) = validate_document(ABSTRACT_TASK, "abstract_task.bpmn").processes
    assert process.executable and not process.problems
    svc = WorkflowService(db, clock=clock)
    svc.deploy(ABSTRACT_TASK, "abstract_task.bpmn", "designer")
    case = svc.start("abstract_task", {"applicant": "张三"}, "applicant").instance_id
    assert [t["element_id"] for t in ready(db, case)] == ["Task_review"]  # no unassigned wait before it
    complete(svc, db, case, "Task_review", approved=True)
    assert ready(db, case) == [] and status(db, case) == "completed"
    assert case_data(svc, case) == {"applicant": "张三", "approved": True}


# ---------------------------------------------------------------- call activity variables

EXPERT = """
  <bpmn:process id="expert_review" isExecutable="true">
    <bpmn:startEvent id="StartEvent_expert" />
    <bpmn:sequenceFlow id="Flow_e1" sourceRef="StartEvent_expert" targetRef="Task_expert" />
    <bpmn:userTask id="Task_expert" name="专家评审" camunda:candidateGroups="planning" />
    <bpmn:sequenceFlow id="Flow_e2" sourceRef="Task_expert" targetRef="EndEvent_expert" />
    <bpmn:endEvent id="EndEvent_expert" />
  </bpmn:process>
"""


def caller(mappings: str) -> bytes:
    return model(
        f"""
  <bpmn:process id="permit" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Call_expert" />
    <bpmn:callActivity id="Call_expert" name="专家评审" calledElement="expert_review">
      <bpmn:extensionElements>{mappings}</bpmn:extensionElements>
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Call_expert" targetRef="Task_decide" />
    <bpmn:userTask id="Task_decide" name="决定" camunda:candidateGroups="housing" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_decide" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
"""
        + EXPERT
    )


def ready_data(svc: WorkflowService, instance_id: str, element_id: str) -> dict:
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        rt = Runtime.restore(svc.definition(conn, row.definition_id), row.state, svc.clock())
    [task] = [t for t in rt.ready_tasks() if t.element_id == element_id]
    return task.data


START = {"applicant": "张三", "amount": 120, "status": "submitted"}


@pytest.mark.parametrize(
    ("mappings", "called_sees", "caller_gets"),
    [
        # camunda:in without camunda:out: the called process sees everything, the caller gets nothing back
        ('<camunda:in variables="all" />', START, START),
        # source / sourceExpression to target, a source nobody set is null; only the named output comes back
        (
            '<camunda:in source="applicant" target="name" />'
            '<camunda:in sourceExpression="${amount * 2}" target="doubled" />'
            '<camunda:in source="deadline" target="deadline" />'
            '<camunda:out source="expert_opinion" target="opinion" />',
            {"name": "张三", "doubled": 240, "deadline": None},
            {**START, "opinion": "同意"},
        ),
        # camunda:out variables="all": every variable of the called instance comes back
        (
            '<camunda:in source="applicant" target="applicant" /><camunda:out variables="all" />',
            {"applicant": "张三"},
            {**START, "expert_opinion": "同意"},
        ),
        # only an output mapping (Flowable's namespace): nothing goes in, the expression's value comes back
        (
            '<flowable:out sourceExpression="${expert_opinion == \'同意\'}" target="expert_agrees" />',
            {},
            {**START, "expert_agrees": True},
        ),
    ],
)
def test_a_call_activity_passes_in_and_back_only_what_camunda_in_and_out_name(
    db, clock, mappings, called_sees, caller_gets
) -> None:
    data = caller(mappings)
    reports = validate_document(data, "permit.bpmn").processes
    assert all(p.executable and not p.problems for p in reports), [p.problems for p in reports]
    svc = WorkflowService(db, clock=clock)
    svc.deploy(data, "permit.bpmn", "designer")
    case = svc.start("permit", dict(START), "applicant").instance_id
    assert ready_data(svc, case, "Task_expert") == called_sees
    complete(svc, db, case, "Task_expert", expert_opinion="同意")
    assert ready_data(svc, case, "Task_decide") == caller_gets
    complete(svc, db, case, "Task_decide")
    assert status(db, case) == "completed"


def test_flowable_inherit_variables_passes_every_variable_in_and_none_back(db, clock) -> None:
    data = caller("").replace(
        b'calledElement="expert_review"', b'calledElement="expert_review" flowable:inheritVariables="true"'
    )
    svc = WorkflowService(db, clock=clock)
    svc.deploy(data, "permit.bpmn", "designer")
    case = svc.start("permit", dict(START), "applicant").instance_id
    assert ready_data(svc, case, "Task_expert") == START
    complete(svc, db, case, "Task_expert", expert_opinion="同意")
    assert ready_data(svc, case, "Task_decide") == START


@pytest.mark.parametrize(
    ("mappings", "found"),
    [
        ('<camunda:in variables="all" local="true" />', ("problem", "unsupported_extension")),
        ('<camunda:in source="a" targetExpression="${b}" />', ("problem", "unsupported_extension")),
        ('<camunda:in target="name" />', ("problem", "bad_extension_value")),
        ('<camunda:in source="applicant" target="the name" />', ("problem", "bad_extension_value")),
        ('<camunda:in sourceExpression="${bean.name()}" target="name" />', ("problem", "unsupported_juel")),
        ('<camunda:in businessKey="#{execution.processBusinessKey}" />', ("note", "ignored_extension")),
    ],
)
def test_call_activity_mappings_not_executed_as_camunda_does_are_reported(mappings, found) -> None:
    reports = {p.process_id: p for p in validate_document(caller(mappings), "permit.bpmn").processes}
    permit = reports["permit"]
    kind, code = found
    listed = permit.problems if kind == "problem" else permit.notes
    assert [(p["element_id"], p["code"]) for p in listed] == [("Call_expert", code)]
    assert all(p["message"] and p["line"] for p in listed)
    assert permit.executable is (kind == "note")
