"""Cases (办件): submit, complete case tasks, supply materials, rate, track; the BPMN-driven lifecycle.

A case is one application of one applicant for one or more service items. Submitting it validates the
applicant and the application form (pre-filled from the licence library), works out the state of every
required material (a valid licence of the holder stands in for a paper), picks the flow and starts the
BPMN process, all in one transaction. From then on the models drive the lifecycle: whenever a command
changes the workflow variable ``case_status``, :meth:`CaseService.on_step` (a step observer of the
workflow service, inside the same transaction) records the transition, starts/pauses/stops the clocks,
and issues the licence on approval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.calendar import WorkingCalendar, local_date
from engine.case_clocks import ClockRepository
from engine.case_licences import CaseLicences
from engine.case_numbers import format_case_number, is_valid_case_number
from engine.case_status import CLOSED, DECIDED, LABELS, can_move
from engine.clocks import Clock
from engine.errors import Conflict, Forbidden, InvalidInput, InvalidModel, NotFound
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import AuditRepository, InstanceRepository, TaskRepository, audit_row
from engine.persistence.tables import case_counters, case_materials, cases
from engine.service import StepContext, StepResult, WorkflowService
from engine.workflow import ReadyTask
from forms.autofill import AutofillResult, autofill, merge
from forms.combine import combine_forms
from forms.definition import FormDefinition
from forms.registry import FormRegistry
from forms.validation import validate_or_raise
from licence.checkdigits import holder_id_kind, validate_holder_id
from licence.library import LicenceLibrary
from processes.catalogue import JOINT_PROCESS, TOLERANT_PROCESS, Catalogue, ServiceItem

Channel = Literal["online", "counter"]
TASK_STATE_LABELS = {"completed": "办结", "cancelled": "取消"}
RATINGS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


@dataclass
class Application:
    applicant_id: str
    applicant_name: str
    items: list[str]
    channel: Channel = "online"
    contact_phone: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    provided: dict[str, list[str]] = field(default_factory=dict)  # item code -> material codes handed in
    tolerant: bool = False
    lead_department: str | None = None
    priority: Literal["normal", "green"] = "normal"


def _authorise(task: dict[str, Any], actor: str, groups: set[str] | None) -> None:
    """May ``actor`` complete ``task``? A claimed task belongs to its assignee, always. Otherwise, when the
    actor's ``groups`` are known, a candidate user or a member of a candidate group may act."""
    if task["assignee"]:
        if task["assignee"] != actor:
            raise Forbidden("任务已由他人认领", code="claimed_by_other", task_id=task["id"])
        return
    if groups is None:
        return
    task_groups = {g for g in (task["candidate_groups"] or "").split(",") if g}
    users = {u for u in (task["candidate_users"] or "").split(",") if u}
    if (task_groups or users) and not (task_groups & groups) and actor not in users:
        raise Forbidden(
            "无权办理该任务：不在任务的办理组或办理人中", code="not_a_candidate", task_id=task["id"]
        )


class CaseService:
    def __init__(
        self,
        engine: Engine,
        workflow: WorkflowService,
        catalogue: Catalogue,
        forms: FormRegistry,
        *,
        calendar: Callable[[], WorkingCalendar],
        district: tuple[str, str] = ("350102", "福州市鼓楼区"),
    ) -> None:
        self.engine = engine
        self.workflow = workflow
        self.catalogue = catalogue
        self.forms = forms
        self.calendar = calendar
        self.licences = CaseLicences(catalogue, district)
        workflow.observers.append(self.on_step)

    @property
    def now(self) -> datetime:
        return self.workflow.clock()

    # ------------------------------------------------------------------ intake
    def application_form(self, codes: list[str]) -> FormDefinition:
        """The form an applicant fills for the chosen items: the item's own, or for a joint application
        ONE form merging the items' forms (一表申请)."""
        keys = list(dict.fromkeys(self.catalogue.get(c).application_form for c in codes))
        return combine_forms([self.forms.get(k) for k in keys], "并联审批申请表（一表申请）")

    def prefill(
        self, conn: Connection, form: str | FormDefinition, applicant_id: str, applicant_name: str = ""
    ) -> AutofillResult:
        """Values from the applicant's valid licences for ``form`` (key or definition), with provenance."""
        definition = self.forms.get(form) if isinstance(form, str) else form
        licences = LicenceLibrary(conn, clock=self.workflow.clock).by_holder(applicant_id)
        applicant = {"name": applicant_name, "id": applicant_id}
        return autofill(definition, licences=licences, applicant=applicant, today=local_date(self.now))

    def submit(self, app: Application, actor: str) -> str:
        return self.workflow.run(lambda conn: self.submit_in(conn, app, actor))

    def submit_in(self, conn: Connection, app: Application, actor: str) -> str:
        applicant_id = validate_holder_id(app.applicant_id, "applicant_id")
        kind = "person" if holder_id_kind(applicant_id) == "resident_id" else "organisation"
        if not app.applicant_name.strip():
            raise InvalidInput("申请人名称不能为空", code="required", field="applicant_name")
        if not app.items:
            raise InvalidInput("至少选择一个事项", code="required", field="items")
        items = [self.catalogue.get(code) for code in app.items]
        flow, start_data = self._flow(app, items)
        form = self.application_form([i.code for i in items])
        filled = self.prefill(conn, form, applicant_id, app.applicant_name)
        data = validate_or_raise(form, merge(app.form, filled, definition=form), today=local_date(self.now))
        materials = self._materials(conn, app, items, applicant_id)
        if app.tolerant:
            missing_key = [m for m in materials if m["key"] and m["state"] == "missing"]
            if missing_key:
                raise InvalidInput(
                    "容缺受理要求主要材料齐全：" + "、".join(m["name"] for m in missing_key),
                    code="key_materials_missing",
                    field="materials",
                    missing=[m["code"] for m in missing_key],
                )
        now = self.now
        case_id = self._next_number(conn, now)
        conn.execute(
            insert(cases).values(
                id=case_id,
                flow=flow.process_id,
                items=[i.code for i in items],
                department=app.lead_department or items[0].department,
                applicant_kind=kind,
                applicant_id=applicant_id,
                applicant_name=app.applicant_name.strip(),
                contact_phone=app.contact_phone,
                channel=app.channel,
                visits=1 if app.channel == "counter" else 0,
                priority=app.priority,
                status="submitted",
                form_data=data,
                autofill={k: v.to_dict() for k, v in filled.provenance.items()},
                licence_ids=[],
                submitted_at=now,
            )
        )
        conn.execute(
            insert(case_materials), [{**m, "case_id": case_id, "updated_at": now} for m in materials]
        )
        AuditRepository(conn).append(
            [
                audit_row(
                    now,
                    actor,
                    "case_submitted",
                    business_key=case_id,
                    detail={"items": app.items, "channel": app.channel},
                )
            ]
        )
        start_data.update(
            case_number=case_id,
            applicant_name=app.applicant_name.strip(),
            channel=app.channel,
            green_channel=app.priority == "green",
            materials=[{k: m[k] for k in ("item_code", "code", "name", "key", "state")} for m in materials],
            missing_materials=[
                m["code"] for m in materials if m["state"] in ("missing", "missing_tolerated")
            ],
            key_materials_complete=not any(m["key"] and m["state"] == "missing" for m in materials),
        )
        instance_id = self.workflow.start_in(
            conn, flow.process_id, start_data, actor, business_key=case_id
        ).instance_id
        conn.execute(update(cases).where(cases.c.id == case_id).values(instance_id=instance_id))
        return case_id

    def _flow(self, app: Application, items: list[ServiceItem]) -> tuple[Any, dict[str, Any]]:
        if len(items) > 1:
            lead = app.lead_department or items[0].department
            return JOINT_PROCESS, self.catalogue.joint_start_data([i.code for i in items], lead)
        item = items[0]
        if app.tolerant:
            if not item.tolerant_allowed:
                raise InvalidInput(
                    f"事项「{item.name}」不适用容缺受理",
                    code="tolerance_not_allowed",
                    field="tolerant",
                    item=item.code,
                )
            return TOLERANT_PROCESS, item.start_data()
        return item.process, item.start_data()

    def _materials(
        self, conn: Connection, app: Application, items: list[ServiceItem], holder: str
    ) -> list[dict[str, Any]]:
        today = local_date(self.now)
        valid: dict[str, str] = {}
        for lic in LicenceLibrary(conn, clock=self.workflow.clock).by_holder(
            holder, include_inactive=False, today=today
        ):
            valid.setdefault(lic.type_code, lic.id)
        out = []
        for item in items:
            provided = set(app.provided.get(item.code, []))
            unknown = provided - {m.code for m in item.materials}
            if unknown:
                raise InvalidInput(
                    "提交了事项不需要的材料：" + "、".join(sorted(unknown)),
                    code="unknown_material",
                    field="provided",
                )
            for m in item.materials:
                licence_id = valid.get(m.licence_type) if m.licence_type else None
                if licence_id:
                    state = "satisfied_by_licence"
                elif m.code in provided:
                    state = "provided"
                elif app.tolerant and not m.key:
                    state = "missing_tolerated"
                else:
                    state = "missing"
                out.append(
                    {
                        "item_code": item.code,
                        "code": m.code,
                        "name": m.name,
                        "key": m.key,
                        "state": state,
                        "licence_id": licence_id,
                    }
                )
        return out

    @staticmethod
    def _next_number(conn: Connection, now: datetime) -> str:
        """The next case number of the (Beijing) day from a counter row; its row lock orders submissions."""
        day = local_date(now)
        key = f"{day:%y%m%d}"
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(dialect_insert(case_counters).values(day=key, last=0).on_conflict_do_nothing())
        sequence = conn.execute(
            update(case_counters)
            .where(case_counters.c.day == key)
            .values(last=case_counters.c.last + 1)
            .returning(case_counters.c.last)
        ).scalar_one()
        return format_case_number(day, int(sequence))

    # ------------------------------------------------------------------ tasks of a case
    def complete_task(
        self, task_id: str, data: dict[str, Any], actor: str, *, groups: set[str] | None = None
    ) -> StepResult:
        """Check who acts, validate the task's form and complete it, in one (retried) transaction.

        ``groups`` are the actor's groups (departments, ``window``, ``applicant``...); ``None`` means the
        caller has already decided (internal use, or the REST API until sign-in exists)."""

        def command(conn: Connection) -> StepResult:
            task = TaskRepository(conn).get(task_id)
            if task["state"] != "ready":
                raise Conflict(
                    f"任务已{TASK_STATE_LABELS.get(task['state'], task['state'])}",
                    code="task_not_ready",
                    task_id=task_id,
                )
            _authorise(task, actor, groups)
            entered = data
            if task["form_key"] and task["form_key"] in self.forms:
                entered = validate_or_raise(
                    self.forms.get(task["form_key"]), data, today=local_date(self.now)
                )
            return self.workflow.complete_task_in(conn, task_id, entered, actor)

        return self.workflow.run(command)

    def supply_materials(self, case_id: str, codes: list[str], actor: str) -> bool:
        """The applicant supplies tolerated/missing materials. When nothing is pending any more the flow is
        told by the message ``materials_supplied`` (kept in the buffer if it is not waiting yet); returns
        whether the flow took it now. The case row is locked, so two supplies at once cannot both miss
        that the set is complete."""

        def command(conn: Connection) -> bool:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
            if row is None:
                raise NotFound("办件不存在", code="case_not_found", case=case_id)
            # lock in the order every command takes: the instance row first (a command updates it before
            # anything else), so the materials read below cannot change under us
            InstanceRepository(conn).lock(row.instance_id)
            if row.status in CLOSED:
                raise Conflict(
                    f"办件已{LABELS[row.status]}，不能再补交材料", code="case_closed", case=case_id
                )
            pending = set(
                conn.execute(
                    select(case_materials.c.code).where(
                        case_materials.c.case_id == case_id,
                        case_materials.c.state.in_(["missing_tolerated", "missing", "rejected"]),
                    )
                ).scalars()
            )
            unknown = set(codes) - pending
            if not codes or unknown:
                raise InvalidInput(
                    "补交的材料不在待补清单中：" + "、".join(sorted(unknown or {"（空）"})),
                    code="not_pending_material",
                    field="materials",
                )
            conn.execute(
                update(case_materials)
                .where(case_materials.c.case_id == case_id, case_materials.c.code.in_(codes))
                .values(state="supplied", updated_at=self.now)
            )
            if pending - set(codes):
                return False
            payload = {"supplied_materials": sorted(pending), "all_supplied": True}
            return self.workflow.correlate_message_in(
                conn, "materials_supplied", payload, actor, instance_id=row.instance_id
            )

        return self.workflow.run(command)

    def rate(self, case_id: str, level: int, comment: str, actor: str) -> None:
        if level not in RATINGS:
            raise InvalidInput("评价等级须为 1-5", code="bad_rating", field="level")
        if level <= 2 and not comment.strip():
            raise InvalidInput("差评须说明原因以便整改回访", code="reason_required", field="comment")
        with unit_of_work(self.engine) as conn:
            row = self._case(conn, case_id)
            if row["status"] not in CLOSED:
                raise Conflict("办件办结后才能评价", code="case_not_closed", case=case_id)
            if row["rating"] is not None:
                raise Conflict("该办件已评价", code="already_rated", case=case_id)
            now = self.now
            conn.execute(
                update(cases)
                .where(cases.c.id == case_id)
                .values(rating=level, rating_comment=comment, rated_at=now)
            )
            AuditRepository(conn).append(
                [
                    audit_row(
                        now,
                        actor,
                        "rated",
                        business_key=case_id,
                        detail={"level": level, "label": RATINGS[level]},
                    )
                ]
            )

    def track(self, case_id: str) -> dict[str, Any]:
        if not is_valid_case_number(case_id):
            raise InvalidInput("办件编号格式或校验位不正确", code="bad_case_number", field="case_id")
        with self.engine.connect() as conn:
            row = self._case(conn, case_id)
            mats = [
                dict(r._mapping)
                for r in conn.execute(select(case_materials).where(case_materials.c.case_id == case_id))
            ]
            clocks = ClockRepository(conn, self.calendar()).all_for(case_id)
            tasks = TaskRepository(conn).of_instance(row["instance_id"]) if row["instance_id"] else []
            events = AuditRepository(conn).for_business_key(case_id)
        now, cal = self.now, self.calendar()
        clock_views = []
        for c in clocks:
            clk = Clock.from_dict(c["clock"])
            clock_views.append({**clk.summary(now, cal), "id": c["id"], "task_id": c["task_id"]})
        decided = [
            e["detail"]["to"] for e in events if e["action"] == "case_status" and e["detail"]["to"] in DECIDED
        ]
        return {
            "case": row,
            "status_label": LABELS.get(row["status"], row["status"]),
            "result": decided[-1] if decided else None,
            "result_label": LABELS[decided[-1]] if decided else "未决定",
            "calendar_warnings": list(cal.warnings),  # a date in a year the holiday calendar does not know
            "materials": mats,
            "clocks": clock_views,
            "tasks": tasks,
            "events": events,
        }

    def _case(self, conn: Connection, case_id: str) -> dict[str, Any]:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise NotFound("办件不存在", code="case_not_found", case=case_id)
        return dict(row._mapping)

    # ------------------------------------------------------------------ lifecycle (inside each command)
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
        row = self._case(ctx.conn, case_id)
        if new == "accepted" and row["accepted_at"] is None:
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
        items = [self.catalogue.get(c) for c in row["items"]]
        if len(items) > 1:
            legal = promised = max(i.joint_limit_days for i in items)
        else:
            legal, promised = items[0].legal_limit_days, items[0].promised_limit_days
        clocks.open(case_id, Clock(kind="legal", started_at=ctx.now, limit_days=legal))
        clocks.open(case_id, Clock(kind="promised", started_at=ctx.now, limit_days=promised))
