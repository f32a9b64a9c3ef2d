"""Withdrawing an application (撤回申请): the applicant asks, an officer of the case grants or refuses.

* :func:`request_withdrawal`: the case's applicant asks, with a reason, while the case is undecided
  (:data:`engine.cases.status.WITHDRAWABLE`: submitted, waiting for a supplement, accepted, under review,
  in a special procedure). The request changes nothing of the case: its flow, tasks and clocks go on in the
  state they were in (``prior_status`` records it) until an officer decides. One request waits per case.
* :func:`decide_withdrawal`: an officer of the case (:func:`engine.cases.access.is_officer_of`) grants or
  refuses the waiting request. **Granted**: in one transaction the process instance is cancelled (its
  tasks cancelled, its timers dropped), every running clock of the case stops, the case moves to
  ``withdrawn`` (closed; a legal transition of :mod:`engine.cases.status`) with the reason recorded as a
  ``case_status`` event. **Refused** (a note is required): the request is closed and the case goes on
  unchanged in its prior state. A case decided or closed in the meantime can no longer be withdrawn
  (``409 withdrawal_too_late``); the request may still be refused.

Outside the caller's scope (another applicant's case; a case the officer has no part in) the case does not
exist (:func:`engine.cases.access.case_not_found`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.cases.access import Viewer, case_not_found, is_officer_of, same_holder
from engine.cases.applicant_tables import case_withdrawals
from engine.cases.clocks import ClockRepository
from engine.cases.figure_counts import count_closing
from engine.cases.service import CaseService
from engine.cases.status import LABELS, WITHDRAWABLE, can_move, case_is
from engine.errors import Conflict, InvalidInput
from engine.limits import check_plain_text
from engine.persistence.repositories import AuditRepository, InstanceRepository, TaskRepository
from engine.persistence.tables import case_clocks, cases
from engine.time.clocks import Clock

__all__ = [
    "MAX_TEXT",
    "STATE_LABELS",
    "decide_withdrawal",
    "latest_withdrawal",
    "request_withdrawal",
]

MAX_TEXT = 500
STATE_LABELS = {"pending": "待审核", "granted": "已同意撤回", "refused": "不同意撤回"}


def _text(value: object, field: str, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{label}不能为空", code="required", field=field)
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{label}不能超过 {MAX_TEXT} 个字符", code="too_long", field=field, limit=MAX_TEXT)
    check_plain_text(text, field, label, multiline=True)
    return text


def _view(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["state_label"] = STATE_LABELS.get(data["state"], data["state"])
    data["prior_status_label"] = LABELS.get(data["prior_status"], data["prior_status"])
    return data


def latest_withdrawal(conn: Connection, case_id: str) -> dict[str, Any] | None:
    """The case's latest withdrawal request (with state labels), or None."""
    row = conn.execute(
        select(case_withdrawals)
        .where(case_withdrawals.c.case_id == case_id)
        .order_by(case_withdrawals.c.id.desc())
        .limit(1)
    ).first()
    return _view(row) if row is not None else None


def request_withdrawal(
    service: CaseService, case_id: str, reason: str, *, holder_id: str | None, actor: str
) -> dict[str, Any]:
    """The applicant (``holder_id``) asks to withdraw their case; returns the waiting request."""
    text = _text(reason, "reason", "撤回理由")

    def command(conn: Connection) -> dict[str, Any]:
        row = conn.execute(
            select(cases.c.applicant_id, cases.c.status).where(cases.c.id == case_id).with_for_update()
        ).first()
        if row is None or not same_holder(holder_id, row.applicant_id):
            raise case_not_found(case_id)
        if row.status not in WITHDRAWABLE:
            raise Conflict(
                f"{case_is(row.status)}，不能申请撤回",
                code="not_withdrawable",
                case=case_id,
                status=row.status,
            )
        waiting = conn.execute(
            select(case_withdrawals.c.id).where(
                case_withdrawals.c.case_id == case_id, case_withdrawals.c.state == "pending"
            )
        ).first()
        if waiting is not None:
            raise Conflict("已有待审核的撤回申请", code="withdrawal_pending", case=case_id)
        now = service.now
        withdrawal_id = conn.execute(
            insert(case_withdrawals)
            .values(
                case_id=case_id,
                state="pending",
                reason=text,
                prior_status=row.status,
                requested_by=actor,
                requested_at=now,
            )
            .returning(case_withdrawals.c.id)
        ).scalar_one()
        AuditRepository(conn).record(
            now,
            actor,
            "withdrawal_requested",
            business_key=case_id,
            detail={"withdrawal_id": int(withdrawal_id), "status": row.status},
        )
        found = latest_withdrawal(conn, case_id)
        assert found is not None
        return found

    return service.workflow.run(command)


def decide_withdrawal(
    service: CaseService,
    case_id: str,
    *,
    grant: bool,
    note: str,
    actor: str,
    groups: Iterable[str],
) -> dict[str, Any]:
    """An officer of the case (``actor`` with ``groups``) grants (``grant=True``) or refuses the case's
    waiting withdrawal request; returns the decided request. A refusal needs a ``note``; a grant may
    leave it blank."""
    viewer = Viewer.officer(actor, groups)
    text = _text(note, "opinion", "不同意撤回的理由") if not grant else (note or "").strip()[:MAX_TEXT]
    check_plain_text(text, "opinion", "审核意见", multiline=True)

    def command(conn: Connection) -> dict[str, Any]:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise case_not_found(case_id)
        case = dict(row._mapping)
        tasks = TaskRepository(conn).of_instance(case["instance_id"]) if case["instance_id"] else []
        if not is_officer_of(viewer, case, tasks):
            raise case_not_found(case_id)
        if case["instance_id"]:
            InstanceRepository(conn).lock(case["instance_id"])  # the order every command takes
        pending = conn.execute(
            select(case_withdrawals)
            .where(case_withdrawals.c.case_id == case_id, case_withdrawals.c.state == "pending")
            .with_for_update()
        ).first()
        if pending is None:
            raise Conflict("该办件没有待审核的撤回申请", code="no_pending_withdrawal", case=case_id)
        now = service.now
        if grant:
            current = conn.execute(select(cases.c.status).where(cases.c.id == case_id)).scalar_one()
            if current not in WITHDRAWABLE or not can_move(current, "withdrawn"):
                raise Conflict(
                    f"{case_is(current)}，不能再撤回",
                    code="withdrawal_too_late",
                    case=case_id,
                    status=current,
                )
            reason = f"申请人撤回申请：{pending.reason}"
            if case["instance_id"]:
                service.workflow.cancel_in(conn, case["instance_id"], actor, reason)
            _close_withdrawn(service, conn, case_id, current, reason, actor)
        conn.execute(
            update(case_withdrawals)
            .where(case_withdrawals.c.id == pending.id)
            .values(
                state="granted" if grant else "refused",
                decided_by=actor,
                decided_at=now,
                decision_note=text or None,
            )
        )
        AuditRepository(conn).record(
            now,
            actor,
            "withdrawal_granted" if grant else "withdrawal_refused",
            business_key=case_id,
            detail={"withdrawal_id": int(pending.id)},
        )
        found = latest_withdrawal(conn, case_id)
        assert found is not None
        return found

    return service.workflow.run(command)


def _close_withdrawn(
    service: CaseService, conn: Connection, case_id: str, old: str, reason: str, actor: str
) -> None:
    """The case is withdrawn: every running clock stops now, the status and its reason are recorded."""
    now = service.now
    clocks = ClockRepository(conn, service.calendar())
    running = conn.execute(
        select(case_clocks.c.id, case_clocks.c.clock).where(
            case_clocks.c.case_id == case_id, case_clocks.c.stopped_at.is_(None)
        )
    ).all()
    for clock_id, data in running:
        clock = Clock.from_dict(data)
        clock.stop(now)  # an open pause ends at the same instant
        clocks.save(int(clock_id), clock)
    closed = conn.execute(
        update(cases)
        .where(cases.c.id == case_id)
        .values(status="withdrawn", status_reason=reason, closed_at=now)
        .returning(cases.c.id, cases.c.submitted_at, cases.c.department, cases.c.accepted_at)
    ).one()
    # a withdrawable case was not closed before; it counts as withdrawn (撤回件), never as finished
    count_closing(conn, closed._mapping, "withdrawn", now, None)
    AuditRepository(conn).record(
        now,
        actor,
        "case_status",
        business_key=case_id,
        detail={"from": old, "to": "withdrawn", "reason": reason},
    )
