"""Concurrent issuers of one licence type and one issuing authority on PostgreSQL: every issue succeeds at
once (no ``serial_conflict``, no retry) and the serials run 1..n without a duplicate or a gap."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from bench.case_flows import Ready
from engine.cases.intake import Application
from engine.demo import ACCEPT, APPROVE, FOOD, REVIEW_PASS, DemoClock
from licence.demo import demo_issuers, demo_organisations
from licence.library import LicenceLibrary
from licence.model import LicenceIdentifier
from licence.tables import licences
from tests.conftest import services_on

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2025, 3, 3, 1, 30, tzinfo=dt.UTC)
THREADS = 12
CASES = 8


def _face(org) -> dict[str, str]:
    return {
        "name": org.name,
        "credit_code": org.credit_code,
        "legal_representative": org.legal_representative,
        "company_type": org.company_type,
        "registered_capital": "100",
        "address": org.address,
        "established_on": "2019/05/06",
        "business_scope": org.business_scope,
    }


def test_concurrent_issues_for_one_issuer_never_conflict(pg) -> None:
    orgs = demo_organisations()
    code, name = demo_issuers()["market"]
    barrier = threading.Barrier(THREADS)

    def issue(i: int) -> int:
        org = orgs[i % len(orgs)]
        with pg.begin() as conn:
            lib = LicenceLibrary(conn, clock=lambda: T0)
            barrier.wait()  # every thread reads the highest serial at the same moment
            record = lib.issue(
                "business_licence", org.credit_code, org.name, _face(org), code, name, dt.date(2025, 3, 3)
            )
            return record.identifier.serial

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(issue, range(THREADS)))  # a Conflict would raise here
    with pg.connect() as conn:
        rows = conn.execute(
            select(licences.c.serial, licences.c.identifier, licences.c.licence_number, licences.c.check_char)
        ).all()
    assert sorted(r.serial for r in rows) == list(range(1, THREADS + 1))
    assert len({r.identifier for r in rows}) == len({r.licence_number for r in rows}) == THREADS
    for r in rows:  # the format and its check digit are those of a single issue
        parsed = LicenceIdentifier.parse(r.identifier)
        assert parsed.serial == r.serial and parsed.check == r.check_char and parsed.is_valid()


def test_concurrent_decisions_of_one_department_all_issue_their_licence(pg) -> None:
    """The fault of issue 12: 8+ decision steps approving at once (one issuing department) used to fail
    with 409 ``serial_conflict`` after the retries; now each issues its licence at the first attempt."""
    clock = DemoClock()
    clock.at(2025, 9, 30)
    svc = services_on(pg, clock)  # type: ignore[arg-type]
    ready = Ready()
    svc.workflow.observers.append(ready)
    with pg.connect() as conn:
        library = LicenceLibrary(conn)
        orgs = [
            o
            for o in demo_organisations()
            if o.credit_code.startswith("91")
            and not any(x.type_code == "food_business_licence" for x in library.by_holder(o.credit_code))
        ]
    full = ["application", "legal_rep_id", "layout_plan", "safety_rules", "manager_health"]
    case_ids = []
    for i in range(CASES):
        org = orgs[i % len(orgs)]
        app = Application(org.credit_code, org.name, ["MR-001"], form=dict(FOOD), provided={"MR-001": full})
        case_id = svc.cases.submit(app, "applicant")
        for step in (ACCEPT, REVIEW_PASS):
            element, actor = step.args
            svc.cases.complete_task(ready.task(case_id, element).task_id, dict(step.data or {}), actor)
        case_ids.append(case_id)
    decisions = [ready.task(c, "decision").task_id for c in case_ids]
    barrier = threading.Barrier(CASES)
    attempts: list[int] = []
    original_run = svc.workflow.run

    def counted_run(command):  # how many transactions each completion took
        def once(conn):
            attempts.append(1)
            return command(conn)

        return original_run(once)

    svc.workflow.run = counted_run  # type: ignore[method-assign]

    def approve(task_id: str) -> None:
        barrier.wait()
        svc.cases.complete_task(task_id, dict(APPROVE.data or {}), "officer")

    with ThreadPoolExecutor(CASES) as pool:
        list(pool.map(approve, decisions))  # a Conflict would raise here
    with pg.connect() as conn:
        issued = conn.execute(
            select(licences.c.serial, licences.c.source_case).where(licences.c.source_case.in_(case_ids))
        ).all()
    assert sorted(r.source_case for r in issued) == sorted(case_ids)
    assert len({r.serial for r in issued}) == CASES
    assert len(attempts) == CASES  # no completion had to be retried
