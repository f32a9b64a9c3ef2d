"""Translated JUEL evaluates as Java EL 2.2 does (JSR-245, "Expression Language Specification Version 2.2",
sections 1.6-1.10 and the coercions of 1.18; JUEL, which Camunda 7 and Flowable embed, implements them in
``NumberOperations``, ``BooleanOperations`` and ``TypeConverterImpl``). Each row is an expression, the task
data and what EL gives, with the rule that gives it; an EL error is ``juel_error``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from engine.errors import InvalidInput
from engine.workflow.clock import use_clock
from engine.workflow.el import EL_HELPERS
from engine.workflow.helpers import HELPERS
from engine.workflow.juel import translate
from engine.workflow.sandbox import SandboxEnvironment, allowed_callables, check_source

NOW = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)
ERROR = object()  # the row's expression is an ELException in JUEL


def run(juel: str, data: dict | None = None) -> object:
    source = translate(juel)
    check_source(source)  # the translation stays inside the sandbox
    with use_clock(NOW):
        return SandboxEnvironment().evaluate(source, dict(data or {}))


def check(juel: str, data: dict, expected: object) -> None:
    if expected is ERROR:
        with pytest.raises(InvalidInput) as info:
            run(juel, data)
        assert info.value.code == "juel_error"
        return
    got = run(juel, data)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
        return
    assert got == expected and type(got) is type(expected), (juel, data, got)


ARITHMETIC = [
    # 1.7.3 A {%,mod} B, Longs: Java's remainder takes the sign of the dividend
    ("${-7 mod 3}", {}, -1),
    ("${x % 3}", {"x": -7}, -1),
    ("${7 % -3}", {}, 1),
    ("${x mod 2 == 1}", {"x": -3}, False),  # Python's % said -3 % 2 == 1
    # 1.7.3, a Double or a String with . e E: Double remainder (Java's % is fmod)
    ("${-7.5 mod 2}", {}, -1.5),
    ("${x % 3}", {"x": "-7.0"}, -1.0),
    ("${x % 0.0}", {"x": 1}, math.nan),
    # 1.7.3: a Long remainder by zero is an ArithmeticException, so an EL error
    ("${x % 0}", {"x": 1}, ERROR),
    # 1.7.1 A {+,-,*} B: numeric only, Strings coerced to numbers (1.18.3), never concatenated
    ("${'1' + '2'}", {}, 3),
    ("${a + b}", {"a": "1", "b": "2"}, 3),
    ("${a + 1}", {"a": "1.5"}, 2.5),  # a String with '.' is a Double
    ("${a * b}", {"a": "3", "b": 2}, 6),
    ("${a - b}", {"a": "1e3", "b": 1}, 999.0),
    ("${a + b}", {"a": "x", "b": "y"}, ERROR),  # Long.valueOf("x") fails
    ("${a + 1}", {"a": True}, ERROR),  # 1.18.3: a Boolean coerced to a number is an error
    ("${a + 1}", {"a": [1]}, ERROR),  # nor is a List a number
    # 1.7.1: both null is 0; one null is coerced to 0 (1.18.3)
    ("${a + b}", {"a": None, "b": None}, 0),
    ("${a + 2}", {"a": None}, 2),
    ("${a + b}", {"a": "", "b": 2}, 2),  # "" coerces to 0
    # 1.7.1: Long arithmetic is Java's 64-bit arithmetic
    ("${a + 1}", {"a": 2**63 - 1}, -(2**63)),
    ("${a * 2}", {"a": 2**62}, -(2**63)),
    ("${1 + 2.0}", {}, 3.0),
    # 1.7.2 A {/,div} B: always a Double (coerced to Double), by zero Java's Infinity / NaN
    ("${5 / 2}", {}, 2.5),
    ("${6 div 3}", {}, 2.0),
    ("${a / b}", {"a": "5", "b": "2"}, 2.5),
    ("${1 / 0}", {}, math.inf),
    ("${-1 / 0}", {}, -math.inf),
    ("${0 / 0}", {}, math.nan),
    ("${a / 2}", {"a": None}, 0.0),
    ("${a / b}", {"a": None, "b": None}, 0),
    # 1.7.4 -A: null is 0, a String is a Long or (with . e E) a Double, a Boolean is an error
    ("${-x}", {"x": "5"}, -5),
    ("${-x}", {"x": "2.5"}, -2.5),
    ("${-x}", {"x": None}, 0),
    ("${-x}", {"x": True}, ERROR),
    ("${-x}", {"x": "abc"}, ERROR),
    ("${-x}", {"x": -(2**63)}, -(2**63)),  # Java: -Long.MIN_VALUE overflows to itself
    ("${- -3}", {}, 3),
]


@pytest.mark.parametrize(("juel", "data", "expected"), ARITHMETIC)
def test_arithmetic_follows_el(juel: str, data: dict, expected: object) -> None:
    check(juel, data, expected)


def test_arithmetic_is_translated_to_el_functions_once() -> None:
    assert translate("${a mod 3}") == "el_mod(a, 3)"
    assert translate("${(a + b) * 2 / c}") == "el_div(el_mul((el_add(a, b)), 2), c)"
    assert translate("${-7}") == "(-7)"  # a literal keeps its type: no call
    assert translate("${-x}") == "el_neg(x)"


def test_integers_beyond_a_java_long_are_big_integers_and_bounded() -> None:
    assert run("${a + 1}", {"a": 2**70}) == 2**70 + 1  # BigInteger arithmetic is exact
    assert run("${a mod 7}", {"a": -(2**70)}) == -((2**70) % 7)  # BigInteger.remainder
    for juel in ("${a / 2}", "${a + 0.5}"):  # BigDecimal in EL: refused, not approximated
        with pytest.raises(InvalidInput) as info:
            run(juel, {"a": 2**70})
        assert info.value.code == "juel_error"


def test_the_el_functions_are_sandbox_helpers() -> None:
    assert set(EL_HELPERS) <= set(HELPERS) and set(EL_HELPERS) <= allowed_callables()
    assert all(name.startswith("el_") for name in EL_HELPERS)


BOOLEAN = [
    # 1.18.5 coerce A to Boolean: a String is Boolean.valueOf(A), "" and null are false
    ("${!flag}", {"flag": "false"}, True),  # Python's truthiness made the text 'false' true
    ("${not flag}", {"flag": "TRUE"}, False),  # Boolean.valueOf ignores case
    ("${!flag}", {"flag": "yes"}, True),  # any other text is false
    ("${!flag}", {"flag": ""}, True),
    ("${!flag}", {"flag": None}, True),
    ("${!flag}", {"flag": 0}, ERROR),  # a number is not coerced to Boolean: an error
    ("${!flag}", {"flag": [1]}, ERROR),
    # 1.9.1 A {&&,and} B / A {||,or} B: both operands coerced to Boolean, B only when needed
    ("${flag && true}", {"flag": "false"}, False),
    ("${flag and other}", {"flag": "true", "other": "true"}, True),
    ("${flag || other}", {"flag": "false", "other": ""}, False),
    ("${flag or other}", {"flag": "false", "other": "True"}, True),
    ("${flag || other}", {"flag": True, "other": 5}, True),  # B is never evaluated
    ("${flag && other}", {"flag": True, "other": 5}, ERROR),
    # 1.11 A ? B : C: A coerced to Boolean
    ("${flag ? 1 : 2}", {"flag": "false"}, 2),
    ("${flag ? 1 : 2}", {"flag": None}, 2),
    ("${flag ? 'y' : 'n'}", {"flag": "true"}, "y"),
    ("${flag ? 1 : 2}", {"flag": 1}, ERROR),
]


@pytest.mark.parametrize(("juel", "data", "expected"), BOOLEAN)
def test_boolean_coercion_follows_el(juel: str, data: dict, expected: object) -> None:
    check(juel, data, expected)


def run_condition(juel: str, data: dict) -> object:
    source = translate(juel, condition=True)
    check_source(source)
    return SandboxEnvironment().evaluate(source, dict(data))


@pytest.mark.parametrize(
    ("juel", "data", "expected"),
    [
        ("${approved}", {"approved": True}, True),
        ("${approved}", {"approved": False}, False),
        ("${!approved}", {"approved": "false"}, True),  # inside the expression EL coerces
        # Camunda's UelExpressionCondition (and Flowable's) evaluate the expression to Object and refuse
        # anything but a Boolean: "condition expression returns non-Boolean" / "... returns null"
        ("${approved}", {"approved": "false"}, ERROR),
        ("${approved}", {"approved": None}, ERROR),
        ("${amount}", {"amount": 1}, ERROR),
        ("${approved ? 'a' : 'b'}", {"approved": True}, ERROR),
    ],
)
def test_a_condition_must_give_a_boolean_as_in_camunda(juel: str, data: dict, expected: object) -> None:
    if expected is ERROR:
        with pytest.raises(InvalidInput) as info:
            run_condition(juel, data)
        assert info.value.code == "juel_error"
    else:
        assert run_condition(juel, data) is expected


def test_boolean_operands_are_not_coerced_twice() -> None:
    assert translate("${!approved}") == "(not el_bool(approved))"
    assert translate("${!(a && b)}") == "(not ((el_bool(a) and el_bool(b))))"
    assert translate("${!empty x}", condition=True) == "(not (x in (None, '', [], {})))"
    assert translate("${approved}", condition=True) == "el_condition(approved)"
    assert translate("${true}", condition=True) == "True"


COMPARISONS = [
    # 1.8.1 A {<,>,<=,>=} B: if A == B, <= and >= are true; if A or B is null, false
    ("${x > 5}", {"x": None}, False),
    ("${x < 5}", {"x": None}, False),
    ("${x <= 5}", {"x": None}, False),
    ("${x >= y}", {"x": None, "y": None}, True),
    ("${x lt y}", {"x": None, "y": None}, False),
    # 1.8.1: a Long and a String: both coerced to Long; a Double and a String: both to Double
    ("${x > 3}", {"x": "5"}, True),
    ("${x > 9}", {"x": "10"}, True),  # as text '10' < '9'
    ("${x < 2.5}", {"x": "2.25"}, True),
    ("${x > 3}", {"x": "abc"}, ERROR),  # Long.valueOf('abc') fails
    ("${x > 3}", {"x": "3.5"}, ERROR),  # Long.valueOf('3.5') fails: a Long rule, not a Double one
    ("${x ge 3}", {"x": True}, ERROR),  # a Boolean is no number
    # 1.8.1: two Strings compare lexically (String.compareTo)
    ("${a < b}", {"a": "10", "b": "9"}, True),
    ("${a gt b}", {"a": "b", "b": "a"}, True),
    ("${a < b}", {"a": "\uffff", "b": "\U0001f600"}, False),  # by UTF-16 code units, as Java does
    ("${a < b}", {"a": [1], "b": [2]}, ERROR),  # a List is not Comparable
    # 1.8.2 A {==,!=} B: null equals only null
    ("${x == null}", {"x": None}, True),
    ("${x == 0}", {"x": None}, False),
    ("${x != null}", {"x": ""}, True),
    ("${x eq y}", {"x": None, "y": None}, True),
    # 1.8.2: a number and a String: the String coerced to the number's type
    ("${x == 5}", {"x": "5"}, True),  # Python said '5' == 5 is false
    ("${x == 5.0}", {"x": "5"}, True),
    ("${x == 5}", {"x": 5.0}, True),  # Long and Double compare as Doubles
    ("${x ne 5}", {"x": "6"}, True),
    ("${x == 0}", {"x": ""}, True),  # "" coerces to 0
    ("${x == 5}", {"x": "five"}, ERROR),
    ("${x == 1}", {"x": True}, ERROR),  # Python said True == 1
    # 1.8.2: a Boolean and a String: the String coerced to Boolean
    ("${x == true}", {"x": "true"}, True),
    ("${x == false}", {"x": "no"}, True),
    ("${x eq true}", {"x": True}, True),
    # 1.8.2: Doubles compare as Double.equals (JUEL): NaN equals NaN, 0.0 is not -0.0
    ("${0 / 0 == 0 / 0}", {}, True),
    ("${x == 0.0}", {"x": -0.0}, False),
    # 1.8.2: Strings by their text, Lists and Maps by equals
    ("${a == 'x'}", {"a": "x"}, True),
    ("${a == b}", {"a": [1, "a"], "b": [1, "a"]}, True),
    ("${a == 'x'}", {"a": ["x"]}, ERROR),  # Java would compare List.toString(): refused
]


@pytest.mark.parametrize(("juel", "data", "expected"), COMPARISONS)
def test_comparisons_follow_el(juel: str, data: dict, expected: object) -> None:
    check(juel, data, expected)


def test_nan_compares_as_juel_computes_it() -> None:
    """JUEL writes ``a <= b`` as ``!(a > b)`` and ``a >= b`` as ``!(a < b)``: with NaN, true."""
    assert run("${0 / 0 <= 1}") is True and run("${0 / 0 >= 1}") is True
    assert run("${0 / 0 < 1}") is False and run("${0 / 0 > 1}") is False


PROPERTIES = [
    # 1.6 A.B / A[B]: if A is null, null; if B is null, null
    ("${a.b}", {"a": None}, None),  # an AttributeError before
    ("${a.b.c}", {"a": {"b": None}}, None),
    ("${a[k]}", {"a": {"x": 1}, "k": None}, None),
    ("${a.b == null}", {"a": None}, True),
    ("${empty a.b}", {"a": None}, True),
    # 1.6, a Map: its value, null when the key is missing (MapELResolver)
    ("${a.b}", {"a": {"b": 2}}, 2),
    ("${a['b']}", {"a": {"b": 2}}, 2),
    ("${a[k]}", {"a": {"b": 2}, "k": "c"}, None),  # a KeyError before
    ("${a[1]}", {"a": {"1": 2}}, None),  # Map.get(1L) finds no key '1'
    # 1.6, a List: B coerced to an index; out of range is null (ListELResolver), a negative one too
    ("${a[1]}", {"a": ["x", "y"]}, "y"),
    ("${a['1']}", {"a": ["x", "y"]}, "y"),  # Integer.valueOf('1')
    ("${a[2]}", {"a": ["x", "y"]}, None),  # an IndexError before
    ("${a[-1]}", {"a": ["x", "y"]}, None),  # Python said 'y'
    ("${a[1.9]}", {"a": ["x", "y"]}, "y"),  # Double.intValue()
    ("${a['x']}", {"a": ["x", "y"]}, ERROR),
    ("${a[true]}", {"a": ["x", "y"]}, ERROR),
    # 1.6: a String, a number or a Boolean has no such property (BeanELResolver): an error
    ("${a.b}", {"a": "text"}, ERROR),
    ("${a.b}", {"a": 5}, ERROR),
    # methods keep working on what a property gives
    ("${a.b.size() == 2}", {"a": {"b": [1, 2]}}, True),
]


@pytest.mark.parametrize(("juel", "data", "expected"), PROPERTIES)
def test_properties_follow_el(juel: str, data: dict, expected: object) -> None:
    check(juel, data, expected)


def test_a_property_of_a_date_is_refused_at_deploy() -> None:
    from engine.workflow.juel import JuelError

    with pytest.raises(JuelError) as info:
        translate("${dateTime().year}")
    assert info.value.code == "unsupported_juel"


def test_an_unknown_variable_is_an_error_as_in_camunda() -> None:
    """Camunda: PropertyNotFoundException, ``Cannot resolve identifier 'x'``; not null."""
    with pytest.raises(NameError):
        run("${x == null}", {})
    assert run("${execution.getVariable('x') == null}", {}) is True  # the way to ask for a maybe-unset one


METHODS = [
    # EL 2.2 1.2.1.2: a method of the base's Java class, its arguments coerced to the parameter types
    ("${a.length()}", {"a": "张三"}, 2),
    ("${a.length()}", {"a": "\U00020000三"}, 3),  # String.length() counts UTF-16 units: 𠀀 is two
    ("${a.size()}", {"a": [1, 2]}, 2),
    ("${a.size()}", {"a": {"k": 1}}, 1),
    ("${a.size()}", {"a": "abc"}, ERROR),  # String has no size()
    ("${a.length()}", {"a": [1]}, ERROR),  # List has no length()
    ("${a.isEmpty()}", {"a": ""}, True),
    ("${a.size()}", {"a": None}, ERROR),  # a method of null: PropertyNotFoundException
    # Object.equals: no coercion, unlike ==
    ("${a.equals(5)}", {"a": "5"}, False),
    ("${a.equals(5)}", {"a": 5.0}, False),  # Double.equals(Long) is false; Python said 5.0 == 5
    ("${a.equals(1)}", {"a": True}, False),
    ("${a.equals(b)}", {"a": [1, "x"], "b": [1, "x"]}, True),
    ("${a.equals(b)}", {"a": [1], "b": [1.0]}, False),
    # String.contains(CharSequence) / List.contains(Object) by equals
    ("${a.contains('营业')}", {"a": "营业执照"}, True),
    ("${a.contains(1)}", {"a": [1.0, 2.0]}, False),
    ("${a.contains(1)}", {"a": [1, 2]}, True),
    ("${a.contains(5)}", {"a": "15"}, ERROR),  # a Long is no CharSequence
    # startsWith(String): the argument coerced to String (1.18.2: null is '')
    ("${a.startsWith(1)}", {"a": "123"}, True),
    ("${a.endsWith(b)}", {"a": "abc", "b": None}, True),
    # String.trim() removes the characters up to U+0020 only: the ideographic space stays
    ("${a.trim() == '张三'}", {"a": "  张三\t"}, True),
    ("${a.trim() == '张三'}", {"a": "\u3000张三"}, False),  # Python's strip() removed it
    ("${a.toUpperCase()}", {"a": "abc"}, "ABC"),
]


@pytest.mark.parametrize(("juel", "data", "expected"), METHODS)
def test_methods_are_the_java_classes(juel: str, data: dict, expected: object) -> None:
    check(juel, data, expected)


def test_every_el_function_is_exercised_by_the_tables() -> None:
    used = " ".join(
        translate(j, condition=True) for j, _, _ in ARITHMETIC + BOOLEAN + COMPARISONS + PROPERTIES + METHODS
    )
    assert {name for name in EL_HELPERS if f"{name}(" in used} == set(EL_HELPERS)


def test_the_el_functions_are_bounded_by_the_expression_budget() -> None:
    from engine.errors import ExpressionBudgetExceeded
    from engine.workflow import guards
    from engine.workflow.el import el_eq, el_lt

    big = list(range(300_000))
    with guards.activate(guards.Budget(max_work=10_000)):  # charged before the C call runs
        with pytest.raises(ExpressionBudgetExceeded):
            el_eq(big, list(big))  # List.equals
        with pytest.raises(ExpressionBudgetExceeded):
            el_lt("a" * 50_000, "a" * 50_000 + "b")  # String.compareTo
    with pytest.raises(InvalidInput) as info:
        run("${a + 1}", {"a": "1" * 100_000})  # a text too long to be a number is not parsed
    assert info.value.code == "juel_error"
    assert run("${a * a * a * a}", {"a": 2**40}) == 0  # Long arithmetic stays 64 bits: 2**160 wraps to 0


def test_literals_are_read_as_juel_reads_them() -> None:
    """JUEL's scanner: in a string only \\\\ and the string's own quote are escapes (any other is a
    ScanException, "invalid escape sequence"); an integer literal is Long.valueOf of its digits (012 is 12,
    beyond a long a parse failure)."""
    from engine.workflow.juel import JuelError

    assert run(r"${'it\'s' == " + '"it\'s"}') is True
    assert run(r"${'a\\b'}") == "a\\b"
    for text in (r"${'a\nb'}", r"${'say \"hi\"'}", "${9223372036854775808}"):
        with pytest.raises(JuelError) as info:
            translate(text)
        assert info.value.code == "bad_expression"
    assert run("${012 + 1}") == 13  # Python's parser refused 012
    assert run("${9223372036854775807 + 1}") == -(2**63)


def test_lists_and_maps_compare_as_java_equals_them_and_their_methods_stay_in_the_budget() -> None:
    """List.equals / Map.equals do not coerce ([1] is not [1.0]); List.contains is charged as a scan (a
    script looping over it ran 33 s of CPU under a 2 s limit), and toUpperCase past the sandbox's result
    bound is refused (it grew memory past the 64 MiB bound)."""
    from engine.errors import ExpressionBudgetExceeded
    from engine.workflow import guards
    from engine.workflow.el import el_eq, el_method, el_ne

    assert not el_eq([1], [1.0]) and not el_eq([True], [1]) and not el_eq({"k": 1}, {"k": 1.0})
    assert el_eq([1, "a"], [1, "a"]) and el_ne({"k": 1}, {"k": True})
    big = [0] * 100_000
    with guards.activate(guards.Budget(max_work=10_000)):
        with pytest.raises(ExpressionBudgetExceeded):
            el_method(big, "contains", -1)
    with guards.activate(guards.Budget(max_work=10**9)):
        with pytest.raises(ExpressionBudgetExceeded) as info:
            el_method("\u0390" * 400_000, "toUpperCase")  # three characters each in upper case
    assert info.value.code == "result_too_large"


def test_a_member_missing_after_a_dot_or_an_endless_integer_is_a_problem_not_a_crash() -> None:
    from engine.workflow.juel import JuelError

    for text in ("${order.}", "${dateTime().}", "${a.b.}", "${x > " + "1" * 5000 + "}"):
        with pytest.raises(JuelError) as info:
            translate(text)
        assert info.value.code == "bad_expression", text


def test_texts_become_numbers_as_javas_parsers_read_them() -> None:
    """Double.valueOf trims every character up to U+0020 and reads ASCII digits only; Long.valueOf trims
    nothing (Python's float() and int() read Arabic-Indic digits and skip only whitespace)."""
    from engine.workflow.el import to_double, to_long

    assert to_double("1.5\x01", "+") == 1.5 and to_double(" 2 ", "+") == 2.0
    for text in ("٥.٥", "١٢", "1_000"):
        for coerce in (to_double, to_long):
            with pytest.raises(InvalidInput) as info:
                coerce(text, "+")
            assert info.value.code == "juel_error", (text, coerce)
    with pytest.raises(InvalidInput):
        to_long(" 2 ", "+")


def test_numeric_literals_are_decimal_only_as_in_el() -> None:
    """EL's grammar (EL 3.0, 1.19: IntegerLiteral ``[0-9]+``, FloatingPointLiteral digits, '.', an ``e``
    exponent) has no hexadecimal or octal literal, and JUEL's scanner reads ``0x10p0`` as ``0`` and the name
    ``x10p0``, a syntax error: refused at deploy with a sentence that says so (not a crash, not 16.0). A
    leading zero is not octal: ``010`` is Long.valueOf("010"), 10."""
    from engine.workflow.juel import JuelError

    for text in (
        "${0x10p0}",
        "${amount > 0x10p0}",
        "${0X1.8P1 == 3.0}",
        "${0x10 == 16}",
        "${0xFFL}",
        "${0x}",
    ):
        with pytest.raises(JuelError) as info:
            translate(text)
        assert info.value.code == "bad_expression", text
        assert "十进制" in info.value.message and "0x" in info.value.message.lower(), text
    assert run("${010 == 10 && 010 + 1 == 11 && 00 == 0 && 0.5 == .5 && 0e1 == 0.0}") is True
    assert run("${1eq 1}") is True  # a word operator right after a number is still one (JUEL's scanner)
    for text in ("${1f}", "${1L}", "${08x}"):
        with pytest.raises(JuelError):
            translate(text)


@pytest.mark.parametrize(
    ("juel", "data", "expected"),
    [
        # 1.7.2 A / B: both coerced to Double, a String by Double.valueOf, which reads Java's hexadecimal
        # floating-point form (a significand and a binary exponent) as Java's source does
        ("${x / 1}", {"x": "0x10p0"}, 16.0),
        ("${x / 2}", {"x": "0X1.8P1"}, 1.5),
        ("${x / 1}", {"x": " -0x.8p1d "}, -1.0),
        ("${x + 1}", {"x": "0x1.8p1"}, 4.0),  # 1.7.1: a String with '.' is a Double
        ("${x - 0}", {"x": "0x1ep1"}, 60.0),  # ... or with an 'e' (a hexadecimal digit here)
        ("${x / 1}", {"x": "0x1p99999"}, math.inf),
        ("${-x}", {"x": "0x1.8p1"}, -3.0),
        ("${x == 16.0}", {"x": "0x10p0"}, True),  # 1.8.2: the other side is a Double
        # what Double.valueOf refuses: no binary exponent, no digit, a suffix after NaN / Infinity
        ("${x / 1}", {"x": "0x10"}, ERROR),
        ("${x / 1}", {"x": "0xp1"}, ERROR),
        ("${x / 1}", {"x": "0x1_0p0"}, ERROR),
        ("${x / 1}", {"x": "NaNd"}, ERROR),
        ("${x / 1}", {"x": "Infinityf"}, ERROR),
        # 1.7.1 with no '.', 'e', 'E': both coerced to Long, and Long.valueOf reads decimal digits only
        ("${x + 1}", {"x": "0x10p0"}, ERROR),
        ("${x + 1}", {"x": "0x10"}, ERROR),
        ("${x + 1}", {"x": "010"}, 11),  # not octal
        ("${x > 9}", {"x": "010"}, True),
    ],
)
def test_texts_in_javas_hexadecimal_form_become_numbers_where_java_reads_them(
    juel: str, data: dict, expected: object
) -> None:
    check(juel, data, expected)
