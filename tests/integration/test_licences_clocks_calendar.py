"""Licences, clocks and the calendar tell the truth (issue 8), through the whole stack on a real database.

* A licence the catalogue holds until the tolerated materials are supplied does not exist before the
  supply: the approval issues nothing (not even a suspended licence); the supply that completes the set
  issues it, valid from that day.
* A supply at or after the supplement deadline is refused by the injected clock, worker or no worker.
* An administrator's calendar override moves every stored deadline counted in working days, in its own
  transaction: case and task clocks (due and warning instants), task due dates, BPMN timers.
* A deadline on day N is the whole of day N: 23:59:59 is in time, 00:00 of day N + 1 is late.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from engine.bootstrap import Services
from engine.cases.calendar_change import change_calendar
from engine.cases.clocks import tick_clocks, warn_at
from engine.cases.intake import Application
from engine.errors import Conflict
from engine.persistence.tables import (
    audit_log,
    case_clocks,
    case_materials,
    cases,
    escalations,
    tasks,
    timers,
)
from engine.service import WorkflowService
from engine.time.clocks import Clock
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on

SH = ZoneInfo("Asia/Shanghai")
ALL_FOOD_MATERIALS = {
    "MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]
}
TOLERATED = ["layout_plan", "safety_rules", "manager_health"]


def sh(*args: int) -> datetime:
    """A Beijing wall-clock moment as an aware UTC datetime."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


@pytest.fixture
def svc(db: Engine, clock: FakeClock) -> Services:
    clock.set(sh(2025, 9, 29, 9))
    return services_on(db, clock)


def food_applicant(svc: Services):  # type: ignore[no-untyped-def]  # a demo Organisation
    """A demo organisation with a business licence and no food business licence of any status."""
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        for org in demo_organisations():
            types = {lic.type_code for lic in lib.by_holder(org.credit_code)}
            if "business_licence" in types and "food_business_licence" not in types:
                return org
    raise AssertionError("no demo organisation fits")


def ready(svc: Services, case_id: str) -> dict[str, dict]:
    with svc.engine.connect() as conn:
        rows = conn.execute(select(tasks).where(tasks.c.business_key == case_id, tasks.c.state == "ready"))
        return {r.element_id: dict(r._mapping) for r in rows}


def do(svc: Services, case_id: str, element: str, actor: str = "officer", **data: object) -> None:
    svc.cases.complete_task(ready(svc, case_id)[element]["id"], data, actor)


def case_row(svc: Services, case_id: str) -> dict:
    with svc.engine.connect() as conn:
        return dict(conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping)


def tolerant_case(svc: Services, clock: FakeClock) -> str:
    """MR-001 (food business licence, held until supplied; 5 working days to supply) accepted under
    tolerance on Wed 11 Feb 2026 10:00, before Spring Festival: the deadline is the whole of 25 Feb."""
    org = food_applicant(svc)
    clock.set(sh(2026, 2, 11, 10))
    provided = {"MR-001": ["application", "legal_rep_id"]}
    app = Application(
        org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), tolerant=True, provided=provided
    )
    case_id = svc.cases.submit(app, "a")
    do(
        svc,
        case_id,
        "commitment",
        actor="applicant",
        missing_materials=TOLERATED,
        promised_date="2026-02-25",
        signed=True,
    )
    assert case_row(svc, case_id)["accepted_at"] == clock.now
    return case_id


def approve(svc: Services, case_id: str) -> None:
    do(svc, case_id, "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, case_id, "decision", decision="approve", opinion="准予许可")


def licences_of(svc: Services, case_id: str) -> list:  # type: ignore[type-arg]
    holder = case_row(svc, case_id)["applicant_id"]
    with svc.engine.connect() as conn:
        return [lic for lic in LicenceLibrary(conn).by_holder(holder) if lic.source_case == case_id]


def pending_timer(svc: Services, case_id: str) -> datetime:
    with svc.engine.connect() as conn:
        [due] = conn.execute(
            select(timers.c.due_at).where(
                timers.c.instance_id == case_row(svc, case_id)["instance_id"], timers.c.fired_at.is_(None)
            )
        ).scalars()
    return due


def open_clocks(svc: Services, case_id: str) -> list[dict]:
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(case_clocks).where(case_clocks.c.case_id == case_id, case_clocks.c.stopped_at.is_(None))
        )
        return [dict(r._mapping) for r in rows]


def assert_stored_instants_are_what_the_clocks_compute(svc: Services, case_id: str) -> None:
    cal = svc.calendar()  # what the worker and the case page count with
    for row in open_clocks(svc, case_id):
        clock = Clock.from_dict(row["clock"])
        assert row["due_at"] == clock.due_at(cal), row["kind"]
        assert row["warn_at"] == warn_at(clock, cal), row["kind"]


# ------------------------------------------------------------------ held licence


def test_a_held_licence_does_not_exist_before_the_supply_and_is_issued_valid_by_it(
    svc: Services, clock
) -> None:
    case_id = tolerant_case(svc, clock)
    clock.set(sh(2026, 2, 12, 10))
    approve(svc, case_id)
    row = case_row(svc, case_id)
    assert row["status"] == "approved" and row["licence_ids"] == []
    assert licences_of(svc, case_id) == []  # no licence at all: neither valid nor suspended
    with svc.engine.connect() as conn:
        held = conn.execute(
            select(audit_log.c.action).where(
                audit_log.c.business_key == case_id, audit_log.c.action == "licence_held"
            )
        ).all()
        assert (
            held
            and LicenceLibrary(conn).latest_usable(
                row["applicant_id"], "food_business_licence", date(2026, 2, 12)
            )
            is None
        )
    assert "delivery" not in ready(svc, case_id)

    clock.set(sh(2026, 2, 24, 10))
    assert svc.cases.supply_materials(case_id, ["layout_plan"], "applicant") is False
    assert licences_of(svc, case_id) == []  # a partial supply releases nothing
    assert svc.cases.supply_materials(case_id, ["safety_rules", "manager_health"], "applicant") is True
    [licence] = licences_of(svc, case_id)
    assert licence.status == "valid" and licence.issue_date == date(2026, 2, 24)
    assert case_row(svc, case_id)["licence_ids"] == [licence.id]
    with svc.engine.connect() as conn:
        assert LicenceLibrary(conn).verify(licence.id).ok
    assert "delivery" in ready(svc, case_id)
    do(svc, case_id, "delivery", delivery_method="mail", delivered_on="2026-02-24")
    assert case_row(svc, case_id)["status"] == "delivered"
    assert len(licences_of(svc, case_id)) == 1  # issued once


def test_materials_supplied_before_the_approval_let_it_issue_the_licence_at_once(
    svc: Services, clock
) -> None:
    case_id = tolerant_case(svc, clock)
    clock.set(sh(2026, 2, 13, 10))
    assert svc.cases.supply_materials(case_id, TOLERATED, "applicant") is True
    approve(svc, case_id)
    [licence] = licences_of(svc, case_id)
    assert licence.status == "valid" and case_row(svc, case_id)["licence_ids"] == [licence.id]


# ------------------------------------------------------------------ supplement deadline


def test_a_supply_on_the_last_second_of_the_deadline_day_is_taken(svc: Services, clock) -> None:
    case_id = tolerant_case(svc, clock)
    clock.set(datetime(2026, 2, 25, 23, 59, 59, tzinfo=SH))
    assert svc.cases.supply_materials(case_id, TOLERATED, "applicant") is True
    clock.set(sh(2026, 2, 26, 0, 1))
    assert svc.workflow.fire_due_timers("w1") == 0  # the supply won the race
    assert case_row(svc, case_id)["status"] != "terminated"


@pytest.mark.parametrize("codes", [TOLERATED, ["layout_plan"]])
def test_a_supply_after_the_deadline_is_refused_before_any_worker_ran(svc: Services, clock, codes) -> None:
    case_id = tolerant_case(svc, clock)
    deadline = sh(2026, 2, 26)  # 24:00 on Wed 25 Feb 2026 (5 working days: 12, 13, 14, 24, 25 Feb)
    assert pending_timer(svc, case_id) == deadline == svc.cases.supplement_deadline(case_row(svc, case_id))
    clock.set(deadline)  # 00:00 on 26 Feb; the deadline timer is due but no worker has fired it
    with pytest.raises(Conflict) as refused:
        svc.cases.supply_materials(case_id, codes, "applicant")
    assert refused.value.code == "supplement_deadline_passed"
    assert refused.value.detail["deadline"] == deadline.isoformat()
    assert refused.value.detail["deadline_day"] == "2026-02-25" and "2026-02-25" in str(refused.value)
    with svc.engine.connect() as conn:
        states = set(
            conn.execute(select(case_materials.c.state).where(case_materials.c.code.in_(TOLERATED))).scalars()
        )
    assert states == {"missing_tolerated"}  # nothing was recorded
    assert case_row(svc, case_id)["status"] == "under_review"  # the worker has not run
    assert svc.workflow.fire_due_timers("w1") == 1
    assert case_row(svc, case_id)["status"] == "terminated"


# ------------------------------------------------------------------ calendar overrides


def single_window_case(svc: Services, clock: FakeClock, *, accept: bool = True) -> str:
    """MR-001 applied for on Tue 30 Sep 2025 09:00 with every material, accepted at once unless told."""
    org = food_applicant(svc)
    clock.set(sh(2025, 9, 30, 9))
    app = Application(
        org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=ALL_FOOD_MATERIALS
    )
    case_id = svc.cases.submit(app, "window-1")
    if accept:
        do(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    return case_id


def escalated(svc: Services, case_id: str) -> set[tuple[str, str]]:
    with svc.engine.connect() as conn:
        return set(
            conn.execute(
                select(escalations.c.level, case_clocks.c.kind)
                .join(case_clocks, case_clocks.c.id == escalations.c.clock_id)
                .where(escalations.c.case_id == case_id)
            ).all()
        )


def test_an_override_that_makes_a_case_late_moves_its_clocks_and_timer_and_the_worker_escalates(
    svc: Services, clock
) -> None:
    case_id = single_window_case(svc, clock)
    # promised limit 10 working days: 9, 10, 11 (Sat), 13-17, 20, 21 Oct -> the whole of Tue 21 Oct
    [promised] = [c for c in open_clocks(svc, case_id) if c["kind"] == "promised"]
    assert promised["due_at"] == sh(2025, 10, 22)
    assert pending_timer(svc, case_id) == sh(2025, 10, 22)  # the review timer: the same instant
    clock.set(sh(2025, 10, 21, 10))
    tick_clocks(svc.engine, clock, svc.calendar, "w1")
    assert escalated(svc, case_id) == {("yellow", "promised")}  # not late yet

    # the administrator records that Sun 19 Oct was a working day: the case was due at the end of 20 Oct
    change = svc.cases.change_calendar(date(2025, 10, 19), True, "区政府通知：10月19日（周日）上班", "admin")
    assert change.working is True and change.clocks >= 2 and change.timers == 1
    [promised] = [c for c in open_clocks(svc, case_id) if c["kind"] == "promised"]
    assert promised["due_at"] == sh(2025, 10, 21)
    assert_stored_instants_are_what_the_clocks_compute(svc, case_id)
    assert pending_timer(svc, case_id) == sh(2025, 10, 21)

    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") >= 1
    assert ("red", "promised") in escalated(svc, case_id)
    assert svc.workflow.fire_due_timers("w1") == 1  # the model's own escalation (督办) opens too
    assert set(ready(svc, case_id)) == {"review", "escalation"}


def test_a_recount_after_the_holiday_data_learned_a_year_moves_what_was_counted_monday_to_friday(
    svc: Services, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deadlines in a year the holiday package did not know are counted Monday to Friday (with a warning);
    once an updated package knows that year's holidays, ``recount_calendar`` (``onewindow calendar
    recount``) counts every open clock, task due date and working-day timer again, in one transaction."""
    import chinese_calendar

    from engine.cases.calendar_change import recount_calendar
    from engine.time import calendar as calendar_module

    org = food_applicant(svc)
    future = calendar_module.known_years().stop  # the first year the package does not know
    clock.set(sh(future - 1, 12, 24, 9))
    app = Application(
        org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=ALL_FOOD_MATERIALS
    )
    case_id = svc.cases.submit(app, "window-1")
    do(svc, case_id, "intake", decision="accept", opinion="材料齐全")
    before = {c["kind"]: c["due_at"] for c in open_clocks(svc, case_id)}
    timer_before = pending_timer(svc, case_id)

    # the updated package: 1-3 January of that year are holidays (as every New Year's Day is)
    new_year = {date(future, 1, d): "New Year's Day" for d in (1, 2, 3)}
    monkeypatch.setattr(chinese_calendar, "holidays", {**chinese_calendar.holidays, **new_year})
    known_workday = chinese_calendar.is_workday

    def is_workday(day: date) -> bool:
        return day not in new_year and (day.weekday() < 5 if day.year == future else known_workday(day))

    monkeypatch.setattr(chinese_calendar, "is_workday", is_workday)
    calendar_module.known_years.cache_clear()  # what a restart with the new package reads
    calendar_module._package_working_days.cache_clear()
    try:
        recount = recount_calendar(svc.workflow, "admin")
        after = {c["kind"]: c["due_at"] for c in open_clocks(svc, case_id)}
        assert recount.clocks >= 2 and recount.timers == 1 and not recount.failed
        working_days_lost = sum(1 for d in new_year if d.weekday() < 5)
        assert working_days_lost >= 1
        assert all(after[kind] > before[kind] for kind in ("legal", "promised"))
        assert pending_timer(svc, case_id) > timer_before
        assert_stored_instants_are_what_the_clocks_compute(svc, case_id)
        with svc.engine.connect() as conn:
            [detail] = conn.execute(
                select(audit_log.c.detail).where(audit_log.c.action == "calendar_followed")
            ).scalars()
        assert detail["recount"] is True and detail["known_years"][1] == future
    finally:
        monkeypatch.undo()
        calendar_module.known_years.cache_clear()
        calendar_module._package_working_days.cache_clear()


def test_an_override_moves_the_intake_task_due_date_and_its_clock(svc: Services, clock) -> None:
    case_id = single_window_case(svc, clock, accept=False)
    # the intake has 5 working days: 9, 10, 11 (Sat), 13, 14 Oct -> the whole of 14 Oct
    assert ready(svc, case_id)["intake"]["due_at"] == sh(2025, 10, 15)
    change = svc.cases.change_calendar(date(2025, 10, 11), False, "调休取消", "admin")
    assert change.working is False and change.tasks == 1
    intake = ready(svc, case_id)["intake"]
    assert intake["due_at"] == sh(2025, 10, 16)  # one working day later: the whole of 15 Oct
    [task_clock] = [c for c in open_clocks(svc, case_id) if c["task_id"] == intake["id"]]
    assert task_clock["due_at"] == intake["due_at"]
    assert_stored_instants_are_what_the_clocks_compute(svc, case_id)
    # clearing the override puts everything back
    svc.cases.change_calendar(date(2025, 10, 11), None, "", "admin")
    assert ready(svc, case_id)["intake"]["due_at"] == sh(2025, 10, 15)
    assert_stored_instants_are_what_the_clocks_compute(svc, case_id)


def test_the_supplement_deadline_timer_follows_an_override_and_so_does_the_refusal(
    svc: Services, clock
) -> None:
    case_id = tolerant_case(svc, clock)
    clock.set(sh(2026, 2, 16, 9))  # during Spring Festival
    svc.cases.change_calendar(date(2026, 2, 24), False, "春节延长假期", "admin")
    deadline = sh(2026, 2, 27)  # 12, 13, 14, 25, 26 Feb: the whole of 26 Feb
    assert pending_timer(svc, case_id) == deadline == svc.cases.supplement_deadline(case_row(svc, case_id))
    with svc.engine.connect() as conn:
        moved = (
            conn.execute(
                select(audit_log.c.detail).where(
                    audit_log.c.business_key == case_id, audit_log.c.action == "deadlines_recomputed"
                )
            )
            .scalars()
            .all()
        )
    assert [list(d["timers"].values()) for d in moved] == [[deadline.isoformat()]]
    clock.set(sh(2026, 2, 26, 15))  # late on the old calendar, in time on the new one
    assert svc.workflow.fire_due_timers("w1") == 0
    assert svc.cases.supply_materials(case_id, TOLERATED, "applicant") is True


def test_a_due_date_expression_follows_an_override(db: Engine, clock) -> None:
    from tests.integration.test_engine_service import BPMN

    xml = (BPMN / "three_tasks.bpmn").read_text()
    xml = xml.replace(
        'xmlns:ow="http://onewindow.org/schema/bpmn"',
        'xmlns:ow="http://onewindow.org/schema/bpmn" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"',
    )
    xml = xml.replace(' ow:formKey="task.intake" ow:deadlineDays="1"', "")
    xml = xml.replace(
        ' ow:deadlineDays="5" ow:warnRatio="0.6"', ' camunda:dueDate="working_deadline(start_day, 3)"'
    )
    workflow = WorkflowService(db, clock=clock)
    workflow.deploy(xml.encode(), "due.bpmn", "designer")
    workflow.start("three_tasks", {"start_day": "2025-09-30"}, "a")
    with db.connect() as conn:
        [intake] = conn.execute(select(tasks.c.id).where(tasks.c.state == "ready")).scalars()
    workflow.complete_task(intake, {}, "a")

    def review_due() -> datetime:
        with db.connect() as conn:
            return conn.execute(select(tasks.c.due_at).where(tasks.c.state == "ready")).scalar_one()

    assert review_due() == datetime.combine(date(2025, 10, 12), time(0), SH)  # the whole of Sat 11 Oct
    change = change_calendar(workflow, date(2025, 10, 11), False, "调休取消", "admin")
    assert change.tasks == 1
    assert review_due() == datetime.combine(date(2025, 10, 14), time(0), SH)  # 9, 10, 13 Oct


def test_an_override_rolls_back_with_everything_it_moved(svc: Services, clock, monkeypatch) -> None:
    case_id = single_window_case(svc, clock)
    before = {c["id"]: c["due_at"] for c in open_clocks(svc, case_id)}

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the clock recount failed")

    monkeypatch.setattr("engine.cases.clocks.ClockRepository.follow_calendar", broken)
    with pytest.raises(Exception):  # noqa: B017 - whatever the error kernel makes of it; the point is the rollback
        svc.cases.change_calendar(date(2025, 10, 19), True, "区政府通知", "admin")
    assert svc.calendar().is_working_day(date(2025, 10, 19)) is False  # the override did not stay
    assert {c["id"]: c["due_at"] for c in open_clocks(svc, case_id)} == before
    assert pending_timer(svc, case_id) == sh(2025, 10, 22)


# ------------------------------------------------------------------ day N is the whole of day N


def test_day_n_is_in_time_to_its_last_second_for_clocks_cards_and_timers(svc: Services, clock) -> None:
    case_id = single_window_case(svc, clock)
    last_second = datetime(2025, 10, 21, 23, 59, 59, tzinfo=SH).astimezone(UTC)
    clock.set(last_second)
    tick_clocks(svc.engine, clock, svc.calendar, "w1")
    assert ("red", "promised") not in escalated(svc, case_id)
    assert svc.workflow.fire_due_timers("w1") == 0
    clock.set(last_second + timedelta(seconds=1))  # 00:00 on 22 Oct
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") >= 1
    assert ("red", "promised") in escalated(svc, case_id)
    assert svc.workflow.fire_due_timers("w1") == 1


def test_a_calendar_is_what_the_provider_serves_after_the_override(svc: Services, clock) -> None:
    assert svc.calendar().is_working_day(date(2025, 10, 19)) is False
    svc.cases.change_calendar(date(2025, 10, 19), True, "区政府通知", "admin")
    assert svc.calendar().is_working_day(date(2025, 10, 19)) is True  # no wait for the provider's ttl


def test_an_instance_whose_model_fails_keeps_its_deadline_and_does_not_stop_the_others(
    db: Engine, clock, monkeypatch
) -> None:
    from engine.errors import InvalidInput
    from engine.workflow import Runtime
    from tests.unit.bpmn.models import timer_model

    workflow = WorkflowService(db, clock=clock)
    workflow.deploy(timer_model("working_deadline(received, 3)", "timeDate"), "wait.bpmn", "designer")
    clock.set(sh(2024, 4, 29, 9))
    first = workflow.start("p", {"received": "2024-04-29"}, "a").instance_id
    second = workflow.start("p", {"received": "2024-04-29"}, "a").instance_id
    original = Runtime.recompute_timers
    calls: list[str] = []

    def fails_once(self: Runtime, now: datetime) -> dict[str, datetime]:
        calls.append("call")
        if len(calls) == 1:
            raise InvalidInput("流程执行失败：表达式出错", code="expression_failed")
        return original(self, now)

    monkeypatch.setattr(Runtime, "recompute_timers", fails_once)
    change = change_calendar(workflow, date(2024, 5, 6), False, "停电停工", "admin")
    assert change.timers == 1 and len(change.failed) == 1
    with db.connect() as conn:
        due = dict(conn.execute(select(timers.c.instance_id, timers.c.due_at)).all())
        noted = (
            conn.execute(
                select(audit_log.c.instance_id).where(audit_log.c.action == "deadlines_not_recomputed")
            )
            .scalars()
            .all()
        )
    [broken] = change.failed
    [fine] = {first, second} - {broken}
    assert noted == [broken]
    assert due[broken] == sh(2024, 5, 8)  # 30 Apr, 6, 7 May as before: the whole of 7 May
    assert due[fine] == sh(2024, 5, 9)  # 6 May is a rest day now: 30 Apr, 7, 8 May


@pytest.mark.parametrize(
    ("day", "working", "due"),
    [
        (date(2025, 10, 12), True, sh(2025, 10, 28)),  # Sun 12 Oct worked: nothing changes, it was paused
        (date(2025, 10, 10), False, sh(2025, 10, 28)),  # Fri 10 Oct closed (typhoon): idem
        (date(2025, 10, 20), False, sh(2025, 10, 29)),  # a day after the pause: one day later for both
    ],
)
def test_an_override_of_a_day_in_a_past_special_procedure_moves_the_review_timer_as_the_clock(
    svc: Services, clock, day: date, working: bool, due: datetime
) -> None:
    """The review's escalation timer added the working days of a finished special procedure as a number
    counted when it ended; an override of a day inside that pause afterwards (a day marked worked or
    closed after the fact) moved the timer (Sun 12 Oct worked: 3 days early, the 督办 before the deadline)
    while the promised clock, whose pause still took the day out, stayed. Both count the pause again."""
    case_id = single_window_case(svc, clock)
    clock.set(sh(2025, 10, 9, 10))
    review = {"result": "pass", "opinion": "需检验", "needs_special_procedure": True}
    do(svc, case_id, "review", special_kind="testing", **review)
    clock.set(sh(2025, 10, 14, 10))
    special = {"kind": "testing", "result": "合格", "started_on": "2025-10-09", "finished_on": "2025-10-14"}
    do(svc, case_id, "special_procedure", **special)
    # paused when 9, 10, 11 (Sat) and 13 Oct ended: 14-17, 20-24, 27 Oct -> the whole of 27 Oct
    [promised] = [c for c in open_clocks(svc, case_id) if c["kind"] == "promised"]
    assert promised["due_at"] == pending_timer(svc, case_id) == sh(2025, 10, 28)
    clock.set(sh(2025, 10, 15, 10))
    svc.cases.change_calendar(day, working, "区政府通知（事后补记）", "admin")
    [promised] = [c for c in open_clocks(svc, case_id) if c["kind"] == "promised"]
    assert promised["due_at"] == due
    assert pending_timer(svc, case_id) == due
    assert_stored_instants_are_what_the_clocks_compute(svc, case_id)


def test_a_task_whose_due_date_has_passed_when_it_opens_is_red_and_escalated(svc: Services, clock) -> None:
    """A task clock from a due-date expression counted the hours from the opening to the due date: a due
    date already passed gave 0 hours and no clock at all, so the task overdue from its first instant was
    never red, never on the supervisors' list and never escalated (an override's recount gave it a clock
    of one second). It is red at once, and the worker raises its cards once."""
    from processes.catalogue import PROCESS_DIR

    xml = (PROCESS_DIR / "single_window.bpmn").read_text(encoding="utf-8")
    xml = xml.replace(
        'xmlns:ow="http://onewindow.org/schema/bpmn"',
        'xmlns:ow="http://onewindow.org/schema/bpmn" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"',
    )
    old = 'ow:formKey="task.intake" ow:deadlineDays="5"'
    assert old in xml
    due = 'camunda:dueDate="plus_time(now(), -1, &quot;hours&quot;)"'  # an hour before the task opens
    xml = xml.replace(old, f'ow:formKey="task.intake" {due}')
    svc.workflow.deploy(xml.encode(), "single_window.bpmn", "designer")
    case_id = single_window_case(svc, clock, accept=False)
    intake = ready(svc, case_id)["intake"]
    assert intake["due_at"] == clock.now - timedelta(hours=1)
    [task_clock] = [c for c in open_clocks(svc, case_id) if c["task_id"] == intake["id"]]
    assert Clock.from_dict(task_clock["clock"]).status(clock.now, svc.calendar()) == "red"
    assert task_clock["due_at"] <= clock.now
    assert_stored_instants_are_what_the_clocks_compute(svc, case_id)
    assert tick_clocks(svc.engine, clock, svc.calendar, "w1") == 2  # yellow and red, once
    assert tick_clocks(svc.engine, clock, svc.calendar, "w2") == 0
    assert escalated(svc, case_id) == {("yellow", "task"), ("red", "task")}
