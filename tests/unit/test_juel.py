"""JUEL (Camunda 7 / Flowable expressions): the subset is translated once, when the model is parsed, into
the sandbox's language, and gives what JUEL gives; anything outside the subset is a problem of its element.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import UnsafeExpression
from engine.workflow import Runtime, load_definitions, validate_document
from engine.workflow.clock import use_clock
from engine.workflow.juel import JuelError, to_sandbox, translate
from engine.workflow.sandbox import SandboxEnvironment, check_source
from tests.unit.bpmn.models import document, flow, gateway_after_task_model, user_task

NOW = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


def run(juel: str, data: dict) -> object:
    source = translate(juel)
    check_source(source)  # every translation is checked by the sandbox like any expression
    with use_clock(NOW):
        return SandboxEnvironment().evaluate(source, dict(data))


@pytest.mark.parametrize(
    ("juel", "data", "expected"),
    [
        ("${approved}", {"approved": True}, True),
        ("${!approved}", {"approved": True}, False),
        ("${not approved}", {"approved": False}, True),
        ("${amount > 1000 && vip}", {"amount": 1500, "vip": True}, True),
        ("${amount > 1000 and vip}", {"amount": 1500, "vip": False}, False),
        ("${amount < 10 || vip}", {"amount": 50, "vip": True}, True),
        ("${amount lt 10 or vip}", {"amount": 50, "vip": False}, False),
        ("${a == 'x' && b != \"y\"}", {"a": "x", "b": "z"}, True),
        ("${a eq 'x' and b ne 'y'}", {"a": "x", "b": "y"}, False),
        ("${n gt 1 && n ge 2 && n le 2 && n lt 3}", {"n": 2}, True),
        ("${n >= 2.5}", {"n": 2}, False),
        ("${empty comment}", {"comment": ""}, True),
        ("${empty comment}", {"comment": None}, True),
        ("${empty items}", {"items": []}, True),
        ("${empty items}", {"items": [0]}, False),
        ("${not empty order.lines}", {"order": {"lines": [1]}}, True),
        ("${empty order.missing}", {"order": {}}, True),  # a missing map key is null
        ("${order['total'] > 100}", {"order": {"total": 120}}, True),
        ("${items[1] == 'b'}", {"items": ["a", "b"]}, True),
        ("${execution.getVariable('x')}", {"x": 5}, 5),
        ('${execution.getVariable("never_set") == null}', {}, True),
        ("${approved ? 'ok' : 'no'}", {"approved": False}, "no"),
        ("${(a + b) * 2 - c / 2 == 9}", {"a": 2, "b": 3, "c": 2}, True),
        ("${n mod 2 == 0 and n div 2 == 3}", {"n": 6}, True),
        ("${-n < 0}", {"n": 1}, True),
        ("${true && !false && null == null}", {}, True),
        ("${name.startsWith('张') && name.length() == 2}", {"name": "张三"}, True),
        ("${list.size() > 1 && list.contains('a') && !list.isEmpty()}", {"list": ["a", "b"]}, True),
        ("${name.equals('x')}", {"name": "x"}, True),
        ("#{approved}", {"approved": True}, True),
        ("${dateTime().plusDays(3).toDate()}", {}, "2025-01-09T01:00:00+00:00"),
        ("${dateTime().plusHours(2)}", {}, "2025-01-06T03:00:00+00:00"),
        ("${dateTime().plusMonths(1).minusDays(1)}", {}, "2025-02-05T01:00:00+00:00"),
        ("${now()}", {}, "2025-01-06T01:00:00+00:00"),
        ("${days(limit)}", {"limit": 3}, "P3D"),  # our helpers are callable from JUEL too
        ("${len(items) > 1}", {"items": [1, 2]}, True),
    ],
)
def test_the_subset_gives_what_juel_gives(juel: str, data: dict, expected: object) -> None:
    assert run(juel, data) == expected


@pytest.mark.parametrize(
    ("juel", "code"),
    [
        ("${riskService.check(amount)}", "unsupported_juel"),  # a bean method
        ("${myBean.enabled()}", "unsupported_juel"),
        ("${execution.setVariable('a', 1)}", "unsupported_juel"),
        ("${execution}", "unsupported_juel"),
        ("${task.assignee}", "unsupported_juel"),
        ("${fn:length(items)}", "unsupported_juel"),
        ("${x instanceof y}", "unsupported_juel"),
        ("${a = 1}", "unsupported_juel"),
        ("${x -> x}", "unsupported_juel"),
        ("${__import__('os')}", "unsupported_juel"),
        ("${''.__class__}", "unsupported_juel"),
        ("${a +}", "bad_expression"),
        ("${'open}", "bad_expression"),
        ("${a @ b}", "bad_expression"),
        ("${" + "(" * 200 + "1" + ")" * 200 + "}", "bad_expression"),
    ],
)
def test_outside_the_subset_is_refused_with_a_code(juel: str, code: str) -> None:
    with pytest.raises(JuelError) as info:
        translate(juel)
    assert info.value.code == code
    assert info.value.message  # a Chinese sentence


def test_a_composite_text_is_refused_and_ours_is_left_alone() -> None:
    for text in ("Hello ${name}", "${a} and ${b}"):
        with pytest.raises(JuelError):
            to_sandbox(text)
    assert to_sandbox("amount > 10 and kind in ('a', 'b')") == "amount > 10 and kind in ('a', 'b')"
    assert to_sandbox("P3D") == "P3D"


def test_names_the_sandbox_refuses_are_still_refused_after_translation() -> None:
    with pytest.raises(UnsafeExpression) as info:
        check_source(translate("${_secret == 1}"))
    assert info.value.code == "forbidden_name"


def test_get_variable_reads_task_data_only() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("get_variable('a')", {"a": [1]}) == [1]
    for name in ("__builtins__", "_ow_binop", "_ow_fn_len"):
        with pytest.raises(Exception) as info:
            env.evaluate(f"get_variable({name!r})", {})
        assert getattr(info.value, "code", None) == "bad_argument"


# ---------------------------------------------------------------- in a model


def test_a_juel_gateway_condition_is_translated_once_at_parse_time() -> None:
    model = gateway_after_task_model("${amount gt 1000 && !vip}")
    definition = load_definitions(model)["p"]
    text = definition.spec_json()
    assert "(el_gt(amount, 1000) and (not el_bool(vip)))" in text and "${" not in text
    runtime = Runtime.start(definition, {"amount": 5000, "vip": False}, NOW)
    runtime.complete(runtime.ready_tasks()[0].task_id, {}, NOW)
    assert [t.element_id for t in runtime.ready_tasks()] == ["yes"]


def test_juel_outside_the_subset_is_a_problem_of_its_element() -> None:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "t")
        + user_task("t", 'camunda:candidateGroups="window" camunda:dueDate="${myCalendar.next()}"')
        + flow("t", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "end", "${riskService.isRisky(amount)}", "f_yes")
        + flow("gw", "end", None, "f_no")
        + '<bpmn:endEvent id="end"/>'
    )
    (process,) = validate_document(document(body)).processes
    assert not process.executable
    found = {(p["element_id"], p["code"]) for p in process.problems}
    assert found == {("t", "unsupported_juel"), ("f_yes", "unsupported_juel")}
    assert all("原文" in p["message"] for p in process.problems)  # the original text is quoted


def test_a_hexadecimal_literal_is_a_problem_of_its_element_as_in_el() -> None:
    """EL has decimal literals only (JUEL: a syntax error at deploy): the element, the rule and the original
    text are named, and the deploy is refused with the typed error, not a crash."""
    from engine.errors import InvalidModel

    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "end", "${amount > 0x10p0}", "f_yes")
        + flow("gw", "end", None, "f_no")
        + '<bpmn:endEvent id="end"/>'
    )
    (process,) = validate_document(document(body)).processes
    [problem] = process.problems
    assert (problem["element_id"], problem["code"]) == ("f_yes", "bad_expression")
    assert "'0x10p0'" in problem["message"] and "十进制" in problem["message"]
    assert "原文 ${amount > 0x10p0}" in problem["message"]
    with pytest.raises(InvalidModel) as refused:
        load_definitions(document(body))
    assert refused.value.detail["problems"] == [problem]


def test_a_juel_timer_and_due_date_run_on_the_case_clock() -> None:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "wait")
        + '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
        "<bpmn:timeDate>${dateTime().plusDays(1)}</bpmn:timeDate>"
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("wait", "t")
        + user_task("t", 'camunda:candidateGroups="w" camunda:dueDate="${dateTime().plusHours(4)}"')
        + flow("t", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    definition = load_definitions(document(body))["p"]
    runtime = Runtime.start(definition, {}, NOW)
    [timer] = runtime.pending_timers()
    assert timer.due_at == datetime(2025, 1, 7, 1, 0, tzinfo=UTC)
    later = datetime(2025, 1, 7, 2, 0, tzinfo=UTC)
    runtime.fire_due_timers(later)
    [task] = runtime.ready_tasks()
    assert runtime.task_due(task.task_id, later) == datetime(2025, 1, 7, 6, 0, tzinfo=UTC)
    assert task.meta.due_expression == "${dateTime().plusHours(4)}"  # what the designer wrote, for messages


def test_the_conformance_corpus_never_crashes_the_translator() -> None:
    corpus = Path(__file__).resolve().parents[3] / "shared" / "conformance"
    if not corpus.is_dir():
        pytest.skip("shared/conformance is not present")
    for path in sorted(corpus.rglob("*.bpmn")):
        validate_document(path.read_bytes(), path.name)  # typed problems only, never an untyped error


def test_nested_empty_translates_in_linear_size() -> None:
    """Each ``empty`` wrote its operand four times: fourteen of them in an 88-character condition made
    a translation of gigabytes and the validator ran out of memory."""
    text = "${" + "empty " * 14 + "x}"
    assert len(translate(text)) < 20 * len(text)
    assert translate("${empty x}") == "(x in (None, '', [], {}))"
