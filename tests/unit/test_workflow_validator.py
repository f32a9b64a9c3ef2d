"""Per-element validation, extension attributes (ours, Camunda, lanes) and the MIWG corpus."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import InvalidInput, InvalidModel, UnsafeExpression
from engine.workflow import (
    Definition,
    Runtime,
    TaskMeta,
    load_definitions,
    validate_document,
    validate_documents,
)
from engine.workflow.checks import MAX_FLOW_NODES
from tests.unit.bpmn.models import document, flow, gateway_model, linear, mi_model, timer_model, user_task

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
    # a loop task without loopMaximum / loopCondition: the library's own refusal, with element and line,
    # in our words (engine.workflow.library_text)
    body = linear(user_task("t", 'ow:candidateGroups="g"', "<bpmn:standardLoopCharacteristics/>"), "t", "t")
    (process,) = validate_document(document(body)).processes
    assert not process.executable
    (problem,) = process.problems
    assert (problem["code"], problem["element_id"]) == ("bad_loop", "t")
    assert problem["line"] and "bpmn:userTask" in problem["message"] and "循环条件" in problem["message"]


def test_a_condition_on_a_parallel_gateways_flow_is_a_note_and_every_flow_is_taken() -> None:
    """BPMN 2.0 and Camunda 7 take every outgoing flow of a parallel gateway: its conditions are noted on
    their flows (``ignored_condition``), not run, and the model runs so."""
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "fork")
        + '<bpmn:parallelGateway id="fork"/>'
        + flow("fork", "a", "x > 100", "f_a")
        + flow("fork", "b", None, "f_b")
        + user_task("a")
        + user_task("b")
        + flow("a", "join")
        + flow("b", "join")
        + '<bpmn:parallelGateway id="join"/>'
        + flow("join", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    definition = load_definitions(document(body))["p"]
    (process,) = validate_document(document(body)).processes
    assert process.executable and not process.problems
    (note,) = process.notes
    assert (note["element_id"], note["code"]) == ("f_a", "ignored_condition") and "fork" in note["message"]
    runtime = Runtime.start(definition, {"x": 1}, datetime(2026, 3, 2, tzinfo=UTC))
    assert sorted(t.element_id for t in runtime.ready_tasks()) == ["a", "b"]
    racing = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "race")
        + '<bpmn:eventBasedGateway id="race"/>'
        + flow("race", "paid", "x > 100", "f_paid")
        + flow("race", "late", None, "f_late")
        + '<bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="m"/>'
        "</bpmn:intermediateCatchEvent>"
        + '<bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("paid", "end")
        + flow("late", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    (process,) = validate_document(document(racing, extra='<bpmn:message id="m" name="paid"/>')).processes
    (note,) = process.notes
    assert (note["element_id"], note["code"]) == ("f_paid", "ignored_condition") and "事件网关" in note[
        "message"
    ]


def test_implicit_split_and_conditional_flows_from_a_task_are_notes() -> None:
    body = linear(
        user_task("t") + flow("t", "a") + user_task("a") + flow("a", "end2") + '<bpmn:endEvent id="end2"/>',
        "t",
        "t",
    )
    (process,) = validate_document(document(body)).processes
    assert process.executable and not process.problems
    assert [(n["element_id"], n["code"]) for n in process.notes] == [("t", "implicit_parallel_split")]
    conditional = linear(user_task("t") + flow("t", "a", "x > 1", "f_if") + user_task("a"), "t", "a")
    (process,) = validate_document(document(conditional)).processes
    assert process.executable  # translated into an inclusive gateway after t, with a note
    assert [(n["element_id"], n["code"]) for n in process.notes] == [("t", "conditional_flows")]
    bad = linear(user_task("t") + flow("t", "a", "x >", "f_if") + user_task("a"), "t", "a")
    assert ("f_if", "bad_expression") in codes(document(bad))  # the flow's own problem, on the flow


def test_multi_instance_faults_the_model_shows_are_caught_at_deploy() -> None:
    for loop, code in [
        ("<bpmn:loopCardinality>[1, 2]</bpmn:loopCardinality>", "bad_cardinality"),
        ("<bpmn:loopCardinality>'3'</bpmn:loopCardinality>", "bad_cardinality"),
        ("<bpmn:loopCardinality>-1</bpmn:loopCardinality>", "bad_cardinality"),
        ("<bpmn:loopDataInputRef>people</bpmn:loopDataInputRef><bpmn:inputDataItem/>", "bad_multi_instance"),
        (
            "<bpmn:loopDataInputRef>people</bpmn:loopDataInputRef><bpmn:inputDataItem name='p'/>",
            "bad_multi_instance",
        ),
        (
            "<bpmn:loopDataInputRef>people</bpmn:loopDataInputRef><bpmn:inputDataItem id='p'/>"
            "<bpmn:loopDataOutputRef>out</bpmn:loopDataOutputRef>",
            "bad_multi_instance",
        ),
    ]:
        found = problems_of(mi_model(loop))
        assert [(p["element_id"], p["code"]) for p in found] == [("review", code)], loop
        assert found[0]["line"] and found[0]["message"]
    for fine in (
        "<bpmn:loopCardinality>3</bpmn:loopCardinality>",
        "<bpmn:loopCardinality>n</bpmn:loopCardinality>",
    ):
        assert validate_document(mi_model(fine)).executable


def test_messages_without_name_or_ref() -> None:
    nameless = '<bpmn:message id="Msg_1"/>'
    catch = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="Msg_1"/>'
        "</bpmn:intermediateCatchEvent>" + flow("wait", "t") + user_task("t")
    )
    model = document(linear(catch, "wait", "t"), extra=nameless)
    assert validate_document(model).executable  # was TypeError(... 'node') from inside the library
    assert load_definitions(model)["p"].message_names == ("Msg_1",)
    unnamed = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent>'
    )
    found = problems_of(document(linear(unnamed + flow("wait", "t") + user_task("t"), "wait", "t")))
    assert [(p["element_id"], p["code"]) for p in found] == [("wait", "missing_message")]


def test_lanes_around_an_embedded_subprocess_assign_its_tasks() -> None:
    lanes = (
        '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="审批科"><bpmn:flowNodeRef>sub</bpmn:flowNodeRef>'
        "</bpmn:lane></bpmn:laneSet>"
    )
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s1"/>'
        + flow("s1", "inner")
        + user_task("inner", "")
        + flow("inner", "e1")
        + '<bpmn:endEvent id="e1"/></bpmn:subProcess>'
    )
    model = document(lanes + linear(sub, "sub", "sub"))
    assert validate_document(model).executable
    assert load_definitions(model)["p"].task_meta["inner"].candidate_groups == ("审批科",)


def _chain(n: int) -> bytes:
    body = '<bpmn:startEvent id="start"/>' + flow("start", "t0")
    for i in range(n):
        body += user_task(f"t{i}") + flow(f"t{i}", f"t{i + 1}" if i < n - 1 else "end")
    return document(body + '<bpmn:endEvent id="end"/>')


def test_a_long_sequential_model_parses_and_a_too_large_one_is_a_problem() -> None:
    assert validate_document(_chain(600)).executable  # 490 tasks hit RecursionError before
    assert load_definitions(_chain(600))["p"].size > 600
    found = problems_of(_chain(MAX_FLOW_NODES + 1))
    assert [(p["element_id"], p["code"]) for p in found] == [("p", "model_too_large")]


def test_a_refused_deployment_names_every_problem_and_gateways_are_named() -> None:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "yes", "__import__('os')", "f_yes")
        + flow("gw", "no", None, "f_no")
        + user_task("yes", "")
        + user_task("no")
        + flow("yes", "end")
        + flow("no", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    with pytest.raises(UnsafeExpression) as info:
        load_definitions(document(body))
    assert {(p["element_id"], p["code"]) for p in info.value.detail["problems"]} == {
        ("f_yes", "unsafe_expression"),
        ("yes", "unassigned_user_task"),
    }
    assert "网关 gw" in info.value.detail["problems"][0]["message"]


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


@pytest.mark.skipif(not MIWG.is_dir() and not ON_CI, reason="shared/conformance/miwg is not present")
def test_miwg_corpus_as_one_set_and_loading_refuses_with_typed_errors() -> None:
    """The whole corpus as one deployment (C.9.0 calls C.9.2, which calls C.9.1), then each file loaded:
    every refusal is typed and names its problems; nothing untyped escapes."""
    documents = [(path.read_bytes(), path.name) for path in sorted(MIWG.glob("*.bpmn"))]
    reports = {r.filename: r for r in validate_documents(documents)}
    assert set(reports) == {name for _, name in documents}
    in_set = [
        p["message"]
        for proc in reports["C.9.0.bpmn"].processes
        for p in proc.problems
        if p["element_id"] == "Activity_ManualCheck"
    ]
    assert not any("不在本文档中" in message for message in in_set)  # found in C.9.2 of the same set
    for data, name in documents:
        try:
            load_definitions(data, name)
        except (InvalidModel, UnsafeExpression) as err:
            assert err.detail.get("problems") is not None or err.code == "no_executable_process", name


def test_collections_the_model_or_the_data_get_wrong_are_named() -> None:
    # a literal where a data name is expected: refused at deploy
    literal = "<bpmn:loopDataInputRef>5</bpmn:loopDataInputRef><bpmn:inputDataItem id='p'/>"
    assert ("review", "bad_expression") in codes(mi_model(literal))
    # a collection only the data gets wrong: a typed error naming it when the task starts, not a TypeError
    model = load_definitions(
        mi_model("<bpmn:loopDataInputRef>people</bpmn:loopDataInputRef><bpmn:inputDataItem id='p'/>")
    )
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for data, code in [({}, "missing_collection"), ({"people": 5}, "bad_collection")]:
        with pytest.raises(InvalidInput) as info:
            Runtime.start(model["p"], data, now)
        assert (info.value.code, info.value.detail["element_id"], info.value.detail["collection"]) == (
            code,
            "review",
            "people",
        )


def test_branches_that_multiply_without_a_join_are_refused_at_deploy_not_xor_branches() -> None:
    """Thirty stages of two plain flows each ask the library to predict 2^30 tasks when an instance is
    made, before any budget can stop it; branches of exclusive gateways do not multiply."""
    from tests.unit.test_command_budget import doubling

    assert validate_document(doubling(12)).processes[0].executable
    assert ("t14", "tokens_multiply") in codes(doubling(30))
    diamonds = '<bpmn:startEvent id="start"/>' + flow("start", "x0")
    for i in range(30):
        diamonds += f'<bpmn:exclusiveGateway id="x{i}" default="fa{i}"/>'
        diamonds += flow(f"x{i}", f"a{i}", None, f"fa{i}") + flow(f"x{i}", f"b{i}", "go", f"fb{i}")
        diamonds += user_task(f"a{i}") + user_task(f"b{i}") + f'<bpmn:exclusiveGateway id="m{i}"/>'
        diamonds += flow(f"a{i}", f"m{i}") + flow(f"b{i}", f"m{i}") + flow(f"m{i}", f"x{i + 1}")
    diamonds += '<bpmn:endEvent id="x30"/>'
    assert not problems_of(document(diamonds))


def test_a_call_activity_that_calls_back_into_its_own_process_is_refused() -> None:
    def calling(process_id: str, called: str) -> bytes:
        body = linear(
            f'<bpmn:callActivity id="call_{called}" calledElement="{called}"/>',
            f"call_{called}",
            f"call_{called}",
        )
        return document(body, process_id=process_id)

    assert ("call_p", "recursive_call") in codes(calling("p", "p"))
    a, b = validate_documents([(calling("a", "b"), "a.bpmn"), (calling("b", "a"), "b.bpmn")])
    assert {p["code"] for p in a.processes[0].problems} >= {"recursive_call"}
    assert {p["code"] for p in b.processes[0].problems} >= {"recursive_call"}
    leaf = document(linear(user_task("work"), "work", "work"), process_id="c")
    caller, called = validate_documents([(calling("a", "c"), "a.bpmn"), (leaf, "c.bpmn")])
    assert caller.processes[0].executable and called.processes[0].executable


def test_references_that_point_nowhere_are_problems_of_their_elements_not_the_librarys_text() -> None:
    """A missing error, signal or escalation definition was the library's TypeError; a boundary event
    attached to nothing, or a default flow that is not the element's, was dropped and the model run."""
    task = user_task("work")

    def with_boundary(inner: str, attached: str = "work") -> bytes:
        boundary = f'<bpmn:boundaryEvent id="b" attachedToRef="{attached}">{inner}</bpmn:boundaryEvent>'
        return document(linear(task + boundary + flow("b", "end", None, "f_b"), "work", "work"))

    assert ("b", "missing_error") in codes(with_boundary('<bpmn:errorEventDefinition errorRef="nope"/>'))
    assert ("b", "missing_signal") in codes(with_boundary('<bpmn:signalEventDefinition signalRef="nope"/>'))
    escalation = '<bpmn:escalationEventDefinition escalationRef="nope"/>'
    assert ("b", "missing_escalation") in codes(with_boundary(escalation))
    assert ("b", "missing_event_definition") in codes(with_boundary(""))
    timer = (
        "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"
    )
    assert ("b", "bad_attachment") in codes(with_boundary(timer, attached="nowhere"))
    assert not problems_of(with_boundary(timer))
    gateway = (
        '<bpmn:startEvent id="start"/>' + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="nope"/>'
        + flow("gw", "a", "x == 1", "f_a") + flow("gw", "b2", "x == 2", "f_b2")
        + user_task("a") + user_task("b2") + flow("a", "end") + flow("b2", "end")
        + '<bpmn:endEvent id="end"/>'
    )  # fmt: skip
    assert ("gw", "bad_default") in codes(document(gateway))
    dangling = document(linear(task, "work", "work") + flow("work", "ghost", None, "f_ghost"))
    assert ("f_ghost", "missing_flow_node") in codes(dangling)


def test_a_message_name_written_as_an_expression_is_reported_not_matched_literally() -> None:
    """Camunda resolves ``paid_${orderId}`` for each instance; matched here as the literal text, the
    message never arrived."""
    catch = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m"/>'
        "</bpmn:intermediateCatchEvent>"
    )
    model = document(linear(catch, "wait", "wait"), extra='<bpmn:message id="m" name="paid_${orderId}"/>')
    assert ("wait", "unsupported_juel") in codes(model)
    fixed = document(linear(catch, "wait", "wait"), extra='<bpmn:message id="m" name="paid"/>')
    assert ("wait", "unsupported_juel") not in codes(fixed)


@pytest.mark.parametrize("days", ["2.5", "0.5", "1e-3", "1001", "3650", "-1", "nan", "inf"])
def test_a_task_limit_in_working_days_is_a_whole_number_the_calendar_can_count(days: str) -> None:
    """ow:deadlineDays is whole working days (1.5 was cut to 1, 0.5 to a same-day limit, silently) and at
    most MAX_WORKING_DAYS, the count the working-day helpers take: 3650 deployed and then failed every
    command that opened the task, its deadline lying past the years the calendar answers for."""
    from engine.workflow.helpers import MAX_WORKING_DAYS

    attrs = f'ow:candidateGroups="g" ow:deadlineDays="{days}"'
    assert ("t", "bad_extension_value") in codes(document(linear(user_task("t", attrs), "t", "t")))
    top = f'ow:candidateGroups="g" ow:deadlineDays="{MAX_WORKING_DAYS}"'
    model = document(linear(user_task("t", top), "t", "t"))
    assert validate_document(model).executable
    assert load_definitions(model)["p"].task_meta["t"].deadline_days == MAX_WORKING_DAYS


@pytest.mark.parametrize(
    ("expression", "kind"),
    [("P", "timeDuration"), ("PT", "timeDuration"), ("P1DT", "timeDuration"), ("-PT1H", "timeDuration"),
     ("P1D2H", "timeDuration"), ("2025-13-01T09:00:00", "timeDate"), ("R3/PT", "timeCycle")],
)  # fmt: skip
def test_a_malformed_iso_timer_is_refused_at_deploy(expression: str, kind: str) -> None:
    """``P`` was read as an empty duration (the timer fired at once); ``PT``, ``P1DT`` and ``-PT1H`` as data
    names, failing the step with ``变量 PT 没有设置`` when the timer was reached."""
    (process,) = validate_document(timer_model(expression, kind)).processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("wait", "bad_timer")]
    assert "ISO 8601" in process.problems[0]["message"]


def test_a_computed_empty_duration_is_refused_when_the_timer_is_reached() -> None:
    definition = load_definitions(timer_model("'P' + suffix"))["p"]
    with pytest.raises(InvalidInput) as info:
        Runtime.start(definition, {"suffix": ""}, datetime(2025, 3, 3, 1, 0, tzinfo=UTC))
    assert (info.value.code, info.value.detail["element_id"]) == ("bad_timer_value", "wait")


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ("amount ＞ 1000", "全角"),  # a full-width sign typed with a Chinese input method
        ("kind == “A”", "全角"),
        ("(amount > 1000", "没有闭合"),
        ("amount > 010", "不能以 0 开头"),
        ("amount >", "语法无效"),
    ],
)
def test_a_syntax_error_is_told_in_chinese_with_its_column(condition: str, said: str) -> None:
    """The problem carried Python's English text (``invalid character '＞' (U+FF1E)``, ``leading zeros in
    decimal integer literals are not permitted; use an 0o prefix for octal integers``)."""
    [problem] = [p for p in problems_of(gateway_model(condition)) if p["element_id"] == "f_yes"]
    assert problem["code"] == "bad_expression" and said in problem["message"]
    assert not re.search(r"[A-Za-z]{3,}", problem["message"].split("：", 1)[1]), problem["message"]
