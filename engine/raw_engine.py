"""The raw engine commands a designer uses to try a model: start an instance, read it, work its tasks,
send it a message, cancel it. They bypass the case rules, so they never touch a CASE's instance.

A case's workflow is driven only by the case service (intake, materials, clocks, decisions): correlating a
raw message with a case's business key would merge any payload into its workflow (a ``department`` that
re-routes it), and an instance started under a case number would make the case lifecycle act on it.
Therefore:

* an instance that belongs to a case (its business key is a case number of ``cases``, or a case names it
  as its instance) is refused for start, read, claim, complete, message and cancel with ``Conflict``
  ``case_instance`` (409, :func:`case_instance`); the raw inbox does not list the tasks of cases;
* a raw start may not take a business key shaped like a case number (``YYMMDD-NNNN-C``, whether its
  check digit fits or not): ``InvalidInput`` ``case_number_business_key``, so no raw instance can ever
  share a number with a case.

Start, message and cancel check inside the command's own transaction; claim, complete and the read check
first: whether an instance belongs to a case never changes once the instance exists (a case's instance is
started in the transaction that creates the case, under its new number, which no raw instance can have).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, exists, or_, select

from engine.cases.service import CaseService
from engine.errors import Conflict, InvalidInput
from engine.persistence.columns import check_row
from engine.persistence.repositories import (
    MAX_FILTER_GROUPS,
    AuditRepository,
    InstanceRepository,
    TaskRepository,
    candidate_of,
    member_name,
)
from engine.persistence.tables import cases, instances, tasks
from engine.service import WorkflowService, refuse_two_message_targets
from engine.step import StepResult

__all__ = ["CASE_NUMBER_SHAPE", "RawEngine", "case_instance", "belongs_to_case"]

CASE_NUMBER_SHAPE = re.compile(r"^\s*\d{6}-\d{4}-\d\s*$")
"""A business key that looks like a case number (``engine.cases.numbers``), check digit or not."""
INBOX_LIMIT = 200


def case_instance(**detail: Any) -> Conflict:
    """The one answer for a raw command on the workflow of a case."""
    return Conflict("办件流程只能通过办件接口操作", code="case_instance", **detail)


def belongs_to_case(
    conn: Connection, *, instance_id: str | None = None, business_key: str | None = None
) -> bool:
    """Whether the instance ``instance_id`` or the business key ``business_key`` is a case's."""
    conditions = []
    if business_key is not None:
        conditions.append(cases.c.id == business_key)
    if instance_id is not None:
        conditions.append(cases.c.instance_id == instance_id)
        conditions.append(
            cases.c.id.in_(select(instances.c.business_key).where(instances.c.id == instance_id))
        )
    if not conditions:
        return False
    return bool(conn.execute(select(exists().where(or_(*conditions)))).scalar())


def _storable_ids(
    *, instance_id: str | None = None, task_id: str | None = None, business_key: str | None = None
) -> None:
    """The ids a raw command names, checked against their columns before any read: a NUL or a lone
    surrogate is ``bad_character`` naming the field on every backend (PostgreSQL's driver cannot even send
    it in a query, which answered 500)."""
    check_row(instances, {"id": instance_id, "business_key": business_key}, fields={"id": "instance_id"})
    check_row(tasks, {"id": task_id}, fields={"id": "task_id"})


class RawEngine:
    """The raw engine commands over ``workflow`` (tasks are completed through ``cases``, which validates
    a task's form and its claim); every one refuses a case's instance."""

    def __init__(self, workflow: WorkflowService, cases_service: CaseService) -> None:
        self.workflow = workflow
        self.cases = cases_service

    @property
    def engine(self) -> Engine:
        return self.workflow.engine

    def _refuse_case_instance(self, conn: Connection, instance_id: str) -> None:
        if belongs_to_case(conn, instance_id=instance_id):
            raise case_instance(instance_id=instance_id)

    def _refuse_case_task(self, task_id: str) -> dict[str, Any]:
        _storable_ids(task_id=task_id)
        with self.engine.connect() as conn:
            task = TaskRepository(conn).get(task_id)  # task_not_found
            if belongs_to_case(conn, instance_id=task["instance_id"], business_key=task["business_key"]):
                raise case_instance(task_id=task_id)
        return task

    # ---------------------------------------------------------------- commands
    def start(
        self,
        key: str,
        data: dict[str, Any],
        actor: str,
        *,
        business_key: str | None = None,
        version: int | None = None,
        groups: Iterable[str] = (),
    ) -> StepResult:
        """Start an instance (not a case) for ``actor`` of ``groups``: a model naming its starters
        (``camunda:candidateStarterGroups`` / ``candidateStarterUsers``) refuses anyone else."""
        if business_key is not None and CASE_NUMBER_SHAPE.match(business_key):
            raise InvalidInput(
                "业务编号不能采用办件编号的格式：办件只能通过办件接口申请",
                code="case_number_business_key",
                field="business_key",
            )
        _storable_ids(business_key=business_key)

        def command(conn: Connection) -> StepResult:
            if business_key is not None and belongs_to_case(conn, business_key=business_key):
                raise case_instance(business_key=business_key)
            return self.workflow.start_in(
                conn, key, data, actor, business_key=business_key, version=version, groups=list(groups)
            )

        return self.workflow.run(command)

    def instance(self, instance_id: str) -> dict[str, Any]:
        """The instance with its tasks and audit events."""
        _storable_ids(instance_id=instance_id)
        with self.engine.connect() as conn:
            row = InstanceRepository(conn).get(instance_id)  # instance_not_found
            self._refuse_case_instance(conn, instance_id)
            return {
                "id": row.id,
                "definition_id": row.definition_id,
                "business_key": row.business_key,
                "status": row.status,
                "version": row.version,
                "tasks": TaskRepository(conn).of_instance(instance_id),
                "audit": AuditRepository(conn).for_instance(instance_id),
            }

    def cancel(self, instance_id: str, actor: str, reason: str) -> None:
        _storable_ids(instance_id=instance_id)

        def command(conn: Connection) -> None:
            InstanceRepository(conn).get(instance_id)  # instance_not_found first
            self._refuse_case_instance(conn, instance_id)
            self.workflow.cancel_in(conn, instance_id, actor, reason)

        self.workflow.run(command)

    def inbox(self, groups: Sequence[str], user: str | None = None) -> list[dict[str, Any]]:
        """Ready tasks of raw instances in ``groups`` or of ``user`` (none given: all), never a case's. A
        refusal names the filter as the route's query does: ``group`` (repeated), ``user``."""
        if len(groups) > MAX_FILTER_GROUPS:
            raise InvalidInput(
                f"一次最多按 {MAX_FILTER_GROUPS} 个组筛选待办",
                code="too_many_groups",
                field="group",
                count=len(groups),
                max=MAX_FILTER_GROUPS,
            )
        member = candidate_of([member_name(g, "group") for g in groups], user)
        of_case = exists().where(
            or_(cases.c.id == tasks.c.business_key, cases.c.instance_id == tasks.c.instance_id)
        )
        query = select(tasks).where(tasks.c.state == "ready", ~of_case)
        if member is not None:
            query = query.where(or_(tasks.c.assignee == user, member) if user else member)
        order = (tasks.c.priority.desc(), tasks.c.due_at, tasks.c.created_at, tasks.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*order).limit(INBOX_LIMIT)).all()
        return [dict(r._mapping) for r in rows]

    def claim(self, task_id: str, actor: str) -> None:
        self._refuse_case_task(task_id)
        self.workflow.claim_task(task_id, actor, groups=None)

    def complete(self, task_id: str, data: dict[str, Any], actor: str) -> StepResult:
        """Through the case service's task rules (the task's form validates the data; a task claimed by
        someone else is refused); the designer's role decides who may, not a candidate group."""
        self._refuse_case_task(task_id)
        return self.cases.complete_task(task_id, data, actor, groups=None)

    def correlate(
        self,
        name: str,
        payload: dict[str, Any],
        actor: str,
        *,
        instance_id: str | None = None,
        business_key: str | None = None,
    ) -> bool:
        refuse_two_message_targets(instance_id, business_key)  # before reading what either names
        _storable_ids(instance_id=instance_id, business_key=business_key)

        def command(conn: Connection) -> bool:
            if belongs_to_case(conn, instance_id=instance_id, business_key=business_key):
                raise case_instance(instance_id=instance_id, business_key=business_key)
            return self.workflow.correlate_message_in(
                conn, name, payload, actor, instance_id=instance_id, business_key=business_key
            )

        return self.workflow.run(command)
