"""``onewindow demo``: every path of the three flows on a fresh embedded database, with an injected clock.

Each scenario is a short script of what people do (submit, complete a task, supply materials) and of
time passing (the clock jumps; the worker fires timers and raises clock cards). One line per case:
case number, items, path, final status, working days used / promised limit, clock status.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.cases.access import Viewer
from engine.cases.clocks import tick_clocks
from engine.cases.intake import Application
from engine.persistence.database import unit_of_work
from engine.time.calendar import local_date

SHANGHAI = ZoneInfo("Asia/Shanghai")


class DemoClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 9, 29, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def at(self, y: int, m: int, d: int, h: int = 9) -> None:
        self.now = datetime(y, m, d, h, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class Step:
    kind: str  # at | do | supply | worker
    args: tuple[Any, ...] = ()
    data: dict[str, Any] | None = None


def at(*when: int) -> Step:
    return Step("at", when)


def do(element: str, actor: str = "officer", **data: Any) -> Step:
    return Step("do", (element, actor), data)


def supply(*codes: str) -> Step:
    return Step("supply", codes)


WORKER = Step("worker")
TODAY = "<today>"  # filled in with the demo clock's date when the step runs
FOOD = {
    "premises": "一楼全层",
    "main_business": "餐饮服务经营者",
    "business_items": "热食类食品制售",
    "contact_phone": "13800138000",
}
JOINT = {
    **FOOD,
    "project_name": "门店装修改造工程",
    "project_address": "福州市鼓楼区五四路1号",
    "construction_scale": "建筑面积320平方米",
}
ACCEPT = do("intake", decision="accept", opinion="材料齐全，予以受理")
REVIEW_PASS = do("review", result="pass", opinion="符合法定条件", needs_special_procedure=False)
APPROVE = do("decision", decision="approve", opinion="准予许可")
DELIVER = do("delivery", delivery_method="window", delivered_on=TODAY)
COMMIT = do(
    "commitment",
    "applicant",
    missing_materials=["layout_plan", "safety_rules", "manager_health"],
    promised_date="2026-02-25",
    signed=True,
)


def scenarios(
    orgs: list[Any], person: Any
) -> list[tuple[str, Application, datetime | tuple[int, ...], list[Step]]]:
    """(path label, application, submission time, steps)."""
    food = [o for o in orgs if o["food"] is False]
    a, b, c = food[0]["org"], food[1]["org"], food[2]["org"]
    full = {"MR-001": ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]}
    tolerant = {"MR-001": ["application", "legal_rep_id"]}
    partial = {"MR-001": ["application", "legal_rep_id", "manager_health"]}  # the notice names the rest
    joint = {
        code: ["application", *materials]
        for code, materials in {
            "MR-001": ["legal_rep_id", "layout_plan", "safety_rules", "manager_health"],
            "HE-001": ["hygiene_test", "floor_plan", "hygiene_rules", "staff_health"],
            "PL-001": ["land_approval", "design_scheme", "planning_conditions"],
        }.items()
    }

    def app(org: Any, items: list[str], **kw: Any) -> Application:
        form = kw.pop("form", FOOD if items == ["MR-001"] else JOINT)
        return Application(org.credit_code, org.name, items, form=dict(form), **kw)

    return [
        (
            "一窗受理→审查→准予→出证（国庆前受理）",
            app(a, ["MR-001"], provided=full),
            (2025, 9, 30),
            [ACCEPT, at(2025, 10, 10), REVIEW_PASS, APPROVE, DELIVER],
        ),
        (
            "一次性告知补正→受理→准予",
            app(b, ["MR-001"], channel="counter", provided=partial),
            (2025, 9, 30),
            [
                do(
                    "intake",
                    decision="supplement",
                    missing_materials=["layout_plan", "safety_rules"],
                    reason="缺少平面图与制度",
                ),
                at(2025, 10, 9),
                do(
                    "supplement",
                    "applicant",
                    supplied_materials=["layout_plan", "safety_rules"],
                    visit="counter",
                ),
                ACCEPT,
                REVIEW_PASS,
                APPROVE,
                DELIVER,
            ],
        ),
        (
            "不予受理",
            app(c, ["MR-001"]),
            (2025, 9, 30),
            [do("intake", decision="refuse", reason="不属于本机关职权范围")],
        ),
        (
            "审查→不予许可→送达决定书",
            app(c, ["MR-001"], provided=full),
            (2025, 10, 9),
            [
                ACCEPT,
                REVIEW_PASS,
                do("decision", decision="deny", opinion="经营场所不符合要求"),
                do("deliver_denial", delivery_method="online", delivered_on=TODAY),
            ],
        ),
        (
            "决定退回重审两次→准予",
            app(a, ["MR-001"], provided=full),
            (2025, 10, 9),
            [
                ACCEPT,
                REVIEW_PASS,
                do("decision", decision="rework", opinion="补充核查"),
                REVIEW_PASS,
                do("decision", decision="rework", opinion="再次核查"),
                REVIEW_PASS,
                APPROVE,
                DELIVER,
            ],
        ),
        (
            "特别程序（现场核查）时限中止→准予",
            app(b, ["MR-001"], provided=full),
            (2025, 9, 30),
            [
                ACCEPT,
                at(2025, 10, 9),
                do(
                    "review",
                    result="pass",
                    opinion="需现场核查",
                    needs_special_procedure=True,
                    special_kind="inspection",
                ),
                at(2025, 10, 14),
                do(
                    "special_procedure",
                    kind="inspection",
                    result="核查合格",
                    started_on="2025-10-09",
                    finished_on="2025-10-14",
                ),
                REVIEW_PASS,
                APPROVE,
                DELIVER,
            ],
        ),
        (
            "审查超期→督办（红牌）→准予",
            app(c, ["MR-001"], provided=full),
            (2025, 9, 30),
            [
                ACCEPT,
                at(2025, 10, 23),
                WORKER,
                at(2025, 10, 28),
                WORKER,
                do("escalation", "supervisor", opinion="请于两日内办结", due_on="2025-10-30"),
                REVIEW_PASS,
                APPROVE,
                DELIVER,
            ],
        ),
        (
            "即办件当场办结",
            Application(
                person.resident_id,
                person.name,
                ["MR-003"],
                form={
                    "company_name": "鼓楼区小吃店",
                    "company_type": "个体工商户",  # MR-003 registers an individual business (92…)
                    "registered_capital": 5,
                    "address": "福州市鼓楼区",
                    "business_scope": "小吃",
                    "contact_phone": "13800138000",
                },
                provided={"MR-003": ["application", "premises"]},
            ),
            (2025, 11, 3),
            [ACCEPT, APPROVE, DELIVER],
        ),
        (
            "点餐式并联审批：三部门同意",
            app(a, ["MR-001", "HE-001", "PL-001"], lead_department="market", provided=joint),
            (2025, 11, 3),
            [
                do("lead_intake", decision="accept", opinion="受理"),
                Step("joint", ("approve", "approve", "approve")),
                do("consolidation", outcome="approve", opinion="各部门同意"),
                do("deliver_result", delivery_method="window", delivered_on=TODAY),
            ],
        ),
        (
            "点餐式并联审批：卫健不予许可",
            app(b, ["MR-001", "HE-001", "PL-001"], lead_department="market", provided=joint),
            (2025, 11, 3),
            [
                do("lead_intake", decision="accept", opinion="受理"),
                Step("joint", ("approve", "deny", "approve")),
                do("consolidation", outcome="deny", opinion="卫健部门不予许可"),
                do("deliver_result", delivery_method="window", delivered_on=TODAY),
            ],
        ),
        (
            "容缺受理：春节前受理，按期补正后发证",
            app(a, ["MR-001"], tolerant=True, provided=tolerant),
            (2026, 2, 11),
            [
                COMMIT,
                REVIEW_PASS,
                APPROVE,
                at(2026, 2, 24),
                supply("layout_plan", "safety_rules", "manager_health"),
                do("delivery", delivery_method="mail", delivered_on=TODAY),
            ],
        ),
        (
            "容缺受理：跨春节逾期未补正→终止",
            app(b, ["MR-001"], tolerant=True, provided=tolerant),
            (2026, 2, 11),
            [COMMIT, at(2026, 2, 20), WORKER, at(2026, 3, 3), WORKER],
        ),
    ]


def load_scenarios(conn: Connection) -> list[tuple[str, Application, datetime | tuple[int, ...], list[Step]]]:
    """Load the demo licences on ``conn`` and return the demo :func:`scenarios` over their holders."""
    from licence.demo import demo_organisations, demo_persons, load_demo
    from licence.library import LicenceLibrary

    load_demo(conn)
    lib = LicenceLibrary(conn)
    orgs = [
        {
            "org": o,
            "food": any(x.type_code == "food_business_licence" for x in lib.by_holder(o.credit_code)),
        }
        for o in demo_organisations()
        if o.credit_code.startswith("91")
    ]
    return scenarios(orgs, demo_persons()[0])


def run_demo(database_url: str | None = None, out: Callable[[str], None] = print) -> int:
    from engine.bootstrap import bootstrap, deploy_bundled_processes
    from engine.settings import Settings

    tmp = None
    if database_url is None:
        tmp = tempfile.TemporaryDirectory()
        database_url = f"sqlite:///{Path(tmp.name) / 'demo.db'}"
    clock = DemoClock()
    services = bootstrap(Settings(database_url=database_url), clock=clock)
    deploy_bundled_processes(services)
    with unit_of_work(services.engine) as conn:
        demo = load_scenarios(conn)
    out(f"{'办件编号':<14}{'事项':<22}{'最终状态':<7}{'结果':<7}{'承诺时限(已用/限)':<12}{'时钟':<7}路径")
    for label, application, when, steps in demo:
        clock.at(*when) if isinstance(when, tuple) else None
        case_id = services.cases.submit(application, "applicant")
        for step in steps:
            _apply(services, clock, case_id, step)
        track = services.cases.track(case_id)
        promised = next(
            (c for c in track["clocks"] if c["kind"] == "promised" and c["task_id"] is None), None
        )
        used = f"{promised['used']:.1f}/{promised['limit']:.0f}" if promised else "-/未起算"
        status = promised["status"] if promised else "-"
        if status == "stopped":
            on_time = "按期" if promised["finished_on_time"] else "超期"
            status = on_time + ("终止" if track["case"]["status"] == "terminated" else "办结")
        out(
            f"{case_id:<14}{'+'.join(application.items):<22}{track['status_label']:<7}{track['result_label']:<7}"
            f"{used:<12}{status:<7}{label}"
        )
    for warning in services.calendar().warnings:
        out(f"警告 warning: {warning}")
    services.engine.dispose()
    if tmp is not None:
        tmp.cleanup()
    return 0


def _apply(services: Any, clock: DemoClock, case_id: str, step: Step) -> None:
    if step.kind == "at":
        clock.at(*step.args)
    elif step.kind == "worker":
        services.workflow.fire_due_timers("demo-worker")
        tick_clocks(services.engine, clock, services.calendar, "demo-worker")
    elif step.kind == "supply":
        services.cases.supply_materials(case_id, list(step.args), "applicant")
    elif step.kind == "joint":
        branches = sorted(
            _ready(services, case_id, "joint_review"), key=lambda t: (t["mi_index"] or 0, t["id"])
        )
        for task, verdict in zip(branches, step.args, strict=True):
            dept = task["candidate_groups"].strip(",")
            services.cases.complete_task(
                task["id"], {"decision": verdict, "opinion": f"{dept} 审查意见"}, dept
            )
    else:
        element, actor = step.args
        ready = _ready(services, case_id, element)
        if not ready:
            raise RuntimeError(f"demo: case {case_id} has no ready task {element}")
        task_id = ready[0]["id"]
        today = local_date(clock.now).isoformat()
        data = {k: today if v == TODAY else v for k, v in (step.data or {}).items()}
        services.cases.complete_task(task_id, data, actor)


def _ready(services: Any, case_id: str, element: str) -> list[dict[str, Any]]:
    """The case's ready tasks at ``element``, as an officer of the case sees them."""
    return [
        t
        for t in services.cases.track(case_id, _officers(services))["tasks"]
        if t["state"] == "ready" and t["element_id"] == element
    ]


def _officers(services: Any) -> Viewer:
    """The demo's officer: a member of the window and of every department of the catalogue."""
    return Viewer.officer("demo-officer", {"window", *services.catalogue.departments})
