"""The supervisor's API over HTTP: the figures by department and period, the yellow/red list with its
filters and cursor, the push (督办) with a note, and the working-day overrides (list with the unknown-year
warning, set and clear with a note; every open deadline follows)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import Services
from engine.persistence.tables import audit_log, escalations
from tests.api.conftest import error_of, food_case
from tests.conftest import FakeClock
from tests.integration.test_figures import (
    build_alerts,
    build_two_months,
    build_withdrawn,
    conn_task,
    ready,
    report,
    sh,
)

S = "/api/v1/supervisor"


@pytest.fixture
def supervisor(signed_in: Callable[..., TestClient]) -> TestClient:
    return signed_in("zhao.supervisor", "supervisor")


@pytest.fixture
def later(signed_in: Callable[..., TestClient]) -> Callable[[], TestClient]:
    """The supervisor signed in when called: after the test moved the clock (a session lasts 8 hours)."""
    return lambda: signed_in("zhao.supervisor", "supervisor")


def listed(page: dict) -> list[tuple[str, str, str]]:
    return [(a["case_id"], a["kind"], a["level"]) for a in page["items"]]


# ------------------------------------------------------------------ figures
def test_the_figures_of_a_period_for_the_centre_and_a_department(
    later: Callable[[], TestClient], svc: Services, clock: FakeClock
) -> None:
    build_two_months(svc, clock)
    supervisor = later()
    period = {"period_start": "2025-11-01", "period_end": "2025-12-31"}
    response = supervisor.get(f"{S}/figures", params=period)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == jsonable_encoder(
        report(svc, date(2025, 11, 1), date(2025, 12, 31))
    )  # the engine's figures
    centre = body["centre"]
    assert (centre["received"], centre["finished"], centre["not_accepted"], centre["open"]) == (7, 4, 1, 2)
    assert body["period"] == {"start": "2025-11-01", "end": "2025-12-31", "timezone": "Asia/Shanghai"}
    assert body["series"]["unit"] == "week" and body["series"]["buckets"][0]["start"] == "2025-11-01"
    assert body["labels"]["on_time"] == "按时办结率"
    market = supervisor.get(f"{S}/figures", params={**period, "department": "market"}).json()
    assert market["department"] == "market" and [d["department"] for d in market["departments"]] == ["market"]
    assert market["centre"]["received"] == 4  # D, A, B, F


def test_withdrawn_cases_are_shown_apart_from_the_finished_ones(
    later: Callable[[], TestClient], svc: Services, clock: FakeClock
) -> None:
    build_withdrawn(svc, clock)  # the two months and two withdrawn cases (one accepted, one not)
    supervisor = later()
    period = {"period_start": "2025-11-01", "period_end": "2025-12-31"}
    body = supervisor.get(f"{S}/figures", params=period).json()
    centre = body["centre"]
    assert (centre["received"], centre["finished"], centre["not_accepted"], centre["open"]) == (9, 4, 1, 2)
    assert centre["withdrawn"] == 2 and body["labels"]["withdrawn"] == "撤回件"
    assert (centre["on_time"]["numerator"], centre["on_time"]["denominator"]) == (3, 4)
    by_dept = {d["department"]: d for d in body["departments"]}
    assert {d: by_dept[d]["withdrawn"] for d in ("market", "police", "hr")} == {
        "market": 1,
        "police": 1,
        "hr": 0,
    }

    # the dashboard page says the same: a tile, a column, and the report line keeps them out of 办结
    page = supervisor.get("/supervisor/dashboard", params=period)
    assert page.status_code == 200, page.text
    html = page.text
    tile = re.search(
        r'data-testid="stat-withdrawn">\s*<div class="value" data-testid="value">(\d+)</div>', html
    )
    assert tile is not None and tile.group(1) == "2"
    assert '<div class="label">撤回件</div>' in html
    assert re.search(r'data-testid="report-finished">4</strong>', html)
    assert re.search(r'data-testid="report-withdrawn">2</strong> 件，不计入办结', html)
    cells = re.findall(r'data-testid="withdrawn" class="num">(\d+)</td>', html)
    assert len(cells) == len(body["departments"]) + 1 and cells[-1] == "2"  # every department, the centre


def test_the_figures_default_to_the_month_so_far(later: Callable[[], TestClient], clock: FakeClock) -> None:
    clock.set(sh(2025, 12, 17, 9))
    supervisor = later()
    body = supervisor.get(f"{S}/figures").json()
    assert body["period"]["start"] == "2025-12-01" and body["period"]["end"] == "2025-12-17"
    assert body["series"]["unit"] == "week" and body["centre"]["received"] == 0
    only_end = supervisor.get(f"{S}/figures", params={"period_end": "2025-11-20"}).json()
    assert only_end["period"]["start"] == "2025-11-01"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"period_start": "2025-12-01", "period_end": "2025-11-01"}, "bad_period"),
        ({"period_start": "2000-01-01", "period_end": "2025-11-01"}, "period_too_long"),
        ({"period_start": "2025-09-01", "department": "nope"}, "unknown_department"),
        ({"period_start": "2025-13-01"}, "invalid_request"),
        ({"department": "x" * 41}, "invalid_request"),
    ],
)
def test_the_figures_refuse_a_bad_period_or_department(
    supervisor: TestClient, params: dict, code: str
) -> None:
    error_of(supervisor.get(f"{S}/figures", params=params), 422, code)


# ------------------------------------------------------------------ the yellow/red list
def test_the_yellow_red_list_with_filters_and_a_cursor(
    later: Callable[[], TestClient], svc: Services, clock
) -> None:
    ids = build_alerts(svc, clock)
    supervisor = later()
    expected = [
        (ids["p2"], "promised", "red"),
        (ids["p4"], "task", "yellow"),
        (ids["p1"], "promised", "yellow"),
    ]
    page = supervisor.get(f"{S}/alerts").json()
    assert listed(page) == expected and page["next_cursor"] is None
    red = page["items"][0]
    assert red["due_at"] == "2025-12-10T16:00:00Z" and red["level_label"] == "红牌"
    assert red["department_label"] == "公安分局" and red["remaining_working_days"] == -1.42
    assert red["escalated"] is False and red["supervisions"] == 0
    assert listed(supervisor.get(f"{S}/alerts", params={"level": "red"}).json()) == expected[:1]
    assert listed(supervisor.get(f"{S}/alerts", params={"department": "market"}).json()) == expected[2:]
    both = supervisor.get(f"{S}/alerts", params=[("department", "market"), ("department", "police")]).json()
    assert listed(both) == expected
    assert listed(supervisor.get(f"{S}/alerts", params={"department": "window"}).json()) == expected[1:2]
    walked, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = supervisor.get(f"{S}/alerts", params=params).json()
        walked += listed(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected
    error_of(supervisor.get(f"{S}/alerts", params={"cursor": "not-a-cursor"}), 422, "bad_cursor")
    error_of(supervisor.get(f"{S}/alerts", params={"department": "nope"}), 422, "unknown_department")
    error_of(supervisor.get(f"{S}/alerts", params={"level": "orange"}), 422, "invalid_request")
    error_of(supervisor.get(f"{S}/alerts", params={"limit": 0}), 422, "invalid_request")
    error_of(supervisor.get(f"{S}/alerts", params={"limit": 201}), 422, "invalid_request")


# ------------------------------------------------------------------ the push
def test_a_supervisor_pushes_a_case_or_a_step_with_a_note(
    later: Callable[[], TestClient], svc: Services, clock
) -> None:
    ids = build_alerts(svc, clock)
    supervisor = later()
    pushed = supervisor.post(f"{S}/cases/{ids['p2']}/escalations", json={"note": "  请于本周内办结  "})
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert (
        body["clock_kind"] == "promised"
        and body["note"] == "请于本周内办结"
        and body["level"] == "supervisor"
    )
    assert body["raised_by"] == "zhao.supervisor" and body["case_id"] == ids["p2"] and body["task_id"] is None
    assert body["raised_at"].startswith("2025-12-12T02:00:00")
    intake = ready(svc, ids["p4"])["intake"]["id"]
    step = supervisor.post(f"{S}/cases/{ids['p4']}/escalations", json={"note": "尽快受理", "task_id": intake})
    assert (
        step.status_code == 201 and step.json()["clock_kind"] == "task" and step.json()["task_id"] == intake
    )
    with svc.engine.connect() as conn:
        actors = conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "supervision")).scalars()
        assert list(actors) == ["zhao.supervisor", "zhao.supervisor"]
        assert (
            len(conn.execute(select(escalations.c.id).where(escalations.c.level == "supervisor")).all()) == 2
        )
    alerts = {(a["case_id"], a["kind"]): a for a in supervisor.get(f"{S}/alerts").json()["items"]}
    assert alerts[(ids["p2"], "promised")]["supervisions"] == 1 and alerts[(ids["p4"], "task")]["escalated"]

    def push(case_id: str, **body: object):  # type: ignore[no-untyped-def]
        return supervisor.post(f"{S}/cases/{case_id}/escalations", json={"note": "督办", **body})

    missing = error_of(push("251212-9999-0"), 404, "case_not_found")
    assert missing["message"] == "办件不存在"
    error_of(push(ids["p6"]), 409, "case_closed")
    error_of(push(ids["p5"]), 409, "nothing_to_escalate")
    error_of(push(ids["p2"], task_id=intake), 404, "task_not_found")  # not a task of that case
    error_of(push(ids["p1"], task_id=conn_task(svc, ids["p1"], "intake")), 409, "task_not_ready")
    error_of(push(ids["p2"], note="   "), 422, "note_required")
    error_of(push(ids["p2"], note="催" * 501), 422, "invalid_request")
    error_of(push(ids["p2"], level="red"), 422, "invalid_request")
    error_of(push("x" * 21), 422, "invalid_request")


# ------------------------------------------------------------------ the calendar
def test_the_overrides_of_a_year_and_the_unknown_year_warning(supervisor: TestClient) -> None:
    year = supervisor.get(f"{S}/calendar", params={"year": 2025})
    assert year.status_code == 200
    assert year.json() == {
        "year": 2025,
        "known_years": {"first": 2004, "last": 2026},
        "year_known": True,
        "overrides": [],
        "warnings": [],
    }
    assert supervisor.get(f"{S}/calendar").json()["year"] == 2025  # this year by default
    unknown = supervisor.get(f"{S}/calendar", params={"year": 2030}).json()
    assert unknown["year_known"] is False and "没有 2030 年的数据" in unknown["warnings"][0]
    error_of(supervisor.get(f"{S}/calendar", params={"year": 1950}), 422, "date_out_of_range")
    error_of(supervisor.get(f"{S}/calendar", params={"year": 99999}), 422, "invalid_request")


def test_set_and_clear_an_override_with_a_note_and_the_deadlines_follow(
    supervisor: TestClient, svc: Services, clock: FakeClock
) -> None:
    case_id = food_case(svc)
    intake = conn_task(svc, case_id, "intake")
    svc.cases.complete_task(intake, {"decision": "accept"}, "window-1", groups={"window"})
    before = svc.cases.track(case_id)
    saturday = "2025-10-18"  # a rest day inside the case's promised limit
    made = supervisor.put(f"{S}/calendar/{saturday}", json={"working": True, "note": "本地调休通知"})
    assert made.status_code == 200, made.text
    change = made.json()
    assert change["day"] == saturday and change["working"] is True and change["overridden"] is True
    assert change["clocks"] >= 1 and change["failed"] == [] and change["warnings"] == []
    assert svc.cases.track(case_id) != before  # the case's deadlines moved
    listed_ = supervisor.get(f"{S}/calendar", params={"year": 2025}).json()["overrides"]
    assert [(o["day"], o["working"], o["note"], o["set_by"]) for o in listed_] == [
        (saturday, True, "本地调休通知", "zhao.supervisor")
    ]
    error_of(
        supervisor.request("DELETE", f"{S}/calendar/{saturday}", json={"note": "  "}), 422, "reason_required"
    )
    error_of(supervisor.request("DELETE", f"{S}/calendar/{saturday}", json={}), 422, "invalid_request")
    cleared = supervisor.request("DELETE", f"{S}/calendar/{saturday}", json={"note": "通知撤回"})
    assert cleared.status_code == 200
    assert cleared.json()["working"] is False and cleared.json()["overridden"] is False
    assert supervisor.get(f"{S}/calendar", params={"year": 2025}).json()["overrides"] == []
    again = supervisor.request("DELETE", f"{S}/calendar/{saturday}", json={"note": "再撤"})
    error_of(again, 404, "override_not_found")
    with svc.engine.connect() as conn:
        notes = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "calendar_override")
        ).scalars()
        assert [n["note"] for n in notes] == ["本地调休通知", "通知撤回"]

    error_of(
        supervisor.put(f"{S}/calendar/{saturday}", json={"working": True, "note": " "}),
        422,
        "reason_required",
    )
    error_of(supervisor.put(f"{S}/calendar/{saturday}", json={"working": True}), 422, "invalid_request")
    error_of(supervisor.put(f"{S}/calendar/{saturday}", json={"note": "x"}), 422, "invalid_request")
    error_of(
        supervisor.put(f"{S}/calendar/2025-02-30", json={"working": True, "note": "x"}),
        422,
        "invalid_request",
    )
    error_of(
        supervisor.put(f"{S}/calendar/1950-01-02", json={"working": True, "note": "x"}),
        422,
        "date_out_of_range",
    )
    future = supervisor.put(f"{S}/calendar/2030-01-05", json={"working": True, "note": "预先调整"})
    assert future.status_code == 200 and "没有 2030 年的数据" in future.json()["warnings"][0]


# ------------------------------------------------------------------ who
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/figures", None),
        ("GET", "/alerts", None),
        ("POST", "/cases/251212-9999-0/escalations", {"note": "督办"}),
    ],
)
def test_the_figures_alerts_and_pushes_are_the_supervisors(
    client: TestClient, signed_in: Callable[..., TestClient], method: str, path: str, body: dict | None
) -> None:
    error_of(client.request(method, S + path, json=body), 401, "unauthenticated")
    for username, role, extra in (
        ("officer.a", "officer", {"departments": ["market"]}),
        ("designer.a", "designer", {}),
        ("admin.a", "administrator", {}),
        ("citizen.a", "applicant", {"holder_id": "11010519491231002X"}),
    ):
        error_of(
            signed_in(username, role, **extra).request(method, S + path, json=body), 403, "forbidden_role"
        )


def test_the_calendar_is_kept_by_supervisors_and_administrators(
    client: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    error_of(client.get(f"{S}/calendar"), 401, "unauthenticated")
    for username, role, extra in (
        ("officer.a", "officer", {"departments": ["market"]}),
        ("designer.a", "designer", {}),
        ("citizen.a", "applicant", {"holder_id": "11010519491231002X"}),
    ):
        other = signed_in(username, role, **extra)
        error_of(other.get(f"{S}/calendar"), 403, "forbidden_role")
        error_of(
            other.put(f"{S}/calendar/2025-12-06", json={"working": True, "note": "x"}), 403, "forbidden_role"
        )
    admin = signed_in("admin.a", "administrator")
    made = admin.put(f"{S}/calendar/2025-12-06", json={"working": True, "note": "管理员调整"})
    assert made.status_code == 200 and made.json()["working"] is True
    assert admin.get(f"{S}/calendar").json()["overrides"][0]["set_by"] == "admin.a"


def test_a_control_character_in_a_note_is_an_error_of_the_note_and_nothing_is_stored(
    later: Callable[[], TestClient], svc: Services, clock
) -> None:
    ids = build_alerts(svc, clock)
    supervisor = later()
    for method, path, body in (
        ("POST", f"{S}/cases/{ids['p2']}/escalations", {"note": "请\x07尽快办结"}),
        ("PUT", f"{S}/calendar/2025-12-20", {"working": True, "note": "调休\x1b"}),
    ):
        refused = error_of(supervisor.request(method, path, json=body), 422, "hidden_character")
        assert refused["detail"]["field"] == "note", refused
        assert refused["detail"]["character"].startswith("U+00") and "控制字符" in refused["message"]
    with svc.engine.connect() as conn:
        assert conn.execute(select(escalations.c.id).where(escalations.c.level == "supervisor")).all() == []
    assert supervisor.get(f"{S}/calendar", params={"year": 2025}).json()["overrides"] == []
    note = "请尽快办结：\n1. 核查\t2. 决定"  # line breaks and tabs are text
    kept = supervisor.post(f"{S}/cases/{ids['p2']}/escalations", json={"note": note})
    assert kept.status_code == 201 and kept.json()["note"] == note
