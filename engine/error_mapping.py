"""Every exception a command raises, as a typed ``OneWindowError`` (DESIGN rule 9: "Errors are typed").

Every command runs in ``engine.persistence.database.unit_of_work``, which translates with
:func:`typed_errors` after its rollback (so ``WorkflowService.run``, the case commands that open a unit of
work themselves, the workers and the imports are all covered); ``WorkflowService.run`` wraps its retry loop
too, and the API's last-resort handler uses :func:`as_onewindow_error`, so one table decides for the whole
process. The transaction has been rolled back by the time the error
is translated (``unit_of_work`` rolls back on any exception) and the live workflow the failed step worked on
is never kept (``LiveWorkflows.take`` removes it, only a commit keeps one), so the instance is unchanged and
the next command rebuilds it from the stored state.

==========================================  ====================================================  ======
raised                                      becomes                                               HTTP
==========================================  ====================================================  ======
``OneWindowError``                          itself
SpiffWorkflow exceptions                    ``engine.workflow.errors`` (element, line)            422
``IntegrityError`` unique (23505)           ``Conflict("duplicate")``, constraint/columns         409
``IntegrityError`` foreign key (23503)      ``Conflict("reference_violation")``                   409
``IntegrityError`` not null (23502)         ``InvalidInput("required")``, field                   422
``IntegrityError`` check / other            ``InvalidInput("constraint_violated")``               422
``DataError`` too long (22001)              ``InvalidInput("value_too_long")``, max               422
``DataError`` out of range (22003)          ``InvalidInput("value_out_of_range")``                422
``DataError`` other / driver refusing       ``InvalidInput("unstorable_value")``                  422
  a value (NUL, lone surrogate)
``OperationalError`` lost race              ``Conflict("version_conflict")`` (retried)            409
  (40001, 40P01)
``OperationalError`` 54xxx (row too big)    ``InvalidInput("value_too_large")``                   422
``OperationalError`` other (connection,     ``Unavailable("database_unavailable")``, reason       503
  timeout, SQLite locked / disk full)
JSON encoder ``TypeError``/``ValueError``   ``InvalidInput("unserialisable_value")``              422
  (not serialisable, NaN, huge int)
``RecursionError``                          ``InvalidInput("too_deeply_nested")``                 422
``OverflowError``                           ``InvalidInput("value_out_of_range")``                422
anything else (``AssertionError``, a        ``Internal("internal")``, the cause chained           500
  ``TypeError`` in our code, SQL errors)
==========================================  ====================================================  ======

``Internal`` is a decision: a bug still leaves the command as a ``OneWindowError`` (callers handle one
type; the API answers 500 with a correlation id and logs the chained traceback), but it is never mistaken
for a rule the caller broke: its message says only that the server failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from engine.errors import Conflict, Internal, InvalidInput, OneWindowError, Unavailable

__all__ = ["LOST_RACE_CODES", "as_onewindow_error", "typed_errors"]

LOST_RACE_CODES = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock detected, serialization failure

_SQLITE_CONSTRAINT = re.compile(r"^(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?::\s*(.*))?$")
_SQLITE_UNAVAILABLE = ("database is locked", "database is busy", "disk i/o error", "unable to open", "full")
_DRIVER_FUNCTIONS = frozenset(
    {"do_execute", "do_executemany", "do_execute_no_params", "_exec_insertmany_context"}
)


def _innermost(exc: BaseException) -> TracebackType | None:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _raised_in_json(exc: BaseException) -> bool:
    """Raised by the standard library's JSON encoder (its C accelerator runs under ``json/encoder.py``)."""
    tb = _innermost(exc)
    if tb is None:
        return False
    filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return "/json/" in filename


def _raised_by_driver(exc: BaseException) -> bool:
    """Raised by the database driver while it bound a statement's values (psycopg2: NUL in a string)."""
    tb = _innermost(exc)
    return tb is not None and tb.tb_frame.f_code.co_name in _DRIVER_FUNCTIONS


def _pgcode(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _pg_where(exc: DBAPIError) -> dict[str, Any]:
    diag = getattr(exc.orig, "diag", None)
    if diag is None:
        return {}
    return {
        "table": getattr(diag, "table_name", None),
        "field": getattr(diag, "column_name", None),
        "constraint": getattr(diag, "constraint_name", None),
    }


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _integrity(exc: IntegrityError) -> OneWindowError:
    code = _pgcode(exc)
    where = _pg_where(exc)
    kind = {"23505": "UNIQUE", "23503": "FOREIGN KEY", "23502": "NOT NULL", "23514": "CHECK"}.get(code or "")
    match = _SQLITE_CONSTRAINT.match(_first_line(exc))
    if match:
        kind = match.group(1)
        columns = [c.strip() for c in (match.group(2) or "").split(",") if c.strip()]
        if columns and "." in columns[0]:
            where = {"table": columns[0].split(".", 1)[0], "field": columns[0].split(".", 1)[1]}
            if len(columns) > 1:
                where["columns"] = [c.split(".", 1)[-1] for c in columns]
        elif columns:
            where = {"constraint": ", ".join(columns)}
    if kind == "UNIQUE":
        return Conflict("数据已存在，与已保存的记录重复", code="duplicate", **where)
    if kind == "FOREIGN KEY":
        return Conflict("引用的记录不存在或已被删除", code="reference_violation", **where)
    if kind == "NOT NULL":
        return InvalidInput("缺少必填的值", code="required", **where)
    return InvalidInput("数据不符合数据库约束", code="constraint_violated", **where)


def _data(exc: DataError) -> OneWindowError:
    code = _pgcode(exc) or ""
    where = {k: v for k, v in _pg_where(exc).items() if k != "constraint"}
    if code == "22001":
        limit = re.search(r"\((\d+)\)", _first_line(exc))
        return InvalidInput(
            "取值过长，超出数据库可保存的长度",
            code="value_too_long",
            max=int(limit.group(1)) if limit else None,
            **where,
        )
    if code == "22003":
        return InvalidInput("数值超出数据库可保存的范围", code="value_out_of_range", **where)
    return InvalidInput("取值无法保存到数据库", code="unstorable_value", reason=code or None, **where)


def _operational(exc: OperationalError) -> OneWindowError:
    code = _pgcode(exc)
    if code is not None and code.startswith("54"):
        return InvalidInput("数据过大，超出数据库的限制", code="value_too_large", reason=code)
    message = _first_line(exc).lower()
    sqlite = type(exc.orig).__module__.startswith("sqlite3")
    if code is None and sqlite and not any(m in message for m in _SQLITE_UNAVAILABLE):
        return _internal(exc)  # SQLite reports "no such table", syntax errors... as OperationalError: bugs
    return Unavailable(
        "数据库暂时无法处理请求，请稍后重试", code="database_unavailable", reason=code or message[:120]
    )


def _internal(exc: BaseException) -> Internal:
    return Internal("服务器内部错误", error_type=type(exc).__name__)


def as_onewindow_error(exc: BaseException) -> OneWindowError:
    """The typed error for ``exc`` (``exc`` itself when it is one); see the table in the module docstring.
    The caller raises it ``from exc`` so the original stays chained for the logs."""
    if isinstance(exc, OneWindowError):
        return exc
    if type(exc).__module__.startswith("SpiffWorkflow"):
        # imported here: the persistence layer (``unit_of_work``) uses this module and needs no workflow
        from engine.workflow.errors import library_failure

        typed = library_failure(exc)
        if typed is not None:
            return typed
    if isinstance(exc, DBAPIError) and _pgcode(exc) in LOST_RACE_CODES:
        return Conflict("并发冲突，请重试", code="version_conflict")  # a lost race: the services retry it
    if isinstance(exc, IntegrityError):
        return _integrity(exc)
    if isinstance(exc, DataError):
        return _data(exc)
    if isinstance(exc, OperationalError):
        return _operational(exc)
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = as_onewindow_error(exc.orig)  # a bind processor failed (the JSON of a JSON column)
        return inner if not isinstance(inner, Internal) else _internal(exc)
    if isinstance(exc, SQLAlchemyError):
        return _internal(exc)
    if isinstance(exc, RecursionError):
        return InvalidInput("数据嵌套过深，无法处理", code="too_deeply_nested")
    if isinstance(exc, TypeError | ValueError) and _raised_in_json(exc):
        return InvalidInput(
            f"数据无法保存为 JSON：{str(exc)[:200]}",
            code="unserialisable_value",
            error_type=type(exc).__name__,
        )
    if isinstance(exc, TypeError | ValueError) and _raised_by_driver(exc):
        return InvalidInput(
            f"取值无法保存到数据库：{str(exc)[:200]}", code="unstorable_value", error_type=type(exc).__name__
        )
    if isinstance(exc, OverflowError):
        return InvalidInput("数值超出可处理的范围", code="value_out_of_range")
    return _internal(exc)


@contextmanager
def typed_errors() -> Iterator[None]:
    """Run a block so that nothing but a ``OneWindowError`` leaves it (``BaseException``s that are not
    ``Exception``, such as ``KeyboardInterrupt``, pass untouched)."""
    try:
        yield
    except OneWindowError:
        raise
    except Exception as exc:
        raise as_onewindow_error(exc) from exc
