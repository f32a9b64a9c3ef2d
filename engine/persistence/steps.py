"""The rows one engine step writes: the instance state (inserted, or saved under a version check), the task
the actor completed, the tasks the step opened and its audit events.

On PostgreSQL they go to the database as ONE prepared statement (data-modifying CTEs; the new rows travel
as one JSON parameter each, so the statement is the same for any number of rows). A round trip costs both
sides about 0.1 ms of CPU here and a command used to spend five of them on these writes; planning the
combined statement costs PostgreSQL 0.2-0.4 ms, so each session PREPAREs it once and then only EXECUTEs it
(a transaction-pooling PgBouncer, which shares sessions, would need its prepared-statement support). Other
databases run the same writes as separate statements, the version check first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Executable,
    Exists,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import psycopg2
from sqlalchemy.exc import DBAPIError

from engine.errors import Conflict
from engine.persistence.columns import check_row
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import audit_log, instances, tasks

# Parameter names never equal a column name: inside one statement, an UPDATE would take such a parameter
# as a value for its own column of that name.
_INSERT_INSTANCE = insert(instances).values({c.name: bindparam(f"i_{c.name}") for c in instances.c})
_SAVE_INSTANCE = (
    update(instances)
    .where(instances.c.id == bindparam("i_id"), instances.c.version == bindparam("i_expected"))
    .values(
        state=bindparam("i_state"),
        status=bindparam("i_status"),
        version=bindparam("i_version"),
        updated_at=bindparam("i_updated_at"),
    )
)
_CLOSE_OWN_TASK = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("t_id"),
        tasks.c.state == "ready",
        or_(tasks.c.assignee.is_(None), tasks.c.assignee == bindparam("t_actor")),
    )
    .values(state="completed", completed_at=bindparam("t_now"), completed_by=bindparam("t_actor"))
)
_INSERT_TASKS = insert(tasks)


@dataclass(frozen=True)
class StepWrite:
    """``version`` is the version written: 1 inserts the instance (of ``definition_id``), n > 1 saves the
    instance over version n - 1."""

    instance_id: str
    business_key: str | None
    status: str
    state: str
    version: int
    now: datetime
    actor: str
    definition_id: int | None = None
    completed_task: str | None = None  # the task the actor completed (refused if another officer claimed it)
    new_tasks: Sequence[dict[str, Any]] = field(default_factory=list)
    audit: Sequence[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:  # the prepared path hands times to the driver as they are
            raise ValueError("naive datetime given to a UTC column")

    @property
    def expected_version(self) -> int:
        return self.version - 1


def write_step(conn: Connection, step: StepWrite) -> None:
    """Write the step; a stale version is ``Conflict(version_conflict)``, a task that another officer claimed
    meanwhile ``Conflict(claimed_by_other)``. The caller's transaction is left to roll back on either."""
    if conn.dialect.name == "postgresql":
        saved, closed = _write_in_one_statement(conn, step)
    else:
        saved, closed = _write_each(conn, step)
    if saved != 1:
        raise Conflict(
            "流程实例已被他人修改，请刷新后重试",
            code="version_conflict",
            instance_id=step.instance_id,
            expected_version=step.expected_version,
        )
    if step.completed_task is not None and closed != 1:
        raise Conflict("任务已由他人认领或已办结", code="claimed_by_other", task_id=step.completed_task)


def _instance_values(step: StepWrite) -> dict[str, Any]:
    values = {
        "i_id": step.instance_id,
        "i_status": step.status,
        "i_state": step.state,
        "i_version": step.version,
        "i_updated_at": step.now,
    }
    if step.version == 1:
        values.update(
            i_definition_id=step.definition_id, i_business_key=step.business_key, i_created_at=step.now
        )
    else:
        values["i_expected"] = step.expected_version
    return values


def _task_values(step: StepWrite) -> dict[str, Any]:
    return {"t_id": step.completed_task, "t_now": step.now, "t_actor": step.actor}


def _write_each(conn: Connection, step: StepWrite) -> tuple[int, int]:
    new = step.version == 1
    result = conn.execute(_INSERT_INSTANCE if new else _SAVE_INSTANCE, _instance_values(step))
    if result.rowcount != 1:  # the version check comes first: nothing else is written after a lost race
        return result.rowcount, 0
    closed = 0
    if step.completed_task is not None:
        closed = conn.execute(_CLOSE_OWN_TASK, _task_values(step)).rowcount
    if step.new_tasks:  # one row goes the plain execute path, cheaper than executemany
        rows = step.new_tasks
        conn.execute(_INSERT_TASKS, rows[0] if len(rows) == 1 else list(rows))
    AuditRepository(conn).append(step.audit)
    return 1, closed


# ------------------------------------------------------------------ PostgreSQL: one statement


def _defaults(table: Table) -> dict[str, Any]:
    """The column defaults SQLAlchemy would fill in (NULL would reach the table through JSON otherwise)."""
    return {c.name: c.default.arg for c in table.c if c.default is not None and c.default.is_scalar}


_TASK_DEFAULTS, _AUDIT_DEFAULTS = _defaults(tasks), _defaults(audit_log)


def _insert_json_rows(table: Table, param: str, after: Exists) -> Executable:
    """INSERT INTO table SELECT ... FROM json_populate_recordset(NULL::table, :param) WHERE after."""
    columns = [c.name for c in table.c if not (c.primary_key and c.autoincrement is True)]
    rows = func.json_populate_recordset(
        literal_column(f"NULL::{table.name}"), cast(bindparam(param, type_=Text), JSON)
    ).table_valued(*columns)
    return insert(table).from_select(columns, select(*[rows.c[name] for name in columns]).where(after))


def _one_statement(new_instance: bool) -> Select[Any]:
    # Every other part waits for the instance row: it reads what ``saved`` returned. So the instance row
    # is locked first, as in every command, and after a lost race nothing else is written (a stale step
    # would otherwise collide with the winner's task rows before its version check could refuse it).
    if new_instance:
        saved = _INSERT_INSTANCE.returning(instances.c.id).cte("saved")
    else:
        saved = _SAVE_INSTANCE.returning(instances.c.id).cte("saved")
    was_saved = select(saved.c.id).exists()
    closed_count: Any = literal_column("0")
    if not new_instance:
        closed = _CLOSE_OWN_TASK.where(was_saved).returning(tasks.c.id).cte("closed")
        closed_count = select(func.count()).select_from(closed).scalar_subquery()
    new_tasks = _insert_json_rows(tasks, "task_rows", was_saved).cte("new_tasks")
    audited = _insert_json_rows(audit_log, "audit_rows", was_saved).cte("audited")
    counts = select(select(func.count()).select_from(saved).scalar_subquery(), closed_count)
    return counts.add_cte(new_tasks, audited)


class _Prepared:
    """A Core statement PREPAREd once per PostgreSQL session (the pool keeps the mark with the session),
    then run by EXECUTE with its parameters in the compiled order."""

    def __init__(self, name: str, statement: Select[Any]) -> None:
        compiled = statement.compile(dialect=psycopg2.dialect(paramstyle="numeric_dollar"))
        self.name = name
        self.prepare = f"PREPARE {name} AS {compiled.string}"
        self.order: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.constants = {k: v for k, v in compiled.params.items() if v is not None}
        self.execute = f"EXECUTE {name}({', '.join(['%s'] * len(self.order))})"

    def run(self, conn: Connection, params: dict[str, Any]) -> tuple[Any, ...]:
        prepared: set[str] = conn.connection.info.setdefault("onewindow.prepared", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self.prepare)  # survives a rollback of this transaction, as sessions do
            prepared.add(self.name)
        values = {**self.constants, **params}
        try:
            return tuple(conn.exec_driver_sql(self.execute, tuple(values[k] for k in self.order)).one())
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) != "26000":  # invalid_sql_statement_name
                raise
            # The session dropped its statements (DEALLOCATE / DISCARD ALL by a pooler or an administrator):
            # this transaction is lost, the command's next attempt prepares again.
            prepared.clear()
            raise Conflict(
                "数据库会话已重置，请重试", code="prepared_statement_lost", statement=self.name
            ) from exc


_ONE_STATEMENT = {
    True: _Prepared("onewindow_step_insert", _one_statement(new_instance=True)),
    False: _Prepared("onewindow_step_save", _one_statement(new_instance=False)),
}


def _json_rows(rows: Sequence[dict[str, Any]], defaults: dict[str, Any]) -> str:
    return json.dumps([{**defaults, **row} for row in rows], ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _check_values(step: StepWrite) -> None:
    """The one statement reaches the driver as text, past the column guard: the same check, here."""
    check_row(instances, {"id": step.instance_id, "business_key": step.business_key, "status": step.status})
    check_row(tasks, {"completed_by": step.actor})
    for row in step.new_tasks:
        check_row(tasks, row)
    for row in step.audit:
        check_row(audit_log, row)


def _write_in_one_statement(conn: Connection, step: StepWrite) -> tuple[int, int]:
    _check_values(step)
    new = step.version == 1
    params = _instance_values(step)
    if not new:
        params.update(_task_values(step))
    params.update(
        task_rows=_json_rows(step.new_tasks, _TASK_DEFAULTS),
        audit_rows=_json_rows(step.audit, _AUDIT_DEFAULTS),
    )
    saved, closed = _ONE_STATEMENT[new].run(conn, params)
    return int(saved), int(closed)
