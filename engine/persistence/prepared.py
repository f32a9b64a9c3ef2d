"""Core statements PREPAREd once per PostgreSQL session, then run by EXECUTE.

A statement a command runs every time (the step's write, a step's locking read) costs PostgreSQL more to
plan than to run: each session PREPAREs it once (the pool keeps the mark with the session) and then only
EXECUTEs it with its parameters in the compiled order. A transaction-pooling PgBouncer, which shares
sessions, would need its prepared-statement support. The driver's values come back as the columns' own
result processing gives them (the UTC times' type decorator, for one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, CursorResult, Select, column, text
from sqlalchemy.dialects.postgresql import psycopg2
from sqlalchemy.exc import DBAPIError

from engine.errors import Conflict

__all__ = ["Prepared"]

_DIALECT = psycopg2.dialect(paramstyle="numeric_dollar")


class Prepared:
    """``statement`` under ``name``, PREPAREd on first use in each PostgreSQL session.

    The ``EXECUTE`` is a textual statement typed with the columns the statement returns, built once: its
    compiled form and its result's column metadata are cached as a Core statement's are, where a plain
    string would have them built again from the cursor for every execution (for a read of 60 columns, a
    third of its time in Python)."""

    def __init__(self, name: str, statement: Select[Any]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.name = name
        self.prepare = f"PREPARE {name} AS {compiled.string}"
        self.order: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.constants = {k: v for k, v in compiled.params.items() if v is not None}
        for selected in statement.selected_columns:
            _processor(name, selected)  # refuses a column the driver's values cannot be processed for
        binds = ", ".join(f":p{i}" for i in range(len(self.order)))
        returned = [column(f"c{i}", c.type) for i, c in enumerate(statement.selected_columns)]
        self.execute = text(f"EXECUTE {name}({binds})").columns(*returned)

    def one(self, conn: Connection, params: dict[str, Any]) -> tuple[Any, ...]:
        """The one row the statement returns."""
        return tuple(self._run(conn, params).one())

    def all(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Every row the statement returns, as tuples in its column order."""
        return [tuple(row) for row in self._run(conn, params).all()]

    def _run(self, conn: Connection, params: dict[str, Any]) -> CursorResult[Any]:
        prepared: set[str] = conn.connection.info.setdefault("onewindow.prepared", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self.prepare)  # survives a rollback of this transaction, as sessions do
            prepared.add(self.name)
        values = {**self.constants, **params}
        try:
            return conn.execute(self.execute, {f"p{i}": values[k] for i, k in enumerate(self.order)})
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) != "26000":  # invalid_sql_statement_name
                raise
            # The session dropped its statements (DEALLOCATE / DISCARD ALL by a pooler or an administrator):
            # this transaction is lost, the command's next attempt prepares again.
            prepared.clear()
            raise Conflict(
                "数据库会话已重置，请重试", code="prepared_statement_lost", statement=self.name
            ) from exc


def _processor(name: str, selected: Any) -> Callable[[Any], Any] | None:
    """The result processing of ``selected`` on psycopg2 (None: its values come as the driver gives
    them)."""
    try:
        return selected.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
    except TypeError as exc:  # a type whose processing depends on the driver's column type (Numeric)
        raise TypeError(f"{name}: the prepared path cannot process a {selected.type!r} column") from exc
