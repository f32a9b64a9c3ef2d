"""Set-up through the HTTP API (not through pages): put a case where a browser test starts from.

Each test still does its own part through the pages; this only brings a case to that point, as the
other users would have, with the same demo accounts (password ``onewindow-demo``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx2 as httpx

V1 = "/api/v1"
PASSWORD = "onewindow-demo"
FOOD_FORM = {
    "premises": "一楼全层",
    "main_business": "餐饮服务经营者",
    "business_items": "热食类食品制售",
    "contact_phone": "13800138000",
}
JOINT_ITEMS = ["MR-001", "HE-001"]


class Api:
    """One demo account signed in over HTTP (cookie + CSRF), as a browser would be."""

    def __init__(self, base_url: str, username: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)
        answer = self.client.post(f"{V1}/auth/login", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        self.client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(V1 + path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: Any = None, status: int = 200, **kwargs: Any) -> Any:
        answer = self.client.post(V1 + path, json=body, **kwargs)
        assert answer.status_code == status, answer.text
        return answer.json()

    def task(self, case_id: str, element: str) -> dict[str, Any]:
        [task] = [
            t for t in self.get("/officer/inbox", limit=100)["items"]
            if t["case_id"] == case_id and t["element_id"] == element
        ]
        return dict(task)

    def act(self, case_id: str, element: str, action: str, body: dict[str, Any]) -> Any:
        return self.post(f"/officer/tasks/{self.task(case_id, element)['id']}/{action}", body)


def submit_case(
    base_url: str,
    items: list[str],
    applicant: str = "company",
    *,
    leave_out: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An application for ``items`` with every material provided but ``leave_out``: answers case_number,
    check_code. Each call is a new case (its own Idempotency-Key)."""
    api = Api(base_url, applicant)
    form = api.get("/applicant/application-form", items=items)
    materials = {
        c: [m["code"] for m in api.get(f"/public/items/{c}")["materials"] if m["code"] not in leave_out]
        for c in items
    }
    values = {**form["prefill"]["values"], **FOOD_FORM}
    body = {"items": items, "form": values, "provided": materials}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    return dict(api.post("/applicant/cases", body, 201, headers=key))


def accept_joint(base_url: str, case_id: str) -> None:
    Api(base_url, "window").act(case_id, "lead_intake", "accept", {"opinion": "并联受理"})


def finish_joint(base_url: str, case_id: str) -> None:
    """From the parallel reviews to delivery: both departments approve, the lead consolidates, delivers."""
    market, health = Api(base_url, "market"), Api(base_url, "health")
    market.act(case_id, "joint_review", "approve", {"opinion": "市场监管部门同意"})
    health.act(case_id, "joint_review", "approve", {"opinion": "卫生健康部门同意"})
    market.act(case_id, "consolidation", "approve", {"opinion": "汇总：准予许可"})
    Api(base_url, "window").act(case_id, "deliver_result", "deliver", {"method": "online"})


def finished_joint_case(base_url: str) -> dict[str, Any]:
    submitted = submit_case(base_url, JOINT_ITEMS)
    accept_joint(base_url, submitted["case_number"])
    finish_joint(base_url, submitted["case_number"])
    return submitted
