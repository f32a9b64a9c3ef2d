"""The raw engine over HTTP (``/api/v1/engine``), for designers and administrators: health, OpenAPI,
deploy/validate, start/complete/claim/message/cancel with the signed-in account as the actor, typed errors;
and never on the workflow of a case (409 ``case_instance``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import Services
from engine.persistence.tables import instances, tasks
from tests.api.conftest import error_of, food_case

BPMN = Path(__file__).resolve().parents[1] / "integration" / "bpmn"
E = "/api/v1/engine"


@pytest.fixture
def designer(signed_in: Callable[..., TestClient]) -> TestClient:
    return signed_in("designer.wang", "designer")


def deploy_three(client: TestClient) -> None:
    xml = (BPMN / "three_tasks.bpmn").read_bytes()
    assert client.post(f"{E}/definitions?filename=three.bpmn", content=xml).status_code == 201


def test_health_and_openapi(client: TestClient, db) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": db.dialect.name}
    spec = client.get("/openapi.json").json()
    assert {"/healthz", f"{E}/definitions", f"{E}/tasks/{{task_id}}/complete"} <= set(spec["paths"])
    assert not [p for p in spec["paths"] if p.startswith("/api/") and not p.startswith("/api/v1/")]
    headers = [
        param["name"].lower()
        for item in spec["paths"].values()
        for op in item.values()
        for param in op.get("parameters", [])
        if param["in"] == "header"
    ]
    assert "x-actor" not in headers  # the actor is the signed-in account, everywhere


def test_deploy_start_inbox_complete_over_http(designer: TestClient, svc: Services) -> None:
    xml = (BPMN / "three_tasks.bpmn").read_bytes()
    deployed = designer.post(f"{E}/definitions?filename=three.bpmn", content=xml)
    assert deployed.status_code == 201
    assert deployed.json()[0] | {"definition_id": 0, "checksum": ""} == {
        "definition_id": 0,
        "key": "three_tasks",
        "version": 1,
        "checksum": "",
        "created": True,
        "filename": "three.bpmn",
    }
    listed = {d["key"]: d for d in designer.get(f"{E}/definitions").json()}
    assert listed["three_tasks"]["deployed_by"] == "designer.wang"
    started = designer.post(f"{E}/instances", json={"key": "three_tasks", "business_key": "K-1"})
    assert started.status_code == 201 and started.json()["status"] == "running"
    inbox = designer.get(f"{E}/tasks", params={"group": "window"}).json()
    assert [t["element_id"] for t in inbox] == ["intake"] and inbox[0]["candidate_groups"] == ["window"]
    assert inbox[0]["business_key"] == "K-1" and inbox[0]["form_key"] == "task.intake"
    assert designer.get(f"{E}/tasks", params={"group": "market"}).json() == []
    done = designer.post(f"{E}/tasks/{inbox[0]['id']}/complete", json={"data": {"decision": "accept"}})
    assert done.status_code == 200 and len(done.json()["opened_tasks"]) == 1
    again = designer.post(f"{E}/tasks/{inbox[0]['id']}/complete", json={"data": {}})
    error_of(again, 409, "task_not_ready")
    instance = designer.get(f"{E}/instances/{started.json()['instance_id']}").json()
    assert instance["version"] == 2 and [e["action"] for e in instance["audit"]] == ["start", "complete"]
    assert {e["actor"] for e in instance["audit"]} == {"designer.wang"}
    assert {t["element_id"]: t["completed_by"] for t in instance["tasks"]} == {
        "intake": "designer.wang",
        "review": None,
    }


def test_bad_models_get_specific_errors_and_store_nothing(designer: TestClient) -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    error_of(designer.post(f"{E}/definitions", content=xxe), 400, "doctype_forbidden")
    unassigned = (BPMN / "three_tasks.bpmn").read_text().replace(' ow:candidateGroups="market"', "")
    invalid = error_of(designer.post(f"{E}/definitions", content=unassigned.encode()), 422, "invalid_model")
    problems = invalid["detail"]["problems"]
    assert any(p["element_id"] == "review" and p["code"] == "unassigned_user_task" for p in problems)
    report = designer.post(f"{E}/validate?filename=u.bpmn", content=unassigned.encode()).json()
    assert report["executable"] is False and report["filename"] == "u.bpmn"
    [process] = report["processes"]
    assert any(p["element_id"] == "review" and p["line"] for p in process["problems"])
    assert "three_tasks" not in {d["key"] for d in designer.get(f"{E}/definitions").json()}
    error_of(designer.post(f"{E}/instances", json={"key": "nope"}), 404, "definition_not_found")
    error_of(designer.post(f"{E}/instances", json={"key": "x", "actor": "me"}), 422, "invalid_request")


def test_claim_then_only_the_claimant_may_complete_and_forms_are_validated(
    signed_in: Callable[..., TestClient],
) -> None:
    wang = signed_in("wang.d", "designer")
    li = signed_in("li.admin", "administrator")
    deploy_three(wang)
    wang.post(f"{E}/instances", json={"key": "three_tasks"})
    [intake] = wang.get(f"{E}/tasks", params={"group": "window"}).json()
    bad = error_of(
        wang.post(f"{E}/tasks/{intake['id']}/complete", json={"data": {"decision": "maybe"}}),
        422,
        "invalid_form",
    )
    assert bad["detail"]["errors"][0]["field"] == "decision"
    claimed = wang.post(f"{E}/tasks/{intake['id']}/claim")
    assert claimed.status_code == 200 and claimed.json() == {"task_id": intake["id"], "assignee": "wang.d"}
    error_of(li.post(f"{E}/tasks/{intake['id']}/claim"), 409, "task_not_claimable")
    stolen = li.post(f"{E}/tasks/{intake['id']}/complete", json={"data": {"decision": "accept"}})
    error_of(stolen, 403, "claimed_by_other")
    assert wang.get(f"{E}/tasks", params={"user": "wang.d"}).json()[0]["assignee"] == "wang.d"
    done = wang.post(f"{E}/tasks/{intake['id']}/complete", json={"data": {"decision": "accept"}})
    assert done.status_code == 200
    error_of(wang.post(f"{E}/tasks/nope/complete", json={"data": {}}), 404, "task_not_found")
    error_of(wang.post(f"{E}/tasks/nope/claim"), 404, "task_not_found")


def test_messages_and_cancel(designer: TestClient) -> None:
    deploy_three(designer)
    started = designer.post(f"{E}/instances", json={"key": "three_tasks", "business_key": "K-2"}).json()
    sent = designer.post(f"{E}/messages", json={"name": "ping", "business_key": "K-2", "payload": {"a": 1}})
    assert sent.status_code == 200 and sent.json() == {"delivered": False}  # buffered: nothing waits for it
    error_of(designer.post(f"{E}/messages", json={"name": "ping"}), 422, "message_without_target")
    other = designer.post(f"{E}/instances", json={"key": "three_tasks", "business_key": "K-3"}).json()
    both = {"name": "ping", "instance_id": other["instance_id"], "business_key": "K-2"}
    two = error_of(designer.post(f"{E}/messages", json=both), 422, "message_two_targets")
    assert two["detail"]["fields"] == ["instance_id", "business_key"]
    error_of(
        designer.post(f"{E}/messages", json={"name": "ping", "business_key": "K-404"}),
        404,
        "instance_not_found",
    )
    instance_id = started["instance_id"]
    error_of(
        designer.post(f"{E}/instances/{instance_id}/cancel", json={"reason": "  "}), 422, "reason_required"
    )
    error_of(designer.post(f"{E}/instances/{instance_id}/cancel", json={}), 422, "invalid_request")
    cancelled = designer.post(f"{E}/instances/{instance_id}/cancel", json={"reason": "试运行结束"})
    assert cancelled.status_code == 200 and cancelled.json() == {
        "instance_id": instance_id,
        "status": "cancelled",
    }
    again = designer.post(f"{E}/instances/{instance_id}/cancel", json={"reason": "再撤一次"})
    error_of(again, 409, "instance_not_running")
    assert designer.get(f"{E}/instances/{instance_id}").json()["status"] == "cancelled"
    error_of(designer.get(f"{E}/instances/nope"), 404, "instance_not_found")
    error_of(designer.post(f"{E}/instances/nope/cancel", json={"reason": "x"}), 404, "instance_not_found")


def test_only_designers_and_administrators_use_the_engine(
    client: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    error_of(client.get(f"{E}/definitions"), 401, "unauthenticated")
    error_of(client.post(f"{E}/instances", json={"key": "three_tasks"}), 401, "unauthenticated")
    for username, role, extra in (
        ("officer.a", "officer", {"departments": ["market"], "intake": True}),
        ("super.a", "supervisor", {}),
        ("citizen.a", "applicant", {"holder_id": "11010519491231002X"}),
    ):
        other = signed_in(username, role, **extra)
        error_of(other.get(f"{E}/definitions"), 403, "forbidden_role")
        error_of(other.get(f"{E}/tasks", params={"group": "window"}), 403, "forbidden_role")
        error_of(other.post(f"{E}/instances", json={"key": "three_tasks"}), 403, "forbidden_role")
    admin = signed_in("admin.a", "administrator")
    assert admin.get(f"{E}/definitions").status_code == 200


def test_the_raw_engine_never_acts_on_a_case(designer: TestClient, svc: Services) -> None:
    case_id = food_case(svc)
    with svc.engine.connect() as conn:
        instance_id = conn.execute(
            select(instances.c.id).where(instances.c.business_key == case_id)
        ).scalar_one()
        task_id = conn.execute(
            select(tasks.c.id).where(tasks.c.business_key == case_id, tasks.c.state == "ready")
        ).scalar_one()
        version = conn.execute(select(instances.c.version).where(instances.c.id == instance_id)).scalar_one()

    def refused(response) -> None:  # type: ignore[no-untyped-def]
        body = error_of(response, 409, "case_instance")
        assert body["message"] == "办件流程只能通过办件接口操作"

    refused(designer.post(f"{E}/messages", json={"name": "materials_supplied", "business_key": case_id}))
    refused(
        designer.post(
            f"{E}/messages",
            json={"name": "x", "instance_id": instance_id, "payload": {"department": "health"}},
        )
    )
    refused(designer.get(f"{E}/instances/{instance_id}"))
    refused(designer.post(f"{E}/instances/{instance_id}/cancel", json={"reason": "测试"}))
    refused(designer.post(f"{E}/tasks/{task_id}/complete", json={"data": {"decision": "accept"}}))
    refused(designer.post(f"{E}/tasks/{task_id}/claim"))
    shaped = designer.post(f"{E}/instances", json={"key": "single_window", "business_key": case_id})
    assert error_of(shaped, 422, "case_number_business_key")["detail"]["field"] == "business_key"
    lookalike = designer.post(
        f"{E}/instances", json={"key": "single_window", "business_key": "250930-9999-0"}
    )
    error_of(lookalike, 422, "case_number_business_key")  # the shape, whatever the check digit
    assert (
        designer.get(f"{E}/tasks", params={"group": "window"}).json() == []
    )  # the case's intake: not listed
    assert task_id not in {t["id"] for t in designer.get(f"{E}/tasks").json()}
    with svc.engine.connect() as conn:  # nothing of the case moved
        assert (
            conn.execute(select(instances.c.version).where(instances.c.id == instance_id)).scalar_one()
            == version
        )
        assert conn.execute(select(tasks.c.state, tasks.c.assignee).where(tasks.c.id == task_id)).one() == (
            "ready",
            None,
        )


MARKER = {"typename": "BpmnWorkflow", "nested": [{"typename": "TaskSpec", "value": 1}], "x": {"typename": 7}}


def test_marker_like_data_over_http_is_stored_and_restored_as_the_plain_data_it_is(
    designer: TestClient, svc: Services
) -> None:
    deploy_three(designer)
    started = designer.post(f"{E}/instances", json={"key": "three_tasks", "data": {"payload": MARKER}})
    assert started.status_code == 201, started.text
    instance_id = started.json()["instance_id"]
    svc.workflow.live = type(svc.workflow.live)()  # forget the live workflow: the next step restores
    [task] = designer.get(f"{E}/tasks", params={"group": "window"}).json()
    done = designer.post(
        f"{E}/tasks/{task['id']}/complete", json={"data": {"decision": "accept", "opinion": "ok"}}
    )
    assert done.status_code == 200, done.text
    svc.workflow.live = type(svc.workflow.live)()
    with svc.engine.connect() as conn:
        from engine.persistence.repositories import InstanceRepository

        row = InstanceRepository(conn).get(instance_id)
        restored = svc.workflow.definition(conn, row.definition_id)
    from engine.workflow import Runtime

    runtime = Runtime.restore(restored, row.state, svc.clock(), svc.calendar())
    assert runtime.data["payload"] == MARKER  # a plain dict, not a revived object


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            {
                "deep": {
                    "a": {
                        "b": {
                            "c": {
                                "d": {
                                    "e": {
                                        "f": {
                                            "g": {
                                                "h": {
                                                    "i": {
                                                        "j": {
                                                            "k": {
                                                                "l": {
                                                                    "m": {
                                                                        "n": {
                                                                            "o": {
                                                                                "p": {
                                                                                    "q": {
                                                                                        "r": {
                                                                                            "s": {
                                                                                                "t": {"u": 1}
                                                                                            }
                                                                                        }
                                                                                    }
                                                                                }
                                                                            }
                                                                        }
                                                                    }
                                                                }
                                                            }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "data_too_deep",
        ),
        ({"big": 2**60}, "number_out_of_range"),
        ({"blob": ["x" * 90_000] * 12}, "data_too_large"),
        ({"text": "x" * 100_001}, "string_too_long"),
        ({"nul": "a\u0000b"}, "bad_character"),
    ],
)
def test_data_over_a_limit_or_unstorable_is_refused_over_http_before_any_work(
    designer: TestClient, svc: Services, data: dict, code: str
) -> None:
    deploy_three(designer)
    answer = designer.post(f"{E}/instances", json={"key": "three_tasks", "data": data})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == code and body["detail"]["field"] == "data", body
    with svc.engine.connect() as conn:
        assert conn.execute(select(instances.c.id)).all() == []  # nothing was started


def test_a_model_that_names_its_starters_refuses_anyone_else_over_http(
    designer: TestClient, signed_in: Callable[..., TestClient]
) -> None:
    """``camunda:candidateStarterGroups="window"``: the designer (no group) may deploy it, not start it."""
    xml = (Path(__file__).resolve().parents[1] / "processes" / "models" / "camunda7_grant.bpmn").read_bytes()
    assert designer.post(f"{E}/definitions?filename=grant.bpmn", content=xml).status_code == 201
    refused = designer.post(f"{E}/instances", json={"key": "camunda7_grant", "data": {"amount": 1}})
    error_of(refused, 403, "not_a_starter")
    with designer.app.state.services.engine.connect() as conn:
        assert conn.execute(select(instances.c.id)).all() == []  # nothing stored


def test_a_refused_task_filter_names_the_query_parameter_the_client_sent(designer: TestClient) -> None:
    for params, code in (
        ({"group": [f"g{i}" for i in range(51)]}, "too_many_groups"),
        ({"group": ["market", "a,b"]}, "bad_filter_value"),
        ({"group": ["x" * 201]}, "bad_filter_value"),
    ):
        assert error_of(designer.get(f"{E}/tasks", params=params), 422, code)["detail"]["field"] == "group"
    refused = designer.get(f"{E}/tasks", params={"user": "a,b"})
    assert error_of(refused, 422, "bad_filter_value")["detail"]["field"] == "user"
    assert designer.get(f"{E}/tasks", params={"group": [f"g{i}" for i in range(50)]}).json() == []


def test_an_id_no_database_can_hold_is_a_typed_refusal_on_every_backend_never_a_server_error(
    designer: TestClient,
) -> None:
    for bad, code in (("a%00b", "bad_character"), ("x" * 37, "value_too_long")):  # %00: a NUL
        for response, field in (
            (designer.get(f"{E}/instances/{bad}"), "instance_id"),
            (designer.post(f"{E}/instances/{bad}/cancel", json={"reason": "试"}), "instance_id"),
            (designer.post(f"{E}/tasks/{bad}/claim"), "task_id"),
            (designer.post(f"{E}/tasks/{bad}/complete", json={"data": {}}), "task_id"),
        ):
            assert error_of(response, 422, code)["detail"]["field"] == field
    json_body = {"content-type": "application/json"}
    for body, field in (
        (b'{"name": "ping", "instance_id": "a\\u0000b"}', "instance_id"),
        (b'{"name": "ping", "business_key": "a\\u0000b"}', "business_key"),
    ):
        refused = error_of(
            designer.post(f"{E}/messages", content=body, headers=json_body), 422, "bad_character"
        )
        assert refused["detail"]["field"] == field
    started = designer.post(
        f"{E}/instances", content=b'{"key": "k", "business_key": "a\\u0000"}', headers=json_body
    )
    assert error_of(started, 422, "bad_character")["detail"]["field"] == "business_key"
