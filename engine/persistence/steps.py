"""The rows one engine step writes: the instance state (inserted, or saved under a version check), the task
the actor completed, the tasks the step opened and its audit events.

Each new task comes with its rows in ``task_candidates`` (one per candidate group or user, with the inbox's
sort keys: see ``engine/persistence/tables.py``), written by the same statement on PostgreSQL.

On PostgreSQL they go to the database as ONE prepared statement (data-modifying CTEs; the new rows travel
as one JSON parameter each, so the statement is the same for any number of rows). A round trip costs both
sides about 0.1 ms of CPU here and a command used to spend five of them on these writes; planning the
combined statement costs PostgreSQL 0.2-0.4 ms, so each session PREPAREs it once and then only EXECUTEs it
(a transaction-pooling PgBouncer, which shares sessions, would need its prepared-statement support). Other
databases run the same writes as separate statements, the version check first.

The case layer's rows ride along: a step's :class:`CaseWrite` (what the lifecycle observer, which runs
before the write, sets on the case row, its new and changed clocks, its audit events, what it adds to
the figures' summary rows) is part of the step's own statement on PostgreSQL (one statement per shape
of both, a few dozen, each PREPAREd once per session), and follows the engine's rows elsewhere.
``insert_case`` (a new case with its materials and its audit event) is one statement on PostgreSQL, not
prepared (once per case), one per table elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Executable,
    Exists,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from engine.assignment import candidates
from engine.errors import Conflict
from engine.persistence.columns import check_row
from engine.persistence.prepared import Prepared
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import (
    FIGURE_COUNTERS,
    NO_DUE,
    UTCDateTime,
    audit_log,
    case_clocks,
    case_materials,
    cases,
    figure_counts,
    instances,
    task_candidates,
    tasks,
)

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


def clock_instant(task: Any, column: str) -> ColumnElement[Any]:
    """The task's clock instant (``due_at`` / ``warn_at``) as the inbox reads it: its own running clock's,
    else the running case clock's it counts against (``task``: columns id, business_key, clock)."""
    own = case_clocks.alias("own_clock")
    own_running = and_(own.c.task_id == task.id, own.c.stopped_at.is_(None))
    counted = case_clocks.alias("case_clock")
    return case(
        (
            exists().where(own_running),
            select(own.c[column]).where(own_running).order_by(own.c.id).limit(1).scalar_subquery(),
        ),
        else_=select(counted.c[column])
        .where(
            counted.c.case_id == task.business_key,
            counted.c.task_id.is_(None),
            counted.c.kind == task.clock,
            counted.c.stopped_at.is_(None),
        )
        .scalar_subquery(),
    )


def candidate_keys(task: Any) -> list[ColumnElement[Any]]:
    """clock_due_at, clock_warn_at, sort_due of ``task_candidates`` for ``task`` (columns id, business_key,
    clock, due_at): the same rule as the migration's triggers that keep them."""
    due = clock_instant(task, "due_at")
    return [
        due,
        clock_instant(task, "warn_at"),
        func.coalesce(due, task.due_at, literal(NO_DUE, UTCDateTime())),
    ]


_CANDIDATE_COLUMNS = [c.name for c in task_candidates.c]


def _candidates_of(task: Any, kind: Any, name: Any) -> Select[Any]:
    of_case = select(cases.c.id).where(cases.c.id == task.business_key).scalar_subquery()  # NULL: no case's
    return select(
        task.id,
        kind,
        name,
        of_case,
        task.state,
        task.priority,
        task.created_at,
        *candidate_keys(task),
    )


_INSERT_CANDIDATES = insert(task_candidates).from_select(
    _CANDIDATE_COLUMNS,
    _candidates_of(tasks.c, bindparam("c_kind", type_=Text), bindparam("c_name", type_=Text)).where(
        tasks.c.id == bindparam("c_task")
    ),
)


def _check_candidates(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        for _, name in candidates(row):
            check_row(
                task_candidates, {"name": name}, fields={"name": "candidate_groups"}, task=row.get("id")
            )


def _candidate_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"c_task": row["id"], "c_kind": kind, "c_name": name}
        for row in rows
        for kind, name in candidates(row)
    ]


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
    case: CaseWrite | None = None  # the case's rows of the step, written after (and only with) the instance

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
        _check_candidates(rows)
        conn.execute(_INSERT_TASKS, rows[0] if len(rows) == 1 else list(rows))
        members = _candidate_rows(rows)
        if members:
            conn.execute(_INSERT_CANDIDATES, members[0] if len(members) == 1 else members)
    AuditRepository(conn).append(step.audit)
    if step.case:
        write_case_each(conn, step.case)
    return 1, closed


# ------------------------------------------------------------------ PostgreSQL: one statement


def _defaults(table: Table) -> dict[str, Any]:
    """The column defaults SQLAlchemy would fill in (NULL would reach the table through JSON otherwise)."""
    return {c.name: c.default.arg for c in table.c if c.default is not None and c.default.is_scalar}


_TASK_DEFAULTS, _AUDIT_DEFAULTS = _defaults(tasks), _defaults(audit_log)


def _json_recordset(table: Table, param: str, columns: Sequence[str]) -> Any:
    """json_populate_recordset(NULL::table, :param) with ``columns``: rows that travel as one JSON text."""
    return func.json_populate_recordset(
        literal_column(f"NULL::{table.name}"), cast(bindparam(param, type_=Text), JSON)
    ).table_valued(*columns)


def _insert_json_rows(table: Table, param: str, after: Exists | None) -> Executable:
    """INSERT INTO table SELECT ... FROM json_populate_recordset(NULL::table, :param) [WHERE after]."""
    columns = [c.name for c in table.c if not (c.primary_key and c.autoincrement is True)]
    rows = _json_recordset(table, param, columns)
    chosen = select(*[rows.c[name] for name in columns])
    return insert(table).from_select(columns, chosen if after is None else chosen.where(after))


def _one_statement(new_instance: bool, case_shape: _CaseShape | None = None) -> Select[Any]:
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
    new_tasks = (
        _insert_json_rows(tasks, "task_rows", was_saved)
        .returning(
            *[
                tasks.c[n]
                for n in ("id", "business_key", "clock", "due_at", "state", "priority", "created_at")
            ]
        )
        .cte("new_tasks")
    )
    members = func.json_populate_recordset(
        literal_column("NULL::task_candidates"), cast(bindparam("candidate_rows", type_=Text), JSON)
    ).table_valued("task_id", "kind", "name")
    new_candidates = (
        insert(task_candidates)
        .from_select(
            _CANDIDATE_COLUMNS,
            _candidates_of(new_tasks.c, members.c.kind, members.c.name).select_from(
                members.join(new_tasks, new_tasks.c.id == members.c.task_id)
            ),
        )
        .cte("new_candidates")
    )
    audited = _insert_json_rows(audit_log, "audit_rows", was_saved).cte("audited")
    counts = select(select(func.count()).select_from(saved).scalar_subquery(), closed_count)
    case_parts = _case_parts(case_shape, was_saved) if case_shape else []
    return counts.add_cte(new_tasks, new_candidates, audited, *case_parts)


@cache
def _step_statement(new_instance: bool, case_shape: _CaseShape | None) -> Prepared:
    """The step's statement, with the case's rows of one shape (or none), PREPAREd once per session."""
    name = "onewindow_step_insert" if new_instance else "onewindow_step_save"
    if case_shape is not None:
        shape = "\0".join([*case_shape[0], *(str(flag) for flag in case_shape[1:])])
        name += "_" + hashlib.blake2b(shape.encode(), digest_size=6).hexdigest()
    return Prepared(name, _one_statement(new_instance, case_shape))


def _json_rows(rows: Sequence[dict[str, Any]], defaults: dict[str, Any]) -> str:
    return json.dumps([{**defaults, **row} for row in rows], ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _check_values(step: StepWrite) -> None:
    """The one statement reaches the driver as text, past the column guard: the same check, here."""
    check_row(instances, {"id": step.instance_id, "business_key": step.business_key, "status": step.status})
    check_row(tasks, {"completed_by": step.actor})
    for row in step.new_tasks:
        check_row(tasks, row)
    _check_candidates(step.new_tasks)
    for row in [*step.audit, *(step.case.audit if step.case else [])]:
        check_row(audit_log, row)
    for row in step.case.figures if step.case else []:
        check_row(figure_counts, row)


def _write_in_one_statement(conn: Connection, step: StepWrite) -> tuple[int, int]:
    _check_values(step)
    new = step.version == 1
    params = _instance_values(step)
    if not new:
        params.update(_task_values(step))
    params.update(
        task_rows=_json_rows(step.new_tasks, _TASK_DEFAULTS),
        candidate_rows=json.dumps(
            [
                {"task_id": m["c_task"], "kind": m["c_kind"], "name": m["c_name"]}
                for m in _candidate_rows(step.new_tasks)
            ],
            ensure_ascii=False,
        ),
        # the case's audit rows follow the engine's in the engine's own INSERT: one order, by id
        audit_rows=_json_rows([*step.audit, *(step.case.audit if step.case else [])], _AUDIT_DEFAULTS),
    )
    shape = _case_shape(step.case) if step.case else None
    if shape is not None:
        params.update(_case_params(step.case))
    saved, closed = _step_statement(new, shape).one(conn, params)[:2]
    return int(saved), int(closed)


# ------------------------------------------------------------------ the case's writes of a step


_CLOCK_COLUMNS = ("clock", "due_at", "warn_at", "stopped_at")
_CLOCK_DEFAULTS = _defaults(case_clocks)


@dataclass(frozen=True)
class CaseWrite:
    """What a step of a case writes besides the engine's own rows (``engine.cases.lifecycle``): values
    set on the case row, new clock rows (in the order their ids are to follow), changed clocks (``id``
    and the columns of ``_CLOCK_COLUMNS``), audit rows (in order), and what it adds to the figures'
    summary rows (``figure_counts``: each its key and some counters; at most one per key, in the lock
    order of ``engine.cases.figure_counts``)."""

    case_id: str
    values: dict[str, Any]
    new_clocks: list[dict[str, Any]]
    changed_clocks: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    figures: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.values or self.new_clocks or self.changed_clocks or self.audit or self.figures)


_CaseShape = tuple[tuple[str, ...], bool, bool, bool]
"""The shape of a :class:`CaseWrite` in the step's statement: the case columns it sets, whether it has
new clocks, changed clocks, figure rows (its audit rows join the engine's)."""


def _case_shape(write: CaseWrite) -> _CaseShape | None:
    """None: ``write`` has nothing but audit rows."""
    shape = (
        tuple(sorted(write.values)),
        bool(write.new_clocks),
        bool(write.changed_clocks),
        bool(write.figures),
    )
    return shape if any(shape) else None


def _case_params(write: CaseWrite) -> dict[str, Any]:
    """The parameters of ``write`` in the step's statement but its audit rows (checked first: they reach
    the driver as they are)."""
    for row in write.new_clocks:
        check_row(case_clocks, row)
    for row in write.changed_clocks:
        check_row(case_clocks, row)
    check_row(cases, write.values)
    params: dict[str, Any] = {f"v_{k}": _driver_value(cases.c[k], v) for k, v in write.values.items()}
    params["case_row"] = write.case_id
    if write.new_clocks:
        params["case_new_clocks"] = _json_rows(write.new_clocks, _CLOCK_DEFAULTS)
    if write.changed_clocks:
        params["case_changed_clocks"] = _json_rows(write.changed_clocks, {})
    if write.figures:
        params["case_figures"] = _json_rows(write.figures, _NO_COUNTS)
    return params


def _driver_value(column: Any, value: Any) -> Any:
    """A value as the prepared path hands it to the driver (no type processor runs there): JSON columns
    as SQLAlchemy's JSON type writes them (``None`` as JSON ``null``), times aware."""
    if isinstance(column.type, JSON):
        return json.dumps(value, default=_json_value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def write_case_each(conn: Connection, write: CaseWrite) -> None:
    """``write`` as plain statements: the case row, new clocks (one multi-row INSERT), changed clocks
    (executemany), audit rows (one multi-row INSERT)."""
    if write.values:
        conn.execute(update(cases).where(cases.c.id == write.case_id).values(**write.values))
    if write.new_clocks:
        rows = write.new_clocks
        conn.execute(insert(case_clocks), rows[0] if len(rows) == 1 else rows)
    if write.changed_clocks:
        rows = [
            {"clock_row": r["id"], **{f"c_{k}": r[k] for k in _CLOCK_COLUMNS}} for r in write.changed_clocks
        ]
        conn.execute(_SAVE_CLOCK, rows[0] if len(rows) == 1 else rows)
    AuditRepository(conn).append(write.audit)
    if write.figures:
        rows = [{**_NO_COUNTS, **row} for row in write.figures]
        conn.execute(_ADD_FIGURES, rows[0] if len(rows) == 1 else rows)


_SAVE_CLOCK = (
    update(case_clocks)
    .where(case_clocks.c.id == bindparam("clock_row"))
    .values({k: bindparam(f"c_{k}") for k in _CLOCK_COLUMNS})
)


_FIGURE_KEY = [c.name for c in figure_counts.primary_key]
_NO_COUNTS = dict.fromkeys(FIGURE_COUNTERS, 0)


def _add_figures(stmt: Any) -> Any:
    """``stmt`` (an INSERT into ``figure_counts``) adding its counters to the rows already there."""
    return stmt.on_conflict_do_update(
        index_elements=_FIGURE_KEY, set_={n: figure_counts.c[n] + stmt.excluded[n] for n in FIGURE_COUNTERS}
    )


_ADD_FIGURES = _add_figures(sqlite.insert(figure_counts))  # SQLite: the rows as one executemany


def _case_parts(shape: _CaseShape, was_saved: Exists) -> list[Any]:
    """The CTEs of a case write of ``shape`` inside the step's statement: each waits for the instance's
    row (``was_saved``), so nothing of the case is written after a lost race."""
    names, new_clocks, changed_clocks, figures = shape
    parts: list[Any] = []
    if names:
        values = {n: bindparam(f"v_{n}", type_=cases.c[n].type) for n in names}
        parts.append(
            update(cases)
            .where(cases.c.id == bindparam("case_row"), was_saved)
            .values(values)
            .returning(cases.c.id)
        )
    if new_clocks:
        parts.append(_insert_json_rows(case_clocks, "case_new_clocks", was_saved).returning(case_clocks.c.id))
    if changed_clocks:
        rows = _json_recordset(case_clocks, "case_changed_clocks", ("id", *_CLOCK_COLUMNS))
        parts.append(
            update(case_clocks)
            .where(case_clocks.c.id == rows.c.id, was_saved)
            .values({k: rows.c[k] for k in _CLOCK_COLUMNS})
            .returning(case_clocks.c.id)
        )
    if figures:  # one row per key: an INSERT .. ON CONFLICT cannot change one row twice
        columns = [*_FIGURE_KEY, *FIGURE_COUNTERS]
        rows = _json_recordset(figure_counts, "case_figures", columns)
        chosen = select(*[rows.c[n] for n in columns]).where(was_saved)
        added = _add_figures(postgresql.insert(figure_counts).from_select(columns, chosen))
        parts.append(added.returning(figure_counts.c.grain))
    return [part.cte(f"case_write_{i}") for i, part in enumerate(parts)]


def insert_case(
    conn: Connection, row: dict[str, Any], materials: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> None:
    """A new case: its row, its material rows and its audit rows (in order); on PostgreSQL in ONE
    statement (the material rows wait for the case row they refer to), elsewhere one per table."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(cases).values(**row))
        if materials:
            conn.execute(insert(case_materials), materials)
        AuditRepository(conn).append(audit)
        return
    row = {**_defaults(cases), **row}  # an INSERT inside a CTE gets no column defaults from SQLAlchemy
    check_row(cases, row)
    for material in materials:
        check_row(case_materials, material)
    for event in audit:
        check_row(audit_log, event)
    params: dict[str, Any] = {f"v_{k}": v for k, v in row.items()}
    params["case_material_rows"] = _json_rows(materials, _defaults(case_materials))
    params["case_audit_rows"] = _json_rows(audit, _AUDIT_DEFAULTS)
    conn.execute(_new_case_statement(tuple(sorted(row)), bool(materials), bool(audit)), params)


@cache
def _new_case_statement(names: tuple[str, ...], materials: bool, audit: bool) -> Any:
    values = {n: bindparam(f"v_{n}", type_=cases.c[n].type) for n in names}
    new_case = insert(cases).values(values).returning(cases.c.id).cte("new_case")
    parts = [new_case]
    if materials:  # after the case row: their foreign key reads it
        was_inserted = select(new_case.c.id).exists()
        rows = _insert_json_rows(case_materials, "case_material_rows", was_inserted)
        parts.append(rows.returning(case_materials.c.id).cte("new_materials"))
    if audit:
        rows = _insert_json_rows(audit_log, "case_audit_rows", None)
        parts.append(rows.returning(audit_log.c.id).cte("new_case_audit"))
    return select(*[select(func.count()).select_from(c).scalar_subquery() for c in parts])
