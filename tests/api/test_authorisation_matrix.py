"""The authorisation matrix of the whole API (issue 10), over HTTP on SQLite and PostgreSQL.

ONE table, :data:`MATRIX`, says for every route (method, path) what each principal gets:

* ``ok``: access granted (anything but 401/403/404/405; a 409/422 business refusal still proves the handler
  ran, and an ``ok`` answer is never the schema's ``invalid_request``: every body below passes the schema);
* ``401``: not signed in; ``403``: wrong role (``forbidden_role``);
* ``404``: outside the caller's scope, answered exactly like an id that does not exist (same status, code,
  message and detail but for the id itself).

The table must list every route of the app (and only those), and every route must be in the OpenAPI
document. Denied principals are called before the allowed ones on each route, and a route that would change
what another sees works on objects of its own (its own token, a spare account, its own calendar day).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.auth import CSRF_HEADER
from api.routes import admin, applicant, auth, designer, engine, officer, public, supervisor
from engine.bootstrap import Services
from engine.cases.files import CaseFiles
from engine.cases.numbers import format_case_number
from engine.persistence.tables import cases, tasks
from licence.demo import demo_persons
from tests.api.conftest import PASSWORD, add_account, food_case, sign_in

BPMN_DIR = Path(__file__).resolve().parents[1] / "integration" / "bpmn"
SINGLE_WINDOW = Path(__file__).resolve().parents[2] / "processes" / "single_window.bpmn"

PRINCIPALS = (
    "anonymous",
    "company",  # applicant A (organisation): owns {case_id}
    "person",  # applicant B (natural person)
    "window",  # officer of market, counter intake (group window)
    "market",  # officer of market
    "health",  # officer of health
    "designer",
    "supervisor",
    "administrator",
)
SIGNED_IN = PRINCIPALS[1:]
OK, E401, E403, E404 = "ok", "401", "403", "404"


def outcome(**given: str) -> dict[str, str]:
    """Everyone but the anonymous caller gets ``default`` (403 unless given); the anonymous caller 401."""
    default = given.pop("default", E403)
    table = {p: default for p in SIGNED_IN} | {"anonymous": E401}
    unknown = set(given) - set(PRINCIPALS)
    assert not unknown, unknown
    return table | given


PUBLIC = {p: OK for p in PRINCIPALS}
ANY_CALLER = outcome(default=OK)
APPLICANTS = outcome(company=OK, person=OK)
OWN_CASE = outcome(company=OK, person=E404)
OFFICERS = outcome(window=OK, market=OK, health=OK)
CASE_OFFICERS = outcome(window=OK, market=OK, health=E404)  # a market case
TASK_WORKERS = outcome(window=OK, market=E404, health=E404)  # the intake task: group window
DESIGNERS = outcome(designer=OK, administrator=OK)
SUPERVISORS = outcome(supervisor=OK)
CALENDAR = outcome(supervisor=OK, administrator=OK)
ADMINS = outcome(administrator=OK)


@dataclass(frozen=True)
class Call:
    """How a route is called: its path parameters (fixture names) and its body."""

    expected: dict[str, str]
    params: dict[str, str] | None = None  # path parameter -> fixture key (see :class:`World`)
    json: Any = None
    xml: bool = False  # a BPMN document body
    upload: bool = False  # a multipart material file
    query: dict[str, Any] | None = None
    missing: str | None = None  # the error code of an unknown id (scope denials must answer the same)


CASE = {"case_id": "case"}
TASK = {"task_id": "intake_task"}

# ONE table: (method, path) -> the call and the outcome of every principal. Order matters only for the routes
# that end something (logout last).
MATRIX: dict[tuple[str, str], Call] = {
    ("GET", "/healthz"): Call(PUBLIC),
    # ---- auth
    ("POST", "/api/v1/auth/login"): Call(PUBLIC, json="login"),
    ("GET", "/api/v1/auth/me"): Call(ANY_CALLER),
    ("GET", "/api/v1/auth/tokens"): Call(ANY_CALLER),
    ("POST", "/api/v1/auth/tokens"): Call(ANY_CALLER, json={"name": "矩阵测试", "days": 1}),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): Call(ANY_CALLER, params={"token_id": "own_token"}),
    # ---- public
    ("GET", "/api/v1/public/items"): Call(PUBLIC),
    ("GET", "/api/v1/public/items/{code}"): Call(PUBLIC, params={"code": "item"}),
    ("POST", "/api/v1/public/track"): Call(PUBLIC, json="track"),
    # ---- applicant
    ("GET", "/api/v1/applicant/application-form"): Call(APPLICANTS, query={"items": ["MR-001"]}),
    ("GET", "/api/v1/applicant/cases"): Call(APPLICANTS),
    ("POST", "/api/v1/applicant/cases"): Call(
        APPLICANTS, json={"items": ["MR-001"], "form": {}, "provided": {}}
    ),
    ("GET", "/api/v1/applicant/cases/{case_id}"): Call(OWN_CASE, CASE, missing="case_not_found"),
    ("POST", "/api/v1/applicant/cases/{case_id}/files"): Call(
        OWN_CASE, CASE, upload=True, missing="case_not_found"
    ),
    ("GET", "/api/v1/applicant/cases/{case_id}/files/{file_id}"): Call(
        OWN_CASE, {**CASE, "file_id": "case_file"}, missing="case_not_found"
    ),
    ("POST", "/api/v1/applicant/cases/{case_id}/supplement"): Call(
        OWN_CASE, CASE, json={"materials": ["layout_plan"]}, missing="case_not_found"
    ),
    ("POST", "/api/v1/applicant/cases/{case_id}/commitment"): Call(
        OWN_CASE,
        CASE,
        json={"missing_materials": ["layout_plan"], "promised_date": "2025-11-10", "signed": True},
        missing="case_not_found",
    ),
    ("POST", "/api/v1/applicant/cases/{case_id}/rating"): Call(
        OWN_CASE, CASE, json={"level": 5, "comment": ""}, missing="case_not_found"
    ),
    ("POST", "/api/v1/applicant/cases/{case_id}/withdrawal"): Call(
        OWN_CASE, CASE, json={"reason": "不再需要"}, missing="case_not_found"
    ),
    # ---- officer (the intake task of the company's market case, group window)
    ("GET", "/api/v1/officer/inbox"): Call(OFFICERS),
    ("POST", "/api/v1/officer/counter/applications"): Call(
        outcome(window=OK, market=E403, health=E403),  # counter intake: the window officers only
        json={"applicant_id": "11010519491231002X", "applicant_name": "张三", "items": ["MR-001"]},
    ),
    ("GET", "/api/v1/officer/tasks/{task_id}"): Call(CASE_OFFICERS, TASK, missing="task_not_found"),
    ("GET", "/api/v1/officer/cases/{case_id}"): Call(CASE_OFFICERS, CASE, missing="case_not_found"),
    ("GET", "/api/v1/officer/cases/{case_id}/files/{file_id}"): Call(
        CASE_OFFICERS, {**CASE, "file_id": "case_file"}, missing="case_not_found"
    ),
    ("POST", "/api/v1/officer/cases/{case_id}/withdrawal"): Call(
        CASE_OFFICERS, CASE, json={"grant": False, "opinion": "继续办理"}, missing="case_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/claim"): Call(TASK_WORKERS, TASK, missing="task_not_found"),
    ("POST", "/api/v1/officer/tasks/{task_id}/release"): Call(TASK_WORKERS, TASK, missing="task_not_found"),
    ("POST", "/api/v1/officer/tasks/{task_id}/complete"): Call(
        TASK_WORKERS, TASK, json={"data": {}}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/refuse"): Call(
        TASK_WORKERS, TASK, json={"reason": "不符合条件"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/supplement"): Call(
        TASK_WORKERS, TASK, json={"materials": ["layout_plan"]}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/review"): Call(
        TASK_WORKERS, TASK, json={"result": "pass", "opinion": "符合"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/special-procedure/start"): Call(
        TASK_WORKERS, TASK, json={"kind": "inspection", "opinion": "现场核查"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/special-procedure/end"): Call(
        TASK_WORKERS,
        TASK,
        json={"result": "合格", "started_on": "2025-11-03", "finished_on": "2025-11-03"},
        missing="task_not_found",
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/approve"): Call(
        TASK_WORKERS, TASK, json={"opinion": "同意"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/deny"): Call(
        TASK_WORKERS, TASK, json={"opinion": "不同意"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/rework"): Call(
        TASK_WORKERS, TASK, json={"opinion": "退回"}, missing="task_not_found"
    ),
    ("POST", "/api/v1/officer/tasks/{task_id}/deliver"): Call(
        TASK_WORKERS, TASK, json={"method": "window"}, missing="task_not_found"
    ),
    # accept last of the task's actions: the ones before it meet a ready intake task
    ("POST", "/api/v1/officer/tasks/{task_id}/accept"): Call(
        TASK_WORKERS, TASK, json={"opinion": "予以受理"}, missing="task_not_found"
    ),
    # ---- designer
    ("GET", "/api/v1/designer/models"): Call(DESIGNERS),
    ("GET", "/api/v1/designer/models/{key}"): Call(DESIGNERS, params={"key": "process_key"}),
    ("GET", "/api/v1/designer/models/{key}/versions/{version}"): Call(
        DESIGNERS, params={"key": "process_key", "version": "version"}
    ),
    ("POST", "/api/v1/designer/validate"): Call(DESIGNERS, xml=True),
    ("POST", "/api/v1/designer/deployments"): Call(DESIGNERS, xml=True),
    ("POST", "/api/v1/designer/validations"): Call(DESIGNERS, xml=True),
    ("GET", "/api/v1/designer/departments"): Call(DESIGNERS),
    ("GET", "/api/v1/designer/forms"): Call(DESIGNERS),
    ("GET", "/api/v1/designer/clock-kinds"): Call(DESIGNERS),
    # ---- raw engine (not for cases)
    ("POST", "/api/v1/engine/definitions"): Call(DESIGNERS, xml=True),
    ("GET", "/api/v1/engine/definitions"): Call(DESIGNERS),
    ("POST", "/api/v1/engine/validate"): Call(DESIGNERS, xml=True),
    ("POST", "/api/v1/engine/instances"): Call(DESIGNERS, json={"key": "three_tasks", "data": {}}),
    ("GET", "/api/v1/engine/instances/{instance_id}"): Call(DESIGNERS, params={"instance_id": "instance"}),
    ("GET", "/api/v1/engine/tasks"): Call(DESIGNERS),
    ("POST", "/api/v1/engine/tasks/{task_id}/claim"): Call(DESIGNERS, params={"task_id": "raw_task"}),
    ("POST", "/api/v1/engine/tasks/{task_id}/complete"): Call(
        DESIGNERS, params={"task_id": "raw_task"}, json={"data": {}}
    ),
    ("POST", "/api/v1/engine/messages"): Call(
        DESIGNERS, json={"name": "ping", "instance_id": "{instance}", "payload": {}}
    ),
    ("POST", "/api/v1/engine/instances/{instance_id}/cancel"): Call(
        DESIGNERS, params={"instance_id": "instance"}, json={"reason": "矩阵测试"}
    ),
    # ---- supervisor
    ("GET", "/api/v1/supervisor/figures"): Call(SUPERVISORS),
    ("GET", "/api/v1/supervisor/alerts"): Call(SUPERVISORS),
    ("POST", "/api/v1/supervisor/cases/{case_id}/escalations"): Call(
        SUPERVISORS, CASE, json={"note": "请加快办理"}
    ),
    ("GET", "/api/v1/supervisor/calendar"): Call(CALENDAR, query={"year": 2026}),
    ("PUT", "/api/v1/supervisor/calendar/{day}"): Call(
        CALENDAR, params={"day": "spare_day"}, json={"working": True, "note": "矩阵测试"}
    ),
    ("DELETE", "/api/v1/supervisor/calendar/{day}"): Call(
        CALENDAR, params={"day": "spare_day"}, json={"note": "矩阵测试撤销"}
    ),
    # ---- administrator
    ("GET", "/api/v1/admin/accounts"): Call(ADMINS),
    ("POST", "/api/v1/admin/accounts"): Call(ADMINS, json="new_account"),
    ("PUT", "/api/v1/admin/accounts/{account_id}/active"): Call(
        ADMINS, params={"account_id": "spare_account"}, json={"active": True}
    ),
    ("PUT", "/api/v1/admin/accounts/{account_id}/departments"): Call(
        ADMINS, params={"account_id": "spare_account"}, json={"departments": ["market"], "intake": False}
    ),
    ("PUT", "/api/v1/admin/accounts/{account_id}/password"): Call(
        ADMINS, params={"account_id": "spare_account"}, json={"password": "matrix new password"}
    ),
    ("PUT", "/api/v1/admin/accounts/{account_id}/role"): Call(
        ADMINS, params={"account_id": "spare_account"}, json={"role": "officer", "departments": ["health"]}
    ),
    ("GET", "/api/v1/admin/roles"): Call(ADMINS),
    ("GET", "/api/v1/admin/departments"): Call(ADMINS),
    ("POST", "/api/v1/admin/departments"): Call(ADMINS, json="new_department"),
    # ends the other sessions and the tokens, then the session: last
    ("POST", "/api/v1/auth/password"): Call(
        ANY_CALLER, json={"current_password": PASSWORD, "new_password": "matrix new password"}
    ),
    ("POST", "/api/v1/auth/logout"): Call(ANY_CALLER),
}


# ------------------------------------------------------------------ the routes of the app
ROUTERS: tuple[APIRouter, ...] = tuple(
    m.router for m in (auth, public, applicant, officer, designer, engine, supervisor, admin)
)


def openapi_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def hidden_routes(app: FastAPI) -> list[str]:
    """Every API route of every router module and of the app that is left out of the OpenAPI document."""
    hidden = [
        f"{r.methods} {r.path}"
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and not r.include_in_schema
    ]
    hidden += [
        f"{r.methods} {r.path}"
        for r in app.router.routes
        if isinstance(r, APIRoute) and not r.include_in_schema
    ]
    return hidden


def module_routes() -> set[tuple[str, str]]:
    return {
        (method, "/api/v1" + r.path)
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute)
        for method in r.methods
    }


def test_the_table_lists_every_route_of_the_app_and_no_other(app: FastAPI) -> None:
    documented = openapi_routes(app)
    assert not hidden_routes(app)
    assert module_routes() <= documented  # nothing of a router module is missing from the document
    assert sorted(documented - set(MATRIX)) == [], "routes the matrix does not list"
    assert sorted(set(MATRIX) - documented) == [], "the matrix lists routes that do not exist"


# ------------------------------------------------------------------ the world the matrix runs in
@dataclass
class World:
    clients: dict[str, TestClient]
    values: dict[str, Any]
    accounts: dict[str, str]  # principal -> username


def _org_for_food(svc: Services) -> Any:
    from licence.demo import demo_organisations
    from licence.library import LicenceLibrary

    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        return next(
            o
            for o in demo_organisations()
            if "business_licence" in (t := {lic.type_code for lic in lib.by_holder(o.credit_code)})
            and "food_business_licence" not in t
        )


@pytest.fixture
def world(app: FastAPI, svc: Services) -> Iterator[World]:
    org = _org_for_food(svc)
    person = demo_persons()[0]
    accounts = {
        "company": dict(role="applicant", holder_id=org.credit_code, display_name=org.name),
        "person": dict(role="applicant", holder_id=person.resident_id, display_name=person.name),
        "window": dict(role="officer", departments=["market"], intake=True),
        "market": dict(role="officer", departments=["market"]),
        "health": dict(role="officer", departments=["health"]),
        "designer": dict(role="designer"),
        "supervisor": dict(role="supervisor"),
        "administrator": dict(role="administrator"),
    }
    clients = {p: TestClient(app, raise_server_exceptions=False) for p in ("anonymous", "throwaway")}
    names: dict[str, str] = {}
    for principal, account in accounts.items():
        username = f"m.{principal}"
        role = str(account.pop("role"))
        add_account(svc, username, role, **account)  # type: ignore[arg-type]
        clients[principal] = TestClient(app, raise_server_exceptions=False)
        sign_in(clients[principal], username)
        names[principal] = username
    spare = add_account(svc, "m.spare", "officer", departments=["health"])

    case_id = food_case(svc)
    case_file = CaseFiles(svc.engine, svc.clock, svc.settings.upload_dir, 1_000_000).store(
        case_id,
        "layout_plan",
        "平面图.pdf",
        io.BytesIO(b"%PDF-1.7\n%%EOF\n"),
        holder_id=org.credit_code,
        actor="setup",
    )["id"]
    with svc.engine.connect() as conn:
        check_code = conn.execute(select(cases.c.check_code).where(cases.c.id == case_id)).scalar_one()
        intake = conn.execute(
            select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.state == "ready")
        ).scalar_one()
    svc.workflow.deploy((BPMN_DIR / "three_tasks.bpmn").read_bytes(), "three.bpmn", "setup")
    started = svc.workflow.start("three_tasks", {}, "setup", business_key="MATRIX-1")
    # objects of each caller's own where one allowed call changes what the next sees
    raw_tasks = {
        p: svc.workflow.start("three_tasks", {}, "setup", business_key=f"MATRIX-{p}").opened_tasks[0]
        for p in ("designer", "administrator")
    }
    days = {p: f"2026-03-{7 + i:02d}" for i, p in enumerate(PRINCIPALS)}
    tokens = {
        p: svc.accounts.issue_token(svc.accounts.session(clients[p].cookies["ow_session"])[0], "own", 1)[0]
        for p in SIGNED_IN
    }
    values: dict[str, Any] = {
        "case": case_id,
        "check_code": check_code,
        "intake_task": intake,
        "item": "MR-001",
        "process_key": "single_window",
        "version": 1,
        "instance": started.instance_id,
        "raw_task": raw_tasks,
        "spare_day": days,
        "spare_account": spare,
        "case_file": case_file,
        "tokens": tokens,
    }
    yield World(clients, values, names)
    for c in clients.values():
        c.close()


def _fill(path: str, call: Call, world: World, principal: str, missing: bool = False) -> str:
    for name, key in (call.params or {}).items():
        if key == "own_token":
            value: Any = world.values["tokens"].get(principal, 1)
        elif missing:
            value = {"intake_task": str(uuid.uuid4()), "case_file": 987654321}.get(
                key, format_case_number(date(2025, 9, 30), 9876)
            )
        else:
            value = world.values[key]
            if isinstance(value, dict):  # one of the caller's own (any one for a denied caller)
                value = value.get(principal) or next(iter(value.values()))
        path = path.replace("{" + name + "}", str(value))
    return path


def _body(call: Call, world: World, principal: str, n: int) -> dict[str, Any]:
    if call.xml:
        return {
            "content": SINGLE_WINDOW.read_bytes(),
            "headers": {"Content-Type": "application/xml"},
            "params": {"filename": "single_window.bpmn"},
        }
    if call.upload:
        return {
            "data": {"material": "layout_plan"},
            "files": {"file": ("a.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")},
        }
    body = call.json
    if body == "login":
        username = world.accounts.get(principal, "m.spare")
        return {"json": {"username": username, "password": PASSWORD}}
    if body == "track":
        return {"json": {"case_number": world.values["case"], "check_code": world.values["check_code"]}}
    if body == "new_account":
        return {
            "json": {
                "username": f"new.{principal}.{n}",
                "password": "another long password 123",
                "role": "supervisor",
                "display_name": "新账号",
            }
        }
    if body == "new_department":
        return {"json": {"code": f"dept_{principal}_{n}", "name": "新部门"}}
    if isinstance(body, dict) and body.get("instance_id") == "{instance}":
        body = {**body, "instance_id": world.values["instance"]}
    return {} if body is None else {"json": body}


def _request(client: TestClient, method: str, path: str, call: Call, kwargs: dict[str, Any]) -> Any:
    return client.request(method, path, params={**(call.query or {}), **kwargs.pop("params", {})}, **kwargs)


def _without_id(body: dict[str, Any]) -> tuple[Any, ...]:
    detail = {k: v for k, v in body["detail"].items() if k not in ("case", "task_id", "case_id")}
    return body["code"], body["message"], detail


def test_every_principal_gets_exactly_what_the_table_allows(world: World) -> None:
    failures: list[str] = []
    for n, ((method, template), call) in enumerate(MATRIX.items()):
        order = sorted(PRINCIPALS, key=lambda p: call.expected[p] == OK)  # the denied ones first
        for principal in order:
            expected = call.expected[principal]
            client = world.clients[principal]
            if principal == "anonymous" and template == "/api/v1/auth/login":
                client = world.clients["throwaway"]  # the anonymous caller stays anonymous
            path = _fill(template, call, world, principal)
            response = _request(client, method, path, call, _body(call, world, principal, n))
            status = response.status_code
            json_answer = response.headers.get("content-type", "").startswith("application/json")
            body = response.json() if response.content and json_answer else {}  # a file is no JSON
            code = body.get("code") if isinstance(body, dict) else None
            where = f"{method} {template} as {principal}: expected {expected}, got {status} {str(body)[:200]}"
            if expected == OK:
                if status in (401, 403, 404, 405) or status >= 500 or code == "invalid_request":
                    failures.append(where)
                elif template == "/api/v1/auth/login" and principal != "anonymous":
                    client.headers[CSRF_HEADER] = body["csrf_token"]  # the new session's secret
            elif expected == E401:
                if (status, code) != (401, "unauthenticated"):
                    failures.append(where)
            elif expected == E403:
                if (status, code) != (403, "forbidden_role"):
                    failures.append(where)
            else:
                unknown = _request(
                    client,
                    method,
                    _fill(template, call, world, principal, missing=True),
                    call,
                    _body(call, world, principal, n),
                )
                if status != 404 or unknown.status_code != 404 or code != call.missing:
                    failures.append(where + f" (unknown id: {unknown.status_code} {unknown.text[:200]})")
                elif _without_id(body) != _without_id(unknown.json()):
                    failures.append(where + f": differs from an unknown id: {unknown.json()}")
    assert not failures, "\n".join(failures)
