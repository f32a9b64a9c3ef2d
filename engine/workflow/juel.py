"""Camunda 7 / Flowable expressions (JUEL, the Java Unified Expression Language): a subset translated once,
when a model is parsed, into the sandbox's language (a Python expression that ``sandbox.check_source``
then checks like any other).

Which text is JUEL: a text that is one whole ``${...}`` or ``#{...}`` (what Camunda Modeler and Flowable
write in conditions, timers, due dates and input/output parameters). Any other text is ours (a sandboxed
Python expression) and is returned unchanged; a text that mixes literal text with ``${...}`` (a composite
expression) is outside the subset.

The subset, and what it becomes:

=====================================================  ==================================================
JUEL                                                   sandbox expression
=====================================================  ==================================================
``amount``, ``order.total``, ``order['total']``        ``amount``, ``el_get(order, 'total')``: null when
``items[0]``, ``m[key]``                               ``order`` is null or has no such key (1.6), a
                                                       list's item or null when the index is out of
                                                       range (``items[-1]`` too), else an error
``'text'``, ``"text"``, ``12``, ``1.5``, ``true``,     the same literal (``null`` is ``None``)
``false``, ``null``
``!x``, ``not x``                                      ``(not el_bool(x))``: EL's coercion to Boolean
                                                       (``'false'`` and ``''`` are false, a number is an
                                                       error); ``el_bool`` is left out where the operand
                                                       is a Boolean already (a comparison, ``empty``...)
``a && b``, ``a and b``, ``a || b``, ``a or b``        ``(el_bool(a) and el_bool(b))``, ``... or ...``
``== != < > <= >=``, ``eq ne lt gt le ge``             ``el_eq(a, b)`` ... ``el_ge(a, b)``: EL's rules
                                                       (``'5' == 5``, ``'10' > 9``, ``'true' == true``;
                                                       false when one side is null, ``==`` true for
                                                       two nulls)
``+ - * / %``, ``div``, ``mod``, unary ``-``           ``el_add(a, b)`` ... ``el_neg(a)`` (``el``): EL's
                                                       arithmetic, numeric only (``'1' + '2'`` is 3), ``/``
                                                       a Double, ``mod`` with the dividend's sign
``c ? a : b``                                          ``(a if el_bool(c) else b)``
a condition's value                                    ``el_condition(x)`` unless ``x`` is a Boolean: as
                                                       Camunda and Flowable, anything else (null, the
                                                       text ``'true'``) is an error
``empty x``                                            ``(x in (None, '', [], {}))``
``execution.getVariable('x')``                         ``get_variable('x')`` (null when ``x`` is not set)
``dateTime()``, ``now()``                              ``now()`` (the case clock)
``dateTime().plusDays(n)`` (also ``plusHours``,        ``plus_time(now(), n, 'days')``: an ISO date-time
``plusMinutes``, ``plusSeconds``, ``plusWeeks``,       that timers and due dates accept; ``minus*``
``plusMonths``, ``plusYears``, ``minus*``,             subtracts; ``toDate()`` keeps the value
``toDate()``)
``x.size()``, ``x.length()``, ``x.isEmpty()``,         ``el_method(x, 'size')`` ...: the Java class's
``x.equals(y)``, ``x.contains(y)``,                    method (``length()`` in UTF-16 units, ``equals``
``x.startsWith(y)``, ``x.endsWith(y)``,                without coercion, ``trim()`` up to U+0020 only);
``x.toUpperCase()``, ``x.toLowerCase()``, ``x.trim()`` one the class lacks (``'a'.size()``) is an error
``f(a, b)`` for one of our helpers (``days``,          the same call
``working_deadline``, ...) or builtins (``len``)
=====================================================  ==================================================

Anything else (another function or method, a bean such as ``${myService.check(x)}``, ``instanceof``,
lambdas, assignment, a composite text) raises ``JuelError`` with a ``code`` and a Chinese sentence; the
validator turns it into a problem of the element (``unsupported_juel``, or ``bad_expression`` for text
that is not an expression at all). A variable that is not set is an error, as in Camunda (``Cannot
resolve identifier``), except through ``execution.getVariable``.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

__all__ = ["JuelError", "is_juel", "to_sandbox", "translate"]

MAX_JUEL = 10_000  # characters of one expression (the sandbox's own limit applies to the result too)
MAX_NESTING = 60  # nested parentheses / operators the recursive-descent parser follows


class JuelError(ValueError):
    """A JUEL text outside the subset; ``code`` is stable English, ``message`` a Chinese sentence."""

    def __init__(self, message: str, code: str = "unsupported_juel", position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.position = position


@dataclass(frozen=True)
class _Token:
    kind: str  # 'num' 'str' 'name' 'op' 'end'
    text: str
    pos: int
    value: object = None


_WORD_OPS = {"and", "or", "not", "eq", "ne", "lt", "gt", "le", "ge", "div", "mod", "empty", "instanceof"}
_LITERALS = {"true": "True", "false": "False", "null": "None"}
_SYMBOLS = ("&&", "||", "==", "!=", "<=", ">=", "->", "+=", "(", ")", "[", "]", ".", ",", "?", ":",
            "!", "<", ">", "+", "-", "*", "/", "%", "=", ";", "{", "}")  # fmt: skip
_NUMBER = re.compile(r"(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]*(\.[0-9A-Fa-f]*)?([pP][+-]?\d*)?[fFdDlL]?")
"""What a Java programmer writes as a hexadecimal literal (``0x10``, ``0x10p0``): not a number in EL, whose
IntegerLiteral and FloatingPointLiteral are decimal only (JUEL reads ``0`` and then the name ``x10p0``)."""
_UNITS = {
    "Seconds": "seconds", "Minutes": "minutes", "Hours": "hours", "Days": "days", "Weeks": "weeks",
    "Months": "months", "Years": "years",
}  # fmt: skip
_DATE_METHODS = {f"{sign}{unit}": (sign, name) for sign in ("plus", "minus") for unit, name in _UNITS.items()}
_METHODS = {"size": 0, "length": 0, "isEmpty": 0, "equals": 1, "contains": 1, "startsWith": 1, "endsWith": 1,
            "toUpperCase": 0, "toLowerCase": 0, "trim": 0}  # fmt: skip
"""The methods of a String, List or Map the subset allows, with their number of arguments."""


def _helpers() -> frozenset[str]:
    """The functions an expression may call: our helpers and the sandbox's builtins (``len`` ...)."""
    from .sandbox import allowed_callables

    return allowed_callables()


def _tokens(text: str) -> list[_Token]:  # noqa: C901 - one branch per token kind
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            quote, j, chars = ch, i + 1, []
            while j < n and text[j] != quote:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                    if text[j] not in ("\\", quote):  # EL 1.3: only \\ and the quote are escapes
                        raise JuelError(
                            f"字符串中的转义 \\{text[j]} 无效（只能写 \\\\ 与 \\{quote}）",
                            "bad_expression",
                            j,
                        )
                chars.append(text[j])
                j += 1
            if j >= n:
                raise JuelError("字符串没有结束引号", "bad_expression", i)
            out.append(_Token("str", text[i : j + 1], i, "".join(chars)))
            i = j + 1
            continue
        number = _NUMBER.match(text, i)
        if number and (ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit())):
            literal = number.group(0)
            hexadecimal = _HEX.match(text, i) if literal == "0" else None
            if hexadecimal is not None:
                raise JuelError(
                    f"第 {i + 1} 个字符处的 {hexadecimal.group(0)!r} 不是 EL 的数字：EL 的整数和小数只能用"
                    "十进制书写（没有 Java 的十六进制写法 0x…、0x…p…）",
                    "bad_expression",
                    i,
                )
            decimal = any(c in literal for c in ".eE")
            if not decimal and len(literal.lstrip("0")) > 19:  # beyond any long: before int() (4300 digits)
                raise JuelError(f"整数 {literal[:30]}… 超出 Java long 的范围", "bad_expression", i)
            value: object = float(literal) if decimal else int(literal)
            if isinstance(value, int) and value > 2**63 - 1:  # JUEL's parser: Long.valueOf or a failure
                raise JuelError(f"整数 {literal} 超出 Java long 的范围", "bad_expression", i)
            out.append(_Token("num", literal, i, value))
            i = number.end()
            continue
        name = _NAME.match(text, i)
        if name:
            word = name.group(0)
            out.append(_Token("op" if word in _WORD_OPS else "name", word, i))
            i = name.end()
            continue
        for symbol in _SYMBOLS:
            if text.startswith(symbol, i):
                out.append(_Token("op", symbol, i))
                i += len(symbol)
                break
        else:
            raise JuelError(f"无法识别的字符：{ch!r}", "bad_expression", i)
    out.append(_Token("end", "", n))
    return out


class _Value:
    """A translated operand: its sandbox text, and what it is when the translation must know
    (``execution``, a ``dateTime()`` value, a bare variable)."""

    __slots__ = ("kind", "text")

    def __init__(self, text: str, kind: str = "expr") -> None:
        self.text = text
        self.kind = kind


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.index = 0
        self.depth = 0

    # ------------------------------------------------------------ helpers
    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, *texts: str) -> bool:
        return self.token.kind == "op" and self.token.text in texts

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise self.unexpected(f"此处应为 {text!r}")
        self.take()

    def unexpected(self, why: str = "") -> JuelError:
        token = self.token
        shown = "表达式结尾" if token.kind == "end" else repr(token.text)
        sentence = f"第 {token.pos + 1} 个字符处的 {shown} 无法理解" + (f"（{why}）" if why else "")
        return JuelError(sentence, "bad_expression", token.pos)

    def boolean(self, node: _Value) -> str:
        """``node`` where EL wants a Boolean (1.18.5: ``'false'`` is false, a number an error)."""
        text = self.value(node)
        return text if node.kind == "bool" else f"el_bool({text})"

    def value(self, node: _Value) -> str:
        if node.kind == "execution":
            raise JuelError("只支持 execution.getVariable('名称')，不支持直接使用 execution 对象")
        return node.text

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise JuelError(f"表达式嵌套超过 {MAX_NESTING} 层", "bad_expression", self.token.pos)

    # ------------------------------------------------------------ grammar (EL 2.2 precedence)
    def parse(self, condition: bool = False) -> str:
        node = self.ternary()
        result = self.value(node)
        if self.token.kind != "end":
            if self.at("=", "+=", ";", "->", "{"):
                raise JuelError(f"不支持 JUEL 的 {self.token.text!r}（赋值、分号、lambda 或集合构造）")
            raise self.unexpected("多余的内容")
        if condition and node.kind != "bool":  # Camunda and Flowable take a Boolean, nothing else
            return f"el_condition({result})"
        return result

    def ternary(self) -> _Value:
        self.deeper()
        condition = self.binary(0)
        if self.at("?"):
            self.take()
            yes = self.value(self.ternary())
            self.expect(":")
            no = self.value(self.ternary())
            condition = _Value(f"({yes} if {self.boolean(condition)} else {no})")
        self.depth -= 1
        return condition

    _LEVELS: tuple[dict[str, str], ...] = (
        {"||": "or", "or": "or"},
        {"&&": "and", "and": "and"},
        {"==": "el_eq", "!=": "el_ne", "eq": "el_eq", "ne": "el_ne"},
        {
            "<": "el_lt",
            ">": "el_gt",
            "<=": "el_le",
            ">=": "el_ge",
            "lt": "el_lt",
            "gt": "el_gt",
            "le": "el_le",
            "ge": "el_ge",
        },
        {"+": "el_add", "-": "el_sub"},
        {"*": "el_mul", "/": "el_div", "div": "el_div", "%": "el_mod", "mod": "el_mod"},
    )

    def binary(self, level: int) -> _Value:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        left = self.binary(level + 1)
        while self.token.kind == "op" and self.token.text in ops:
            op = ops[self.take().text]
            self.deeper()
            right = self.binary(level + 1)
            self.depth -= 1
            if op in ("and", "or"):  # 1.9: each operand coerced to Boolean, the second only if needed
                left = _Value(f"({self.boolean(left)} {op} {self.boolean(right)})", "bool")
            else:  # EL's arithmetic (1.7) and comparisons (1.8), not Python's: el.py
                kind = "bool" if level in (2, 3) else "expr"
                left = _Value(f"{op}({self.value(left)}, {self.value(right)})", kind)
        if self.at("instanceof"):
            raise JuelError("不支持 instanceof")
        return left

    def unary(self) -> _Value:
        if self.at("!", "not"):
            self.take()
            self.deeper()
            operand = self.boolean(self.unary())
            self.depth -= 1
            return _Value(f"(not {operand})", "bool")
        if self.at("-"):
            self.take()
            self.deeper()
            node = self.unary()
            operand = self.value(node)
            self.depth -= 1
            if node.kind == "number":  # a literal keeps its type: Python's minus is Java's
                return _Value(f"(-{operand})", "number")
            return _Value(f"el_neg({operand})")
        if self.at("empty"):
            self.take()
            self.deeper()
            x = self.value(self.unary())
            self.depth -= 1
            return _Value(f"({x} in (None, '', [], {{}}))", "bool")  # the operand once: it stays linear
        return self.postfix(self.primary())

    def arguments(self) -> list[str]:
        self.expect("(")
        args: list[str] = []
        if not self.at(")"):
            args.append(self.value(self.ternary()))
            while self.at(","):
                self.take()
                args.append(self.value(self.ternary()))
        self.expect(")")
        return args

    def primary(self) -> _Value:
        token = self.token
        if token.kind == "num":
            self.take()
            shown = str(token.value) if isinstance(token.value, int) else token.text  # 012 is 12
            return _Value(shown, "number")
        if token.kind == "str":
            self.take()
            return _Value(repr(token.value))
        if self.at("("):
            self.take()
            node = self.ternary()
            self.expect(")")
            return _Value(f"({self.value(node)})", node.kind if node.kind in ("bool", "number") else "expr")
        if token.kind != "name":
            raise self.unexpected()
        self.take()
        word = token.text
        if word in _LITERALS:
            return _Value(_LITERALS[word], "bool" if word != "null" else "expr")
        if self.at("("):
            return self.call(word, self.arguments())
        colon = self.token
        after = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        if (
            self.at(":")
            and after.kind == "name"
            and self.index + 2 < len(self.tokens)
            and colon.pos == token.pos + len(word)
            and after.pos == colon.pos + 1
            and self.tokens[self.index + 2].text == "("
        ):
            raise JuelError(f"不支持带前缀的 JUEL 函数：{word}:{after.text}()")
        if word == "execution":
            return _Value("execution", "execution")
        if word in ("task", "authenticatedUserId", "variables", "execution_context"):
            raise JuelError(f"不支持 Camunda 的内置对象 {word}")
        if "$" in word or keyword.iskeyword(word) or word in ("True", "False", "None"):
            raise JuelError(f"变量名 {word!r} 在本系统中不能使用")
        return _Value(word, "name")

    def call(self, name: str, args: list[str]) -> _Value:
        if name == "dateTime" and not args:
            return _Value("now()", "date")
        if name == "now" and not args:
            return _Value("now()", "date")
        if name in _helpers():
            return _Value(f"{name}({', '.join(args)})")
        raise JuelError(f"不支持的 JUEL 函数：{name}()")

    def postfix(self, node: _Value) -> _Value:
        while self.at(".", "["):
            if self.take().text == "[":
                key = self.ternary()
                self.expect("]")
                node = _Value(f"el_get({self.property_base(node)}, {self.value(key)})")  # 1.6
                continue
            if self.token.kind not in ("name", "op"):  # the end of the expression among them
                raise self.unexpected("点号后应为属性名或方法名")
            token = self.take()
            member = token.text
            if self.at("("):
                node = self.method(node, member, self.arguments())
            elif node.kind == "execution":
                raise JuelError(f"不支持 execution.{member}")
            else:
                if not member.isidentifier() or member.startswith("_"):
                    raise JuelError(f"不支持的属性名：{member!r}")
                node = _Value(f"el_get({self.property_base(node)}, {member!r})")  # a.b is a['b'] (1.6)
        return node

    def property_base(self, node: _Value) -> str:
        if node.kind == "date":
            raise JuelError("dateTime() 的值没有属性：只支持 plusDays/plusHours/... 与 toDate()")
        return self.value(node)

    def method(self, node: _Value, name: str, args: list[str]) -> _Value:  # noqa: C901 - one per method
        if node.kind == "execution":
            if name in ("getVariable", "getVariableLocal") and len(args) == 1 and _is_string_literal(args[0]):
                return _Value(f"get_variable({args[0]})")
            raise JuelError(f"只支持 execution.getVariable('名称')，不支持 execution.{name}()")
        if node.kind == "date":
            if name in _DATE_METHODS and len(args) == 1:
                sign, unit = _DATE_METHODS[name]
                amount = args[0] if sign == "plus" else f"(-{args[0]})"
                return _Value(f"plus_time({node.text}, {amount}, {unit!r})", "date")
            if name in ("toDate", "toDateTime") and not args:
                return node
            raise JuelError(f"dateTime() 只支持 plusDays/plusHours/... 与 toDate()，不支持 {name}()")
        target = self.value(node)
        if name in _METHODS and len(args) == _METHODS[name]:  # the Java class's method: el_method
            kind = "bool" if name in ("isEmpty", "equals", "contains", "startsWith", "endsWith") else "expr"
            return _Value(f"el_method({', '.join([target, repr(name), *args])})", kind)
        raise JuelError(f"不支持的方法调用：{name}()（只能调用本系统提供的函数）")


def _is_string_literal(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and text.count(text[0]) == 2


def is_juel(text: str | None) -> bool:
    """A whole ``${...}`` / ``#{...}`` text (what Camunda and Flowable write)."""
    value = (text or "").strip()
    return len(value) >= 3 and value[0] in "$#" and value[1] == "{" and value.endswith("}")


def translate(text: str, condition: bool = False) -> str:
    """The sandbox expression for one JUEL text (``${...}`` or its inside); ``JuelError`` if outside the
    subset. A ``condition`` (of a sequence flow, loop, completion or conditional event) must give a
    Boolean, as in Camunda and Flowable (``el_condition``)."""
    value = text.strip()
    if is_juel(value):
        value = value[2:-1]
    if len(value) > MAX_JUEL:
        raise JuelError(f"表达式超过 {MAX_JUEL} 个字符", "bad_expression")
    if not value.strip():
        raise JuelError("表达式为空", "bad_expression")
    translated = _Parser(value).parse(condition)
    if len(translated) > 4 * MAX_JUEL:  # no rule copies an operand, so this is a bound, not a limit
        raise JuelError(f"表达式译文超过 {4 * MAX_JUEL} 个字符", "bad_expression")
    return translated


def to_sandbox(text: str | None, condition: bool = False) -> str | None:
    """The expression the sandbox runs for a text read from a model: JUEL translated (a ``condition``
    must give a Boolean), ours unchanged. A text mixing literal text and ``${...}`` raises
    ``JuelError``."""
    if text is None:
        return None
    value = text.strip()
    if is_juel(value) and _one_expression(value):
        return translate(value, condition)
    if "${" in value or "#{" in value:
        if _looks_composite(value):
            raise JuelError("不支持混合文字与 ${...} 的组合表达式；请写成一个完整的 ${...}")
    return text


def _one_expression(value: str) -> bool:
    """``${a} and ${b}`` starts with ``${`` and ends with ``}`` but is a composite text."""
    inner = value[2:-1]
    depth, quote = 0, ""
    for ch in inner:
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return True


def _looks_composite(value: str) -> bool:
    return re.search(r"[$#]\{[^}]*\}", value) is not None
