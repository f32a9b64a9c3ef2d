"""single_window.bpmn driven path by path, with a dump/restore after every step and an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.time.calendar import WorkingCalendar, local_start_date
from engine.time.clocks import Clock, Pause
from processes.catalogue import load_catalogue
from tests.processes.driver import Case, shanghai

CATALOGUE = load_catalogue()


def start(code: str = "MR-001", when: tuple[int, ...] = (2025, 9, 29, 9), **extra: object) -> Case:
    item = CATALOGUE.get(code)
    return Case("single_window", item.start_data(**extra), shanghai(*when))


def accept(case: Case) -> Case:
    return case.complete("intake", decision="accept", opinion="材料齐全")


def test_refuse_records_reason_and_ends() -> None:
    case = start()
    intake = case.task("intake")
    assert case.groups(intake) == ("window",)
    assert intake.meta.form_key == "task.intake"
    case.complete("intake", decision="refuse", reason="不属于本机关职权范围", opinion="")
    assert case.completed
    assert case.statuses == ["submitted", "refused"]
    assert case.data["case_status"] == "refused"
    assert case.data["refusal_reason"] == "不属于本机关职权范围"
    assert "accepted_at" not in case.data


def test_supplement_lists_every_missing_material_once_then_accept() -> None:
    case = start()
    case.complete(
        "intake", decision="supplement", missing_materials=["layout_plan", "safety_rules"], reason="材料不全"
    )
    supplement = case.task("supplement")
    assert case.groups(supplement) == ("applicant",)
    assert supplement.meta.suspends_case_clock is True
    assert case.data["supplement_notice"]["materials"] == ["layout_plan", "safety_rules"]
    assert case.data["supplement_notice"]["round"] == 1
    case.at(shanghai(2025, 9, 30, 9)).complete(
        "supplement", supplied_materials=["layout_plan", "safety_rules"]
    )
    assert case.ready_ids() == ["intake"]
    accept(case.at(shanghai(2025, 9, 30, 10)))
    assert case.ready_ids() == ["review"]
    assert case.statuses == ["submitted", "supplement_requested", "submitted", "accepted", "under_review"]
    assert case.data["accepted_at"] == shanghai(2025, 9, 30, 10).isoformat()
    assert case.data["supplement_rounds"] == 1


def test_accept_review_special_procedure_approve_deliver() -> None:
    case = accept(start())
    review = case.task("review")
    assert case.groups(review) == ("market",)
    assert review.meta.form_key == "task.review"
    case.at(shanghai(2025, 10, 9, 10)).complete(
        "review", result="pass", opinion="需现场核查", needs_special_procedure=True, special_kind="inspection"
    )
    special = case.task("special_procedure")
    assert special.meta.suspends_case_clock is True
    assert case.groups(special) == ("market",)
    case.at(shanghai(2025, 10, 11, 10)).complete(  # 9 and 10 Oct ended while it ran: two working days
        "special_procedure",
        kind="inspection",
        result="现场核查合格",
        started_on="2025-10-09",
        finished_on="2025-10-10",
    )
    assert case.ready_ids() == ["review"]
    case.complete("review", result="pass", opinion="符合条件", needs_special_procedure=False)
    decision = case.task("decision")
    assert decision.meta.form_key == "task.decision"
    case.complete("decision", decision="approve", opinion="准予许可")
    delivery = case.task("delivery")
    assert case.groups(delivery) == ("window",)
    assert case.data["licence_to_issue"] == "food_business_licence"
    case.complete("delivery", delivery_method="window", delivered_on="2025-10-13")
    assert case.completed
    assert case.statuses == [
        "submitted",
        "accepted",
        "under_review",
        "special_procedure",
        "under_review",
        "approved",
        "delivered",
    ]
    data = case.data
    assert data["case_result"] == "approved"
    assert data["decision_opinion"] == "准予许可"
    assert data["special_procedure_log"] == [
        {
            "kind": "inspection",
            "result": "现场核查合格",
            "started_on": "2025-10-09",
            "finished_on": "2025-10-10",
            "paused_from": shanghai(2025, 10, 9, 10).astimezone(UTC).isoformat(),
            "paused_until": shanghai(2025, 10, 11, 10).astimezone(UTC).isoformat(),
            "working_days": 2,
        }
    ]


def test_special_procedure_pushes_the_review_deadline_by_its_working_days() -> None:
    case = accept(start(when=(2025, 9, 30, 10)))
    (timer,) = case.rt.pending_timers()
    assert timer.due_at == shanghai(2025, 10, 22)  # 10 working days after 30 Sep 2025: all of 21 Oct
    case.complete(
        "review", result="pass", opinion="", needs_special_procedure=True, special_kind="expert_review"
    )
    assert case.rt.pending_timers() == []  # the review (and its timer) is left while the procedure runs
    case.at(shanghai(2025, 10, 16, 15)).complete(  # the procedure ran 13-15 Oct by the engine's clock
        "special_procedure",
        kind="expert_review",
        result="通过",
        started_on="2025-01-02",  # what the officer writes is a record: it moves no deadline
        finished_on="2025-10-16",
    )
    (timer,) = case.rt.pending_timers()
    # paused on the day of acceptance (never counted) until 16 Oct: 9-15 Oct (11 Oct adjusted) ended
    # paused, six working days later, as the promised clock: all of 29 Oct
    assert timer.due_at == shanghai(2025, 10, 30)


def test_a_special_procedure_begun_after_the_deadline_does_not_move_it_as_the_promised_clock() -> None:
    """A suspension takes out working days only while the time has not run out: the review deadline the
    model keeps (and its timer) is the promised clock's, whether the procedure began before the deadline,
    across it or after it."""
    cal = WorkingCalendar()
    accepted = shanghai(2025, 9, 30, 10)  # 3 review days: all of Sat 11 Oct (National Day, 调休)
    for begun, ended in [
        (shanghai(2025, 10, 13, 9), shanghai(2025, 10, 16, 9)),  # after the deadline: moves nothing
        (shanghai(2025, 10, 10, 9), shanghai(2025, 10, 16, 9)),  # across it
        (shanghai(2025, 10, 9, 9), shanghai(2025, 10, 10, 9)),  # before it
    ]:
        case = accept(start(when=(2025, 9, 30, 10), review_days=3))
        case.at(begun).fire_timers()
        case.complete(
            "review", result="pass", opinion="", needs_special_procedure=True, special_kind="expert_review"
        )
        case.at(ended).complete(
            "special_procedure", kind="expert_review", result="通过", started_on="", finished_on=""
        )
        promised = Clock(kind="promised", started_at=accepted, limit_days=3, pauses=[Pause(begun, ended)])
        due = promised.due_at(cal)
        assert due is not None
        assert datetime.fromisoformat(case.data["review_deadline"]) == due, (begun, ended)
        assert case.data["special_procedure_days"] == cal.working_days_between(
            date(2025, 10, 11), local_start_date(due)
        )
        case.complete("review", result="pass", opinion="", needs_special_procedure=False)
        case.complete("decision", decision="rework", opinion="补充审查")
        timers = case.rt.pending_timers()
        if ended >= due:  # reopened overdue: its timer fired at once
            assert timers == [] and datetime.fromisoformat(case.data["review_deadline"]) == due
        else:
            assert [t.due_at for t in timers] == [due]


def test_deny_delivers_the_denial_notice() -> None:
    case = accept(start("HE-001"))
    case.complete("review", result="fail", opinion="检测报告不合格", needs_special_procedure=False)
    case.complete("decision", decision="deny", opinion="卫生检测不合格，不予许可")
    notice = case.task("deliver_denial")
    assert case.groups(notice) == ("window",)
    assert notice.meta.form_key == "task.delivery"
    case.complete("deliver_denial", delivery_method="mail", delivered_on="2025-10-10")
    assert case.completed
    assert case.statuses == ["submitted", "accepted", "under_review", "denied", "delivered"]
    assert case.data["case_result"] == "denied"
    assert case.data["decision_opinion"] == "卫生检测不合格，不予许可"
    assert "licence_to_issue" not in case.data


def test_rework_goes_back_to_review_twice() -> None:
    case = accept(start("HC-001"))
    assert case.groups(case.task("review")) == ("housing",)
    for round_ in (1, 2):
        case.complete("review", result="pass", opinion=f"第{round_}次审查", needs_special_procedure=False)
        case.complete("decision", decision="rework", opinion="请补充审查意见")
        assert case.ready_ids() == ["review"]
        assert case.data["rework_count"] == round_
    case.complete("review", result="pass", opinion="第3次审查", needs_special_procedure=False)
    case.complete("decision", decision="approve", opinion="同意")
    case.complete("delivery", delivery_method="window", delivered_on="2025-10-01")
    assert case.statuses == ["submitted", "accepted", "under_review", "approved", "delivered"]
    assert case.data["rework_count"] == 2
    assert case.data["licence_to_issue"] == "construction_permit"


def test_immediate_item_goes_to_decision_the_same_day() -> None:
    case = start("MR-003", when=(2025, 11, 3, 9))
    accept(case.at(shanghai(2025, 11, 3, 9, 20)))
    assert case.ready_ids() == ["decision"]  # no review step, no review timer
    assert case.rt.pending_timers() == []
    assert case.groups(case.task("decision")) == ("market",)
    case.at(shanghai(2025, 11, 3, 9, 40)).complete("decision", decision="approve", opinion="当场办结")
    case.at(shanghai(2025, 11, 3, 9, 45)).complete(
        "delivery", delivery_method="window", delivered_on="2025-11-03"
    )
    assert case.completed
    assert case.statuses == ["submitted", "accepted", "approved", "delivered"]
    assert {e["at"][:10] for e in case.data["status_history"]} == {"2025-11-03"}
    assert case.data["delivered_at"][:10] == "2025-11-03"


def test_unknown_intake_decision_is_an_error_not_a_silent_branch() -> None:
    case = start()
    with pytest.raises(Exception):  # noqa: B017 - any engine error; the point is that no branch is taken
        case.rt.complete(case.task("intake").task_id, {"decision": "maybe"}, case.now)


class TestReviewEscalationAcrossNationalDay2025:
    """Accepted 30 Sep 2025 with 3 review days: 1-8 Oct are holidays, Sat 11 Oct is a make-up working day."""

    def case(self) -> Case:
        case = accept(start(when=(2025, 9, 30, 10), review_days=3))
        (timer,) = case.rt.pending_timers()
        assert timer.element_id == "review_timer"
        assert timer.due_at == shanghai(2025, 10, 12)  # the whole of Sat 11 Oct, to 24:00
        return case

    @pytest.mark.parametrize(
        "moment",
        [(2025, 10, 3, 12), (2025, 10, 8, 23, 59), (2025, 10, 10, 18), (2025, 10, 11, 23, 59, 59)],
    )
    def test_not_before_the_working_day_deadline(self, moment: tuple[int, ...]) -> None:
        case = self.case()
        assert case.at(shanghai(*moment)).fire_timers() == []
        assert case.ready_ids() == ["review"]
        assert "escalated" not in case.data

    def test_fires_after_the_deadline_and_review_goes_on(self) -> None:
        case = self.case()
        assert case.at(shanghai(2025, 10, 12, 0, 0, 0)).fire_timers() == ["review_timer"]  # 00:00 day N+1
        assert case.ready_ids() == ["escalation", "review"]
        escalation = case.task("escalation")
        assert case.groups(escalation) == ("supervisor",)
        assert case.data["escalated"] is True
        assert case.data["escalation_count"] == 1
        assert case.at(shanghai(2025, 10, 13, 9)).fire_timers() == []  # fires once
        case.complete("escalation", opinion="请尽快办结", due_on="2025-10-15")
        case.complete("review", result="pass", opinion="", needs_special_procedure=False)
        case.complete("decision", decision="approve", opinion="同意")
        case.complete("delivery", delivery_method="window", delivered_on="2025-10-14")
        assert case.completed
        assert case.statuses == ["submitted", "accepted", "under_review", "approved", "delivered"]

    def test_a_review_reopened_after_its_deadline_is_not_escalated_again(self) -> None:
        """Reworked, or back from a special procedure, after the deadline, the review's timer fires at once:
        that deadline's escalation went out already (it opened one more each time)."""
        case = self.case()
        case.at(shanghai(2025, 10, 13, 9)).fire_timers()
        assert case.ready_ids() == ["escalation", "review"]
        for _ in range(2):
            case.complete("review", result="pass", opinion="", needs_special_procedure=False)
            case.complete("decision", decision="rework", opinion="补充审查")
            assert case.fire_timers() == [] and sorted(t.element_id for t in case.ready()) == [
                "escalation",
                "review",
            ]
        case.complete(
            "review", result="pass", opinion="", needs_special_procedure=True, special_kind="expert_review"
        )
        case.at(shanghai(2025, 10, 16, 9)).complete(  # 13-15 Oct suspended: due at the end of 15 Oct, passed
            "special_procedure",
            kind="expert_review",
            result="通过",
            started_on="2025-10-13",
            finished_on="2025-10-15",
        )
        assert case.fire_timers() == [] and sorted(t.element_id for t in case.ready()) == [
            "escalation",
            "review",
        ]

    def test_a_review_reworked_after_a_deadline_that_passed_at_the_decision_is_escalated_once(self) -> None:
        """The review was done in time and its deadline passed while the decision was pending: no timer
        was waiting then, so the review reopened by the rework is that deadline's first escalation (it
        was taken for one already sent), and a second rework sends none."""
        case = self.case()
        case.at(shanghai(2025, 10, 11, 15)).complete(
            "review", result="pass", opinion="", needs_special_procedure=False
        )
        case.at(shanghai(2025, 10, 14, 9)).complete("decision", decision="rework", opinion="补充审查")
        assert sorted(t.element_id for t in case.ready()) == ["escalation", "review"]
        assert case.data["escalation_count"] == 1
        case.complete("review", result="pass", opinion="", needs_special_procedure=False)
        case.complete("decision", decision="rework", opinion="再次补充审查")
        assert case.fire_timers() == []
        assert sorted(t.element_id for t in case.ready()) == ["escalation", "review"]  # still the one

    def test_an_immediate_item_reworked_after_its_day_is_reviewed_and_escalated(self) -> None:
        """An immediate item goes to the decision at once; reworked on a later day, its review opens past
        the same-day deadline, which no review was open at: escalated then, once."""
        case = accept(start("MR-003", when=(2025, 11, 3, 9)))
        assert case.ready_ids() == ["decision"]
        case.at(shanghai(2025, 11, 5, 9)).complete("decision", decision="rework", opinion="补充审查")
        assert sorted(t.element_id for t in case.ready()) == ["escalation", "review"]
        case.complete("review", result="pass", opinion="", needs_special_procedure=False)
        case.complete("decision", decision="rework", opinion="再次补充审查")
        assert sorted(t.element_id for t in case.ready()) == ["escalation", "review"]

    def test_open_escalation_is_closed_when_the_case_ends(self) -> None:
        case = self.case()
        case.at(shanghai(2025, 10, 13, 9)).fire_timers()
        case.complete("review", result="pass", opinion="", needs_special_procedure=False)
        case.complete("decision", decision="deny", opinion="不符合条件")
        assert case.ready_ids() == ["deliver_denial", "escalation"]
        case.complete("deliver_denial", delivery_method="window", delivered_on="2025-10-13")
        assert case.completed  # terminate end event: no dangling supervisor task
        assert case.ready_ids() == []

    def test_review_done_in_time_never_escalates(self) -> None:
        case = self.case()
        case.at(shanghai(2025, 10, 11, 15)).complete(
            "review", result="pass", opinion="", needs_special_procedure=False
        )
        assert case.rt.pending_timers() == []
        assert case.at(shanghai(2025, 10, 20)).fire_timers() == []
        assert "escalated" not in case.data


def test_status_history_timestamps_follow_the_injected_clock() -> None:
    t0 = shanghai(2026, 3, 2, 9)
    case = Case("single_window", CATALOGUE.get("PL-001").start_data(), t0)
    accept(case.at(t0 + timedelta(hours=2)))
    history = case.data["status_history"]
    assert [h["at"] for h in history] == [t0.isoformat()] + [(t0 + timedelta(hours=2)).isoformat()] * 2
