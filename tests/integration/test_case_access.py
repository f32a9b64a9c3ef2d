"""Ratings, claims and scope (issue 8, "The rules hold"), on SQLite and PostgreSQL; races on PostgreSQL.

* Only the applicant rates a closed case, once, with an integer 1-5; two ratings at once store one.
* Claiming a task needs the right completing it needs; outside a caller's scope a task or a case answers
  exactly like one that does not exist.
* Tracking shows the applicant what the applicant may see; the officers of the case see everything.
* A calendar warning is shown on the cases whose own dates fall in a year the calendar does not know.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.bootstrap import Services
from engine.cases.access import Viewer
from engine.cases.intake import Application
from engine.cases.numbers import format_case_number
from engine.cases.status import NOTICE_DEFAULTS
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, OneWindowError
from engine.persistence.tables import audit_log, cases, tasks
from engine.service import WorkflowService
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on

BPMN = Path(__file__).parent / "bpmn"


def shanghai(y: int, m: int, d: int, h: int = 9) -> datetime:
    return datetime(y, m, d, h, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def svc(db, clock: FakeClock) -> Services:
    clock.set(shanghai(2025, 9, 29, 9))
    return services_on(db, clock)


def orgs_with_business_licence(svc: Services) -> list[Any]:
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        return [
            org
            for org in demo_organisations()
            if {lic.type_code for lic in lib.by_holder(org.credit_code)} & {"business_licence"}
            and not {lic.type_code for lic in lib.by_holder(org.credit_code)} & {"food_business_licence"}
        ]


def food_case(svc: Services, org: Any, actor: str = "applicant") -> str:
    """A food business licence case with every material handed in."""
    item = svc.catalogue.get("MR-001")
    provided = {"MR-001": [m.code for m in item.materials]}
    app = Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=provided)
    return svc.cases.submit(app, actor)


def ready_task(svc: Services, case_id: str, element: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(tasks).where(
                tasks.c.business_key == case_id, tasks.c.element_id == element, tasks.c.state == "ready"
            )
        ).one()
    return dict(row._mapping)


def do(svc: Services, case_id: str, element: str, actor: str, groups: set[str], **data: Any) -> str:
    task = ready_task(svc, case_id, element)
    svc.cases.complete_task(task["id"], data, actor, groups=groups)
    return str(task["id"])


def refused_case(svc: Services, org: Any) -> str:
    case_id = food_case(svc, org)
    do(svc, case_id, "intake", "window-1", {"window"}, decision="refuse", reason="不属于本机关职权范围")
    return case_id


def raised(call: Callable[[], object]) -> OneWindowError:
    with pytest.raises(OneWindowError) as err:
        call()
    return err.value


def assert_same_as_missing(err: OneWindowError, missing: OneWindowError, key: str, real_id: str) -> None:
    """The error for something outside the caller's scope is the error for an unknown id, word for word."""
    assert isinstance(missing, NotFound) and type(err) is type(missing)
    assert (err.code, err.message) == (missing.code, missing.message)
    assert err.detail == {**missing.detail, key: real_id}


def keys_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from keys_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from keys_in(v)


# ------------------------------------------------------------------ ratings
def test_only_the_applicant_rates_a_closed_case_once_with_an_integer_from_1_to_5(svc: Services) -> None:
    org, other = orgs_with_business_licence(svc)[:2]
    case_id = refused_case(svc, org)

    # anyone but the applicant gets what a case that does not exist gets
    unknown = format_case_number(date(2025, 9, 29), 987)
    missing = raised(lambda: svc.cases.rate(unknown, 5, "", rater=org.credit_code))
    for stranger in (other.credit_code, "", "applicant", "window-1"):
        err = raised(lambda s=stranger: svc.cases.rate(case_id, 5, "", rater=s))
        assert_same_as_missing(err, missing, "case", case_id)

    # a level is an int from 1 to 5: not a boolean, not a float, not a string
    for level in (True, False, 1.0, 5.0, "5", 0, 6, None):
        err = raised(lambda v=level: svc.cases.rate(case_id, v, "好", rater=org.credit_code))  # type: ignore[arg-type]
        assert isinstance(err, InvalidInput) and err.code == "bad_rating"
    assert raised(lambda: svc.cases.rate(case_id, 2, "  ", rater=org.credit_code)).code == "reason_required"

    svc.cases.rate(case_id, 4, "办理顺利", rater=f" {org.credit_code.lower()} ")  # ids compare normalised
    err = raised(lambda: svc.cases.rate(case_id, 5, "", rater=org.credit_code))
    assert isinstance(err, Conflict) and err.code == "already_rated"
    with svc.engine.connect() as conn:
        stored = conn.execute(
            select(cases.c.rating, cases.c.rating_comment).where(cases.c.id == case_id)
        ).one()
        rated = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(audit_log.c.action == "rated")
        ).all()
    assert tuple(stored) == (4, "办理顺利")
    assert [(a, d["level"]) for a, d in rated] == [(org.credit_code, 4)]


def test_a_case_still_open_cannot_be_rated_even_by_its_applicant(svc: Services) -> None:
    [org] = orgs_with_business_licence(svc)[:1]
    case_id = food_case(svc, org)
    err = raised(lambda: svc.cases.rate(case_id, 5, "", rater=org.credit_code))
    assert isinstance(err, Conflict) and err.code == "case_not_closed"


@pytest.mark.postgres
def test_ratings_at_the_same_instant_store_one_rating_and_one_audit_row(pg, clock: FakeClock) -> None:
    clock.set(shanghai(2025, 9, 29, 9))
    svc = services_on(pg, clock)
    org = orgs_with_business_licence(svc)[0]
    for _ in range(3):
        case_id = refused_case(svc, org)
        barrier = threading.Barrier(8)

        def rate(level: int, case_id: str = case_id, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            try:
                svc.cases.rate(case_id, level, "并发评价", rater=org.credit_code)
                return f"won:{level}"
            except Conflict as exc:
                return exc.code

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(rate, [1, 2, 3, 4, 5, 5, 4, 3]))
        won = [r for r in results if r.startswith("won:")]
        assert len(won) == 1 and set(results) - set(won) == {"already_rated"}
        with pg.connect() as conn:
            stored = conn.execute(select(cases.c.rating).where(cases.c.id == case_id)).scalar_one()
            audits = conn.execute(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "rated", audit_log.c.business_key == case_id)
            ).scalar_one()
        assert won == [f"won:{stored}"] and audits == 1


# ------------------------------------------------------------------ claims and scope of tasks
@pytest.fixture
def workflow(svc: Services) -> WorkflowService:
    """``three_tasks`` without forms; the review task has the candidate user ``wang`` only."""
    xml = (BPMN / "three_tasks.bpmn").read_text()
    xml = xml.replace(' ow:formKey="task.intake"', "").replace(
        'ow:candidateGroups="market"', 'ow:candidateUsers="wang"'
    )
    svc.workflow.deploy(xml.encode(), "three_users.bpmn", "designer")
    return svc.workflow


def test_claiming_needs_the_right_to_complete_and_outside_it_the_task_does_not_exist(
    svc: Services, workflow: WorkflowService
) -> None:
    [intake] = workflow.start("three_tasks", {}, "a").opened_tasks
    unknown = str(uuid.uuid4())
    missing_claim = raised(lambda: workflow.claim_task(unknown, "zhao", groups={"market"}))
    missing_complete = raised(lambda: svc.cases.complete_task(unknown, {}, "zhao", groups={"market"}))
    assert missing_claim.to_dict() == missing_complete.to_dict()

    # not a member of the candidate group ``window``: neither claim nor complete, and no hint it exists
    err = raised(lambda: workflow.claim_task(intake, "zhao", groups={"market", "applicant"}))
    assert_same_as_missing(err, missing_claim, "task_id", intake)
    err = raised(lambda: svc.cases.complete_task(intake, {}, "zhao", groups={"market"}))
    assert_same_as_missing(err, missing_complete, "task_id", intake)

    workflow.claim_task(intake, "qian", groups={"window"})
    err = raised(lambda: workflow.claim_task(intake, "zhou", groups={"window"}))
    assert isinstance(err, Conflict) and err.code == "task_not_claimable"
    err = raised(lambda: svc.cases.complete_task(intake, {}, "zhou", groups={"window"}))
    assert isinstance(err, Forbidden) and err.code == "claimed_by_other"
    opened = svc.cases.complete_task(intake, {}, "qian", groups={"window"}).opened_tasks
    # once done, an outsider still learns nothing (not "task_not_ready")
    err = raised(lambda: svc.cases.complete_task(intake, {}, "zhao", groups={"market"}))
    assert_same_as_missing(err, missing_complete, "task_id", intake)

    # a candidate user has the right without any group; a group member without being the user has not
    [review] = opened
    err = raised(lambda: workflow.claim_task(review, "li", groups={"market", "window"}))
    assert_same_as_missing(err, missing_claim, "task_id", review)
    workflow.claim_task(review, "wang", groups=set())
    with svc.engine.connect() as conn:
        claims = conn.execute(
            select(audit_log.c.actor, audit_log.c.task_id).where(audit_log.c.action == "claim")
        ).all()
    assert sorted(claims) == sorted([("qian", intake), ("wang", review)])


# ------------------------------------------------------------------ scope of cases and tracking
def test_a_case_outside_the_callers_scope_answers_like_a_case_that_does_not_exist(svc: Services) -> None:
    org, other = orgs_with_business_licence(svc)[:2]
    case_id = food_case(svc, org)
    unknown = format_case_number(date(2025, 9, 29), 987)
    missing = raised(lambda: svc.cases.track(unknown, Viewer.applicant(org.credit_code)))
    for stranger in (
        Viewer.applicant(other.credit_code),
        Viewer.officer("he", {"planning", "health"}),  # no task of the case is theirs
        Viewer.officer("applicant", {"applicant"}),  # the applicants' group makes nobody an officer
        Viewer(),
    ):
        assert_same_as_missing(
            raised(lambda v=stranger: svc.cases.track(case_id, v)), missing, "case", case_id
        )
    assert svc.cases.track(case_id, Viewer.applicant(org.credit_code))["view"] == "applicant"
    assert svc.cases.track(case_id)["view"] == "applicant"  # no viewer: the applicant's (public) view
    # officers of the case: the intake is the window's, the case is the market department's
    assert svc.cases.track(case_id, Viewer.officer("w", {"window"}))["view"] == "officer"
    assert svc.cases.track(case_id, Viewer.officer("m", {"market"}))["view"] == "officer"


OFFICERS = ("窗口张三", "市场李四", "市场王五", "窗口赵六")
OPINIONS = ("内部意见甲：材料齐全予以受理", "内部意见乙：经营场所符合条件", "内部意见丙：同意准予许可")


def test_the_applicant_sees_status_steps_dates_and_no_officer_names_or_opinions(
    svc: Services, clock: FakeClock
) -> None:
    org = orgs_with_business_licence(svc)[0]
    case_id = food_case(svc, org, actor="窗口张三")
    clock.advance(minutes=10)
    do(svc, case_id, "intake", "窗口张三", {"window"}, decision="accept", opinion=OPINIONS[0])
    clock.advance(minutes=10)
    review = ready_task(svc, case_id, "review")
    svc.workflow.claim_task(review["id"], "市场李四", groups={"market"})
    review_data = {"result": "pass", "opinion": OPINIONS[1], "needs_special_procedure": False}
    do(svc, case_id, "review", "市场李四", {"market"}, **review_data)
    clock.advance(minutes=10)
    do(svc, case_id, "decision", "市场王五", {"market"}, decision="approve", opinion=OPINIONS[2])
    clock.advance(minutes=10)
    do(svc, case_id, "delivery", "窗口赵六", {"window"}, delivery_method="online", delivered_on="2025-09-29")

    full = svc.cases.track(case_id, Viewer.officer("市场王五", {"market"}))
    full_text = json.dumps(full, default=str, ensure_ascii=False)
    assert full["view"] == "officer"
    assert all(x in full_text for x in OFFICERS + OPINIONS)  # the data is there for the officers

    for view in (svc.cases.track(case_id, Viewer.applicant(org.credit_code)), svc.cases.track(case_id)):
        text = json.dumps(view, default=str, ensure_ascii=False)
        assert view["view"] == "applicant"
        assert not [x for x in OFFICERS + OPINIONS if x in text]
        leaky = {"actor", "assignee", "completed_by", "candidate_users", "data", "opinion"}
        assert not leaky & set(keys_in(view))
        # what the applicant may see: status, result, steps, dates, materials, case clocks, the timeline
        assert (view["case"]["status"], view["status_label"], view["result_label"]) == (
            "delivered",
            "已送达",
            "准予许可",
        )
        assert view["case"]["status_reason"] is None and view["notices"] == []
        assert all(view["case"][k] for k in ("submitted_at", "accepted_at", "decided_at", "closed_at"))
        assert [t["name"] for t in view["tasks"]] == ["一窗受理审核", "部门审查", "作出决定", "出证送达"]
        assert all(t["state"] == "completed" and t["completed_at"] for t in view["tasks"])
        assert {m["state"] for m in view["materials"]} <= {"provided", "satisfied_by_licence"}
        assert view["missing"] == []
        assert sorted(c["kind"] for c in view["clocks"]) == ["legal", "promised"]  # no step clocks
        timeline = [(e["action"], e["detail"].get("to")) for e in view["events"]]
        assert timeline == [
            ("case_submitted", None),
            ("case_status", "accepted"),
            ("case_status", "under_review"),
            ("case_status", "approved"),
            ("case_status", "delivered"),
        ]


def test_the_applicant_is_told_what_is_missing_and_why_a_case_was_refused(svc: Services) -> None:
    org = orgs_with_business_licence(svc)[0]
    case_id = svc.cases.submit(
        Application(
            org.credit_code,
            org.name,
            ["MR-001"],
            form=dict(FOOD_FORM),
            provided={"MR-001": ["application", "legal_rep_id"]},
        ),
        "窗口张三",
    )
    view = svc.cases.track(case_id, Viewer.applicant(org.credit_code))
    assert {m["code"] for m in view["missing"]} == {"layout_plan", "safety_rules", "manager_health"}
    assert all(set(m) == set(view["materials"][0]) for m in view["missing"])
    refusal = {"decision": "refuse", "reason": "不属于本机关职权范围", "opinion": OPINIONS[0]}
    do(svc, case_id, "intake", "窗口张三", {"window"}, **refusal)
    view = svc.cases.track(case_id, Viewer.applicant(org.credit_code))
    text = json.dumps(view, default=str, ensure_ascii=False)
    assert OPINIONS[0] not in text and "窗口张三" not in text
    assert view["case"]["status_reason"] == "不属于本机关职权范围"
    assert [(n["status"], n["label"], n["reason"]) for n in view["notices"]] == [
        ("refused", "不予受理", "不属于本机关职权范围")
    ]


def test_each_notice_gives_its_own_reason_and_never_an_officers_internal_opinion(svc: Services) -> None:
    """A supplement notice without a reason says the standard notice, not the officer's opinion; a later
    denial gives the decision's grounds, not the reason an earlier supplement notice gave."""
    org = orgs_with_business_licence(svc)[0]
    missing = ["layout_plan", "safety_rules", "manager_health"]

    def case_with_missing() -> str:
        provided = {"MR-001": ["application", "legal_rep_id"]}
        app = Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=provided)
        return svc.cases.submit(app, "applicant")

    def notices(case_id: str) -> list[tuple[str, str]]:
        view = svc.cases.track(case_id, Viewer.applicant(org.credit_code))
        assert OPINIONS[0] not in json.dumps(view, default=str, ensure_ascii=False)
        return [(n["status"], n["reason"]) for n in view["notices"]]

    quiet = case_with_missing()
    do(
        svc,
        quiet,
        "intake",
        "窗口张三",
        {"window"},
        decision="supplement",
        missing_materials=missing,
        opinion=OPINIONS[0],
    )
    assert notices(quiet) == [("supplement_requested", NOTICE_DEFAULTS["supplement_requested"])]

    case_id = case_with_missing()
    asked = "请补交平面布局图、管理制度和健康证明"
    do(
        svc,
        case_id,
        "intake",
        "窗口张三",
        {"window"},
        decision="supplement",
        missing_materials=missing,
        reason=asked,
    )
    supply = ready_task(svc, case_id, "supplement")
    svc.cases.complete_task(
        supply["id"],
        {"supplied_materials": missing},
        "applicant",
        groups={"applicant"},
        holder_id=org.credit_code,
    )
    do(svc, case_id, "intake", "窗口张三", {"window"}, decision="accept", opinion=OPINIONS[0])
    do(
        svc,
        case_id,
        "review",
        "市场李四",
        {"market"},
        result="fail",
        opinion=OPINIONS[1],
        needs_special_procedure=False,
    )
    grounds = "经营场所不符合食品安全条件，不予许可"
    do(svc, case_id, "decision", "市场王五", {"market"}, decision="deny", opinion=grounds)
    assert notices(case_id) == [("supplement_requested", asked), ("denied", grounds)]
    assert svc.cases.track(case_id, Viewer.applicant(org.credit_code))["case"]["status_reason"] == grounds


# ------------------------------------------------------------------ calendar warnings per case
def test_a_calendar_warning_shows_on_the_cases_whose_dates_fall_in_an_unknown_year(
    svc: Services, clock: FakeClock
) -> None:
    unknown_year = svc.calendar().known_years().stop  # the first year the holiday calendar does not know
    org, other = orgs_with_business_licence(svc)[:2]
    old = refused_case(svc, org)  # September 2025: every date in a known year
    assert svc.cases.track(old)["calendar_warnings"] == []

    clock.set(shanghai(unknown_year - 1, 12, 24, 10))
    late = food_case(svc, other)
    # the intake's limit ends on the last working day of the known year: nothing unknown yet
    assert svc.cases.track(late)["calendar_warnings"] == []
    do(svc, late, "intake", "window-1", {"window"}, decision="accept", opinion="齐全")
    # the case clocks run into the unknown year: this case is warned, with its year named
    warnings = svc.cases.track(late, Viewer.applicant(other.credit_code))["calendar_warnings"]
    assert len(warnings) == 1 and str(unknown_year) in warnings[0]
    assert svc.cases.track(late, Viewer.officer("w", {"window"}))["calendar_warnings"] == warnings
    # the process-wide calendar knows of the unknown year now; the 2025 case is still not warned
    assert any(str(unknown_year) in w for w in svc.calendar().warnings)
    assert svc.cases.track(old)["calendar_warnings"] == []
