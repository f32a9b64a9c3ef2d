"""The public API over HTTP (issue 10), no sign-in: the service catalogue and each item's service guide,
and tracking a case by its number and check code, without personal data, rate-limited per address and
per case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.cases.numbers import format_case_number
from engine.cases.public_tracking import TrackingPolicy
from engine.persistence.tables import cases, tasks
from tests.api.conftest import error_of
from tests.api.test_applicant_api import food_applicants, food_body
from tests.conftest import FOOD_FORM, FakeClock

PUBLIC = "/api/v1/public"
TRACK = f"{PUBLIC}/track"
POLICY = TrackingPolicy()


def ready(svc: Services, case_id: str, element: str) -> str:
    with svc.engine.connect() as conn:
        return str(
            conn.execute(
                select(tasks.c.id).where(
                    tasks.c.business_key == case_id, tasks.c.element_id == element, tasks.c.state == "ready"
                )
            ).scalar_one()
        )


def officer_does(svc: Services, case_id: str, element: str, actor: str, **data: Any) -> None:
    svc.cases.complete_task(ready(svc, case_id, element), data, actor, groups={"window", "market"})


def check_code(svc: Services, case_id: str) -> str:
    with svc.engine.connect() as conn:
        return str(conn.execute(select(cases.c.check_code).where(cases.c.id == case_id)).scalar_one())


@pytest.fixture
def from_address(app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    """Anonymous clients calling from the given address."""
    opened: list[TestClient] = []

    def make(address: str) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, client=(address, 40000))
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


# ------------------------------------------------------------------ catalogue and guides
def test_the_catalogue_lists_every_item_without_signing_in(client: TestClient, svc: Services) -> None:
    response = client.get(f"{PUBLIC}/items")
    assert response.status_code == 200, response.text
    items = response.json()
    assert [i["code"] for i in items] == [i.code for i in svc.catalogue.items]
    food = next(i for i in items if i["code"] == "MR-001")
    assert food == {
        "code": "MR-001",
        "name": "食品经营许可",
        "department": {"code": "market", "name": svc.catalogue.departments["market"].name},
        "kind": "promised",
        "kind_label": "承诺件",
        "legal_limit_days": 20,
        "promised_limit_days": 10,
        "handled_at_once": False,
        "tolerant_allowed": True,
        "guide_completeness": 1.0,
    }


def test_the_service_guide_of_an_item(client: TestClient, svc: Services) -> None:
    response = client.get(f"{PUBLIC}/items/MR-001")
    assert response.status_code == 200, response.text
    guide = response.json()
    item = svc.catalogue.get("MR-001")
    assert guide["basis"] == item.guide["basis"] and guide["conditions"] == item.guide["conditions"]
    assert guide["process"] == item.guide["process"] and guide["limits"] == "法定20个工作日，承诺10个工作日"
    assert guide["fees"] == [] and guide["fees_text"] == "不收费"
    assert guide["application_form"] == {
        "key": "apply.food_business",
        "title": svc.forms.get("apply.food_business").title,
    }
    assert guide["forms_and_samples"] == item.guide["forms_and_samples"]
    assert [m["code"] for m in guide["materials"]] == [m.code for m in item.materials]
    licence = next(m for m in guide["materials"] if m["code"] == "business_licence")
    assert (
        licence["key"] is True
        and licence["licence_type"] == "business_licence"
        and licence["licence_type_name"]
    )
    assert guide["issues_licence"]["code"] == "food_business_licence"
    assert guide["supplement_deadline_days"] == 5 and guide["missing_guide_elements"] == []
    error_of(client.get(f"{PUBLIC}/items/XX-999"), 404, "item_not_found")


# ------------------------------------------------------------------ tracking
@pytest.fixture
def online_case(signed_in: Callable[..., TestClient], svc: Services) -> dict[str, Any]:
    """A case the applicant submitted online (its check code from the submission), then reviewed with
    officers' opinions; the applicant and the officers are named so that the test can look for them."""
    org = food_applicants(svc)[0]
    applicant = signed_in("company", "applicant", holder_id=org.credit_code, display_name=org.name)
    body = {**food_body(), "contact_phone": "13912345678"}
    submitted = applicant.post("/api/v1/applicant/cases", json=body)
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["case_number"]
    officer_does(svc, case_id, "intake", "window.zhang", decision="accept", opinion="张受理意见：材料齐全")
    officer_does(
        svc,
        case_id,
        "review",
        "market.li",
        result="pass",
        opinion="李审查意见：现场核查通过",
        needs_special_procedure=False,
    )
    return {"case": case_id, "code": submitted.json()["check_code"], "org": org}


def test_a_case_is_tracked_by_number_and_check_code_without_personal_data(
    client: TestClient, online_case: dict[str, Any], svc: Services
) -> None:
    case_id, code, org = online_case["case"], online_case["code"], online_case["org"]
    response = client.post(TRACK, json={"case_number": case_id, "check_code": code})
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["case_number"] == case_id and view["items"] == [{"code": "MR-001", "name": "食品经营许可"}]
    assert (view["status"], view["status_label"]) == ("under_review", "审查中")
    assert view["department"]["code"] == "market"
    assert [s["name"] for s in view["current_steps"]] == ["作出决定"]
    assert view["promised_limit_days"] == 10
    promised = view["promised"]
    assert promised["kind"] == "promised" and promised["unit"] == "working_days" and promised["limit"] == 10
    assert promised["due_at"] and promised["remaining"] is not None and promised["status"] == "normal"
    assert view["legal"]["limit"] == 20
    assert view["missing"] == []
    assert [t["status"] for t in view["timeline"]] == ["submitted", "accepted", "under_review"]
    assert [t["label"] for t in view["timeline"]][:2] == ["提交申请", "已受理"]

    text = response.text
    for personal in (org.name, org.credit_code, "13912345678", org.legal_representative, org.address):
        assert personal not in text
    for officer in ("window.zhang", "market.li", "company"):
        assert officer not in text
    for opinion in ("张受理意见", "李审查意见", "材料齐全", "现场核查"):
        assert opinion not in text
    assert set(view) == {
        "case_number",
        "items",
        "department",
        "status",
        "status_label",
        "result",
        "result_label",
        "submitted_at",
        "accepted_at",
        "decided_at",
        "closed_at",
        "current_steps",
        "promised_limit_days",
        "promised",
        "legal",
        "missing",
        "timeline",
        "calendar_warnings",
    }

    # typed the way people type it: lower case, with spaces
    relaxed = client.post(
        TRACK, json={"case_number": f" {case_id} ", "check_code": f"{code[:3]} {code[3:]}".lower()}
    )
    assert relaxed.status_code == 200 and relaxed.json()["case_number"] == case_id


def test_a_refusal_shows_the_result_and_what_is_missing_but_not_the_reason(
    client: TestClient, svc: Services
) -> None:
    org = food_applicants(svc)[0]
    app = Application(org.credit_code, org.name, ["MR-001"], channel="counter", form=dict(FOOD_FORM))
    case_id = svc.cases.submit(app, "window.zhang")
    code = check_code(svc, case_id)
    before = client.post(TRACK, json={"case_number": case_id, "check_code": code}).json()
    assert {m["code"] for m in before["missing"]} == {
        "application",
        "legal_rep_id",
        "layout_plan",
        "safety_rules",
        "manager_health",
    }
    assert before["current_steps"][0]["for_applicant"] is False and before["promised"] is None
    officer_does(
        svc, case_id, "intake", "window.zhang", decision="refuse", reason="申请人王某某不具备主体资格"
    )
    view = client.post(TRACK, json={"case_number": case_id, "check_code": code}).json()
    assert (view["status"], view["result"], view["result_label"]) == ("refused", "refused", "不予受理")
    assert view["closed_at"] and view["current_steps"] == []
    assert "王某某" not in str(view) and "主体资格" not in str(view)


def test_a_wrong_pair_answers_like_a_case_that_does_not_exist(
    client: TestClient, online_case: dict[str, Any]
) -> None:
    case_id, code = online_case["case"], online_case["code"]
    unknown = format_case_number(date(2025, 9, 30), 4321)
    missing = error_of(
        client.post(TRACK, json={"case_number": unknown, "check_code": code}), 404, "case_not_found"
    )
    wrong = "".join("2" if c != "2" else "3" for c in code)
    refused = error_of(
        client.post(TRACK, json={"case_number": case_id, "check_code": wrong}), 404, "case_not_found"
    )
    assert refused["message"] == missing["message"]
    assert refused["detail"] == {"case": case_id} and missing["detail"] == {"case": unknown}
    for number, given in ((case_id, ""), (case_id, code + "X"), ("250930-0001-0", code), ("nonsense", code)):
        body = error_of(
            client.post(TRACK, json={"case_number": number, "check_code": given}), 404, "case_not_found"
        )
        assert body["message"] == missing["message"] and body["detail"] == {"case": number}
    error_of(client.post(TRACK, json={"case_number": case_id}), 422, "invalid_request")
    error_of(
        client.post(TRACK, json={"case_number": case_id, "check_code": code, "applicant_id": "x"}),
        422,
        "invalid_request",
    )


def test_failed_attempts_are_limited_per_address_even_for_the_right_pair(
    from_address: Callable[[str], TestClient], online_case: dict[str, Any], clock: FakeClock
) -> None:
    case_id, code = online_case["case"], online_case["code"]
    guesser, neighbour = from_address("203.0.113.7"), from_address("198.51.100.9")
    for n in range(POLICY.address_failures):
        unknown = format_case_number(date(2025, 9, 30), 5000 + n)
        error_of(
            guesser.post(TRACK, json={"case_number": unknown, "check_code": "AAAAAA"}), 404, "case_not_found"
        )
    limited = guesser.post(TRACK, json={"case_number": case_id, "check_code": code})
    body = error_of(limited, 429, "too_many_attempts")
    assert body["detail"]["scope"] == "address" and int(limited.headers["Retry-After"]) > 0
    # another address is not affected; once the window has passed the address may try again
    assert neighbour.post(TRACK, json={"case_number": case_id, "check_code": code}).status_code == 200
    clock.advance(minutes=POLICY.window_minutes, seconds=1)
    assert guesser.post(TRACK, json={"case_number": case_id, "check_code": code}).status_code == 200


def test_failed_codes_at_one_case_are_limited_from_any_address(
    from_address: Callable[[str], TestClient], online_case: dict[str, Any], clock: FakeClock
) -> None:
    case_id, code = online_case["case"], online_case["code"]
    for n in range(POLICY.case_failures):
        guesser = from_address(f"192.0.2.{n + 1}")
        error_of(
            guesser.post(TRACK, json={"case_number": case_id, "check_code": "ZZZZZZ"}), 404, "case_not_found"
        )
    owner = from_address("198.51.100.77")
    body = error_of(
        owner.post(TRACK, json={"case_number": case_id, "check_code": code}), 429, "too_many_attempts"
    )
    assert body["detail"]["scope"] == "case"
    other = format_case_number(date(2025, 9, 30), 7777)  # another number is not affected
    error_of(owner.post(TRACK, json={"case_number": other, "check_code": code}), 404, "case_not_found")
    clock.advance(minutes=POLICY.window_minutes, seconds=1)
    assert owner.post(TRACK, json={"case_number": case_id, "check_code": code}).status_code == 200


def test_a_number_no_case_has_is_limited_as_a_case_number_is_so_the_limit_tells_nothing(
    from_address: Callable[[str], TestClient], online_case: dict[str, Any]
) -> None:
    """The per-number limit would otherwise be an oracle: only numbers that exist reached it."""
    answers = []
    for number in (online_case["case"], format_case_number(date(2025, 9, 30), 7777)):
        for n in range(POLICY.case_failures):
            guesser = from_address(f"192.0.2.{n + 1}")
            guesser.post(TRACK, json={"case_number": number, "check_code": "ZZZZZZ"})
        last = from_address("198.51.100.77").post(TRACK, json={"case_number": number, "check_code": "ZZZZZZ"})
        answers.append((last.status_code, last.json()["code"], last.json()["detail"].get("scope")))
    assert answers[0] == answers[1] == (429, "too_many_attempts", "case")
