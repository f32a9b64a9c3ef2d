"""Cases (办件): submit, complete case tasks, supply materials, rate, track; the BPMN-driven lifecycle.

A case is one application of one applicant for one or more service items. Submitting it validates the
applicant and the application form (pre-filled from the licence library), works out the state of every
required material (a valid licence of the holder stands in for a paper), picks the flow and starts the
BPMN process, all in one transaction. From then on the models drive the lifecycle: whenever a command
changes the workflow variable ``case_status``, :class:`engine.cases.lifecycle.CaseLifecycle` (a step
observer of the workflow service, inside the same transaction) records the transition, starts/pauses/stops
the clocks, and issues the licence on approval.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from engine.cases.clocks import ClockRepository
from engine.cases.intake import Application, choose_flow, material_states, next_case_number
from engine.cases.licences import CaseLicences
from engine.cases.lifecycle import CaseLifecycle
from engine.cases.numbers import is_valid_case_number
from engine.cases.status import CLOSED, DECIDED, LABELS
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import AuditRepository, InstanceRepository, TaskRepository, audit_row
from engine.persistence.tables import case_materials, cases
from engine.service import WorkflowService
from engine.step import StepResult
from engine.time.calendar import WorkingCalendar, local_date
from engine.time.clocks import Clock
from forms.autofill import AutofillResult, autofill, merge
from forms.combine import combine_forms
from forms.definition import FormDefinition
from forms.registry import FormRegistry
from forms.validation import validate_or_raise
from licence.checkdigits import holder_id_kind, validate_holder_id
from licence.library import LicenceLibrary
from processes.catalogue import Catalogue

TASK_STATE_LABELS = {"completed": "办结", "cancelled": "取消"}
RATINGS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


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
        self.lifecycle = CaseLifecycle(catalogue, self.licences, calendar)
        workflow.observers.append(self.lifecycle.on_step)

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
        flow, start_data = choose_flow(self.catalogue, app, items)
        form = self.application_form([i.code for i in items])
        filled = self.prefill(conn, form, applicant_id, app.applicant_name)
        data = validate_or_raise(form, merge(app.form, filled, definition=form), today=local_date(self.now))
        materials = material_states(conn, app, items, applicant_id, self.workflow.clock)
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
        case_id = next_case_number(conn, now)
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
