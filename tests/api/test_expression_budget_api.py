"""A hostile script over HTTP: the command fails with a typed error naming the element, the instance stays as
it was, and while the script runs the same app keeps answering ``/healthz``."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from api.app import create_app
from engine.bootstrap import bootstrap
from engine.settings import Settings
from tests.api.conftest import FAST_HASHER, add_account, sign_in
from tests.unit.bpmn.models import document, flow, script_task, user_task

E = "/api/v1/engine"
HOSTILE = (
    "n = 0\n"
    "for i in range(5000):\n"  # a good part of the step budget, C work in every step
    "    n += len('x' * 50)\n"
    "w = 999999999\n"
    "x = ('%(a)' + str(w) + 's') % {'a': n}\n"  # unguarded: one call of ~1 s allocating 1 GB
)


def _model() -> bytes:
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "intake")
        + user_task("intake")
        + flow("intake", "calc")
        + script_task("calc", HOSTILE)
        + flow("calc", "after")
        + user_task("after")
        + flow("after", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    return document(body, process_id="hostile")


def test_hostile_script_fails_typed_leaves_the_instance_and_healthz_answers(db, clock) -> None:
    services = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=db)
    services.accounts.hasher = FAST_HASHER
    add_account(services, "designer-1", "designer")
    client = TestClient(create_app(services=services))
    sign_in(client, "designer-1")  # the raw engine routes are the designers'
    assert client.post(f"{E}/definitions?filename=h.bpmn", content=_model()).status_code == 201
    started = client.post(f"{E}/instances", json={"key": "hostile"})
    assert started.status_code == 201
    instance_id = started.json()["instance_id"]
    before = client.get(f"{E}/instances/{instance_id}").json()
    [intake] = client.get(f"{E}/tasks", params={"group": "window"}).json()

    answer: dict[str, object] = {}

    def complete() -> None:
        response = client.post(f"{E}/tasks/{intake['id']}/complete", json={"data": {}})
        answer.update(status=response.status_code, body=response.json())

    worker = threading.Thread(target=complete, daemon=True)
    worker.start()
    latencies: list[float] = []
    while worker.is_alive() and len(latencies) < 10_000:
        sent = time.perf_counter()
        health = client.get("/healthz")
        latencies.append(time.perf_counter() - sent)
        assert health.status_code == 200
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert latencies and max(latencies) < 2.0, max(latencies or [0])

    assert answer["status"] == 422, answer
    body = answer["body"]
    assert isinstance(body, dict) and body["code"] == "result_too_large"
    assert body["detail"]["element_id"] == "calc" and body["message"]
    after = client.get(f"{E}/instances/{instance_id}").json()
    assert after["version"] == before["version"] and after["audit"] == before["audit"]
    assert [t["id"] for t in client.get(f"{E}/tasks", params={"group": "window"}).json()] == [intake["id"]]
