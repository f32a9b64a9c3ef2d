"""Intake follows the law (《行政许可法》第三十二条): what the window may decide, and when.

* **One-time notice (一次性告知).** A supplement notice (the intake task completed with decision
  ``supplement``) names every material the system knows is missing or defective (it may name more, never
  fewer) and only materials of the case's items; an unknown code is refused.
* **No acceptance while materials are outstanding.** A case becomes ``accepted`` (in any flow, by any
  model) only when no material is missing or rejected; only tolerant acceptance (容缺受理) lets minor
  materials wait, and only those the signed commitment letter names. A key material can never wait.
  Guarded where the status changes (:func:`refuse_incomplete_acceptance`, called by the lifecycle), so
  no model and no path around the intake form can accept an incomplete case.
* **Deemed acceptance (逾期视为受理).** A notice not issued within 5 working days of receiving the
  application (the submission, or in a later round the resubmission after a supplement) means the
  application counts as accepted from the day of receipt: the case row gets ``accepted_at`` = the
  receipt instant and status ``accepted`` with the reason, the legal and promised clocks start at the
  receipt, the audit log says why. The worker does it in its clocks round (:meth:`IntakeRules.deem_overdue`);
  an officer completing the overdue intake task first gets the same, in the same transaction. From then
  on the intake task may only be completed with ``accept`` (which moves the flow into review and skips the
  material check: the law has already accepted the case). A late supplement notice is refused, not
  treated as a supplement during handling: it would pause the clock and set the case back to
  "submitted", undoing what the law decided; a late refusal (不予受理) is refused for the same reason
  (the office now decides on the merits: approve or deny).
* Supplied materials must be materials of the case's items. (A refusal needs a non-blank reason: the
  intake form already requires it, and a blank string counts as empty there.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update

from engine.cases.clocks import CalendarProvider, ClockRepository
from engine.cases.materials import Material, materials_of
from engine.errors import Conflict, InvalidInput
from engine.persistence.database import is_postgres, unit_of_work
from engine.persistence.repositories import AuditRepository
from engine.persistence.tables import cases, instances, tasks
from engine.time.calendar import WorkingCalendar, end_of_local_day, local_date, local_start_date

__all__ = [
    "INTAKE_FORM",
    "NOTICE_WORKING_DAYS",
    "IntakeRules",
    "deemed_reason",
    "notice_deadline",
    "refuse_incomplete_acceptance",
]

INTAKE_FORM = "task.intake"
SUPPLEMENT_FORM = "task.supplement"
NOTICE_WORKING_DAYS = 5
"""Working days after the day of receipt within which the one-time notice must be issued (art. 32)."""

OUTSTANDING = ("missing", "rejected")
"""Material states a notice must name and that block acceptance (``missing_tolerated`` too, unless
committed in a tolerant acceptance)."""

_ITEMS = cases.c["items"].label("item_codes")  # ``cases.c.items`` is the collection's own method


@dataclass(frozen=True)
class _Case:
    """The columns of a case row the intake rules read, taken from a row read earlier in the command."""

    id: str
    status: str
    accepted_at: datetime | None
    instance_id: str | None
    item_codes: list[str]


CaseClockOpener = Callable[[ClockRepository, str, list[str], datetime], None]
"""Opens a case's legal and promised clocks started at an instant (``CaseLifecycle.open_case_clocks``)."""


def notice_deadline(received_at: datetime, cal: WorkingCalendar) -> datetime:
    """The instant the notice period ends: the end (24:00 Beijing) of the 5th working day after the day
    of receipt (the day of receipt itself is not counted, as for every limit in working days; received at
    exactly 00:00:00, at 24:00 of the day before, as a clock started then)."""
    return end_of_local_day(cal.add_working_days(local_start_date(received_at), NOTICE_WORKING_DAYS))


def deemed_reason(received_at: datetime) -> str:
    return (
        f"收到申请之日起 {NOTICE_WORKING_DAYS} 个工作日内未一次性告知补正，"
        f"自收到申请之日（{local_date(received_at).isoformat()}）起即为受理（《行政许可法》第三十二条）"
    )


def _labels(rows: Collection[Material], codes: Collection[str]) -> str:
    names: dict[str, str] = {}
    for r in rows:
        names.setdefault(r.code, r.name)
    return "、".join(f"{names[c]}（{c}）" if c in names else c for c in codes)


def _codes(value: Any) -> list[str]:
    return [str(c) for c in value] if isinstance(value, list) else []


def _refuse_unknown(rows: list[Material], listed: list[str], field: str, case_id: str) -> None:
    unknown = sorted(set(listed) - {r.code for r in rows})
    if unknown:
        raise InvalidInput(
            "所列材料不是本办件所申请事项需要的材料：" + "、".join(unknown),
            code="unknown_material",
            field=field,
            case=case_id,
            materials=unknown,
        )


def refuse_incomplete_acceptance(conn: Connection, case_id: str, data: Mapping[str, Any]) -> None:
    """Refuse the case becoming accepted while a material is missing or rejected, or a tolerated one is
    not named in the commitment letter (``data["commitment_letter"]``, tolerant acceptance only)."""
    letter = data.get("commitment_letter")
    committed = set(_codes(letter.get("missing_materials"))) if isinstance(letter, Mapping) else set()
    rows = materials_of(conn, case_id)
    blocking = [
        r
        for r in rows
        if r.state in OUTSTANDING or (r.state == "missing_tolerated" and (r.key or r.code not in committed))
    ]
    if not blocking:
        return
    codes = list(dict.fromkeys(r.code for r in blocking))
    key = list(dict.fromkeys(r.code for r in blocking if r.key))
    parts = []
    if key:
        parts.append("主要材料 " + _labels(rows, key))
    minor = [c for c in codes if c not in key]
    if minor:
        parts.append("其他材料 " + _labels(rows, minor))
    raise InvalidInput(
        "材料不齐全或尚未补正，不能受理：" + "；".join(parts) + "。请一次性告知补正"
        "（仅容缺受理可在签署承诺书后暂缺次要材料）",
        code="materials_incomplete",
        field="decision",
        case=case_id,
        materials=codes,
        key_materials=key,
    )


class IntakeRules:
    """The intake rules the case service applies before a case task is completed, and the worker job of
    deemed acceptance. ``open_case_clocks`` opens the legal and promised clocks of an accepted case."""

    def __init__(self, open_case_clocks: CaseClockOpener) -> None:
        self.open_case_clocks = open_case_clocks

    # ------------------------------------------------------------------ before a task is completed
    def before_complete(
        self,
        conn: Connection,
        task: Mapping[str, Any],
        entered: Mapping[str, Any],
        actor: str,
        now: datetime,
        cal: WorkingCalendar,
        *,
        case_row: Mapping[str, Any] | None = None,
    ) -> bool:
        """Check what an officer/applicant entered on an intake or supplement task of a case (the
        commitment letter is checked by the case service, ``CaseService._check_commitment``);
        raise a typed error naming the materials or the field. Tasks of other forms, and of instances
        that are not cases, pass untouched. ``case_row``: the task's case row when the caller read it in
        this transaction (one read fewer). Returns whether a case row read before may be stale: the
        case counts as accepted from the day of receipt (deemed acceptance), written now or by a worker
        meanwhile."""
        form = task.get("form_key")
        if form not in (INTAKE_FORM, SUPPLEMENT_FORM) or not task.get("business_key"):
            return False
        case: Row[Any] | _Case | None
        if case_row is not None:
            case = _Case(
                id=case_row["id"],
                status=case_row["status"],
                accepted_at=case_row["accepted_at"],
                instance_id=case_row["instance_id"],
                item_codes=list(case_row["items"] or []),
            )
        else:
            case = conn.execute(
                select(cases.c.id, cases.c.status, cases.c.accepted_at, cases.c.instance_id, _ITEMS).where(
                    cases.c.id == task["business_key"]
                )
            ).first()
        if case is None:
            return False
        if form == SUPPLEMENT_FORM:
            rows = materials_of(conn, case.id)
            _refuse_unknown(rows, _codes(entered.get("supplied_materials")), "supplied_materials", case.id)
            return False
        return self._check_intake(conn, case, task, entered, actor, now, cal)

    def _check_intake(
        self,
        conn: Connection,
        case: Row[Any] | _Case,
        task: Mapping[str, Any],
        entered: Mapping[str, Any],
        actor: str,
        now: datetime,
        cal: WorkingCalendar,
    ) -> bool:
        decision = entered.get("decision")
        received = task["created_at"]  # the intake round began when the application (or supplement) came in
        deadline = notice_deadline(received, cal)
        if case.accepted_at is not None or now >= deadline:
            if decision != "accept":
                what = "一次性告知补正" if decision == "supplement" else "作出不予受理决定"
                raise Conflict(
                    f"{deemed_reason(received)}，不能再{what}；请出具受理凭证并进入审查",
                    code="deemed_accepted",
                    field="decision",
                    case=case.id,
                    received_on=local_date(received).isoformat(),
                    notice_deadline=deadline.isoformat(),
                )
            # the case row read before this point is stale either way: this command wrote it, or a worker
            # that deemed it accepted meanwhile did (then the UPDATE below finds nothing to do)
            self.deem_accepted(conn, case, received, deadline, now, actor, cal)
            return True
        if decision == "supplement":  # the notice must list every material missing or defective
            rows = materials_of(conn, case.id)
            listed = _codes(entered.get("missing_materials"))
            _refuse_unknown(rows, listed, "missing_materials", case.id)
            known = {r.code for r in rows if r.state in ("missing_tolerated", *OUTSTANDING)}
            omitted = [c for c in dict.fromkeys(r.code for r in rows) if c in known and c not in listed]
            if omitted:
                raise InvalidInput(
                    "一次性告知须列明全部缺少或不合格的材料，还缺：" + _labels(rows, omitted),
                    code="notice_incomplete",
                    field="missing_materials",
                    case=case.id,
                    materials=omitted,
                )
        # "accept" is checked where the status changes (refuse_incomplete_acceptance), for every flow
        return False

    # ------------------------------------------------------------------ deemed acceptance
    def deem_accepted(
        self,
        conn: Connection,
        case: Row[Any] | _Case,
        received: datetime,
        deadline: datetime,
        now: datetime,
        actor: str,
        cal: WorkingCalendar,
    ) -> bool:
        """Make the case accepted from ``received`` (row, clocks, audit); False when it already is. Takes
        the instance row lock first, the order every command takes."""
        if case.instance_id:
            conn.execute(select(instances.c.id).where(instances.c.id == case.instance_id).with_for_update())
        reason = deemed_reason(received)
        done = conn.execute(
            update(cases)
            .where(cases.c.id == case.id, cases.c.accepted_at.is_(None), cases.c.status == "submitted")
            .values(status="accepted", accepted_at=received, status_reason=reason)
        )
        if done.rowcount != 1:
            return False
        self.open_case_clocks(ClockRepository(conn, cal), case.id, list(case.item_codes), received)
        AuditRepository(conn).record(
            now,
            actor,
            "case_status",
            business_key=case.id,
            instance_id=case.instance_id,
            detail={
                "from": "submitted",
                "to": "accepted",
                "reason": reason,
                "deemed": True,
                "basis": "《行政许可法》第三十二条",
                "received_at": received.isoformat(),
                "notice_deadline": deadline.isoformat(),
            },
        )
        return True

    def deem_overdue(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        calendar: CalendarProvider,
        worker: str,
        limit: int = 200,
    ) -> int:
        """Worker job: every case whose intake task has waited past the notice period counts as accepted
        from the day of receipt. Returns how many cases it accepted. Instances another command holds are
        left for the next round (``SKIP LOCKED`` on PostgreSQL)."""
        done = 0
        skip_locked = is_postgres(engine)
        with unit_of_work(engine) as conn:
            now, cal = clock(), calendar()
            # 5 working days after the day of receipt are never fewer than 5 calendar days after it
            candidates = conn.execute(
                select(cases.c.id, cases.c.status, cases.c.accepted_at, cases.c.instance_id, _ITEMS)
                .add_columns(tasks.c.created_at.label("received"))
                .join(tasks, tasks.c.business_key == cases.c.id)
                .where(
                    cases.c.status == "submitted",
                    cases.c.accepted_at.is_(None),
                    tasks.c.state == "ready",
                    tasks.c.form_key == INTAKE_FORM,
                    tasks.c.created_at <= now - timedelta(days=NOTICE_WORKING_DAYS),
                )
                .order_by(tasks.c.created_at)
                .limit(limit)
            ).all()
            for case in candidates:
                deadline = notice_deadline(case.received, cal)
                if now < deadline:
                    continue
                if skip_locked:
                    lock = select(instances.c.id).where(instances.c.id == case.instance_id)
                    if conn.execute(lock.with_for_update(skip_locked=True)).scalar() is None:
                        continue
                if self.deem_accepted(conn, case, case.received, deadline, now, worker, cal):
                    done += 1
        return done
