"""Tracking a case (办件进度查询): the applicant's view, and the full view for an officer of the case.

:meth:`CaseTracking.track` answers ``track(case_id, viewer=...)``:

* no viewer, or the applicant (``Viewer.applicant(holder_id)``): the **applicant view**. What the
  applicant may see: the status, the result, the steps (name, state, dates), the dates of the case, the
  materials and what is still missing, the notices (the reasons given for a supplement request, refusal,
  denial, return or termination), the case deadline clocks, and a timeline of the case's own events. It
  carries no personal data of officers (no actor, assignee, completer, candidate user), no opinions or
  task data, no audit detail beyond the whitelisted fields, no step (task) clocks.
* an officer of the case (:func:`engine.cases.access.is_officer_of`): the **officer view**, everything.
* any other viewer: the case does not exist (:func:`engine.cases.access.case_not_found`).

Both views show the calendar warnings of the case's own dates only (submission, acceptance, decision,
closing, the clocks' starts, pauses, stops and deadlines, the steps' dates): a year the holiday calendar
does not know is flagged on the cases it touches, not on every case.

A clock the applicant's withdrawal stopped (撤回: every clock running at that instant) gives no verdict
(``finished_on_time`` None, in both views and in :meth:`CaseTracking.promised_clocks`): the case was not
finished (办结), neither on time nor late, as the supervisor figures count it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from engine.accounts.principal import BUILT_IN_GROUPS
from engine.assignment import listed
from engine.cases.access import APPLICANT_GROUP, Viewer, case_not_found, is_officer_of, same_holder
from engine.cases.clocks import ClockRepository
from engine.cases.materials import PENDING_MATERIALS
from engine.cases.numbers import is_valid_case_number
from engine.cases.status import DECIDED, LABELS, NOTICE_STATUSES, WITHDRAWN
from engine.errors import InvalidInput
from engine.persistence.repositories import AuditRepository, TaskRepository
from engine.persistence.tables import case_clocks, case_materials, cases
from engine.time.calendar import WorkingCalendar, local_date, unknown_year_warning
from engine.time.clocks import Clock

__all__ = ["NOTICE_STATUSES", "CaseTracking"]

TASK_STATE_LABELS = {"ready": "办理中", "completed": "已完成", "cancelled": "已取消"}
_INSTANT = timedelta(microseconds=1)

# the applicant view: the fields shown, by what they belong to (everything else is left out)
_CASE_FIELDS = (
    "id",
    "flow",
    "items",
    "department",
    "applicant_kind",
    "applicant_id",
    "applicant_name",
    "contact_phone",
    "channel",
    "visits",
    "priority",
    "status",
    "status_reason",
    "form_data",
    "autofill",
    "licence_ids",
    "submitted_at",
    "accepted_at",
    "decided_at",
    "closed_at",
    "rating",
    "rating_comment",
    "rated_at",
)
_MATERIAL_FIELDS = ("item_code", "code", "name", "key", "state", "licence_id", "updated_at")
_CLOCK_FIELDS = (
    "kind",
    "status",
    "paused",
    "unit",
    "limit",
    "used",
    "remaining",
    "due_at",
    "finished_on_time",
    "task_id",
)
_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {  # action -> (label, detail fields shown)
    "case_submitted": ("提交申请", ("items", "channel")),
    "case_status": ("办件状态变更", ("from", "to", "reason")),
    "rated": ("评价", ("level", "label")),
}


def _summary(clock: Clock, case: Any, now: datetime, cal: WorkingCalendar) -> dict[str, Any]:
    """The clock's summary as the views show it (``case``: its case's row, with ``status`` and
    ``closed_at``): a clock stopped by the withdrawal of its case has no on-time verdict."""
    summary = clock.summary(now, cal)
    if case["status"] == WITHDRAWN and clock.stopped_at is not None and clock.stopped_at >= case["closed_at"]:
        summary["finished_on_time"] = None  # withdrawn (撤回): not finished, neither on time nor late
    return summary


def _pick(row: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {k: row.get(k) for k in fields}


class CaseTracking:
    """Reads of one case for the applicant and for its officers."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], calendar: Callable[[], WorkingCalendar]
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.calendar = calendar

    def promised_clocks(self, case_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The promised clock of each case of a list (as the case view shows it), in one read: a list page
        shows the promised date and the working days left without reading each case whole."""
        if not case_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(case_clocks.c.case_id, case_clocks.c.clock, cases.c.status, cases.c.closed_at)
                .join(cases, cases.c.id == case_clocks.c.case_id)
                .where(
                    case_clocks.c.case_id.in_(case_ids),
                    case_clocks.c.kind == "promised",
                    case_clocks.c.task_id.is_(None),
                )
                .order_by(case_clocks.c.id)  # the latest promised clock of a case stays
            ).all()
        now, cal = self.clock(), self.calendar()
        summaries = {str(r.case_id): _summary(Clock.from_dict(r.clock), r._mapping, now, cal) for r in rows}
        return {case_id: _pick(summary, _CLOCK_FIELDS) for case_id, summary in summaries.items()}

    def _in_scope(
        self, conn: Connection, case_id: str, viewer: Viewer | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
        """The case row, its tasks and whether ``viewer`` sees it as an officer of it (``None``: the public
        view); outside the viewer's scope the case does not exist."""
        if not is_valid_case_number(case_id):
            raise InvalidInput("办件编号格式或校验位不正确", code="bad_case_number", field="case_id")
        row = self._case(conn, case_id)
        tasks = TaskRepository(conn).of_instance(row["instance_id"]) if row["instance_id"] else []
        if viewer is None:
            return row, tasks, False
        if is_officer_of(viewer, row, tasks):
            return row, tasks, True
        if same_holder(viewer.holder_id, row["applicant_id"]):
            return row, tasks, False
        raise case_not_found(case_id)

    def require_access(self, case_id: str, viewer: Viewer) -> None:
        """``case_not_found`` unless ``viewer`` is the case's applicant or an officer of it (what
        :meth:`track` checks, without building the view)."""
        with self.engine.connect() as conn:
            self._in_scope(conn, case_id, viewer)

    def track(self, case_id: str, viewer: Viewer | None = None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row, tasks, officer = self._in_scope(conn, case_id, viewer)
            mats = [
                dict(r._mapping)
                for r in conn.execute(
                    select(case_materials)
                    .where(case_materials.c.case_id == case_id)
                    .order_by(case_materials.c.id)
                )
            ]
            cal = self.calendar()
            clocks = ClockRepository(conn, cal).all_for(case_id)
            events = AuditRepository(conn).for_business_key(case_id)
        now = self.clock()
        clock_views: list[dict[str, Any]] = []
        dates: list[datetime | None] = [
            row[k] for k in ("submitted_at", "accepted_at", "decided_at", "closed_at")
        ]
        deadlines: list[datetime | None] = [t["due_at"] for t in tasks]
        for c in clocks:
            clk = Clock.from_dict(c["clock"])
            summary = _summary(clk, row, now, cal)
            clock_views.append({**summary, "id": c["id"], "task_id": c["task_id"]})
            # a running clock counts up to now: the working days of now's year are in its numbers
            dates += [clk.started_at, clk.stopped_at or max(now, clk.started_at)]
            dates += [t for p in clk.pauses for t in (p.start, p.end)]
            deadlines.append(datetime.fromisoformat(summary["due_at"]) if summary["due_at"] else None)
        dates += [t[k] for t in tasks for k in ("created_at", "completed_at")]
        decided = [
            e["detail"]["to"] for e in events if e["action"] == "case_status" and e["detail"]["to"] in DECIDED
        ]
        missing = [m for m in mats if m["state"] in PENDING_MATERIALS]
        notices = [
            {"at": e["at"], "status": e["detail"]["to"], "label": LABELS.get(e["detail"]["to"]), "reason": r}
            for e in events
            if e["action"] == "case_status"
            and e["detail"]["to"] in NOTICE_STATUSES
            and (r := e["detail"].get("reason"))
        ]
        view: dict[str, Any] = {
            "view": "officer" if officer else "applicant",
            "case": row,
            "status_label": LABELS.get(row["status"], row["status"]),
            "result": decided[-1] if decided else None,
            "result_label": LABELS[decided[-1]] if decided else "未决定",
            "calendar_warnings": self._warnings(cal, dates, deadlines),
            "materials": mats,
            "missing": missing,
            "notices": notices,
            "clocks": clock_views,
            "tasks": tasks,
            "events": events,
        }
        return view if officer else self._applicant_view(view)

    @staticmethod
    def _applicant_view(full: dict[str, Any]) -> dict[str, Any]:
        case = _pick(full["case"], _CASE_FIELDS)
        if case["status"] not in NOTICE_STATUSES:
            case["status_reason"] = None  # e.g. the intake's opinion on an accepted case: internal
        events = []
        for e in full["events"]:
            if e["action"] not in _EVENTS:
                continue
            label, shown = _EVENTS[e["action"]]
            detail = _pick(e["detail"] or {}, shown)
            if e["action"] == "case_status":
                detail["label"] = LABELS.get(detail["to"], detail["to"])
                if detail["to"] not in NOTICE_STATUSES:
                    detail["reason"] = None
            events.append({"at": e["at"], "action": e["action"], "label": label, "detail": detail})
        tasks = [
            {
                "id": t["id"],
                "element_id": t["element_id"],
                "name": t["name"],
                "state": t["state"],
                "state_label": TASK_STATE_LABELS.get(t["state"], t["state"]),
                "for_applicant": APPLICANT_GROUP in listed(t["candidate_groups"]),
                "form_key": t["form_key"],
                "departments": [g for g in listed(t["candidate_groups"]) if g not in BUILT_IN_GROUPS],
                "created_at": t["created_at"],
                "completed_at": t["completed_at"],
                "due_at": t["due_at"],
            }
            for t in full["tasks"]
        ]
        return {
            **full,
            "case": case,
            "materials": [_pick(m, _MATERIAL_FIELDS) for m in full["materials"]],
            "missing": [_pick(m, _MATERIAL_FIELDS) for m in full["missing"]],
            "clocks": [_pick(c, _CLOCK_FIELDS) for c in full["clocks"] if c["task_id"] is None],
            "tasks": tasks,
            "events": events,
        }

    @staticmethod
    def _warnings(
        cal: WorkingCalendar, dates: Iterable[datetime | None], deadlines: Iterable[datetime | None]
    ) -> list[str]:
        """One warning per year the holiday calendar does not know among the (Asia/Shanghai) years of
        ``dates`` and ``deadlines``. A deadline is the end of its last day (midnight of the next one):
        the limit ending on 31 December is in that year, not in the next."""
        days = [local_date(d) for d in dates if d is not None]
        days += [local_date(d - _INSTANT) for d in deadlines if d is not None]
        known = cal.known_years()
        return [unknown_year_warning(y) for y in sorted({d.year for d in days}) if y not in known]

    @staticmethod
    def _case(conn: Connection, case_id: str) -> dict[str, Any]:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise case_not_found(case_id)
        return dict(row._mapping)
