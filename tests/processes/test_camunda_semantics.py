"""What a Camunda 7 / Flowable author means by the elements and attributes a second reading found run
differently here (issue 13's rule: executed as the original engine does, or reported on the element), each
model run end to end on the workflow service (SQLite and PostgreSQL).

* an abstract task (``bpmn:task``, no type) passes through: "a Task which is not further specified" does no
  work (BPMN 2.0, 10.3.3), and Camunda 7 runs it as a pass-through;
"""

from __future__ import annotations

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

