"""Tracking a case without signing in (办件公开查询): the case number plus its check code.

:meth:`PublicTracking.track` answers with the **public view**: what is shown to anybody holding the pair,
on a receipt, a phone, a shared screen. It carries NO personal data: no applicant name, id or phone, no
form data, no officer (actor, assignee, completer), no opinion or reason (not even the reasons of a
notice: the applicant reads those signed in), no audit detail, no rating. What it shows: the items and
the department, the status and the result, the dates, the current steps, the case clocks (promised date
and time left), the materials still missing, a timeline of status changes, the calendar warnings.

A wrong pair (unknown number, malformed number, wrong code, a case without a code) answers exactly like a
case that does not exist (:func:`engine.cases.access.case_not_found`, with the number as given). Failures
are counted per client address and per case number in ``tracking_failures`` (as sign-in failures are in
``login_failures``); past :class:`TrackingPolicy`'s limit within its window, every attempt from that
address or at that case is refused with 429 ``too_many_attempts`` (``detail.retry_after_seconds``, sent as
``Retry-After``), even with the right pair, until the window has passed. A success does not reset a
count: one known pair must not buy more guesses at others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.accounts.service import TooManyAttempts
from engine.cases.access import case_not_found
from engine.cases.applicant_tables import tracking_failures
from engine.cases.check_codes import matches
from engine.cases.numbers import is_valid_case_number
from engine.cases.status import LABELS
from engine.cases.tracking import CaseTracking
from engine.persistence.database import unit_of_work
from engine.persistence.tables import cases
from processes.catalogue import Catalogue

__all__ = ["MATERIAL_STATE_LABELS", "PublicTracking", "TrackingPolicy"]

MATERIAL_STATE_LABELS = {
    "provided": "已提交",
    "satisfied_by_licence": "电子证照免提交",
    "missing_tolerated": "容缺待补",
    "missing": "缺少",
    "supplied": "已补正",
    "rejected": "需补正",
}


@dataclass(frozen=True)
class TrackingPolicy:
    address_failures: int = 10  # failed pairs from one client address within the window
    case_failures: int = 20  # failed codes at one case number within the window (from any address)
    window_minutes: int = 15


class PublicTracking:
    """The public, anonymous read of one case."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        tracking: CaseTracking,
        catalogue: Catalogue,
        policy: TrackingPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.tracking = tracking
        self.catalogue = catalogue
        self.policy = policy or TrackingPolicy()

    def track(self, case_number: str, check_code: str, address: str | None) -> dict[str, Any]:
        number = case_number.strip() if isinstance(case_number, str) else ""
        now = self.clock()
        with self.engine.connect() as conn:
            stored = None
            well_formed = is_valid_case_number(number)
            if well_formed:
                stored = conn.execute(select(cases.c.check_code).where(cases.c.id == number)).first()
            # every well-formed number has its counter, whether a case has it or not: a limit only known
            # numbers reached would tell which numbers exist (a malformed one: only its address counts)
            keys = ([f"case:{number}"] if well_formed else []) + (
                [f"address:{address[:64]}"] if address else []
            )
            self._refuse_if_limited(conn, keys, now)
        if stored is None or not matches(check_code, stored.check_code):
            with unit_of_work(self.engine) as conn:
                self._count_failure(conn, keys, now)
            raise case_not_found(number)
        return self.public_view(self.tracking.track(number))

    # ------------------------------------------------------------------ the view
    def public_view(self, applicant_view: dict[str, Any]) -> dict[str, Any]:
        """The public view made from the applicant view (:mod:`engine.cases.tracking`), field by field:
        nothing is copied that is not named here."""
        case = applicant_view["case"]
        items = []
        for code in case["items"]:
            item = self.catalogue.get(code)
            items.append({"code": item.code, "name": item.name})
        department = self.catalogue.departments.get(case["department"])
        steps = [
            {
                "name": t["name"],
                "since": t["created_at"],
                "due_at": t["due_at"],
                "for_applicant": t["for_applicant"],
            }
            for t in applicant_view["tasks"]
            if t["state"] == "ready"
        ]
        clocks = {
            c["kind"]: {
                "kind": c["kind"],
                "status": c["status"],
                "paused": c["paused"],
                "unit": c["unit"],
                "limit": c["limit"],
                "used": c["used"],
                "remaining": c["remaining"],
                "due_at": c["due_at"],
                "finished_on_time": c["finished_on_time"],
            }
            for c in applicant_view["clocks"]
            if c["kind"] in ("legal", "promised")
        }
        timeline = [{"at": case["submitted_at"], "status": "submitted", "label": "提交申请"}] + [
            {
                "at": e["at"],
                "status": e["detail"]["to"],
                "label": LABELS.get(e["detail"]["to"], e["detail"]["to"]),
            }
            for e in applicant_view["events"]
            if e["action"] == "case_status"
        ]
        return {
            "case_number": case["id"],
            "items": items,
            "department": {"code": case["department"], "name": department.name if department else None},
            "status": case["status"],
            "status_label": applicant_view["status_label"],
            "result": applicant_view["result"],
            "result_label": applicant_view["result_label"],
            "submitted_at": case["submitted_at"],
            "accepted_at": case["accepted_at"],
            "decided_at": case["decided_at"],
            "closed_at": case["closed_at"],
            "current_steps": steps,
            "promised_limit_days": self._promised_days(case["items"]),
            "promised": clocks.get("promised"),
            "legal": clocks.get("legal"),
            "missing": [
                {
                    "code": m["code"],
                    "name": m["name"],
                    "state": m["state"],
                    "state_label": MATERIAL_STATE_LABELS.get(m["state"], m["state"]),
                }
                for m in applicant_view["missing"]
            ],
            "timeline": timeline,
            "calendar_warnings": list(applicant_view["calendar_warnings"]),
        }

    def _promised_days(self, codes: list[str]) -> int:
        """The promised limit in working days from acceptance (a joint approval: the joint limit)."""
        items = [self.catalogue.get(c) for c in codes]
        if len(items) > 1:
            return max(i.joint_limit_days for i in items)
        return items[0].promised_limit_days

    # ------------------------------------------------------------------ failed attempts
    def _limit(self, key: str) -> int:
        return self.policy.case_failures if key.startswith("case:") else self.policy.address_failures

    def _refuse_if_limited(self, conn: Connection, keys: list[str], now: datetime) -> None:
        window = timedelta(minutes=self.policy.window_minutes)
        rows = conn.execute(
            select(tracking_failures.c.key, tracking_failures.c.count, tracking_failures.c.window_started_at)
            .where(tracking_failures.c.key.in_(keys))
            .order_by(tracking_failures.c.key)
        )
        for key, count, started in rows:
            if count >= self._limit(key) and now < started + window:
                raise TooManyAttempts.for_the_rest_of(
                    "查询", started + window - now, scope=key.split(":", 1)[0]
                )

    def _count_failure(self, conn: Connection, keys: list[str], now: datetime) -> None:
        window = timedelta(minutes=self.policy.window_minutes)
        # counters whose window has passed count nothing any more: the table holds recent failures only
        conn.execute(delete(tracking_failures).where(tracking_failures.c.window_started_at < now - window))
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        for key in sorted(keys):  # one order for every writer: two failures at once cannot deadlock
            conn.execute(
                dialect_insert(tracking_failures)
                .values(key=key, count=0, window_started_at=now)
                .on_conflict_do_nothing()
            )
            started = conn.execute(
                select(tracking_failures.c.window_started_at)
                .where(tracking_failures.c.key == key)
                .with_for_update()
            ).scalar_one()
            restart = now >= started + window
            conn.execute(
                update(tracking_failures)
                .where(tracking_failures.c.key == key)
                .values(
                    count=1 if restart else tracking_failures.c.count + 1,
                    window_started_at=now if restart else started,
                )
            )
