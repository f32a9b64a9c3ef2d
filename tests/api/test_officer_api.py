"""The officer API over HTTP (issue 10): the inbox of one's departments (filters, order, keyset pages,
yellow/red badges, counts), the task page, every action the flows allow and its refusal where they do
not, claim and release, the officer view of a case and the withdrawal decision.

Cases are submitted through the case service (the applicant's API is another group's); every officer
signs in through ``POST /api/v1/auth/login`` and acts over HTTP only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.cases.numbers import format_case_number
from engine.persistence.tables import audit_log, tasks
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.api.conftest import error_of, sign_in
from tests.conftest import FOOD_FORM, FakeClock
from tests.integration.test_cases import branches

API = "/api/v1/officer"
SignIn = Callable[..., TestClient]


def shanghai(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    """Monday 3 November 2025, 09:00 in Beijing: a plain working week ahead."""
    clock.set(shanghai(2025, 11, 3, 9))


# ------------------------------------------------------------------ cases
def org_with(svc: Services, has: set[str], lacks: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        for org in demo_organisations():
            types = {lic.type_code for lic in lib.by_holder(org.credit_code)}
            if has <= types and not (lacks & types):
                return org
    raise AssertionError("no demo organisation fits")


def every_material(svc: Services, *items: str) -> dict[str, list[str]]:
    return {code: [m.code for m in svc.catalogue.get(code).materials] for code in items}


def food_case(svc: Services, *, green: bool = False, missing: tuple[str, ...] = ()) -> str:
    """A food business licence case (MR-001, market): intake at the counter (``window``)."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    provided = {"MR-001": [c for c in every_material(svc, "MR-001")["MR-001"] if c not in missing]}
    app = Application(
        org.credit_code,
        org.name,
        ["MR-001"],
        form=dict(FOOD_FORM),
        provided=provided,
        priority="green" if green else "normal",
    )
    return svc.cases.submit(app, "applicant")


def joint_case(svc: Services) -> str:
    """A joint approval of MR-001 (market, lead) and HE-001 (health)."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    app = Application(
        org.credit_code,
        org.name,
        ["MR-001", "HE-001"],
        lead_department="market",
        form=dict(FOOD_FORM),
        provided=every_material(svc, "MR-001", "HE-001"),
    )
    return svc.cases.submit(app, "applicant")


def tolerant_case(svc: Services) -> str:
    """A tolerant acceptance of MR-001 whose commitment letter the applicant has signed."""
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    provided = {"MR-001": ["application", "legal_rep_id"]}
    app = Application(
        org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), tolerant=True, provided=provided
    )
    case_id = svc.cases.submit(app, "applicant")
    commitment = ready(svc, case_id)["commitment"]
    letter = {
        "missing_materials": ["layout_plan", "safety_rules", "manager_health"],
        "promised_date": "2025-11-10",
        "signed": True,
    }
    svc.cases.complete_task(commitment["id"], letter, "applicant")
    return case_id


def ready(svc: Services, case_id: str) -> dict[str, dict[str, Any]]:
    """The case's ready tasks by element id (a multi-instance element: the last branch)."""
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(tasks).where(tasks.c.business_key == case_id, tasks.c.state == "ready")
        ).all()
    return {r.element_id: dict(r._mapping) for r in rows}


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def inbox(client: TestClient, **params: Any) -> dict[str, Any]:
    return ok(client.get(f"{API}/inbox", params=params))


def act(client: TestClient, task_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}/tasks/{task_id}/{action}", json=body or {})


def same_as_missing(outside: Any, missing: Any, code: str, key: str, real: str) -> None:
    """Outside the caller's scope the answer is the answer for an unknown id, word for word."""
    a, b = error_of(outside, 404, code), error_of(missing, 404, code)
    assert (a["message"], a["detail"]) == (b["message"], {**b["detail"], key: real})


@pytest.fixture
def window(signed_in: SignIn) -> TestClient:
    """A counter officer of the market department: intake and delivery (group ``window``) and market."""
    return signed_in("win.li", "officer", departments=["market"], intake=True)


@pytest.fixture
def market(signed_in: SignIn) -> TestClient:
    return signed_in("mkt.wang", "officer", departments=["market"])


@pytest.fixture
def health(signed_in: SignIn) -> TestClient:
    return signed_in("hlt.zhao", "officer", departments=["health"])


# ------------------------------------------------------------------ the inbox: departments
def test_each_department_sees_only_its_branch_of_a_joint_case_and_a_member_of_both_sees_both(
    svc: Services, signed_in: SignIn, market: TestClient, health: TestClient
) -> None:
    both = signed_in("both.qian", "officer", departments=["market", "health"])
    planning = signed_in("pln.sun", "officer", departments=["planning"])
    case_id = joint_case(svc)
    [lead] = inbox(market)["items"]
    assert (lead["element_id"], lead["case_id"], lead["candidate_groups"]) == (
        "lead_intake",
        case_id,
        ["market"],
    )
    assert [i["code"] for i in lead["items"]] == ["MR-001", "HE-001"]
    assert lead["department"] == {"code": "market", "name": "市场监督管理局"}
    assert inbox(health)["items"] == [] and inbox(planning)["items"] == []

    accepted = ok(act(market, lead["id"], "accept", {"opinion": "材料齐全，予以受理"}))
    assert accepted["case_status"] == "under_review"
    assert sorted(t["candidate_groups"][0] for t in accepted["opened_tasks"]) == ["health", "market"]
    by_dept = branches(svc, case_id)

    def ids(client: TestClient) -> set[str]:
        return {i["id"] for i in inbox(client)["items"]}

    assert ids(market) == {by_dept["market"]}
    assert ids(health) == {by_dept["health"]}
    assert ids(both) == {by_dept["market"], by_dept["health"]}
    assert ids(planning) == set()
    # a department may read the case's other branch (it is an officer of the case) but not work it
    seen = ok(health.get(f"{API}/tasks/{by_dept['market']}"))
    assert seen["can_act"] is False and seen["actions"] == [
        {"action": "approve", "label": "准予许可"},
        {"action": "deny", "label": "不予许可"},
    ]
    same_as_missing(
        act(health, by_dept["market"], "approve", {"opinion": "同意"}),
        act(health, "00000000-0000-0000-0000-000000000000", "approve", {"opinion": "同意"}),
        "task_not_found",
        "task_id",
        by_dept["market"],
    )
    # an officer of no department of the case: neither the task page nor any action answers
    for call in (
        lambda tid: planning.get(f"{API}/tasks/{tid}"),
        lambda tid: act(planning, tid, "approve", {"opinion": "同意"}),
        lambda tid: act(planning, tid, "claim"),
        lambda tid: act(planning, tid, "complete", {"data": {"decision": "approve", "opinion": "同意"}}),
    ):
        same_as_missing(
            call(by_dept["health"]),
            call("00000000-0000-0000-0000-000000000000"),
            "task_not_found",
            "task_id",
            by_dept["health"],
        )


# ------------------------------------------------------------------ the inbox: filters, order, pages
def accept(svc: Services, case_id: str) -> None:
    intake = ready(svc, case_id)["intake"]
    svc.cases.complete_task(
        intake["id"], {"decision": "accept", "opinion": "受理"}, "win.li", groups={"window"}
    )


def start_special(svc: Services, case_id: str) -> None:
    review = ready(svc, case_id)["review"]
    data = {
        "result": "pass",
        "opinion": "需现场核查",
        "needs_special_procedure": True,
        "special_kind": "inspection",
    }
    svc.cases.complete_task(review["id"], data, "mkt.wang", groups={"market"})


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def order_key(sort: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    far = datetime.max.replace(tzinfo=UTC)

    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        due = when(item["due_at"])
        due_key = (due is None, due or far)
        green = (not item["green_channel"],)
        head = green + due_key if sort == "priority" else due_key + green
        return (*head, when(item["created_at"]), item["id"])

    return key


def all_pages(client: TestClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = inbox(client, limit=limit, **params)
    while True:
        assert len(page["items"]) <= limit
        out += page["items"]
        if page["next_cursor"] is None:
            return out
        page = inbox(client, limit=limit, cursor=page["next_cursor"], **params)


@pytest.fixture
def many(svc: Services, clock: FakeClock) -> dict[str, str]:
    """Nine tasks in the counter officer's inbox (window + market), made over two days."""
    ids: dict[str, str] = {}
    ids["n1"] = food_case(svc)
    clock.set(shanghai(2025, 11, 3, 10))
    ids["g1"] = food_case(svc, green=True)
    clock.set(shanghai(2025, 11, 4, 9))
    ids["n2"], ids["n3"] = food_case(svc), food_case(svc)  # the same instant: ordered by task id
    clock.set(shanghai(2025, 11, 4, 11))
    ids["g2"] = food_case(svc, green=True)
    clock.set(shanghai(2025, 11, 4, 12))
    ids["j"] = joint_case(svc)
    clock.set(shanghai(2025, 11, 4, 13))
    ids["s1"], ids["s2"], ids["r"] = food_case(svc), food_case(svc), food_case(svc)
    for key in ("s1", "s2", "r"):
        accept(svc, ids[key])
    start_special(svc, ids["s1"])
    start_special(svc, ids["s2"])
    clock.set(shanghai(2025, 11, 5, 9))
    return ids


def test_inbox_filters_by_item_state_clock_and_claim(
    svc: Services, window: TestClient, many: dict[str, str]
) -> None:
    sign_in(window, "win.li")  # the clock moved on two days: a new session
    full = inbox(window, limit=100)
    assert len(full["items"]) == 9 and full["next_cursor"] is None
    assert full["counts"] == {"total": 9, "due_today": 0, "overdue": 0}

    def cases_of(**params: Any) -> set[str]:
        return {i["case_id"] for i in inbox(window, limit=100, **params)["items"]}

    assert cases_of(item="HE-001") == {many["j"]}
    assert cases_of(item="MR-001") == set(many.values())
    assert cases_of(item="PL-001") == set()
    assert cases_of(state="special_procedure") == {many["s1"], many["s2"]}
    assert cases_of(state="under_review") == {many["r"]}
    assert cases_of(clock="normal") == set(many.values())
    assert cases_of(clock="red") == set() and cases_of(clock="yellow") == set()
    review = next(i for i in full["items"] if i["case_id"] == many["r"])
    assert review["clock"]["kind"] == "promised" and review["due_at"] == review["clock"]["due_at"]
    special = next(i for i in full["items"] if i["case_id"] == many["s1"])
    assert special["clock"] is None and special["due_at"] is None and special["badge"] == "normal"
    intake = next(i for i in full["items"] if i["case_id"] == many["n1"])
    assert intake["clock"]["kind"] == "task" and intake["due_at"] == "2025-11-10T16:00:00Z"  # 24:00 Beijing

    assert cases_of(claim="mine") == set()
    ok(act(window, review["id"], "claim"))
    assert cases_of(claim="mine") == {many["r"]}
    assert cases_of(claim="unclaimed") == set(many.values()) - {many["r"]}
    assert next(i for i in inbox(window, claim="mine")["items"])["claimed_by_me"] is True

    assert error_of(window.get(f"{API}/inbox", params={"item": "XX-999"}), 422, "unknown_item")
    assert error_of(window.get(f"{API}/inbox", params={"state": "bogus"}), 422, "bad_state")
    error_of(window.get(f"{API}/inbox", params={"clock": "blue"}), 422, "invalid_request")
    error_of(window.get(f"{API}/inbox", params={"limit": 0}), 422, "invalid_request")
    error_of(window.get(f"{API}/inbox", params={"cursor": "not-a-cursor"}), 422, "bad_cursor")


@pytest.mark.parametrize("sort", ["priority", "due"])
def test_inbox_order_and_pages_concatenate_to_the_full_list(
    svc: Services, window: TestClient, many: dict[str, str], sort: str
) -> None:
    sign_in(window, "win.li")
    full = inbox(window, limit=100, sort=sort)["items"]
    assert full == sorted(full, key=order_key(sort))
    by_case = [i["case_id"] for i in full]
    assert by_case[-2:] in ([many["s1"], many["s2"]], [many["s2"], many["s1"]])  # no due date: last
    if sort == "priority":
        assert by_case[:2] == [many["g1"], many["g2"]]  # green channel first
    else:
        assert by_case[:3] == [many["g1"], many["n1"], many["g2"]]  # due 10, 10 (green first), 11 Nov
    for limit in (1, 2, 4):
        pages = all_pages(window, limit, sort=sort)
        assert [i["id"] for i in pages] == [i["id"] for i in full]
    # a cursor belongs to its sort order
    first = inbox(window, limit=2, sort=sort)
    other = "due" if sort == "priority" else "priority"
    error_of(
        window.get(f"{API}/inbox", params={"sort": other, "cursor": first["next_cursor"]}), 422, "bad_cursor"
    )


def test_a_task_written_after_the_cursor_comes_on_a_later_page_without_duplicates(
    svc: Services, window: TestClient, many: dict[str, str]
) -> None:
    sign_in(window, "win.li")
    first = inbox(window, limit=2)
    assert [i["case_id"] for i in first["items"]] == [many["g1"], many["g2"]]
    late = food_case(svc, green=True)  # green, due on 12 Nov: after g2, before every normal task
    rest = []
    page = inbox(window, limit=3, cursor=first["next_cursor"])
    while True:
        rest += page["items"]
        if page["next_cursor"] is None:
            break
        page = inbox(window, limit=3, cursor=page["next_cursor"])
    ids = [i["id"] for i in first["items"] + rest]
    assert len(ids) == len(set(ids)) == 10
    assert ids == [i["id"] for i in inbox(window, limit=100)["items"]]
    assert rest[0]["case_id"] == late


# ------------------------------------------------------------------ badges
def test_badges_turn_yellow_then_red_as_the_clock_moves_and_the_counts_follow(
    svc: Services, window: TestClient, clock: FakeClock
) -> None:
    at_intake = food_case(svc)  # the counter's 5 working days: due at the end of Mon 10 Nov
    in_review = food_case(svc)
    accept(svc, in_review)  # the review counts against the promised limit: 10 working days, to 17 Nov

    def look(when: datetime) -> tuple[dict[str, str], dict[str, int]]:
        clock.set(when)
        sign_in(window, "win.li")
        page = inbox(window)
        return {i["case_id"]: i["badge"] for i in page["items"]}, page["counts"]

    badges, counts = look(shanghai(2025, 11, 7, 17))  # Friday: 3.7 of 5 days used
    assert badges == {at_intake: "normal", in_review: "normal"}
    assert counts == {"total": 2, "due_today": 0, "overdue": 0}

    badges, counts = look(shanghai(2025, 11, 10, 9))  # Monday: 4 of 5 used, due tonight
    assert badges == {at_intake: "yellow", in_review: "normal"}
    assert counts == {"total": 2, "due_today": 1, "overdue": 0}
    [yellow] = inbox(window, clock="yellow")["items"]
    assert (yellow["case_id"], yellow["badge_label"]) == (at_intake, "黄牌预警")
    assert [i["case_id"] for i in inbox(window, clock="normal")["items"]] == [in_review]
    page = ok(window.get(f"{API}/tasks/{yellow['id']}"))
    assert (page["task"]["badge"], page["task"]["clock"]["kind"]) == ("yellow", "task")

    badges, counts = look(shanghai(2025, 11, 11, 9))  # Tuesday: the step is overdue, the case is not
    assert badges == {at_intake: "red", in_review: "normal"}
    assert counts == {"total": 2, "due_today": 0, "overdue": 1}
    [red] = inbox(window, clock="red")["items"]
    assert (red["case_id"], red["badge_label"]) == (at_intake, "红牌超期")
    assert ok(window.get(f"{API}/tasks/{red['id']}"))["task"]["badge"] == "red"

    badges, counts = look(shanghai(2025, 11, 14, 9))  # 8 of the promised 10 days used
    assert badges == {at_intake: "red", in_review: "yellow"}
    review = next(i for i in inbox(window)["items"] if i["case_id"] == in_review)
    assert review["clock"]["kind"] == "promised" and review["due_at"] == "2025-11-17T16:00:00Z"


# ------------------------------------------------------------------ actions
def not_allowed(response: Any, step: str, allowed: list[str], action: str) -> None:
    body = error_of(response, 409, "action_not_allowed")
    assert body["detail"]["step"] == step and body["detail"]["allowed"] == allowed, body
    assert body["detail"]["action"] == action and step in body["message"]


def task_of(svc: Services, case_id: str, element: str) -> str:
    return str(ready(svc, case_id)[element]["id"])


def opinions(client: TestClient, task_id: str) -> list[tuple[str | None, str | None]]:
    """(step, opinion) of every completion in the history shown on the task page."""
    history = ok(client.get(f"{API}/tasks/{task_id}"))["history"]
    return [(h["step"], h["opinion"]) for h in history if h["action"] == "complete"]


def test_the_single_window_flow_action_by_action_each_refused_where_the_flow_does_not_allow_it(
    svc: Services, signed_in: SignIn, clock: FakeClock
) -> None:
    case_id = food_case(svc, missing=("layout_plan",))
    clock.set(shanghai(2025, 11, 5, 10))
    window = signed_in("win.li", "officer", departments=["market"], intake=True)
    market = signed_in("mkt.wang", "officer", departments=["market"])

    intake = task_of(svc, case_id, "intake")
    page = ok(window.get(f"{API}/tasks/{intake}"))
    assert [a["action"] for a in page["actions"]] == ["accept", "supplement", "refuse"]
    assert page["can_act"] is True
    not_allowed(
        act(window, intake, "approve", {"opinion": "同意"}),
        "一窗受理审核",
        ["accept", "supplement", "refuse"],
        "approve",
    )
    # the engine's rules still hold behind the action: nothing accepted while a material is missing
    assert error_of(act(window, intake, "accept"), 422, "materials_incomplete")["detail"]["materials"] == [
        "layout_plan"
    ]
    assert error_of(act(window, intake, "supplement", {"materials": ["nope"]}), 422, "unknown_material")

    done = ok(act(window, intake, "supplement", {"materials": ["layout_plan"], "reason": "缺少平面布局图"}))
    assert done["case_status"] == "supplement_requested" and done["action"] == "supplement"
    assert [t["element_id"] for t in done["opened_tasks"]] == ["supplement"]
    assert done["opened_tasks"][0]["candidate_groups"] == ["applicant"]
    # the applicant's own step is no officer's: not in the inbox, no action on it
    assert all(i["element_id"] != "supplement" for i in inbox(window)["items"])
    supplement = done["opened_tasks"][0]["id"]
    error_of(
        act(window, supplement, "complete", {"data": {"supplied_materials": ["layout_plan"]}}),
        404,
        "task_not_found",
    )
    svc.cases.complete_task(supplement, {"supplied_materials": ["layout_plan"]}, "applicant")

    intake = task_of(svc, case_id, "intake")
    done = ok(act(window, intake, "accept", {"opinion": "材料齐全，予以受理"}))
    assert done["case_status"] == "under_review"
    review = done["opened_tasks"][0]["id"]
    assert done["opened_tasks"][0]["element_id"] == "review"
    not_allowed(act(market, review, "accept"), "部门审查", ["review", "start_special_procedure"], "accept")

    done = ok(act(market, review, "special-procedure/start", {"kind": "inspection", "opinion": "需现场核查"}))
    assert done["case_status"] == "special_procedure" and done["action"] == "start_special_procedure"
    special = done["opened_tasks"][0]["id"]
    page = ok(market.get(f"{API}/tasks/{special}"))
    assert page["form"]["values"] == {"kind": "inspection"}  # pre-filled from the review
    assert page["form"]["provenance"]["kind"]["source"] == "task"
    assert page["form"]["provenance"]["kind"]["element_id"] == "review"
    not_allowed(
        act(market, special, "review", {"result": "pass", "opinion": "通过"}),
        "特别程序",
        ["end_special_procedure"],
        "review",
    )
    done = ok(
        act(
            market,
            special,
            "special-procedure/end",
            {"result": "现场核查合格", "started_on": "2025-11-05", "finished_on": "2025-11-05"},
        )
    )
    assert done["case_status"] == "under_review" and done["action"] == "end_special_procedure"

    review = task_of(svc, case_id, "review")
    done = ok(act(market, review, "review", {"result": "fail", "opinion": "场所布局不符合要求"}))
    decision = done["opened_tasks"][0]["id"]
    assert done["opened_tasks"][0]["element_id"] == "decision"
    not_allowed(
        act(market, decision, "deliver", {"method": "window"}),
        "作出决定",
        ["approve", "deny", "rework"],
        "deliver",
    )
    done = ok(act(market, decision, "rework", {"opinion": "请补充核实布局"}))
    assert done["opened_tasks"][0]["element_id"] == "review" and done["case_status"] == "under_review"
    review = done["opened_tasks"][0]["id"]
    decision = ok(act(market, review, "review", {"result": "pass", "opinion": "符合条件"}))["opened_tasks"][
        0
    ]["id"]
    done = ok(act(market, decision, "approve", {"opinion": "准予许可"}))
    assert done["case_status"] == "approved"
    delivery = done["opened_tasks"][0]["id"]
    assert done["opened_tasks"][0]["element_id"] == "delivery"
    not_allowed(act(window, delivery, "approve", {"opinion": "同意"}), "出证送达", ["deliver"], "approve")
    done = ok(act(window, delivery, "deliver", {"method": "mail"}))
    assert (done["case_status"], done["instance_status"], done["opened_tasks"]) == (
        "delivered",
        "completed",
        [],
    )

    # every step's opinion is in the history, defaults where the officer gave none
    assert opinions(window, delivery) == [
        ("一窗受理审核", "缺少平面布局图"),
        ("申请人补正材料", None),
        ("一窗受理审核", "材料齐全，予以受理"),
        ("部门审查", "需现场核查"),
        ("特别程序", "现场核查合格"),
        ("部门审查", "场所布局不符合要求"),
        ("作出决定", "请补充核实布局"),
        ("部门审查", "符合条件"),
        ("作出决定", "准予许可"),
        ("出证送达", "已送达"),
    ]
    history = ok(window.get(f"{API}/tasks/{delivery}"))["history"]
    delivered = [h for h in history if h["action"] == "complete"][-1]
    assert delivered["actor"] == "win.li"
    assert delivered["detail"]["data"] == {
        "delivery_method": "mail",
        "delivered_on": "2025-11-05",
        "opinion": "已送达",
    }
    # a finished step: nothing allowed, any action is a conflict
    page = ok(window.get(f"{API}/tasks/{delivery}"))
    assert (page["task"]["state"], page["actions"], page["can_act"]) == ("completed", [], False)
    assert error_of(act(window, delivery, "deliver", {"method": "mail"}), 409, "task_not_ready")
    assert error_of(act(window, delivery, "complete", {"data": {}}), 409, "task_not_ready")


def test_the_dates_an_officer_records_lie_between_the_step_of_the_case_they_follow_and_today(
    svc: Services, window: TestClient, market: TestClient, clock: FakeClock
) -> None:
    def at(day: int) -> None:  # a new working day, a new session
        clock.set(shanghai(2025, 11, day, 10))
        sign_in(window, "win.li")
        sign_in(market, "mkt.wang")

    case_id = food_case(svc)  # received Monday 3 November
    at(5)
    ok(act(window, task_of(svc, case_id, "intake"), "accept", {"opinion": "受理"}))  # accepted the 5th
    review = task_of(svc, case_id, "review")
    ok(act(market, review, "special-procedure/start", {"kind": "inspection", "opinion": "需现场核查"}))
    special = task_of(svc, case_id, "special_procedure")
    at(7)

    def end(started: str, finished: str) -> Any:
        body = {"result": "合格", "started_on": started, "finished_on": finished}
        return act(market, special, "special-procedure/end", body)

    for started, finished, field, code in (
        ("2025-11-04", "2025-11-05", "started_on", "date_too_early"),  # before the acceptance
        ("1900-01-01", "1900-01-02", "started_on", "date_too_early"),
        ("2025-11-05", "2999-01-01", "finished_on", "date_too_late"),
    ):
        body = error_of(end(started, finished), 422, "invalid_form")
        assert body["detail"]["field"] == field, body
        assert body["detail"]["errors"][0]["code"] == code, body
    assert (
        "受理日期（2025-11-05）" in error_of(end("2025-11-04", "2025-11-05"), 422, "invalid_form")["message"]
    )
    assert ready(svc, case_id)["special_procedure"]["id"] == special  # nothing was stored
    ok(end("2025-11-05", "2025-11-06"))

    decision = ok(
        act(market, task_of(svc, case_id, "review"), "review", {"result": "pass", "opinion": "符合"})
    )
    at(10)
    ok(act(market, decision["opened_tasks"][0]["id"], "approve", {"opinion": "准予许可"}))  # decided the 10th
    delivery = task_of(svc, case_id, "delivery")
    for day in ("2025-11-07", "1900-01-01"):
        body = error_of(
            act(window, delivery, "deliver", {"method": "mail", "delivered_on": day}), 422, "invalid_form"
        )
        assert (body["detail"]["field"], body["detail"]["errors"][0]["code"]) == (
            "delivered_on",
            "date_too_early",
        )
        assert "决定日期（2025-11-10）" in body["message"]
    assert ok(act(window, delivery, "deliver", {"method": "mail", "delivered_on": "2025-11-10"}))[
        "case_status"
    ] == ("delivered")


def test_refusal_and_denial_and_their_deliveries(
    svc: Services, window: TestClient, market: TestClient
) -> None:
    refused = food_case(svc)
    error_of(act(window, task_of(svc, refused, "intake"), "refuse", {}), 422, "invalid_request")  # a reason
    done = ok(act(window, task_of(svc, refused, "intake"), "refuse", {"reason": "不属于本机关职权范围"}))
    assert (done["case_status"], done["instance_status"]) == ("refused", "completed")
    case = ok(window.get(f"{API}/cases/{refused}"))
    assert case["case"]["status_reason"] == "不属于本机关职权范围"
    assert case["notices"][0]["reason"] == "不属于本机关职权范围"

    denied = food_case(svc)
    ok(act(window, task_of(svc, denied, "intake"), "accept"))
    ok(act(market, task_of(svc, denied, "review"), "review", {"result": "fail", "opinion": "不符合条件"}))
    error_of(act(market, task_of(svc, denied, "decision"), "deny", {"opinion": ""}), 422, "invalid_request")
    done = ok(
        act(market, task_of(svc, denied, "decision"), "deny", {"opinion": "经营场所不符合食品安全要求"})
    )
    assert done["case_status"] == "denied" and done["opened_tasks"][0]["element_id"] == "deliver_denial"
    done = ok(
        act(window, done["opened_tasks"][0]["id"], "deliver", {"method": "window", "opinion": "当面送达"})
    )
    assert done["case_status"] == "delivered"


def test_a_tolerant_review_has_no_special_procedure_branch_so_it_cannot_start_one(
    svc: Services, market: TestClient
) -> None:
    case_id = tolerant_case(svc)
    review = task_of(svc, case_id, "review")
    assert [a["action"] for a in ok(market.get(f"{API}/tasks/{review}"))["actions"]] == ["review"]
    body = {"kind": "hearing", "opinion": "需听证"}
    not_allowed(
        act(market, review, "special-procedure/start", body),
        "部门审查",
        ["review"],
        "start_special_procedure",
    )
    done = ok(act(market, review, "review", {"result": "pass", "opinion": "符合条件"}))
    assert done["opened_tasks"][0]["element_id"] == "decision"


def test_joint_review_branches_and_a_consolidation_that_cannot_overturn_a_denial(
    svc: Services, market: TestClient, health: TestClient
) -> None:
    case_id = joint_case(svc)
    ok(act(market, task_of(svc, case_id, "lead_intake"), "accept"))
    by_dept = branches(svc, case_id)
    not_allowed(
        act(market, by_dept["market"], "rework", {"opinion": "重审"}),
        "部门审查决定",
        ["approve", "deny"],
        "rework",
    )
    ok(act(market, by_dept["market"], "approve", {"opinion": "食品经营许可条件具备"}))
    done = ok(act(health, by_dept["health"], "deny", {"opinion": "卫生检测不合格"}))
    consolidation = done["opened_tasks"][0]["id"]
    assert done["opened_tasks"][0]["element_id"] == "consolidation"
    assert [a["action"] for a in ok(market.get(f"{API}/tasks/{consolidation}"))["actions"]] == ["deny"]
    not_allowed(
        act(market, consolidation, "approve", {"opinion": "同意"}), "牵头部门汇总", ["deny"], "approve"
    )
    done = ok(act(market, consolidation, "deny", {"opinion": "卫健部门不予许可"}))
    assert done["case_status"] == "denied" and done["opened_tasks"][0]["element_id"] == "deliver_result"


def test_the_generic_complete_takes_any_form_and_the_form_decides(svc: Services, window: TestClient) -> None:
    case_id = food_case(svc)
    intake = task_of(svc, case_id, "intake")
    bad = error_of(act(window, intake, "complete", {"data": {"decision": "maybe"}}), 422, "invalid_form")
    assert bad["detail"]["errors"][0]["field"] == "decision"
    assert error_of(
        act(window, intake, "complete", {"data": {"decision": "accept", "case_status": "approved"}}),
        422,
        "undeclared_fields",
    )
    assert error_of(act(window, intake, "complete", {"decision": "accept"}), 422, "invalid_request")
    assert error_of(act(window, intake, "accept", {"opinion": "x", "extra": 1}), 422, "invalid_request")
    done = ok(act(window, intake, "complete", {"data": {"decision": "accept", "opinion": "齐全"}}))
    assert (done["action"], done["case_status"]) == ("complete", "under_review")


# ------------------------------------------------------------------ claim and release
def test_claim_and_release_only_the_claimant_releases_and_a_claimed_task_is_theirs(
    svc: Services, signed_in: SignIn, window: TestClient, health: TestClient
) -> None:
    other = signed_in("win.zhou", "officer", departments=["market"], intake=True)
    case_id = food_case(svc)
    intake = task_of(svc, case_id, "intake")
    unknown = "00000000-0000-0000-0000-000000000000"

    assert error_of(act(other, intake, "release"), 409, "task_not_claimed")
    assert ok(act(window, intake, "claim")) == {"task_id": intake, "assignee": "win.li", "state": "ready"}
    assert ok(window.get(f"{API}/tasks/{intake}"))["can_act"] is True
    assert ok(other.get(f"{API}/tasks/{intake}"))["can_act"] is False
    assert error_of(act(window, intake, "claim"), 409, "task_not_claimable")
    assert error_of(act(other, intake, "claim"), 409, "task_not_claimable")
    assert error_of(act(other, intake, "release"), 403, "claimed_by_other")
    assert error_of(act(other, intake, "accept"), 403, "claimed_by_other")
    for verb in ("claim", "release"):  # outside the caller's scope: like a task that does not exist
        same_as_missing(
            act(health, intake, verb), act(health, unknown, verb), "task_not_found", "task_id", intake
        )

    assert ok(act(window, intake, "release")) == {"task_id": intake, "assignee": None, "state": "ready"}
    assert error_of(act(window, intake, "release"), 409, "task_not_claimed")
    history = ok(window.get(f"{API}/tasks/{intake}"))["history"]
    assert [(h["label"], h["actor"], h["step"]) for h in history if h["action"] in ("claim", "release")] == [
        ("认领", "win.li", "一窗受理审核"),
        ("释放认领", "win.li", "一窗受理审核"),
    ]

    ok(act(other, intake, "claim"))
    assert ok(act(other, intake, "accept"))["case_status"] == "under_review"
    assert error_of(act(other, intake, "release"), 409, "task_not_ready")
    assert error_of(act(other, intake, "claim"), 409, "task_not_claimable")


def test_a_task_the_model_assigned_is_not_released(svc: Services, window: TestClient) -> None:
    case_id = food_case(svc)
    intake = task_of(svc, case_id, "intake")
    with svc.engine.begin() as conn:  # as the projection writes a model's ow:assignee
        conn.execute(tasks.update().where(tasks.c.id == intake).values(assignee="win.li"))
    assert error_of(act(window, intake, "release"), 409, "assigned_by_model")
    with svc.engine.connect() as conn:
        assert conn.execute(select(tasks.c.assignee).where(tasks.c.id == intake)).scalar() == "win.li"
        releases = conn.execute(select(audit_log.c.id).where(audit_log.c.action == "release")).all()
    assert releases == []


def test_an_officer_moved_out_of_a_department_loses_its_claimed_task_and_case(
    svc: Services, signed_in: SignIn, market: TestClient
) -> None:
    """Leaving a department (or being disabled) gives the officer's claims there back to the department:
    the task and its case then answer like ones that do not exist, and a colleague takes the task."""
    moved = signed_in("mkt.chen", "officer", departments=["market"])
    admin = signed_in("admin.root", "administrator")
    accounts = {a["username"]: a["id"] for a in ok(admin.get("/api/v1/admin/accounts"))}
    case_id = food_case(svc)
    accept(svc, case_id)
    review = ready(svc, case_id)["review"]["id"]
    ok(act(moved, review, "claim"))
    ok(
        admin.put(
            f"/api/v1/admin/accounts/{accounts['mkt.chen']}/departments", json={"departments": ["health"]}
        )
    )
    assert ready(svc, case_id)["review"]["assignee"] is None
    with svc.engine.connect() as conn:
        (released,) = conn.execute(select(audit_log).where(audit_log.c.action == "release")).mappings().all()
    assert (released["actor"], released["task_id"]) == ("admin.root", review)
    assert released["detail"] == {"assignee": "mkt.chen", "reason": "account_departments"}
    unknown = "00000000-0000-0000-0000-000000000000"
    body = {"result": "pass", "opinion": "符合"}
    same_as_missing(
        act(moved, review, "review", body),
        act(moved, unknown, "review", body),
        "task_not_found",
        "task_id",
        review,
    )
    error_of(moved.get(f"{API}/tasks/{review}"), 404, "task_not_found")
    error_of(moved.get(f"{API}/cases/{case_id}"), 404, "case_not_found")
    assert review not in {t["id"] for t in inbox(moved)["items"]}

    ok(act(market, review, "claim"))  # the colleague's claim goes when the account is disabled
    ok(admin.put(f"/api/v1/admin/accounts/{accounts['mkt.wang']}/active", json={"active": False}))
    assert ready(svc, case_id)["review"]["assignee"] is None
    colleague = signed_in("mkt.sun", "officer", departments=["market"])
    assert ok(act(colleague, review, "review", body))["case_status"] == "under_review"


# ------------------------------------------------------------------ the task page
def test_the_task_page_shows_the_case_materials_licences_form_history_and_the_highlighted_model(
    svc: Services, window: TestClient, market: TestClient
) -> None:
    case_id = food_case(svc)
    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    with svc.engine.connect() as conn:
        [licence] = LicenceLibrary(conn).by_holder(org.credit_code, type_code="business_licence")
    intake = task_of(svc, case_id, "intake")
    page = ok(window.get(f"{API}/tasks/{intake}"))

    task, case = page["task"], page["case"]
    assert (task["element_id"], task["name"], task["state"], task["form_key"]) == (
        "intake",
        "一窗受理审核",
        "ready",
        "task.intake",
    )
    assert task["candidate_groups"] == ["window"] and task["clock"]["kind"] == "task"
    assert case["id"] == case_id and case["items"] == [{"code": "MR-001", "name": "食品经营许可"}]
    assert case["department"] == {"code": "market", "name": "市场监督管理局"}
    assert (case["applicant_id"], case["status"], case["status_label"]) == (
        org.credit_code,
        "submitted",
        "已提交",
    )

    materials = {m["code"]: m for m in page["materials"]}
    by_licence = materials["business_licence"]
    assert (by_licence["state"], by_licence["state_label"]) == ("satisfied_by_licence", "电子证照免提交")
    assert by_licence["licence"]["id"] == licence.id
    assert by_licence["licence"]["licence_number"] == licence.licence_number
    assert (by_licence["licence"]["type_name"], by_licence["licence"]["status"]) == ("营业执照", "valid")
    assert materials["application"]["state"] == "provided" and materials["application"]["licence"] is None

    assert page["form"]["definition"]["key"] == "task.intake"
    assert page["form"]["definition"]["fields"]["decision"]["options"]["supplement"] == "一次性告知补正"
    filled = page["application_form"]["provenance"]
    from_licence = [p for p in filled.values() if p["source"] == "licence"]
    assert from_licence and all(p["licence_number"] == licence.licence_number for p in from_licence)
    assert page["application_form"]["values"]["premises"] == FOOD_FORM["premises"]

    assert [h["action"] for h in page["history"]][:2] == ["case_submitted", "start"]
    assert page["history"][0]["label"] == "提交申请"
    model = page["model"]
    assert (model["key"], model["version"], model["current_element_ids"]) == ("single_window", 1, ["intake"])
    assert model["bpmn_xml"].startswith("<?xml") and 'id="intake"' in model["bpmn_xml"]
    assert 'bpmnElement="intake"' in model["bpmn_xml"]  # the diagram shape to highlight

    ok(act(window, intake, "accept", {"opinion": "齐全"}))
    review = task_of(svc, case_id, "review")
    page = ok(market.get(f"{API}/tasks/{review}"))
    assert page["model"]["current_element_ids"] == ["review"] and 'id="review"' in page["model"]["bpmn_xml"]
    assert page["task"]["clock"]["kind"] == "promised" and page["case"]["status"] == "under_review"
    accepted = [h for h in page["history"] if h["action"] == "complete"]
    assert [(h["step"], h["opinion"], h["actor"]) for h in accepted] == [("一窗受理审核", "齐全", "win.li")]
    labels = [h["label"] for h in page["history"] if h["action"] == "case_status"]
    assert labels[-2:] == ["办件状态：已受理", "办件状态：审查中"]


def test_the_joint_case_highlights_its_parallel_branches_once(svc: Services, market: TestClient) -> None:
    case_id = joint_case(svc)
    ok(act(market, task_of(svc, case_id, "lead_intake"), "accept"))
    branch = branches(svc, case_id)["market"]
    model = ok(market.get(f"{API}/tasks/{branch}"))["model"]
    assert model["key"] == "joint_approval" and model["current_element_ids"] == ["joint_review"]
    assert 'id="joint_review"' in model["bpmn_xml"]


# ------------------------------------------------------------------ the case, withdrawal, roles
def test_the_officer_case_view_and_who_may_use_the_officer_api(
    svc: Services, signed_in: SignIn, window: TestClient, health: TestClient
) -> None:
    case_id = food_case(svc)
    view = ok(window.get(f"{API}/cases/{case_id}"))
    assert view["view"] == "officer" and view["case"]["id"] == case_id and view["withdrawal"] is None
    assert [(t["element_id"], t["candidate_groups"]) for t in view["tasks"]] == [("intake", ["window"])]
    assert view["events"][0]["action"] == "case_submitted" and view["events"][0]["actor"] == "applicant"
    unknown = format_case_number(datetime(2025, 11, 3).date(), 987)
    same_as_missing(
        health.get(f"{API}/cases/{case_id}"),
        health.get(f"{API}/cases/{unknown}"),
        "case_not_found",
        "case",
        case_id,
    )

    applicant = signed_in("applicant.a", "applicant", holder_id=view["case"]["applicant_id"])
    designer = signed_in("designer.d", "designer")
    supervisor = signed_in("super.s", "supervisor")
    anonymous = TestClient(window.app, raise_server_exceptions=False)
    intake = task_of(svc, case_id, "intake")
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/inbox", None),
        ("GET", f"/tasks/{intake}", None),
        ("POST", f"/tasks/{intake}/accept", {}),
        ("POST", f"/tasks/{intake}/claim", None),
        ("GET", f"/cases/{case_id}", None),
        ("POST", f"/cases/{case_id}/withdrawal", {"grant": True}),
    ]
    for method, path, body in calls:
        for client in (applicant, designer, supervisor):
            error_of(client.request(method, API + path, json=body), 403, "forbidden_role")
        error_of(anonymous.request(method, API + path, json=body), 401, "unauthenticated")
    assert ready(svc, case_id)["intake"]["assignee"] is None  # nothing of it happened


def test_an_officer_of_the_case_grants_or_refuses_a_withdrawal(
    svc: Services, window: TestClient, health: TestClient
) -> None:
    from engine.cases.withdrawal import request_withdrawal

    case_id = food_case(svc)
    holder = ok(window.get(f"{API}/cases/{case_id}"))["case"]["applicant_id"]
    url = f"{API}/cases/{case_id}/withdrawal"
    assert error_of(window.post(url, json={"grant": True}), 409, "no_pending_withdrawal")
    request_withdrawal(svc.cases, case_id, "暂不经营", holder_id=holder, actor="applicant")
    assert error_of(health.post(url, json={"grant": True}), 404, "case_not_found")
    assert error_of(window.post(url, json={"grant": False}), 422, "required")
    refused = ok(window.post(url, json={"grant": False, "opinion": "已进入审查，请与窗口联系"}))
    assert (refused["state"], refused["decided_by"], refused["decision_note"]) == (
        "refused",
        "win.li",
        "已进入审查，请与窗口联系",
    )
    assert ok(window.get(f"{API}/cases/{case_id}"))["case"]["status"] == "submitted"

    request_withdrawal(svc.cases, case_id, "确实不再经营", holder_id=holder, actor="applicant")
    assert ok(window.get(f"{API}/cases/{case_id}"))["withdrawal"]["state"] == "pending"
    granted = ok(window.post(url, json={"grant": True, "opinion": "同意撤回"}))
    assert (granted["state"], granted["state_label"], granted["reason"]) == (
        "granted",
        "已同意撤回",
        "确实不再经营",
    )
    view = ok(window.get(f"{API}/cases/{case_id}"))
    assert view["case"]["status"] == "withdrawn" and view["withdrawal"]["state"] == "granted"
    assert [t["state"] for t in view["tasks"]] == ["cancelled"]
    assert inbox(window)["items"] == []
    assert error_of(window.post(url, json={"grant": True}), 409, "no_pending_withdrawal")


def test_the_counter_names_the_applicants_kind_when_the_id_is_valid_as_both(
    svc: Services, window: TestClient
) -> None:
    """``121101196005011081`` is a 事业单位's credit code and passes as a resident ID: without a kind the
    application is refused (nothing guessed), with one the case is of that kind; a kind the id does not
    fit is refused."""
    body = {
        "applicant_id": "121101196005011081",
        "applicant_name": "福州市某某中心",
        "items": ["HR-001"],
        "form": {"address": "福州市鼓楼区五四路1号", "contact_phone": "13800138000", "request": "申请许可"},
    }
    refused = error_of(window.post(f"{API}/counter/applications", json=body), 422, "applicant_kind_required")
    assert refused["detail"]["field"] == "applicant_kind"
    received = window.post(f"{API}/counter/applications", json={**body, "applicant_kind": "organisation"})
    case_id = ok(received, 201)["case_number"]
    assert ok(window.get(f"{API}/cases/{case_id}"))["case"]["applicant_kind"] == "organisation"
    person = {**body, "applicant_id": demo_organisations()[0].credit_code, "applicant_kind": "person"}
    error_of(window.post(f"{API}/counter/applications", json=person), 422, "holder_kind_mismatch")
    error_of(
        window.post(f"{API}/counter/applications", json={**body, "applicant_kind": "x"}),
        422,
        "invalid_request",
    )


def test_a_refused_action_names_each_field_as_the_request_body_sent_it(
    svc: Services, window: TestClient, signed_in: SignIn
) -> None:
    case_id = food_case(svc)
    intake = task_of(svc, case_id, "intake")
    refused = error_of(act(window, intake, "supplement", {"materials": ["nope"]}), 422, "unknown_material")
    assert refused["detail"]["field"] == "materials"  # the form's missing_materials is the body's materials
    refused = error_of(act(window, intake, "refuse", {"reason": " "}), 422, "invalid_form")
    assert refused["detail"]["field"] == "reason" and refused["detail"]["errors"][0]["field"] == "reason"

    org = org_with(svc, {"business_licence"}, {"food_business_licence"})
    company = signed_in("co.wu", "applicant", holder_id=org.credit_code, display_name=org.name)
    ok(company.post(f"/api/v1/applicant/cases/{case_id}/withdrawal", json={"reason": "不再需要"}), 201)
    decide = f"{API}/cases/{case_id}/withdrawal"
    for body in ({"grant": False}, {"grant": False, "opinion": "  "}):
        assert error_of(window.post(decide, json=body), 422, "required")["detail"]["field"] == "opinion"
    refused = error_of(
        window.post(decide, json={"grant": True, "opinion": "同意\u202e"}), 422, "hidden_character"
    )
    assert refused["detail"]["field"] == "opinion"
    assert ok(window.post(decide, json={"grant": False, "opinion": "已受理，继续办理"}))["state"] == "refused"
