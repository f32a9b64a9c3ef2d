"""What a Camunda 7 / Flowable author means by the elements and attributes a second reading found run
differently here (issue 13's rule: executed as the original engine does, or reported on the element), each
model run end to end on the workflow service (SQLite and PostgreSQL).

* an abstract task (``bpmn:task``, no type) passes through: "a Task which is not further specified" does no
  work (BPMN 2.0, 10.3.3), and Camunda 7 runs it as a pass-through;
* a call activity's ``camunda:in`` / ``camunda:out`` (Camunda 7 reference, Call Activity, "Passing
  Variables"): the called instance gets only what ``in`` names, the caller only what ``out`` names back;
* a Camunda / Flowable attribute is executed, a note (harmless to ignore) or a problem of its element (it
  changes what runs: a send task's Java delegate, a result or error-code variable, a skip expression...);
* ``bpmn:potentialOwner`` / ``humanPerformer`` assign the task as Camunda 7 reads them (User Task, "User
  Assignment": ``user(..)`` / ``group(..)``, a bare name a group; the human performer the assignee), before
  the lane;
* what runs differently and cannot be made to run as Camunda does is reported: a conditional event (never
  evaluated again after its arrival) and a process's timer start event.
"""

from __future__ import annotations

import pytest

from engine.errors import InvalidModel, OneWindowError
from engine.persistence.repositories import InstanceRepository
from engine.service import WorkflowService
from engine.workflow import Runtime, validate_document
from tests.processes.test_other_engines import ready, status

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  xmlns:flowable="http://flowable.org/bpmn"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
                  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn"
                  exporter="Camunda Modeler" exporterVersion="5.20.0">
"""
TAIL = "</bpmn:definitions>\n"


def model(body: str) -> bytes:
    return (HEAD + body + TAIL).encode()


def case_data(svc: WorkflowService, instance_id: str) -> dict:
    with svc.engine.connect() as conn:
        row = InstanceRepository(conn).get(instance_id)
        return Runtime.restore(svc.definition(conn, row.definition_id), row.state, svc.clock()).data


def complete(
    svc: WorkflowService, db, instance_id: str, element_id: str, actor: str = "officer", **data
) -> None:
    [task] = [t for t in ready(db, instance_id) if t["element_id"] == element_id]
    svc.complete_task(task["id"], data, actor)


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
        # source comes before sourceExpression; a sourceExpression without ${} is its text (EL literal text)
        (
            '<camunda:in source="applicant" sourceExpression="${amount}" target="name" />'
            '<camunda:in sourceExpression="amount" target="label" />',
            {"name": "张三", "label": "amount"},
            START,
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


@pytest.mark.parametrize("side", ["in", "out"])
def test_a_failing_mapping_expression_names_the_call_activity_and_stores_nothing(db, clock, side) -> None:
    """An ``in`` mapping reads the caller's data and an ``out`` mapping the called instance's: either way
    the error is the call activity's (not the called process's end task), and the step is not stored."""
    mapping = f'<camunda:{side} sourceExpression="${{nobody_set_this}}" target="opinion" />'
    svc = WorkflowService(db, clock=clock)
    svc.deploy(caller(mapping), "permit.bpmn", "designer")
    if side == "in":
        with pytest.raises(OneWindowError) as failed:
            svc.start("permit", dict(START), "applicant")
    else:
        case = svc.start("permit", dict(START), "applicant").instance_id
        with pytest.raises(OneWindowError) as failed:
            complete(svc, db, case, "Task_expert", expert_opinion="同意")
        assert [t["element_id"] for t in ready(db, case)] == ["Task_expert"]
    assert failed.value.code == "expression_failed"
    assert failed.value.detail["element_id"] == "Call_expert"
    assert failed.value.detail["variable"] == "nobody_set_this"
    assert "Call_expert" in str(failed.value)


def test_a_call_activity_that_maps_nothing_is_noted_as_passing_everything(db, clock) -> None:
    """BPMN and the library pass every variable in and back; Camunda 7 passes none: the designer is told."""
    for mappings, noted in (("", True), ('<camunda:in source="applicant" target="name" />', False)):
        reports = {p.process_id: p for p in validate_document(caller(mappings), "permit.bpmn").processes}
        found = [n["element_id"] for n in reports["permit"].notes if n["code"] == "implicit_call_mapping"]
        assert found == (["Call_expert"] if noted else []), mappings
        assert reports["permit"].executable


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


# ---------------------------------------------------------------- vendor attributes, none dropped

DROPPED = model("""
  <bpmn:process id="notify_applicant" isExecutable="true" camunda:versionTag="v2">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_score" />
    <bpmn:scriptTask id="Task_score" scriptFormat="python" camunda:resultVariable="score">
      <bpmn:script>amount * 2</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_score" targetRef="Task_mail" />
    <bpmn:sendTask id="Task_mail" name="通知申请人" camunda:class="org.example.MailDelegate" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_mail" targetRef="Task_sms" />
    <bpmn:sendTask id="Task_sms" name="短信" camunda:delegateExpression="${smsSender}" />
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Task_sms" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market" camunda:formRef="review-form"
                   camunda:formRefBinding="latest" flowable:skipExpression="${amount &lt; 100}"
                   camunda:priority="80" camunda:modelerTemplate="com.example.review" />
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Task_review" targetRef="Call_archive" />
    <bpmn:boundaryEvent id="Event_failed" attachedToRef="Task_review">
      <bpmn:errorEventDefinition id="ErrorEventDefinition_1" errorRef="Error_1"
                                 camunda:errorCodeVariable="errorCode"
                                 camunda:errorMessageVariable="errorText" />
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="Flow_6" sourceRef="Event_failed" targetRef="EndEvent_1" />
    <bpmn:callActivity id="Call_archive" calledElement="archive" camunda:calledElementBinding="version"
                       camunda:calledElementVersion="3" />
    <bpmn:sequenceFlow id="Flow_7" sourceRef="Call_archive" targetRef="Call_latest" />
    <bpmn:callActivity id="Call_latest" calledElement="archive" camunda:calledElementBinding="latest" />
    <bpmn:sequenceFlow id="Flow_8" sourceRef="Call_latest" targetRef="Call_deployed" />
    <bpmn:callActivity id="Call_deployed" calledElement="archive" camunda:calledElementBinding="deployment" />
    <bpmn:sequenceFlow id="Flow_9" sourceRef="Call_deployed" targetRef="Task_note" />
    <bpmn:scriptTask id="Task_note" camunda:assignee="demo">
      <bpmn:script>noted = True</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_10" sourceRef="Task_note" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
  <bpmn:process id="archive" isExecutable="true">
    <bpmn:startEvent id="StartEvent_archive" />
    <bpmn:sequenceFlow id="Flow_a" sourceRef="StartEvent_archive" targetRef="EndEvent_archive" />
    <bpmn:endEvent id="EndEvent_archive" />
  </bpmn:process>
  <bpmn:error id="Error_1" name="failed" errorCode="FAILED" camunda:errorMessage="审查失败" />
""")


def test_vendor_attributes_that_change_what_runs_are_problems_of_their_elements(db, clock) -> None:
    reports = {p.process_id: p for p in validate_document(DROPPED, "notify.bpmn").processes}
    process = reports["notify_applicant"]
    assert not process.executable
    found = sorted((p["element_id"], p["code"], p["message"].split("=")[0]) for p in process.problems)
    assert found == [
        ("Call_archive", "unsupported_attribute", "camunda:calledElementBinding"),
        ("Call_archive", "unsupported_attribute", "camunda:calledElementVersion"),
        ("Event_failed", "unsupported_attribute", "camunda:errorCodeVariable"),  # on its event definition
        ("Event_failed", "unsupported_attribute", "camunda:errorMessageVariable"),
        ("Task_mail", "unsupported_attribute", "camunda:class"),
        ("Task_note", "unsupported_attribute", "camunda:assignee"),  # read on user tasks only
        ("Task_review", "unsupported_attribute", "camunda:formRef"),
        ("Task_review", "unsupported_attribute", "camunda:formRefBinding"),
        ("Task_review", "unsupported_attribute", "flowable:skipExpression"),
        ("Task_score", "unsupported_attribute", "camunda:resultVariable"),
        ("Task_sms", "unsupported_attribute", "camunda:delegateExpression"),
    ]
    assert all(p["line"] and "没有实现" in p["message"] for p in process.problems)
    notes = sorted(
        (n["element_id"], n["code"], n["message"].split("=")[0])
        for n in process.notes
        if n["code"] not in ("implicit_call_mapping", "message_by_event_name")  # noted by tests of their own
    )
    assert notes == [
        ("Call_latest", "ignored_attribute", "camunda:calledElementBinding"),  # Camunda's default
        ("Task_review", "ignored_attribute", "camunda:modelerTemplate"),
        ("Task_review", "ignored_attribute", "camunda:priority"),
        ("notify_applicant", "ignored_attribute", "camunda:versionTag"),
    ]
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidModel) as refused:
        svc.deploy(DROPPED, "notify.bpmn", "designer")
    assert "Task_mail" in {p["element_id"] for p in refused.value.detail["problems"]}


HARMLESS = model("""
  <bpmn:process id="harmless" isExecutable="true" camunda:versionTag="1.0.3"
                camunda:isStartableInTasklist="false" camunda:historyTimeToLive="P30D">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market" camunda:priority="80"
                   camunda:followUpDate="${dateTime().plusDays(1).toDate()}" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="Call_archive" />
    <bpmn:callActivity id="Call_archive" calledElement="archive" camunda:calledElementBinding="deployment" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Call_archive" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
  <bpmn:process id="archive" isExecutable="true">
    <bpmn:startEvent id="StartEvent_archive" />
    <bpmn:sequenceFlow id="Flow_a" sourceRef="StartEvent_archive" targetRef="EndEvent_archive" />
    <bpmn:endEvent id="EndEvent_archive" />
  </bpmn:process>
""")


def test_vendor_attributes_harmless_to_ignore_are_notes_and_the_model_runs(db, clock) -> None:
    process = next(
        p for p in validate_document(HARMLESS, "harmless.bpmn").processes if p.process_id == "harmless"
    )
    assert process.executable and not process.problems
    attributes = [n for n in process.notes if n["code"] != "implicit_call_mapping"]
    assert sorted((n["element_id"], n["message"].split("=")[0]) for n in attributes) == [
        ("Task_review", "camunda:followUpDate"),
        ("Task_review", "camunda:priority"),
        ("harmless", "camunda:historyTimeToLive"),
        ("harmless", "camunda:isStartableInTasklist"),
        ("harmless", "camunda:versionTag"),
    ]
    svc = WorkflowService(db, clock=clock)
    svc.deploy(HARMLESS, "harmless.bpmn", "designer")
    case = svc.start("harmless", {}, "applicant").instance_id
    complete(svc, db, case, "Task_review")
    assert status(db, case) == "completed"


@pytest.mark.parametrize(
    ("extension", "found"),
    [
        (
            '<camunda:properties><camunda:property name="sla" value="3" /></camunda:properties>',
            "ignored_extension",
        ),
        ("<zeebe:userTask />", "ignored_extension"),
        ('<zeebe:assignmentDefinition candidateGroups="market" />', "unsupported_extension"),
        ('<zeebe:formDefinition formKey="camunda-forms:bpmn:review" />', "unsupported_extension"),
        ('<flowable:customResource flowable:name="businessAdministrator" />', "unsupported_extension"),
        ('<camunda:errorEventDefinition id="e" expression="${failed}" />', "unsupported_extension"),
        ('<camunda:somethingNew value="1" />', "unsupported_extension"),
    ],
)
def test_vendor_extension_elements_are_executed_noted_or_reported(extension: str, found: str) -> None:
    data = model(f"""
  <bpmn:process id="extended" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market">
      <bpmn:extensionElements>{extension}</bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")
    (process,) = validate_document(data, "extended.bpmn").processes
    listed = process.notes if found == "ignored_extension" else process.problems
    assert [(p["element_id"], p["code"]) for p in listed] == [("Task_review", found)]
    assert process.executable is (found == "ignored_extension")


def test_a_process_level_starter_or_listener_extension_is_reported() -> None:
    data = model("""
  <bpmn:process id="starters" isExecutable="true">
    <bpmn:extensionElements>
      <camunda:potentialStarter>
        <camunda:resourceAssignmentExpression><camunda:formalExpression>group(window)</camunda:formalExpression>
        </camunda:resourceAssignmentExpression>
      </camunda:potentialStarter>
      <flowable:eventListener class="org.example.AuditListener" />
    </bpmn:extensionElements>
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")
    (process,) = validate_document(data, "starters.bpmn").processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [
        ("starters", "unsupported_extension"),
        ("starters", "unsupported_extension"),
    ]


# ---------------------------------------------------------------- resource roles

PERFORMERS = model("""
  <bpmn:collaboration id="Collaboration_1">
    <bpmn:participant id="Participant_1" processRef="performers" />
  </bpmn:collaboration>
  <bpmn:process id="performers" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_window" name="window">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_owners</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_performer</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_group</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_lane</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>EndEvent_1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_owners" />
    <bpmn:userTask id="Task_owners" name="审查">
      <bpmn:potentialOwner>
        <bpmn:resourceAssignmentExpression>
          <bpmn:formalExpression>user(kermit), group(market), group(health)</bpmn:formalExpression>
        </bpmn:resourceAssignmentExpression>
      </bpmn:potentialOwner>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_owners" targetRef="Task_performer" />
    <bpmn:userTask id="Task_performer" name="复核">
      <bpmn:humanPerformer>
        <bpmn:resourceAssignmentExpression>
          <bpmn:formalExpression>${reviewer}</bpmn:formalExpression>
        </bpmn:resourceAssignmentExpression>
      </bpmn:humanPerformer>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_performer" targetRef="Task_group" />
    <bpmn:userTask id="Task_group" name="决定" camunda:candidateUsers="director">
      <bpmn:potentialOwner>
        <bpmn:resourceAssignmentExpression>
          <bpmn:formalExpression>planning</bpmn:formalExpression>
        </bpmn:resourceAssignmentExpression>
      </bpmn:potentialOwner>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Task_group" targetRef="Task_lane" />
    <bpmn:userTask id="Task_lane" name="送达" />
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Task_lane" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")


def assignment(db, case: str, element_id: str) -> tuple[str, str, str | None]:
    [task] = [t for t in ready(db, case) if t["element_id"] == element_id]
    return task["candidate_groups"], task["candidate_users"], task["assignee"]


def test_potential_owner_and_human_performer_assign_the_task_before_the_lane(db, clock) -> None:
    (process,) = validate_document(PERFORMERS, "performers.bpmn").processes
    assert process.executable and not process.problems
    svc = WorkflowService(db, clock=clock)
    svc.deploy(PERFORMERS, "performers.bpmn", "designer")
    case = svc.start("performers", {"reviewer": "wangwu"}, "applicant").instance_id
    # user(..) a candidate user, group(..) a candidate group: not the lane "window"
    assert assignment(db, case, "Task_owners") == (",market,health,", ",kermit,", None)
    complete(svc, db, case, "Task_owners")
    assert assignment(db, case, "Task_performer")[2] == "wangwu"  # the human performer is the assignee
    complete(svc, db, case, "Task_performer", "wangwu")
    # a name without user(..) / group(..) is a group (Camunda's default), beside camunda:candidateUsers
    assert assignment(db, case, "Task_group") == (",planning,", ",director,", None)
    complete(svc, db, case, "Task_group")
    assert assignment(db, case, "Task_lane") == (",window,", "", None)  # no role: the lane assigns
    complete(svc, db, case, "Task_lane")
    assert status(db, case) == "completed"


@pytest.mark.parametrize(
    ("role", "code"),
    [
        (
            "<bpmn:potentialOwner><bpmn:resourceRef>Resource_clerk</bpmn:resourceRef></bpmn:potentialOwner>",
            "unsupported_assignment",
        ),
        (
            "<bpmn:humanPerformer><bpmn:resourceAssignmentExpression><bpmn:formalExpression>user(a), user(b)"
            "</bpmn:formalExpression></bpmn:resourceAssignmentExpression></bpmn:humanPerformer>",
            "bad_extension_value",
        ),
        (
            "<bpmn:performer><bpmn:resourceAssignmentExpression><bpmn:formalExpression>"
            "clerk</bpmn:formalExpression></bpmn:resourceAssignmentExpression></bpmn:performer>",
            "unsupported_assignment",
        ),
        (
            "<bpmn:potentialOwner><bpmn:resourceAssignmentExpression><bpmn:formalExpression>"
            "group(${dept}-x)</bpmn:formalExpression></bpmn:resourceAssignmentExpression></bpmn:potentialOwner>",
            "bad_group_placeholder",
        ),
    ],
)
def test_resource_roles_that_assign_nobody_are_problems_of_their_task(role: str, code: str) -> None:
    data = model(f"""
  <bpmn:resource id="Resource_clerk" name="clerk" />
  <bpmn:process id="roles" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market">{role}</bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")
    (process,) = validate_document(data, "roles.bpmn").processes
    assert not process.executable
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("Task_review", code)]
    assert all(p["line"] and p["message"] for p in process.problems)


# ---------------------------------------------------------------- conditional events, timer start events

PAID = model("""
  <bpmn:process id="pay_then_issue" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Gateway_fork" />
    <bpmn:parallelGateway id="Gateway_fork" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Gateway_fork" targetRef="Event_paid" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Gateway_fork" targetRef="Task_cashier" />
    <bpmn:intermediateCatchEvent id="Event_paid" name="已缴费">
      <bpmn:conditionalEventDefinition camunda:variableName="paid">
        <bpmn:condition xsi:type="bpmn:tFormalExpression">${paid}</bpmn:condition>
      </bpmn:conditionalEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Event_paid" targetRef="Task_issue" />
    <bpmn:userTask id="Task_issue" camunda:candidateGroups="market" />
    <bpmn:boundaryEvent id="Event_withdrawn" attachedToRef="Task_issue">
      <bpmn:conditionalEventDefinition>
        <bpmn:condition xsi:type="bpmn:tFormalExpression">${withdrawn}</bpmn:condition>
      </bpmn:conditionalEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Task_issue" targetRef="EndEvent_issued" />
    <bpmn:sequenceFlow id="Flow_6" sourceRef="Event_withdrawn" targetRef="EndEvent_issued" />
    <bpmn:endEvent id="EndEvent_issued" />
    <bpmn:userTask id="Task_cashier" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="Flow_7" sourceRef="Task_cashier" targetRef="EndEvent_paid" />
    <bpmn:endEvent id="EndEvent_paid" />
  </bpmn:process>
""")


def test_a_conditional_event_is_reported_on_its_element_not_left_waiting_for_ever(db, clock) -> None:
    """Camunda 7 fires Event_paid once the cashier's branch sets paid; the library evaluated its condition
    on arrival, against that branch's own data, and never again: the case stopped with no task open."""
    (process,) = validate_document(PAID, "pay_then_issue.bpmn").processes
    assert not process.executable
    assert sorted((p["element_id"], p["code"]) for p in process.problems) == [
        ("Event_paid", "unsupported_attribute"),  # camunda:variableName: changes of that variable only
        ("Event_paid", "unsupported_element"),
        ("Event_withdrawn", "unsupported_element"),
    ]
    assert all(p["line"] for p in process.problems)
    assert all("条件" in p["message"] for p in process.problems if p["code"] == "unsupported_element")
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidModel):
        svc.deploy(PAID, "pay_then_issue.bpmn", "designer")


def test_a_timer_start_event_of_a_process_is_reported_an_event_subprocess_timer_is_not() -> None:
    data = model("""
  <bpmn:process id="nightly" isExecutable="true">
    <bpmn:startEvent id="StartEvent_nightly">
      <bpmn:timerEventDefinition>
        <bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R/P1D</bpmn:timeCycle>
      </bpmn:timerEventDefinition>
    </bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_nightly" targetRef="Task_check" />
    <bpmn:userTask id="Task_check" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_check" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
  <bpmn:process id="reminded" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_r1" sourceRef="StartEvent_1" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="market" />
    <bpmn:sequenceFlow id="Flow_r2" sourceRef="Task_review" targetRef="EndEvent_r" />
    <bpmn:endEvent id="EndEvent_r" />
    <bpmn:subProcess id="Sub_remind" triggeredByEvent="true">
      <bpmn:startEvent id="StartEvent_remind" isInterrupting="false">
        <bpmn:timerEventDefinition>
          <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P3D</bpmn:timeDuration>
        </bpmn:timerEventDefinition>
      </bpmn:startEvent>
      <bpmn:sequenceFlow id="Flow_s1" sourceRef="StartEvent_remind" targetRef="EndEvent_remind" />
      <bpmn:endEvent id="EndEvent_remind" />
    </bpmn:subProcess>
  </bpmn:process>
""")
    reports = {p.process_id: p for p in validate_document(data, "timers.bpmn").processes}
    nightly = reports["nightly"]
    assert [(p["element_id"], p["code"]) for p in nightly.problems] == [
        ("StartEvent_nightly", "unsupported_element")
    ]
    assert "定时开始事件" in nightly.problems[0]["message"]
    assert reports["reminded"].executable, reports["reminded"].problems


def test_a_flow_node_named_like_the_engines_start_task_is_reported_not_failing_at_start(db, clock) -> None:
    data = ABSTRACT_TASK.replace(b'"StartEvent_1"', b'"Start"')
    (process,) = validate_document(data, "abstract_task.bpmn").processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("Start", "reserved_id")]
    assert "StartEvent_1" in process.problems[0]["message"] and process.problems[0]["line"]
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidModel):
        svc.deploy(data, "abstract_task.bpmn", "designer")


def _validated(body: str) -> list[tuple[str | None, str]]:
    (process,) = validate_document(model(body), "second_reading.bpmn").processes
    return [(p["element_id"], p["code"]) for p in process.problems]


def test_what_only_a_human_task_reads_on_a_plain_task_is_reported_not_dropped() -> None:
    """A bpmn:task passes through: ow:candidateGroups or a potentialOwner on it would have made an approval
    step vanish without a word (the case went straight on)."""
    owner = (
        "<bpmn:potentialOwner><bpmn:resourceAssignmentExpression><bpmn:formalExpression>group(market)"
        "</bpmn:formalExpression></bpmn:resourceAssignmentExpression></bpmn:potentialOwner>"
    )
    for task in (
        '<bpmn:task id="Review" ow:candidateGroups="market" ow:deadlineDays="5" ow:formKey="task.review"/>',
        f'<bpmn:task id="Review">{owner}</bpmn:task>',
        '<bpmn:scriptTask id="Review" ow:formKey="task.review">'
        "<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>",
    ):
        body = f"""<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="S"/>
<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Review"/>{task}
<bpmn:sequenceFlow id="f2" sourceRef="Review" targetRef="E"/><bpmn:endEvent id="E"/></bpmn:process>"""
        ow = 'xmlns:ow="http://onewindow.org/schema/bpmn"'
        with_ow = body.replace("<bpmn:process", f"<bpmn:process {ow}", 1)
        assert _validated(with_ow) == [("Review", "unsupported_attribute")], task


@pytest.mark.parametrize("element_id", ["End", "p.EndJoin"])
def test_a_task_named_like_the_engines_end_task_is_reported(element_id: str) -> None:
    body = f"""<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="S"/>
<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="{element_id}"/>
<bpmn:userTask id="{element_id}" camunda:candidateGroups="market"/>
<bpmn:sequenceFlow id="f2" sourceRef="{element_id}" targetRef="Done"/>
<bpmn:userTask id="Done" camunda:candidateGroups="market"/>
<bpmn:sequenceFlow id="f3" sourceRef="Done" targetRef="E"/><bpmn:endEvent id="E"/></bpmn:process>"""
    assert _validated(body) == [(element_id, "reserved_id")]


def test_a_flowable_modelers_defaults_are_accepted_and_two_human_performers_are_not() -> None:
    sub = """<bpmn:process id="sub" isExecutable="true"><bpmn:startEvent id="S2"/>
<bpmn:sequenceFlow id="g1" sourceRef="S2" targetRef="E2"/><bpmn:endEvent id="E2"/></bpmn:process>"""
    caller = """<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="S"/>
<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Call"/>
<bpmn:callActivity id="Call" calledElement="sub" flowable:calledElementType="key"
 flowable:useLocalScopeForOutParameters="false" flowable:skipExpression=""/>
<bpmn:sequenceFlow id="f2" sourceRef="Call" targetRef="E"/><bpmn:endEvent id="E"/></bpmn:process>"""
    report = validate_document(model(caller + sub), "flowable_call.bpmn")
    assert [(p.process_id, p.executable, p.problems) for p in report.processes] == [
        ("p", True, ()),
        ("sub", True, ()),
    ]
    performer = (
        "<bpmn:humanPerformer><bpmn:resourceAssignmentExpression><bpmn:formalExpression>{}"
        "</bpmn:formalExpression></bpmn:resourceAssignmentExpression></bpmn:humanPerformer>"
    )
    two = f"""<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="S"/>
<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="T"/>
<bpmn:userTask id="T">{performer.format("kermit")}{performer.format("gonzo")}</bpmn:userTask>
<bpmn:sequenceFlow id="f2" sourceRef="T" targetRef="E"/><bpmn:endEvent id="E"/></bpmn:process>"""
    assert _validated(two) == [("T", "bad_extension_value")]


# ---------------------------------------------------------------- Camunda 8 (FEEL)

CAMUNDA8_FEEL = model("""
  <bpmn:process id="zeebe_grant" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Gateway_amount" />
    <bpmn:exclusiveGateway id="Gateway_amount" default="Flow_small" />
    <bpmn:sequenceFlow id="Flow_large" sourceRef="Gateway_amount" targetRef="Event_cool_off">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">=amount &gt; 1000</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_small" sourceRef="Gateway_amount" targetRef="EndEvent_1" />
    <bpmn:intermediateCatchEvent id="Event_cool_off">
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">=duration("PT2H")</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Event_cool_off" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")


def test_a_camunda8_feel_expression_is_named_as_feel_not_as_a_syntax_error() -> None:
    """Camunda 8 writes every expression as FEEL with a leading ``=``. It was refused as a Python
    ``bad_expression`` / ``bad_timer`` with the text ``invalid syntax``: the designer was told their
    expression is malformed, not that this engine does not execute FEEL and what to write instead."""
    (process,) = validate_document(CAMUNDA8_FEEL, "zeebe.bpmn").processes
    found = [(p["element_id"], p["code"]) for p in process.problems]
    assert found == [("Flow_large", "unsupported_language"), ("Event_cool_off", "unsupported_language")]
    assert all("FEEL" in p["message"] and "JUEL" in p["message"] for p in process.problems)
    assert all("invalid syntax" not in p["message"] for p in process.problems)


def test_a_signal_start_event_of_a_process_is_reported_an_event_subprocess_signal_is_not(db, clock) -> None:
    """A signal here passes only inside one instance, and nothing starts instances on a signal: an instance
    started by hand waited at its signal start event for ever, with nothing pending to show for it. Camunda 7
    starts a new instance per signal thrown. An event sub-process's signal start runs (a signal thrown in the
    same instance)."""
    data = model("""
  <bpmn:signal id="Signal_alarm" name="alarm" />
  <bpmn:process id="on_alarm" isExecutable="true">
    <bpmn:startEvent id="StartEvent_alarm">
      <bpmn:signalEventDefinition signalRef="Signal_alarm" />
    </bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_alarm" targetRef="Task_check" />
    <bpmn:userTask id="Task_check" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_check" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1" />
  </bpmn:process>
""")
    (process,) = validate_document(data, "alarm.bpmn").processes
    found = [(p["element_id"], p["code"]) for p in process.problems]
    assert found == [("StartEvent_alarm", "unsupported_element")]
    assert "信号开始事件" in process.problems[0]["message"]
    svc = WorkflowService(db, clock=clock)
    with pytest.raises(InvalidModel):
        svc.deploy(data, "alarm.bpmn", "designer")
