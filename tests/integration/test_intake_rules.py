"""Intake follows the law (《行政许可法》第三十二条), through the whole stack on a real database.

* one-time notice: names every material missing or rejected, only materials of the case's items;
* no acceptance while a material is outstanding, in every flow (tolerance only under a commitment);
* no notice within 5 working days of receipt: accepted from the day of receipt (row, clocks, audit), and
  a late notice or refusal is refused;
* a refusal needs a reason.

Time is injected; the notice periods are counted across National Day 2025 and Spring Festival 2026.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.bootstrap import Services, make_worker
from engine.cases.intake import Application
from engine.cases.intake_rules import notice_deadline
from engine.cases.lifecycle import read_task_with_case
from engine.errors import Conflict, InvalidInput
from engine.persistence.tables import audit_log, case_clocks, case_materials, cases, timers
from engine.time.clocks import Clock
from licence.demo import demo_persons
from processes.catalogue import load_catalogue
from tests.conftest import FakeClock, services_on
from tests.integration.test_cases import FOOD_FORM, JOINT_FORM, do, org_with, ready, shanghai

CATALOGUE = load_catalogue()
PERSON = demo_persons()[0]
MR003_FORM = {
    "company_name": "鼓楼区小吃店",
    "company_type": "个体工商户",
    "registered_capital": 5,
    "address": "福州市鼓楼区",
    "business_scope": "小吃",
    "contact_phone": "13800138000",
}


@dataclass(frozen=True)
class Flow:
    """One way an application is received: its items, the applicant, its form, its intake task."""

    name: str
    items: tuple[str, ...]
    form: dict[str, Any]
    intake: str = "intake"
    person: bool = False

    @property
    def standing_in(self) -> str:
        """The licence type the applicant holds that stands in for a paper."""
        return "resident_id" if self.person else "business_licence"

    def codes(self) -> list[str]:
        """Every material code of the items a paper must be handed in for (no licence of the holder)."""
        return list(
            dict.fromkeys(
                m.code
                for item in self.items
                for m in CATALOGUE.get(item).materials
                if m.licence_type != self.standing_in
            )
        )

    def is_key(self, code: str) -> bool:
        return any(m.key for item in self.items for m in CATALOGUE.get(item).materials if m.code == code)


SINGLE = Flow("single_window", ("MR-001",), FOOD_FORM)
JOINT = Flow("joint_approval", ("MR-001", "HE-001", "PL-001"), JOINT_FORM, intake="lead_intake")
IMMEDIATE = Flow("immediate", ("MR-003",), MR003_FORM, person=True)
FLOWS = (SINGLE, JOINT, IMMEDIATE)
EVERY_MATERIAL = [pytest.param(f, c, id=f"{f.name}-{c}") for f in FLOWS for c in f.codes()]


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:
    clock.set(shanghai(2025, 9, 29, 9))
    return services_on(db, clock)


def submit(svc: Services, flow: Flow, *, without: tuple[str, ...] = ()) -> str:
    """An application of ``flow`` with every paper handed in except ``without``."""
    if flow.person:
        applicant_id, name = PERSON.resident_id, PERSON.name
    else:
        org = org_with(svc, {"business_licence"}, {"food_business_licence"})
        applicant_id, name = org.credit_code, org.name
    provided = {
        item: [m.code for m in CATALOGUE.get(item).materials if m.code not in without] for item in flow.items
    }
    app = Application(
        applicant_id,
        name,
        list(flow.items),
        form=dict(flow.form),
        provided=provided,
        lead_department="market" if len(flow.items) > 1 else None,
    )
    return svc.cases.submit(app, "applicant")


def case_row(svc: Services, case_id: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        return dict(conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping)


def states(svc: Services, case_id: str) -> dict[str, set[str]]:
    """Material code -> its states (a code several items require has a row per item)."""
    out: dict[str, set[str]] = {}
    with svc.engine.connect() as conn:
        for code, state in conn.execute(
            select(case_materials.c.code, case_materials.c.state).where(case_materials.c.case_id == case_id)
        ):
            out.setdefault(code, set()).add(state)
    return out


def case_clocks_of(svc: Services, case_id: str) -> dict[str, Clock]:
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(case_clocks.c.kind, case_clocks.c.clock).where(
                case_clocks.c.case_id == case_id, case_clocks.c.task_id.is_(None)
            )
        ).all()
    assert len(rows) == len({kind for kind, _ in rows}), "one legal and one promised clock, never twice"
    return {kind: Clock.from_dict(clock) for kind, clock in rows}


def status_events(svc: Services, case_id: str) -> list[dict[str, Any]]:
    with svc.engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log.c.detail)
                .where(audit_log.c.business_key == case_id, audit_log.c.action == "case_status")
                .order_by(audit_log.c.id)
            ).scalars()
        )


def other_code(flow: Flow, code: str) -> str:
    return next(c for c in flow.codes() if c != code)


# ---------------------------------------------------------------------- the one-time notice
@pytest.mark.parametrize(("flow", "code"), EVERY_MATERIAL)
def test_a_notice_must_name_every_missing_material_and_may_name_more(
    svc: Services, flow: Flow, code: str
) -> None:
    case_id = submit(svc, flow, without=(code,))
    extra = other_code(flow, code)  # handed in, but the officer finds it defective
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, flow.intake, decision="supplement", missing_materials=[extra], reason="缺材料")
    assert err.value.code == "notice_incomplete" and err.value.detail["field"] == "missing_materials"
    assert err.value.detail["materials"] == [code]
    assert code in err.value.message
    assert case_row(svc, case_id)["status"] == "submitted"

    do(svc, case_id, flow.intake, decision="supplement", missing_materials=[extra, code], reason="缺材料")
    after = states(svc, case_id)
    assert after[code] == {"missing"} and after[extra] == {"rejected"}
    assert case_row(svc, case_id)["status"] == "supplement_requested"


@pytest.mark.parametrize(
    ("flow", "unknown"),
    [
        (SINGLE, "no_such_material"),
        (SINGLE, "hygiene_test"),  # a material of HE-001, which this case did not apply for
        (IMMEDIATE, "layout_plan"),  # a material of MR-001
        (JOINT, "articles"),  # a material of MR-002
    ],
)
def test_a_notice_or_a_supplement_naming_a_material_the_items_do_not_require_is_refused(
    svc: Services, flow: Flow, unknown: str
) -> None:
    missing = flow.codes()[-1]
    case_id = submit(svc, flow, without=(missing,))
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, flow.intake, decision="supplement", missing_materials=[missing, unknown])
    assert err.value.code == "unknown_material" and err.value.detail["field"] == "missing_materials"
    assert err.value.detail["materials"] == [unknown]
    do(svc, case_id, flow.intake, decision="supplement", missing_materials=[missing])
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, "supplement", actor="applicant", supplied_materials=[missing, unknown])
    assert err.value.code == "unknown_material" and err.value.detail["field"] == "supplied_materials"
    assert err.value.detail["materials"] == [unknown]


@pytest.mark.parametrize("flow", [SINGLE, JOINT], ids=lambda f: f.name)
def test_a_second_round_names_what_is_still_outstanding_and_may_reject_again(
    svc: Services, flow: Flow
) -> None:
    defective, absent = flow.codes()[0], flow.codes()[-1]
    case_id = submit(svc, flow, without=(absent,))
    do(svc, case_id, flow.intake, decision="supplement", missing_materials=[defective, absent])
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=[defective])  # not yet ``absent``
    assert states(svc, case_id)[defective] == {"supplied"} and states(svc, case_id)[absent] == {"missing"}
    # round two: the supplied paper is defective again; the notice must still name what never came
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, flow.intake, decision="supplement", missing_materials=[defective])
    assert err.value.code == "notice_incomplete" and err.value.detail["materials"] == [absent]
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, flow.intake, decision="accept", opinion="受理")
    assert err.value.code == "materials_incomplete"
    assert set(err.value.detail["materials"]) == {absent}
    do(svc, case_id, flow.intake, decision="supplement", missing_materials=[defective, absent])
    assert states(svc, case_id)[defective] == {"rejected"}  # handed in twice, defective twice
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=[absent])
    with pytest.raises(InvalidInput) as err:  # a notified material is still outstanding: no acceptance
        do(svc, case_id, flow.intake, decision="accept", opinion="受理")
    assert err.value.code == "materials_incomplete" and err.value.detail["materials"] == [defective]
    assert case_row(svc, case_id)["status"] == "submitted" and case_clocks_of(svc, case_id) == {}
    do(svc, case_id, flow.intake, decision="supplement", missing_materials=[defective])
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=[defective])
    do(svc, case_id, flow.intake, decision="accept", opinion="受理")
    assert case_row(svc, case_id)["accepted_at"] is not None
    assert set(case_clocks_of(svc, case_id)) == {"legal", "promised"}


# ---------------------------------------------------------------------- acceptance
@pytest.mark.parametrize(("flow", "code"), EVERY_MATERIAL)
def test_no_acceptance_while_a_material_is_missing_in_any_flow(svc: Services, flow: Flow, code: str) -> None:
    case_id = submit(svc, flow, without=(code,))
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, flow.intake, decision="accept", opinion="受理")
    assert err.value.code == "materials_incomplete" and err.value.detail["materials"] == [code]
    assert err.value.detail.get("key_materials", []) == ([code] if flow.is_key(code) else [])
    assert code in err.value.message
    row = case_row(svc, case_id)
    assert row["status"] == "submitted" and row["accepted_at"] is None
    assert case_clocks_of(svc, case_id) == {}
    # handed in on the spot (当场补正): now the case may be accepted
    svc.cases.supply_materials(case_id, [code], "applicant")
    do(svc, case_id, flow.intake, decision="accept", opinion="受理")
    assert case_row(svc, case_id)["accepted_at"] is not None


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_no_path_around_the_intake_form_accepts_an_incomplete_case(svc: Services, flow: Flow) -> None:
    """The engine's own command (no form, no case service) still cannot make the case accepted."""
    missing = flow.codes()[0]
    case_id = submit(svc, flow, without=(missing,))
    task_id = ready(svc, case_id)[flow.intake]["id"]
    with pytest.raises(InvalidInput) as err:
        svc.workflow.complete_task(task_id, {"decision": "accept", "opinion": ""}, "officer")
    assert err.value.code == "materials_incomplete" and err.value.detail["materials"] == [missing]
    assert case_row(svc, case_id)["status"] == "submitted" and flow.intake in ready(svc, case_id)


TOLERATED = [m.code for m in CATALOGUE.get("MR-001").minor_materials]


@pytest.mark.parametrize("omitted", TOLERATED)
def test_tolerant_acceptance_lets_only_committed_minor_materials_wait(
    svc: Services, clock: FakeClock, omitted: str
) -> None:
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    clock.set(shanghai(2026, 2, 11, 10))
    app = Application(
        org.credit_code,
        org.name,
        ["MR-001"],
        form=dict(FOOD_FORM),
        tolerant=True,
        provided={"MR-001": ["application", "legal_rep_id"]},
    )
    case_id = svc.cases.submit(app, "applicant")
    task_id = ready(svc, case_id)["commitment"]["id"]
    letter = {"promised_date": "2026-02-24", "signed": True}
    fewer = [c for c in TOLERATED if c != omitted]
    with pytest.raises(InvalidInput) as err:  # the engine's own command: the status change refuses it
        svc.workflow.complete_task(task_id, {**letter, "missing_materials": fewer}, "applicant")
    assert err.value.code == "materials_incomplete" and err.value.detail["materials"] == [omitted]
    assert case_row(svc, case_id)["accepted_at"] is None
    svc.workflow.complete_task(task_id, {**letter, "missing_materials": TOLERATED}, "applicant")
    assert case_row(svc, case_id)["accepted_at"] is not None


def test_a_joint_application_is_never_accepted_tolerantly(svc: Services) -> None:
    """Tolerant acceptance runs one item under a commitment and a supplement deadline; a joint approval has
    neither: asked for several items it is refused, before any case exists (it was received as a joint
    approval holding the minor materials as tolerated, which no letter could accept and no supplement
    cleared: the case could only be refused)."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    key_only = {item: [m.code for m in CATALOGUE.get(item).materials if m.key] for item in JOINT.items}
    every = {item: [m.code for m in CATALOGUE.get(item).materials] for item in JOINT.items}
    for provided in (key_only, every):
        app = Application(
            org.credit_code,
            org.name,
            list(JOINT.items),
            form=dict(JOINT.form),
            provided=provided,
            lead_department="market",
            tolerant=True,
        )
        with pytest.raises(InvalidInput) as refused:
            svc.cases.submit(app, "window")
        assert refused.value.code == "tolerance_not_joint"
        assert refused.value.detail["field"] == "tolerant"
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).all() == []


# ---------------------------------------------------------------------- refusal
@pytest.mark.parametrize("reason", [None, "", " ", "\n\t　"])
def test_a_refusal_needs_a_reason(svc: Services, reason: str | None) -> None:
    case_id = submit(svc, SINGLE)
    data = {"decision": "refuse"} if reason is None else {"decision": "refuse", "reason": reason}
    with pytest.raises(InvalidInput) as err:
        do(svc, case_id, "intake", **data)
    assert err.value.code in ("invalid_form", "reason_required")
    assert "reason" in str(err.value.to_dict())
    assert case_row(svc, case_id)["status"] == "submitted"
    do(svc, case_id, "intake", decision="refuse", reason="不属于本机关职权范围")
    assert case_row(svc, case_id)["status_reason"] == "不属于本机关职权范围"


# ---------------------------------------------------------------------- deemed acceptance (art. 32)
NOTICE_PERIODS = [
    # receipt (Beijing), last instant a notice is in time: the end of the 5th working day after the day
    # of receipt (holidays and weekends skipped, adjusted workdays counted)
    pytest.param(shanghai(2025, 9, 30, 9), shanghai(2025, 10, 15, 0), id="national-day-2025"),
    pytest.param(shanghai(2025, 11, 3, 16), shanghai(2025, 11, 11, 0), id="ordinary-week"),
    pytest.param(shanghai(2026, 2, 11, 10), shanghai(2026, 2, 26, 0), id="spring-festival-2026"),
]
LATE_FLOWS = [pytest.param(SINGLE, id="single_window"), pytest.param(JOINT, id="joint_approval")]


@pytest.mark.parametrize("flow", LATE_FLOWS)
@pytest.mark.parametrize(("received", "deadline"), NOTICE_PERIODS)
def test_no_notice_within_five_working_days_counts_as_accepted_from_the_day_of_receipt(
    svc: Services, clock: FakeClock, flow: Flow, received: datetime, deadline: datetime
) -> None:
    clock.set(received)
    missing = flow.codes()[-1]
    case_id = submit(svc, flow, without=(missing,))  # incomplete, and nobody tells the applicant
    worker = make_worker(svc, "w1")
    clock.set(deadline - timedelta(minutes=1))
    worker.run_once()
    assert case_row(svc, case_id)["accepted_at"] is None and case_clocks_of(svc, case_id) == {}

    clock.set(deadline + timedelta(minutes=1))
    worker.run_once()
    row = case_row(svc, case_id)
    assert row["status"] == "accepted" and row["accepted_at"] == received
    assert "第三十二条" in row["status_reason"] and "即为受理" in row["status_reason"]
    clocks = case_clocks_of(svc, case_id)
    assert set(clocks) == {"legal", "promised"}
    assert all(c.started_at == received and not c.pauses for c in clocks.values())
    items = [CATALOGUE.get(i) for i in flow.items]
    joint = max(i.joint_limit_days for i in items)
    assert clocks["promised"].limit_days == (joint if len(items) > 1 else items[0].promised_limit_days)
    [event] = [e for e in status_events(svc, case_id) if e.get("deemed")]
    assert event["to"] == "accepted" and "第三十二条" in event["reason"]
    assert event["received_at"] == received.isoformat()
    before = {k: c.to_dict() for k, c in clocks.items()}
    worker.run_once()  # once only
    assert len([e for e in status_events(svc, case_id) if e.get("deemed")]) == 1

    # a late notice cannot stop or reset the clock, nor can a late refusal; accepting moves on
    for late in (
        {"decision": "supplement", "missing_materials": [missing], "reason": "缺材料"},
        {"decision": "refuse", "reason": "不属于本机关职权范围"},
    ):
        with pytest.raises(Conflict) as err:
            do(svc, case_id, flow.intake, **late)
        assert err.value.code == "deemed_accepted" and "第三十二条" in err.value.message
    assert {k: c.to_dict() for k, c in case_clocks_of(svc, case_id).items()} == before
    do(svc, case_id, flow.intake, decision="accept", opinion="受理")  # the law accepted it already
    row = case_row(svc, case_id)
    assert row["status"] == "under_review" and row["accepted_at"] == received
    assert {k: c.to_dict() for k, c in case_clocks_of(svc, case_id).items()} == before
    if flow is SINGLE:  # the review's escalation timer counts from the receipt too, as the clocks do
        with svc.engine.connect() as conn:
            due = conn.execute(
                select(timers.c.due_at).where(
                    timers.c.element_id == "review_timer", timers.c.fired_at.is_(None)
                )
            ).scalar_one()
        assert due == clocks["promised"].due_at(svc.calendar())


@pytest.mark.parametrize(("received", "deadline"), NOTICE_PERIODS)
def test_an_officer_acting_late_gets_the_deemed_acceptance_before_the_worker(
    svc: Services, clock: FakeClock, received: datetime, deadline: datetime
) -> None:
    clock.set(received)
    case_id = submit(svc, SINGLE, without=(SINGLE.codes()[0],))
    clock.set(deadline)  # the first instant after the notice period
    with pytest.raises(Conflict) as err:
        do(svc, case_id, "intake", decision="supplement", missing_materials=[SINGLE.codes()[0]])
    assert err.value.code == "deemed_accepted"
    do(svc, case_id, "intake", decision="accept", opinion="受理")
    row = case_row(svc, case_id)
    assert row["accepted_at"] == received and row["status"] == "under_review"
    assert {c.started_at for c in case_clocks_of(svc, case_id).values()} == {received}
    assert [e["to"] for e in status_events(svc, case_id)] == ["accepted", "under_review"]


@pytest.mark.parametrize(("received", "deadline"), NOTICE_PERIODS)
def test_a_notice_in_time_keeps_the_clock_unstarted_and_a_resubmission_opens_a_new_period(
    svc: Services, clock: FakeClock, received: datetime, deadline: datetime
) -> None:
    clock.set(received)
    missing = SINGLE.codes()[-1]
    case_id = submit(svc, SINGLE, without=(missing,))
    clock.set(deadline - timedelta(minutes=1))
    do(svc, case_id, "intake", decision="supplement", missing_materials=[missing], reason="缺材料")
    worker = make_worker(svc, "w1")
    clock.set(deadline + timedelta(days=30))  # the applicant takes their time: no clock runs
    worker.run_once()
    assert case_row(svc, case_id)["accepted_at"] is None and case_clocks_of(svc, case_id) == {}
    resubmitted = clock.now
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=[missing])
    cal = svc.calendar()
    second = notice_deadline(resubmitted, cal)
    assert cal.working_days_between(resubmitted, second - timedelta(minutes=1)) == 5
    clock.set(second - timedelta(minutes=1))
    worker.run_once()
    assert case_row(svc, case_id)["accepted_at"] is None
    clock.set(second)
    worker.run_once()
    row = case_row(svc, case_id)
    assert row["status"] == "accepted" and row["accepted_at"] == resubmitted


@pytest.mark.parametrize(("received", "deadline"), NOTICE_PERIODS[:1])
def test_a_worker_deeming_the_case_accepted_while_an_officer_accepts_it_leaves_one_acceptance(
    pg, clock: FakeClock, received: datetime, deadline: datetime
) -> None:
    """The officer's command reads the task and the case row before any lock; the worker deems the case
    accepted and commits before the officer's step takes the instance lock. The officer's step must then
    work on the case as the worker left it: accepted from the day of receipt, its clocks opened once."""
    clock.set(received)
    svc = services_on(pg, clock)
    case_id = submit(svc, SINGLE)
    clock.set(deadline)
    intake = ready(svc, case_id)["intake"]
    worker = make_worker(svc, "w1")

    def find(conn: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        found = read_task_with_case(conn, intake["id"])  # the officer's read, as the desk's
        worker.run_once()  # the worker's own transaction, committed now (the officer holds no lock yet)
        return found

    svc.cases.complete_task(intake["id"], {"decision": "accept", "opinion": "受理"}, "officer", find=find)
    row = case_row(svc, case_id)
    assert row["status"] == "under_review" and row["accepted_at"] == received
    clocks = case_clocks_of(svc, case_id)
    assert sorted(c.kind for c in clocks.values()) == ["legal", "promised"]
    assert {c.started_at for c in clocks.values()} == {received}
    assert [e["to"] for e in status_events(svc, case_id)] == ["accepted", "under_review"]
