"""The deadlines of running workflow instances follow a changed working-day calendar.

When an administrator overrides a date (:func:`engine.time.overrides.set_override`) everything that was
counted in working days and stored must be counted again, in the same transaction:

* the due time of each waiting BPMN timer whose date expression used the working-day helpers (e.g.
  ``working_deadline(accepted_at, supplement_deadline_days)``): the instance's state is written under its
  version check (a concurrent command loses and is retried) and the timer row is rescheduled;
* the ``due_at`` of each ready task in the task projection, from its model deadline in working days
  (:func:`engine.step.default_due`) or its due-date expression (evaluated again as of the task's creation).

Case clocks are the case domain's part (:mod:`engine.cases.calendar_change`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select, union, update

from engine.errors import OneWindowError
from engine.persistence.repositories import AuditRepository, InstanceRepository, TimerRepository, audit_row
from engine.persistence.steps import StepWrite, write_step
from engine.persistence.tables import instances, tasks, timers
from engine.step import default_due
from engine.time.calendar import WorkingCalendar
from engine.workflow import Runtime

if TYPE_CHECKING:
    from engine.service import WorkflowService

__all__ = ["MovedDeadlines", "follow_calendar_in"]

log = logging.getLogger("onewindow.engine")


@dataclass
class MovedDeadlines:
    """What a calendar change moved: timers (timer task id -> new due), ready tasks (task id -> new due;
    in ``to_due_date`` those whose only deadline is their due-date expression, so that a clock counting up
    to it moves too), the instances whose state was written and those whose model failed to evaluate."""

    timers: dict[str, datetime] = field(default_factory=dict)
    tasks: dict[str, datetime] = field(default_factory=dict)
    to_due_date: dict[str, datetime] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # instance id -> error code
    instances: list[str] = field(default_factory=list)


def follow_calendar_in(
    workflow: WorkflowService, conn: Connection, cal: WorkingCalendar, actor: str
) -> MovedDeadlines:
    """Count the timers and task due dates of every running instance again with ``cal`` (in ``conn``'s
    transaction); returns what moved. An instance whose model fails to evaluate (a broken expression) keeps
    its stored deadlines, is named in ``failed`` and in the audit log, and does not stop the others."""
    now = workflow.clock()
    moved = MovedDeadlines()
    with_timers = set(
        conn.execute(select(timers.c.instance_id).where(timers.c.fired_at.is_(None)).distinct()).scalars()
    )
    ready: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in conn.execute(
        select(tasks.c.id, tasks.c.instance_id, tasks.c.element_id, tasks.c.created_at, tasks.c.due_at).where(
            tasks.c.state == "ready"
        )
    ):
        ready[row.instance_id].append(row)
    candidates = union(
        select(timers.c.instance_id).where(timers.c.fired_at.is_(None)),
        select(tasks.c.instance_id).where(tasks.c.state == "ready"),
    ).subquery()
    running = conn.execute(
        select(instances.c.id, instances.c.definition_id, instances.c.business_key)
        .where(instances.c.status == "running", instances.c.id.in_(select(candidates.c[0])))
        .order_by(instances.c.id)
    ).all()
    for instance_id, definition_id, business_key in running:
        try:
            recount = _recount(
                workflow,
                conn,
                cal,
                now,
                instance_id,
                definition_id,
                ready.get(instance_id, []),
                instance_id in with_timers,
            )
        except OneWindowError as exc:
            log.warning("deadlines of instance %s not recomputed: %s", instance_id, exc)
            moved.failed[instance_id] = exc.code
            detail = {"code": exc.code, "message": str(exc)[:500]}
            AuditRepository(conn).record(
                now,
                actor,
                "deadlines_not_recomputed",
                instance_id=instance_id,
                business_key=business_key,
                detail=detail,
            )
            continue
        task_dues, to_due_date, timers_moved, state, version = recount
        for task_id, due in task_dues.items():
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(due_at=due))
        moved.tasks.update(task_dues)
        moved.to_due_date.update(to_due_date)
        if not timers_moved or state is None:
            continue
        detail = {"timers": {tid: due.isoformat() for tid, due in timers_moved.items()}}
        audit = audit_row(
            now,
            actor,
            "deadlines_recomputed",
            instance_id=instance_id,
            business_key=business_key,
            detail=detail,
        )
        step = StepWrite(instance_id, business_key, "running", state, version + 1, now, actor, audit=[audit])
        write_step(conn, step)  # a concurrent command's version: Conflict, and the whole change is retried
        workflow.live.take(instance_id, -1)  # this process's copy is of the old version
        repo = TimerRepository(conn)
        for task_id, due in timers_moved.items():
            repo.reschedule(instance_id, task_id, due)
        moved.timers.update(timers_moved)
        moved.instances.append(instance_id)
    return moved


def _recount(
    workflow: WorkflowService,
    conn: Connection,
    cal: WorkingCalendar,
    now: datetime,
    instance_id: str,
    definition_id: int,
    ready: list[Row[Any]],
    has_timers: bool,
) -> tuple[dict[str, datetime], dict[str, datetime], dict[str, datetime], str | None, int]:
    """One instance counted again: (moved task dues, those of them counted to a due-date expression only,
    moved timers, the new state to write or None, the version it was read at)."""
    definition = workflow.definition(conn, definition_id)
    metas = definition.task_meta
    expressions = any((m := metas.get(r.element_id)) is not None and m.due_expression for r in ready)
    runtime: Runtime | None = None
    version = 0
    if has_timers or expressions:
        row = InstanceRepository(conn).get(instance_id)
        runtime, version = Runtime.restore(definition, row.state, now, cal), row.version
    task_dues: dict[str, datetime] = {}
    to_due_date: dict[str, datetime] = {}
    for task in ready:
        meta = metas.get(task.element_id)
        if meta is None:
            continue
        if meta.due_expression and runtime is not None:
            due = runtime.task_due(task.id, task.created_at)  # as of the task's creation, as it was opened
        else:
            due = default_due(meta, task.created_at, cal)
        if due is not None and due != task.due_at:
            task_dues[task.id] = due
            if meta.due_expression and meta.deadline_days is None and not meta.deadline_hours:
                to_due_date[task.id] = due
    timers_moved = runtime.recompute_timers(now) if runtime is not None and has_timers else {}
    state = runtime.dump() if timers_moved and runtime is not None else None
    return task_dues, to_due_date, timers_moved, state, version
