"""Every error over HTTP is a typed JSON body ``{code, message, detail}`` documented in OpenAPI as ErrorBody:
typed engine errors, schema errors, unknown routes, and bugs (500 with a correlation id, logged with the
traceback, also when a dependency raises)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import jsonschema
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from api.app import create_app
from api.errors import ErrorBody
from engine.bootstrap import bootstrap
from engine.persistence.tables import definitions, instances
from engine.settings import Settings
from engine.step import StepContext
from tests.api.conftest import FAST_HASHER, add_account, sign_in
from tests.integration.test_error_mapping import script_after_intake
from tests.unit.bpmn.models import document, linear, script_task

ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "422", "500", "503")
REF = "#/components/schemas/ErrorBody"
E = "/api/v1/engine"


@pytest.fixture
def app(db, clock) -> FastAPI:
    services = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=db)
    services.accounts.hasher = FAST_HASHER
    add_account(services, "designer-1", "designer")
    return create_app(services=services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """Signed in as the designer ``designer-1`` (the raw engine routes are the designers')."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        sign_in(test_client, "designer-1")
        yield test_client


def error_schema(app: FastAPI) -> dict[str, Any]:
    return app.openapi()["components"]["schemas"]["ErrorBody"]


def typed(app: FastAPI, response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with a JSON ErrorBody of ``code``, as OpenAPI documents it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    jsonschema.validate(body, error_schema(app))  # the shape the OpenAPI document promises
    ErrorBody.model_validate(body)
    assert body["code"] == code and body["message"], body
    assert response.headers["X-Request-ID"]
    return body


def test_every_route_documents_its_error_bodies_as_error_body(app: FastAPI) -> None:
    spec = app.openapi()
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's 422 shape is not sent
    schema = spec["components"]["schemas"]["ErrorBody"]
    assert set(schema["required"]) == {"code", "message", "detail"}
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 10
    for path, method, operation in operations:
        for status in ERROR_STATUSES:
            response = operation["responses"].get(status)
            assert response is not None, (method, path, status)
            assert response["content"]["application/json"]["schema"]["$ref"] == REF, (method, path, status)
            assert "X-Request-ID" in response["headers"]
    deploy = spec["paths"][f"{E}/definitions"]["post"]
    assert deploy["x-onewindow-body-class"] == "document"


def test_engine_errors_schema_errors_and_unknown_routes_are_typed(app: FastAPI, client: TestClient) -> None:
    missing = client.post(f"{E}/instances", json={"key": "nope"})
    assert typed(app, missing, 404, "definition_not_found")["detail"]
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    typed(app, client.post(f"{E}/definitions", content=xxe), 400, "doctype_forbidden")

    no_key = typed(app, client.post(f"{E}/instances", json={"data": {}}), 422, "invalid_request")
    [problem] = no_key["detail"]["errors"]
    assert problem == {"field": "key", "location": "body", "code": "missing", "message": "缺少必填字段"}
    assert "key" in no_key["message"]
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        typed(app, anonymous.post(f"{E}/instances", json={"key": "k"}), 401, "unauthenticated")
    broken = client.post(f"{E}/instances", content=b'{"key": ', headers={"content-type": "application/json"})
    assert typed(app, broken, 422, "invalid_request")["detail"]["errors"][0]["code"] == "json_invalid"
    for constant in (
        b"NaN",
        b"Infinity",
        b"-Infinity",
    ):  # Python's parser takes them; no database stores them
        body = b'{"key": "k", "data": {"x": ' + constant + b"}}"
        refused = client.post(f"{E}/instances", content=body, headers={"content-type": "application/json"})
        assert typed(app, refused, 422, "invalid_request")["detail"]["errors"][0]["code"] == "json_invalid"
    deep = b'{"key": "k", "data": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    too_deep = client.post(f"{E}/instances", content=deep, headers={"content-type": "application/json"})
    typed(app, too_deep, 422, "invalid_request")

    typed(app, client.get("/api/no-such-route"), 404, "route_not_found")
    wrong_method = client.delete(f"{E}/definitions")
    typed(app, wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"]


def test_a_failing_script_and_a_violated_constraint_over_http(app: FastAPI, client: TestClient) -> None:
    model = document(linear(script_task("calc", "ratio = 10 / divisor"), "calc", "calc"))
    client.post(f"{E}/definitions", content=model)
    failed = client.post(f"{E}/instances", json={"key": "p", "data": {"divisor": 0}})
    body = typed(app, failed, 422, "expression_failed")
    assert body["detail"]["element_id"] == "calc" and body["detail"]["error_type"] == "ZeroDivisionError"
    assert body["detail"]["line"] == 1

    def duplicate_definition(ctx: StepContext) -> None:
        row = dict(ctx.conn.execute(select(definitions).limit(1)).one()._mapping)
        row.pop("id")
        ctx.conn.execute(insert(definitions).values(row))

    observers = app.state.services.workflow.observers
    observers.append(duplicate_definition)
    duplicate = client.post(f"{E}/instances", json={"key": "p", "data": {"divisor": 2}})
    assert typed(app, duplicate, 409, "duplicate")["detail"]
    observers.remove(duplicate_definition)
    with app.state.services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(instances)).scalar_one() == 0  # nothing stored
    done = client.post(f"{E}/instances", json={"key": "p", "data": {"divisor": 2}})
    assert done.status_code == 201 and done.json()["status"] == "completed"


def test_a_bug_answers_500_json_with_a_logged_correlation_id(
    app: FastAPI, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.post(f"{E}/definitions", content=script_after_intake("note = 1"))

    def buggy(ctx: StepContext) -> None:
        raise AssertionError("an invariant of ours broke")

    app.state.services.workflow.observers.append(buggy)
    with caplog.at_level(logging.ERROR, logger="onewindow.api"):
        response = client.post(f"{E}/instances", json={"key": "p"})
    body = typed(app, response, 500, "internal")
    cid = response.headers["X-Request-ID"]
    assert body["message"].startswith("服务器内部错误") and body["detail"] == {"correlation_id": cid}
    assert "invariant" not in response.text  # nothing of the bug reaches the client
    [record] = [r for r in caplog.records if cid in r.getMessage()]
    assert record.exc_info is not None and "AssertionError" in caplog.text and "Traceback" in caplog.text

    sent = client.post(f"{E}/instances", json={"key": "p"}, headers={"X-Request-ID": "req-42.a:b"})
    assert sent.headers["X-Request-ID"] == "req-42.a:b" == sent.json()["detail"]["correlation_id"]
    other = client.post(f"{E}/instances", json={"key": "p"}, headers={"X-Correlation-ID": "abc-1"})
    assert other.headers["X-Request-ID"] == "abc-1"
    unsafe = client.post(f"{E}/instances", json={"key": "p"}, headers={"X-Request-ID": "<b> x"})
    assert unsafe.headers["X-Request-ID"] != "<b> x" and len(unsafe.headers["X-Request-ID"]) == 32
    assert client.get("/healthz").headers["X-Request-ID"]  # on every response, not only errors


def test_errors_raised_in_dependencies_are_json_too(app: FastAPI, client: TestClient) -> None:
    def broken() -> None:
        raise RuntimeError("a dependency broke")

    def broken_generator() -> Iterator[None]:
        raise KeyError("before yield")
        yield

    @app.get("/probe/dependency", dependencies=[Depends(broken)])
    def probe() -> dict[str, str]:
        return {}

    @app.get("/probe/generator", dependencies=[Depends(broken_generator)])
    def probe_generator() -> dict[str, str]:
        return {}

    for path in ("/probe/dependency", "/probe/generator"):
        body = typed(app, client.get(path), 500, "internal")
        assert body["detail"]["correlation_id"]


def test_the_server_error_middleware_handler_answers_json(app: FastAPI) -> None:
    """What escapes our middleware (raised outside it) reaches Starlette's ServerErrorMiddleware, whose
    handler is ours: JSON, not Starlette's plain-text 'Internal Server Error'."""

    class Exploding:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                raise ValueError("outside every middleware of ours")
            await self.inner(scope, receive, send)

    app.add_middleware(Exploding)  # added last: outermost of the user middleware, outside ours
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/healthz")
    body = typed(app, response, 500, "internal")
    assert body["detail"]["correlation_id"] == response.headers["X-Request-ID"]


def test_an_error_quoting_a_lone_surrogate_the_caller_sent_is_still_typed(
    app: FastAPI, client: TestClient
) -> None:
    """A data key holding a lone surrogate is refused (bad_character) and the refusal, which names where
    it sits, is written with ASCII escapes: UTF-8 has no bytes for it (it was a 500)."""
    json_body = {"content-type": "application/json"}
    for raw in (
        b'{"key": "nope", "data": {"\\ud800": 1}}',
        b'{"key": "nope", "data": {"a": {"b\\udfff": 1}}}',
    ):
        refused = typed(
            app, client.post(f"{E}/instances", content=raw, headers=json_body), 422, "bad_character"
        )
        path = refused["detail"]["path"]
        assert "\ud800" in path or "\udfff" in path


def test_a_schema_error_of_a_bound_says_the_bound(app: FastAPI, client: TestClient) -> None:
    """A bare 过长 does not tell a person what to change: the message names the limit the field has."""
    cases = (
        ({"key": "k" * 201}, "key", "过长（最多 200 个字符）"),
        ({"key": ""}, "key", "不能为空或过短（至少 1 个字符）"),
        ({"key": "k", "version": 0}, "version", "取值过小（不能小于 1）"),
        ({"key": "k", "version": 2**31}, "version", f"取值过大（不能大于 {2**31 - 1}）"),
    )
    for body, field, message in cases:
        refused = typed(app, client.post(f"{E}/instances", json=body), 422, "invalid_request")
        [problem] = refused["detail"]["errors"]
        assert (problem["field"], problem["message"]) == (field, message)
        assert refused["message"] == f"请求不符合接口定义：{field}：{message}"
    listed = client.post(f"{E}/messages", json={"name": "m" * 201})
    [problem] = typed(app, listed, 422, "invalid_request")["detail"]["errors"]
    assert problem["message"] == "过长（最多 200 个字符）"


def test_a_key_twice_in_one_json_object_is_refused_on_its_path_and_nothing_starts(
    app: FastAPI, client: TestClient, db
) -> None:
    """Parsers disagree on {"a": 1, "a": 2} (Python keeps the last, others the first): it is refused, the
    problem named where the key sits, before any command runs."""
    client.post(f"{E}/definitions", content=document(linear(script_task("calc", "n = 1"), "calc", "calc")))
    headers = {"content-type": "application/json"}
    bodies = (
        (b'{"key": "p", "key": "q"}', "key"),
        (b'{"key": "p", "data": {"amount": 1, "amount": 2}}', "data.amount"),
        (b'{"key": "p", "data": {"rows": [{"x": 1}, {"x": 1, "x": 2}]}}', "data.rows.1.x"),
    )
    for body, field in bodies:
        answer = client.post(f"{E}/instances", content=body, headers=headers)
        [problem] = typed(app, answer, 422, "invalid_request")["detail"]["errors"]
        assert (problem["field"], problem["code"]) == (field, "duplicate_key"), problem
        assert problem["message"] == "同一对象中重复出现（每个字段只能出现一次）"
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(instances)).scalar_one() == 0
    started = client.post(f"{E}/instances", content=b'{"key": "p", "data": {"a": {"a": 1}}}', headers=headers)
    assert started.status_code == 201, started.text  # the same key in two objects is no repeat


def test_every_api_answer_is_no_store_unless_the_route_says_otherwise(
    app: FastAPI, client: TestClient
) -> None:
    """An answer of the API is the caller's own: no browser or proxy may keep it for the next person."""
    answers = (
        client.get("/api/v1/auth/me"),
        client.get(f"{E}/definitions"),
        client.post(f"{E}/instances", json={"key": "nope"}),  # an error
        client.get("/api/no-such-route"),
    )
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", (answer.request.url, answer.headers)
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        assert anonymous.get("/api/v1/public/items").headers["cache-control"] == "no-store"
        assert anonymous.get("/api/v1/auth/me").headers["cache-control"] == "no-store"
        assert "no-store" not in anonymous.get("/static/ow.js").headers.get("cache-control", "")


def test_a_page_form_the_browser_posts_itself_answers_a_page_not_json(app: FastAPI) -> None:
    """A page's form sent by the browser before its script runs (a slow network, scripts off) reaches the
    page's own address: the person gets the Chinese error page, an API client still JSON."""
    with TestClient(app, raise_server_exceptions=False) as browser:
        html = {"accept": "text/html,application/xhtml+xml"}
        sent = browser.post("/login?next=/my/cases", data={"username": "a", "password": "b"}, headers=html)
        assert sent.status_code == 405 and sent.headers["content-type"].startswith("text/html")
        assert "该页面不能这样提交" in sent.text and "method_not_allowed" in sent.text
        main = sent.text.split("<main", 1)[1].split("</main>")[0]
        assert sent.headers["allow"] == "GET" and "{" not in main
        api = browser.post("/login", data={"username": "a"})
        assert api.status_code == 405 and api.json()["code"] == "method_not_allowed"
        typed(app, browser.delete(f"{E}/definitions", headers=html), 405, "method_not_allowed")
