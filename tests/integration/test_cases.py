"""Cases through the whole stack (catalogue, forms, licence library, BPMN, clocks) on a real database.

Time is injected: the clock is moved across real holidays (National Day 2025, Spring Festival 2026).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.bootstrap import Services
from engine.cases.access import Viewer
from engine.errors import Conflict, InvalidInput
from engine.persistence.tables import audit_log, case_clocks, case_materials, escalations, tasks, timers
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on


def shanghai(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:
    clock.set(shanghai(2025, 9, 29, 9))
    return services_on(db, clock)


def org_with(svc: Services, has: set[str], lacks: set[str] = frozenset()):  # type: ignore[assignment]
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        for org in demo_organisations():
            types = {lic.type_code for lic in lib.by_holder(org.credit_code)}
            if has <= types and not (lacks & types):
                return org
    raise AssertionError("no demo organisation fits")


def every_material(svc: Services, *items: str) -> dict[str, list[str]]:
    """Every required material of the items handed in (a valid licence still stands in where it can)."""
    return {code: [m.code for m in svc.catalogue.get(code).materials] for code in items}


def ready(svc: Services, case_id: str) -> dict[str, dict]:
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(tasks).where(tasks.c.business_key == case_id, tasks.c.state == "ready")
        ).all()
    return {r.element_id: dict(r._mapping) for r in rows}


def branches(svc: Services, case_id: str) -> dict[str, str]:
    """The ready joint-review branches of a case by department (task id)."""
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(tasks.c.id, tasks.c.candidate_groups).where(
                tasks.c.business_key == case_id,
                tasks.c.state == "ready",
                tasks.c.element_id == "joint_review",
            )
        ).all()
    return {groups.strip(","): task_id for task_id, groups in rows}


def do(svc: Services, case_id: str, element: str, actor: str = "officer", **data) -> None:
    task = ready(svc, case_id)[element]
    svc.cases.complete_task(task["id"], data, actor)


def statuses(svc: Services, case_id: str) -> list[str]:
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.detail)
            .where(audit_log.c.business_key == case_id, audit_log.c.action == "case_status")
            .order_by(audit_log.c.id)
        ).scalars()
        return [d["to"] for d in rows]


JOINT_FORM = {
    **FOOD_FORM,
    "project_name": "门店装修改造工程",
    "project_address": "福州市鼓楼区五四路1号",
    "construction_scale": "建筑面积320平方米",
}


def tolerant_food_case(svc: Services, clock: FakeClock, org, *, sign: bool = True) -> str:
    """A food business licence applied for under tolerance on 11 Feb 2026 (before Spring Festival), with
    only the key materials handed in; the applicant signs the commitment unless ``sign`` is false."""
    from engine.cases.intake import Application

    clock.set(shanghai(2026, 2, 11, 10))
    provided = {"MR-001": ["application", "legal_rep_id"]}
    app = Application(
        org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), tolerant=True, provided=provided
    )
    case_id = svc.cases.submit(app, "a")
    if sign:
        sign_commitment(svc, case_id)
    return case_id


def sign_commitment(svc: Services, case_id: str) -> None:
    missing = ["layout_plan", "safety_rules", "manager_health"]
    do(
        svc,
        case_id,
        "commitment",
        actor="applicant",
        missing_materials=missing,
        promised_date="2026-02-25",
        signed=True,
    )


def test_a_pre_filled_value_the_applicant_changed_is_kept_as_changed_with_the_licence_value(
    svc: Services,
) -> None:
    """The officer sees the source of every pre-filled field; one the applicant changed says so, with the
    value the licence gave, not as if the licence vouched for what was typed."""
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence", "food_business_licence"})
    with svc.engine.connect() as conn:
        form = svc.cases.application_form(["MR-001"])
        filled = svc.cases.prefill(conn, form, org.credit_code, org.name)
    assert filled.values["premises"] != "另一处经营场所"
    typed = {**FOOD_FORM, "premises": "另一处经营场所", "main_business": filled.values["main_business"]}
    provided = every_material(svc, "MR-001")
    application = Application(org.credit_code, org.name, ["MR-001"], form=typed, provided=provided)
    case_id = svc.cases.submit(application, "applicant")
    kept = svc.cases.track(case_id)["case"]["autofill"]
    assert "modified" not in kept["credit_code"] and "modified" not in kept["main_business"]
    premises = kept["premises"]
    assert premises["source"] == "licence" and premises["licence_type"] == "food_business_licence"
    assert premises["modified"] is True and premises["original"] == filled.values["premises"]
    original = filled.values["premises"]
    assert premises["badge"].startswith(f"申请人已修改（原值「{original}」，取自食品经营许可证")


def test_food_licence_case_from_prefilled_form_to_issued_licence_and_next_prefill(
    svc: Services, clock
) -> None:
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            ["MR-001"],
            channel="online",
            form=dict(FOOD_FORM),
            provided={
                "MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]
            },
        ),
        "applicant",
    )
    track = svc.cases.track(case_id)
    case = track["case"]
    # the form was pre-filled from the business licence, with provenance
    assert case["form_data"]["operator_name"] == org.name
    assert case["autofill"]["credit_code"]["licence_type"] == "business_licence"
    mats = {m["code"]: m for m in track["materials"]}
    assert (
        mats["business_licence"]["state"] == "satisfied_by_licence" and mats["business_licence"]["licence_id"]
    )
    assert mats["layout_plan"]["state"] == "provided"

    do(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    assert set(ready(svc, case_id)) == {"review"}
    assert ready(svc, case_id)["review"]["candidate_groups"] == ",market,"
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="准予许可")
    track = svc.cases.track(case_id)
    assert track["case"]["status"] == "approved"
    [licence_id] = track["case"]["licence_ids"]
    do(svc, case_id, "delivery", delivery_method="online", delivered_on="2025-09-29")
    assert statuses(svc, case_id) == ["accepted", "under_review", "approved", "delivered"]

    with svc.engine.connect() as conn:
        issued = LicenceLibrary(conn).get(licence_id)
        assert issued.type_code == "food_business_licence" and issued.source_case == case_id
        assert LicenceLibrary(conn).verify(licence_id).ok
        # the next application of the same holder pre-fills from the licence just issued
        again = svc.cases.prefill(conn, "apply.food_business", org.credit_code, org.name)
    assert again.values["business_items"] == "热食类食品制售"
    assert again.provenance["business_items"].licence_id == licence_id


def test_expired_licence_is_not_used_and_the_reason_is_shown(svc: Services) -> None:
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        expired = [
            lic
            for org in demo_organisations()
            for lic in lib.by_holder(org.credit_code)
            if lic.type_code == "food_business_licence"
            and lic.effective_status(datetime(2025, 9, 29).date()) == "expired"
        ]
        assert expired, "the demo data has an expired food business licence"
        lic = expired[0]
        has_valid = [
            x
            for x in lib.by_holder(lic.holder_id)
            if x.type_code == "food_business_licence"
            and x.effective_status(datetime(2025, 9, 29).date()) == "valid"
        ]
        assert not has_valid
        filled = svc.cases.prefill(conn, "apply.food_business", lic.holder_id, lic.holder_name)
    assert "business_items" not in filled.values
    reasons = [r.message_zh for r in filled.skipped.get("business_items", [])]
    assert reasons and "过期" in reasons[0]


def test_refusal_supplement_and_clock_not_started_before_acceptance(svc: Services, clock) -> None:
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            ["MR-001"],
            channel="counter",
            form=dict(FOOD_FORM),
            provided={"MR-001": ["application", "legal_rep_id", "layout_plan", "manager_health"]},
        ),
        "window-1",
    )
    do(
        svc,
        case_id,
        "intake",
        decision="supplement",
        missing_materials=["layout_plan", "safety_rules"],
        reason="缺材料",
    )
    assert svc.cases.track(case_id)["case"]["status"] == "supplement_requested"
    states = {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]}
    assert states["layout_plan"] == "rejected"  # handed in but defective, named in the one-time notice
    assert states["safety_rules"] == "missing" and states["application"] == "provided"
    with svc.engine.connect() as conn:
        assert conn.execute(select(case_clocks).where(case_clocks.c.task_id.is_(None))).all() == []
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=["layout_plan", "safety_rules"])
    states = {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]}
    assert states["layout_plan"] == states["safety_rules"] == "supplied"
    # a second notice may reject what was supplied: it is pending again
    do(
        svc,
        case_id,
        "intake",
        decision="supplement",
        missing_materials=["layout_plan"],
        reason="平面图不清晰",
    )
    assert {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]}["layout_plan"] == "rejected"
    do(svc, case_id, "supplement", actor="applicant", supplied_materials=["layout_plan"])
    do(svc, case_id, "intake", decision="refuse", reason="不属于本机关职权范围")
    track = svc.cases.track(case_id)
    assert track["case"]["status"] == "refused"
    assert track["case"]["status_reason"] == "不属于本机关职权范围"
    assert statuses(svc, case_id) == [
        "supplement_requested",
        "submitted",
        "supplement_requested",
        "submitted",
        "refused",
    ]


def test_a_case_sent_back_for_supplements_more_times_than_the_model_keeps_statuses_moves_through_each(
    svc: Services,
) -> None:
    """The models keep the last ten status entries, numbered (DESIGN rule 5): twelve 补正 rounds pass
    25 statuses; the case applies each one once, by its number, and its row holds the last number."""
    from engine.cases.intake import Application
    from engine.persistence.tables import cases

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    full = every_material(svc, "MR-001")
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=full), "a"
    )
    for round_ in range(12):
        do(
            svc,
            case_id,
            "intake",
            decision="supplement",
            missing_materials=["layout_plan"],
            reason=f"第{round_}次",
        )
        do(svc, case_id, "supplement", actor="applicant", supplied_materials=["layout_plan"])
    do(svc, case_id, "intake", decision="accept", opinion="齐全")
    assert statuses(svc, case_id) == ["supplement_requested", "submitted"] * 12 + ["accepted", "under_review"]
    assert svc.cases.track(case_id)["case"]["status"] == "under_review"
    with svc.engine.connect() as conn:
        assert conn.execute(select(cases.c.status_seq).where(cases.c.id == case_id)).scalar_one() == 27


def test_case_clock_across_national_day_pauses_for_special_procedure_and_raises_cards_once(
    svc: Services, clock
) -> None:
    from engine.cases.clocks import tick_clocks
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    clock.set(shanghai(2025, 9, 30, 9))
    full = every_material(svc, "MR-001")
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=full), "a"
    )
    do(svc, case_id, "intake", decision="accept", opinion="齐全")
    promised = [c for c in svc.cases.track(case_id)["clocks"] if c["kind"] == "promised"][0]
    # 10 working days from 30 Sep 2025 skip the National Day holiday (1-8 Oct) and count Sat 11 Oct:
    # 9, 10, 11, 13, 14, 15, 16, 17, 20, 21 Oct -> due at the end of 21 Oct (Beijing)
    assert promised["due_at"] == "2025-10-21T16:00:00+00:00"

    clock.set(shanghai(2025, 10, 9, 10))
    do(
        svc,
        case_id,
        "review",
        result="pass",
        opinion="需检验",
        needs_special_procedure=True,
        special_kind="testing",
    )
    clocks = {c["kind"]: c for c in svc.cases.track(case_id)["clocks"]}
    assert clocks["promised"]["paused"] is True
    clock.set(shanghai(2025, 10, 14, 10))
    do(
        svc,
        case_id,
        "special_procedure",
        kind="testing",
        result="合格",
        started_on="2025-09-30",  # the officer's dates are a record: they move no clock nor timer
        finished_on="2025-10-14",
    )
    clocks = {c["kind"]: c for c in svc.cases.track(case_id)["clocks"]}
    assert clocks["promised"]["paused"] is False
    # paused when 9, 10, 11 and 13 Oct ended: four working days later than before -> end of 27 Oct
    assert clocks["promised"]["due_at"] == "2025-10-27T16:00:00+00:00"
    with svc.engine.connect() as conn:  # the review's escalation timer follows the same suspension
        due = conn.execute(
            select(timers.c.due_at).where(timers.c.element_id == "review_timer", timers.c.fired_at.is_(None))
        ).scalar_one()
    assert due.isoformat() == clocks["promised"]["due_at"]

    clock.set(shanghai(2025, 10, 23, 10))  # 7 working days used of 10: still normal
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") == 0
    clock.set(shanghai(2025, 10, 24, 10))  # 8 of 10 used (80%): yellow card, raised once
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") >= 1
    assert tick_clocks(svc.engine, clock, svc.calendar, "w2") == 0
    clock.set(shanghai(2025, 10, 28, 9))  # past the promised limit: red, escalated once
    raised = tick_clocks(svc.engine, clock, svc.calendar, "w1") + tick_clocks(
        svc.engine, clock, svc.calendar, "w2"
    )
    assert raised >= 1
    with svc.engine.connect() as conn:
        levels = conn.execute(
            select(escalations.c.level, case_clocks.c.kind)
            .join(case_clocks, case_clocks.c.id == escalations.c.clock_id)
            .where(escalations.c.case_id == case_id)
        ).all()
    assert ("red", "promised") in levels and ("yellow", "promised") in levels
    assert len(levels) == len(set(levels))
    assert {c["kind"]: c["status"] for c in svc.cases.track(case_id)["clocks"] if c["task_id"] is None} == {
        "legal": "normal",
        "promised": "red",
    }


def test_tolerant_acceptance_needs_key_materials_and_terminates_when_deadline_missed(
    svc: Services, clock
) -> None:
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    with pytest.raises(InvalidInput) as err:
        svc.cases.submit(
            Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), tolerant=True), "a"
        )
    assert err.value.code == "key_materials_missing"  # the application form itself is a key material
    with pytest.raises(InvalidInput) as err:
        svc.cases.submit(Application(org.credit_code, org.name, ["MR-003"], form={}, tolerant=True), "a")
    assert err.value.code in ("tolerance_not_allowed", "invalid_form")

    case_id = tolerant_food_case(svc, clock, org, sign=False)
    mats = {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]}
    assert mats["layout_plan"] == "missing_tolerated"
    sign_commitment(svc, case_id)
    assert svc.cases.track(case_id)["case"]["status"] in ("accepted", "under_review")
    # the deadline runs over Spring Festival 2026: nothing happens on the holiday
    clock.set(shanghai(2026, 2, 20, 10))
    assert svc.workflow.fire_due_timers("w1") == 0
    clock.set(shanghai(2026, 3, 3, 10))
    assert svc.workflow.fire_due_timers("w1") == 1
    track = svc.cases.track(case_id)
    assert track["case"]["status"] == "terminated"
    assert track["case"]["status_reason"]
    with pytest.raises(Conflict):
        svc.cases.supply_materials(case_id, ["layout_plan"], "applicant")


def test_rating_only_after_close_once_and_bad_ratings_need_a_reason(svc: Services) -> None:
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = svc.cases.submit(Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM)), "a")
    with pytest.raises(Conflict):
        svc.cases.rate(case_id, 5, "", rater=org.credit_code)
    do(svc, case_id, "intake", decision="refuse", reason="不符合受理条件")
    with pytest.raises(InvalidInput):
        svc.cases.rate(case_id, 1, " ", rater=org.credit_code)
    svc.cases.rate(case_id, 2, "等候时间长", rater=org.credit_code)
    with pytest.raises(Conflict):
        svc.cases.rate(case_id, 5, "", rater=org.credit_code)
    assert svc.cases.track(case_id)["case"]["rating"] == 2
    with pytest.raises(InvalidInput):
        svc.cases.track(case_id[:-1] + str((int(case_id[-1]) + 1) % 10))


def tolerant_hr_case_delivered_early(svc: Services, clock) -> tuple[Any, str, str]:
    """An organisation's tolerant HR-001 case (an item that does not hold its licence until the tolerated
    materials come), approved and delivered on 11 Feb 2026 with its commitment still running: the
    organisation, the case and the licence released."""
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"hr_service_licence"})
    item = svc.catalogue.get("HR-001")
    assert item.tolerant_allowed and not item.hold_licence_until_supplied
    clock.set(shanghai(2026, 2, 11, 10))
    form = {
        "address": "福州市鼓楼区五四路1号",
        "contact_phone": "13800138000",
        "request": "申请人力资源服务许可",
    }
    key = [m.code for m in item.key_materials if not m.licence_type]
    case_id = svc.cases.submit(
        Application(
            org.credit_code, org.name, ["HR-001"], form=form, tolerant=True, provided={"HR-001": key}
        ),
        "a",
    )
    do(
        svc,
        case_id,
        "commitment",
        actor="applicant",
        missing_materials=[m.code for m in item.minor_materials],
        promised_date="2026-02-25",
        signed=True,
    )
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="准予许可")
    [licence_id] = svc.cases.track(case_id)["case"]["licence_ids"]
    do(svc, case_id, "delivery_early", delivery_method="window", delivered_on="2026-02-11")
    assert svc.cases.track(case_id)["case"]["status"] == "delivered"
    return org, case_id, licence_id


@pytest.mark.parametrize("suspended_meanwhile", [False, True])
def test_tolerant_licence_released_early_is_revoked_when_the_commitment_is_broken(
    svc: Services, clock, suspended_meanwhile: bool
) -> None:
    """Also when it was suspended meanwhile: left suspended, it could be reinstated after the case ended."""
    _, case_id, licence_id = tolerant_hr_case_delivered_early(svc, clock)
    if suspended_meanwhile:
        with svc.engine.begin() as conn:
            LicenceLibrary(conn, clock=clock).suspend(licence_id, "责令停业整顿", "执法一队")
    clock.set(shanghai(2026, 3, 3, 10))
    assert svc.workflow.fire_due_timers("w1") == 1
    assert svc.cases.track(case_id)["case"]["status"] == "terminated"
    with svc.engine.connect() as conn:
        assert LicenceLibrary(conn).get(licence_id).status == "revoked"


def test_a_tolerant_case_delivered_before_its_supply_still_takes_the_tolerated_materials(
    svc: Services, clock, tmp_path
) -> None:
    """The licence of an item that does not hold it (HR-001) is released and delivered at approval, the
    commitment still running: the applicant uploads and supplies the tolerated materials in time, the
    case is complete and the deadline terminates nothing (the delivered case refused every upload and
    supply as closed, so the broken commitment was certain and the licence revoked)."""
    import io

    from engine.cases.applicant_tasks import supplement_materials
    from engine.cases.files import CaseFiles

    org, case_id, licence_id = tolerant_hr_case_delivered_early(svc, clock)
    minor = [m.code for m in svc.catalogue.get("HR-001").minor_materials]
    clock.set(shanghai(2026, 2, 13, 10))
    files = CaseFiles(svc.engine, svc.clock, tmp_path, 1_000_000)
    for code in minor:
        files.store(
            case_id,
            code,
            f"{code}.pdf",
            io.BytesIO(b"%PDF-1.7\n%%EOF\n"),
            holder_id=org.credit_code,
            actor="a",
        )
    how = supplement_materials(svc.cases, case_id, minor, "", holder_id=org.credit_code, actor="applicant")
    assert how == "supply"
    with svc.engine.connect() as conn:
        states = conn.execute(select(case_materials.c.state).where(case_materials.c.case_id == case_id))
        assert "missing_tolerated" not in set(states.scalars())
    clock.set(shanghai(2026, 3, 3, 10))
    assert svc.workflow.fire_due_timers("w1") == 0
    assert svc.cases.track(case_id)["case"]["status"] == "delivered"
    with svc.engine.connect() as conn:
        assert LicenceLibrary(conn).get(licence_id).status == "valid"
    with pytest.raises(Conflict) as closed:  # complete now: closed to further supplies and uploads
        files.store(
            case_id,
            minor[0],
            "again.pdf",
            io.BytesIO(b"%PDF-1.7\n%%EOF\n"),
            holder_id=org.credit_code,
            actor="a",
        )
    assert closed.value.code == "case_closed"


def test_a_licence_not_yet_in_force_does_not_stand_in_for_a_material(svc: Services, clock) -> None:
    """Autofill skips a licence whose validity has not begun; the material check judged it the same way
    only by status and end date, so it stood in for the business licence the applicant did not hand in."""
    from sqlalchemy import update

    from engine.cases.intake import Application
    from licence.tables import licences

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    with svc.engine.begin() as conn:
        conn.execute(
            update(licences)
            .where(licences.c.holder_id == org.credit_code, licences.c.type_code == "business_licence")
            .values(valid_from=datetime(2026, 1, 1).date())
        )
    provided = {"MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]}
    form = {**FOOD_FORM, "operator_name": org.name, "credit_code": org.credit_code}
    form |= {"legal_representative": "张三", "address": "福州市鼓楼区"}
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=form, provided=provided), "a"
    )
    mats = {m["code"]: m for m in svc.cases.track(case_id)["materials"]}
    assert mats["business_licence"]["state"] == "missing" and mats["business_licence"]["licence_id"] is None


def test_tolerated_materials_are_supplied_under_the_commitment_not_before_it(svc: Services, clock) -> None:
    """Before the commitment is signed the case is not accepted: a supply is refused and changes nothing
    (it made the commitment impossible to sign, so the case stayed submitted for good)."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org, sign=False)
    before = {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]}
    with pytest.raises(Conflict) as refused:
        svc.cases.supply_materials(case_id, ["layout_plan", "safety_rules", "manager_health"], "applicant")
    assert refused.value.code == "case_not_accepted" and refused.value.detail["status"] == "submitted"
    assert {m["code"]: m["state"] for m in svc.cases.track(case_id)["materials"]} == before
    sign_commitment(svc, case_id)
    assert svc.cases.supply_materials(case_id, ["layout_plan", "safety_rules", "manager_health"], "applicant")
    assert svc.cases.track(case_id)["case"]["status"] == "under_review"


def test_tolerant_supplied_in_time_releases_the_held_licence(svc: Services, clock) -> None:

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    case_id = tolerant_food_case(svc, clock, org)
    # a partial supply is recorded but does not yet satisfy the commitment
    assert svc.cases.supply_materials(case_id, ["layout_plan"], "applicant") is False
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="准予许可")
    assert "delivery" not in ready(svc, case_id)  # the licence is held until the materials arrive
    clock.set(shanghai(2026, 2, 24, 10))
    assert svc.cases.supply_materials(case_id, ["safety_rules", "manager_health"], "applicant") is True
    do(svc, case_id, "delivery", delivery_method="mail", delivered_on="2026-02-24")
    track = svc.cases.track(case_id)
    assert track["case"]["status"] == "delivered"
    assert {m["code"]: m["state"] for m in track["materials"]}["manager_health"] == "supplied"
    assert svc.workflow.fire_due_timers("w1") == 0


@pytest.mark.parametrize("order", [("HE-001", "MR-001", "PL-001"), ("PL-001", "HE-001", "MR-001")])
def test_joint_approval_menu_selection_one_denial_denies_all(svc: Services, order) -> None:
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"})
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            ["MR-001", "HE-001", "PL-001"],
            lead_department="market",
            form=dict(JOINT_FORM),
            provided=every_material(svc, "MR-001", "HE-001", "PL-001"),
        ),
        "a",
    )
    do(svc, case_id, "lead_intake", decision="accept", opinion="受理")
    by_group = branches(svc, case_id)
    assert set(by_group) == {"market", "health", "planning"}
    dept = {"MR-001": "market", "HE-001": "health", "PL-001": "planning"}
    for code in order:
        verdict = "deny" if code == "HE-001" else "approve"
        svc.cases.complete_task(
            by_group[dept[code]],
            {"decision": verdict, "opinion": f"{code} 意见"},
            dept[code],
            groups={dept[code]},
        )
    do(svc, case_id, "consolidation", outcome="deny", opinion="卫健部门不予许可")
    track = svc.cases.track(case_id)
    assert track["case"]["status"] == "denied" and track["case"]["licence_ids"] == []
    clocks = {c["kind"]: c for c in track["clocks"] if c["task_id"] is None}
    assert clocks["legal"]["limit"] == max(svc.catalogue.get(c).joint_limit_days for c in order)


def test_a_joint_denial_tells_the_applicant_the_departments_grounds_and_a_lead_denies_only_with_its_own(
    svc: Services,
) -> None:
    """The one result notice of a joint approval gives the grounds: each denying department's opinion
    (and the lead's); a lead that denies over every approval must give its own."""
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"})
    codes = ["MR-001", "HE-001", "PL-001"]

    def joint() -> str:
        app = Application(
            org.credit_code, org.name, codes, lead_department="market", form=dict(JOINT_FORM),
            provided=every_material(svc, *codes),
        )  # fmt: skip
        case_id = svc.cases.submit(app, "a")
        do(svc, case_id, "lead_intake", decision="accept", opinion="受理")
        return case_id

    def review(case_id: str, verdicts: dict[str, tuple[str, str]]) -> None:
        for dept, task_id in branches(svc, case_id).items():
            verdict, opinion = verdicts[dept]
            svc.cases.complete_task(task_id, {"decision": verdict, "opinion": opinion}, dept, groups={dept})

    denied = joint()
    review(
        denied,
        {
            "market": ("approve", "同意"),
            "health": ("deny", "卫生条件不符合要求"),
            "planning": ("approve", "同意"),
        },
    )
    do(svc, denied, "consolidation", outcome="deny", opinion="卫健部门不予许可")
    [notice] = svc.cases.track(denied, Viewer.applicant(org.credit_code))["notices"]
    assert notice["status"] == "denied"
    assert notice["reason"] == "公共场所卫生许可：卫生条件不符合要求；卫健部门不予许可"

    overruled = joint()
    review(
        overruled,
        {"market": ("approve", "同意"), "health": ("approve", "同意"), "planning": ("approve", "同意")},
    )
    with pytest.raises(InvalidInput) as err:
        do(svc, overruled, "consolidation", outcome="deny", opinion="")
    assert err.value.code == "invalid_form"
    do(svc, overruled, "consolidation", outcome="deny", opinion="项目不符合区域规划")
    [notice] = svc.cases.track(overruled, Viewer.applicant(org.credit_code))["notices"]
    assert notice["reason"] == "项目不符合区域规划"


def test_a_task_clock_turns_red_while_the_case_finished_on_time_and_the_worker_runs_every_job(
    svc: Services, clock
) -> None:
    from engine.bootstrap import make_worker
    from engine.cases.intake import Application

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    clock.set(shanghai(2025, 11, 3, 9))
    full = every_material(svc, "MR-001")
    case_id = svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=full), "a"
    )
    do(svc, case_id, "intake", decision="accept", opinion="齐全")
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="准予许可")
    [licence_id] = svc.cases.track(case_id)["case"]["licence_ids"]
    clock.set(shanghai(2025, 11, 18, 9))  # the delivery task had 10 working days: 4-17 Nov
    worker = make_worker(svc, "w1")
    assert set(worker.run_once()) == {"timers", "clocks", "licences"}
    officer = Viewer.officer("window-1", {"window"})
    clocks = {(c["kind"], c["task_id"] is None): c for c in svc.cases.track(case_id, officer)["clocks"]}
    assert clocks[("promised", True)]["status"] == "stopped"
    assert clocks[("promised", True)]["finished_on_time"] is True
    assert clocks[("task", False)]["status"] == "red"  # the delivery step is overdue, the case is not
    # the licence the case issued expires by date when the worker runs after its last valid day
    with svc.engine.connect() as conn:
        valid_until = LicenceLibrary(conn).get(licence_id).valid_until
    assert valid_until is not None
    clock.set(datetime(valid_until.year, valid_until.month, valid_until.day, 20, tzinfo=UTC))
    assert worker.run_once()["licences"] >= 1
    with svc.engine.connect() as conn:
        assert LicenceLibrary(conn).get(licence_id).status == "expired"


def test_task_clocks_come_from_days_hours_or_a_due_date_and_none_means_none(clock) -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from engine.cases.lifecycle import CaseLifecycle
    from engine.workflow import ReadyTask, TaskMeta

    def clock_of(meta: TaskMeta, due=None):
        ctx = SimpleNamespace(now=clock.now, due={"t": due} if due else {})
        return CaseLifecycle._task_clock(ctx, ReadyTask("t", meta.element_id, meta.name, meta))

    assert clock_of(TaskMeta("a", "a", deadline_days=5)).limit_days == 5
    assert clock_of(TaskMeta("b", "b", deadline_hours=4)).limit_hours == 4
    by_due = clock_of(TaskMeta("c", "c", due_expression="P2D"), due=clock.now + timedelta(days=2))
    assert by_due.limit_hours == 48 and by_due.kind == "task"
    assert clock_of(TaskMeta("d", "d", deadline_days=5, clock="none")) is None
    assert clock_of(TaskMeta("e", "e")) is None
