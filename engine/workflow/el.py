"""The operators of Java EL 2.2 (JSR-245, the Unified Expression Language that Camunda 7 and Flowable run
through JUEL) for JUEL translated into the sandbox's language (``engine.workflow.juel``).

A JUEL operator does not do what the Python operator of the same spelling does: ``'1' + '2'`` is 3,
``-7 mod 3`` is -1, ``'false'`` coerces to false, ``null > 5`` is false, ``'5' == 5`` is true, ``a.b`` on a
null ``a`` is null. The translation therefore writes each operator as a call of one function here
(``el_add(a, b)`` ...), chosen once at deploy time; each function applies the rules of the spec's sections
1.6-1.10 and its type coercions (1.18), as JUEL implements them, to the values it is given. Nothing is
parsed at run time. The methods the subset allows (``size()``, ``equals()``, ``trim()``...) are the Java
classes' own (``el_method``): ``'𠀀'.length()`` is 2 (UTF-16 units), ``trim()`` keeps U+3000.

Java types are read from the task data's JSON values: ``None`` is null, ``bool`` Boolean, ``int`` Long
(an int outside Java's long range is a BigInteger), ``float`` Double, ``str`` String, ``list`` List,
``dict`` Map. Long arithmetic wraps at 64 bits as Java's does. What EL would do with a BigDecimal (a
BigInteger met with a Double or a division) is refused (``juel_error``) rather than approximated; so is the
Java text of a List or Map where a String rule would need it. An EL error (a text that is no number, a
number where a Boolean is needed, a remainder by zero) is ``InvalidInput`` with the code ``juel_error``.

Each function is bounded: a Long is 64 bits, a BigInteger goes through ``guards.binop``, long texts and
collections are charged to the evaluation's budget before they are compared.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from engine.errors import InvalidInput

__all__ = ["EL_HELPERS"]

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
INT_MIN = -(2**31)
# ASCII digits only: Java's parsers refuse other scripts' digits, which Python's int() and float() read
_LONG_TEXT = re.compile(r"[+-]?0*(\d{1,19})", re.ASCII)  # Long.valueOf: a sign and decimal digits
_BIG_TEXT = re.compile(r"[+-]?\d+", re.ASCII)  # new BigInteger(text)
_DOUBLE_TEXT = re.compile(  # Double.valueOf: NaN, Infinity, a decimal or a hexadecimal (0x1.8p1) number
    r"[+-]?(NaN|Infinity|(?P<number>(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
    r"|(?P<hex>0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+))[fFdD]?)",
    re.ASCII,
)
MAX_NUMBER_TEXT = 400  # characters of a text coerced to a number (Java would read more; no real value has)


def _guards() -> Any:
    """``engine.workflow.guards``, imported when first needed (it builds its builtins from ``helpers``,
    which lists these functions)."""
    from . import guards

    return guards


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if value is None or isinstance(value, bool | int | float):
        return "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return {list: "List", tuple: "List", dict: "Map"}.get(type(value), type(value).__name__)


def _error(text: str, operator: str) -> InvalidInput:
    return InvalidInput(f"JUEL 表达式求值出错：{text}", code="juel_error", operator=operator)


def _wrap(n: int) -> int:
    """A Long result: Java's two's-complement overflow."""
    return (n - LONG_MIN) % 2**64 + LONG_MIN


def _is_long(value: Any) -> bool:
    return type(value) is int and LONG_MIN <= value <= LONG_MAX


def _is_big(value: Any) -> bool:
    return type(value) is int and not LONG_MIN <= value <= LONG_MAX


def _dot_ee(value: Any) -> bool:
    """A String containing '.', 'e' or 'E' (the spec's test for a String taken as a Double)."""
    return type(value) is str and ("." in value or "e" in value or "E" in value)


def _text_of_number(value: str, operator: str) -> str:
    if len(value) > MAX_NUMBER_TEXT:
        raise _error(f"文字 {_shown(value)} 过长，不能转换为数字", operator)
    return value


def to_long(value: Any, operator: str) -> int:
    """Coerce to Long (1.18.3): null and '' are 0, a Boolean is an error, a Double is truncated
    (Java's longValue), a String is read by Long.valueOf."""
    t = type(value)
    if value is None or (t is str and value == ""):
        return 0
    if t is int:
        return value if LONG_MIN <= value <= LONG_MAX else _wrap(value)  # BigInteger.longValue()
    if t is float:
        if value != value:
            return 0
        if math.isinf(value):
            return LONG_MAX if value > 0 else LONG_MIN
        return max(LONG_MIN, min(LONG_MAX, int(value)))
    if t is str:
        match = _LONG_TEXT.fullmatch(_text_of_number(value, operator))
        if match is not None:
            number = int(value)
            if LONG_MIN <= number <= LONG_MAX:
                return number
        raise _error(f"文字 {_shown(value)} 不能转换为整数（Long）", operator)
    raise _error(f"{_shown(value)} 不能转换为数字", operator)


def to_big(value: Any, operator: str) -> int:
    """Coerce to BigInteger: like ``to_long`` without the range."""
    t = type(value)
    if t is int:
        return value
    if t is str and value != "":
        if _BIG_TEXT.fullmatch(_text_of_number(value, operator)) is None:
            raise _error(f"文字 {_shown(value)} 不能转换为整数（BigInteger）", operator)
        return int(value)
    return to_long(value, operator)


def to_double(value: Any, operator: str) -> float:
    """Coerce to Double (1.18.3): null and '' are 0.0, a Boolean is an error, a String is read by
    Double.valueOf (surrounding blanks ignored, as Java does): a decimal number, ``NaN``, ``Infinity`` or a
    hexadecimal one (``0x1.8p1`` is 3.0; Java's, not EL's: EL's own literals are decimal only), with a
    type suffix (``f``, ``d``) after a number only."""
    t = type(value)
    if value is None or (t is str and value == ""):
        return 0.0
    if t is float:
        return value
    if t is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if t is str:
        text = _text_of_number(value, operator).strip("".join(chr(c) for c in range(0x21)))  # String.trim
        match = _DOUBLE_TEXT.fullmatch(text)
        if match is None:
            raise _error(f"文字 {_shown(value)} 不能转换为数字（Double）", operator)
        if match["hex"] is not None:  # Java reads a hexadecimal significand with a binary exponent too
            sign = -1.0 if text.startswith("-") else 1.0
            try:
                return sign * float.fromhex(match["hex"])
            except OverflowError:
                return sign * math.inf
        body = text.rstrip("fFdD") if match["number"] is not None else text
        return float(body.replace("Infinity", "inf"))
    raise _error(f"{_shown(value)} 不能转换为数字", operator)


def to_bool(value: Any, operator: str) -> bool:
    """Coerce to Boolean (1.18.5): null and '' are false, a String is Boolean.valueOf (true only for
    'true', any case), anything else is an error."""
    t = type(value)
    if t is bool:
        return value
    if value is None:
        return False
    if t is str:
        return len(value) == 4 and value.lower() == "true"
    raise _error(f"{_shown(value)} 不能转换为布尔值（只有 true、false 和文字可以）", operator)


def to_text(value: Any, operator: str) -> str:
    """Coerce to String (1.18.2) where an operator's String rule needs it: null is '', a Boolean 'true' /
    'false'. Numbers never reach it (their rules come first); a List or Map (Java's toString) is refused."""
    t = type(value)
    if t is str:
        return value
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    raise _error(f"{_shown(value)} 不能作为文字比较", operator)


def _unsupported_big(operator: str) -> InvalidInput:
    return _error("超出 Java long 范围的整数与小数或除法一起运算（BigDecimal）在本系统中不支持", operator)


# ---------------------------------------------------------------- arithmetic (1.7)


def _arith(op: str, a: Any, b: Any, symbol: str) -> Any:
    """A {+,-,*} B (1.7.1)."""
    if a is None and b is None:
        return 0
    if type(a) is float or type(b) is float or _dot_ee(a) or _dot_ee(b):
        if _is_big(a) or _is_big(b):
            raise _unsupported_big(symbol)
        x, y = to_double(a, symbol), to_double(b, symbol)
        return x + y if op == "add" else x - y if op == "sub" else x * y
    if _is_big(a) or _is_big(b):
        return _guards().binop(op, to_big(a, symbol), to_big(b, symbol))
    x, y = to_long(a, symbol), to_long(b, symbol)
    return _wrap(x + y if op == "add" else x - y if op == "sub" else x * y)


def el_add(a: Any, b: Any) -> Any:
    """JUEL ``a + b``: always numeric (``'1' + '2'`` is 3; a text that is no number is an error)."""
    return _arith("add", a, b, "+")


def el_sub(a: Any, b: Any) -> Any:
    """JUEL ``a - b``."""
    return _arith("sub", a, b, "-")


def el_mul(a: Any, b: Any) -> Any:
    """JUEL ``a * b``."""
    return _arith("mul", a, b, "*")


def el_div(a: Any, b: Any) -> Any:
    """JUEL ``a / b`` and ``a div b`` (1.7.2): a Double (``5 / 2`` is 2.5), by zero Infinity or NaN as
    in Java."""
    if a is None and b is None:
        return 0
    if _is_big(a) or _is_big(b):
        raise _unsupported_big("/")
    x, y = to_double(a, "/"), to_double(b, "/")
    if y == 0.0:
        if x == 0.0 or x != x:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def el_mod(a: Any, b: Any) -> Any:
    """JUEL ``a % b`` and ``a mod b`` (1.7.3): Java's remainder, whose sign is the dividend's
    (``-7 mod 3`` is -1); a Long remainder by zero is an error, a Double one NaN."""
    if a is None and b is None:
        return 0
    if type(a) is float or type(b) is float or _dot_ee(a) or _dot_ee(b):
        x, y = to_double(a, "%"), to_double(b, "%")
        if y == 0.0 or x != x or y != y or math.isinf(x):
            return math.nan
        return math.fmod(x, y)
    if _is_big(a) or _is_big(b):
        x, y = to_big(a, "%"), to_big(b, "%")
    else:
        x, y = to_long(a, "%"), to_long(b, "%")
    if y == 0:
        raise _error("整数除以零（取余）", "%")
    remainder = _guards().binop("mod", abs(x), abs(y))
    return -remainder if x < 0 else remainder


def el_neg(value: Any) -> Any:
    """JUEL unary ``-a`` (1.7.4): null is 0, a String a Long or a Double by its text, a Boolean or a
    collection an error."""
    t = type(value)
    if value is None:
        return 0
    if t is float:
        return -value
    if t is int:
        return -value if _is_big(value) else _wrap(-value)
    if t is str:
        return -to_double(value, "-") if _dot_ee(value) else _wrap(-to_long(value, "-"))
    raise _error(f"{_shown(value)} 不能取负", "-")


# ---------------------------------------------------------------- logic (1.9, 1.11)


def el_bool(value: Any) -> bool:
    """A value where JUEL wants a Boolean (``!``, ``&&``, ``||``, the condition of ``? :``): the
    coercion of 1.18.5 (``'false'`` is false, ``''`` and null are false, a number is an error)."""
    return to_bool(value, "boolean")


def el_condition(value: Any) -> bool:
    """The value of a JUEL condition (sequence flow, loop or completion condition, conditional event):
    Camunda and Flowable evaluate it to Object and refuse anything but a Boolean (``condition expression
    returns non-Boolean``, ``... returns null``); so does this, rather than reading it as Python would."""
    if type(value) is bool:
        return value
    raise _error(f"条件表达式的结果必须是布尔值，实际为 {_shown(value)}", "condition")


# ---------------------------------------------------------------- comparisons (1.8)


def _java_text_order(a: str, b: str) -> int:
    """String.compareTo: by UTF-16 code units (a character above U+FFFF sorts below U+E000..U+FFFF)."""
    if max(len(a), len(b)) > 256:
        ascii_only = a.isascii() and b.isascii()  # else both are encoded in full below
        _guards().budget().charge((min(len(a), len(b)) if ascii_only else len(a) + len(b)) + 1)
    if not (a.isascii() and b.isascii()):
        ea, eb = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
        return (ea > eb) - (ea < eb)
    return (a > b) - (a < b)


def _order(a: Any, b: Any, operator: str) -> int | None:
    """-1 / 0 / 1 for two non-null values by the rules of 1.8.1; None when a Double is NaN."""
    if type(a) is float or type(b) is float:
        x, y = to_double(a, operator), to_double(b, operator)
        if x != x or y != y:
            return None
        return (x > y) - (x < y)
    if _is_big(a) or _is_big(b):
        x, y = to_big(a, operator), to_big(b, operator)
        return (x > y) - (x < y)
    if type(a) is int or type(b) is int:
        x, y = to_long(a, operator), to_long(b, operator)
        return (x > y) - (x < y)
    if type(a) is str or type(b) is str:
        return _java_text_order(to_text(a, operator), to_text(b, operator))
    if type(a) is bool and type(b) is bool:  # Boolean is Comparable: false < true
        return (a > b) - (a < b)
    raise _error(f"{_shown(a)} 与 {_shown(b)} 不能比较大小", operator)


def _relational(a: Any, b: Any, operator: str, test: Callable[[int | None], bool], same: bool) -> bool:
    if a is b:
        return same
    if a is None or b is None:
        return False
    return test(_order(a, b, operator))


def el_lt(a: Any, b: Any) -> bool:
    """JUEL ``a < b`` / ``lt`` (1.8.1): false when either is null; a String and a number compare as
    numbers (``'10' > 9``), two Strings by their text."""
    return _relational(a, b, "<", lambda o: o is not None and o < 0, False)


def el_gt(a: Any, b: Any) -> bool:
    """JUEL ``a > b`` / ``gt``."""
    return _relational(a, b, ">", lambda o: o is not None and o > 0, False)


def el_le(a: Any, b: Any) -> bool:
    """JUEL ``a <= b`` / ``le`` (true for null <= null, false for one null). JUEL computes it as
    ``!(a > b)``, so a NaN operand gives true."""
    return _relational(a, b, "<=", lambda o: not (o is not None and o > 0), True)


def el_ge(a: Any, b: Any) -> bool:
    """JUEL ``a >= b`` / ``ge`` (``!(a < b)``, as JUEL computes it)."""
    return _relational(a, b, ">=", lambda o: not (o is not None and o < 0), True)


def el_eq(a: Any, b: Any) -> bool:
    """JUEL ``a == b`` / ``eq`` (1.8.2): a number and a String compare as numbers (``'5' == 5``; a text
    that is no number is an error), a Boolean and a String as Booleans (``'true' == true``); Doubles as
    Double.equals does (NaN equals NaN, 0.0 is not -0.0); null equals only null."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    ta, tb = type(a), type(b)
    if ta is float or tb is float:
        x, y = to_double(a, "=="), to_double(b, "==")
        if x != x or y != y:
            return x != x and y != y
        return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)
    if _is_big(a) or _is_big(b):
        return to_big(a, "==") == to_big(b, "==")
    if ta is int or tb is int:
        return to_long(a, "==") == to_long(b, "==")
    if ta is bool or tb is bool:
        return to_bool(a, "==") == to_bool(b, "==")
    if ta is str or tb is str:
        return bool(_guards().compare("eq", to_text(a, "=="), to_text(b, "==")))
    return java_equals(a, b)  # List / Map: List.equals / Map.equals, element by element (no coercion)


def el_ne(a: Any, b: Any) -> bool:
    """JUEL ``a != b`` / ``ne``: the negation of ``el_eq``."""
    return not el_eq(a, b)


# ---------------------------------------------------------------- properties (1.6)


def _index(key: Any) -> int:
    """ListELResolver's index: a Number's intValue, a String by Integer.valueOf, else an error."""
    t = type(key)
    if t is int:
        return (key - INT_MIN) % 2**32 + INT_MIN
    if t is float:  # Double.intValue(): NaN is 0, out of range the nearest bound
        if key != key:
            return 0
        return -INT_MIN - 1 if key >= -INT_MIN else INT_MIN if key <= INT_MIN else int(key)
    if t is str:
        match = _LONG_TEXT.fullmatch(_text_of_number(key, "[]"))
        if match is not None and INT_MIN <= int(key) <= -INT_MIN - 1:
            return int(key)
    raise _error(f"{_shown(key)} 不能作为列表下标", "[]")


def el_get(base: Any, key: Any) -> Any:
    """JUEL ``base.key`` / ``base[key]`` (1.6): null when ``base`` or ``key`` is null, a Map's value
    (null when the key is missing), a List's item (null when the index is out of range, a negative one
    included); a property of a text, number or Boolean is an error."""
    if base is None or key is None:
        return None
    t = type(base)
    if t is dict:
        if type(key) not in (str, int, float, bool):
            return None  # Map.get of a List or Map key: the data's keys are texts
        _guards().key(key)
        return base.get(key)
    if t is list or t is tuple:
        index = _index(key)
        return base[index] if 0 <= index < len(base) else None
    raise _error(f"{_shown(base)} 没有属性 {_shown(key)}", ".")


# ---------------------------------------------------------------- methods (1.2.1.2, the Java classes')

_JAVA_BLANK = "".join(chr(c) for c in range(0x21))  # String.trim() removes every char <= U+0020, no more


def java_equals(a: Any, b: Any) -> bool:
    """Object.equals as the Java values would answer: no coercion (a Long never equals a Double or a
    Boolean), Double.equals for Doubles, List and Map element by element."""
    ta, tb = type(a), type(b)
    if ta is tuple:
        ta = list
    if tb is tuple:
        tb = list
    if ta is not tb:
        return False
    if ta is float:
        if a != a or b != b:
            return a != a and b != b
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if ta is list:
        if len(a) != len(b):
            return False
        _guards().budget().charge(len(a) + 1)
        return all(java_equals(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        if len(a) != len(b):
            return False
        _guards().budget().charge(len(a) + 1)
        return all(k in b and java_equals(v, b[k]) for k, v in a.items())
    if ta is str and len(a) > 256:
        _guards().budget().charge(min(len(a), len(b)) + 1)
    return bool(a == b)


def _java_kind(value: Any) -> str:
    t = type(value)
    if t is str:
        return "String"
    if t is list or t is tuple:
        return "List"
    if t is dict:
        return "Map"
    return "Object"


def _text_argument(value: Any, method: str) -> str:
    """A method's String parameter: EL coerces the argument (1.18.2): null is '', a Long or Boolean its
    text; a Double (whose Java text this does not reproduce) or a collection is refused."""
    t = type(value)
    if t is int:
        return str(value)
    if value is None or t is str or t is bool:
        return to_text(value, method)
    raise _error(f"{method}() 的参数 {_shown(value)} 不能作为文字", method)


def el_method(target: Any, name: str, *args: Any) -> Any:
    """A method of a Java String, List or Map as JUEL invokes it: ``size()`` (List, Map), ``length()``
    (String, in UTF-16 units as Java counts them), ``isEmpty()``, ``equals(x)`` (Object.equals, no
    coercion), ``contains(x)`` (String: a text argument; List: by equals), ``startsWith`` / ``endsWith``
    (String, the argument coerced to String), ``toUpperCase()`` / ``toLowerCase()``, ``trim()`` (the
    characters up to U+0020 only: an ideographic space U+3000 stays, as in Java). A method of null, or one
    the value's class does not have, is an error."""
    if target is None:
        raise _error(f"不能在 null 上调用 {name}()", name)
    kind = _java_kind(target)
    if name == "equals" and len(args) == 1:
        return java_equals(target, args[0])
    if kind == "String":
        if len(target) > 256:
            _guards().budget().charge(len(target) + 1)
        if name == "length" and not args:
            return len(target) if target.isascii() else len(target.encode("utf-16-le", "surrogatepass")) // 2
        if name == "isEmpty" and not args:
            return target == ""
        if name == "contains" and len(args) == 1:
            if type(args[0]) is not str:
                raise _error(f"contains() 的参数 {_shown(args[0])} 不是文字", name)
            return bool(_guards().compare("in", args[0], target))
        if name in ("startsWith", "endsWith") and len(args) == 1:
            prefix = _text_argument(args[0], name)
            return target.startswith(prefix) if name == "startsWith" else target.endswith(prefix)
        if name in ("toUpperCase", "toLowerCase") and not args:
            changed = target.upper() if name == "toUpperCase" else target.lower()
            if len(changed) > _guards().MAX_SEQUENCE:  # 'ΐ'.upper() is three characters
                raise _guards().too_large(f"{name}() 的结果有 {len(changed)} 个字符")
            return changed
        if name == "trim" and not args:
            return target.strip(_JAVA_BLANK)
    elif kind in ("List", "Map"):
        if name == "size" and not args:
            return len(target)
        if name == "isEmpty" and not args:
            return len(target) == 0
        if kind == "List" and name == "contains" and len(args) == 1:
            _guards().budget().charge(len(target) + 1)  # a scan of the whole list, as `in` is charged
            return any(java_equals(item, args[0]) for item in target)
    raise _error(f"{_shown(target)} 没有方法 {name}()（参数 {len(args)} 个）", name)


EL_HELPERS: dict[str, Callable[..., Any]] = {
    "el_add": el_add,
    "el_sub": el_sub,
    "el_mul": el_mul,
    "el_div": el_div,
    "el_mod": el_mod,
    "el_neg": el_neg,
    "el_bool": el_bool,
    "el_condition": el_condition,
    "el_eq": el_eq,
    "el_ne": el_ne,
    "el_lt": el_lt,
    "el_gt": el_gt,
    "el_le": el_le,
    "el_ge": el_ge,
    "el_get": el_get,
    "el_method": el_method,
}
"""The functions translated JUEL calls (also callable by name from our own expressions)."""
