"""Per-element validation, extension attributes (ours, Camunda, lanes) and the MIWG corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import InvalidModel
from engine.workflow import Definition, TaskMeta, load_definitions, validate_document
from tests.unit.bpmn.models import document, flow, gateway_model, linear, timer_model, user_task

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # on CI the corpus must be there
MIWG = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "miwg"


def problems_of(model: bytes) -> list[dict]:
    report = validate_document(model)
    return [dict(p) for process in report.processes for p in process.problems] + [
        dict(p) for p in report.document_problems
    ]


def codes(model: bytes) -> set[tuple[str | None, str]]:
    return {(p["element_id"], p["code"]) for p in problems_of(model)}


def test_extension_attributes_ours_camunda_and_lanes() -> None:
    body = (
        '<bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="窗口"><bpmn:flowNodeRef>by_lane</bpmn:flowNodeRef>'
        "<bpmn:flowNodeRef>ours</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>"
        + linear(
            user_task(
                "ours",
                'ow:candidateGroups="审批科, 窗口" ow:candidateUsers="u1,u2" ow:assignee="u1" '
                'ow:formKey="f.json" '
                'ow:deadlineDays="3" ow:warnRatio="0.5" ow:clock="legal" ow:suspendsCaseClock="true" '
                'camunda:candidateGroups="ignored" vendor:whatever="x"',
                "<bpmn:extensionElements><vendor:thing a='1'/></bpmn:extensionElements>",
            )
            + flow("ours", "cam")
            + user_task(
                "cam",
                'camunda:candidateGroups="a,b" camunda:assignee="zhang" camunda:formKey="k" '
                'camunda:dueDate="${add_working_days(today(), 2)}" ow:deadlineHours="4"',
            )
            + flow("cam", "by_lane")
            + user_task("by_lane", "")
            + flow("by_lane", "manual")
            + '<bpmn:manualTask id="manual" name="纸质归档" camunda:candidateUsers="li"/>',
            "ours",
            "manual",
        )
    )
    model = document(body)
    assert validate_document(model).executable
    meta = load_definitions(model)["p"].task_meta
    assert meta["ours"] == TaskMeta(
        element_id="ours",
        name="ours",
        candidate_groups=("审批科", "窗口"),
        candidate_users=("u1", "u2"),
        assignee="u1",
        form_key="f.json",
        deadline_days=3.0,
        warn_ratio=0.5,
        clock="legal",
        suspends_case_clock=True,
        lane="窗口",
    )
    cam = meta["cam"]
    assert (cam.candidate_groups, cam.assignee, cam.form_key) == (("a", "b"), "zhang", "k")
    assert cam.due_expression == "${add_working_days(today(), 2)}"
    assert (cam.deadline_hours, cam.warn_ratio, cam.clock) == (4.0, 0.8, "task")
    assert meta["by_lane"].candidate_groups == ("窗口",)
    assert meta["by_lane"].warn_ratio is None
    assert meta["manual"].candidate_users == ("li",)


def test_task_meta_survives_spec_json() -> None:
    model = document(
        linear(user_task("t", 'ow:candidateGroups="g" ow:deadlineDays="2" ow:clock="promised"'), "t", "t")
    )
    definition = load_definitions(model)["p"]
    again = Definition.from_spec_json(definition.spec_json())
    assert again.task_meta == definition.task_meta
    assert again.task_meta["t"].clock == "promised"
    assert again.process_id == "p" and again.name == "测试流程"


def test_problems_per_element_with_codes_and_lines() -> None:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw"/>'
        + flow("gw", "t1", "x > 1", "f_cond")
        + flow("gw", "t2", None, "f_nocond")
        + user_task("t1", "")
        + user_task("t2", 'ow:deadlineDays="abc" ow:clock="sometimes"')
        + '<bpmn:complexGateway id="cx"/>'
        + '<bpmn:intermediateCatchEvent id="msg"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent>'
        + '<bpmn:intermediateCatchEvent id="cond"><bpmn:conditionalEventDefinition/>'
        + "</bpmn:intermediateCatchEvent>"
        + '<bpmn:intermediateCatchEvent id="tm"><bpmn:timerEventDefinition/></bpmn:intermediateCatchEvent>'
        + '<bpmn:intermediateCatchEvent id="tm2"><bpmn:timerEventDefinition><bpmn:timeDuration>in three days'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + '<bpmn:callActivity id="call" calledElement="nowhere"/>'
        + '<bpmn:businessRuleTask id="brt"/>'
        + flow("t1", "end")
        + flow("t2", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    found = codes(document(body))
    for expected in [
        ("f_nocond", "missing_condition"),
        ("t1", "unassigned_user_task"),
        ("t2", "bad_extension_value"),
        ("cx", "unsupported_element"),
        ("msg", "missing_message"),
        ("cond", "missing_condition"),
        ("tm", "bad_timer"),
        ("tm2", "bad_timer"),
        ("call", "unknown_called_process"),
        ("brt", "unsupported_element"),
    ]:
        assert expected in found, expected
    assert ("f_cond", "missing_condition") not in found
    assert all(p["line"] for p in problems_of(document(body)))
    assert all(p["message"] for p in problems_of(document(body)))
    with pytest.raises(InvalidModel) as info:
        load_definitions(document(body))
    assert {p["element_id"] for p in info.value.problems} >= {"f_nocond", "cx", "call"}


def test_not_executable_and_syntax_error() -> None:
    report = validate_document(document(linear(user_task("t"), "t", "t"), executable="false"))
    (process,) = report.processes
    assert not process.executable
    assert process.problems[0]["code"] == "not_executable"
    with pytest.raises(InvalidModel):
        load_definitions(document(linear(user_task("t"), "t", "t"), executable="false"))
    assert ("f_yes", "bad_expression") in codes(gateway_model("amount >"))


def test_timer_literals_and_expressions_accepted() -> None:
    for expression, kind in [
        ("P3D", "timeDuration"),
        ("PT2H", "timeDuration"),
        ("days(limit)", "timeDuration"),
        ("2025-01-01T09:00:00+08:00", "timeDate"),
        ("working_deadline(received, 5)", "timeDate"),
        ("R3/PT1H", "timeCycle"),
    ]:
        assert validate_document(timer_model(expression, kind)).executable, expression


def test_spiff_validation_errors_become_problems() -> None:
    # a plain task with two unconditional outgoing flows: SpiffWorkflow refuses implicit splits
    body = linear(
        user_task("t") + flow("t", "a") + user_task("a") + flow("a", "end2") + '<bpmn:endEvent id="end2"/>',
        "t",
        "t",
    )
    (process,) = validate_document(document(body)).processes
    assert not process.executable
    (problem,) = process.problems
    assert problem["code"] == "invalid_element"
    assert problem["element_id"] == "t"
    assert problem["line"]


@pytest.mark.skipif(not MIWG.is_dir() and not ON_CI, reason="shared/conformance/miwg is not present")
def test_miwg_corpus_validates_without_traceback() -> None:
    files = sorted(MIWG.glob("*.bpmn"))
    assert files
    for path in files:
        report = validate_document(path.read_bytes(), path.name)
        assert report.processes, path.name
        for process in report.processes:
            if not process.executable:
                assert process.problems or report.document_problems, (path.name, process.process_id)
            for problem in process.problems:
                assert problem["code"] and problem["message"], problem
