"""Cases (办件): submit, complete case tasks, supply materials, rate, track; the BPMN-driven lifecycle.

Rating is :mod:`engine.cases.rating`, tracking :mod:`engine.cases.tracking`; this service delegates.

A case is one application of one applicant for one or more service items. Submitting it validates the
applicant and the application form (pre-filled from the licence library), works out the state of every
required material (a valid licence of the holder stands in for a paper), picks the flow and starts the
BPMN process, all in one transaction. From then on the models drive the lifecycle: whenever a command
changes the workflow variable ``case_status``, :class:`engine.cases.lifecycle.CaseLifecycle` (a step
observer of the workflow service, inside the same transaction) records the transition, starts/pauses/stops
the clocks, and issues the licence on approval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from engine.assignment import authorise_task, task_not_found
from engine.cases.access import APPLICANT_GROUP, Viewer, case_not_found, same_holder
from engine.cases.calendar_change import CalendarChange, change_calendar
from engine.cases.check_codes import new_check_code
from engine.cases.intake import (
    Application,
    applicant_kind,
    choose_flow,
    contact_phone_of,
    material_states,
    next_case_number,
    said_kind,
)
from engine.cases.intake_rules import INTAKE_FORM, IntakeRules
from engine.cases.licences import CaseLicences, licences_for_form
from engine.cases.lifecycle import (
    CaseLifecycle,
    forget_handed_case,
    hand_over_new_case,
    read_case_for_step,
    read_task_with_case,
)
from engine.cases.materials import PENDING_MATERIALS, closed_to_supplies, mark, materials_of
from engine.cases.rating import CaseRatings
from engine.cases.status import case_is
from engine.cases.steering import refuse_steering
from engine.cases.tracking import CaseTracking
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.limits import check_data, check_plain_text
from engine.persistence.columns import check_row
from engine.persistence.repositories import InstanceRepository, audit_row
from engine.persistence.steps import insert_case
from engine.persistence.tables import cases
from engine.service import WorkflowService
from engine.step import StepResult
from engine.time.calendar import WorkingCalendar, local_date, local_start_date
from engine.time.clocks import Clock
from forms.autofill import AutofillResult, autofill, merge, provenance_as_submitted
from forms.combine import combine_forms
from forms.definition import FormDefinition
from forms.registry import FormRegistry
from forms.validation import listed, validate_or_raise
from licence.checkdigits import validate_holder_id
from licence.model import LicenceRecord
from licence.types import HolderKind, find_type
from processes.catalogue import TOLERANT_PROCESS, Catalogue

TASK_STATE_LABELS = {"completed": "办结", "cancelled": "取消"}
COMMITMENT_FORM = "task.commitment"


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
        self.ratings = CaseRatings(engine, workflow.clock)
        self.tracking = CaseTracking(engine, workflow.clock, calendar)
        self.intake_rules = IntakeRules(self.lifecycle.open_case_clocks)  # 《行政许可法》第三十二条
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
        self,
        conn: Connection,
        form: str | FormDefinition,
        applicant_id: str,
        applicant_name: str = "",
        *,
        licences: list[LicenceRecord] | None = None,
        today: date | None = None,
        applicant_kind: HolderKind | None = None,
    ) -> AutofillResult:
        """Values from the applicant's valid licences for ``form`` (key or definition), with provenance
        (``licences``: the applicant's licences read for the form on ``today``, ``licences_for_form``, when
        the caller has read them already, and the day it read them for; else those of the applicant of
        ``applicant_kind``, None: as the id says, none for an id valid as both)."""
        definition = self.forms.get(form) if isinstance(form, str) else form
        today = today or local_date(self.now)
        if licences is None:
            licences = licences_for_form(
                conn, self.workflow.clock, applicant_id, definition, today, holder_kind=applicant_kind
            )
        applicant = {"name": applicant_name, "id": applicant_id}
        kind = applicant_kind or said_kind(applicant_id, None, definition, {}, today)
        if kind is not None:
            applicant["kind"] = kind
        return autofill(definition, licences=licences, applicant=applicant, today=today)

    def submit(self, app: Application, actor: str) -> str:
        return self.workflow.run(lambda conn: self.submit_in(conn, app, actor))

    def submit_in(self, conn: Connection, app: Application, actor: str) -> str:
        check_data({"form": app.form, "provided": app.provided}, self.workflow.limits, field="application")
        name = app.applicant_name.strip() if isinstance(app.applicant_name, str) else app.applicant_name
        check_row(
            cases,
            {"applicant_name": name, "contact_phone": app.contact_phone, "department": app.lead_department},
            fields={"department": "lead_department"},
        )
        today = local_date(self.now)
        applicant_id = validate_holder_id(app.applicant_id, "applicant_id", today=today)
        if not app.applicant_name.strip():
            raise InvalidInput("申请人名称不能为空", code="required", field="applicant_name")
        check_plain_text(app.applicant_name, "applicant_name", "申请人名称")
        if not app.items:
            raise InvalidInput("至少选择一个事项", code="required", field="items")
        items = [self.catalogue.get(code) for code in app.items]
        if len(items) == 1 and app.lead_department not in (None, items[0].department):
            # one item is handled by its own department (catalogue); only a joint approval has a lead
            raise InvalidInput(
                "只有并联审批（多个事项）可以指定牵头部门",
                code="lead_not_joint",
                field="lead_department",
                item=items[0].code,
            )
        flow, start_data = choose_flow(self.catalogue, app, items)
        form = self.application_form([i.code for i in items])
        # read once, for the form and the materials: of the types they take (neither reads a licence's
        # status history)
        materials_types = {m.licence_type for i in items for m in i.materials if m.licence_type}
        # the applicant's licences: of the kind said (an id valid as both is one person's and one
        # organisation's), before the form is filled from them
        said = said_kind(applicant_id, app.applicant_kind, form, app.form, today)
        held = licences_for_form(
            conn, self.workflow.clock, applicant_id, form, today, materials_types, holder_kind=said
        )
        filled = self.prefill(
            conn, form, applicant_id, app.applicant_name, licences=held, today=today, applicant_kind=said
        )
        data = validate_or_raise(form, merge(app.form, filled, definition=form), today=today)
        contact_phone = contact_phone_of(app.contact_phone)  # after the form's own phone field
        kind = applicant_kind(applicant_id, app.applicant_kind, form, data, today)
        _refuse_another_holder(data, items, applicant_id, name)
        materials = material_states(conn, app, items, applicant_id, self.workflow.clock, held, today=today)
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
        case_row = dict(
            id=case_id,
            flow=flow.process_id,
            items=[i.code for i in items],
            department=start_data.get("lead_department") or start_data["department"],
            applicant_kind=kind,
            applicant_id=applicant_id,
            applicant_name=app.applicant_name.strip(),
            contact_phone=contact_phone,
            channel=app.channel,
            visits=1 if app.channel == "counter" else 0,
            priority=app.priority,
            status="submitted",
            form_data=data,
            autofill=provenance_as_submitted(data, filled),
            licence_ids=[],
            submitted_at=now,
            check_code=new_check_code(),  # for tracking without signing in (engine/cases/check_codes.py)
        )
        insert_case(  # one statement on PostgreSQL
            conn,
            case_row,
            [{**m, "case_id": case_id, "updated_at": now} for m in materials],
            [
                audit_row(
                    now,
                    actor,
                    "case_submitted",
                    business_key=case_id,
                    detail={"items": app.items, "channel": app.channel},
                )
            ],
        )
        hand_over_new_case(conn, case_row)  # the lifecycle's start step takes the row instead of reading it
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
        # the case row gets its instance id and the figures count it received (the lifecycle), both
        # written with the step's own rows
        self.workflow.start_in(conn, flow.process_id, start_data, actor, business_key=case_id)
        return case_id

    # ------------------------------------------------------------------ tasks of a case
    def complete_task(
        self,
        task_id: str,
        data: dict[str, Any],
        actor: str,
        *,
        groups: set[str] | frozenset[str] | None = None,
        holder_id: str | None = None,
        find: Callable[[Connection], tuple[dict[str, Any], dict[str, Any] | None]] | None = None,
    ) -> StepResult:
        """Check who acts, validate the task's form and complete it, in one (retried) transaction.

        ``groups`` are the actor's groups (departments, ``window``, ``applicant``...); ``None`` means the
        caller has already decided (internal use, or the REST API until sign-in exists). An applicant
        (``applicant`` among ``groups``) works only the tasks of their own cases: ``holder_id`` must be
        the case's applicant id, else the task does not exist for them. ``find`` reads the task row
        under the caller's own visibility rule (the officer desk's), first and inside the same
        transaction, so that the row is read once, with its case row (or None); then the data limits are
        checked."""
        if find is None:
            check_data(data, self.workflow.limits, field="data", task_id=task_id)

        def command(conn: Connection) -> StepResult:
            case: dict[str, Any] | None = None
            if find is None:
                task, case = read_task_with_case(conn, task_id)  # the case row, for the lifecycle too
            else:
                task, case = find(conn)
                check_data(data, self.workflow.limits, field="data", task_id=task_id)
            authorise_task(task, actor, groups)  # outside the actor's scope the task does not exist
            if groups is not None and APPLICANT_GROUP in groups:
                self._authorise_applicant(conn, task, holder_id, case)
            if task["state"] != "ready":
                raise Conflict(
                    f"任务已{TASK_STATE_LABELS.get(task['state'], task['state'])}",
                    code="task_not_ready",
                    task_id=task_id,
                )
            if task["assignee"] and task["assignee"] != actor:
                raise Forbidden("任务已由他人认领", code="claimed_by_other", task_id=task_id)
            entered = self._task_input(conn, task, data, case)
            accepted_at = case["accepted_at"] if case is not None else None
            if self.intake_rules.before_complete(
                conn, task, entered, actor, self.now, self.calendar(), case_row=case
            ):
                forget_handed_case(conn)  # deemed accepted: the lifecycle reads the case row again
                accepted_at = conn.execute(
                    select(cases.c.accepted_at).where(cases.c.id == task["business_key"])
                ).scalar_one()
            if accepted_at is not None and task["form_key"] == INTAKE_FORM:
                # accepted by law from the receipt (deemed): the model's deadlines count from it, as the
                # case clocks do; the engine's word, not a form field
                entered = {**entered, "deemed_accepted_at": accepted_at.astimezone(UTC).isoformat()}
            return self.workflow.complete_task_in(conn, task_id, entered, actor)

        return self.workflow.run(command)

    @staticmethod
    def _authorise_applicant(
        conn: Connection, task: dict[str, Any], holder_id: str | None, case: dict[str, Any] | None = None
    ) -> None:
        """The applicant's group is every applicant's: the case decides whose task it is. A task of
        another applicant's case (or of no case) answers like a task that does not exist. ``case``: the
        case row when the caller read it with the task."""
        if case is None:
            row = conn.execute(select(cases.c.applicant_id).where(cases.c.id == task["business_key"])).first()
            applicant = None if row is None else row.applicant_id
        else:
            applicant = case["applicant_id"]
        if applicant is None or not same_holder(holder_id, applicant):
            raise task_not_found(str(task["id"]))

    def _task_input(
        self,
        conn: Connection,
        task: dict[str, Any],
        data: dict[str, Any],
        case: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What a person may hand to the workflow at ``task``: the task form's declared fields only
        (validated), no variable that steers the case beyond the form's own decision
        (:mod:`engine.cases.steering`), and for a commitment letter the tolerated materials and a date
        within the supplement deadline. A task without a form in the registry (none, or a key the
        registry does not know) takes no field at all: nothing declares what it would accept."""
        form_key = task["form_key"]
        if not isinstance(data, dict):
            raise InvalidInput("任务数据必须是对象", code="bad_task_data", task_id=task["id"])
        if form_key and form_key in self.forms:
            days = self._case_days(conn, task, case)
            form = self.forms.get(form_key)
            entered = validate_or_raise(form, data, today=local_date(self.now), days=days)
        elif data:
            names, text = listed(sorted(str(n) for n in data))
            raise InvalidInput(
                "该任务没有登记表单，不接受任何字段：" + text,
                code="undeclared_fields",
                field=names[0],
                fields=names,
                count=len(data),
                form_key=form_key,
                task_id=task["id"],
            )
        else:
            entered = {}
        refuse_steering(entered, form_key, task_id=task["id"])
        if form_key == COMMITMENT_FORM:
            self._check_commitment(conn, task, entered, case)
        return entered

    @staticmethod
    def _case_days(
        conn: Connection, task: Mapping[str, Any], case: Mapping[str, Any] | None
    ) -> dict[str, date | None]:
        """The days of the task's case a task form's dates may be bounded by (``DAY_BOUNDS``): received,
        accepted, decided (Asia/Shanghai; None where the case has not reached it, or for no case), so that
        no date an officer records lies before the step it records could have happened."""
        if case is None:
            query = select(cases.c.submitted_at, cases.c.accepted_at, cases.c.decided_at)
            row = conn.execute(query.where(cases.c.id == task["business_key"])).first()
            case = dict(row._mapping) if row is not None else {}
        return {
            f"case_{name}": local_date(case[f"{name}_at"]) if case.get(f"{name}_at") else None
            for name in ("submitted", "accepted", "decided")
        }

    def _check_commitment(
        self,
        conn: Connection,
        task: dict[str, Any],
        entered: dict[str, Any],
        case: Mapping[str, Any] | None = None,
    ) -> None:
        """A commitment letter (容缺承诺书) lists exactly the materials the case holds as tolerated and
        promises them no later than the supplement deadline: ``supplement_deadline_days`` working days
        (catalogue) from now, when the model accepts the case and starts the same deadline's timer."""
        if case is not None:  # the case row read with the task in this transaction
            case_id, item_codes = case["id"], case["items"]
        else:
            query = select(cases.c.id, cases.c["items"]).where(cases.c.id == task["business_key"])
            row = conn.execute(query).first()
            if row is None:
                return  # not a case
            case_id, item_codes = row
        tolerated = {m.code for m in materials_of(conn, case_id) if m.state == "missing_tolerated"}
        listed = {str(c) for c in entered.get("missing_materials") or []}
        if listed != tolerated:
            raise InvalidInput(
                "承诺书所列容缺材料应为本件容缺的材料：" + "、".join(sorted(tolerated) or ["（无）"]),
                code="commitment_materials_mismatch",
                field="missing_materials",
                expected=sorted(tolerated),
                task_id=task["id"],
                case=case_id,
            )
        days = self.catalogue.get(item_codes[0]).supplement_deadline_days
        deadline = self.calendar().add_working_days(local_start_date(self.now), days)  # as the clock counts
        promised = date.fromisoformat(str(entered["promised_date"]))
        if promised > deadline:
            raise InvalidInput(
                f"「承诺补齐日期」不得晚于补正期限（{days} 个工作日，截至 {deadline.isoformat()}）",
                code="promised_date_after_deadline",
                field="promised_date",
                deadline=deadline.isoformat(),
                task_id=task["id"],
                case=case_id,
            )

    def supplement_deadline(self, case: Mapping[str, Any]) -> datetime | None:
        """The instant a tolerant acceptance's supplement deadline (补正期限) runs out: the end (24:00
        Asia/Shanghai) of the ``supplement_deadline_days``-th working day after acceptance, on the current
        calendar; the model's deadline timer (``working_deadline``) is the same instant. ``None`` for other
        flows and before acceptance."""
        if case["flow"] != TOLERANT_PROCESS.process_id or case["accepted_at"] is None:
            return None
        days = self.catalogue.get(case["items"][0]).supplement_deadline_days
        return Clock(kind="task", started_at=case["accepted_at"], limit_days=days).due_at(self.calendar())

    def _refuse_after_supplement_deadline(self, case: Mapping[str, Any]) -> None:
        """A supply at or after the deadline is refused by the injected clock, whether or not the worker has
        fired the deadline timer (and terminated the case) yet."""
        deadline = self.supplement_deadline(case)
        if deadline is None or self.now < deadline:
            return
        last_day = local_date(deadline - timedelta(microseconds=1))
        raise Conflict(
            f"补正期限已于 {last_day.isoformat()} 24时届满，不能再补交材料；逾期未补齐的，终止办理",
            code="supplement_deadline_passed",
            case=case["id"],
            deadline=deadline.isoformat(),
            deadline_day=last_day.isoformat(),
        )

    def supply_materials(self, case_id: str, codes: list[str], actor: str) -> bool:
        """The applicant supplies tolerated/missing materials. When nothing is pending any more the flow is
        told by the message ``materials_supplied`` (kept in the buffer if it is not waiting yet); returns
        whether the flow took it now. The case's instance row is locked first, so two supplies at once
        cannot both miss that the set is complete."""

        def command(conn: Connection) -> bool:
            # locked in the order every command takes: the instance row first (a command updates it
            # before anything else), so the materials read below cannot change under us; the row goes
            # on to the lifecycle of the message's step
            row = read_case_for_step(conn, case_id, "message")
            if row is None:
                raise case_not_found(case_id)
            if closed_to_supplies(conn, case_id, row["status"]):
                raise Conflict(f"{case_is(row['status'])}，不能再补交材料", code="case_closed", case=case_id)
            self._refuse_after_supplement_deadline(row)
            held = materials_of(conn, case_id)
            pending = {m.code for m in held if m.state in PENDING_MATERIALS}
            tolerated = sorted({m.code for m in held if m.state == "missing_tolerated"} & set(codes))
            if tolerated and row["accepted_at"] is None:  # supplied under the commitment, after it
                raise Conflict(
                    "容缺受理尚未受理（须先签署承诺书），容缺材料在受理后按承诺补交：" + "、".join(tolerated),
                    code="case_not_accepted",
                    case=case_id,
                    status=row["status"],
                    materials=tolerated,
                )
            unknown = set(codes) - pending
            if not codes or unknown:
                raise InvalidInput(
                    "补交的材料不在待补清单中：" + "、".join(sorted(unknown or {"（空）"})),
                    code="not_pending_material",
                    field="materials",
                )
            mark(conn, case_id, codes, "supplied", self.now)
            if pending - set(codes):
                # no step follows: the instance row is written as a step would, so that a step's locking
                # read that waited for this command sees its materials change (engine.cases.materials.mark)
                InstanceRepository(conn).touch(row["instance_id"])
                return False
            payload = {"supplied_materials": sorted(pending), "all_supplied": True}
            refuse_steering(payload, None, case=case_id)  # the engine's own words, never a steering one
            return self.workflow.correlate_message_in(
                conn, "materials_supplied", payload, actor, instance_id=row["instance_id"]
            )

        return self.workflow.run(command)

    # ------------------------------------------------------------------ calendar
    def change_calendar(self, day: date, working: bool | None, note: str, actor: str) -> CalendarChange:
        """An administrator marks ``day`` working (True) or rest (False), or clears it (None); every open
        clock, ready task and working-day timer follows in the same transaction
        (:mod:`engine.cases.calendar_change`)."""
        return change_calendar(self.workflow, day, working, note, actor)

    # ------------------------------------------------------------------ rating and tracking
    def rate(self, case_id: str, level: int, comment: str, *, rater: str) -> None:
        """The applicant (``rater``: their holder id) rates the closed case once
        (:mod:`engine.cases.rating`)."""
        self.ratings.rate(case_id, level, comment, rater=rater)

    def track(self, case_id: str, viewer: Viewer | None = None) -> dict[str, Any]:
        """The applicant's view of the case, or the full one for an officer of the case
        (:mod:`engine.cases.tracking`)."""
        return self.tracking.track(case_id, viewer)


def _refuse_another_holder(
    data: Mapping[str, Any], items: list[Any], holder_id: str, holder_name: str
) -> None:
    """The fields that name the holder on a licence the items issue (its id and name fields) must name the
    applicant: another holder's credit code typed into the form was accepted, reviewed, and then stopped
    the approval (the licence library refuses a face naming someone else), a case that could never end."""
    for item in items:
        ltype = find_type(item.issues_licence_type) if item.issues_licence_type else None
        if ltype is None:
            continue
        for field, own in ((ltype.holder_id_field, holder_id), (ltype.holder_name_field, holder_name)):
            given = data.get(field) if field else None
            if isinstance(given, str) and given.strip() and given.strip() != own:
                raise InvalidInput(
                    f"表单中的「{field}」与申请人不一致：证照只能颁发给申请人本人",
                    code="holder_mismatch",
                    field=field,
                    item=item.code,
                )
