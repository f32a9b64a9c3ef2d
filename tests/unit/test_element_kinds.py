"""One small model per BPMN element kind the conformance table in the README calls supported, run on the
workflow adapter with the result BPMN 2.0 gives; and the kinds it calls reported, refused per element."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.workflow import Runtime, load_definitions, validate_document
from tests.unit.bpmn.models import document, flow, linear, user_task

NOW = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)


def started(body: str, data: dict | None = None) -> Runtime:
    return Runtime.start(load_definitions(document(body))["p"], data or {}, NOW)


def ready(rt: Runtime) -> list[str]:
    return sorted(t.element_id for t in rt.ready_tasks())


def complete(rt: Runtime, element_id: str, **data: object) -> None:
    [task] = [t for t in rt.ready_tasks() if t.element_id == element_id]
    rt.complete(task.task_id, data, NOW)


def test_parallel_gateway_splits_and_joins() -> None:
    body = (
        '<bpmn:startEvent id="start"/>' + flow("start", "split") + '<bpmn:parallelGateway id="split"/>'
        + flow("split", "a") + flow("split", "b") + user_task("a") + user_task("b")
        + flow("a", "join") + flow("b", "join") + '<bpmn:parallelGateway id="join"/>'
        + flow("join", "end") + '<bpmn:endEvent id="end"/>'
    )  # fmt: skip
    rt = started(body)
    assert ready(rt) == ["a", "b"]
    complete(rt, "a")
    assert ready(rt) == ["b"] and not rt.completed
    complete(rt, "b")
    assert rt.completed


def test_inclusive_gateway_takes_every_true_flow_with_juel_conditions() -> None:
    body = (
        '<bpmn:startEvent id="start"/>' + flow("start", "split")
        + '<bpmn:inclusiveGateway id="split" default="f_none"/>'
        + flow("split", "fire", "${fire_check}", "f_fire")
        + flow("split", "health", "${food && !small}", "f_h")
        + flow("split", "join", None, "f_none")
        + user_task("fire") + user_task("health") + flow("fire", "join") + flow("health", "join")
        + '<bpmn:inclusiveGateway id="join"/>' + flow("join", "end") + '<bpmn:endEvent id="end"/>'
    )  # fmt: skip
    rt = started(body, {"fire_check": True, "food": True, "small": False})
    assert ready(rt) == ["fire", "health"]
    complete(rt, "fire")
    assert not rt.completed
    complete(rt, "health")
    assert rt.completed
    assert started(body, {"fire_check": False, "food": False, "small": True}).completed  # the default flow


def test_event_based_gateway_takes_the_first_event() -> None:
    body = (
        '<bpmn:startEvent id="start"/>' + flow("start", "gw")
        + '<bpmn:eventBasedGateway id="gw"/>' + flow("gw", "pay") + flow("gw", "late")
        + '<bpmn:intermediateCatchEvent id="pay"><bpmn:messageEventDefinition messageRef="m_paid"/>'
        "</bpmn:intermediateCatchEvent>"
        + '<bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("pay", "done") + flow("late", "chase") + user_task("done") + user_task("chase")
        + flow("done", "end") + flow("chase", "end") + '<bpmn:endEvent id="end"/>'
    )  # fmt: skip
    xml = document(body, extra='<bpmn:message id="m_paid" name="paid"/>')
    rt = Runtime.start(load_definitions(xml)["p"], {}, NOW)
    assert len(rt.pending_timers()) == 1  # the gateway waits for the message and the timer at once
    assert rt.deliver_message("paid", {"amount": 1}, NOW)
    assert ready(rt) == ["done"] and rt.pending_timers() == []


def test_signal_error_and_escalation_events() -> None:
    extra = (
        '<bpmn:signal id="s_go" name="go"/><bpmn:error id="e_bad" errorCode="BAD"/>'
        '<bpmn:escalation id="x_up" escalationCode="UP"/>'
    )
    body = (
        '<bpmn:startEvent id="start"/>' + flow("start", "split") + '<bpmn:parallelGateway id="split"/>'
        + flow("split", "throw") + flow("split", "wait")
        + '<bpmn:intermediateThrowEvent id="throw"><bpmn:signalEventDefinition signalRef="s_go"/>'
        "</bpmn:intermediateThrowEvent>" + flow("throw", "sub")
        + '<bpmn:intermediateCatchEvent id="wait"><bpmn:signalEventDefinition signalRef="s_go"/>'
        "</bpmn:intermediateCatchEvent>" + flow("wait", "signalled") + user_task("signalled")
        + flow("signalled", "end_s") + '<bpmn:endEvent id="end_s"/>'
        + '<bpmn:subProcess id="sub"><bpmn:startEvent id="s1"/>' + flow("s1", "check") + user_task("check")
        + flow("check", "x_gw") + '<bpmn:exclusiveGateway id="x_gw" default="f_ok"/>'
        + flow("x_gw", "fail", "bad", "f_bad") + flow("x_gw", "up", "escalate", "f_up")
        + flow("x_gw", "s_end", None, "f_ok") + '<bpmn:endEvent id="s_end"/>'
        + '<bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="e_bad"/></bpmn:endEvent>'
        + '<bpmn:endEvent id="up"><bpmn:escalationEventDefinition escalationRef="x_up"/></bpmn:endEvent>'
        + "</bpmn:subProcess>"
        + '<bpmn:boundaryEvent id="on_error" attachedToRef="sub">'
        '<bpmn:errorEventDefinition errorRef="e_bad"/></bpmn:boundaryEvent>'
        + flow("on_error", "fix") + user_task("fix") + flow("fix", "end_e")
        + '<bpmn:endEvent id="end_e"/>'
        + '<bpmn:boundaryEvent id="on_up" attachedToRef="sub"><bpmn:escalationEventDefinition '
        'escalationRef="x_up"/></bpmn:boundaryEvent>' + flow("on_up", "boss") + user_task("boss")
        + flow("boss", "end_x") + '<bpmn:endEvent id="end_x"/>'
        + flow("sub", "end_ok") + '<bpmn:endEvent id="end_ok"/>'
    )  # fmt: skip
    xml = document(body, extra=extra)
    definition = load_definitions(xml)["p"]
    rt = Runtime.start(definition, {"bad": True, "escalate": False}, NOW)
    assert ready(rt) == ["check", "signalled"]  # the thrown signal reached the catch event
    complete(rt, "check")
    assert ready(rt) == ["fix", "signalled"]  # the error end event ended the subprocess into on_error
    rt = Runtime.start(definition, {"bad": False, "escalate": True}, NOW)
    complete(rt, "check")
    assert "boss" in ready(rt)  # the escalation end event reached its boundary event


def test_standard_loop_with_a_juel_loop_condition() -> None:
    body = linear(
        user_task(
            "review",
            inner='<bpmn:standardLoopCharacteristics testBefore="false">'
            "<bpmn:loopCondition>${rounds lt 3}</bpmn:loopCondition></bpmn:standardLoopCharacteristics>",
        ),
        "review",
        "review",
    )
    rt = started(body, {"rounds": 0})
    for round_ in (1, 2, 3):
        assert ready(rt) == ["review"]
        complete(rt, "review", rounds=round_)
    assert rt.completed


def test_embedded_subprocess_and_call_activity_in_the_same_file() -> None:
    called = (
        '<bpmn:process id="expert" isExecutable="true"><bpmn:startEvent id="e1"/>'
        + flow("e1", "opinion") + user_task("opinion") + flow("opinion", "e2") + '<bpmn:endEvent id="e2"/>'
        + "</bpmn:process>"
    )  # fmt: skip
    body = linear(
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s1"/>' + flow("s1", "inner") + user_task("inner")
        + flow("inner", "s2") + '<bpmn:endEvent id="s2"/></bpmn:subProcess>' + flow("sub", "call")
        + '<bpmn:callActivity id="call" calledElement="expert"/>',
        "sub",
        "call",
    )  # fmt: skip
    rt = Runtime.start(load_definitions(document(body, extra=called))["p"], {}, NOW)
    complete(rt, "inner", note="ok")
    complete(rt, "opinion", opinion="同意")
    assert rt.completed and rt.data["opinion"] == "同意"


@pytest.mark.parametrize(
    ("inner", "verdict"),
    [
        ('<camunda:in variables="all"/><camunda:out variables="all"/>', None),
        ('<camunda:in source="a" target="b"/>', None),
        ('<camunda:in variables="all" local="true"/>', "unsupported_extension"),
    ],
)
def test_camunda_in_out_on_a_call_activity(inner: str, verdict: str | None) -> None:
    called = (
        '<bpmn:process id="expert" isExecutable="true"><bpmn:startEvent id="e1"/>' + flow("e1", "e2")
        + '<bpmn:endEvent id="e2"/></bpmn:process>'
    )  # fmt: skip
    body = linear(
        f'<bpmn:callActivity id="call" calledElement="expert"><bpmn:extensionElements>{inner}'
        "</bpmn:extensionElements></bpmn:callActivity>",
        "call",
        "call",
    )
    report = validate_document(document(body, extra=called))
    process = next(p for p in report.processes if p.process_id == "p")
    assert [(p["element_id"], p["code"]) for p in process.problems] == (
        [("call", verdict)] if verdict else []
    )


@pytest.mark.parametrize(
    "element",
    [
        '<bpmn:serviceTask id="x" camunda:class="org.example.Mail"/>',
        '<bpmn:businessRuleTask id="x" camunda:decisionRef="fees"/>',
        '<bpmn:intermediateThrowEvent id="x"><bpmn:linkEventDefinition name="l"/>'
        "</bpmn:intermediateThrowEvent>",
    ],
)
def test_kinds_without_an_implementation_are_reported_on_their_element(element: str) -> None:
    (process,) = validate_document(document(linear(element, "x", "x"))).processes
    assert not process.executable
    assert ("x", "unsupported_element") in {(p["element_id"], p["code"]) for p in process.problems}
