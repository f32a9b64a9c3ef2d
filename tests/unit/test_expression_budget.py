"""Bounded work for every expression and script: C-level work (inside one built-in call) cannot escape the
budget, a hostile evaluation fails quickly with a typed error, and while it runs other threads keep going.

Each hostile source below keeps a process busy for seconds to minutes, allocates gigabytes or crashes the
interpreter without the guards (the step tracer alone does not see work inside a built-in call)."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import ExpressionBudgetExceeded, InvalidInput, InvalidModel, UnsafeExpression
from engine.workflow import Runtime, load_definitions, validate_document
from engine.workflow.guards import MAX_OP_WORK, Budget, activate, measure
from engine.workflow.sandbox import SandboxEnvironment, check_source
from tests.unit.bpmn.models import (
    document,
    flow,
    gateway_model,
    linear,
    script_model,
    timer_model,
    user_task,
)

FAST = 15.0  # seconds: far above the ~2 s CPU budget, far below what the unguarded sources take
BUDGET_CODES = {"expression_budget_exceeded", "result_too_large", "range_too_large", "step_budget_exceeded"}
REFUSED_CODES = BUDGET_CODES | {
    "forbidden_attribute",
    "forbidden_call",
    "forbidden_statement",
    "expression_too_complex",
}

HOSTILE_EXPRESSIONS = [
    # C-level work inside one call
    "int('9' * 100000)",  # a decimal conversion quadratic in the digits
    "10 ** 10**7",  # a multi-megabyte integer
    "(1 << 10**7) // 3",  # dividing one
    "2 ** 10**9",
    "1 << 10**9",
    "(7 ** 20000) * (7 ** 20000)",
    "('a' * 10**6).translate({97: 'b' * 1000})",  # str.translate amplification (1e9 characters)
    "('a' * 10**6).translate({97: 'bb'})",
    "'%(a)999999999s' % {'a': 1}",  # %-width behind a mapping key
    "'%(a(b))999999999s' % {'a(b)': 1}",  # ... behind a key with nested parentheses
    "'%(a)*s' % {'a': 1}",
    "'%999999999d' % 1",
    "'%.999999999f' % 1.0",
    "'a' * 10**9",  # str / list / tuple / bytes by a big int
    "[1] * 10**9",
    "(1,) * 10**9",
    "b'a' * 10**9",
    "','.join(['a' * 100000] * 100)",  # str.join of huge
    "('a' * 1000).replace('a', 'b' * 100000)",  # str.replace amplification
    "('a' * 10**6).replace('', 'xx')",
    "('ß' * 400000).upper()",  # case mapping triples the length
    "'x'.center(10**9)",  # huge widths
    "'x'.ljust(10**9)",
    "'x'.zfill(10**9)",
    "'x'.expandtabs(10**9)",
    "f'{1:999999999}'",
    "f'{1:{10**9}}'",
    "format(1, '999999999')",
    "'{:999999999}'.format(1)",
    "sorted(list(range(100000)) * 10)",  # sorting a huge list
    "[[[0] * 1000 for i in range(1000)] for j in range(1000)]",  # nested comprehensions
    "range(10**12)",
    "sum(range(10**12))",
    "list(range(10**5)) * 100",
    "bytes(10**9)",
    "bytearray(10**9)",
    "'abc'.encode() * 10**9",
    "(1).to_bytes(10**9, 'big')",
    "round(5, -10**6)",
    "sum([[1] * 1000] * 1000, [])",  # quadratic list concatenation inside sum()
    "('a' * 600000).rfind('ab' + 'a' * 300000)",  # O(n*m) reverse search: 17 s in one call unguarded
    "max([[0] * 100000] * 30)",  # deep comparisons inside max()
    "f'{[0] * 10**6}'",
    "'%s' % ([0] * 10**6,)",
    "str([[0] * 1000] * 10000)",
    "set('abc' * 300000)",
    "list(zip(*[range(10)] * 100))",
]

HOSTILE_SCRIPTS = [
    "l = [0] * 10**6\nwhile True:\n    l.count(1)",  # list.count in a loop
    "s = 'a' * 10**6\nn = 0\nwhile True:\n    n += s.count('a')",
    "l = [1]\nwhile True:\n    l.extend(l)",  # list growth by extend
    "l = []\nwhile True:\n    l.append('x' * 100000)",
    "s = 'x'\nwhile True:\n    s = s + s",
    "s = 'x' * 10**6\nwhile True:\n    t = s[1:]",
    "l = list(range(100000))\nwhile True:\n    l.insert(0, 1)",
    "d = {}\nwhile True:\n    d[len(d)] = 'x' * 1000",  # dict growth
    "s = set()\nwhile True:\n    s = s | set(range(len(s), 2 * len(s) + 1))",  # set growth
    "n = 0\nwhile True:\n    n += 1",
    # shared sub-values: exponential work for ==, repr, hashing, copying into the task data
    "a = [1]\nfor i in range(60):\n    a = [a, a]\nb = str(a)",
    "a = [1]\nb = [1]\nfor i in range(60):\n    a = [a, a]\n    b = [b, b]\nc = a == b",
    "t = ()\nfor i in range(60):\n    t = (t, t)\nx = {t}",
    "a = [1]\nfor i in range(60):\n    a = [a, a]\nresult = a",
    "a = [1]\nfor i in range(25):\n    a = [a, a]\nresult = [a] * 1000",
    # CPython hashes tuples recursively without a recursion guard: deep enough, that crashes the process
    "t = ()\nfor i in range(30000):\n    t = (t,)\nx = {t: 1}",
    # hash flooding: integers that all hash alike make one set() quadratic
    "keys = [i * 2305843009213693951 for i in range(12000)]\ns = set(keys)",
    "keys = [i * 2305843009213693951 for i in range(12000)]\nd = {*keys}",
    "x = 10**20000\ny = 7**10000\nwhile True:\n    z = x // y",
    "x = 10**20000\nl = [x + i for i in range(20000)]",
    "x = [0] * 10**6\nwhile True:\n    y = x == x[:]",
    "x = [0] * 10**6\nwhile True:\n    y = 5 in x",
    "x = 'a' * 10**6\nwhile True:\n    y = x.lower()",
    "assert False, [[0] * 1000] * 10000",
    "x = list(zip(*[range(100000)] * 30))\ny = x * 3",
]


def _refused(run: object) -> UnsafeExpression:
    started = time.monotonic()
    with pytest.raises(UnsafeExpression) as info:
        run()  # type: ignore[operator]
    assert time.monotonic() - started < FAST
    assert info.value.code in REFUSED_CODES, info.value
    assert info.value.message  # Chinese text for the people
    return info.value


@pytest.mark.parametrize("source", HOSTILE_EXPRESSIONS)
def test_hostile_expression_fails_quickly_with_a_typed_error(source: str) -> None:
    _refused(lambda: SandboxEnvironment().evaluate(source, {}))


@pytest.mark.parametrize("source", HOSTILE_SCRIPTS)
def test_hostile_script_fails_quickly_with_a_typed_error(source: str) -> None:
    data = {"kept": 1}
    _refused(lambda: SandboxEnvironment().execute(source, data))
    assert data == {"kept": 1}  # nothing of the failed script is written back


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("'a' * 10**9", "result_too_large"),
        ("range(10**12)", "range_too_large"),
        ("'%(a)999999999s' % x", "result_too_large"),
        ("x + ('b' * 10**9)", "result_too_large"),
        ("-" * 150 + "1", "expression_too_deep"),
        ("[" * 110 + "x" + "]" * 110 + " + 1", "expression_too_deep"),
        ("x.center(10**9)", "forbidden_attribute"),
    ],
)
def test_what_run_time_refuses_whatever_the_data_is_refused_statically(source: str, code: str) -> None:
    with pytest.raises(UnsafeExpression) as info:
        check_source(source)
    assert info.value.code == code
    assert info.value.detail.get("line", 1) == 1  # the parser's own depth limit gives no line


def test_budget_errors_name_the_budget_and_its_limit() -> None:
    with pytest.raises(ExpressionBudgetExceeded) as info:
        SandboxEnvironment().execute("s = 'a' * 10**6\nwhile True:\n    t = s[1:]", {})
    assert info.value.code == "expression_budget_exceeded"
    assert info.value.detail["budget"] in ("memory", "work", "cpu") and info.value.detail["limit"]
    with pytest.raises(ExpressionBudgetExceeded) as info:
        SandboxEnvironment().execute("n = 0\nwhile True:\n    n += 1", {})
    assert info.value.code == "step_budget_exceeded"


def test_methods_are_a_whitelist_per_type() -> None:
    env = SandboxEnvironment()
    for source in ("'a'.encode()", "(1).to_bytes(2, 'big')", "enumerate([1]).x()"):
        with pytest.raises((UnsafeExpression, AttributeError)):
            env.evaluate(source, {})
    with pytest.raises(UnsafeExpression) as info:
        env.evaluate("'a'.encode()", {})
    assert info.value.code == "forbidden_attribute"
    with pytest.raises(UnsafeExpression) as info:  # a key function is called by the guards, not by C
        env.evaluate("sorted(items, key=x)", {"items": [1], "x": 5})
    assert info.value.code == "forbidden_call"


def test_measure_is_bounded_by_the_distinct_objects_not_the_tree() -> None:
    shared: list[object] = [1]
    for _ in range(200):  # 2**200 leaves reachable, 200 distinct lists
        shared = [shared, shared]
    started = time.monotonic()
    assert measure(shared, MAX_OP_WORK) == MAX_OP_WORK + 1
    assert time.monotonic() - started < 1.0
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert measure(cyclic, 1000) == 1001
    assert measure({"a": "xyz", "b": [1, 2]}, 10_000) < 20


def test_allowed_expressions_and_scripts_still_work() -> None:
    env = SandboxEnvironment()
    data = {
        "d": {"b": 2, "a": 3, "c": 1},
        "items": [3, 1, 2],
        "name": "  Zhang San ",
        "history": [{"status": "submitted"}],
        "amount": 150,
    }
    cases = [
        ("sorted(d, key=d.get)", ["c", "b", "a"]),
        ("max(d, key=d.get)", "a"),
        ("min(items, default=0)", 1),
        ("max(3, 7, 5)", 7),
        ("sorted(items, reverse=True)", [3, 2, 1]),
        ("sorted(['bb', 'a', 'ccc'], key=len)", ["a", "bb", "ccc"]),
        ("sum(x * 2 for x in items)", 12),
        ("[i for i, v in enumerate(items) if v > 1]", [0, 2]),
        ("dict(zip(['x', 'y'], items))", {"x": 3, "y": 1}),
        ("{v: k for k, v in d.items()}[1]", "c"),
        ("{x % 2 for x in items}", {0, 1}),
        ("name.strip().lower().split()", ["zhang", "san"]),
        ("', '.join(sorted(d))", "a, b, c"),
        ("'%s 办件 %05d' % ('A', 42)", "A 办件 00042"),
        ("'%(n)s-%(m)s' % {'n': 1, 'm': 2}", "1-2"),
        ("f'{amount:>8,} {name!r:.4} {1.5:.2f}'", "     150 '  Z 1.50"),
        ("name[2:7]", "Zhang"),
        ("items[::-1]", [2, 1, 3]),
        ("0 < amount <= 200 < 300", True),
        ("'submitted' in [h['status'] for h in history]", True),
        ("(1, 2) in {(1, 2): 'x'}", True),
        ("[*items, *d]", [3, 1, 2, "b", "a", "c"]),
        ("{**d, 'z': 0}['z']", 0),
        ("{*items, 9} == {1, 2, 3, 9}", True),
        ("divmod(17, 5)", (3, 2)),
        ("round(2.675, 2) < 2.68", True),
        ("int('42') + int(3.9) + float('1.5')", 46.5),
        ("str([1, 'a']) + str(None)", "[1, 'a']None"),
        ("list(reversed(items))", [2, 1, 3]),
        ("any(x > 2 for x in items) and all(items)", True),
        ("abs(-5) + len(d) + (2 ** 10) + (1 << 3) - (7 // 2)", 1037),
        ("'Zhang' in name and name.count('a') == 2 and name.find('San') == 8", True),
        ("'a,b,,c'.split(',', 2)", ["a", "b", ",c"]),
        ("'x'.join('abc')", "axbxc"),
        ("'abc'.translate({97: 'A', 98: None})", "Ac"),
        ("len(range(0, 10, 3))", 4),
        ("tuple(x for x in 'ab')", ("a", "b")),
        ("set(d) - {'a'} == {'b', 'c'}", True),
        ("d.keys() & {'a', 'q'}", {"a"}),
        ("[1, 2] + [3] == [1, 2, 3] and (1,) * 3 == (1, 1, 1)", True),
        ("'ab' * 3", "ababab"),
        ("-amount + ~0", -151),
    ]
    for source, expected in cases:
        assert env.evaluate(source, data) == expected, source
    script = (
        "total = 0\n"
        "for i in items:\n"
        "    total += i\n"
        "d['e'] = 5\n"
        "del d['a']\n"
        "items.append(4)\n"
        "items.sort(key=abs)\n"
        "history = history + [{'status': 'accepted'}]\n"
        "pair = (1, 2)\n"
        "tags = {'x'}\n"
        "a, b = pair\n"
        "assert total == 6, 'sum'\n"
    )
    env.execute(script, data)
    assert data["total"] == 6 and data["d"] == {"b": 2, "c": 1, "e": 5} and data["items"] == [1, 2, 3, 4]
    assert data["history"][-1] == {"status": "accepted"} and data["pair"] == [1, 2] and data["tags"] == ["x"]
    assert (data["a"], data["b"]) == (1, 2)
    with pytest.raises(AssertionError, match="nope"):
        env.execute("assert False, 'nope'", {})


def test_statements_that_cannot_be_bounded_are_refused() -> None:
    for script in ("x = [1]\nx[:0] = x", "x = [1, 2]\ndel x[0:1]", "a, *b = [1, 2, 3]", "del (a, b)"):
        with pytest.raises(UnsafeExpression) as info:
            check_source(script, "exec")
        assert info.value.code == "forbidden_statement", script


def test_an_expression_may_not_return_an_iterator_that_would_run_later() -> None:
    with pytest.raises(UnsafeExpression) as info:
        SandboxEnvironment().evaluate("(x for x in range(10))", {})
    assert info.value.code == "non_json_result"


def test_a_guard_refuses_before_the_c_call() -> None:
    budget = Budget(max_work=1000)
    with activate(budget), pytest.raises(ExpressionBudgetExceeded) as info:
        from engine.workflow.guards import method

        method("a" * 5000, "count", "a")  # charged 5000 units: refused, nothing counted
    assert info.value.detail["budget"] == "work"


# ---------------------------------------------------------------- other threads keep going


GIL_HOLDERS = [  # each, unguarded, is one C call of seconds that holds the GIL throughout
    ("eval", "('a' * 10**6).translate({97: 'b' * 1000})"),
    ("eval", "'%(a)999999999s' % {'a': 1}"),
    ("eval", "('a' * 600000).rfind('ab' + 'a' * 300000)"),
    ("exec", "keys = [i * 2305843009213693951 for i in range(12000)]\ns = set(keys)"),
    ("exec", "a = [1]\nfor i in range(60):\n    a = [a, a]\nb = str(a)"),
    ("exec", "l = [0] * 10**6\nwhile True:\n    l.count(1)"),
    ("exec", "s = 'ab' * 400000\nwhile True:\n    x = s.replace('a', 'cc')"),
    ("exec", "n = 0\nwhile True:\n    n += len('x' * 1000)"),
]


def test_other_threads_keep_running_while_a_hostile_evaluation_runs() -> None:
    outcomes: list[object] = []

    def hostile() -> None:
        env = SandboxEnvironment()
        for mode, source in GIL_HOLDERS:
            try:
                env.evaluate(source, {}) if mode == "eval" else env.execute(source, {})
                outcomes.append(None)
            except UnsafeExpression as err:
                outcomes.append(err.code)
            except BaseException as err:  # noqa: BLE001 - any other outcome fails the test below
                outcomes.append(err)

    worker = threading.Thread(target=hostile, daemon=True)
    ticks = 0
    longest = 0.0
    last = time.perf_counter()
    worker.start()
    while worker.is_alive() and time.perf_counter() - last < 60:
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
        ticks += 1
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert all(code in BUDGET_CODES for code in outcomes) and len(outcomes) == len(GIL_HOLDERS), outcomes
    assert ticks > 100  # the main thread kept running while the hostile evaluations ran
    assert longest < 1.0, longest  # no single call held the GIL for long (the switch interval is 5 ms)


# ---------------------------------------------------------------- deploy time, per element and line


def test_deploy_refuses_constant_bombs_and_deep_expressions_per_element() -> None:
    for condition, code in [
        ("amount > len('a' * 10**10)", "unsafe_expression"),
        ("'%(a)999999999s' % data == 'x'", "unsafe_expression"),
        ("x in range(10**12)", "unsafe_expression"),
        ("(" * 10 + "-" * 150 + "1" + ")" * 10, "unsafe_expression"),
    ]:
        report = validate_document(gateway_model(condition))
        (process,) = report.processes
        found = {(p["element_id"], p["code"]) for p in process.problems}
        assert ("f_yes", code) in found, (condition, process.problems)
        assert all(p["line"] for p in process.problems)
    with pytest.raises(UnsafeExpression) as info:
        load_definitions(script_model("ok = 1\nbig = 'a' * 10**9"))
    assert info.value.detail["element_id"] == "calc" and info.value.detail["line"]


def _placeholder_model(groups: str) -> bytes:
    return document(linear(user_task("review", f'ow:candidateGroups="{groups}"'), "review", "review"))


@pytest.mark.parametrize("groups", ["${department", "${dept-name}", "window,${ department.x.}", "#{lead"])
def test_deploy_refuses_candidate_group_placeholders_that_can_never_resolve(groups: str) -> None:
    report = validate_document(_placeholder_model(groups))
    (process,) = report.processes
    problems = [p for p in process.problems if p["code"] == "bad_group_placeholder"]
    assert problems and problems[0]["element_id"] == "review" and problems[0]["line"]
    with pytest.raises(InvalidModel):
        load_definitions(_placeholder_model(groups))


@pytest.mark.parametrize("groups", ["${department}", "window,${item.department}", "market"])
def test_well_formed_placeholders_deploy(groups: str) -> None:
    assert validate_document(_placeholder_model(groups)).executable


@pytest.mark.parametrize(
    ("cycle", "code"),
    [
        ("R/PT0S", "timer_cycle_too_short"),
        ("R5/PT0S", "timer_cycle_too_short"),
        ("R/PT30S", "timer_cycle_too_short"),
        ("R3/2025-01-01T00:00:00Z/PT1S", "timer_cycle_too_short"),
        ("R999999/PT1H", "timer_cycle_too_many"),
    ],
)
def test_deploy_refuses_timer_cycles_too_short_or_too_many(cycle: str, code: str) -> None:
    report = validate_document(timer_model(cycle, "timeCycle"))
    (process,) = report.processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("wait", code)]
    assert process.problems[0]["line"]
    with pytest.raises(InvalidModel):
        load_definitions(timer_model(cycle, "timeCycle"))


def test_sane_cycles_deploy_and_a_computed_zero_cycle_is_refused_at_run_time() -> None:
    for cycle in ("R3/PT1H", "R/P1D", "R1000/PT1M"):
        assert validate_document(timer_model(cycle, "timeCycle")).executable, cycle
    from datetime import UTC, datetime

    definition = load_definitions(timer_model("'R/PT' + str(seconds) + 'S'", "timeCycle"))["p"]
    with pytest.raises(InvalidInput) as info:
        Runtime.start(definition, {"seconds": 0}, datetime(2025, 3, 3, 1, 0, tzinfo=UTC))
    assert info.value.code == "timer_cycle_too_short" and info.value.detail["element_id"] == "wait"


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("P99999999Y", "timeDuration"),
        ("P999999999999M", "timeDuration"),
        ("PT99999999999999999999H", "timeDuration"),
        ("R3/P99999999Y", "timeCycle"),
        ("R3/P99999999Y/2025-01-01T00:00:00Z", "timeCycle"),
    ],
)
def test_deploy_refuses_a_timer_duration_past_the_calendar_at_once(expression: str, kind: str) -> None:
    """The library counts a duration's years and months one month at a time: P99999999Y kept the
    validator (and the deploy, a command or the worker) busy for many minutes, and an hour count past what a
    timedelta holds deployed as if it were a variable name."""
    started = time.perf_counter()
    report = validate_document(timer_model(expression, kind))
    assert time.perf_counter() - started < 1.0
    (process,) = report.processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("wait", "timer_out_of_range")]
    with pytest.raises(InvalidModel):
        load_definitions(timer_model(expression, kind))


def test_a_user_task_due_date_past_the_calendar_is_refused_at_deploy_at_once() -> None:
    model = document(linear(user_task("t", 'ow:candidateGroups="window" ow:dueDate="P99999999Y"'), "t", "t"))
    started = time.perf_counter()
    report = validate_document(model)
    assert time.perf_counter() - started < 1.0
    (process,) = report.processes
    assert [(p["element_id"], p["code"]) for p in process.problems] == [("t", "timer_out_of_range")]


@pytest.mark.parametrize("kind", ["timeDuration", "timeCycle"])
def test_a_computed_timer_duration_past_the_calendar_fails_the_command_at_once(kind: str) -> None:
    from datetime import UTC, datetime

    expression = "'P' + str(years) + 'Y'" if kind == "timeDuration" else "'R3/P' + str(years) + 'Y'"
    definition = load_definitions(timer_model(expression, kind))["p"]
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as info:
        Runtime.start(definition, {"years": 999_999}, datetime(2025, 3, 3, 1, 0, tzinfo=UTC))
    assert time.perf_counter() - started < 1.0  # unbounded: 12 million months counted one by one, ~10 s
    assert info.value.code == "bad_timer_value" and info.value.detail["element_id"] == "wait"


def test_a_hostile_gateway_condition_fails_the_command_naming_the_element() -> None:
    from datetime import UTC, datetime

    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_no"/>'
        + flow("gw", "yes", "s.translate(table) == ''", "f_yes")
        + flow("gw", "no", None, "f_no")
        + user_task("yes")
        + user_task("no")
        + flow("yes", "end1")
        + flow("no", "end2")
        + '<bpmn:endEvent id="end1"/><bpmn:endEvent id="end2"/>'
    )
    definition = load_definitions(document(body))["p"]
    data = {"s": "a" * 100_000, "table": {"97": "x"}}
    data["table"] = {97: "b" * 1000}  # what a script could have computed
    with pytest.raises(UnsafeExpression) as info:
        Runtime.start(definition, data, datetime(2025, 3, 3, 1, 0, tzinfo=UTC))
    assert info.value.code == "result_too_large" and info.value.detail["element_id"] == "gw"
