"""The BPMN-driven case lifecycle, inside each command's transaction.

Whenever a command changes the workflow variable ``case_status``, :meth:`CaseLifecycle.on_step` (a step
observer of the workflow service) records the transition, starts/pauses/stops the clocks, keeps the
materials in step with the intake and supplement tasks, and issues the licence on approval. A tolerant
acceptance of an item whose licence is held until supplied (``hold_licence_until_supplied``) issues none
at approval while a material is pending; the step that delivers the supply issues it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Select, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from engine.cases.clocks import ClockRepository, hours_until
from engine.cases.figure_counts import (
    closing_rows,
    in_lock_order,
    promised_counts,
    received_rows,
    visit_rows,
)
from engine.cases.intake_rules import refuse_incomplete_acceptance
from engine.cases.licences import CaseLicences
from engine.cases.materials import PENDING_MATERIALS, keep, mark, materials_of
from engine.cases.status import (
    CLOSED,
    DECIDED,
    GROUNDS_IN_OPINION,
    LABELS,
    NOTICE_DEFAULTS,
    NOTICE_STATUSES,
    can_move,
)
from engine.errors import InvalidModel, NotFound
from engine.persistence.prepared import Prepared
from engine.persistence.repositories import audit_row
from engine.persistence.steps import CaseWrite
from engine.persistence.tables import case_clocks, case_materials, cases, instances, tasks
from engine.step import StepContext
from engine.time.calendar import WorkingCalendar, local_date
from engine.time.clocks import Clock
from engine.workflow import ReadyTask
from processes.catalogue import TOLERANT_PROCESS, Catalogue


class CaseLifecycle:
    """The step observer that keeps a case's row, clocks, materials and licences in step with its flow."""

    def __init__(
        self, catalogue: Catalogue, licences: CaseLicences, calendar: Callable[[], WorkingCalendar]
    ) -> None:
        self.catalogue = catalogue
        self.licences = licences
        self.calendar = calendar

    def on_step(self, ctx: StepContext) -> None:
        case_id = ctx.business_key
        if case_id is None:
            return  # an instance that is not a case (plain engine use)
        cal = ctx.runtime.calendar or self.calendar()  # the calendar this command runs with
        clocks = ClockRepository(ctx.conn, cal)
        case = _CaseStep.read(ctx, case_id, clocks)
        if case is None:
            return
        data = ctx.data
        current, seq = case.row["status"], case.row["status_seq"]
        for new, given in self._new_statuses(data, seq, current):
            if new != current:
                self._transition(ctx, case, current, new, data, clocks, given)
                current = new
        last = _last_ordinal(data.get("status_history"))
        if last > seq:
            case.set(status_seq=last)
        if ctx.action == "start" and case.row["instance_id"] is None:  # the case's own instance
            case.set(instance_id=ctx.instance_id)
            row = case.row  # received: the figures' summary rows, written with the step
            case.figures += received_rows(
                submitted_at=row["submitted_at"],
                department=row["department"],
                items=row["items"],
                channel=row["channel"],
                visits=row["visits"],
            )
        if current == "approved":
            self._release_held_licence(ctx, case)
        # task clocks and clock suspension follow the model's task attributes
        opened: list[tuple[Clock, str | None]] = []
        for task in ctx.opened:  # a task with its own limit gets its own clock (ow:clock="none": no clock)
            clock = self._task_clock(ctx, task)
            if clock is not None:
                opened.append((clock, task.task_id))
        clocks.open_many(case_id, opened)
        for task_id in ctx.closed:
            for clock_id, clk in clocks.running(case_id, task_id=task_id):
                clk.stop(ctx.now)
                clocks.save(clock_id, clk)
        suspending_open = ctx.suspending_open
        for clock_id, clk in clocks.running(case_id, case_level=True):
            paused = clk.is_paused(ctx.now)
            if suspending_open and not paused:
                clk.pause(ctx.now, "等待申请人补正或特别程序")
                clocks.save(clock_id, clk)
            elif not suspending_open and paused:
                clk.resume(ctx.now)
                clocks.save(clock_id, clk)
        if ctx.action == "complete" and self._came_in(ctx, case.row):
            visits = int(case.row["visits"]) + 1  # one more trip; the figures' visit buckets follow
            case.set(visits=visits)
            case.figures += visit_rows(case.row, visits)
        case.flush(ctx, clocks)
        if ctx.completed is not None:
            self._materials_from_task(ctx, case_id)
        ctx.notes["case_status"] = current  # the case's status after the step, for the caller

    @staticmethod
    def _came_in(ctx: StepContext, row: dict[str, Any]) -> bool:
        """Whether the step completed was a trip of the applicant to the centre (跑动): a supplement
        handed in at the counter, or a result collected at the window (窗口领取), except on the day the
        applicant applied at the counter (当场办结、当场领取: the same trip)."""
        entered = ctx.entered
        if entered.get("visit") == "counter":
            return True
        form_key = ctx.completed.meta.form_key if ctx.completed else None
        if form_key != DELIVERY_FORM or entered.get("delivery_method") != "window":
            return False
        return not (row["channel"] == "counter" and local_date(row["submitted_at"]) == local_date(ctx.now))

    def _holds_until_supplied(self, row: dict[str, Any]) -> bool:
        """A tolerant acceptance of an item whose licence the catalogue holds until the tolerated materials
        are supplied (``hold_licence_until_supplied``)."""
        if row["flow"] != TOLERANT_PROCESS.process_id:
            return False
        items = [self.catalogue.get(code) for code in row["items"]]
        return any(i.hold_licence_until_supplied and i.issues_licence_type for i in items)

    def _licence_held(self, ctx: StepContext, case: _CaseStep) -> bool:
        """Whether the licence of the approved case waits: held until supplied, and a material pending."""
        if not self._holds_until_supplied(case.row):
            return False
        return any(m.state in PENDING_MATERIALS for m in materials_of(ctx.conn, case.id))

    def _release_held_licence(self, ctx: StepContext, case: _CaseStep) -> None:
        """Issue the licence held at approval once nothing is pending any more (the step that delivered
        ``materials_supplied``), valid from that day."""
        row = case.row
        if row["licence_ids"] or not self._holds_until_supplied(row) or self._licence_held(ctx, case):
            return
        issued = self.licences.issue_for(ctx.conn, row, ctx.now, ctx.actor)
        if not issued:
            return
        case.set(licence_ids=issued)
        case.audit(
            ctx,
            "licence_released",
            {"licence_ids": issued, "reason": "容缺材料已补齐，出证"},
        )

    @staticmethod
    def _task_clock(ctx: StepContext, task: ReadyTask) -> Clock | None:
        """The deadline clock of a task from the model: working days, hours, or a due date (as hours)."""
        meta = task.meta
        if meta.clock == "none":
            return None
        days, hours = meta.deadline_days, meta.deadline_hours  # 0 days: the day it opens (即办)
        due = ctx.due.get(task.task_id)
        if days is None and not hours:
            if due is None:
                return None
            hours = hours_until(due, ctx.now)  # 0 for a due date already passed: red at once
        return Clock(
            kind="task",
            started_at=ctx.now,
            limit_days=int(days) if days is not None else None,
            limit_hours=None if days is not None else float(hours),
            warn_ratio=meta.warn_ratio or 0.8,
        )

    @staticmethod
    def _materials_from_task(ctx: StepContext, case_id: str) -> None:
        """The intake's one-time notice marks the listed materials defective (rejected) or missing; an
        applicant's supplement marks what was handed in as supplied."""
        form_key = ctx.completed.meta.form_key if ctx.completed else None
        entered = ctx.entered
        changes: list[tuple[list[str], str, list[str]]] = []
        if form_key == "task.intake" and entered.get("decision") == "supplement":
            listed = [str(c) for c in entered.get("missing_materials") or []]
            changes = [
                (listed, "rejected", ["provided", "supplied"]),
                (listed, "missing", ["satisfied_by_licence"]),
            ]
        elif form_key == "task.supplement":
            changes = [
                (
                    [str(c) for c in entered.get("supplied_materials") or []],
                    "supplied",
                    ["missing", "rejected"],
                )
            ]
        for codes, state, from_states in changes:
            if codes:
                mark(ctx.conn, case_id, codes, state, ctx.now, from_states)

    @staticmethod
    def _new_statuses(data: dict[str, Any], seq: int, current: str) -> list[tuple[str, str | None]]:
        """Statuses the model reached in this step, each with the reason its entry gives (None: none): the
        entries of ``status_history`` not applied yet, those past ordinal ``seq`` (one step may pass
        several, :func:`_ordinals`); when a branch's data lacks the history, the plain ``case_status``."""
        history = data.get("status_history")
        if _last_ordinal(history) > seq:
            return [
                (str(h["status"]), h["reason"] if isinstance(h.get("reason"), str) and h["reason"] else None)
                for n, h in _ordinals(history)
                if n > seq and h.get("status")
            ]
        status = data.get("case_status")
        return [(status, None)] if isinstance(status, str) and status != current else []

    def _transition(
        self,
        ctx: StepContext,
        case: _CaseStep,
        old: str | None,
        new: str,
        data: dict[str, Any],
        clocks: ClockRepository,
        given: str | None = None,
    ) -> None:
        case_id = case.id
        if not can_move(old, new):
            raise InvalidModel(
                f"流程把办件状态从「{LABELS.get(old or '', old)}」改为「{LABELS.get(new, new)}」，"
                "不符合办件生命周期",
                code="illegal_case_transition",
                case=case_id,
                from_status=old,
                to_status=new,
            )
        reason = given or self._reason(ctx, data, new)  # the reason the model's entry gives comes first
        values: dict[str, Any] = {"status": new, "status_reason": reason}
        row = dict(case.row)  # as it stands before this transition
        if new == "accepted" and row["accepted_at"] is None:
            refuse_incomplete_acceptance(ctx.conn, case_id, data)  # every flow, every model
            values["accepted_at"] = ctx.now
            self._open_case_clocks(ctx, case_id, row, clocks)
        if new in DECIDED and row["decided_at"] is None:
            values["decided_at"] = ctx.now
            for clock_id, clk in clocks.running(case_id, case_level=True):
                clk.stop(ctx.now)
                clocks.save(clock_id, clk)
        if new in CLOSED:
            values["closed_at"] = ctx.now
        if new == "approved":
            if self._licence_held(ctx, case):
                # 容缺受理, 补齐后出证: no licence exists before the supply (not even a suspended one), but
                # its face must be complete now, so that the supply cannot fail on it later
                self.licences.check_for(ctx.conn, row, ctx.now)
                case.audit(ctx, "licence_held", {"reason": "容缺受理：容缺材料补齐后出证"})
            else:
                issued = self.licences.issue_for(ctx.conn, row, ctx.now, ctx.actor)
                values["licence_ids"] = list(row["licence_ids"] or []) + issued
        if new == "terminated" and row["licence_ids"]:
            # a licence released early under a commitment that was then broken does not stand
            why = f"办件 {case_id} 终止：{reason or '未按承诺补正材料'}"
            self.licences.revoke_for(ctx.conn, row["licence_ids"], why, ctx.now, ctx.actor)
        case.set(**values)
        if new in CLOSED:  # the figures' summary rows: its promised clock stopped above or before
            promised = promised_counts(clocks.stopped_here("promised") or case.promised_stopped)
            case.figures += closing_rows(row, new, ctx.now, row["closed_at"], promised)
        case.audit(ctx, "case_status", {"from": old, "to": new, "reason": reason})

    @staticmethod
    def _reason(ctx: StepContext, data: dict[str, Any], new: str) -> str | None:
        """Why the case moved to ``new``: the model's own reason (``status_reason``, ``termination_reason``),
        else what the person entered in this step, never an earlier step's (a denial after a supplement
        notice is not given that notice's reason): the notice's ``reason``, then the opinion, except in a
        notice to the applicant whose form keeps the grounds elsewhere (:data:`GROUNDS_IN_OPINION`; such a
        notice without a reason of its own says :data:`NOTICE_DEFAULTS`)."""
        entered = ctx.entered if ctx.completed is not None else {}
        opinion = entered.get("opinion") if new not in NOTICE_STATUSES or new in GROUNDS_IN_OPINION else None
        found = (
            data.get("status_reason") or data.get("termination_reason") or entered.get("reason") or opinion
        )
        return found if isinstance(found, str) and found else NOTICE_DEFAULTS.get(new)

    def _open_case_clocks(
        self, ctx: StepContext, case_id: str, row: dict[str, Any], clocks: ClockRepository
    ) -> None:
        self.open_case_clocks(clocks, case_id, list(row["items"]), ctx.now)

    def open_case_clocks(
        self, clocks: ClockRepository, case_id: str, item_codes: list[str], started_at: datetime
    ) -> None:
        """The legal and promised clocks of a case accepted at ``started_at`` (normally now; the day of
        receipt when the application counts as accepted, see :mod:`engine.cases.intake_rules`)."""
        items = [self.catalogue.get(c) for c in item_codes]
        if len(items) > 1:
            legal = promised = max(i.joint_limit_days for i in items)
        else:
            legal, promised = items[0].legal_limit_days, items[0].promised_limit_days
        clocks.open_many(
            case_id,
            [
                (Clock(kind="legal", started_at=started_at, limit_days=legal), None),
                (Clock(kind="promised", started_at=started_at, limit_days=promised), None),
            ],
        )


DELIVERY_FORM = "task.delivery"
"""The form of the steps that hand the result over (送达): collected at the window, it is a visit."""

_HANDED = "onewindow.case_row"
"""``Connection.info`` key of a case row (with its running clocks) read earlier in the current transaction
for the lifecycle of the step that follows: (transaction, action, case id, row, running clocks, its
promised clock if stopped)."""
_JSON_COLUMNS = [c.name for c in cases.c if isinstance(c.type, JSON)]
_CLOCK_LABELS = (  # named for the running clocks; a stopped promised clock has clock_stopped_at set
    case_clocks.c.id.label("running_clock_id"),
    case_clocks.c.task_id.label("running_clock_task"),
    case_clocks.c.clock.label("running_clock"),
    case_clocks.c.stopped_at.label("clock_stopped_at"),
    case_clocks.c.due_at.label("clock_due_at"),
)
_CLOCKS = and_(  # its running clocks, and its promised clock once stopped (what the figures count)
    case_clocks.c.case_id == cases.c.id,
    or_(
        case_clocks.c.stopped_at.is_(None),
        and_(case_clocks.c.kind == "promised", case_clocks.c.task_id.is_(None)),
    ),
)
Stopped = tuple[datetime, datetime | None]
"""A stopped clock's stopped_at and due_at (the deadline it was kept against; None: none)."""


def _hand_over(conn: Connection, action: str, row: dict[str, Any], clock_rows: Sequence[Any]) -> None:
    running, promised = _clocks_of(clock_rows)
    conn.info[_HANDED] = (conn.get_transaction(), action, row["id"], row, running, promised)


def forget_handed_case(conn: Connection) -> None:
    """Drop a case row handed over in this transaction: something is about to write the case."""
    conn.info.pop(_HANDED, None)


def hand_over_new_case(conn: Connection, values: dict[str, Any]) -> None:
    """The row of a case just inserted on ``conn`` (its insert ``values``), as a read would return it
    (defaults filled in, JSON values as stored), for the lifecycle of its start step in the same
    transaction: one read fewer. No clock runs yet."""
    row: dict[str, Any] = {c.name: None for c in cases.c}
    row.update({c.name: c.default.arg for c in cases.c if c.default is not None and c.default.is_scalar})
    row.update(values)
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = json.loads(json.dumps(row[name]))
    _hand_over(conn, "start", row, [])  # no clock yet


def read_task_with_case(
    conn: Connection, task_id: str, *, hand_over: bool = True
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The task row (as ``TaskRepository.get`` reads it: ``NotFound`` when there is none) and its case's
    row, in one query with the case's clocks (``_CLOCKS``); with ``hand_over``, the task's instance row is
    locked (as the step would lock it: the lifecycle, which runs before the step's write, works under
    it; a second query when the first waited, :class:`_LockingRead`) and the case row and clocks are
    handed over to the lifecycle of the completion that follows in this transaction (one read fewer;
    its materials are kept, :mod:`engine.cases.materials`). A caller that writes the case before the
    step must :func:`forget_handed_case`."""
    params = {"task_row": task_id}
    if hand_over:
        rows = _TASK_WITH_CASE_FOR_STEP.rows(conn, params)
    else:
        rows = [dict(r._mapping) for r in conn.execute(_TASK_WITH_CASE, params)]
    if not rows:
        raise NotFound("任务不存在", code="task_not_found", task_id=task_id)
    first = rows[0]
    task = {name: first[name] for name in _TASK_NAMES}
    case = {name: first[f"case_{name}"] for name in _CASE_NAMES}
    if case["id"] is None:
        return task, None
    if hand_over:
        _hand_over(conn, "complete", case, rows)
        _keep_materials(conn, rows, case["id"])
    return task, case


def _ordinals(history: Any) -> list[tuple[int, dict[str, Any]]]:
    """The entries of a model's ``status_history``, each with its ordinal in the case's life: its ``n``
    (the bundled models keep only the last entries, numbered, so the state does not grow with every round
    of a loop: DESIGN rule 5, the audit log keeps the whole history), else its place in the list (a model
    that keeps every entry, as the bundled ones did before)."""
    if not isinstance(history, list):
        return []
    out = []
    for place, entry in enumerate(history, start=1):
        if isinstance(entry, dict):
            n = entry.get("n")
            out.append((n if isinstance(n, int) and not isinstance(n, bool) else place, entry))
    return out


def _last_ordinal(history: Any) -> int:
    return max((n for n, _ in _ordinals(history)), default=0)


_TASK_NAMES = tuple(c.name for c in tasks.c)
_CASE_NAMES = tuple(c.name for c in cases.c)
_TASK_WITH_CASE = (  # built once: a completion runs it every time
    select(tasks, *[c.label(f"case_{c.name}") for c in cases.c], *_CLOCK_LABELS)
    .select_from(tasks.outerjoin(cases, cases.c.id == tasks.c.business_key).outerjoin(case_clocks, _CLOCKS))
    .where(tasks.c.id == bindparam("task_row"))
    .order_by(case_clocks.c.id)
)
_SEEN = instances.alias("seen")
_STAMPS = {  # the instance row as locked, and as the statement's snapshot saw it
    # PostgreSQL: the row version's creating transaction, which any write of the row changes
    "postgresql": (literal_column("instances.xmin::text"), literal_column("seen.xmin::text")),
    "": (instances.c.version, _SEEN.c.version),  # elsewhere writers are serialised: no lock to wait for
}
_MATERIALS = (  # PostgreSQL: the case's materials with it, in their order (engine.cases.materials)
    select(
        func.json_agg(
            aggregate_order_by(
                func.json_build_array(
                    case_materials.c.code, case_materials.c.name, case_materials.c.key, case_materials.c.state
                ),
                case_materials.c.id,
            )
        )
    )
    .where(case_materials.c.case_id == cases.c.id)
    .scalar_subquery()
)


def _locking(query: Select[Any], instance_of: Any, dialect: str) -> Select[Any]:
    """``query`` joined to the instance row ``instance_of`` names and locking it (as the step locks it
    first: the lifecycle runs before the step's write, under it), with the instance row's stamp twice: as
    locked and as the statement's snapshot saw it (:class:`_LockingRead`); on PostgreSQL with the case's
    materials."""
    locked, seen = _STAMPS[dialect]
    query = query.join_from(instance_of.table, instances, instances.c.id == instance_of).add_columns(
        locked.label("locked_stamp"),
        select(seen)
        .select_from(_SEEN)
        .where(_SEEN.c.id == instances.c.id)
        .scalar_subquery()
        .label("seen_stamp"),
    )
    if dialect == "postgresql":
        query = query.add_columns(_MATERIALS.label("case_materials"))
    return query.with_for_update(of=instances)


class _LockingRead:
    """A :func:`_locking` read (PREPAREd on PostgreSQL: a command runs it every time), its rows as
    dictionaries by column name, as committed once the lock is held. When the statement waited for the
    lock, PostgreSQL returns the locked row as the command it waited for committed it but every other
    row (the case, its clocks, its materials, the task) as the statement's snapshot saw them, before that
    command: the stamps differ, and the statement runs again, under the lock, on a fresh snapshot. Only
    a command that wrote the instance row is noticed: every step does, and so does a supply that leaves
    materials pending (``CaseService.supply_materials``). One that changes the case under the instance
    lock without a step (the deemed acceptance, ``engine.cases.intake_rules``) makes its caller
    :func:`forget_handed_case` instead."""

    def __init__(self, name: str, query: Select[Any], instance_of: Any) -> None:
        self.plain = _locking(query, instance_of, "")
        on_postgres = _locking(query, instance_of, "postgresql")
        self.prepared = Prepared(name, on_postgres)
        self.names = list(on_postgres.selected_columns.keys())

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self._read(conn, params)
        if rows and rows[0]["locked_stamp"] != rows[0]["seen_stamp"]:
            rows = self._read(conn, params)
        return rows

    def _read(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        if conn.dialect.name == "postgresql":
            return [dict(zip(self.names, row, strict=True)) for row in self.prepared.all(conn, params)]
        return [dict(r._mapping) for r in conn.execute(self.plain, params)]


def _keep_materials(conn: Connection, rows: list[dict[str, Any]], case_id: str) -> None:
    if "case_materials" in rows[0]:
        keep(conn, case_id, rows[0]["case_materials"] or [])


_TASK_WITH_CASE_FOR_STEP = _LockingRead("onewindow_task_for_step", _TASK_WITH_CASE, tasks.c.instance_id)
_CASE_WITH_CLOCKS = (
    select(cases, *_CLOCK_LABELS)
    .outerjoin(case_clocks, _CLOCKS)
    .where(cases.c.id == bindparam("case_row"))
    .order_by(case_clocks.c.id)
)
_CASE_FOR_STEP = _LockingRead("onewindow_case_for_step", _CASE_WITH_CLOCKS, cases.c.instance_id)


def read_case_for_step(conn: Connection, case_id: str, action: str) -> dict[str, Any] | None:
    """The case row with its instance row locked and its clocks (and materials, :func:`_locking`), handed
    over to the lifecycle of the ``action`` step that follows in this transaction (one read fewer);
    None: no such case (or no instance yet). A caller that writes the case row before the step must
    :func:`forget_handed_case`."""
    rows = _CASE_FOR_STEP.rows(conn, {"case_row": case_id})
    if not rows:
        return None
    case = {name: rows[0][name] for name in _CASE_NAMES}
    _hand_over(conn, action, case, rows)
    _keep_materials(conn, rows, case_id)
    return case


def _clocks_of(rows: Sequence[Any]) -> tuple[list[tuple[int, str | None, Clock]], Stopped | None]:
    """The running clocks of the rows of a case read with ``_CLOCKS``, and its stopped promised clock."""
    running = [
        (int(r["running_clock_id"]), r["running_clock_task"], Clock.from_dict(r["running_clock"]))
        for r in rows
        if r["running_clock_id"] is not None and r["clock_stopped_at"] is None
    ]
    stopped = [(r["clock_stopped_at"], r["clock_due_at"]) for r in rows if r["clock_stopped_at"] is not None]
    return running, (stopped[0] if stopped else None)


class _CaseStep:
    """A case within one step: its row read once (with its running clocks and its stopped promised
    clock), the values the step sets on it, the audit events and figures it adds, handed to the step's
    write by :meth:`flush`."""

    def __init__(self, row: dict[str, Any], promised_stopped: Stopped | None) -> None:
        self.row = row
        self.promised_stopped = promised_stopped  # its promised clock, stopped before this step
        self.id: str = row["id"]
        self._values: dict[str, Any] = {}
        self._audit: list[dict[str, Any]] = []
        self.figures: list[dict[str, Any]] = []  # what the step adds to the figures' summary rows

    @classmethod
    def read(cls, ctx: StepContext, case_id: str, clocks: ClockRepository) -> _CaseStep | None:
        """The case row and its clocks in one query (one row per clock of ``_CLOCKS``), the running ones
        handed to ``clocks``; None when ``case_id`` is no case. A row read earlier in this transaction
        for this step (:func:`hand_over_new_case`, :func:`read_task_with_case`,
        :func:`read_case_for_step`) is taken instead."""
        handed = ctx.conn.info.pop(_HANDED, None)
        if handed is not None:
            transaction, action, handed_id, row, running, promised = handed
            if transaction is ctx.conn.get_transaction() and action == ctx.action and handed_id == case_id:
                clocks.preload(case_id, running)
                return cls(row, promised)
        rows = ctx.conn.execute(_CASE_WITH_CLOCKS, {"case_row": case_id}).mappings().all()
        if not rows:
            return None
        running, promised = _clocks_of(rows)
        clocks.preload(case_id, running)
        return cls({c.name: rows[0][c] for c in cases.c}, promised)

    def set(self, **values: Any) -> None:
        self.row.update(values)
        self._values.update(values)

    def audit(self, ctx: StepContext, action: str, detail: dict[str, Any]) -> None:
        self._audit.append(audit_row(ctx.now, ctx.actor, action, business_key=self.id, detail=detail))

    def flush(self, ctx: StepContext, clocks: ClockRepository) -> None:
        """Hand the step what it set on the case (none when nothing changed), its clocks, the audit
        events it added (in the order they were added) and its figures: they ride in the step's own
        statement, the last of the command (a figures row stays locked only until the commit)."""
        new_clocks, changed_clocks = clocks.take_writes()
        figures = in_lock_order(self.figures)
        ctx.case_write = CaseWrite(self.id, self._values, new_clocks, changed_clocks, self._audit, figures)
        self._values, self._audit, self.figures = {}, [], []
