"""Values against what the columns can store, checked by us so that every backend behaves the same.

PostgreSQL refuses a string longer than its ``String(n)`` column, an integer past the column's range and a
NUL character in text; SQLite stores the first two happily and both drivers choke on a lone UTF-16
surrogate. :func:`check_row` checks a row (column name -> value) against its table's column types and
refuses a value that would not be stored as given with ``InvalidInput`` naming the field, the column and
the limit:

=====================  ==========================================================================
column type            rule
=====================  ==========================================================================
``String(n)``          at most ``n`` characters (``value_too_long``, ``max``); no NUL, no surrogate
``Text``               no NUL, no lone surrogate (``bad_character``, ``reason``)
``Integer`` & co.      within the column's range (``value_out_of_range``, ``min``/``max``): 32 bits,
                       ``SmallInteger`` 16, ``BigInteger`` 64
``JSON``               strings and keys without NUL or surrogate, numbers finite (``path`` inside)
=====================  ==========================================================================

A column marked ``info={"produced": True}`` holds text we produce ourselves (the instance state and the
spec as JSON, whose NULs are escapes; the BPMN that lxml parsed, which refuses both characters): it is not
scanned, as scanning the state of every step would cost more than the step's write.

:func:`install_column_guard` (``make_engine`` installs it) applies the same check to every Core
``INSERT``/``UPDATE`` a connection executes: the repositories, the case commands and the licence library
(which may not import this package) are covered by one rule. The step writes' prepared PostgreSQL
statement, which goes to the driver as text, calls :func:`check_row` itself (``steps.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, Integer, SmallInteger, String, Table, event
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter

from engine.errors import InvalidInput
from engine.limits import bad_character

__all__ = ["check_row", "check_json", "install_column_guard", "storable_text"]

Problem = tuple[str, str, dict[str, Any]]  # message, code, detail of a refused value
Rule = Callable[[Any], Problem | None]
_RULES: dict[Table, dict[str, Rule]] = {}
_SURROGATES = re.compile("[\ud800-\udfff]")
_REASONS = {"nul": "空字符（NUL）", "surrogate": "不成对的代理字符"}


def _character_problem(reason: str, **detail: Any) -> Problem:
    return f"取值含有无法保存的字符：{_REASONS[reason]}", "bad_character", {"reason": reason, **detail}


def _string_rule(length: int | None) -> Rule:
    def rule(value: Any) -> Problem | None:
        if not isinstance(value, str):
            return None
        if length is not None and len(value) > length:
            detail = {"max": length, "length": len(value)}
            return f"取值过长：{len(value)} 个字符，上限 {length}", "value_too_long", detail
        reason = bad_character(value)
        return _character_problem(reason) if reason is not None else None

    return rule


def _integer_rule(bits: int) -> Rule:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def rule(value: Any) -> Problem | None:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            return f"数值超出范围：{low} 至 {high}", "value_out_of_range", {"min": low, "max": high}
        return None

    return rule


def _json_ok(value: Any) -> bool:
    """The fast pass: no path bookkeeping (the value is nearly always fine)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if bad_character(item) is not None:
                return False
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


def _json_problem(value: Any) -> Problem | None:
    if _json_ok(value):
        return None
    stack: list[tuple[Any, str]] = [(value, "$")]  # the slow pass, naming where the value sits
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            reason = bad_character(item)
            if reason is not None:
                return _character_problem(reason, path=path)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "数字必须是有限值（不接受 NaN 或无穷大）", "number_not_finite", {"path": path}
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                where = f"{path}.{key}"
                if isinstance(key, str):
                    stack.append((key, where))
                stack.append((inner, where))
        elif isinstance(item, list | tuple):
            stack.extend((inner, f"{path}[{index}]") for index, inner in enumerate(item))
    return None


def check_json(value: Any, **detail: Any) -> None:
    """A JSON column's value: every string and key storable (no NUL, no surrogate), every number finite."""
    problem = _json_problem(value)
    if problem is not None:
        message, code, extra = problem
        raise InvalidInput(message, code=code, **{**detail, **extra})


def storable_text(text: str) -> str:
    """``text`` made storable for a message we write ourselves (an error text may quote a value): NUL as
    ``\\x00``, a lone surrogate as U+FFFD. Input is refused, never repaired; this is for our own texts."""
    if bad_character(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text.replace("\x00", "\\x00"))


def _rule(column: Any) -> Rule | None:
    if column.info.get("produced"):  # text we write ourselves (JSON dumps, parsed XML): not scanned
        return None
    kind = column.type
    if isinstance(kind, String):
        return _string_rule(kind.length)
    if isinstance(kind, BigInteger):
        return _integer_rule(64)
    if isinstance(kind, SmallInteger):
        return _integer_rule(16)
    if isinstance(kind, Integer):
        return _integer_rule(32)
    if isinstance(kind, JSON):
        return _json_problem
    return None


def _rules(table: Table) -> dict[str, Rule]:
    rules = _RULES.get(table)
    if rules is None:
        rules = _RULES[table] = {c.key: r for c in table.columns if (r := _rule(c)) is not None}
    return rules


def check_row(
    table: Table, row: Mapping[str, Any], *, fields: Mapping[str, str] | None = None, **context: Any
) -> None:
    """Refuse (``InvalidInput``) the first value of ``row`` its column of ``table`` cannot store as given.
    ``fields`` maps a column to the name the caller knows the value by (default: the column's name);
    ``context`` (task, case...) goes into the error's detail. Unknown keys and None are left alone."""
    rules = _rules(table)
    for name, value in row.items():
        if value is None:
            continue
        rule = rules.get(name)
        problem = rule(value) if rule is not None else None
        if problem is not None:
            message, code, extra = problem
            field = fields.get(name, name) if fields else name
            where = {k: v for k, v in context.items() if v is not None}
            raise InvalidInput(
                message, code=code, **{**where, "field": field, "column": f"{table.name}.{name}", **extra}
            )


def _statement_values(statement: Insert | Update) -> tuple[dict[str, Any], dict[str, str]]:
    """The values written into the statement itself, and the column of each named bind parameter."""
    literal: dict[str, Any] = {}
    named: dict[str, str] = {}
    values = getattr(statement, "_values", None) or {}  # SQLAlchemy's (private) ``.values()`` mapping
    for column, bound in values.items():
        name = column if isinstance(column, str) else getattr(column, "key", None)
        if name is None or not isinstance(bound, BindParameter):
            continue
        named[bound.key] = name
        if bound.value is not None and not bound.callable:
            literal[name] = bound.value
    return literal, named


def _guard(conn: Any, statement: Any, multiparams: Any, params: Any, execution_options: Any) -> None:
    if not isinstance(statement, Insert | Update) or not isinstance(statement.table, Table):
        return
    table: Table = statement.table
    literal, named = _statement_values(statement)
    if literal:
        check_row(table, literal)
    for rows in getattr(statement, "_multi_values", None) or ():
        for row in rows:
            if isinstance(row, Mapping):
                check_row(table, {getattr(k, "key", k): v for k, v in row.items()})
    batches = list(multiparams or ()) + ([params] if params else [])
    for batch in batches:
        for row in batch if isinstance(batch, list | tuple) else (batch,):
            if isinstance(row, Mapping):
                check_row(table, {named.get(k, k): v for k, v in row.items()} if named else row)


def install_column_guard(engine: Engine) -> Engine:
    """Check every Core INSERT/UPDATE executed on ``engine`` with :func:`check_row` (before it runs)."""
    if not event.contains(engine, "before_execute", _guard):
        event.listen(engine, "before_execute", _guard)
    return engine
