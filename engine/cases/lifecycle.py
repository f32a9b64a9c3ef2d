"""The BPMN-driven case lifecycle, inside each command's transaction.

Whenever a command changes the workflow variable ``case_status``, :meth:`CaseLifecycle.on_step` (a step
observer of the workflow service) records the transition, starts/pauses/stops the clocks, keeps the
materials in step with the intake and supplement tasks, and issues the licence on approval. A tolerant
acceptance of an item whose licence is held until supplied (``hold_licence_until_supplied``) issues none
at approval while a material is pending; the step that delivers the supply issues it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from engine.cases.clocks import ClockRepository
from engine.cases.intake_rules import refuse_incomplete_acceptance
from engine.cases.licences import CaseLicences
from engine.cases.status import CLOSED, DECIDED, LABELS, can_move
from engine.errors import InvalidModel
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import case_materials, cases
from engine.step import StepContext
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import Clock
from engine.workflow import ReadyTask
from processes.catalogue import TOLERANT_PROCESS, Catalogue

PENDING_MATERIALS = ("missing_tolerated", "missing", "rejected")
"""Material states that are still owed by the applicant."""


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
        found = ctx.conn.execute(
            select(cases.c.status, cases.c.status_seq).where(cases.c.id == case_id)
        ).first()
        if found is None:
            return
        cal = ctx.runtime.calendar or self.calendar()  # the calendar this command runs with
        clocks = ClockRepository(ctx.conn, cal)
        data = ctx.runtime.data
        current, seq = found
        for new in self._new_statuses(data, seq, current):
            if new != current:
                self._transition(ctx, case_id, current, new, data, clocks)
                current = new
        history = data.get("status_history")
        if isinstance(history, list) and len(history) > seq:
            ctx.conn.execute(update(cases).where(cases.c.id == case_id).values(status_seq=len(history)))
        if current == "approved":
            self._release_held_licence(ctx, case_id)
        # task clocks and clock suspension follow the model's task attributes
        for task in ctx.opened:  # a task with its own limit gets its own clock (ow:clock="none": no clock)
            clock = self._task_clock(ctx, task)
            if clock is not None:
                clocks.open(case_id, clock, task_id=task.task_id)
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
        if ctx.completed is not None:
            self._materials_from_task(ctx, case_id)
        if ctx.action == "complete" and ctx.entered.get("visit") == "counter":
            ctx.conn.execute(update(cases).where(cases.c.id == case_id).values(visits=cases.c.visits + 1))

    def _holds_until_supplied(self, row: dict[str, Any]) -> bool:
        """A tolerant acceptance of an item whose licence the catalogue holds until the tolerated materials
        are supplied (``hold_licence_until_supplied``)."""
        if row["flow"] != TOLERANT_PROCESS.process_id:
            return False
        items = [self.catalogue.get(code) for code in row["items"]]
        return any(i.hold_licence_until_supplied and i.issues_licence_type for i in items)

    def _licence_held(self, ctx: StepContext, row: dict[str, Any]) -> bool:
        """Whether the licence of the approved case waits: held until supplied, and a material pending."""
        if not self._holds_until_supplied(row):
            return False
        pending = ctx.conn.execute(
            select(case_materials.c.id)
            .where(case_materials.c.case_id == row["id"], case_materials.c.state.in_(PENDING_MATERIALS))
            .limit(1)
        ).first()
        return pending is not None

    def _release_held_licence(self, ctx: StepContext, case_id: str) -> None:
        """Issue the licence held at approval once nothing is pending any more (the step that delivered
        ``materials_supplied``), valid from that day."""
        row = dict(ctx.conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping)
        if row["licence_ids"] or not self._holds_until_supplied(row) or self._licence_held(ctx, row):
            return
        issued = self.licences.issue_for(ctx.conn, row, ctx.now, ctx.actor)
        if not issued:
            return
        ctx.conn.execute(update(cases).where(cases.c.id == case_id).values(licence_ids=issued))
        AuditRepository(ctx.conn).record(
            ctx.now,
            ctx.actor,
            "licence_released",
            business_key=case_id,
            detail={"licence_ids": issued, "reason": "容缺材料已补齐，出证"},
        )

    @staticmethod
    def _task_clock(ctx: StepContext, task: ReadyTask) -> Clock | None:
        """The deadline clock of a task from the model: working days, hours, or a due date (as hours)."""
        meta = task.meta
        if meta.clock == "none":
            return None
        days, hours = meta.deadline_days, meta.deadline_hours
        due = ctx.due.get(task.task_id)
        if not days and not hours and due is not None:
            hours = max((due - ctx.now).total_seconds() / 3600, 0.0)
        if not days and not hours:
            return None
        return Clock(
            kind="task",
            started_at=ctx.now,
            limit_days=int(days) if days else None,
            limit_hours=float(hours) if hours and not days else None,
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
                ctx.conn.execute(
                    update(case_materials)
                    .where(
                        case_materials.c.case_id == case_id,
                        case_materials.c.code.in_(codes),
                        case_materials.c.state.in_(from_states),
                    )
                    .values(state=state, updated_at=ctx.now)
                )

    @staticmethod
    def _new_statuses(data: dict[str, Any], seq: int, current: str) -> list[str]:
        """Statuses the model reached in this step: the entries of ``status_history`` not applied yet
        (one step may pass several); when a branch's data lacks the history, the plain ``case_status``."""
        history = data.get("status_history")
        if isinstance(history, list) and len(history) > seq:
            return [str(h.get("status")) for h in history[seq:] if isinstance(h, dict) and h.get("status")]
        status = data.get("case_status")
        return [status] if isinstance(status, str) and status != current else []

    def _transition(
        self,
        ctx: StepContext,
        case_id: str,
        old: str | None,
        new: str,
        data: dict[str, Any],
        clocks: ClockRepository,
    ) -> None:
        if not can_move(old, new):
            raise InvalidModel(
                f"流程把办件状态从「{LABELS.get(old or '', old)}」改为「{LABELS.get(new, new)}」，"
                "不符合办件生命周期",
                code="illegal_case_transition",
                case=case_id,
                from_status=old,
                to_status=new,
            )
        reason = (
            data.get("status_reason")
            or data.get("termination_reason")
            or data.get("reason")
            or data.get("opinion")
        )
        values: dict[str, Any] = {"status": new, "status_reason": reason}
        row = dict(ctx.conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping)
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
            if self._licence_held(ctx, row):
                # 容缺受理, 补齐后出证: no licence exists before the supply (not even a suspended one), but
                # its face must be complete now, so that the supply cannot fail on it later
                self.licences.check_for(ctx.conn, row, ctx.now)
                AuditRepository(ctx.conn).record(
                    ctx.now,
                    ctx.actor,
                    "licence_held",
                    business_key=case_id,
                    detail={"reason": "容缺受理：容缺材料补齐后出证"},
                )
            else:
                issued = self.licences.issue_for(ctx.conn, row, ctx.now, ctx.actor)
                values["licence_ids"] = list(row["licence_ids"] or []) + issued
        if new == "terminated" and row["licence_ids"]:
            # a licence released early under a commitment that was then broken does not stand
            why = f"办件 {case_id} 终止：{reason or '未按承诺补正材料'}"
            self.licences.revoke_for(ctx.conn, row["licence_ids"], why, ctx.now, ctx.actor)
        ctx.conn.execute(update(cases).where(cases.c.id == case_id).values(**values))
        AuditRepository(ctx.conn).record(
            ctx.now,
            ctx.actor,
            "case_status",
            business_key=case_id,
            detail={"from": old, "to": new, "reason": reason},
        )

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
        clocks.open(case_id, Clock(kind="legal", started_at=started_at, limit_days=legal))
        clocks.open(case_id, Clock(kind="promised", started_at=started_at, limit_days=promised))
