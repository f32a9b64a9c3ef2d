"""Models written for other engines (issue 13), each run end to end on the workflow service (SQLite and
PostgreSQL) with the result the original engine's documentation gives.

* ``camunda7_grant.bpmn`` (Camunda 7, Camunda Modeler): JUEL conditions with ``&&``/``and``/``not``/
  ``empty``/``gt``/``<=`` and ``execution.getVariable``; ``camunda:initiator`` ("the variable name in which
  the authenticated user id is stored", Camunda 7 reference, Extension Attributes);
  ``camunda:candidateStarterGroups``; ``camunda:formKey``; ``camunda:dueDate="${dateTime().plusDays(3)...}"``;
  a ``timeDate`` of ``${dateTime().plusHours(2)}``; ``camunda:inputOutput``: "input parameters create local
  variables of the activity; output parameters are evaluated in the activity's scope and set in the outer
  scope", and a local variable covers a process variable of the same name while the activity runs
  (Camunda 7 user guide, Process Variables, "Input/Output Variable Mapping" and "Variable Scopes").
* ``flowable_leave.bpmn`` (Flowable 6): ``flowable:*`` attributes, ``#{...}`` conditions, an assignee
  ``${employee}`` taken from the ``flowable:initiator`` variable (Flowable's classic holiday request).
* ``spiff_permit.bpmn`` (SpiffWorkflow / SpiffArena): a Python script task with local functions, ``print``,
  ``datetime``/``timedelta`` arithmetic and a membership test; ``spiffworkflow:preScript`` runs before the
  user task is ready and ``postScript`` when it completes (SpiffWorkflow ``SpiffBpmnTask``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.errors import Forbidden, OneWindowError
from engine.persistence.repositories import InstanceRepository
from engine.persistence.tables import audit_log, instances, tasks
from engine.service import WorkflowService
from engine.workflow import Runtime, load_definitions, validate_document

MODELS = Path(__file__).parent / "models"


def deployed(db, clock, *names: str) -> WorkflowService:
    svc = WorkflowService(db, clock=clock)
    for name in names:
        svc.deploy((MODELS / name).read_bytes(), name, "designer")
    return svc


def ready(db, instance_id: str) -> list[dict]:
    with db.connect() as conn:
        rows = conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id, tasks.c.state == "ready")
        ).all()
    return sorted((dict(r._mapping) for r in rows), key=lambda r: r["element_id"])


def status(db, instance_id: str) -> str:
    with db.connect() as conn:
        return str(conn.execute(select(instances.c.status).where(instances.c.id == instance_id)).scalar_one())


def one_task(db, instance_id: str, element_id: str) -> dict:
    [task] = [t for t in ready(db, instance_id) if t["element_id"] == element_id]
    return task


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def runtime(svc: WorkflowService, instance_id: str) -> Runtime:
    """The stored instance, restored (read only: nothing is written back)."""
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        return Runtime.restore(svc.definition(conn, row.definition_id), row.state, svc.clock())


def case_data(svc: WorkflowService, instance_id: str) -> dict:
    return runtime(svc, instance_id).data


# ---------------------------------------------------------------- Camunda 7


def test_camunda7_model_validates_with_notes_for_what_it_ignores() -> None:
    report = validate_document((MODELS / "camunda7_grant.bpmn").read_bytes(), "camunda7_grant.bpmn")
    (process,) = report.processes
    assert process.executable and not process.problems
    assert {(n["element_id"], n["code"]) for n in process.notes} == {
        ("camunda7_grant", "ignored_attribute"),  # camunda:historyTimeToLive
        ("Task_review", "ignored_attribute"),  # camunda:asyncBefore
    }
    definition = load_definitions((MODELS / "camunda7_grant.bpmn").read_bytes())["camunda7_grant"]
    assert definition.initiator_variable == "applicant"
    assert definition.starter_groups == ("window",)
    assert definition.start_form_key == "grant_application"
    assert definition.task_meta["Task_review"].form_key == "grant_review"


def test_camunda7_large_grant_goes_to_the_director_with_io_mapping_and_due_dates(db, clock) -> None:
    svc = deployed(db, clock, "camunda7_grant.bpmn")
    start = clock.now
    case = svc.start(
        "camunda7_grant",
        {"amount": 5000, "bankAccount": "6222020200112233", "status": "submitted", "applicant": "forged"},
        "clerk01",
        groups=["window"],
    ).instance_id
    review = one_task(db, case, "Task_review")
    assert review["candidate_groups"] == ",review,"
    assert review["form_key"] == "grant_review"
    assert as_utc(review["due_at"]) == start + timedelta(days=3)  # ${dateTime().plusDays(3).toDate()}
    svc.complete_task(review["id"], {"approved": True}, "reviewer")
    director = one_task(db, case, "Task_director")
    assert as_utc(director["due_at"]) == start + timedelta(hours=12)  # ${dateTime().plusHours(12)}
    data = case_data(svc, case)
    assert data["applicant"] == "clerk01"  # camunda:initiator: the starting user, not the start data
    assert data["grantedAmount"] == 5000 and data["largeGrant"] is True  # output parameters
    assert "threshold" not in data and "note" not in data  # input parameters were local to the task
    assert data["status"] == "submitted"  # the local "status" covered the case's only while it ran
    svc.complete_task(director["id"], {"director_ok": True}, "director")
    assert status(db, case) == "completed"


def test_camunda7_the_review_task_sees_its_input_parameters(db, clock) -> None:
    svc = deployed(db, clock, "camunda7_grant.bpmn")
    case = svc.start("camunda7_grant", {"amount": 10, "status": "submitted"}, "clerk01").instance_id
    view = runtime(svc, case).ready_tasks()
    [review] = view
    assert (review.data["threshold"], review.data["note"], review.data["status"]) == (
        1000,
        "请核对营业执照",
        "reviewing",
    )


def test_camunda7_small_grant_waits_for_the_juel_timer(db, clock) -> None:
    svc = deployed(db, clock, "camunda7_grant.bpmn")
    case = svc.start("camunda7_grant", {"amount": 800, "bankAccount": "6222"}, "clerk01").instance_id
    svc.complete_task(one_task(db, case, "Task_review")["id"], {"approved": True}, "reviewer")
    assert ready(db, case) == [] and status(db, case) == "running"  # ${dateTime().plusHours(2)}
    clock.advance(hours=1, minutes=59)
    assert svc.fire_due_timers() == 0
    clock.advance(minutes=1)
    assert svc.fire_due_timers() == 1
    assert status(db, case) == "completed"


def test_camunda7_no_bank_account_takes_the_default_flow(db, clock) -> None:
    """``not empty execution.getVariable('bankAccount')``: a variable never set is null, null is empty."""
    svc = deployed(db, clock, "camunda7_grant.bpmn")
    case = svc.start("camunda7_grant", {"amount": 800}, "clerk01").instance_id
    svc.complete_task(one_task(db, case, "Task_review")["id"], {"approved": True}, "reviewer")
    assert status(db, case) == "completed" and ready(db, case) == []
    with db.connect() as conn:
        rows = conn.execute(select(audit_log.c.action).where(audit_log.c.instance_id == case)).all()
    assert "completed" in [r[0] for r in rows]


def test_camunda7_only_candidate_starters_may_start(db, clock) -> None:
    svc = deployed(db, clock, "camunda7_grant.bpmn")
    with pytest.raises(Forbidden) as info:
        svc.start("camunda7_grant", {"amount": 1}, "reviewer", groups=["review"])
    assert info.value.code == "not_a_starter"
    assert svc.start("camunda7_grant", {"amount": 1}, "clerk", groups=["window"]).instance_id


# ---------------------------------------------------------------- Flowable


def test_flowable_leave_request_loops_back_to_its_initiator(db, clock) -> None:
    svc = deployed(db, clock, "flowable_leave.bpmn")
    definition = load_definitions((MODELS / "flowable_leave.bpmn").read_bytes())["flowable_leave"]
    assert (definition.initiator_variable, definition.starter_groups) == ("employee", ("staff",))
    case = svc.start("flowable_leave", {"days": 5}, "wang.li", groups=["staff"]).instance_id
    approve = one_task(db, case, "approveTask")
    assert approve["candidate_groups"] == ",manager,"
    assert as_utc(approve["due_at"]) == clock.now + timedelta(days=2)
    svc.complete_task(approve["id"], {"approved": False}, "manager")  # #{!approved}
    adjust = one_task(db, case, "adjustTask")
    assert adjust["assignee"] == "wang.li"  # flowable:assignee="${employee}"
    svc.complete_task(adjust["id"], {"days": 2}, "wang.li")
    svc.complete_task(one_task(db, case, "approveTask")["id"], {"approved": True}, "manager")
    assert status(db, case) == "completed"  # ${approved && days <= 3}: no HR step


def test_flowable_long_leave_goes_to_hr(db, clock) -> None:
    svc = deployed(db, clock, "flowable_leave.bpmn")
    case = svc.start("flowable_leave", {"days": 10}, "wang.li").instance_id
    svc.complete_task(one_task(db, case, "approveTask")["id"], {"approved": True}, "manager")
    hr = one_task(db, case, "hrTask")
    svc.complete_task(hr["id"], {}, "hr")
    assert status(db, case) == "completed"


# ---------------------------------------------------------------- SpiffWorkflow


def test_spiff_script_task_pre_and_post_scripts_run_as_spiffworkflow_runs_them(db, clock) -> None:
    svc = deployed(db, clock, "spiff_permit.bpmn")
    case = svc.start(
        "spiff_permit",
        {"area": 150, "received_on": "2025-09-29", "activities": ["restaurant", "retail"]},
        "applicant",
    ).instance_id
    view = runtime(svc, case).ready_tasks()
    [review] = view
    assert review.element_id == "Activity_review" and review.meta.candidate_groups == ("window",)
    assert review.data["fee"] == 650  # fee_for(150), a local function
    assert review.data["deadline"] == "2025-10-19T00:00:00"  # a datetime becomes its ISO text
    assert review.data["overdue"] is False and review.data["needs_fire_check"] is True
    assert review.data["checklist"] == ["licence", "floor_plan", "fire"]  # the preScript ran first
    assert "fee_for" not in review.data and "label" not in review.data  # functions are not data
    svc.complete_task(review.task_id, {"decision": "approve"}, "officer")
    assert status(db, case) == "completed"
    data = case_data(svc, case)
    assert data["decision_label"] == "批准"  # the postScript ran when the task completed
    with db.connect() as conn:
        printed = conn.execute(
            select(audit_log.c.element_id, audit_log.c.detail)
            .where(audit_log.c.instance_id == case, audit_log.c.action == "script_output")
            .order_by(audit_log.c.id)
        ).all()
    assert [(e, d["text"]) for e, d in printed] == [
        ("Activity_fee", "fee 650 deadline 2025-10-19 fire check 是"),
        ("Activity_review", "review 批准"),
    ]


# ---------------------------------------------------------------- what is reported, never dropped


def test_what_cannot_be_executed_is_reported_on_its_element(db, clock) -> None:
    data = (MODELS / "camunda7_unsupported.bpmn").read_bytes()
    (process,) = validate_document(data, "camunda7_unsupported.bpmn").processes
    assert not process.executable
    assert {(p["element_id"], p["code"]) for p in process.problems} == {
        ("Start", "unsupported_extension"),  # camunda:executionListener
        ("Start", "reserved_id"),  # the library's own start task is named Start
        ("Task_form", "unsupported_extension"),  # camunda:formData, camunda:taskListener
        ("Task_form", "unsupported_language"),  # an input parameter given as a Groovy script
        ("Task_form", "unsafe_expression"),  # spiffworkflow:preScript: import os
        ("Flow_bean", "unsupported_juel"),  # ${riskService.isRisky(amount)}
        ("Flow_js", "unsupported_language"),  # language="javascript"
        ("Task_after", "unsupported_juel"),  # a composite due date; Camunda's nrOfInstances
        ("Event_wait", "unsupported_timer"),  # a Quartz cron timeCycle
        ("Event_wait", "unsupported_intermediate_cycle"),  # on an intermediate event, which is passed once
        ("Script_1", "unsupported_language"),  # scriptFormat="javascript"
    }
    assert all(p["message"] and p["line"] for p in process.problems)
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(OneWindowError) as refused:  # the unsafe preScript makes it unsafe_expression
        svc.deploy(data, "camunda7_unsupported.bpmn", "designer")
    assert refused.value.code in ("unsafe_expression", "invalid_model")


# ---------------------------------------------------------------- Camunda 7: the rules of EL 2.2


def _fee_case(db, clock, data: dict) -> tuple[WorkflowService, str]:
    svc = deployed(db, clock, "camunda7_fee.bpmn")
    case = svc.start("camunda7_fee", data, "clerk01").instance_id
    return svc, case


def test_camunda7_fee_conditions_take_the_branch_el_gives(db, clock) -> None:
    """Form fields arrive as texts. Camunda 7 (JUEL, EL 2.2) reads ``!feeWaived`` with the text 'false' as
    true (1.18.5, Boolean.valueOf) and ``price + postage`` with '80' and '30' as 110 (1.7.1): the fee is
    due. Python's truthiness and concatenation took the free branch."""
    svc, case = _fee_case(
        db, clock, {"feeWaived": "false", "price": "80", "postage": "30", "agent": {"name": None}}
    )
    svc.complete_task(one_task(db, case, "Task_check")["id"], {}, "window")
    assert [t["element_id"] for t in ready(db, case)] == ["Task_pay"]


def test_camunda7_a_property_of_null_is_null_and_the_default_flow_is_taken(db, clock) -> None:
    """``agent.name`` with ``agent`` null is null (EL 1.6), so ``agent.name != null`` is false: the
    default flow. It raised an AttributeError."""
    svc, case = _fee_case(db, clock, {"feeWaived": "true", "agent": None})
    svc.complete_task(one_task(db, case, "Task_check")["id"], {}, "window")
    assert [t["element_id"] for t in ready(db, case)] == ["Task_issue"]
    svc, case = _fee_case(db, clock, {"feeWaived": "TRUE", "agent": {"name": "李四"}})
    svc.complete_task(one_task(db, case, "Task_check")["id"], {}, "window")
    assert [t["element_id"] for t in ready(db, case)] == ["Task_agent"]


def test_camunda7_a_text_that_is_no_number_fails_the_step_and_nothing_is_stored(db, clock) -> None:
    """``price + postage`` with the text 'eighty': JUEL raises an ELException (Long.valueOf fails), the
    step fails with juel_error naming the flow, and the case stays at its task."""
    svc, case = _fee_case(db, clock, {"feeWaived": "false", "price": "eighty", "postage": "30"})
    task = one_task(db, case, "Task_check")
    with pytest.raises(OneWindowError) as info:
        svc.complete_task(task["id"], {}, "window")
    assert info.value.code == "juel_error"
    assert [t["element_id"] for t in ready(db, case)] == ["Task_check"]


def test_camunda7_an_unknown_variable_fails_the_step_as_in_camunda(db, clock) -> None:
    """Camunda raises PropertyNotFoundException (``Cannot resolve identifier 'agent'``) for a variable
    that was never set; so do we, rather than reading it as null."""
    svc, case = _fee_case(db, clock, {"feeWaived": "true"})
    task = one_task(db, case, "Task_check")
    with pytest.raises(OneWindowError) as info:
        svc.complete_task(task["id"], {}, "window")
    assert info.value.code == "expression_failed"
    assert info.value.detail["variable"] == "agent" and "变量 agent 没有设置" in info.value.message
    assert [t["element_id"] for t in ready(db, case)] == ["Task_check"]
