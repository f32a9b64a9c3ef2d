"""The library's parse errors in our words (``engine.workflow.library_text``): a code of their own and a
Chinese sentence naming the element, never the library's English text or a Python exception's."""

from __future__ import annotations

import re

import pytest
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.workflow import validate_document
from engine.workflow.library_text import LIBRARY_TEXTS, library_problem
from tests.unit.bpmn.models import document, flow, linear, user_task

DATA_IN = (
    '<bpmn:dataInputAssociation id="di"><bpmn:sourceRef>nope</bpmn:sourceRef>'
    "<bpmn:targetRef>x</bpmn:targetRef></bpmn:dataInputAssociation>"
)
CANCEL = '<bpmn:boundaryEvent id="b" attachedToRef="a"><bpmn:cancelEventDefinition/></bpmn:boundaryEvent>'
ENGLISH = re.compile(r"[A-Za-z]+(?: [A-Za-z]+){3}")


def with_task(inner: str = "", extra: str = "") -> bytes:
    return document(linear(user_task("a", 'ow:candidateGroups="w"', inner), "a", "a"), extra=extra)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (with_task("<bpmn:standardLoopCharacteristics/>"), ("a", "bad_loop")),
        (with_task(DATA_IN), ("a", "missing_data_object")),
        (document(linear(user_task("a") + CANCEL + flow("b", "end", None, "f_b"), "a", "a")),
         ("a", "misplaced_cancel_event")),
        (with_task(extra='<bpmn:message name="paid"/>'), (None, "missing_id")),
        (with_task(extra='<bpmn:signal name="stop"/>'), (None, "missing_id")),
        (with_task(extra='<bpmn:correlationProperty id="cp" name="k"/>'), ("cp", "bad_correlation")),
        (document(linear('<bpmn:adHocSubProcess id="s"><bpmn:startEvent id="s_start"/>' + user_task("in")
                         + "</bpmn:adHocSubProcess>", "s", "s")), ("s", "adhoc_start_or_end")),
    ],
)  # fmt: skip
def test_a_fault_only_the_library_finds_is_our_coded_problem_in_chinese(
    model: bytes, expected: tuple[str | None, str]
) -> None:
    """Each was ``invalid_element`` with the library's text (``Cancel Events may only be used with
    transactions``, ``Message identifier is missing from bpmn xml``...)."""
    report = validate_document(model)
    (problem,) = [p for process in report.processes for p in process.problems] + list(
        report.document_problems
    )
    assert (problem["element_id"], problem["code"]) == expected
    assert problem["line"] and re.search(r"[\u4e00-\u9fff]", problem["message"]), problem
    assert not ENGLISH.search(problem["message"]), problem


def test_every_text_of_the_table_is_read_and_a_python_exception_is_never_shown() -> None:
    def line_of(element_id: str | None) -> int | None:
        return 7 if element_id else None

    samples = {
        "Exactly one start event is required in a SubWorkflow Task; found 2.": (
            "subprocess_start_count",
            "2 个",
        ),
        "Duplicate process ID: permit": ("duplicate_process", "permit"),
        "Message identifier is missing from correlation property: cp": ("bad_correlation", "cp"),
        "Time Specification Error. bad": ("bad_timer", "定时器"),
        "Expected an error node": ("missing_reference", "错误"),  # the library's own lower case
        "Expected a Message node": ("missing_reference", "消息"),
    }
    for text, (code, part) in samples.items():
        problem = library_problem(ValidationException(text), "p", line_of)
        assert problem["code"] == code and part in problem["message"], problem
    assert len({code for _, code, _ in LIBRARY_TEXTS}) > 15
    wrapped = ValidationException("AttributeError(\"'UserTask' object has no attribute 'event_definition'\")")
    problem = library_problem(wrapped, "g", line_of)
    assert problem["code"] == "invalid_element" and "AttributeError" in problem["message"]
    assert "object has no attribute" not in problem["message"] and problem["line"] == 7
    problem = library_problem(
        TypeError("sequence item 0: expected str instance, NoneType found"), "p", line_of
    )
    assert "sequence item" not in problem["message"] and problem["element_id"] == "p"
    unknown = library_problem(ValidationException("Something new the library says"), "p", line_of)
    assert unknown["code"] == "invalid_element" and unknown["message"].startswith("流程引擎无法解析")
