"""The administrator's API over HTTP: accounts (list, create, enable/disable, departments, role), roles,
departments; every rule of an account answered with its typed error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from engine.bootstrap import Services
from tests.api.conftest import LOGIN, PASSWORD, add_account, error_of, sign_in

A = "/api/v1/admin"
RESIDENT = "11010519491231002X"
CREDIT = "91350100M000100Y43"


@pytest.fixture
def admin(signed_in: Callable[..., TestClient]) -> TestClient:
    return signed_in("admin.root", "administrator", display_name="系统管理员")


def new_officer(**overrides: object) -> dict[str, object]:
    return {
        "username": "wang.officer",
        "password": PASSWORD,
        "role": "officer",
        "display_name": "王审批",
        "departments": ["market", "health"],
        "intake": True,
        **overrides,
    }


def test_create_an_officer_who_then_signs_in(admin: TestClient, client: TestClient) -> None:
    created = admin.post(f"{A}/accounts", json=new_officer())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body | {"id": 0, "created_at": ""} == {
        "id": 0,
        "username": "wang.officer",
        "display_name": "王审批",
        "role": "officer",
        "role_label": "审批人员",
        "departments": ["health", "market"],
        "intake": True,
        "holder_id": None,
        "active": True,
        "created_at": "",
    }
    assert PASSWORD not in created.text
    me = sign_in(client, "wang.officer")["account"]
    assert me["departments"] == ["health", "market"] and me["intake"] is True
    listed = admin.get(f"{A}/accounts").json()
    assert [a["username"] for a in listed] == ["admin.root", "wang.officer"]
    assert listed[0]["role_label"] == "系统管理员" and PASSWORD not in admin.get(f"{A}/accounts").text


def test_create_an_applicant_with_a_holder_id(admin: TestClient) -> None:
    person = admin.post(
        f"{A}/accounts",
        json={"username": "li.citizen", "password": PASSWORD, "role": "applicant", "display_name": "李市民",
              "holder_id": RESIDENT.lower()},
    )  # fmt: skip
    assert person.status_code == 201 and person.json()["holder_id"] == RESIDENT
    org = admin.post(
        f"{A}/accounts",
        json={"username": "acme", "password": PASSWORD, "role": "applicant", "display_name": "某公司",
              "holder_id": CREDIT},
    )  # fmt: skip
    assert org.status_code == 201 and org.json()["departments"] == [] and org.json()["intake"] is False


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"username": "ab"}, 422, "bad_username"),
        ({"username": "Wang Officer"}, 422, "bad_username"),
        ({"password": "short"}, 422, "bad_password"),
        ({"password": "x" * 257}, 422, "invalid_request"),
        ({"role": "root"}, 422, "invalid_request"),
        ({"display_name": "   "}, 422, "bad_display_name"),
        ({"departments": []}, 422, "departments_required"),
        ({"departments": ["nope"]}, 422, "unknown_department"),
        ({"role": "designer"}, 422, "departments_not_allowed"),
        ({"role": "applicant", "departments": [], "intake": False}, 422, "required"),
        ({"role": "applicant", "departments": [], "intake": False, "holder_id": "11010519491231002"}, 422,
         "bad_format"),
        ({"role": "applicant", "departments": [], "intake": False, "holder_id": "110105194912310021"}, 422,
         "bad_check_digit"),
        ({"role": "applicant", "departments": [], "intake": False, "holder_id": "110105209901010020"}, 422,
         "birth_date_in_future"),
        ({"role": "applicant", "departments": [], "intake": False, "holder_id": "94350102MA2XN4K8XL"}, 422,
         "bad_organisation_category"),
        ({"holder_id": RESIDENT}, 422, "holder_not_allowed"),
        ({"username": "admin.root"}, 409, "username_taken"),
        ({"active": False}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_every_rule_of_a_new_account_has_its_error(
    admin: TestClient, overrides: dict, status: int, code: str
) -> None:
    refused = admin.post(f"{A}/accounts", json=new_officer(**overrides))
    error_of(refused, status, code)
    assert PASSWORD not in refused.text
    assert [a["username"] for a in admin.get(f"{A}/accounts").json()] == ["admin.root"]


def test_disabling_an_account_ends_its_session_and_enabling_restores_sign_in(
    admin: TestClient, signed_in: Callable[..., TestClient], client: TestClient
) -> None:
    officer = signed_in("wang.officer", "officer", departments=["market"])
    officer_id = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "wang.officer")
    disabled = admin.put(f"{A}/accounts/{officer_id}/active", json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    error_of(officer.get("/api/v1/auth/me"), 401, "session_expired")
    error_of(
        client.post(LOGIN, json={"username": "wang.officer", "password": PASSWORD}), 401, "bad_credentials"
    )
    enabled = admin.put(f"{A}/accounts/{officer_id}/active", json={"active": True})
    assert enabled.status_code == 200 and enabled.json()["active"] is True
    sign_in(client, "wang.officer")
    own = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "admin.root")
    error_of(admin.put(f"{A}/accounts/{own}/active", json={"active": False}), 409, "own_account")
    # the caller's own password is changed with the current one (POST /auth/password), not reset here
    error_of(
        admin.put(f"{A}/accounts/{own}/password", json={"password": "taken over now"}), 409, "own_account"
    )
    error_of(
        client.post(LOGIN, json={"username": "admin.root", "password": "taken over now"}),
        401,
        "bad_credentials",
    )
    error_of(admin.put(f"{A}/accounts/999999/active", json={"active": False}), 404, "account_not_found")
    error_of(admin.put(f"{A}/accounts/{officer_id}/active", json={}), 422, "invalid_request")
    error_of(admin.put(f"{A}/accounts/0/active", json={"active": True}), 422, "invalid_request")


def test_changing_an_officers_departments(
    admin: TestClient, signed_in: Callable[..., TestClient], svc: Services
) -> None:
    officer = signed_in("wang.officer", "officer", departments=["market"])
    applicant_id = add_account(svc, "li.citizen", "applicant", holder_id=RESIDENT)
    officer_id = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "wang.officer")
    changed = admin.put(
        f"{A}/accounts/{officer_id}/departments", json={"departments": ["health", "police"], "intake": True}
    )
    assert changed.status_code == 200
    assert changed.json()["departments"] == ["health", "police"] and changed.json()["intake"] is True
    me = officer.get("/api/v1/auth/me").json()  # the session sees it at once
    assert me["departments"] == ["health", "police"] and me["intake"] is True
    url = f"{A}/accounts/{officer_id}/departments"
    error_of(admin.put(url, json={"departments": []}), 422, "departments_required")
    error_of(admin.put(url, json={"departments": ["nope"]}), 422, "unknown_department")
    error_of(admin.put(url, json={"departments": ["market"], "role": "x"}), 422, "invalid_request")
    applicant = f"{A}/accounts/{applicant_id}/departments"
    error_of(admin.put(applicant, json={"departments": ["market"]}), 422, "departments_not_allowed")
    error_of(
        admin.put(f"{A}/accounts/999999/departments", json={"departments": ["market"]}),
        404,
        "account_not_found",
    )


def test_roles_with_their_labels(admin: TestClient) -> None:
    assert admin.get(f"{A}/roles").json() == [
        {"code": "applicant", "label": "申请人"},
        {"code": "officer", "label": "审批人员"},
        {"code": "designer", "label": "流程设计人员"},
        {"code": "supervisor", "label": "监督人员"},
        {"code": "administrator", "label": "系统管理员"},
    ]


def test_departments_list_and_add(admin: TestClient, svc: Services) -> None:
    departments = admin.get(f"{A}/departments").json()
    assert [d["code"] for d in departments] == sorted(svc.catalogue.departments)
    added = admin.post(f"{A}/departments", json={"code": "tax", "name": " 税务局 "})
    assert added.status_code == 201 and added.json() == {"code": "tax", "name": "税务局"}
    assert {"code": "tax", "name": "税务局"} in admin.get(f"{A}/departments").json()
    assert admin.post(f"{A}/accounts", json=new_officer(departments=["tax"])).status_code == 201
    error_of(admin.post(f"{A}/departments", json={"code": "tax", "name": "再加"}), 409, "department_exists")
    error_of(
        admin.post(f"{A}/departments", json={"code": "Tax Office", "name": "x"}), 422, "bad_department_code"
    )
    error_of(admin.post(f"{A}/departments", json={"code": "tax2", "name": "  "}), 422, "bad_department_name")
    error_of(admin.post(f"{A}/departments", json={"code": "tax3"}), 422, "invalid_request")
    error_of(
        admin.post(f"{A}/departments", json={"code": "tax3", "name": "x", "x": 1}), 422, "invalid_request"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/accounts", None),
        ("POST", "/accounts", new_officer()),
        ("PUT", "/accounts/1/active", {"active": False}),
        ("PUT", "/accounts/1/departments", {"departments": ["market"]}),
        ("GET", "/roles", None),
        ("GET", "/departments", None),
        ("POST", "/departments", {"code": "tax", "name": "税务局"}),
    ],
)
def test_only_administrators(
    client: TestClient,
    signed_in: Callable[..., TestClient],
    svc: Services,
    method: str,
    path: str,
    body: dict | None,
) -> None:
    error_of(client.request(method, A + path, json=body), 401, "unauthenticated")
    for username, role, extra in (
        ("officer.a", "officer", {"departments": ["market"]}),
        ("designer.a", "designer", {}),
        ("super.a", "supervisor", {}),
        ("citizen.a", "applicant", {"holder_id": RESIDENT}),
    ):
        error_of(
            signed_in(username, role, **extra).request(method, A + path, json=body), 403, "forbidden_role"
        )
    with svc.engine.connect() as conn:  # nothing changed
        assert "wang.officer" not in {a["username"] for a in svc.accounts.list_accounts(conn)}
        assert "tax" not in {d["code"] for d in svc.accounts.list_departments(conn)}


def test_a_flag_or_a_number_is_taken_as_sent_and_every_schema_error_says_in_chinese_what_is_wrong(
    admin: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    """No coercion of request bodies: ``"no"`` is not ``false`` (it disabled the account) and ``true`` is
    not one day. A schema error pydantic has no fixed message for still gets a Chinese one by its kind,
    its English text kept apart as ``reason``."""
    officer = signed_in("wang.officer", "officer", departments=["market"])
    officer_id = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "wang.officer")
    for loose in ("no", 0, "false", None):
        refused = error_of(
            admin.put(f"{A}/accounts/{officer_id}/active", json={"active": loose}), 422, "invalid_request"
        )
        assert refused["detail"]["errors"][0]["field"] == "active"
    assert officer.get("/api/v1/auth/me").status_code == 200  # still signed in: nothing was disabled
    for loose in (True, "7", 7.0):
        error_of(
            officer.post("/api/v1/auth/tokens", json={"name": "ci", "days": loose}), 422, "invalid_request"
        )
    assert officer.post("/api/v1/auth/tokens", json={"name": "ci", "days": 7}).status_code == 201
    supervisor = signed_in("sup.li", "supervisor")
    bad_day = error_of(
        supervisor.get("/api/v1/supervisor/figures", params={"period_start": "2026-13-01"}),
        422,
        "invalid_request",
    )
    assert bad_day["message"] == "请求不符合接口定义：period_start：应为有效的日期（YYYY-MM-DD）"
    (problem,) = bad_day["detail"]["errors"]
    assert problem["code"] == "date_from_datetime_parsing" and "month" in problem["reason"]


def test_changing_a_role_gives_what_the_new_role_needs_and_signs_the_account_in_again(
    admin: TestClient, signed_in: Callable[..., TestClient], client: TestClient, svc: Services
) -> None:
    officer = signed_in("wang.officer", "officer", departments=["market"])
    officer_id = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "wang.officer")
    url = f"{A}/accounts/{officer_id}/role"
    # each rule of the new role, with nothing changed
    error_of(admin.put(url, json={"role": "applicant"}), 422, "required")
    error_of(admin.put(url, json={"role": "officer"}), 422, "departments_required")
    error_of(
        admin.put(url, json={"role": "supervisor", "departments": ["market"]}), 422, "departments_not_allowed"
    )
    error_of(admin.put(url, json={"role": "designer", "holder_id": RESIDENT}), 422, "holder_not_allowed")
    error_of(admin.put(url, json={"role": "officer", "departments": ["nope"]}), 422, "unknown_department")
    error_of(admin.put(url, json={"role": "owner"}), 422, "invalid_request")
    error_of(
        admin.put(url, json={"role": "applicant", "holder_id": "110105194912310021"}), 422, "bad_check_digit"
    )
    assert officer.get("/api/v1/auth/me").json()["role"] == "officer"  # still signed in, still an officer

    changed = admin.put(url, json={"role": "supervisor"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["role"], body["role_label"], body["departments"], body["intake"]) == (
        "supervisor",
        "监督人员",
        [],
        False,
    )
    error_of(officer.get("/api/v1/auth/me"), 401, "session_expired")  # granted to the old role: ended
    sign_in(client, "wang.officer")
    assert client.get("/api/v1/auth/me").json()["role"] == "supervisor"
    error_of(client.get("/api/v1/officer/inbox"), 403, "forbidden_role")
    assert client.get("/api/v1/supervisor/alerts").status_code == 200

    as_applicant = admin.put(url, json={"role": "applicant", "holder_id": RESIDENT})
    assert as_applicant.status_code == 200 and as_applicant.json()["holder_id"] == RESIDENT
    back = admin.put(url, json={"role": "officer", "departments": ["health"], "intake": True})
    assert back.json()["holder_id"] is None and back.json()["departments"] == ["health"]

    own = next(a["id"] for a in admin.get(f"{A}/accounts").json() if a["username"] == "admin.root")
    error_of(admin.put(f"{A}/accounts/{own}/role", json={"role": "supervisor"}), 409, "own_account")
    error_of(admin.put(f"{A}/accounts/999999/role", json={"role": "supervisor"}), 404, "account_not_found")
    with svc.engine.connect() as conn:
        from sqlalchemy import select

        from engine.persistence.tables import audit_log

        actions = (
            conn.execute(
                select(audit_log.c.detail)
                .where(audit_log.c.action == "account_role")
                .order_by(audit_log.c.id)
            )
            .scalars()
            .all()
        )
    assert [(d["from"], d["role"]) for d in actions] == [
        ("officer", "supervisor"),
        ("supervisor", "applicant"),
        ("applicant", "officer"),
    ]


def test_an_administrator_demoted_meanwhile_changes_no_role(
    admin: TestClient, signed_in: Callable[..., TestClient], svc: Services
) -> None:
    other = signed_in("admin.two", "administrator", display_name="第二管理员")
    ids = {a["username"]: a["id"] for a in admin.get(f"{A}/accounts").json()}
    assert other.put(f"{A}/accounts/{ids['admin.root']}/role", json={"role": "supervisor"}).status_code == 200
    # admin.root is no administrator any more: its session ended with the role
    error_of(
        admin.put(f"{A}/accounts/{ids['admin.two']}/role", json={"role": "supervisor"}),
        401,
        "session_expired",
    )
    roles = {a["username"]: a["role"] for a in other.get(f"{A}/accounts").json()}
    assert roles["admin.two"] == "administrator"


def test_a_department_code_longer_than_any_is_refused_without_echoing_it(admin: TestClient) -> None:
    officer_id = admin.post(f"{A}/accounts", json=new_officer()).json()["id"]
    long = "x" * 100_000
    for method, url, body in (
        ("post", f"{A}/accounts", new_officer(username="li.officer", departments=[long])),
        ("put", f"{A}/accounts/{officer_id}/departments", {"departments": [long]}),
        ("put", f"{A}/accounts/{officer_id}/role", {"role": "officer", "departments": [long]}),
    ):
        refused = getattr(admin, method)(url, json=body)
        error_of(refused, 422, "invalid_request")
        assert len(refused.text) < 5_000
