"""joint_approval.bpmn: menu selection, lead intake, one parallel branch per chosen item, consolidation."""

from __future__ import annotations

from itertools import permutations

import pytest

from processes.catalogue import load_catalogue
from tests.processes.driver import Case, shanghai

CATALOGUE = load_catalogue()
THREE = ["MR-001", "HE-001", "PS-002"]


def start(codes: list[str], lead: str = "market") -> Case:
    return Case("joint_approval", CATALOGUE.joint_start_data(codes, lead), shanghai(2025, 11, 3, 9))


def accepted(codes: list[str], lead: str = "market") -> Case:
    case = start(codes, lead)
    intake = case.task("lead_intake")
    assert case.groups(intake) == (lead,)
    case.complete("lead_intake", decision="accept", opinion="受理")
    return case


def branches(case: Case) -> dict[str, object]:
    """Ready department branches by item code."""
    return {t.data["item"]["code"]: t for t in case.ready("joint_review")}


def test_one_branch_per_chosen_item_assigned_to_its_department() -> None:
    case = accepted(THREE)
    tasks = case.ready("joint_review")
    assert case.ready_ids() == ["joint_review"] * 3
    assert {t.data["item"]["code"]: case.groups(t) for t in tasks} == {
        "MR-001": ("market",),
        "HE-001": ("health",),
        "PS-002": ("police",),
    }
    assert all(t.meta.form_key == "task.joint_review" for t in tasks)
    assert case.statuses == ["submitted", "accepted", "under_review"]


@pytest.mark.parametrize("order", list(permutations(THREE)))
def test_all_approve_in_every_order(order: tuple[str, ...]) -> None:
    case = accepted(THREE)
    for done, code in enumerate(order, start=1):
        task = branches(case)[code]
        case.complete_task(task, decision="approve", opinion=f"{code} 同意")
        assert len(case.ready("joint_review")) == 3 - done
    assert case.ready_ids() == ["consolidation"]
    results = case.data["department_results"]
    assert sorted(results) == sorted(THREE)  # no branch overwrote another
    assert {c: (r["decision"], r["opinion"], r["department"]) for c, r in results.items()} == {
        "MR-001": ("approve", "MR-001 同意", "market"),
        "HE-001": ("approve", "HE-001 同意", "health"),
        "PS-002": ("approve", "PS-002 同意", "police"),
    }
    assert case.data["joint_outcome"] == "approve"
    assert case.groups(case.task("consolidation")) == ("market",)
    case.complete("consolidation", outcome="approve", opinion="准予并联许可")
    notice = case.data["result_notice"]
    assert notice["outcome"] == "approved"
    assert [i["code"] for i in notice["items"]] == sorted(THREE)
    assert notice["denial_opinions"] == []
    case.complete("deliver_result", delivery_method="window", delivered_on="2025-11-10")
    assert case.completed
    assert case.statuses == ["submitted", "accepted", "under_review", "approved", "delivered"]
    assert case.data["case_result"] == "approved"


@pytest.mark.parametrize("order", list(permutations(THREE)))
def test_one_denial_denies_the_whole_in_every_order(order: tuple[str, ...]) -> None:
    case = accepted(THREE)
    for code in order:
        decision = "deny" if code == "HE-001" else "approve"
        case.complete_task(branches(case)[code], decision=decision, opinion=f"{code} 意见")
    assert case.data["joint_outcome"] == "deny"
    # the lead cannot approve over a department's denial
    case.complete("consolidation", outcome="approve", opinion="牵头部门汇总")
    notice = case.data["result_notice"]
    assert notice["outcome"] == "denied"
    assert notice["denial_opinions"] == [
        {"code": "HE-001", "name": "公共场所卫生许可", "department": "health", "opinion": "HE-001 意见"}
    ]
    case.complete("deliver_result", delivery_method="window", delivered_on="2025-11-10")
    assert case.statuses == ["submitted", "accepted", "under_review", "denied", "delivered"]
    assert case.data["case_result"] == "denied"


def test_every_denying_department_opinion_is_listed() -> None:
    case = accepted(["MR-001", "HE-001", "PS-002", "HC-001"])
    for code, task in branches(case).items():
        case.complete_task(task, decision="approve" if code == "MR-001" else "deny", opinion=f"{code} 不同意")
    case.complete("consolidation", outcome="deny", opinion="")
    opinions = case.data["result_notice"]["denial_opinions"]
    assert [(o["code"], o["department"], o["opinion"]) for o in opinions] == [
        ("HC-001", "housing", "HC-001 不同意"),
        ("HE-001", "health", "HE-001 不同意"),
        ("PS-002", "police", "PS-002 不同意"),
    ]


def test_lead_may_deny_even_when_all_departments_approve() -> None:
    case = accepted(["MR-001", "HE-001"])
    for task in case.ready("joint_review"):
        case.complete_task(task, decision="approve", opinion="同意")
    case.complete("consolidation", outcome="deny", opinion="各事项存在冲突")
    assert case.data["result_notice"]["outcome"] == "denied"
    assert case.data["result_notice"]["lead_opinion"] == "各事项存在冲突"


@pytest.mark.parametrize(
    ("codes", "lead"),
    [(["PL-001", "HC-001"], "planning"), (["MR-001", "HE-001", "HR-001", "PS-002"], "market")],
)
def test_multi_instance_over_two_and_four_items(codes: list[str], lead: str) -> None:
    case = accepted(codes, lead)
    tasks = case.ready("joint_review")
    assert sorted(t.data["item"]["code"] for t in tasks) == sorted(codes)
    for task in reversed(tasks):
        case.complete_task(task, decision="approve", opinion=task.data["item"]["code"])
    results = case.data["department_results"]
    assert {c: r["opinion"] for c, r in results.items()} == {c: c for c in codes}
    assert case.ready_ids() == ["consolidation"]
    assert case.groups(case.task("consolidation")) == (lead,)


def test_supplement_then_refuse_at_lead_intake() -> None:
    case = start(["PL-001", "HC-001"], "planning")
    case.complete(
        "lead_intake", decision="supplement", missing_materials=["design_scheme"], reason="缺设计方案"
    )
    assert case.data["supplement_notice"]["materials"] == ["design_scheme"]
    assert case.task("supplement").meta.suspends_case_clock is True
    case.complete("supplement", supplied_materials=["design_scheme"])
    case.complete("lead_intake", decision="refuse", reason="项目不在本区", opinion="")
    assert case.completed
    assert case.statuses == ["submitted", "supplement_requested", "submitted", "refused"]
    assert case.data["refusal_reason"] == "项目不在本区"


def test_joint_start_data_rules() -> None:
    data = CATALOGUE.joint_start_data(["PL-001", "HC-001"], "planning")
    assert data["joint_limit_days"] == 20
    assert data["selected_items"][1] == {
        "code": "HC-001",
        "name": "建筑工程施工许可",
        "department": "housing",
    }
    for codes, lead, code in [
        ([], "market", "empty_selection"),
        (["MR-001", "MR-001"], "market", "duplicate_selection"),
        (["MR-001"], "nowhere", "unknown_department"),
        (["MR-001", "HE-001"], "police", "lead_not_involved"),
    ]:
        with pytest.raises(Exception) as err:
            CATALOGUE.joint_start_data(codes, lead)
        assert getattr(err.value, "code", None) == code
