"""The supervisor's figures from the summary rows (``figure_counts``) are the figures of the scan.

The cases run through the real services (the nine cases of ``test_figures`` and more: a joint approval
denied, a tolerant case delivered early and then terminated when its commitment was broken (it closes
twice), withdrawals before and after acceptance, a deemed acceptance, counter visits, late ratings, a
calendar change while clocks run). Then, for many periods and every department, :func:`figures` (the
summary) must equal :func:`scan_figures` (one pass over the cases, the computation before the summary)
figure by figure, and the rows kept step by step must equal the rows rebuilt from the cases (the repair
function and the 0140 migration's backfill).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select, text, update

from engine.bootstrap import Services
from engine.cases import figure_counts
from engine.cases.figures import figures, scan_figures
from engine.cases.intake import Application
from engine.cases.withdrawal import decide_withdrawal, request_withdrawal
from engine.persistence.database import unit_of_work
from engine.persistence.schema import alembic_config, upgrade
from engine.persistence.tables import FIGURE_COUNTERS, case_clocks, cases, tasks
from engine.persistence.tables import figure_counts as counts_table
from tests.conftest import FakeClock, services_on
from tests.integration.test_cases import JOINT_FORM, every_material
from tests.integration.test_figures import GENERAL_FORM, World, build_two_months, do, sh


@pytest.fixture
def svc(db: Engine, clock: FakeClock) -> Services:
    clock.set(sh(2025, 10, 31, 9))
    return services_on(db, clock)


def build_more(svc: Services, clock: FakeClock) -> dict[str, str]:
    """The nine cases of ``test_figures`` and the cases whose counts change after the fact."""
    ids = build_two_months(svc, clock)
    w = World(svc, clock)
    # H: a joint approval (market leads, three departments), accepted, one department denies on 10 Dec:
    # decided (its promised clock stopped), not closed
    clock.set(sh(2025, 12, 8, 9))
    ids["h"] = svc.cases.submit(
        Application(
            w.org.credit_code,
            w.org.name,
            ["MR-001", "HE-001", "PL-001"],
            lead_department="market",
            form=dict(JOINT_FORM),
            provided=every_material(svc, "MR-001", "HE-001", "PL-001"),
        ),
        "window-1",
    )
    do(svc, ids["h"], "lead_intake", decision="accept", opinion="受理")
    clock.set(sh(2025, 12, 10, 9))
    with svc.engine.connect() as conn:
        branches = conn.execute(
            select(tasks.c.id, tasks.c.candidate_groups).where(
                tasks.c.business_key == ids["h"],
                tasks.c.state == "ready",
                tasks.c.element_id == "joint_review",
            )
        ).all()
    for task_id, groups in branches:
        group = groups.strip(",")
        verdict = "deny" if group == "health" else "approve"
        svc.cases.complete_task(task_id, {"decision": verdict, "opinion": "意见"}, group, groups={group})
    do(svc, ids["h"], "consolidation", outcome="deny", opinion="卫健部门不予许可")

    # I: a tolerant HR licence released early on 11 Feb 2026, delivered, then terminated on 3 Mar when the
    # commitment was broken: closed on 11 Feb, closed again on 3 Mar (its counts move); rated in between
    hr = svc.catalogue.get("HR-001")
    clock.set(sh(2026, 2, 11, 10))
    key = [m.code for m in hr.key_materials if not m.licence_type]
    ids["i"] = svc.cases.submit(
        Application(
            w.org.credit_code,
            w.org.name,
            ["HR-001"],
            form={**GENERAL_FORM, "request": "申请人力资源服务许可"},
            tolerant=True,
            provided={"HR-001": key},
        ),
        "window-1",
    )
    do(
        svc,
        ids["i"],
        "commitment",
        actor="applicant",
        missing_materials=[m.code for m in hr.minor_materials],
        promised_date="2026-02-25",
        signed=True,
    )
    do(svc, ids["i"], "review", result="pass", opinion="符合条件", needs_special_procedure=False)
    do(svc, ids["i"], "decision", decision="approve", opinion="准予许可")
    do(svc, ids["i"], "delivery_early", delivery_method="window", delivered_on="2026-02-11")
    w.rate(ids["i"], 4, sh(2026, 2, 12, 10))
    clock.set(sh(2026, 3, 3, 10))
    assert svc.workflow.fire_due_timers("w1") >= 1  # (other cases' timers fire too)
    assert svc.cases.track(ids["i"])["case"]["status"] == "terminated"

    # J: withdrawn after acceptance (withdrawn, not finished: the promised clock stops at the withdrawal,
    # not in the on-time rate); K: withdrawn before acceptance (withdrawn, not 不予受理)
    ids["j"] = w.submit("MR-001", sh(2026, 1, 5, 9))
    w.accept(ids["j"], sh(2026, 1, 5, 10))
    ids["k"] = w.submit("PS-002", sh(2026, 1, 6, 9), "counter")
    for case_id, holder, group in ((ids["j"], w.food_org, "market"), (ids["k"], w.org, "police")):
        clock.set(sh(2026, 1, 7, 9))
        request_withdrawal(svc.cases, case_id, "不再需要", holder_id=holder.credit_code, actor="applicant")
        clock.set(sh(2026, 1, 8, 9))
        decide_withdrawal(svc.cases, case_id, grant=True, note="", actor=f"{group}-1", groups={group})
    w.rate(ids["j"], 5, sh(2026, 2, 2, 9))  # rated in another month than it closed: not in the figures

    # L: left at intake on 12 Jan: deemed accepted from the day of receipt by the worker; then a
    # supplement at the counter (a second visit) is not possible any more, so a visit on another case
    ids["l"] = w.submit("PS-002", sh(2026, 1, 12, 9))
    clock.set(sh(2026, 1, 26, 9))
    assert svc.cases.intake_rules.deem_overdue(svc.engine, clock, svc.calendar, "w1") >= 1
    # M: at the counter, a supplement at the counter (2 visits), a calendar change while its clocks run,
    # accepted, decided, rated the next month
    mr001 = [m.code for m in svc.catalogue.get("MR-001").materials]
    ids["m"] = w.submit(
        "MR-001", sh(2026, 1, 13, 9), "counter", provided=[c for c in mr001 if c != "safety_rules"]
    )
    do(svc, ids["m"], "intake", decision="supplement", missing_materials=["safety_rules"], reason="缺制度")
    clock.set(sh(2026, 1, 14, 9))
    do(svc, ids["m"], "supplement", actor="applicant", supplied_materials=["safety_rules"], visit="counter")
    w.accept(ids["m"], sh(2026, 1, 14, 10))
    svc.cases.change_calendar(date(2026, 1, 17), True, "调休上班", "admin")  # a Saturday made a working day
    w.decide(ids["m"], sh(2026, 1, 30, 10))
    w.rate(ids["m"], 2, sh(2026, 2, 3, 10))
    # N: an online case whose applicant came to the counter with the supplement (0 -> 1 visit)
    ids["n"] = w.submit("MR-001", sh(2026, 1, 20, 9), provided=[c for c in mr001 if c != "safety_rules"])
    do(svc, ids["n"], "intake", decision="supplement", missing_materials=["safety_rules"], reason="缺制度")
    do(svc, ids["n"], "supplement", actor="applicant", supplied_materials=["safety_rules"], visit="counter")
    # O: refused at intake on one day, rated on another
    ids["o"] = w.submit("PS-001", sh(2026, 2, 27, 23, 50))
    clock.set(sh(2026, 2, 28, 0, 10))
    do(svc, ids["o"], "intake", decision="refuse", reason="不属于本机关职权范围")
    w.rate(ids["o"], 3, sh(2026, 3, 1, 0, 5))
    return ids


def periods() -> list[tuple[date, date]]:
    """Months, weeks, single days, quarters, a year and odd spans over October 2025 - March 2026."""
    found = [(date(2025, 10, 1), date(2026, 3, 31)), (date(2025, 1, 1), date(2026, 12, 31))]
    first = date(2025, 10, 1)
    while first < date(2026, 4, 1):
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        found.append((first, following - timedelta(days=1)))
        first = following
    found += [(date(2025, 10, 1), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 3, 31))]
    monday = date(2025, 10, 27)
    while monday < date(2026, 3, 9):
        found.append((monday, monday + timedelta(days=6)))
        monday += timedelta(days=7)
    found += [
        (date(2025, 11, 1), date(2025, 11, 1)),
        (date(2025, 11, 3), date(2025, 11, 4)),
        (date(2025, 11, 4), date(2025, 11, 20)),
        (date(2025, 11, 15), date(2026, 1, 10)),
        (date(2026, 1, 7), date(2026, 1, 8)),
        (date(2026, 2, 11), date(2026, 3, 2)),
        (date(2026, 2, 27), date(2026, 2, 28)),
        (date(2026, 2, 28), date(2026, 3, 3)),
        (date(2025, 12, 31), date(2026, 1, 1)),
        # long periods (monthly series) from the month rows and the day rows at their ends
        (date(2025, 10, 15), date(2026, 2, 20)),
        (date(2025, 10, 15), date(2026, 3, 31)),
        (date(2025, 10, 1), date(2026, 2, 27)),
        (date(2025, 11, 4), date(2026, 1, 31)),
        (date(2025, 11, 2), date(2026, 3, 2)),
        (date(2025, 12, 1), date(2026, 3, 3)),
    ]
    return found


def both(svc: Services, start: date, end: date, department: str | None) -> tuple[dict, dict]:
    with svc.engine.connect() as conn:
        kw: dict[str, Any] = {"period_start": start, "period_end": end, "department": department}
        new = figures(conn, svc.catalogue, svc.calendar, **kw).to_dict()
        old = scan_figures(conn, svc.catalogue, svc.calendar, **kw).to_dict()
    return new, old


def assert_same_everywhere(svc: Services) -> int:
    compared = 0
    for start, end in periods():
        for department in [None, *svc.catalogue.departments]:
            new, old = both(svc, start, end, department)
            assert new == old, (start, end, department)
            compared += 1
    return compared


def stored_rows(conn: Any) -> dict[tuple, tuple]:
    """The summary as key -> counters, rows with every counter 0 left out (a moved closing leaves one)."""
    rows = conn.execute(select(counts_table)).mappings()
    found = {}
    for r in rows:
        values = tuple(int(r[n]) for n in FIGURE_COUNTERS)
        if any(values):
            found[(r["grain"], r["day"], r["department"], r["items"], r["event_day"])] = values
    return found


def test_the_summary_gives_the_figures_of_the_scan_for_every_period_and_department(
    svc: Services, clock: FakeClock
) -> None:
    ids = build_more(svc, clock)
    with svc.engine.connect() as conn:
        statuses = dict(conn.execute(select(cases.c.id, cases.c.status)).all())
    assert statuses[ids["i"]] == "terminated" and statuses[ids["j"]] == "withdrawn"
    assert statuses[ids["k"]] == "withdrawn" and statuses[ids["l"]] != "submitted"
    assert assert_same_everywhere(svc) > 300

    # the figures are not trivially empty: the centre of the whole span sees every case
    new, _ = both(svc, date(2025, 10, 1), date(2026, 3, 31), None)
    assert new["centre"]["received"] == len(ids)
    assert new["centre"]["finished"] == 6 and new["centre"]["not_accepted"] == 2  # A B C E I M; D O
    assert new["centre"]["withdrawn"] == 2  # J, K
    assert sum(r["count"] for r in new["centre"]["ratings"]) == 7  # J's rating (withdrawn) not counted

    # the case closed twice counts on its last closing day: in the February figures it is still open
    feb = both(svc, date(2026, 2, 1), date(2026, 2, 28), "hr")[0]
    assert (feb["centre"]["received"], feb["centre"]["finished"]) == (1, 0)
    spring = both(svc, date(2026, 2, 1), date(2026, 4, 30), "hr")[0]  # monthly: February, March, April
    assert spring["centre"]["finished"] == 1 and spring["series"]["buckets"][1]["finished"] == 1

    # the rows kept command by command are the rows rebuilt from the cases
    with svc.engine.connect() as conn:
        kept = stored_rows(conn)
        conn.rollback()
        with conn.begin() as tx:
            figure_counts.rebuild(conn)
            assert stored_rows(conn) == kept
            figure_counts.rebuild(conn, since=date(2026, 1, 1))  # a partial repair
            assert stored_rows(conn) == kept
            tx.rollback()


def test_a_lost_summary_is_rebuilt_by_the_repair_and_by_the_migration(
    db: Engine, svc: Services, clock: FakeClock
) -> None:
    build_two_months(svc, clock)
    with svc.engine.connect() as conn:
        kept = stored_rows(conn)
    assert kept
    with unit_of_work(db) as conn:
        conn.execute(counts_table.delete())
        assert figure_counts.rebuild(conn) > 0
    with svc.engine.connect() as conn:
        assert stored_rows(conn) == kept

    # the 0140 migration: down (the table goes) and up again (the rows come back from the cases)
    cfg = alembic_config(db.url.render_as_string(hide_password=False))
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0130")
        assert "figure_counts" not in _tables(conn)
    upgrade(db)
    with svc.engine.connect() as conn:
        assert stored_rows(conn) == kept
    assert_same_everywhere(svc)


def test_the_0160_migration_moves_the_counts_of_withdrawn_cases_and_back(
    db: Engine, svc: Services, clock: FakeClock
) -> None:
    """A database counted before 0160 (a withdrawn case as finished or not accepted, its promised clock in
    the on-time rate) gets the figures of the rule now: the rows the commands keep; downgrade gives back
    the rows of the rule before (as the 0140 backfill counts them)."""
    build_more(svc, clock)
    with svc.engine.connect() as conn:
        kept = stored_rows(conn)
    migrate = _migrator(db)

    before = migrate("0150", down=True)
    assert all("withdrawn" not in counters for counters in before.values())
    # J (accepted 5 Jan, withdrawn 8 Jan) counted finished with its promised clock; K refused at intake
    jan = ("d", date(2026, 1, 5), "market", "", date(2026, 1, 8))
    k = ("d", date(2026, 1, 6), "police", "", date(2026, 1, 8))
    assert before[jan]["finished"] == 1 and before[jan]["promised_stopped"] == 1
    assert before[k]["not_accepted"] == 1
    assert before[("m", date(2026, 1, 1), "market", "", date(2026, 1, 1))]["finished"] >= 1
    # the rows of the rule before are the rows the 0140 backfill counts from the cases
    migrate("0130", down=True)
    assert migrate("0150", down=False) == before

    after = migrate("head", down=False)
    assert {key: tuple(c[n] for n in FIGURE_COUNTERS) for key, c in after.items()} == kept
    assert after[jan]["withdrawn"] == 1 and after[jan]["finished"] == after[jan]["promised_stopped"] == 0
    assert (after[k]["withdrawn"], after[k]["not_accepted"]) == (1, 0)
    assert_same_everywhere(svc)
    whole = both(svc, date(2025, 10, 1), date(2026, 3, 31), None)[0]["centre"]
    assert (whole["finished"], whole["not_accepted"], whole["withdrawn"]) == (6, 2, 2)


def test_the_0170_migration_takes_the_ratings_of_withdrawn_cases_out_and_back(
    db: Engine, svc: Services, clock: FakeClock
) -> None:
    """A database counted before 0170 (the rating of a withdrawn case in 满意度) gets the figures of the rule
    now: the rows the commands keep; downgrade gives back the rows of the rule before (as the 0140
    backfill and 0160 count them)."""
    ids = build_more(svc, clock)
    with svc.engine.connect() as conn:
        kept = stored_rows(conn)
        assert conn.execute(select(cases.c.rating).where(cases.c.id == ids["j"])).scalar_one() == 5
    migrate = _migrator(db)

    # J (received 5 Jan, withdrawn 8 Jan) rated 5 on 2 Feb: counted under the rule before
    rated_day = ("d", date(2026, 1, 5), "market", "", date(2026, 2, 2))
    rated_month = ("m", date(2026, 1, 1), "market", "", date(2026, 2, 1))
    assert rated_day not in kept
    before = migrate("0160", down=True)
    assert before[rated_day]["rated_5"] == 1 and before[rated_month]["rated_5"] >= 1
    whole = both(svc, date(2025, 10, 1), date(2026, 3, 31), None)[0]["centre"]
    assert sum(r["count"] for r in whole["ratings"]) == 8
    # the rows of the rule before are the rows the 0140 backfill and 0160 count from the cases
    migrate("0130", down=True)
    assert migrate("0160", down=False) == before

    after = migrate("head", down=False)
    assert {key: tuple(c[n] for n in FIGURE_COUNTERS) for key, c in after.items()} == kept
    assert rated_day not in after and after[rated_month]["rated_5"] == before[rated_month]["rated_5"] - 1
    assert_same_everywhere(svc)
    whole = both(svc, date(2025, 10, 1), date(2026, 3, 31), None)[0]["centre"]
    assert sum(r["count"] for r in whole["ratings"]) == 7

    # a row repaired away by hand has nothing to take out: it stays missing, no count goes below 0
    migrate("0160", down=True)
    with db.begin() as conn:
        month = {"g": "m", "d": rated_month[1], "dep": "market", "e": rated_month[4]}
        conn.execute(
            text(
                "DELETE FROM figure_counts WHERE grain = :g AND day = :d AND department = :dep "
                "AND items = '' AND event_day = :e"
            ),
            month,
        )
    after = migrate("head", down=False)
    assert rated_month not in after and rated_day not in after
    assert all(value >= 0 for counters in after.values() for value in counters.values())


def _migrator(db: Engine) -> Callable[..., dict[tuple, dict[str, int]]]:
    """``migrate(to, down)``: the schema moved to revision ``to``, then the stored rows (``_raw_rows``)."""
    cfg = alembic_config(db.url.render_as_string(hide_password=False))

    def migrate(to: str, down: bool) -> dict[tuple, dict[str, int]]:
        with db.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, to)
            return _raw_rows(conn) if "figure_counts" in _tables(conn) else {}

    return migrate


def _raw_rows(conn: Any) -> dict[tuple, dict[str, int]]:
    """The stored rows as key -> counters, whatever counters the table has at its revision."""
    rows = conn.execute(text("SELECT * FROM figure_counts")).mappings()
    key = ("grain", "day", "department", "items", "event_day")
    found = {}
    for r in rows:
        day, event_day = (
            d if isinstance(d, date) else date.fromisoformat(d) for d in (r["day"], r["event_day"])
        )
        counters = {n: int(v) for n, v in r.items() if n not in key}
        if any(counters.values()):  # rows with every counter 0 left out (a moved closing leaves one)
            found[(r["grain"], day, r["department"], r["items"], event_day)] = counters
    return found


def test_promised_clocks_stored_without_their_deadline_are_recounted_as_the_scan_does(
    db: Engine, svc: Services, clock: FakeClock
) -> None:
    """Rows from before deadlines were kept at the stop (``due_at`` empty on a stopped clock): the
    backfill counts them as ``promised_no_due`` and the figures recount them from the clock's JSON."""
    build_two_months(svc, clock)
    with unit_of_work(db) as conn:
        conn.execute(update(case_clocks).where(case_clocks.c.stopped_at.is_not(None)).values(due_at=None))
        figure_counts.rebuild(conn)
        assert conn.execute(
            select(counts_table.c.promised_no_due).where(counts_table.c.promised_no_due > 0)
        ).first()
    new, old = both(svc, date(2025, 11, 1), date(2025, 12, 31), None)
    assert new == old
    assert (new["centre"]["on_time"]["numerator"], new["centre"]["on_time"]["denominator"]) == (3, 4)
    assert_same_everywhere(svc)


def _tables(conn: Any) -> set[str]:
    if conn.dialect.name == "postgresql":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in conn.execute(text(query))}


def test_a_long_period_reads_its_whole_months_from_the_month_rows() -> None:
    d, m = figure_counts.DAY, figure_counts.MONTH
    assert figure_counts.pieces(date(2026, 6, 1), date(2026, 6, 30), weekly=True) == [
        (d, date(2026, 6, 1), date(2026, 6, 30), None, date(2026, 6, 30))
    ]
    assert figure_counts.pieces(date(2026, 1, 1), date(2026, 12, 31), weekly=False) == [
        (m, date(2026, 1, 1), date(2026, 12, 1), None, date(2026, 12, 1))
    ]
    # 15 Jan - 20 May: the days of January and May from the day rows; February to April from the month
    # rows for the events up to April, and the events of 1-20 May of those months from the day rows
    assert figure_counts.pieces(date(2026, 1, 15), date(2026, 5, 20), weekly=False) == [
        (d, date(2026, 1, 15), date(2026, 1, 31), None, date(2026, 5, 20)),
        (d, date(2026, 5, 1), date(2026, 5, 20), None, date(2026, 5, 20)),
        (m, date(2026, 2, 1), date(2026, 4, 1), None, date(2026, 4, 1)),
        (d, date(2026, 2, 1), date(2026, 4, 30), date(2026, 5, 1), date(2026, 5, 20)),
    ]
