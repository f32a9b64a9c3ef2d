"""What ordinary script tasks contain (issue 13), one test per power the sandbox gained, each with the
hostile uses of that power that stay refused: local ``def`` functions, ``print`` to the instance log, date
arithmetic with ``datetime`` / ``date`` / ``timedelta``, ``get_variable`` and ``plus_time`` (what JUEL's
``execution.getVariable`` and ``dateTime().plusDays`` become). The payload corpus of
``test_workflow_sandbox`` / ``test_expression_budget`` is refused inside a function body as well."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import InvalidInput, UnsafeExpression
from engine.workflow import Runtime, load_definitions
from engine.workflow.clock import use_clock
from engine.workflow.sandbox import SandboxEnvironment, check_source
from engine.workflow.scripting import MAX_LINE, MAX_LINES, collect_output
from tests.unit.bpmn.models import script_model
from tests.unit.test_expression_budget import HOSTILE_EXPRESSIONS
from tests.unit.test_workflow_sandbox import payloads

NOW = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def execute(script: str, data: dict | None = None) -> dict:
    values = dict(data or {})
    with use_clock(NOW):
        SandboxEnvironment().execute(script, values)
    return values


# ---------------------------------------------------------------- def


def test_a_script_may_define_and_call_its_own_functions() -> None:
    script = (
        "def fee(area, base=500):\n"
        "    if area <= 100:\n"
        "        return base\n"
        "    return base + (area - 100) * 3\n"
        "def total(items):\n"
        "    def one(item):\n"
        "        return fee(item['area'])\n"
        "    return sum([one(i) for i in items])\n"
        "result = total(shops)\n"
        "first = fee(*[50])\n"
    )
    data = execute(script, {"shops": [{"area": 50}, {"area": 200}]})
    assert (data["result"], data["first"]) == (1300, 500)
    assert "fee" not in data and "total" not in data  # functions are not written to the task data


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("def f():\n    return 1\nf = 'x'.join\nr = f(['a'] * 3)", "forbidden_statement"),  # rebinding
        ("def f():\n    return 1\nfor f in [len]:\n    pass", "forbidden_statement"),
        ("def f():\n    return 1\ndef g(f):\n    return f(['a'])\nr = g(', '.join)", "forbidden_statement"),
        ("def f():\n    return 1\n[f for f in ['x'.join]]", "forbidden_statement"),
        ("def f():\n    return 1\nr = (f := 'x'.join)", "forbidden_statement"),
        ("def f():\n    return 1\ndel f", "forbidden_statement"),
        ("@sorted\ndef f():\n    return 1", "forbidden_definition"),
        ("def f(x: int):\n    return x", "forbidden_definition"),
        ("def f() -> int:\n    return 1", "forbidden_definition"),
        ("def len(x):\n    return 0", "forbidden_definition"),  # may not shadow a sandbox callable
        ("def _f():\n    return 1", "forbidden_name"),
        ("def f():\n    yield 1", "forbidden_statement"),
        ("def f():\n    return f.__globals__", "forbidden_attribute"),
        ("def f():\n    return 1\ng = f\nr = g()", "forbidden_call"),
        ("def f():\n    return len\nr = f()([1])", "forbidden_call"),
        ("class A:\n    pass", "forbidden_definition"),
        ("f = lambda: 1", "forbidden_definition"),
    ],
)
def test_local_functions_cannot_become_a_way_around_the_guards(script: str, code: str) -> None:
    with pytest.raises(UnsafeExpression) as info:
        check_source(script, "exec")
    assert info.value.code == code, script


def test_every_payload_is_refused_inside_a_function_body(tmp_path: Path) -> None:
    for payload in payloads(tmp_path):
        with pytest.raises(UnsafeExpression):
            check_source(f"def f():\n    return {payload}\nr = f()", "exec")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", HOSTILE_EXPRESSIONS[:20])
def test_work_inside_a_function_is_guarded_like_any_other(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(UnsafeExpression):
        execute(f"def f():\n    return {source}\nr = f()")
    assert time.monotonic() - started < 15


def test_recursion_and_loops_in_functions_end_with_a_typed_error() -> None:
    with pytest.raises(UnsafeExpression) as info:
        execute("def f(n):\n    while True:\n        n += 1\nf(0)")
    assert info.value.code == "step_budget_exceeded"
    with pytest.raises(Exception) as deep:  # RecursionError inside the sandbox: the script fails, typed
        Runtime.start(
            load_definitions(script_model("def f(n):\n    return f(n + 1)\nr = f(0)"))["p"], {}, NOW
        )
    assert getattr(deep.value, "code", None) in ("expression_failed", "step_budget_exceeded")


# ---------------------------------------------------------------- print


def test_print_writes_bounded_lines_to_the_instance_log() -> None:
    with collect_output() as lines:
        execute("print('fee', 650, [1, 2])\nprint('a', 'b', sep='-')\nprint('x' * 5000)")
    assert lines[0] == (None, "fee 650 [1, 2]") and lines[1] == (None, "a-b")
    assert len(lines[2][1]) == MAX_LINE + 1  # cut, with an ellipsis
    with collect_output() as many:
        execute("for i in range(1000):\n    print(i)")
    assert len(many) == MAX_LINES + 1 and "超过" in many[-1][1]
    with pytest.raises(UnsafeExpression):
        execute("print([[0] * 1000] * 10000)")  # str() of the value is guarded
    with pytest.raises(InvalidInput):
        execute("print(1, sep=None)")


def test_what_a_script_task_prints_is_kept_with_its_element() -> None:
    runtime = Runtime.start(load_definitions(script_model("total = amount * 2\nprint('total', total)"))["p"],
                            {"amount": 21}, NOW)  # fmt: skip
    assert runtime.take_output() == [("calc", "total 42")]
    assert runtime.take_output() == []


# ---------------------------------------------------------------- datetime / date / timedelta


def test_date_arithmetic_as_spiffworkflow_scripts_write_it() -> None:
    data = execute(
        "received = datetime.strptime(received_on, '%Y-%m-%d')\n"
        "due = received + timedelta(days=20, hours=12)\n"
        "late = datetime.now() > due\n"
        "days_left = (due - datetime.now()).days\n"
        "label = due.strftime('%Y年%m月%d日')\n"
        "today_text = date.today().isoformat()\n"
        "weekday = datetime.now().weekday()\n"
        "wait = timedelta(hours=2)\n"
        "first = datetime(2025, 1, 31).replace(day=1).date()\n"
        "parsed = datetime.fromisoformat('2025-01-02T03:04:05')\n"
        "seconds = wait.total_seconds()\n"
        "ok = received in [datetime(2024, 12, 20)]\n",
        {"received_on": "2024-12-20"},
    )
    assert data["due"] == "2025-01-09T12:00:00"  # written back as ISO text (timers and due dates read it)
    assert data["late"] is False and data["days_left"] == 3 and data["weekday"] == 0
    assert data["label"] == "2025年01月09日" and data["today_text"] == "2025-01-06"
    assert data["wait"] == "PT7200S" and data["seconds"] == 7200.0
    assert data["first"] == "2025-01-01" and data["parsed"] == "2025-01-02T03:04:05"
    assert data["ok"] is True


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("x = datetime.now().strftime('%1000000Y')", InvalidInput),  # a width would print a million chars
        ("x = datetime.strptime('2025' * 100, '%Y')", InvalidInput),
        ("x = timedelta(days=10**30)", InvalidInput),
        ("x = timedelta(days='1')", InvalidInput),
        ("x = datetime.now().astimezone()", UnsafeExpression),  # not whitelisted
        ("x = datetime.now().__class__", UnsafeExpression),
        ("x = datetime(9999, 1, 2).year", None),  # a plain attribute of the value: fine
    ],
)
def test_date_values_stay_bounded(script: str, error: type[Exception] | None) -> None:
    if error is None:
        assert execute(script)["x"] == 9999
        return
    with pytest.raises(error):
        execute(script)


def test_get_variable_and_plus_time_are_bounded() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("get_variable('x')", {}) is None
    with pytest.raises(InvalidInput):
        env.evaluate("get_variable('__builtins__')", {})
    with pytest.raises(InvalidInput):
        env.evaluate("plus_time('2025-01-01', 10**9, 'days')", {})
    with pytest.raises(InvalidInput):
        env.evaluate("plus_time('2025-01-01', 1, 'fortnights')", {})
    with pytest.raises(InvalidInput):
        env.evaluate("plus_time('2025-01-01', 9000, 'years')", {})
    assert (
        env.evaluate("plus_time('2025-01-31T00:00:00+08:00', 1, 'months')", {}) == "2025-02-27T16:00:00+00:00"
    )


# ---------------------------------------------------------------- membership tests on the task data


def test_membership_tests_on_task_data() -> None:
    data = execute(
        "fire = 'restaurant' in activities\nnew = 'x' not in tags\nhas_key = 'owner' in applicant\n",
        {"activities": ["retail", "restaurant"], "tags": {"a": 1}, "applicant": {"owner": "张三"}},
    )
    assert (data["fire"], data["new"], data["has_key"]) == (True, True, True)
    with pytest.raises(UnsafeExpression):
        execute("big = list(range(100000))\nwhile True:\n    x = -1 in big")
