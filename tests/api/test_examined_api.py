"""Cases an examiner tries from outside, over HTTP on SQLite and PostgreSQL: each states a rule the
other API tests did not pin (the case's contact phone, the wording of refusals on a closed case, a
sign-in with a name no account can have)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from engine.bootstrap import Services
from tests.api.conftest import error_of
from tests.api.test_http_journeys import FOOD_MATERIALS, V1, food_org, ok
from tests.conftest import FOOD_FORM, FakeClock

SignIn = Callable[..., TestClient]


@pytest.fixture(autouse=True)
def monday(clock: FakeClock) -> None:
    clock.set(datetime(2025, 11, 3, 9, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))


def food_body(**extra: Any) -> dict[str, Any]:
    return {"items": ["MR-001"], "form": dict(FOOD_FORM), "provided": {"MR-001": FOOD_MATERIALS}, **extra}


NOT_PHONES = ["=cmd|' /C calc'!A0", "+1 (555) 0100", "见申请表", "138001380001", "1380013800\u202e", "\u200b"]


def test_the_contact_phone_of_a_case_is_a_phone_number_online_and_at_the_counter(
    svc: Services, signed_in: SignIn
) -> None:
    org = food_org(svc)
    company = signed_in("e.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    counter = {"applicant_id": org.credit_code, "applicant_name": org.name, **food_body()}
    online, at_counter = f"{V1}/applicant/cases", f"{V1}/officer/counter/applications"

    def phone_of(case: dict[str, Any]) -> Any:
        return ok(window.get(f"{V1}/officer/cases/{case['case_number']}"))["case"]["contact_phone"]

    for phone in NOT_PHONES:
        refused = company.post(online, json=food_body(contact_phone=phone))
        assert error_of(refused, 422, "bad_phone")["detail"]["field"] == "contact_phone", phone
        refused = window.post(at_counter, json={**counter, "contact_phone": phone})
        assert error_of(refused, 422, "bad_phone")["detail"]["field"] == "contact_phone", phone
    assert ok(company.get(online))["cases"] == []  # nothing was stored

    case = ok(company.post(online, json=food_body(contact_phone=" 0591-87654321 ")), 201)
    blank = ok(window.post(at_counter, json={**counter, "contact_phone": "  "}), 201)
    assert (phone_of(case), phone_of(blank)) == ("0591-87654321", None)


@pytest.mark.parametrize("name", ["a\x00b", "\x00", "company\x00", "\x00" * 200])
def test_a_sign_in_with_a_name_no_account_can_have_answers_and_counts_like_any_wrong_name(
    client: TestClient, name: str
) -> None:
    login = f"{V1}/auth/login"
    unknown = error_of(
        client.post(login, json={"username": "nobody", "password": "x"}), 401, "bad_credentials"
    )
    for _ in range(5):  # an account name's limit is 5 failures: each of these counts as one
        answer = client.post(login, json={"username": name, "password": "x"})
        assert error_of(answer, 401, "bad_credentials") == unknown
    over = error_of(client.post(login, json={"username": name, "password": "x"}), 429, "too_many_attempts")
    assert over["detail"]["scope"] == "account"


def test_a_refusal_on_a_closed_case_names_its_status_once_in_plain_chinese(
    svc: Services, signed_in: SignIn
) -> None:
    org = food_org(svc)
    company = signed_in("e.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    supervisor = signed_in("e.supervisor", "supervisor")
    case_id = ok(company.post(f"{V1}/applicant/cases", json=food_body()), 201)["case_number"]
    ok(company.post(f"{V1}/applicant/cases/{case_id}/withdrawal", json={"reason": "不再经营"}), 201)
    ok(window.post(f"{V1}/officer/cases/{case_id}/withdrawal", json={"grant": True}))

    mine = f"{V1}/applicant/cases/{case_id}"
    pdf = {"file": ("a.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")}
    refusals = {
        "upload": company.post(f"{mine}/files", data={"material": "application"}, files=pdf),
        "withdrawal": company.post(f"{mine}/withdrawal", json={"reason": "再撤一次"}),
        "supplement": company.post(f"{mine}/supplement", json={"materials": ["application"]}),
        "escalation": supervisor.post(f"{V1}/supervisor/cases/{case_id}/escalations", json={"note": "督办"}),
    }
    for name, answer in refusals.items():
        message = answer.json()["message"]
        assert answer.status_code == 409 and "已撤回" in message and "已已" not in message, (name, message)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json_cursor(value: Any) -> str:
    return _b64(json.dumps(value).encode())


FAR_INSTANTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]
"""Valid ISO instants whose UTC lies outside what a datetime (and so the database) can hold."""
UNSTORABLE_TEXT = ["x\x00", "\ud800", "x" * 37]  # 37: past a case number and a task id


def test_a_forged_cursor_is_bad_cursor_on_every_list_never_a_server_error(
    svc: Services, signed_in: SignIn
) -> None:
    org = food_org(svc)
    company = signed_in("e.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    supervisor = signed_in("e.supervisor", "supervisor")
    for _ in range(2):
        ok(company.post(f"{V1}/applicant/cases", json=food_body()), 201)
    mine, inbox, alerts = f"{V1}/applicant/cases", f"{V1}/officer/inbox", f"{V1}/supervisor/alerts"
    at, case_id = json.loads(
        base64.urlsafe_b64decode(ok(company.get(mine, params={"limit": 1}))["next_cursor"] + "==")
    )
    page = ok(window.get(inbox, params={"limit": 1}))["next_cursor"]
    key = json.loads(base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)))

    forged: list[tuple[TestClient, str, str]] = []
    forged += [(company, mine, _json_cursor([when, case_id])) for when in FAR_INSTANTS]
    forged += [(company, mine, _json_cursor([at, text])) for text in UNSTORABLE_TEXT]
    forged += [(window, inbox, _json_cursor({**key, "c": when})) for when in FAR_INSTANTS]
    forged += [(window, inbox, _json_cursor({**key, "d": when})) for when in FAR_INSTANTS]
    forged += [(window, inbox, _json_cursor({**key, "p": p})) for p in (10**30, -(10**20), 2**63)]
    forged += [(window, inbox, _json_cursor({**key, "i": text})) for text in UNSTORABLE_TEXT]
    forged += [(supervisor, alerts, _b64(f"{when}|1".encode())) for when in FAR_INSTANTS]
    forged += [
        (supervisor, alerts, _b64(f"2025-11-03T00:00:00+00:00|{n}".encode()))
        for n in ("9" * 30, "-" + "9" * 30)
    ]
    for caller, route, cursor in forged:
        error_of(caller.get(route, params={"cursor": cursor}), 422, "bad_cursor")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("9999-12-27", "9999-12-31", "period_end"),
        (None, "9999-12-31", "period_end"),
        ("0001-01-01", "2025-11-03", "period_start"),
        ("2025-11-01", "2201-01-01", "period_end"),
    ],
)
def test_figures_for_a_period_outside_the_years_served_are_refused_by_field(
    signed_in: SignIn, start: str | None, end: str, field: str
) -> None:
    supervisor = signed_in("e.supervisor", "supervisor")
    params = {"period_end": end} | ({"period_start": start} if start else {})
    refused = supervisor.get(f"{V1}/supervisor/figures", params=params)
    assert error_of(refused, 422, "period_out_of_range")["detail"]["field"] == field
    assert ok(
        supervisor.get(
            f"{V1}/supervisor/figures", params={"period_start": "1900-01-01", "period_end": "1900-01-31"}
        )
    )


@pytest.mark.parametrize("username", ["system", "worker", "anonymous", "import", "demo", "demo-worker"])
def test_an_account_cannot_take_the_name_the_system_writes_its_own_audit_rows_under(
    signed_in: SignIn, username: str
) -> None:
    admin = signed_in("e.admin", "administrator")
    account = {"username": username, "password": "a long enough password", "display_name": "某人"}
    for role in ({"role": "designer"}, {"role": "officer", "departments": ["market"]}):
        refused = admin.post(f"{V1}/admin/accounts", json={**account, **role})
        assert error_of(refused, 422, "reserved_username")["detail"]["field"] == "username"
    names = [a["username"] for a in ok(admin.get(f"{V1}/admin/accounts"))]
    assert username not in names


HIDDEN = {
    "\u202e": "U+202E",  # right-to-left override: 「张‮三」 reads backwards from here on
    "\u2066": "U+2066",  # left-to-right isolate
    "\u200b": "U+200B",  # zero-width space: two names that look the same
    "\u200d": "U+200D",  # zero-width joiner
    "\ufeff": "U+FEFF",  # byte order mark
    "\u00ad": "U+00AD",  # soft hyphen
    "\x07": "U+0007",  # a control character
    "\u2028": "U+2028",  # line separator
    "\n": "U+000A",  # a name is one line
}


@pytest.mark.parametrize("hidden", list(HIDDEN))
def test_a_name_holds_no_character_that_does_not_show_as_what_it_is(
    svc: Services, signed_in: SignIn, hidden: str
) -> None:
    admin = signed_in("e.admin", "administrator")
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    org = food_org(svc)
    name = f"张{hidden}三"
    calls = [
        (
            admin,
            f"{V1}/admin/accounts",
            {
                "username": "e.zhang",
                "password": "a long enough password",
                "role": "designer",
                "display_name": name,
            },
            "display_name",
        ),
        (admin, f"{V1}/admin/departments", {"code": "tax", "name": name}, "name"),
        (admin, f"{V1}/auth/tokens", {"name": name, "days": 1}, "name"),
        (
            window,
            f"{V1}/officer/counter/applications",
            {"applicant_id": org.credit_code, "applicant_name": org.name + hidden, **food_body()},
            "applicant_name",
        ),
    ]
    for client, url, body, field in calls:
        refused = error_of(client.post(url, json=body), 422, "hidden_character")
        assert (refused["detail"]["field"], refused["detail"]["character"]) == (field, HIDDEN[hidden]), url
        assert HIDDEN[hidden] in refused["message"]
    # nothing was stored
    assert "e.zhang" not in [a["username"] for a in ok(admin.get(f"{V1}/admin/accounts"))]
    assert "tax" not in [d["code"] for d in ok(admin.get(f"{V1}/admin/departments"))]
    assert ok(admin.get(f"{V1}/auth/tokens")) == []
    assert ok(window.get(f"{V1}/officer/inbox"))["counts"]["total"] == 0


def test_names_keep_what_shows_rare_ideographs_middle_dots_and_ideographic_spaces(
    signed_in: SignIn,
) -> None:
    admin = signed_in("e.admin", "administrator")
    for i, name in enumerate(
        ["阿依古丽·买买提", "王\U00020000", "李\ue000", "福州\u3000示例"]
    ):  # PUA: 生僻字
        body = {"username": f"e.name{i}", "password": "a long enough password", "role": "designer"}
        assert (
            ok(admin.post(f"{V1}/admin/accounts", json={**body, "display_name": name}), 201)["display_name"]
            == name
        )


def test_a_query_parameter_the_route_does_not_declare_is_refused_by_name_not_dropped(
    signed_in: SignIn, client: TestClient
) -> None:
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    company = signed_in("e.company", "applicant", holder_id="91350100M000100Y43")
    supervisor = signed_in("e.supervisor", "supervisor")
    calls = [
        (window, f"{V1}/officer/inbox", {"sort_by": "due", "sort": "due"}, ["sort_by"]),  # a misspelt sort
        (window, f"{V1}/officer/inbox", {"limt": "1", "stat": "submitted"}, ["limt", "stat"]),
        (company, f"{V1}/applicant/cases", {"page": "2"}, ["page"]),
        (supervisor, f"{V1}/supervisor/alerts", {"departments": "market"}, ["departments"]),
        (client, f"{V1}/public/items", {"q": "食品"}, ["q"]),
    ]
    for caller, url, params, undeclared in calls:
        body = error_of(caller.get(url, params=params), 422, "invalid_request")
        errors = body["detail"]["errors"]
        assert [(e["field"], e["location"], e["code"]) for e in errors] == [
            (name, "query", "extra_forbidden") for name in undeclared
        ], url
        assert undeclared[0] in body["message"]
    assert ok(window.get(f"{V1}/officer/inbox", params={"sort": "due", "limit": 5}))["items"] == []


def test_notes_and_form_texts_hold_line_breaks_where_they_are_multi_line_and_nothing_hidden(
    svc: Services, signed_in: SignIn
) -> None:
    org = food_org(svc)
    company = signed_in("e.company", "applicant", holder_id=org.credit_code, display_name=org.name)
    window = signed_in("e.window", "officer", departments=["market"], intake=True)
    supervisor = signed_in("e.supervisor", "supervisor")
    rlo = "\u202e"

    def refused(response: Any, field: str, character: str = "U+202E") -> None:
        body = error_of(response, 422, "hidden_character")
        assert (body["detail"]["field"], body["detail"]["character"]) == (field, character), body

    def refused_in_form(response: Any, field: str, character: str = "U+202E") -> None:
        body = error_of(response, 422, "invalid_form")
        [problem] = body["detail"]["errors"]
        assert (problem["field"], problem["code"]) == (field, "hidden_character"), body
        assert character in problem["message"], body

    online = f"{V1}/applicant/cases"
    refused_in_form(
        company.post(online, json=food_body(form={**FOOD_FORM, "premises": "一楼\u200b全层"})),
        "premises",
        "U+200B",
    )
    refused_in_form(
        company.post(online, json=food_body(form={**FOOD_FORM, "premises": "一楼\n全层"})),
        "premises",
        "U+000A",
    )
    refused_in_form(
        company.post(online, json=food_body(form={**FOOD_FORM, "business_items": f"热食{rlo}制售"})),
        "business_items",
    )
    assert ok(company.get(online))["cases"] == []
    case = ok(
        company.post(online, json=food_body(form={**FOOD_FORM, "business_items": "热食类\n冷食类"})), 201
    )
    case_id = case["case_number"]

    [intake] = [i for i in ok(window.get(f"{V1}/officer/inbox"))["items"] if i["case_id"] == case_id]
    accept = f"{V1}/officer/tasks/{intake['id']}/accept"
    refused_in_form(window.post(accept, json={"opinion": f"予以受理{rlo}"}), "opinion")
    refused_in_form(window.post(accept, json={"opinion": "予以\u2066受理"}), "opinion", "U+2066")
    refused(
        company.post(f"{V1}/applicant/cases/{case_id}/withdrawal", json={"reason": f"不再{rlo}需要"}),
        "reason",
    )
    refused(
        company.post(f"{V1}/applicant/cases/{case_id}/rating", json={"level": 1, "comment": f"慢{rlo}"}),
        "comment",
    )
    refused(
        company.post(
            f"{V1}/applicant/cases/{case_id}/supplement", json={"materials": ["layout_plan"], "note": rlo}
        ),
        "note",
    )
    refused(
        supervisor.post(f"{V1}/supervisor/cases/{case_id}/escalations", json={"note": f"请{rlo}加快"}), "note"
    )
    refused(
        supervisor.put(f"{V1}/supervisor/calendar/2026-10-10", json={"working": True, "note": rlo}), "note"
    )
    assert ok(supervisor.get(f"{V1}/supervisor/calendar", params={"year": 2026}))["overrides"] == []
    # a multi-line opinion is an opinion
    done = ok(window.post(accept, json={"opinion": "材料齐全\n予以受理"}))
    assert done["case_status"] == "under_review"
