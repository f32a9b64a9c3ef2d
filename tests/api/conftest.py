"""Shared helpers of the API tests: the whole system on the test database, accounts, signing in through
the real ``POST /api/v1/auth/login``.

    def test_something(client, svc):
        add_account(svc, "wang", "officer", departments=["market"], intake=True)
        sign_in(client, "wang")          # the session cookie is kept, X-CSRF-Token set on the client
        client.get("/api/v1/...")

    def test_two_people(signed_in):
        officer = signed_in("wang", "officer", departments=["market"])   # a client of its own each
        supervisor = signed_in("zhao", "supervisor")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.auth import CSRF_HEADER
from engine.bootstrap import Services
from engine.cases.intake import Application
from engine.persistence.database import unit_of_work
from licence.demo import demo_organisations
from licence.library import LicenceLibrary
from tests.conftest import FOOD_FORM, FakeClock, services_on

PASSWORD = "correct horse battery"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # argon2 still, cheap for tests
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def svc(db: Engine, clock: FakeClock, tmp_path: Path) -> Services:
    """Everything on the test database: bundled models, demo licences, the catalogue's departments;
    uploaded files go to the test's own directory, never to the project's ``var/``."""
    services = services_on(db, clock)
    services.accounts.hasher = FAST_HASHER
    services.settings.upload_dir = tmp_path / "uploads"
    return services


@pytest.fixture
def app(svc: Services) -> FastAPI:
    return create_app(services=svc)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def add_account(
    svc: Services,
    username: str,
    role: str,
    *,
    departments: Iterable[str] = (),
    intake: bool = False,
    holder_id: str | None = None,
    display_name: str | None = None,
    password: str = PASSWORD,
) -> int:
    """A local account (created the way an administrator would); returns its id."""
    with unit_of_work(svc.engine) as conn:
        return svc.accounts.create_account(
            conn,
            username=username,
            password=password,
            role=role,
            display_name=display_name or username,
            actor="test-admin",
            departments_of=departments,
            intake=intake,
            holder_id=holder_id,
        )


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in through the login endpoint: the client keeps the cookie and sends the CSRF secret on every
    request from now on. Returns the login body."""
    response = client.post(LOGIN, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    client.headers[CSRF_HEADER] = body["csrf_token"]
    return body


@pytest.fixture
def signed_in(app: FastAPI, svc: Services) -> Iterator[Callable[..., TestClient]]:
    """A factory: ``signed_in(username, role, **account)`` creates the account and returns a client of its
    own, signed in (cookie and CSRF header)."""
    opened: list[TestClient] = []

    def make(username: str, role: str, **account: Any) -> TestClient:
        add_account(svc, username, role, **account)
        test_client = TestClient(app, raise_server_exceptions=False)
        opened.append(test_client)
        sign_in(test_client, username)
        return test_client

    yield make
    for test_client in opened:
        test_client.close()


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the typed error ``status``/``code`` (an ErrorBody); returns its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "detail"}, body
    assert body["code"] == code and body["message"], body
    return body


def food_case(svc: Services, actor: str = "window-1") -> str:
    """A food business licence case (MR-001, market) of a demo organisation that holds a business licence
    but no food licence yet, every material handed in; returns the case number. Its first task is the
    counter's ``intake`` (group ``window``)."""
    with svc.engine.connect() as conn:
        lib = LicenceLibrary(conn)
        org = next(
            o
            for o in demo_organisations()
            if "business_licence" in (types := {lic.type_code for lic in lib.by_holder(o.credit_code)})
            and "food_business_licence" not in types
        )
    item = svc.catalogue.get("MR-001")
    provided = {"MR-001": [m.code for m in item.materials]}
    return svc.cases.submit(
        Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD_FORM), provided=provided), actor
    )
