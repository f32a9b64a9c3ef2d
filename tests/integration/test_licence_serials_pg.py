"""Concurrent issuers of one licence type and one issuing authority on PostgreSQL: every issue succeeds at
once (no ``serial_conflict``, no retry) and the serials run 1..n without a duplicate or a gap."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select, text

from bench.case_flows import Ready
from engine.cases.intake import Application
from engine.demo import ACCEPT, APPROVE, FOOD, REVIEW_PASS, DemoClock
from engine.persistence.database import unit_of_work
from engine.persistence.tables import cases
from licence.demo import demo_issuers, demo_organisations
from licence.library import IllegalTransition, LicenceLibrary
from licence.model import LicenceIdentifier
from licence.tables import licences
from tests.conftest import FakeClock, services_on
from tests.integration.test_cases import FOOD_FORM, every_material, org_with
from tests.integration.test_licence_library import business_face

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2025, 3, 3, 1, 30, tzinfo=dt.UTC)
THREADS = 12
CASES = 8


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
                "business_licence",
                org.credit_code,
                org.name,
                business_face(org),
                code,
                name,
                dt.date(2025, 3, 3),
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


def test_two_joint_approvals_listing_the_same_licences_in_another_order_do_not_deadlock(pg) -> None:
    """Each approval holds the (type, issuer) serial counters of its licences until it commits. The first
    approval is held just before its first licence is written, until the second waits for a counter;
    were the counters locked in item order (food, then hygiene; hygiene, then food), each would then
    wait for the counter the other holds. They are locked at once, in key order."""
    clock = FakeClock(T0)
    svc = services_on(pg, clock)
    org = org_with(svc, {"business_licence"}, {"food_business_licence", "hygiene_licence"})
    rows = []
    for items in (["MR-001", "HE-001"], ["HE-001", "MR-001"]):
        app = Application(
            org.credit_code,
            org.name,
            items,
            form=dict(FOOD_FORM),
            provided=every_material(svc, *items),
            lead_department=svc.catalogue.get(items[0]).department,
        )
        case_id = svc.cases.submit(app, "applicant")
        with pg.connect() as conn:
            rows.append(dict(conn.execute(select(cases).where(cases.c.id == case_id)).one()._mapping))
    first_held, second_waits = threading.Event(), threading.Event()

    def hold_first(_conn, _cursor, statement: str, *_args) -> None:
        if threading.current_thread().name == "first" and statement.lstrip().startswith("WITH new_licence"):
            if not first_held.is_set():
                first_held.set()
                second_waits.wait(10)

    def approve(row: dict) -> list[str]:
        if threading.current_thread().name != "first":
            first_held.wait(10)
        with unit_of_work(pg) as conn:
            return svc.cases.licences.issue_for(conn, row, T0, "officer")

    event.listen(pg, "before_cursor_execute", hold_first)
    try:
        results: dict[str, list[str] | BaseException] = {}

        def run(name: str, row: dict) -> None:
            try:
                results[name] = approve(row)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                results[name] = exc

        threads = [
            threading.Thread(target=run, args=(n, r), name=n)
            for n, r in zip(("first", "second"), rows, strict=True)
        ]
        for t in threads:
            t.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        with pg.connect() as conn:
            for _ in range(200):  # until the second approval waits for a counter (or 10 s)
                if conn.execute(text(waiting)).scalar():
                    break
                threading.Event().wait(0.05)
        second_waits.set()
        for t in threads:
            t.join(30)
    finally:
        event.remove(pg, "before_cursor_execute", hold_first)
    assert first_held.is_set()
    for name, row in zip(("first", "second"), rows, strict=True):
        issued = results[name]
        assert isinstance(issued, list), f"{name}: {issued!r}"
        with pg.connect() as conn:
            types = [
                conn.execute(select(licences.c.type_code).where(licences.c.id == i)).scalar_one()
                for i in issued
            ]
        expected = {"MR-001": "food_business_licence", "HE-001": "hygiene_licence"}
        assert types == [expected[code] for code in row["items"]]  # listed in the order of the case's items


def test_two_imports_numbering_the_same_counters_in_opposite_orders_both_land(pg) -> None:
    """Two bulk imports at once, each numbering rows of two serial counters, listed in opposite orders in
    their files and imported one row per batch. Each takes every counter its file numbers from before
    its first row, in key order: the second waits for the first instead of the two waiting on each other
    (counters locked batch by batch in the file's order would deadlock, and PostgreSQL would abort one)."""
    from licence.demo import make_demo_rows
    from licence.importer import import_rows

    rows = [
        {k: v for k, v in r.items() if k not in ("identifier", "licence_number")} for r in make_demo_rows(40)
    ]
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_pair.setdefault((row["type_code"], row["issuer_credit_code"]), []).append(row)
    first, second = [p for p, listed in by_pair.items() if len(listed) >= 2][:2]
    files = {
        "A": [by_pair[first][0], by_pair[second][0]],
        "B": [by_pair[second][1], by_pair[first][1]],
    }
    barrier = threading.Barrier(2, timeout=3)
    seen: set[str] = set()

    def meet(_conn, _cursor, statement: str, *_args) -> None:
        # each import, after its first serial statement, waits (3 s at most) until the other has had its
        # own: batch-by-batch locking would then hold one counter each and want the other's
        name = threading.current_thread().name
        if "onewindow_next_serials" in statement and name in files and name not in seen:
            seen.add(name)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the other is still waiting for this one's locks: go on and commit

    def run(name: str, out: dict[str, int]) -> None:
        with pg.begin() as conn:
            out[name] = import_rows(conn, list(enumerate(files[name], start=1)), batch_size=1, at=T0).accepted

    accepted: dict[str, int] = {}
    event.listen(pg, "after_cursor_execute", meet)
    try:
        threads = [threading.Thread(target=run, args=(name, accepted), name=name) for name in files]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        event.remove(pg, "after_cursor_execute", meet)
    assert accepted == {"A": 2, "B": 2}
    with pg.connect() as conn:
        serials = conn.execute(
            select(licences.c.type_code, licences.c.issuer_credit_code, licences.c.serial)
        ).all()
    for pair in (first, second):
        assert sorted(s for t, i, s in serials if (t, i) == pair) == [1, 2]


@pytest.mark.parametrize("action", ["renews", "replaces"])
def test_concurrent_renewals_or_replacements_of_one_licence_continue_it_once(pg, action: str) -> None:
    """Each continuation locks the licence it continues before checking it: of several at once, one is
    issued and the others are refused (already renewed / cancelled by the replacement), never two."""
    from tests.integration.test_licence_library import food_face

    org = demo_organisations()[0]
    code, name = demo_issuers()["market"]
    with pg.begin() as conn:
        old = LicenceLibrary(conn, clock=lambda: T0).issue(
            "food_business_licence",
            org.credit_code,
            org.name,
            food_face(org),
            code,
            name,
            dt.date(2024, 1, 1),
        )
    threads = 6
    barrier = threading.Barrier(threads)

    def continue_it(_: int) -> str:
        try:
            with pg.begin() as conn:
                lib = LicenceLibrary(conn, clock=lambda: T0)
                barrier.wait()
                lib.issue(
                    "food_business_licence", org.credit_code, org.name, food_face(org), code, name,
                    dt.date(2025, 3, 3), **{action: old.id},
                )  # fmt: skip
                return "issued"
        except IllegalTransition as exc:
            return exc.detail["action"]

    with ThreadPoolExecutor(threads) as pool:
        outcomes = sorted(pool.map(continue_it, range(threads)))
    refused = "renew" if action == "renews" else "replace"
    assert outcomes == ["issued"] + [refused] * (threads - 1)
    with pg.connect() as conn:
        column = licences.c.renews_id if action == "renews" else licences.c.replaces_id
        assert len(conn.execute(select(licences.c.id).where(column == old.id)).all()) == 1


@pytest.mark.parametrize(
    ("action", "reason", "after"),
    [
        ("revoke", "严重违法经营", ("revoked", "cancelled")),
        ("suspend", "责令停业整顿", ("suspended", "suspended")),
    ],
)
def test_an_action_waiting_on_a_renewal_being_issued_takes_the_renewal_with_it(
    pg, action: str, reason: str, after: tuple[str, str]
) -> None:
    """A renewal issued while its licence is being revoked (or suspended): the action waits for the
    renewal's transaction (both lock the licence) and then cancels (or suspends) the renewal with it, never
    leaving it valid to come into force."""
    from tests.integration.test_licence_library import food_face

    org = demo_organisations()[0]
    code, name = demo_issuers()["market"]

    def food(lib: LicenceLibrary, **kwargs: str) -> str:
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name,
            dt.date(2024, 1, 1), **kwargs,
        ).id  # fmt: skip

    with pg.begin() as conn:
        old = food(LicenceLibrary(conn, clock=lambda: T0))
    issuing = pg.connect()
    transaction = issuing.begin()
    renewal = food(LicenceLibrary(issuing, clock=lambda: T0), renews=old)  # not committed yet
    done = threading.Event()

    def act() -> None:
        with pg.begin() as conn:
            getattr(LicenceLibrary(conn, clock=lambda: T0), action)(old, reason, "执法一队")
        done.set()

    worker = threading.Thread(target=act)
    worker.start()
    assert not done.wait(0.5)  # waits for the renewal's transaction
    transaction.commit()
    issuing.close()
    worker.join(10)
    assert done.is_set()
    with pg.connect() as conn:
        statuses = dict(conn.execute(select(licences.c.id, licences.c.status)).all())
    assert (statuses[old], statuses[renewal]) == after
