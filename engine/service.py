"""The engine's service layer: deploy, start, complete, correlate, fire timers, cancel.

Every command is one transaction: load the instance with its version (or take the live workflow this
process committed last), run SpiffWorkflow (through the workflow adapter), write the new state with an
optimistic version check, the task/timer projections and the audit events, commit. Each public command
has an ``*_in(conn, ...)`` form so that a higher service (cases) can compose it with its own writes inside
the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.assignment import authorise_task, resolve_candidate_groups, resolve_group
from engine.error_mapping import as_onewindow_error, typed_errors
from engine.errors import Conflict, Forbidden, Internal, InvalidInput, OneWindowError, Unavailable
from engine.limits import DataLimits, check_data, check_plain_text
from engine.live import Live, LiveWorkflows
from engine.persistence.columns import check_row
from engine.persistence.database import after_commit, is_postgres, unit_of_work
from engine.persistence.repositories import (
    AuditRepository,
    DefinitionRepository,
    InstanceRepository,
    InstanceRow,
    MessageRepository,
    TaskRepository,
    TimerRepository,
    audit_row,
)
from engine.persistence.steps import StepWrite, write_step
from engine.persistence.tables import instances, messages, tasks
from engine.step import (
    Clock,
    Deployed,
    OpenedTask,
    StepContext,
    StepObserver,
    StepResult,
    default_due,
    utcnow,
)
from engine.time.calendar import WorkingCalendar, default_calendar
from engine.workflow import (
    Definition,
    ReadyTask,
    Runtime,
    StepLimits,
    document_text,
    load_definitions,
    load_document_set,
)

log = logging.getLogger("onewindow.engine")

MAX_RETRIES = 8
MAX_BUFFERED_MESSAGES = 100
"""Messages one instance keeps undelivered (sent before a catch event waits for them): the buffer was
unbounded, and every command reads the waiting ones whole (a megabyte of payload each) when their event is
reached, so 5,000 early messages made the instance one no command could load."""
RETRYABLE = frozenset({"version_conflict", "serial_conflict", "prepared_statement_lost"})
T = TypeVar("T")


def _listed(values: Sequence[str]) -> str:
    return ("," + ",".join(values) + ",") if values else ""


def refuse_two_message_targets(instance_id: str | None, business_key: str | None) -> None:
    """A message goes to one instance, named by its id or by its business key, never by both (the id
    would win over a business key naming another instance): ``InvalidInput`` ``message_two_targets``."""
    if instance_id is not None and business_key is not None:
        raise InvalidInput(
            "消息只能指定目标流程实例编号（instance_id）或业务编号（business_key）之一，不能同时指定",
            code="message_two_targets",
            field="instance_id",
            fields=["instance_id", "business_key"],
        )


class WorkflowService:
    """Commands over persisted workflow instances."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utcnow,
        observers: Sequence[StepObserver] = (),
        calendar: Callable[[], WorkingCalendar] = default_calendar,
        limits: DataLimits | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.observers: list[StepObserver] = list(observers)
        self.calendar = calendar
        self.limits = limits or DataLimits()  # every command's data is checked against them first
        self._definitions: dict[int, Definition] = {}
        self.live = LiveWorkflows()
        self._skip_locked = is_postgres(engine)

    # ---------------------------------------------------------------- definitions
    def deploy(self, bpmn: bytes, filename: str, actor: str) -> list[Deployed]:
        with unit_of_work(self.engine) as conn:
            return self.deploy_in(conn, bpmn, filename, actor)

    def deploy_in(self, conn: Connection, bpmn: bytes, filename: str, actor: str) -> list[Deployed]:
        """Validate (safe parse, per-element rules, sandbox check of every expression) and store a new version
        of every executable process in the document. Nothing is stored if anything is wrong."""
        parsed = load_definitions(bpmn, filename)  # raises UnsafeDocument / InvalidModel / UnsafeExpression
        return self._store(conn, parsed, bpmn, filename, hashlib.sha256(bpmn).hexdigest(), actor)

    def deploy_set_in(
        self, conn: Connection, documents: Sequence[tuple[bytes, str]], actor: str
    ) -> list[tuple[Deployed, str]]:
        """``deploy_in`` for documents deployed together: a call activity may call a process of another
        document of the set (validated as one set; all are stored or none). A document whose processes call
        into others is versioned by its own bytes and theirs. Returns ``(deployed, filename)`` pairs."""
        loaded = load_document_set(list(documents))
        own = [hashlib.sha256(bpmn).hexdigest() for bpmn, _ in documents]
        out: list[tuple[Deployed, str]] = []
        for (bpmn, filename), parsed, checksum in zip(documents, loaded, own, strict=True):
            called = {
                spec_name for definition in parsed.values() for spec_name in definition.subprocess_specs
            }
            others = sorted(
                own[i] for i, other in enumerate(loaded) if own[i] != checksum and called & set(other)
            )
            if others:
                checksum = hashlib.sha256("+".join([checksum, *others]).encode()).hexdigest()
            for deployed in self._store(conn, parsed, bpmn, filename, checksum, actor):
                out.append((deployed, filename))
        return out

    def _store(
        self,
        conn: Connection,
        parsed: dict[str, Definition],
        bpmn: bytes,
        filename: str,
        checksum: str,
        actor: str,
    ) -> list[Deployed]:
        repo = DefinitionRepository(conn)
        now = self.clock()
        out: list[Deployed] = []
        for key, definition in parsed.items():
            for element_id, name in definition.elements():  # what every instance would store: refused
                where = {"key": key, "element_id": element_id[:200]}  # at deploy, not at each start
                named = name if element_id in definition.task_meta else None  # a person's task is listed
                check_row(tasks, {"element_id": element_id, "name": named}, **where)
            latest = repo.latest(key)
            if (
                latest is not None
                and latest.checksum == checksum
                and Definition.read_as_now(repo.get(latest.id).spec_json)
            ):  # the same document, read as this release reads it: no new version
                out.append(Deployed(latest.id, key, latest.version, checksum, created=False))
                continue
            version = (latest.version + 1) if latest else 1
            definition_id = repo.insert(
                key=key,
                version=version,
                name=definition.name,
                filename=filename,
                bpmn=document_text(bpmn),
                checksum=checksum,
                spec_json=definition.spec_json(),
                deployed_by=actor,
                deployed_at=now,
            )
            detail = {"key": key, "version": version, "filename": filename}
            AuditRepository(conn).record(now, actor, "deploy", detail=detail)
            out.append(Deployed(definition_id, key, version, checksum, created=True))
        return out

    def definition(self, conn: Connection, definition_id: int) -> Definition:
        """The parsed spec of a deployed version, rebuilt once per process and cached."""
        cached = self._definitions.get(definition_id)
        if cached is None:
            row = DefinitionRepository(conn).get(definition_id)
            cached = self._definitions[definition_id] = Definition.from_spec_json(row.spec_json)
        return cached

    # ---------------------------------------------------------------- instance commands
    def start(
        self,
        key: str,
        data: dict[str, Any],
        actor: str,
        *,
        business_key: str | None = None,
        version: int | None = None,
        groups: Iterable[str] | None = None,
    ) -> StepResult:
        return self.run(
            lambda conn: self.start_in(
                conn, key, data, actor, business_key=business_key, version=version, groups=groups
            )
        )

    def start_in(
        self,
        conn: Connection,
        key: str,
        data: dict[str, Any],
        actor: str,
        *,
        business_key: str | None = None,
        version: int | None = None,
        groups: Iterable[str] | None = None,
    ) -> StepResult:
        """Start a case of ``key``. A model that names who may start it (``camunda:candidateStarterGroups``
        / ``candidateStarterUsers``) refuses an ``actor`` who is neither such a user nor in one of
        ``groups`` (``groups=None``: the caller is the system or has checked already); the model's
        ``camunda:initiator`` variable is set to ``actor``, whatever the start data says."""
        if not isinstance(data, dict):
            raise InvalidInput("启动数据必须是对象", code="bad_start_data", key=key)
        check_data(data, self.limits, field="data", key=key)
        check_row(instances, {"business_key": business_key})
        row = DefinitionRepository(conn).find(key, version)
        definition = self.definition(conn, row.id)
        if groups is not None and (definition.starter_groups or definition.starter_users):
            if actor not in definition.starter_users and not set(groups) & set(definition.starter_groups):
                raise Forbidden(
                    f"流程 {key} 只允许 {_listed(definition.starter_groups).strip(',') or '指定用户'} 发起",
                    code="not_a_starter",
                    key=key,
                    actor=actor,
                )
        if definition.initiator_variable:
            data = {**data, definition.initiator_variable: actor}
        now = self.clock()
        runtime = Runtime.start(
            definition,
            dict(data),
            now,
            self.calendar(),
            branch_limit=self.limits.mi_max_branches,
            step_limits=self._step_limits(),
        )
        instance_id = str(uuid.uuid4())
        ctx = StepContext(conn, instance_id, business_key, runtime, now, actor, "start")
        return self._persist(
            ctx, {}, {}, 0, detail={"key": key, "version": row.version}, definition_id=row.id
        )

    def run(self, command: Callable[[Connection], T]) -> T:
        """Run ``command`` as one transaction. A lost race (the instance version moved, a deadlock, a licence
        serial taken) rolls back and runs the whole command again on fresh data; other errors propagate,
        always as a ``OneWindowError`` (:mod:`engine.error_mapping`: a library's or the standard library's
        exception is translated after the rollback, a bug becomes ``Internal``)."""
        for attempt in range(MAX_RETRIES):
            self.calendar()  # a due reload of the calendar happens here, not inside the transaction
            try:
                with typed_errors(), unit_of_work(self.engine) as conn:
                    return command(conn)
            except Conflict as exc:
                if exc.code not in RETRYABLE or attempt == MAX_RETRIES - 1:
                    raise
                log.debug("retrying after %s (attempt %d)", exc.code, attempt + 1)
        raise AssertionError("unreachable")

    def complete_task(
        self, task_id: str, data: dict[str, Any], actor: str, *, expected_state: str = "ready"
    ) -> StepResult:
        """Complete a ready task. A lost race on the instance version is retried while the task is still
        ready (sibling parallel tasks both succeed); a task someone else completed is a Conflict."""
        return self.run(
            lambda conn: self.complete_task_in(conn, task_id, data, actor, expected_state=expected_state)
        )

    def complete_task_in(
        self,
        conn: Connection,
        task_id: str,
        data: dict[str, Any],
        actor: str,
        *,
        expected_state: str = "ready",
    ) -> StepResult:
        if not isinstance(data, dict):
            raise InvalidInput("任务数据必须是对象", code="bad_task_data", task_id=task_id)
        check_row(tasks, {"id": task_id}, fields={"id": "task_id"})
        check_data(data, self.limits, field="data", task_id=task_id)
        live = self.live.take_of_task(task_id) if expected_state == "ready" else None
        if live is None:
            row, state = InstanceRepository(conn).for_task(task_id)
            if state != expected_state:
                raise Conflict(
                    f"任务当前状态为 {state}，不是 {expected_state}",
                    code="task_not_ready",
                    task_id=task_id,
                    state=state,
                )
            return self._complete(self._load(conn, row, actor, "complete"), task_id, data)
        # No read: the step runs on the copy this process committed last, and the write's version check
        # proves nobody moved the instance since. Until that write, an error may come from a stale copy
        # (another process moved the instance): then the stored state decides, as ``run`` retries with a
        # read; an error on a copy that was current stands.
        loaded = self._resume(conn, live, actor, "complete")
        try:
            return self._complete(loaded, task_id, data)
        except Exception as exc:  # any error, typed or not: on a stale copy the stored state decides
            if loaded[0].state_written or (isinstance(exc, Conflict) and exc.code in RETRYABLE):
                raise
            if isinstance(exc, SQLAlchemyError):  # the transaction is lost: no read can tell any more
                if loaded[0].observed:  # an observer's own write failed, as it would on any copy
                    raise
            elif InstanceRepository(conn).version_of(live.instance_id) == live.version:
                raise
            raise Conflict(
                "流程实例已被他人修改，请刷新后重试", code="version_conflict", task_id=task_id
            ) from exc

    def _complete(
        self,
        loaded: tuple[StepContext, dict[str, ReadyTask], dict[str, datetime], int],
        task_id: str,
        data: dict[str, Any],
    ) -> StepResult:
        ctx, before_ready, before_timers, version = loaded
        if task_id not in before_ready:
            raise Conflict("任务已不在待办状态", code="task_not_ready", task_id=task_id)
        ctx.runtime.complete(task_id, dict(data), ctx.now)
        ctx.completed, ctx.entered = before_ready[task_id], dict(data)
        return self._persist(
            ctx,
            before_ready,
            before_timers,
            version,
            task_id=task_id,
            element_id=before_ready[task_id].element_id,
            detail={"data": data},
        )

    def claim_task(self, task_id: str, user: str, *, groups: Iterable[str] | None = None) -> None:
        """An officer takes a ready, unclaimed task into their own inbox (others then may not complete it).

        Claiming needs the right completing needs (:func:`engine.assignment.authorise_task`): ``groups``
        are the user's groups; a task outside them answers like an unknown task. ``None`` means the
        caller has already decided (internal use, or the REST API until sign-in exists)."""
        with unit_of_work(self.engine) as conn:
            task = TaskRepository(conn).get(task_id)
            authorise_task(task, user, groups)
            TaskRepository(conn).claim(task_id, user)
            AuditRepository(conn).record(
                self.clock(),
                user,
                "claim",
                instance_id=task["instance_id"],
                business_key=task["business_key"],
                task_id=task_id,
                element_id=task["element_id"],
            )

    def correlate_message(
        self,
        name: str,
        payload: dict[str, Any],
        actor: str,
        *,
        instance_id: str | None = None,
        business_key: str | None = None,
    ) -> bool:
        """Deliver a message to the instance; keep it in the buffer when no catch event waits yet.
        Returns True when delivered now."""
        return self.run(
            lambda conn: self.correlate_message_in(
                conn, name, payload, actor, instance_id=instance_id, business_key=business_key
            )
        )

    def correlate_message_in(
        self,
        conn: Connection,
        name: str,
        payload: dict[str, Any],
        actor: str,
        *,
        instance_id: str | None = None,
        business_key: str | None = None,
    ) -> bool:
        refuse_two_message_targets(instance_id, business_key)
        if not isinstance(payload, dict):
            raise InvalidInput("消息内容必须是对象", code="bad_message_payload", message_name=name)
        check_row(messages, {"name": name}, fields={"name": "message"})
        check_row(instances, {"id": instance_id, "business_key": business_key}, fields={"id": "instance_id"})
        check_data(payload, self.limits, field="payload", message_name=name)
        repo = InstanceRepository(conn)
        if instance_id is None:
            if business_key is None:
                raise InvalidInput("消息必须指定实例或业务编号", code="message_without_target")
            row = repo.by_business_key(business_key)
        else:
            row = repo.get(instance_id)
        ctx, before_ready, before_timers, version = self._load(conn, row, actor, "message")
        fresh = MessageRepository(conn).buffer(row.id, name, dict(payload), ctx.now)
        delivered_before = self._deliver_buffered(ctx, fresh)
        # counted only when nothing was delivered: a delivery leaves the buffer no larger than it was
        if not delivered_before and MessageRepository(conn).undelivered(row.id) > MAX_BUFFERED_MESSAGES:
            raise Conflict(
                f"流程实例已有 {MAX_BUFFERED_MESSAGES} 条尚未接收的消息，不再保留新的消息",
                code="message_buffer_full",
                instance_id=row.id,
                message_name=name,
                max=MAX_BUFFERED_MESSAGES,
            )
        self._persist(
            ctx,
            before_ready,
            before_timers,
            version,
            detail={"message": name, "delivered": bool(delivered_before)},
        )
        return bool(delivered_before)

    def fire_due_timers(self, worker: str = "worker", limit: int = 100) -> int:
        """Fire the due timers, one instance per transaction; several workers may run this at once.

        The worker locks the INSTANCE row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
        writers), the same row every command updates first, so a worker and an officer never wait on each
        other in opposite orders. Returns how many timers fired."""
        fired = 0
        seen: list[str] = []
        while fired < limit:
            instance_id: str | None = None
            try:
                with unit_of_work(self.engine) as conn:
                    instance_id = TimerRepository(conn).claim_instance(self.clock(), seen, self._skip_locked)
                    if instance_id is None:
                        return fired
                    seen.append(instance_id)
                    row = InstanceRepository(conn).get(instance_id)
                    if row.status != "running":  # timers left by an instance that ended
                        TimerRepository(conn).drop_all(instance_id)
                        continue
                    ctx, before_ready, before_timers, version = self._load(conn, row, worker, "timer")
                    names = ctx.runtime.fire_due_timers(ctx.now)
                    if not names:  # the stored due times were ahead of the engine's: align them, no step
                        TimerRepository(conn).align(instance_id, before_timers)
                        continue
                    self._persist(ctx, before_ready, before_timers, version, detail={"fired": names})
                    fired += len(names)
            except Conflict as exc:
                if exc.code in RETRYABLE or instance_id is None:
                    log.info("timers of a busy instance are left for the next round")
                else:  # not a lost race (a duplicate row...): this instance fails the same way next time
                    log.warning("firing the timers of instance %s failed: %s", instance_id, exc)
                    self._timers_failed(instance_id, exc, worker)
            except Exception as exc:  # one broken instance must not stop every other timer
                typed = as_onewindow_error(exc)
                database = isinstance(exc, SQLAlchemyError) and isinstance(typed, Internal | Unavailable)
                if instance_id is None or database or isinstance(typed, Unavailable):
                    # the database, not the instance: the whole round fails and the next one retries
                    if typed is exc:
                        raise
                    raise typed from exc
                log.exception("firing the timers of instance %s failed", instance_id)
                self._timers_failed(instance_id, typed, worker)
        return fired

    def _timers_failed(self, instance_id: str, exc: OneWindowError, worker: str) -> None:
        code = exc.code
        with unit_of_work(self.engine) as conn:
            now = self.clock()
            row = InstanceRepository(conn).get(instance_id)
            TimerRepository(conn).failed(instance_id, now, f"[{code}] {exc}")
            detail = {"code": code, "message": str(exc)[:500]}
            AuditRepository(conn).record(
                now,
                worker,
                "timer_failed",
                instance_id=instance_id,
                business_key=row.business_key,
                detail=detail,
            )

    def cancel(self, instance_id: str, actor: str, reason: str) -> None:
        self.run(lambda conn: self.cancel_in(conn, instance_id, actor, reason))

    def cancel_in(self, conn: Connection, instance_id: str, actor: str, reason: str) -> None:
        if not reason.strip():
            raise InvalidInput("撤销必须说明理由", code="reason_required", field="reason")
        check_plain_text(reason, "reason", "撤销理由", multiline=True)
        row = InstanceRepository(conn).get(instance_id)
        ctx, before_ready, before_timers, version = self._load(conn, row, actor, "cancel")
        ctx.runtime.cancel()
        self._persist(
            ctx, before_ready, before_timers, version, detail={"reason": reason}, status="cancelled"
        )

    # ---------------------------------------------------------------- internals
    def _load(
        self, conn: Connection, row: InstanceRow, actor: str, action: str
    ) -> tuple[StepContext, dict[str, ReadyTask], dict[str, datetime], int]:
        instance_id = row.id
        if row.status != "running":
            self.live.take(instance_id, -1)
            raise Conflict(
                f"流程实例已{ {'completed': '结束', 'cancelled': '撤销'}.get(row.status, row.status) }",
                code="instance_not_running",
                instance_id=instance_id,
                status=row.status,
            )
        live = self.live.take(instance_id, row.version)
        if live is not None:
            return self._resume(conn, live, actor, action)
        now = self.clock()
        runtime = Runtime.restore(
            self.definition(conn, row.definition_id),
            row.state,
            now,
            self.calendar(),
            branch_limit=self.limits.mi_max_branches,
            step_limits=self._step_limits(),
        )
        before_ready = {t.task_id: t for t in runtime.ready_tasks()}
        before_timers = {t.task_id: t.due_at for t in runtime.pending_timers()}
        ctx = StepContext(conn, instance_id, row.business_key, runtime, now, actor, action)
        return ctx, before_ready, before_timers, row.version

    def _resume(
        self, conn: Connection, live: Live, actor: str, action: str
    ) -> tuple[StepContext, dict[str, ReadyTask], dict[str, datetime], int]:
        live.runtime.calendar = self.calendar()
        live.runtime.branch_limit = self.limits.mi_max_branches
        live.runtime.step_limits = self._step_limits()
        ctx = StepContext(
            conn, live.instance_id, live.business_key, live.runtime, self.clock(), actor, action
        )
        return ctx, live.ready, live.timers, live.version

    def _deliver_buffered(self, ctx: StepContext, fresh: int | None = None) -> int:
        """Hand buffered messages to catch events that now wait for them. Only ``fresh`` (the message being
        correlated) may start an event sub-process: one kept from before did not find its scope active."""
        repo = MessageRepository(ctx.conn)
        delivered = 0
        for _ in range(20):
            names = sorted({m.message_name for m in ctx.runtime.pending_messages()})
            progress = False
            for message_id, name, payload in repo.waiting(ctx.instance_id, names):
                if ctx.runtime.deliver_message(name, payload, ctx.now, starts=message_id == fresh):
                    repo.delivered(message_id, ctx.now)
                    delivered += 1
                    progress = True
                    break
            if not progress:
                break
        return delivered

    def _persist(
        self,
        ctx: StepContext,
        before_ready: dict[str, ReadyTask],
        before_timers: dict[str, datetime],
        version: int,
        *,
        task_id: str | None = None,
        element_id: str | None = None,
        detail: dict[str, Any] | None = None,
        status: str | None = None,
        definition_id: int | None = None,
    ) -> StepResult:
        conn, rt, now = ctx.conn, ctx.runtime, ctx.now
        if ctx.action != "message":
            self._deliver_buffered(ctx)
        final = status or ("completed" if rt.completed else "running")
        after_ready = {t.task_id: t for t in rt.ready_tasks()}
        opened = [t for tid, t in after_ready.items() if tid not in before_ready]
        # due-date expressions run before the state is written, so the stored state is all they did
        ctx.due = {
            t.task_id: d for t in opened if t.meta.due_expression and (d := rt.task_due(t.task_id, now))
        }
        gone = [tid for tid in before_ready if tid not in after_ready]
        workflow_data = ctx.data if opened else {}  # one copy per step, shared with the observers
        where = {"instance_id": ctx.instance_id, "business_key": ctx.business_key}
        audit = [
            audit_row(
                now, ctx.actor, ctx.action, task_id=task_id, element_id=element_id, detail=detail, **where
            )
        ]
        if final != "running":
            audit.append(audit_row(now, ctx.actor, final, **where))
        for started in rt.take_started():  # an event sub-process whose event came, and what it cancelled
            cancelled = [{"task_id": tid, "element_id": element} for tid, element in started.cancelled]
            detail = {"start_event": started.start_event_id, "interrupting": started.interrupting}
            audit.append(
                audit_row(
                    now,
                    ctx.actor,
                    "event_subprocess",
                    element_id=started.element_id,
                    detail={**detail, "cancelled": cancelled} if cancelled else detail,
                    **where,
                )
            )
        for printed_by, line in rt.take_output():  # ``print`` in a script: the instance log
            audit.append(
                audit_row(
                    now, ctx.actor, "script_output", element_id=printed_by, detail={"text": line}, **where
                )
            )
        # how the tasks and timers that left ended, asked before ``dump`` prunes the finished ones away
        others = [tid for tid in gone if tid != task_id]
        others_completed = [tid for tid in others if rt.task_state(tid) == "COMPLETED"]
        after_timers = {t.task_id: t for t in rt.pending_timers()}
        left = [tid for tid in before_timers if tid not in after_timers]
        fired = [tid for tid in left if rt.task_state(tid) == "COMPLETED"]
        new_rows = [self._task_row(ctx, t, workflow_data) for t in opened]
        ctx.opened, ctx.closed, ctx.ready_after = opened, gone, list(after_ready.values())
        # the observers (the case lifecycle) run before the write: what they set on the case rides in the
        # step's statement, behind its version check (a lost race rolls back all they did)
        ctx.observed = True
        for observer in self.observers:
            observer(ctx)
        # the instance (under its version check), the task the actor completed, the opened tasks, the audit
        write_step(
            conn,
            StepWrite(
                ctx.instance_id,
                ctx.business_key,
                final,
                rt.dump(),
                version + 1,
                now,
                ctx.actor,
                definition_id=definition_id,
                completed_task=task_id if task_id in gone else None,
                new_tasks=new_rows,
                audit=audit,
                case=ctx.case_write,
            ),
        )
        ctx.state_written = True
        if others:
            tasks = TaskRepository(conn)
            tasks.close(others_completed, "completed", now, None)
            tasks.close([tid for tid in others if tid not in others_completed], "cancelled", now, None)
        if final == "running":
            ready = {tid: replace(t, data={}) for tid, t in after_ready.items()}  # not shared with observers
            timers = {tid: t.due_at for tid, t in after_timers.items()}
            live = Live(ctx.instance_id, ctx.business_key, version + 1, rt, ready, timers)
            after_commit(conn, lambda: self.live.keep(live))
        timer_repo = TimerRepository(conn)
        timer_repo.fired_for(ctx.instance_id, fired, now, ctx.actor)
        timer_repo.drop(ctx.instance_id, [tid for tid in left if tid not in fired])
        timer_repo.add(
            [
                {
                    "instance_id": ctx.instance_id,
                    "task_id": tid,
                    "element_id": t.element_id,
                    "due_at": t.due_at,
                }
                for tid, t in after_timers.items()
                if tid not in before_timers
            ]
        )
        for tid, t in after_timers.items():  # a cycle timer that fired waits again for its next time
            if tid in before_timers and before_timers[tid] != t.due_at:
                timer_repo.reschedule(ctx.instance_id, tid, t.due_at)
        return StepResult(
            ctx.instance_id,
            final,
            opened=tuple(
                OpenedTask(
                    row["id"],
                    row["element_id"],
                    row["name"],
                    tuple(g for g in row["candidate_groups"].split(",") if g),
                )
                for row in new_rows
            ),
            notes=dict(ctx.notes),
        )

    def _step_limits(self) -> StepLimits:
        """What one command may make the library do (``engine.workflow.budget``), from the data limits."""
        limits = self.limits
        return StepLimits(limits.step_max_tasks, limits.step_max_held, limits.step_max_seconds)

    def _task_row(self, ctx: StepContext, task: ReadyTask, workflow_data: dict[str, Any]) -> dict[str, Any]:
        meta = task.meta
        scope = {**workflow_data, **task.data}
        element = task.element_id
        groups = resolve_candidate_groups(meta.candidate_groups, scope, element_id=element) or (
            (meta.lane,) if meta.lane else ()
        )
        users = resolve_candidate_groups(meta.candidate_users, scope, element_id=element)
        assignee = resolve_group(meta.assignee, scope, element_id=element) if meta.assignee else None
        if assignee and assignee not in users:  # the person the model names may work it whoever claims it
            users = (*users, assignee)
        return {
            "id": task.task_id,
            "instance_id": ctx.instance_id,
            "business_key": ctx.business_key,
            "element_id": task.element_id,
            "name": task.name,
            "candidate_groups": _listed(groups),  # ",market,window,"; searched in task_candidates
            "candidate_users": _listed(users),
            "assignee": assignee,
            "state": "ready",
            "form_key": meta.form_key,
            "mi_index": task.multi_instance_index,
            "priority": 1 if scope.get("green_channel") else 0,
            "created_at": ctx.now,
            "due_at": ctx.due.get(task.task_id)
            or default_due(meta, ctx.now, ctx.runtime.calendar or self.calendar()),
            "deadline_days": int(meta.deadline_days) if meta.deadline_days is not None else None,
            "deadline_hours": int(meta.deadline_hours) if meta.deadline_hours else None,
            "warn_ratio": str(meta.warn_ratio) if meta.warn_ratio is not None else None,
            "clock": meta.clock,
            "suspends_case_clock": meta.suspends_case_clock,
        }
