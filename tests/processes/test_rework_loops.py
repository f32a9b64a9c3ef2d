"""single_window.bpmn returned for rework many times (issue 12): every step dumps and restores, and the
pruned case is compared with SpiffWorkflow's full tree (the driver's shadow) wherever the full tree scales."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from engine.errors import InvalidInput
from engine.workflow import Runtime
from processes.catalogue import load_catalogue
from tests.processes.driver import Case, shanghai

CATALOGUE = load_catalogue()
REVIEWED = {"result": "pass", "opinion": "", "needs_special_procedure": False}


def start(*, shadow: bool = True) -> Case:
    data = CATALOGUE.get("HC-001").start_data()
    case = Case("single_window", data, shanghai(2025, 9, 29, 9), shadow=shadow)
    return case.complete("intake", decision="accept", opinion="材料齐全")


def rework(case: Case, round_: int) -> None:
    case.complete("review", result="pass", opinion=f"第{round_}次审查", needs_special_procedure=False)
    case.complete("decision", decision="rework", opinion="请补充审查意见")


def depth(case: Case) -> int:
    deepest = 0
    for task in case.rt.workflow.tasks.values():
        level, parent = 0, task.parent
        while parent is not None:
            level, parent = level + 1, parent.parent
        deepest = max(deepest, level)
    return deepest


def approve(case: Case) -> None:
    case.complete("review", result="pass", opinion="终审", needs_special_procedure=False)
    case.complete("decision", decision="approve", opinion="同意")
    case.complete("delivery", delivery_method="window", delivered_on="2025-10-31")
    assert case.completed


def test_returned_200_times_the_case_reaches_its_decision_and_its_state_stays_one_round() -> None:
    case = start(shadow=False)
    sizes: dict[int, tuple[int, int, int]] = {}
    for round_ in range(1, 201):
        rework(case, round_)
        assert case.ready_ids() == ["review"]
        assert [t.element_id for t in case.rt.pending_timers()] == ["review_timer"]
        if round_ in (1, 200):
            sizes[round_] = (len(case.rt.dump()), len(case.rt.workflow.tasks), depth(case))
    (state_1, tasks_1, depth_1), (state_200, tasks_200, depth_200) = sizes[1], sizes[200]
    assert state_200 <= 2 * state_1 and tasks_200 <= tasks_1 and depth_200 <= depth_1
    assert case.data["rework_count"] == 200
    approve(case)
    assert case.statuses == ["submitted", "accepted", "under_review", "approved", "delivered"]
    assert case.data["rework_count"] == 200 and case.data["case_result"] == "approved"


def test_rework_with_overdue_reviews_escalations_and_special_procedures_matches_the_full_tree() -> None:
    case = start()  # the driver's shadow: the full tree, compared after every step
    special, fired, escalated = 0, 0, set[str]()
    for round_ in range(1, 16):
        case.at(case.now + timedelta(days=2))
        # overdue after some rounds: the worker fires the review timer, then each new review's timer fires
        # as the review opens (already due); escalations open, some are closed, some stay open a while
        fired += len(case.fire_timers())
        escalations = case.ready("escalation")
        escalated.update(t.task_id for t in escalations)
        for task in escalations[: len(escalations) // 2]:
            case.complete_task(task, opinion="请尽快办结", due_on="2025-11-30")
        if round_ % 4 == 0:
            started = (case.now - timedelta(days=1)).date().isoformat()
            case.complete("review", result="pending", opinion="需检测", needs_special_procedure=True)
            finished: dict[str, Any] = {"started_on": started, "finished_on": case.now.date().isoformat()}
            case.complete("special_procedure", kind="testing", result="合格", **finished)
            special += 1
        rework(case, round_)
    assert case.data["rework_count"] == 15
    assert len(case.data["special_procedure_log"]) == special == 3
    assert fired >= 1 and len(escalated) >= 1  # one escalation a deadline, however often the review reopens
    while case.ready("escalation"):
        case.complete_task(case.ready("escalation")[0], opinion="已办结", due_on="2025-11-30")
    approve(case)


def test_returned_200_times_overdue_its_timer_firing_each_round_its_state_stays_one_round() -> None:
    """Each round the review runs late: its timer fires (the first round it opens the escalation, which
    is closed; later rounds, reopened after the deadline, end on their own end event at once), a branch
    ending every round. The process's end merges those branches' data, so the tree kept them all (about
    1.8 KB a round); now only those whose data a later one does not cover."""
    case = start(shadow=False)
    sizes: dict[int, int] = {}
    for round_ in range(1, 201):
        case.at(case.now + timedelta(days=60))
        assert case.fire_timers() == (["review_timer"] if round_ == 1 else [])  # later: fired as it opened
        escalations = case.ready("escalation")
        assert len(escalations) == (1 if round_ == 1 else 0)
        for escalation in escalations:
            case.complete_task(escalation, opinion=f"第{round_}次督办", due_on="2027-11-30")
        rework(case, round_)
        if round_ in (1, 200):
            sizes[round_] = len(case.rt.dump())
    assert sizes[200] <= 2 * sizes[1], sizes
    approve(case)
    assert case.data["rework_count"] == 200


def test_a_case_stuck_on_the_full_tree_moves_again_once_restored() -> None:
    """A state stored before pruning existed, as deep as the full tree gets: its next step failed on the
    library's recursion limit (issue 12), for good. Restored, it is pruned first, and the case goes on."""
    case = start(shadow=False)
    full = Runtime.restore(case.defn, case.rt.dump(), case.now, pruning=False)
    stored, returns = "", 0
    with pytest.raises(InvalidInput) as stuck:
        while returns < 400:
            if returns > 120:
                stored = full.dump()  # what the database holds: a failed step rolls back
            for values in (REVIEWED, {"decision": "rework", "opinion": ""}):
                (task,) = full.ready_tasks()
                full.complete(task.task_id, values, case.now)
            returns += 1
    assert stuck.value.code == "too_deeply_nested" and len(json.loads(stored)["tasks"]) > 900
    case.rt = Runtime.restore(case.defn, stored, case.now)
    assert len(case.rt.workflow.tasks) < 20 and case.ready_ids() in (["review"], ["decision"])
    if case.ready_ids() == ["decision"]:
        case.complete("decision", decision="rework", opinion="")
    rework(case, returns + 1)
    approve(case)
    assert case.data["rework_count"] == returns + 1


def test_returned_for_supplements_200_times_the_state_keeps_only_the_last_statuses() -> None:
    """Every 补正 round adds two statuses (supplement_requested, submitted): the models keep only the last
    ten entries, numbered, so the state stays one round (DESIGN rule 5: the audit log has the history),
    in each flow with a supplement loop. The driver collects every entry by its number as the service
    layer does: none is lost."""
    flows = {
        "single_window": (CATALOGUE.get("HC-001").start_data(), "intake", "accept"),
        "joint_approval": (
            CATALOGUE.joint_start_data(["PL-001", "HC-001"], "planning"),
            "lead_intake",
            "accept",
        ),
    }
    for process_id, (data, intake, accept) in flows.items():
        case = Case(process_id, data, shanghai(2025, 11, 3, 9), shadow=False)
        sizes: dict[int, int] = {}
        for round_ in range(1, 201):
            case.complete(
                intake, decision="supplement", missing_materials=["design_scheme"], reason=f"第{round_}次"
            )
            case.complete("supplement", supplied_materials=["design_scheme"])
            if round_ in (1, 200):
                sizes[round_] = len(case.rt.dump())
        assert sizes[200] <= 2 * sizes[1], (process_id, sizes)
        kept = case.data["status_history"]
        assert len(kept) == 10 and [e["n"] for e in kept] == list(range(392, 402))
        assert case.statuses == ["submitted"] + ["supplement_requested", "submitted"] * 200
        assert [e["n"] for e in case.history] == list(range(1, 402))
        case.complete(intake, decision=accept, opinion="受理")
        assert case.statuses[-2:] == ["accepted", "under_review"] and case.history[-1]["n"] == 403

