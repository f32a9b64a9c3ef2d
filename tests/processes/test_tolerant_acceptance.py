"""tolerant_acceptance.bpmn: commitment letter, review at once, supplement racing a working-day deadline."""

from __future__ import annotations

import pytest

from processes.catalogue import load_catalogue
from tests.processes.driver import Case, shanghai

CATALOGUE = load_catalogue()
# Spring Festival 2026: Sun 15 - Mon 23 Feb are holidays, Sat 14 Feb and Sat 28 Feb are working days.
ACCEPTED = (2026, 2, 11, 10)  # Wednesday
DEADLINE = shanghai(2026, 2, 26)  # the whole of the 5th working day (12, 13, 14 (Sat), 24, 25 Feb)
DELIVERED = ["submitted", "accepted", "under_review", "approved", "delivered"]  # a case's status history


def accepted(code: str = "MR-001", **extra: object) -> Case:
    item = CATALOGUE.get(code)
    assert item.tolerant_allowed
    case = Case(
        "tolerant_acceptance", item.start_data(key_materials_complete=True, **extra), shanghai(*ACCEPTED)
    )
    commitment = case.task("commitment")
    assert case.groups(commitment) == ("applicant",)
    assert commitment.meta.form_key == "task.commitment"
    case.complete("commitment", missing_materials=["layout_plan"], promised_date="2026-02-25", signed=True)
    assert case.ready_ids() == ["review"]
    assert case.data["commitment_letter"]["missing_materials"] == ["layout_plan"]
    return case


def approve(case: Case) -> Case:
    assert case.groups(case.task("review")) == (CATALOGUE.get(case.data["item_code"]).department,)
    case.complete("review", result="pass", opinion="符合条件", needs_special_procedure=False)
    return case.complete("decision", decision="approve", opinion="准予许可")


def supply(case: Case) -> Case:
    assert [m.message_name for m in case.rt.pending_messages()] == ["materials_supplied"]
    assert case.deliver("materials_supplied", {"supplied_materials": ["layout_plan"]}) is True
    return case


def test_supplement_timer_is_the_working_day_deadline() -> None:
    case = accepted()
    (timer,) = case.rt.pending_timers()
    assert timer.due_at == DEADLINE
    assert case.data["supplement_deadline"] == "2026-02-26T00:00:00+08:00"  # 24:00 on 25 Feb


def test_supplied_before_decision_licence_released_after_approval() -> None:
    case = accepted()  # hold_licence_until_supplied is true for MR-001
    supply(case.at(shanghai(2026, 2, 13, 15)))
    assert case.rt.pending_timers() == []  # the race is decided
    approve(case.at(shanghai(2026, 2, 24, 10)))
    delivery = case.task("delivery")
    assert case.groups(delivery) == ("window",)
    case.complete("delivery", delivery_method="window", delivered_on="2026-02-24")
    assert case.completed
    data = case.data
    assert [h["status"] for h in data["status_history"]] == DELIVERED
    assert data["materials_supplied"] is True
    assert data["licence_released"] is True
    assert data["supplied_materials"] == ["layout_plan"]
    assert data["licence_to_issue"] == "food_business_licence"
    assert case.observed == ["submitted", "under_review", "approved", "delivered"]


def test_hold_true_licence_waits_for_the_supplement() -> None:
    case = approve(accepted())
    assert case.ready_ids() == []  # approved, licence held: waiting on the applicant only
    assert case.data["licence_released"] is False
    assert case.data["case_status"] == "approved"
    supply(case.at(shanghai(2026, 2, 25, 16)))
    assert case.ready_ids() == ["delivery"]
    assert case.data["case_status"] == "approved"  # the supplement branch did not bring back a stale status
    case.complete("delivery", delivery_method="mail", delivered_on="2026-02-26")
    assert case.completed
    assert [h["status"] for h in case.data["status_history"]] == DELIVERED
    assert case.observed == ["submitted", "under_review", "approved", "delivered"]


def test_hold_false_licence_released_at_once_then_supplement_completes_the_case() -> None:
    case = approve(accepted("HR-001"))  # hold_licence_until_supplied is false for HR-001
    assert case.ready_ids() == ["delivery_early"]
    case.complete("delivery_early", delivery_method="window", delivered_on="2026-02-12")
    assert not case.completed  # still owes the supplement
    assert case.data["licence_released"] is True
    supply(case.at(shanghai(2026, 2, 24, 9)))
    assert case.completed
    data = case.data
    assert data["case_status"] == "delivered"
    assert data["licence_released"] is True  # not overwritten by the supplement branch's copy
    assert data["materials_supplied"] is True
    assert [h["status"] for h in data["status_history"]] == DELIVERED


@pytest.mark.parametrize(
    "moment", [(2026, 2, 16, 12), (2026, 2, 20, 9), (2026, 2, 23, 23, 59), (2026, 2, 25, 23, 59, 59)]
)
def test_deadline_not_passed_during_spring_festival(moment: tuple[int, ...]) -> None:
    case = accepted()
    assert case.at(shanghai(*moment)).fire_timers() == []
    assert not case.completed
    assert case.ready_ids() == ["review"]


def test_deadline_missed_across_spring_festival_terminates_with_reason() -> None:
    case = accepted()
    case.at(shanghai(2026, 2, 24, 10)).complete(
        "review", result="pass", opinion="", needs_special_procedure=False
    )
    assert case.at(shanghai(2026, 2, 26, 0, 0, 0)).fire_timers() == ["supplement_wait"]  # 00:00 day N+1
    assert case.completed  # terminate end event: the open decision task is gone
    assert case.ready_ids() == []
    data = case.data
    assert data["case_status"] == "terminated"
    assert data["termination_reason"] == "申请人未在补正期限（5个工作日，截至 2026-02-25）内补齐容缺材料"
    assert data["terminated_at"] == shanghai(2026, 2, 26, 0, 0, 0).isoformat()
    assert [h["status"] for h in data["status_history"]] == [
        "submitted",
        "accepted",
        "under_review",
        "terminated",
    ]
    assert case.observed[-1] == "terminated"
    assert case.deliver("materials_supplied", {}) is False  # too late: nothing waits


def test_deadline_missed_after_early_delivery_still_terminates() -> None:
    case = approve(accepted("HR-001"))
    case.complete("delivery_early", delivery_method="window", delivered_on="2026-02-12")
    case.at(shanghai(2026, 3, 2, 9)).fire_timers()
    assert case.completed
    assert case.data["case_status"] == "terminated"
    assert case.data["termination_reason"].startswith("申请人未在补正期限")


def test_deny_ends_the_case_and_the_supplement_wait() -> None:
    case = accepted()
    case.complete("review", result="fail", opinion="不符合条件", needs_special_procedure=False)
    case.complete("decision", decision="deny", opinion="不予许可")
    case.complete("deliver_denial", delivery_method="window", delivered_on="2026-02-13")
    assert case.completed
    assert case.rt.pending_timers() == []
    assert [h["status"] for h in case.data["status_history"]] == [
        "submitted",
        "accepted",
        "under_review",
        "denied",
        "delivered",
    ]
    assert case.data["case_result"] == "denied"


def test_a_denial_ends_the_supplement_wait_so_the_deadline_passing_before_delivery_changes_nothing() -> None:
    """The deadline timer goes with the denial: a denied case is never terminated for materials it no
    longer needs (the lifecycle refuses denied -> terminated, so the timer would fail on every retry)."""
    case = accepted()
    case.complete("review", result="fail", opinion="不符合条件", needs_special_procedure=False)
    case.complete("decision", decision="deny", opinion="不予许可")
    assert case.rt.pending_timers() == [] and case.rt.pending_messages() == []
    assert case.at(shanghai(2026, 3, 2, 9)).fire_timers() == []
    assert case.ready_ids() == ["deliver_denial"] and case.data["case_status"] == "denied"
    case.complete("deliver_denial", delivery_method="window", delivered_on="2026-03-02")
    assert case.completed and case.observed[-1] == "delivered"


def test_rework_returns_to_review() -> None:
    case = accepted()
    case.complete("review", result="pass", opinion="", needs_special_procedure=False)
    case.complete("decision", decision="rework", opinion="补充审查")
    assert case.ready_ids() == ["review"]
    approve(case)
    assert case.data["case_status"] == "approved"


def test_key_materials_incomplete_is_returned() -> None:
    item = CATALOGUE.get("MR-001")
    case = Case("tolerant_acceptance", item.start_data(key_materials_complete=False), shanghai(*ACCEPTED))
    assert case.completed
    assert case.data["case_status"] == "returned"
    assert case.data["termination_reason"] == "主要材料不齐全，不适用容缺受理"


def test_unsigned_commitment_is_returned() -> None:
    item = CATALOGUE.get("PS-002")
    case = Case("tolerant_acceptance", item.start_data(key_materials_complete=True), shanghai(*ACCEPTED))
    case.complete("commitment", missing_materials=["floor_plan"], promised_date="2026-02-20", signed=False)
    assert case.completed
    assert [h["status"] for h in case.data["status_history"]] == ["submitted", "returned"]
    assert case.data["termination_reason"] == "申请人未签署容缺受理承诺书"
