"""Repositories over the engine tables. They read and write through a caller's connection and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from engine.errors import Conflict, InvalidInput, NotFound
from engine.limits import bad_character
from engine.persistence.columns import storable_text
from engine.persistence.tables import (
    audit_log,
    definitions,
    instances,
    messages,
    task_candidates,
    tasks,
    timers,
)


@dataclass(frozen=True)
class DefinitionRow:
    id: int
    key: str
    version: int
    name: str | None
    checksum: str
    spec_json: str
    deployed_by: str
    deployed_at: datetime


@dataclass(frozen=True)
class DefinitionRef:
    id: int
    key: str
    version: int
    checksum: str


@dataclass(frozen=True)
class InstanceRow:
    id: str
    definition_id: int
    business_key: str | None
    status: str
    state: str
    version: int


# The statements every command runs are built once: constructing a Core statement costs more CPU than
# executing it (about 140 us against 40 us here). The writes of a step are in steps.py.
_INSTANCE_COLUMNS = (
    instances.c.id,
    instances.c.definition_id,
    instances.c.business_key,
    instances.c.status,
    instances.c.state,
    instances.c.version,
)
_GET_INSTANCE = select(*_INSTANCE_COLUMNS).where(instances.c.id == bindparam("instance_id"))
_INSTANCE_OF_TASK = (
    select(*_INSTANCE_COLUMNS, tasks.c.state)
    .join(tasks, tasks.c.instance_id == instances.c.id)
    .where(tasks.c.id == bindparam("task_id"))
)
_CLOSE_TASKS = (
    update(tasks)
    .where(tasks.c.id.in_(bindparam("ids", expanding=True)), tasks.c.state == "ready")
    .values(state=bindparam("new_state"), completed_at=bindparam("now"), completed_by=bindparam("actor"))
)
# inline: nobody reads the new id back, so PostgreSQL must not fetch it first (a nextval round trip)
_INSERT_AUDIT = insert(audit_log).inline()
_INSERT_TIMERS = insert(timers).inline()
_LATEST_DEFINITION = (
    select(definitions.c.id, definitions.c.version, definitions.c.checksum)
    .where(definitions.c.key == bindparam("key"))
    .order_by(definitions.c.version.desc())
    .limit(1)
)


class DefinitionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def latest(self, key: str) -> DefinitionRef | None:
        """The newest version of ``key`` (id, version, checksum only: the texts are not read)."""
        row = self.conn.execute(_LATEST_DEFINITION, {"key": key}).first()
        return DefinitionRef(int(row[0]), key, int(row[1]), str(row[2])) if row else None

    def get(self, definition_id: int) -> DefinitionRow:
        row = self.conn.execute(select(definitions).where(definitions.c.id == definition_id)).first()
        if row is None:
            raise NotFound("流程定义不存在", code="definition_not_found", definition_id=definition_id)
        return DefinitionRow(**{k: row._mapping[k] for k in DefinitionRow.__annotations__})

    def find(self, key: str, version: int | None = None) -> DefinitionRef:
        if version is None:
            found = self.latest(key)
        else:
            row = self.conn.execute(
                select(definitions.c.id, definitions.c.checksum).where(
                    definitions.c.key == key, definitions.c.version == version
                )
            ).first()
            found = DefinitionRef(int(row[0]), key, version, str(row[1])) if row else None
        if found is None:
            raise NotFound(f"流程 {key} 尚未部署", code="definition_not_found", key=key, version=version)
        return found

    def insert(self, **values: Any) -> int:
        return int(self.conn.execute(insert(definitions).values(**values)).inserted_primary_key[0])

    def list(self) -> list[dict[str, Any]]:
        cols = [c for c in definitions.c if c.name not in ("bpmn", "spec_json")]
        rows = self.conn.execute(select(*cols).order_by(definitions.c.key, definitions.c.version)).all()
        return [dict(r._mapping) for r in rows]


class InstanceRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, instance_id: str) -> InstanceRow:
        row = self.conn.execute(_GET_INSTANCE, {"instance_id": instance_id}).first()
        if row is None:
            raise NotFound("流程实例不存在", code="instance_not_found", instance_id=instance_id)
        return InstanceRow(*row)

    def version_of(self, instance_id: str) -> int | None:
        """The stored version of the instance (None: there is none)."""
        return self.conn.execute(
            select(instances.c.version).where(instances.c.id == instance_id)
        ).scalar_one_or_none()

    def lock(self, instance_id: str) -> None:
        """Take the instance's row lock now (PostgreSQL; SQLite writers are serialised anyway)."""
        self.conn.execute(select(instances.c.id).where(instances.c.id == instance_id).with_for_update())

    def touch(self, instance_id: str) -> None:
        """Write the instance row without changing it (its version stays): a new row version, which a
        reader waiting for its lock sees as written (``engine.cases.lifecycle._LockingRead``)."""
        self.conn.execute(
            update(instances).where(instances.c.id == instance_id).values(version=instances.c.version)
        )

    def for_task(self, task_id: str) -> tuple[InstanceRow, str]:
        """The instance of a task and the task's projection state, in one round trip."""
        row = self.conn.execute(_INSTANCE_OF_TASK, {"task_id": task_id}).first()
        if row is None:
            raise NotFound("任务不存在", code="task_not_found", task_id=task_id)
        return InstanceRow(*row[:6]), row[6]

    def by_business_key(self, business_key: str) -> InstanceRow:
        row = self.conn.execute(
            select(instances.c.id).where(instances.c.business_key == business_key).limit(1)
        ).first()
        if row is None:
            raise NotFound("业务编号无对应流程实例", code="instance_not_found", business_key=business_key)
        return self.get(row[0])


MAX_FILTER_GROUPS = 50
"""Most groups one inbox query may filter by (each is one name of the ``task_candidates`` lookup)."""


def member_name(name: str, field: str = "groups") -> str:
    """``name`` as one group or user name to filter tasks by (``InvalidInput`` when it cannot be one)."""
    if not isinstance(name, str) or not name or "," in name or len(name) > 200 or bad_character(name):
        raise InvalidInput(
            "筛选条件必须是单个组名或用户名（不含逗号，至多 200 个字符）",
            code="bad_filter_value",
            field=field,
            value=str(name)[:80],
        )
    return name


def candidate_of(groups: Sequence[str], user: str | None = None) -> ColumnElement[bool] | None:
    """Whether a task has one of ``groups`` as candidate group or ``user`` as candidate user: an EXISTS on
    its ``task_candidates`` rows (their primary key), ``None`` when neither is given."""
    names = [member_name(g) for g in groups]
    kinds: list[ColumnElement[bool]] = []
    if names:
        kinds.append(and_(task_candidates.c.kind == "group", task_candidates.c.name.in_(names)))
    if user:
        kinds.append(
            and_(task_candidates.c.kind == "user", task_candidates.c.name == member_name(user, "user"))
        )
    if not kinds:
        return None
    return exists().where(task_candidates.c.task_id == tasks.c.id, or_(*kinds))


class TaskRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def close(self, task_ids: Sequence[str], state: str, now: datetime, actor: str | None) -> None:
        if task_ids:
            self.conn.execute(
                _CLOSE_TASKS, {"ids": list(task_ids), "new_state": state, "now": now, "actor": actor}
            )

    def get(self, task_id: str) -> dict[str, Any]:
        row = self.conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
        if row is None:
            raise NotFound("任务不存在", code="task_not_found", task_id=task_id)
        return dict(row._mapping)

    def inbox(self, groups: Sequence[str], user: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        if len(groups) > MAX_FILTER_GROUPS:
            raise InvalidInput(
                f"一次最多按 {MAX_FILTER_GROUPS} 个组筛选待办",
                code="too_many_groups",
                field="groups",
                count=len(groups),
                max=MAX_FILTER_GROUPS,
                limit="MAX_FILTER_GROUPS",
            )
        member = candidate_of(groups, user)
        query = select(tasks).where(tasks.c.state == "ready")
        if member is not None:
            query = query.where(or_(tasks.c.assignee == user, member) if user else member)
        order = (tasks.c.priority.desc(), tasks.c.due_at, tasks.c.created_at)
        rows = self.conn.execute(query.order_by(*order).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def of_instance(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id).order_by(tasks.c.created_at, tasks.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]

    def claim(self, task_id: str, user: str) -> None:
        result = self.conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.state == "ready", tasks.c.assignee.is_(None))
            .values(assignee=user)
        )
        if result.rowcount != 1:
            raise Conflict("任务已被认领或已办结", code="task_not_claimable", task_id=task_id)


class TimerRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(_INSERT_TIMERS, list(rows))

    def drop(self, instance_id: str, task_ids: Sequence[str]) -> None:
        if task_ids:
            self.conn.execute(
                delete(timers).where(
                    timers.c.instance_id == instance_id,
                    timers.c.task_id.in_(list(task_ids)),
                    timers.c.fired_at.is_(None),
                )
            )

    def claim_instance(self, now: datetime, skip: Sequence[str], skip_locked: bool) -> str | None:
        """Lock and return one running instance that has a due, unfired timer (other workers skip it)."""
        due = select(timers.c.instance_id).where(
            timers.c.fired_at.is_(None),
            timers.c.due_at <= now,
            or_(timers.c.retry_at.is_(None), timers.c.retry_at <= now),
        )
        query = select(instances.c.id).where(instances.c.id.in_(due))
        if skip:
            query = query.where(instances.c.id.not_in(list(skip)))
        query = query.order_by(instances.c.updated_at).limit(1)
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        return self.conn.execute(query).scalar()

    def fired_for(self, instance_id: str, task_ids: Sequence[str], now: datetime, worker: str) -> None:
        if task_ids:
            self.conn.execute(
                update(timers)
                .where(
                    timers.c.instance_id == instance_id,
                    timers.c.task_id.in_(list(task_ids)),
                    timers.c.fired_at.is_(None),
                )
                .values(fired_at=now, fired_by=worker)
            )

    def reschedule(self, instance_id: str, task_id: str, due_at: datetime) -> None:
        self.conn.execute(
            update(timers)
            .where(timers.c.instance_id == instance_id, timers.c.task_id == task_id)
            .values(due_at=due_at, fired_at=None, fired_by=None, attempts=0, retry_at=None, last_error=None)
        )

    def align(self, instance_id: str, pending: dict[str, datetime]) -> None:
        """Make the unfired timer rows of an instance what the engine says is pending (task id -> due)."""
        rows = self.conn.execute(
            select(timers.c.task_id, timers.c.due_at).where(
                timers.c.instance_id == instance_id, timers.c.fired_at.is_(None)
            )
        ).all()
        self.drop(instance_id, [task_id for task_id, _ in rows if task_id not in pending])
        for task_id, due in rows:
            if task_id in pending and pending[task_id] != due:
                self.reschedule(instance_id, task_id, pending[task_id])

    def failed(self, instance_id: str, now: datetime, error: str) -> int:
        """Put the due timers of an instance whose firing failed aside, retrying later and later
        (5 minutes, doubling, at most a day); returns how many."""
        rows = self.conn.execute(
            select(timers.c.id, timers.c.attempts).where(
                timers.c.instance_id == instance_id, timers.c.fired_at.is_(None), timers.c.due_at <= now
            )
        ).all()
        for timer_id, attempts in rows:
            wait = min(timedelta(minutes=5) * 2 ** min(int(attempts), 10), timedelta(days=1))
            self.conn.execute(
                update(timers)
                .where(timers.c.id == timer_id)
                .values(
                    attempts=int(attempts) + 1, retry_at=now + wait, last_error=storable_text(error[:1000])
                )
            )
        return len(rows)

    def drop_all(self, instance_id: str) -> None:
        self.conn.execute(
            delete(timers).where(timers.c.instance_id == instance_id, timers.c.fired_at.is_(None))
        )


class MessageRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def buffer(self, instance_id: str, name: str, payload: dict[str, Any], now: datetime) -> int:
        result = self.conn.execute(
            insert(messages).values(instance_id=instance_id, name=name, payload=payload, received_at=now)
        )
        return int(result.inserted_primary_key[0])

    def undelivered(self, instance_id: str) -> int:
        """How many messages the instance keeps that no catch event took yet."""
        return int(
            self.conn.execute(
                select(func.count())
                .select_from(messages)
                .where(messages.c.instance_id == instance_id, messages.c.delivered_at.is_(None))
            ).scalar_one()
        )

    def waiting(self, instance_id: str, names: Sequence[str]) -> list[tuple[int, str, dict[str, Any]]]:
        if not names:
            return []
        rows = self.conn.execute(
            select(messages.c.id, messages.c.name, messages.c.payload)
            .where(
                messages.c.instance_id == instance_id,
                messages.c.name.in_(list(names)),
                messages.c.delivered_at.is_(None),
            )
            .order_by(messages.c.id)
        ).all()
        return [(int(r[0]), str(r[1]), dict(r[2])) for r in rows]

    def delivered(self, message_id: int, now: datetime) -> None:
        self.conn.execute(update(messages).where(messages.c.id == message_id).values(delivered_at=now))


def audit_row(
    at: datetime,
    actor: str,
    action: str,
    *,
    instance_id: str | None = None,
    business_key: str | None = None,
    task_id: str | None = None,
    element_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit event: who did what, when, to which instance/case/task/element, with what detail."""
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "instance_id": instance_id,
        "business_key": business_key,
        "task_id": task_id,
        "element_id": element_id,
        "detail": detail,
    }


class AuditRepository:
    """Append-only: this class has no update or delete, and PostgreSQL refuses them by trigger."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, at: datetime, actor: str, action: str, **about: Any) -> None:
        """Append one event (``about``: the keyword fields of :func:`audit_row`)."""
        self.append([audit_row(at, actor, action, **about)])

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(_INSERT_AUDIT, rows[0] if len(rows) == 1 else list(rows))

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(audit_log).where(audit_log.c.instance_id == instance_id).order_by(audit_log.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]

    def for_business_key(self, business_key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(audit_log).where(audit_log.c.business_key == business_key).order_by(audit_log.c.id)
        ).all()
        return [dict(r._mapping) for r in rows]
