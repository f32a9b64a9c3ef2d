"""Shapes BPMN forbids (``engine.workflow.shapes``): each a coded problem of its element, in Chinese, never
the library's English parse error or a traceback."""

from __future__ import annotations

import re

import pytest

from engine.errors import InvalidModel
from engine.workflow import load_definitions, validate_document
from tests.unit.bpmn.models import document, flow, linear, user_task

STAGE = (
    '<bpmn:startEvent id="stage_start"/>'
    + flow("stage_start", "review")
    + user_task("review")
    + flow("review", "stage_end")
    + '<bpmn:endEvent id="stage_end"/>'
)
MESSAGE = '<bpmn:messageEventDefinition messageRef="m"/>'
EXTRA = '<bpmn:message id="m" name="withdraw"/>'


NO_END = STAGE.replace(flow("review", "stage_end") + '<bpmn:endEvent id="stage_end"/>', "")
NO_START = STAGE.replace('<bpmn:startEvent id="stage_start"/>' + flow("stage_start", "review"), "")


def staged(inner: str = STAGE, attrs: str = "", outside: str = "", tag: str = "subProcess") -> bytes:
    """A start event, the embedded sub-process ``stage`` (a ``tag``) holding ``inner``, an end event."""
    body = f'<bpmn:{tag} id="stage"{attrs}>{inner}</bpmn:{tag}>{outside}'
    return document(linear(body, "stage", "stage"), extra=EXTRA)


def event_subprocess(inner: str) -> bytes:
    """A review with the event sub-process ``handler`` (holding ``inner``) beside it."""
    body = linear(user_task("work"), "work", "work")
    handler = f'<bpmn:subProcess id="handler" triggeredByEvent="true">{inner}</bpmn:subProcess>'
    return document(body + handler, extra=EXTRA)


def found(model: bytes) -> list[tuple[str | None, str]]:
    """The problems of ``model`` as (element, code), each checked to be ours: Chinese, with a line, no
    English sentence of the library's; and deploying it is refused naming the same problems."""
    report = validate_document(model, "shape.bpmn")
    problems = [p for process in report.processes for p in process.problems] + list(report.document_problems)
    for problem in problems:
        assert problem["code"] != "invalid_element", problem
        assert re.search(r"[\u4e00-\u9fff]", problem["message"]) and problem["line"], problem
        assert not re.search(r"[A-Za-z]+(?: [A-Za-z]+){3}", problem["message"]), problem
    if problems:
        with pytest.raises(InvalidModel) as info:
            load_definitions(model, "shape.bpmn")
        assert info.value.detail["problems"] == problems
    return [(p["element_id"], p["code"]) for p in problems]


def test_a_well_drawn_embedded_subprocess_and_event_subprocess_have_no_problem() -> None:
    assert found(staged()) == []
    start = f'<bpmn:startEvent id="h_start">{MESSAGE}</bpmn:startEvent>'
    assert found(event_subprocess(start + flow("h_start", "h_end") + '<bpmn:endEvent id="h_end"/>')) == []


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (staged(NO_END), [("stage", "missing_end_event")]),
        (staged(NO_END, ' triggeredByEvent="false"'), [("stage", "missing_end_event")]),
        (staged(NO_END, tag="transaction"), [("stage", "missing_end_event")]),
        (event_subprocess(f'<bpmn:startEvent id="h_start">{MESSAGE}</bpmn:startEvent>'),
         [("handler", "missing_end_event")]),
        (event_subprocess(f'<bpmn:startEvent id="h_start">{MESSAGE}</bpmn:startEvent>'
                          + flow("h_start", "h_task") + user_task("h_task")),
         [("handler", "missing_end_event")]),
        (event_subprocess(""),
         [("handler", "event_subprocess_start_count"), ("handler", "missing_end_event")]),
        (staged(NO_START), [("stage", "subprocess_start_count")]),
        (staged('<bpmn:startEvent id="stage_start_2"/>' + flow("stage_start_2", "review") + STAGE),
         [("stage", "subprocess_start_count")]),
        (staged(""), [("stage", "subprocess_start_count"), ("stage", "missing_end_event")]),
    ],
)  # fmt: skip
def test_a_subprocess_without_an_end_event_or_one_start_event_is_a_problem_of_the_subprocess(
    model: bytes, expected: list[tuple[str, str]]
) -> None:
    """The library refused these with ``A SubWorkflow Must contain an End event`` / ``Exactly one start event
    is required in a SubWorkflow Task; found 0.``, as the sub-process's ``invalid_element``."""
    assert found(model) == expected


TIMER = "<bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition>"


@pytest.mark.parametrize(
    "definition",
    [
        MESSAGE,
        TIMER,
        '<bpmn:signalEventDefinition signalRef="s"/>',
        '<bpmn:errorEventDefinition errorRef="e"/>',
        '<bpmn:escalationEventDefinition escalationRef="x"/>',
    ],
)
@pytest.mark.parametrize("tag", ["subProcess", "transaction"])
def test_a_start_event_with_an_event_definition_in_an_embedded_subprocess_is_a_problem_of_it(
    definition: str, tag: str
) -> None:
    """BPMN allows only a none start event in an embedded sub-process: a message or timer start was
    accepted (the stage waited there for the event), a signal one too; an error or escalation one was
    named as belonging in an event sub-process only."""
    typed = f'<bpmn:startEvent id="stage_start">{definition}</bpmn:startEvent>'
    inner = STAGE.replace('<bpmn:startEvent id="stage_start"/>', typed)
    more = '<bpmn:signal id="s" name="s"/><bpmn:error id="e"/><bpmn:escalation id="x"/>'
    model = staged(inner, tag=tag).replace(b"<bpmn:message ", more.encode() + b"<bpmn:message ")
    assert found(model) == [("stage_start", "misplaced_start_event")]


SUB = (
    '<bpmn:subProcess id="stage"><bpmn:startEvent id="stage_start"/>'
    + flow("stage_start", "inner")
    + user_task("inner")
    + flow("inner", "stage_end")
    + '<bpmn:endEvent id="stage_end"/></bpmn:subProcess>'
)


def around(more: str = "", inside: str = "") -> bytes:
    """start -> a -> stage (start -> inner -> end) -> b -> end, with ``more`` flows beside them and
    ``inside`` flows drawn in the stage."""
    body = (
        user_task("a") + flow("a", "stage") + SUB.replace("</bpmn:subProcess>", f"{inside}</bpmn:subProcess>")
    )
    return document(linear(body + flow("stage", "b") + user_task("b") + more, "a", "b"))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (around(flow("a", "inner", None, "f_in")), [("f_in", "flow_crosses_boundary")]),
        (around(inside=flow("inner", "b", None, "f_out")), [("f_out", "flow_crosses_boundary")]),
        (around(flow("inner", "stage_end", None, "f_outside")), [("f_outside", "flow_crosses_boundary")]),
        (around(flow("b", "start", None, "f_again")), [("f_again", "flow_into_start_event")]),
        (around(inside=flow("inner", "stage_start", None, "f_re")), [("f_re", "flow_into_start_event")]),
        (around(flow("end", "b", None, "f_after")), [("f_after", "flow_out_of_end_event")]),
        (around(f'<bpmn:boundaryEvent id="late" attachedToRef="b">{TIMER}</bpmn:boundaryEvent>'
                + flow("late", "end") + flow("a", "late", None, "f_to_boundary")),
         [("f_to_boundary", "flow_into_boundary_event")]),
    ],
)  # fmt: skip
def test_a_sequence_flow_across_a_boundary_into_a_start_or_out_of_an_end_is_a_problem_of_the_flow(
    model: bytes, expected: list[tuple[str, str]]
) -> None:
    """Each was deployed: a flow into a node of a sub-process ran that node as part of the outer level (the
    reviewer got it twice), a flow out of one was the library's English refusal (``When looking for a task
    spec, we found two items``), a flow back into a start event made starting an instance a RecursionError,
    a flow out of an end event went on past the end."""
    assert found(model) == expected


def test_a_sequence_flow_into_another_pool_is_a_problem_of_the_flow() -> None:
    other = (
        '<bpmn:process id="q" isExecutable="true"><bpmn:startEvent id="q_start"/>'
        + flow("q_start", "q_task")
        + user_task("q_task")
        + "</bpmn:process>"
    )
    model = around(flow("a", "q_task", None, "f_pool"))
    model = model.replace(b"</bpmn:definitions>", other.encode() + b"</bpmn:definitions>")
    assert found(around()) == []
    assert ("f_pool", "flow_crosses_boundary") in found(model)


def test_an_element_without_an_id_or_with_one_another_element_has_is_a_problem_of_it() -> None:
    """A twin flow id deployed (the library took one of the two), a twin node id was blamed on the flows
    (``missing_flow_node`` of a node that is there), a process without an id was the library's TypeError."""
    twin_flow = around().replace(b'id="f_stage_b"', b'id="f_a_stage"')
    assert found(twin_flow) == [("f_a_stage", "duplicate_id"), ("f_a_stage", "duplicate_id")]
    twin_node = around().replace(b'<bpmn:userTask id="b"', b'<bpmn:userTask id="inner"')
    assert ("inner", "duplicate_id") in found(twin_node)
    with_message = (
        around().replace(b'id="stage_end"', b'id="m"').replace(b'targetRef="stage_end"', b'targetRef="m"')
    )
    message = b'<bpmn:message id="m" name="withdraw"/>'
    assert found(with_message.replace(b"<bpmn:process ", message + b"<bpmn:process ")) == [
        ("m", "duplicate_id"),
        ("m", "duplicate_id"),
    ]  # the end event in the process and the message outside it
    twin_messages = b'<bpmn:message id="m1" name="a"/><bpmn:message id="m1" name="b"/>'
    assert found(around().replace(b"<bpmn:process ", twin_messages + b"<bpmn:process ")) == [
        ("m1", "duplicate_id"),
        ("m1", "duplicate_id"),
    ]
    assert found(around().replace(b' id="f_a_stage"', b"")) == [(None, "missing_id")]
    assert found(around().replace(b'<bpmn:process id="p"', b"<bpmn:process")) == [(None, "missing_id")]
    assert (
        "bpmn:process"
        in validate_document(around().replace(b'<bpmn:process id="p"', b"<bpmn:process"))
        .processes[0]
        .problems[0]["message"]
    )


def test_a_subprocess_drawn_without_start_and_end_events_is_told_bpmn_allows_it_but_not_here() -> None:
    """BPMN 2.0 (10.5.2) lets a sub-process leave out both (MIWG A.3.0, B.1.0, B.2.0, C.3.0 do): the
    sentence must not say the model breaks BPMN, only that this engine does not run it."""
    (report,) = validate_document(staged(user_task("review"))).processes
    assert [p["code"] for p in report.problems] == ["subprocess_start_count", "missing_end_event"]
    assert all("不支持 BPMN 省略" in p["message"] for p in report.problems)


@pytest.mark.parametrize(
    "kind", ["exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway"]
)
def test_a_gateway_without_an_outgoing_flow_is_a_problem_of_the_gateway(kind: str) -> None:
    """Deployed before: an exclusive one failed the step with the library's English ``At least one output
    required`` (engine_error), a parallel one left the instance running for ever."""
    body = '<bpmn:startEvent id="start"/>' + flow("start", "a") + user_task("a") + flow("a", "gw")
    body += flow("a", "done") + '<bpmn:endEvent id="done"/>'  # the process has an end event of its own
    assert found(document(body + f'<bpmn:{kind} id="gw"/>')) == [("gw", "gateway_without_outgoing")]


def pools(message_flow: str) -> bytes:
    """Pool ``P`` (process p: start -> a -> end) and pool ``Q`` (process q, a receive task), with
    ``message_flow`` in their collaboration."""
    collaboration = (
        '<bpmn:collaboration id="c"><bpmn:participant id="P" processRef="p"/>'
        f'<bpmn:participant id="Q" processRef="q"/>{message_flow}</bpmn:collaboration>'
    )
    other = (
        '<bpmn:process id="q" isExecutable="false"><bpmn:startEvent id="q_start"/>'
        + flow("q_start", "q_wait")
        + '<bpmn:receiveTask id="q_wait" name="q_wait"/></bpmn:process>'
    )
    model = document(linear(user_task("a"), "a", "a"), extra=collaboration)
    return model.replace(b"</bpmn:definitions>", other.encode() + b"</bpmn:definitions>")


@pytest.mark.parametrize(
    ("message_flow", "expected"),
    [
        ('<bpmn:messageFlow id="m1" sourceRef="a" targetRef="Q"/>', []),
        ('<bpmn:messageFlow id="m1" sourceRef="a" targetRef="q_wait"/>', []),
        ('<bpmn:messageFlow id="m1" sourceRef="a" targetRef="end"/>', [("m1", "message_flow_in_pool")]),
        ('<bpmn:messageFlow id="m1" sourceRef="a" targetRef="P"/>', [("m1", "message_flow_in_pool")]),
        ('<bpmn:messageFlow id="m1" sourceRef="a" targetRef="nowhere"/>', [("m1", "missing_flow_node")]),
        ('<bpmn:messageFlow id="m1" sourceRef="nowhere" targetRef="a"/>', [("m1", "missing_flow_node")]),
    ],
)
def test_a_message_flow_inside_one_pool_or_to_nothing_is_a_problem_of_the_message_flow(
    message_flow: str, expected: list[tuple[str, str]]
) -> None:
    """Both deployed without effect (the library reads no message flow): a message the designer drew from
    one task of the process to another was never passed."""
    report = validate_document(pools(message_flow))
    (own,) = [process for process in report.processes if process.process_id == "p"]
    assert [(p["element_id"], p["code"]) for p in own.problems] == expected
    assert all(re.search(r"[\u4e00-\u9fff]", p["message"]) and p["line"] for p in own.problems)


def test_an_event_based_gateway_leading_to_a_task_is_a_problem_of_the_flow() -> None:
    """The library failed on it with ``AttributeError("'UserTask' object has no attribute
    'event_definition'")``; a timer catch event and a receive task after it are sound."""
    timer = f'<bpmn:intermediateCatchEvent id="wait">{TIMER}</bpmn:intermediateCatchEvent>'
    body = (
        '<bpmn:startEvent id="start"/>' + flow("start", "g") + '<bpmn:eventBasedGateway id="g"/>'
        + flow("g", "wait") + timer + flow("wait", "e1") + '<bpmn:endEvent id="e1"/>'
        + flow("g", "paid") + '<bpmn:receiveTask id="paid" messageRef="m"/>' + flow("paid", "e2")
        + '<bpmn:endEvent id="e2"/>'
    )  # fmt: skip
    assert found(document(body, extra=EXTRA)) == []
    wrong = body + flow("g", "review", None, "f_review") + user_task("review") + flow("review", "e2")
    assert found(document(wrong, extra=EXTRA)) == [("f_review", "bad_event_gateway_target")]


CANCEL_END = '<bpmn:endEvent id="stage_end"><bpmn:cancelEventDefinition/></bpmn:endEvent>'
CANCEL_THROW = (
    '<bpmn:intermediateThrowEvent id="throw"><bpmn:cancelEventDefinition/></bpmn:intermediateThrowEvent>'
)
TOP_CANCEL = '<bpmn:endEvent id="end"><bpmn:cancelEventDefinition/></bpmn:endEvent>'


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (document(linear(user_task("review"), "review", "review").replace('<bpmn:endEvent id="end"/>',
                                                                          TOP_CANCEL)),
         [("end", "misplaced_cancel_event")]),
        (staged(STAGE.replace('<bpmn:endEvent id="stage_end"/>', CANCEL_END)),
         [("stage_end", "misplaced_cancel_event")]),
        (staged(STAGE.replace(flow("review", "stage_end"), flow("review", "throw") + CANCEL_THROW
                              + flow("throw", "stage_end")), tag="transaction"),
         [("throw", "misplaced_cancel_event")]),
        (staged(STAGE.replace('<bpmn:endEvent id="stage_end"/>', CANCEL_END), tag="transaction"), []),
    ],
)  # fmt: skip
def test_a_cancel_end_event_outside_a_transaction_is_a_problem_of_the_event(
    model: bytes, expected: list[tuple[str, str]]
) -> None:
    """BPMN 2.0 (10.5.5) allows a cancel end event in a transaction only, and Camunda 7 refuses one elsewhere:
    drawn in the process the library cancelled the whole instance, in an embedded sub-process that
    sub-process, as if it were valid."""
    assert found(model) == expected


def test_a_process_with_a_start_event_and_no_end_event_is_a_problem_of_the_process() -> None:
    """BPMN 2.0 (10.5.3): a level with a start event has an end event. The library ends an instance at an end
    event only: the instance of such a process stayed running for ever after its last task, and an end event
    inside a sub-process does not end the process."""
    last_task = '<bpmn:startEvent id="start"/>' + flow("start", "review") + user_task("review")
    assert found(document(last_task)) == [("p", "missing_end_event")]
    tail = b'<bpmn:sequenceFlow id="f_end" sourceRef="stage" targetRef="end"/>\n<bpmn:endEvent id="end"/>'
    assert tail in staged()
    assert found(staged().replace(tail, b"")) == [("p", "missing_end_event")]
    assert found(document(last_task + flow("review", "done") + '<bpmn:endEvent id="done"/>')) == []


ORPHAN = user_task("orphan") + flow("orphan", "end")
ISLAND = user_task("island")
CHAIN = user_task("first") + flow("first", "orphan") + ORPHAN


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (linear(user_task("review") + ORPHAN, "review", "review"), [("orphan", "unreachable_node")]),
        (linear(user_task("review") + ISLAND, "review", "review"), [("island", "unreachable_node")]),
        (linear(user_task("review") + CHAIN, "review", "review"),
         [("first", "unreachable_node"), ("orphan", "unreachable_node")]),
        (linear(user_task("review") + SUB + flow("stage", "end"), "review", "review"),
         [("stage", "unreachable_node")]),  # named by its level only, not by what it holds
    ],
)  # fmt: skip
def test_a_node_no_path_from_a_start_event_reaches_is_a_problem_of_the_node(
    body: str, expected: list[tuple[str, str]]
) -> None:
    """Camunda 7 deploys such a model and never runs the node (a task left on the canvas without an incoming
    flow, as bpmnlint's ``no-disconnected`` names it): here the model said something that was dropped."""
    assert found(document(body)) == expected


def test_paths_that_start_otherwise_than_at_the_start_event_are_reached() -> None:
    """A boundary event's path, an event sub-process, the nodes of an ad-hoc sub-process and of a
    sub-process drawn without a start event are reached without a flow into them."""
    boundary = (
        user_task("review")
        + '<bpmn:boundaryEvent id="late" attachedToRef="review">'
        + "<bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition>"
        + "</bpmn:boundaryEvent>"
        + flow("late", "chase")
        + user_task("chase")
        + flow("chase", "late_end")
        + '<bpmn:endEvent id="late_end"/>'
    )
    assert found(document(linear(boundary, "review", "review"))) == []
    start = f'<bpmn:startEvent id="h_start">{MESSAGE}</bpmn:startEvent>'
    handled = start + flow("h_start", "h_task") + user_task("h_task") + flow("h_task", "h_end")
    assert found(event_subprocess(handled + '<bpmn:endEvent id="h_end"/>')) == []
    adhoc = (
        '<bpmn:adHocSubProcess id="stage">' + user_task("one") + user_task("two") + flow("one", "three")
        + user_task("three") + "</bpmn:adHocSubProcess>"
    )  # fmt: skip
    assert "unreachable_node" not in {code for _, code in found(document(linear(adhoc, "stage", "stage")))}
    assert ("stage", "subprocess_start_count") in found(staged(user_task("review")))
    assert "unreachable_node" not in {code for _, code in found(staged(user_task("review")))}
