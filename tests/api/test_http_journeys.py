"""Whole cases driven through HTTP only (issue 10, «Must show»), on SQLite and PostgreSQL: the applicant
signs in (cookie + CSRF), fetches the pre-filled form, submits with an Idempotency-Key; the counter accepts
(after a one-time supplement notice the applicant answers); the department reviews and decides; delivery;
public tracking by number + check code; rating; the supervisor's figures count the case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from engine.bootstrap import Services
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.api.conftest import sign_in
from tests.conftest import FOOD_FORM, FakeClock

V1 = "/api/v1"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
FOOD_MATERIALS = ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]
SignIn = Callable[..., TestClient]


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(datetime(2025, 11, 3, 9, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def food_org(svc: Services) -> Any:
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        return next(
            o
            for o in demo_organisations()
            if "business_licence" in (t := {lic.type_code for lic in lib.by_holder(o.credit_code)})
            and "food_business_licence" not in t
        )


def inbox_of(client: TestClient) -> list[dict[str, Any]]:
    return list(ok(client.get(f"{V1}/officer/inbox"))["items"])


def one_task(client: TestClient, case_id: str, element: str) -> dict[str, Any]:
    [task] = [i for i in inbox_of(client) if i["case_id"] == case_id and i["element_id"] == element]
    return task


def act(client: TestClient, task_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(ok(client.post(f"{V1}/officer/tasks/{task_id}/{action}", json=body)))


def test_a_single_window_case_from_application_to_rating_over_http(
    svc: Services, signed_in: SignIn, clock: FakeClock
) -> None:
    org = food_org(svc)
    company = signed_in("j.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("j.window", "officer", departments=["market"], intake=True)
    market = signed_in("j.market", "officer", departments=["market"])
    health = signed_in("j.health", "officer", departments=["health"])
    supervisor = signed_in("j.supervisor", "supervisor")

    # the form, pre-filled from the company's licences with their provenance
    form = ok(company.get(f"{V1}/applicant/application-form", params={"items": ["MR-001"]}))
    assert [i["code"] for i in form["items"]] == ["MR-001"]
    provenance = form["prefill"]["provenance"]
    assert provenance and all(p["source"] in ("licence", "applicant") for p in provenance.values())
    assert any(
        p["source"] == "licence" and p["licence_type"] == "business_licence" for p in provenance.values()
    )

    # submit with an Idempotency-Key: the retry answers the same case; one material left out
    body = {
        "items": ["MR-001"],
        "form": dict(FOOD_FORM),
        "provided": {"MR-001": [m for m in FOOD_MATERIALS if m != "safety_rules"]},
    }
    first = ok(company.post(f"{V1}/applicant/cases", json=body, headers={"Idempotency-Key": "j-1"}), 201)
    again = ok(company.post(f"{V1}/applicant/cases", json=body, headers={"Idempotency-Key": "j-1"}), 201)
    case_id, check_code = first["case_number"], first["check_code"]
    assert (again["case_number"], again["replayed"], first["replayed"]) == (case_id, True, False)
    assert first["status"] == "submitted"

    # the counter: intake in the window inbox only
    intake = one_task(window, case_id, "intake")
    assert intake["candidate_groups"] == ["window"]
    assert [i for i in inbox_of(health) if i["case_id"] == case_id] == []
    notice = act(
        window, intake["id"], "supplement", {"materials": ["safety_rules"], "reason": "缺食品安全管理制度"}
    )
    assert notice["case_status"] == "supplement_requested"

    # the applicant uploads the file and supplements
    detail = ok(company.get(f"{V1}/applicant/cases/{case_id}"))
    assert [m["code"] for m in detail["missing"]] == ["safety_rules"]
    ok(
        company.post(
            f"{V1}/applicant/cases/{case_id}/files",
            data={"material": "safety_rules"},
            files={"file": ("rules.pdf", PDF, "application/pdf")},
        ),
        201,
    )
    supplied = ok(
        company.post(f"{V1}/applicant/cases/{case_id}/supplement", json={"materials": ["safety_rules"]})
    )
    assert supplied["missing"] == []

    accepted = act(
        window, one_task(window, case_id, "intake")["id"], "accept", {"opinion": "材料齐全，予以受理"}
    )
    assert accepted["case_status"] == "under_review"
    review = one_task(market, case_id, "review")
    assert [i for i in inbox_of(health) if i["case_id"] == case_id] == []
    act(market, review["id"], "review", {"result": "pass", "opinion": "经审查符合条件"})
    clock.advance(hours=2)
    decision = one_task(market, case_id, "decision")
    decided = act(market, decision["id"], "approve", {"opinion": "准予许可"})
    delivery = one_task(window, case_id, "delivery")
    page = ok(window.get(f"{V1}/officer/tasks/{delivery['id']}"))
    opinions = [h["opinion"] for h in page["history"] if h["opinion"]]
    for said in ("材料齐全，予以受理", "经审查符合条件", "准予许可"):
        assert said in opinions, opinions
    assert decided["case_id"] == case_id
    delivered = act(window, delivery["id"], "deliver", {"method": "window"})
    assert delivered["instance_status"] == "completed"

    # public tracking: no personal data
    anonymous = TestClient(company.app, raise_server_exceptions=False)
    tracked = ok(
        anonymous.post(f"{V1}/public/track", json={"case_number": case_id, "check_code": check_code})
    )
    assert tracked["case_number"] == case_id and tracked["result"] == "approved"
    text = str(tracked)
    assert org.credit_code not in text and org.name not in text and FOOD_FORM["contact_phone"] not in text

    rated = ok(
        company.post(f"{V1}/applicant/cases/{case_id}/rating", json={"level": 5, "comment": "很方便"}), 201
    )
    assert (rated["level"], rated["case_number"]) == (5, case_id)

    figures = ok(
        supervisor.get(
            f"{V1}/supervisor/figures", params={"period_start": "2025-11-01", "period_end": "2025-11-30"}
        )
    )
    assert figures["centre"]["received"] == 1 and figures["centre"]["finished"] == 1


def test_a_joint_case_each_department_sees_and_decides_only_its_branch_over_http(
    svc: Services, signed_in: SignIn
) -> None:
    org = food_org(svc)
    company = signed_in("k.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    market = signed_in("k.market", "officer", departments=["market"], intake=True)
    health = signed_in("k.health", "officer", departments=["health"])
    materials = {c: [m.code for m in svc.catalogue.get(c).materials] for c in ("MR-001", "HE-001")}
    body = {"items": ["MR-001", "HE-001"], "form": dict(FOOD_FORM), "provided": materials}
    submitted = ok(company.post(f"{V1}/applicant/cases", json=body, headers={"Idempotency-Key": "k-1"}), 201)
    case_id = submitted["case_number"]
    lead = one_task(market, case_id, "lead_intake")
    assert [i for i in inbox_of(health) if i["case_id"] == case_id] == []
    act(market, lead["id"], "accept", {"opinion": "并联受理"})
    mine = [i for i in inbox_of(market) if i["case_id"] == case_id]
    theirs = [i for i in inbox_of(health) if i["case_id"] == case_id]
    assert [(i["element_id"], i["candidate_groups"]) for i in mine] == [("joint_review", ["market"])]
    assert [(i["element_id"], i["candidate_groups"]) for i in theirs] == [("joint_review", ["health"])]
    refused = health.post(f"{V1}/officer/tasks/{mine[0]['id']}/approve", json={"opinion": "同意"})
    assert refused.status_code == 404 and refused.json()["code"] == "task_not_found"
    act(market, mine[0]["id"], "approve", {"opinion": "市场监管部门同意"})
    act(health, theirs[0]["id"], "approve", {"opinion": "卫生健康部门同意"})
    case = ok(market.get(f"{V1}/officer/cases/{case_id}"))
    said = str([e["detail"] for e in case["events"] if e["action"] == "complete"])
    assert "市场监管部门同意" in said and "卫生健康部门同意" in said

    # the lead department consolidates; the counter delivers; tracking, rating and the figures follow
    assert [i for i in inbox_of(health) if i["case_id"] == case_id] == []
    act(market, one_task(market, case_id, "consolidation")["id"], "approve", {"opinion": "汇总：准予许可"})
    act(market, one_task(market, case_id, "deliver_result")["id"], "deliver", {"method": "online"})
    anonymous = TestClient(company.app, raise_server_exceptions=False)
    tracked = ok(
        anonymous.post(
            f"{V1}/public/track", json={"case_number": case_id, "check_code": submitted["check_code"]}
        )
    )
    assert tracked["result"] == "approved" and {i["code"] for i in tracked["items"]} == {"MR-001", "HE-001"}
    assert org.name not in str(tracked) and "市场监管部门同意" not in str(tracked)
    ok(company.post(f"{V1}/applicant/cases/{case_id}/rating", json={"level": 5, "comment": "一次办好"}), 201)
    supervisor = signed_in("k.supervisor", "supervisor")
    figures = ok(supervisor.get(f"{V1}/supervisor/figures", params={"period_start": "2025-11-01"}))
    centre = figures["centre"]
    assert (centre["received"], centre["finished"]) == (1, 1)


def test_a_tolerant_case_received_at_the_counter_issues_its_licence_only_after_the_supply_over_http(
    svc: Services, signed_in: SignIn, clock: FakeClock
) -> None:
    sh = ZoneInfo("Asia/Shanghai")
    clock.set(datetime(2026, 2, 11, 10, tzinfo=sh).astimezone(UTC))  # Wed, before Spring Festival
    org = food_org(svc)
    company = signed_in("t.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("t.window", "officer", departments=["market"], intake=True)
    market = signed_in("t.market", "officer", departments=["market"])
    tolerated = ["layout_plan", "safety_rules", "manager_health"]

    # a market officer who is not at the counter cannot receive applications
    body = {
        "applicant_id": org.credit_code,
        "applicant_name": org.name,
        "items": ["MR-001"],
        "form": dict(FOOD_FORM),
        "provided": {"MR-001": ["application", "legal_rep_id"]},
        "tolerant": True,
    }
    refused = market.post(f"{V1}/officer/counter/applications", json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    received = ok(window.post(f"{V1}/officer/counter/applications", json=body), 201)
    case_id = received["case_number"]

    # the applicant signs the commitment online: the tolerated materials, by the deadline
    mine = ok(company.get(f"{V1}/applicant/cases/{case_id}"))
    assert sorted(m["code"] for m in mine["missing"]) == sorted(tolerated)
    late = company.post(
        f"{V1}/applicant/cases/{case_id}/commitment",
        json={"missing_materials": tolerated, "promised_date": "2026-02-26", "signed": True},
    )
    assert late.status_code == 422 and late.json()["code"] == "promised_date_after_deadline"
    ok(
        company.post(
            f"{V1}/applicant/cases/{case_id}/commitment",
            json={"missing_materials": tolerated, "promised_date": "2026-02-25", "signed": True},
        )
    )
    clock.set(datetime(2026, 2, 12, 10, tzinfo=sh).astimezone(UTC))
    for client, name in ((market, "t.market"), (window, "t.window")):  # a new working day, a new session
        sign_in(client, name)
    act(
        market, one_task(market, case_id, "review")["id"], "review", {"result": "pass", "opinion": "符合条件"}
    )
    act(market, one_task(market, case_id, "decision")["id"], "approve", {"opinion": "准予许可（补齐后出证）"})

    def licences() -> list[Any]:
        with svc.engine.connect() as conn:
            return [x for x in LicenceLibrary(conn).by_holder(org.credit_code) if x.source_case == case_id]

    assert licences() == []  # approved, but held until the tolerated materials are supplied
    assert [i for i in inbox_of(window) if i["case_id"] == case_id] == []  # nothing to deliver yet

    clock.set(datetime(2026, 2, 24, 10, tzinfo=sh).astimezone(UTC))  # sessions have ended: sign in again
    sign_in(company, "t.company")
    sign_in(window, "t.window")
    for code in tolerated:
        ok(
            company.post(
                f"{V1}/applicant/cases/{case_id}/files",
                data={"material": code},
                files={"file": (f"{code}.pdf", PDF, "application/pdf")},
            ),
            201,
        )
    supplied = ok(company.post(f"{V1}/applicant/cases/{case_id}/supplement", json={"materials": tolerated}))
    assert supplied["missing"] == []
    [licence] = licences()
    assert licence.status == "valid" and str(licence.issue_date) == "2026-02-24"
    act(window, one_task(window, case_id, "delivery")["id"], "deliver", {"method": "mail"})
    rated = company.post(
        f"{V1}/applicant/cases/{case_id}/rating", json={"level": 4, "comment": "容缺受理很方便"}
    )
    assert ok(rated, 201)["level"] == 4
