"""The ASGI app over HTTP: health, OpenAPI, deploy/validate, start/complete, typed errors as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import bootstrap
from engine.settings import Settings

BPMN = Path(__file__).resolve().parents[1] / "integration" / "bpmn"
ACTOR = {"X-Actor": "designer-1"}


@pytest.fixture
def client(db, clock) -> TestClient:
    services = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=db)
    return TestClient(create_app(services=services))


def test_health_and_openapi(client: TestClient, db) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": db.dialect.name}
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/api/definitions", "/api/tasks/{task_id}/complete"} <= set(spec["paths"])


def test_deploy_start_inbox_complete_over_http(client: TestClient) -> None:
    xml = (BPMN / "three_tasks.bpmn").read_bytes()
    deployed = client.post("/api/definitions?filename=three.bpmn", content=xml, headers=ACTOR)
    assert deployed.status_code == 201 and deployed.json()[0]["version"] == 1
    started = client.post("/api/instances", json={"key": "three_tasks", "business_key": "K-1"}, headers=ACTOR)
    assert started.status_code == 201
    inbox = client.get("/api/tasks", params={"group": "window"}).json()
    assert [t["element_id"] for t in inbox] == ["intake"] and inbox[0]["candidate_groups"] == ["window"]
    assert client.get("/api/tasks", params={"group": "market"}).json() == []
    done = client.post(
        f"/api/tasks/{inbox[0]['id']}/complete", json={"data": {"decision": "accept"}}, headers=ACTOR
    )
    assert done.status_code == 200 and len(done.json()["opened_tasks"]) == 1
    again = client.post(f"/api/tasks/{inbox[0]['id']}/complete", json={"data": {}}, headers=ACTOR)
    assert again.status_code == 409
    assert again.json()["code"] == "task_not_ready" and again.json()["message"]
    instance = client.get(f"/api/instances/{started.json()['instance_id']}").json()
    assert instance["version"] == 2 and [e["action"] for e in instance["audit"]] == ["start", "complete"]


def test_bad_models_get_specific_errors_and_store_nothing(client: TestClient) -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    refused = client.post("/api/definitions", content=xxe, headers=ACTOR)
    assert refused.status_code == 400 and refused.json()["code"] == "doctype_forbidden"
    unassigned = (BPMN / "three_tasks.bpmn").read_text().replace(' ow:candidateGroups="market"', "")
    invalid = client.post("/api/definitions", content=unassigned.encode(), headers=ACTOR)
    assert invalid.status_code == 422
    problems = invalid.json()["detail"]["problems"]
    assert any(p["element_id"] == "review" and p["code"] == "unassigned_user_task" for p in problems)
    report = client.post("/api/validate", content=unassigned.encode()).json()
    assert report["executable"] is False
    assert client.get("/api/definitions").json() == []
    missing = client.post("/api/instances", json={"key": "nope"}, headers=ACTOR)
    assert missing.status_code == 404 and missing.json()["code"] == "definition_not_found"


def test_claim_then_only_the_claimant_may_complete_and_forms_are_validated(client: TestClient) -> None:
    from engine.persistence.tables import tasks as tasks_table

    client.post("/api/definitions", content=(BPMN / "three_tasks.bpmn").read_bytes(), headers=ACTOR)
    client.post("/api/instances", json={"key": "three_tasks"}, headers=ACTOR)
    [intake] = client.get("/api/tasks", params={"group": "window"}).json()
    assert intake["form_key"] == "task.intake"
    bad = client.post(
        f"/api/tasks/{intake['id']}/complete", json={"data": {"decision": "maybe"}}, headers=ACTOR
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_form"
    assert bad.json()["detail"]["errors"][0]["field"] == "decision"
    assert client.post(f"/api/tasks/{intake['id']}/claim", headers={"X-Actor": "wang"}).status_code == 200
    again = client.post(f"/api/tasks/{intake['id']}/claim", headers={"X-Actor": "li"})
    assert again.status_code == 409 and again.json()["code"] == "task_not_claimable"
    stolen = client.post(
        f"/api/tasks/{intake['id']}/complete",
        json={"data": {"decision": "accept"}},
        headers={"X-Actor": "li"},
    )
    assert stolen.status_code == 403 and stolen.json()["code"] == "claimed_by_other"
    services = client.app.state.services
    from engine.errors import Forbidden

    with pytest.raises(Forbidden):
        services.cases.complete_task(intake["id"], {"decision": "accept"}, "li", groups={"window"})
    services.cases.complete_task(intake["id"], {"decision": "accept"}, "wang", groups={"window"})
    with services.engine.connect() as conn:
        from sqlalchemy import select

        done = conn.execute(
            select(tasks_table.c.completed_by).where(tasks_table.c.id == intake["id"])
        ).scalar()
    assert done == "wang"
