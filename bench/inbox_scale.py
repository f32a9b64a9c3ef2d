"""Benchmark: the lists a page shows, at a million tasks (issue 12, "inbox at scale").

    python -m bench.inbox_scale [--tasks 1000000] [--cases 200000] [--url URL] [--rounds 200] [--fresh]

PostgreSQL only; by default a database of its own (``onewindow_inbox_bench``, created when missing; the data
is kept between runs and made again when the sizes differ or with ``--fresh``). The data: ``--cases`` cases
over two years in 30 departments, ``--tasks`` tasks (the same number per case: intake at the window, then
department steps), the newest quarter of the cases running with one ready task each (5% of the tasks; one
in ten waits on the applicant, one in ten is claimed, one in five lists a second department), legal and
promised clocks for every case (running for the running cases), a step clock for every window task. The
task candidate rows are made by the statements of migration 0130's backfill, timed.

Each list is read ``--rounds`` times (after a warm-up) and its p50/p95 printed beside the same list read by
the query it replaced (``LIKE`` over the comma-joined ``candidate_groups``), then ``EXPLAIN ANALYZE`` of
every statement the list runs. Lists: the inbox of an officer of two departments (first page, page 5, and
sorted by due date), the applicant's "my cases", the supervisors' yellow/red list (two departments, and all),
tracking by case number.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, event, exists, func, or_, select, text

from bench.databases import own_database
from engine.cases.inbox import _FROM, CLOCK_DUE, DUE, NO_DUE, InboxFilter, _query, inbox
from engine.cases.numbers import format_case_number
from engine.cases.submission import my_cases
from engine.cases.supervision import clock_alerts
from engine.cases.tracking import CaseTracking
from engine.persistence.database import make_engine
from engine.persistence.schema import all_metadata, upgrade
from engine.persistence.tables import cases, task_candidates, tasks
from engine.time.calendar import WorkingCalendar, end_of_local_day, local_date, local_midnight
from processes.catalogue import load_catalogue

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/onewindow_inbox_bench"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
DEPARTMENTS = [f"d{i:02d}" for i in range(1, 31)]
OFFICER, OFFICER_GROUPS = "officer_a", ["d01", "d02"]
MIGRATION = (
    Path(__file__).resolve().parents[1] / "engine/persistence/migrations/versions/0130_task_assignment.py"
)



def like_member(name: str) -> str:
    """The baseline's pattern (the query before 0130): ``name`` as one member of a ``",a,b,"`` list column."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%,{escaped},%"

# ------------------------------------------------------------------ the database and its data
def _sizes(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(tasks)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(cases)).scalar_one()),
        )


def _case_ids(n_cases: int) -> list[str]:
    """Valid case numbers, spread over the two years before NOW (oldest first)."""
    days = 730
    per_day = -(-n_cases // days)
    first = NOW.date() - timedelta(days=days)
    return [format_case_number(first + timedelta(days=n // per_day), n % per_day + 1) for n in range(n_cases)]


def generate(engine: Engine, n_tasks: int, n_cases: int) -> dict[str, float]:
    """Fill the database (emptied first); returns seconds per phase."""
    per_case = max(1, n_tasks // n_cases)
    seconds: dict[str, float] = {}
    names = ", ".join(f'"{t.name}"' for md in all_metadata() for t in md.sorted_tables)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # no triggers, no FK checks
        conn.execute(text("CREATE TEMP TABLE case_n (n int PRIMARY KEY, id text) ON COMMIT DROP"))
        buf = io.StringIO("".join(f"{n}\t{cid}\n" for n, cid in enumerate(_case_ids(n_cases))))
        conn.connection.dbapi_connection.cursor().copy_expert("COPY case_n (n, id) FROM STDIN", buf)
        params = {"now": NOW, "n": n_cases, "k": per_case, "running": n_cases - n_cases // 4}
        for statement in _GENERATE:
            conn.execute(text(statement), params)
    seconds["load"] = time.perf_counter() - started
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("migration_0130", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with engine.begin() as conn:
        for statement in migration.backfill("postgresql"):
            conn.execute(text(statement))
    seconds["backfill (migration 0130)"] = time.perf_counter() - started
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return seconds


_CASE_AT = "(:now - (:n - c.n) * interval '730 days' / :n)"
_RUNNING = "c.n >= :running"
_GENERATE = [
    "INSERT INTO definitions (key, version, name, filename, bpmn, checksum, spec_json, deployed_by,"
    " deployed_at) VALUES ('single_window', 1, '一窗受理', 'single_window.bpmn', '<x/>', repeat('c', 64),"
    " '{}', 'bench', :now)",
    # cases: one applicant per four cases, 5% in the green channel
    "INSERT INTO cases (id, flow, items, department, applicant_kind, applicant_id, applicant_name, channel,"
    " visits, priority, status, status_seq, instance_id, submitted_at, accepted_at, closed_at, check_code)"
    " SELECT c.id, 'single_window', json_build_array('MR-001'), 'd' || lpad((c.n % 30 + 1)::text, 2, '0'),"
    " 'person', lpad((c.n / 4)::text, 18, '0'), '申请人' || c.n, 'online', 0,"
    " CASE WHEN c.n % 20 = 0 THEN 'green' ELSE 'normal' END,"
    f" CASE WHEN {_RUNNING} THEN 'under_review' ELSE 'finished' END, 0, 'I' || c.n, {_CASE_AT},"
    f" {_CASE_AT} + interval '1 hour',"
    f" CASE WHEN {_RUNNING} THEN NULL ELSE {_CASE_AT} + interval '12 days' END,"
    " 'ABC234' FROM case_n c",
    "INSERT INTO instances (id, definition_id, business_key, status, state, version, created_at, updated_at)"
    f" SELECT 'I' || c.n, 1, c.id, CASE WHEN {_RUNNING} THEN 'running' ELSE 'completed' END, '{{}}', :k,"
    f" {_CASE_AT}, {_CASE_AT} FROM case_n c",
    # tasks: step 0 at the window (a step clock), then department steps; the last one of a running case is
    # ready (one in ten for the applicant, one in five also for the next department, one in ten claimed)
    "INSERT INTO tasks (id, instance_id, business_key, element_id, name, candidate_groups, candidate_users,"
    " assignee, state, priority, created_at, completed_at, completed_by, due_at, clock, suspends_case_clock)"
    " SELECT 'T' || c.n || '-' || s.k, 'I' || c.n, c.id,"
    " CASE WHEN s.k = 0 THEN 'intake' ELSE 'review' END, '环节',"
    " CASE WHEN s.k = 0 THEN ',window,'"
    f"  WHEN {_RUNNING} AND s.k = :k - 1 AND c.n % 10 = 3 THEN ',applicant,'"
    "  WHEN c.n % 5 = 1 THEN ',' || d.code || ',' || 'd' || lpad(((c.n + 1) % 30 + 1)::text, 2, '0') || ','"
    "  ELSE ',' || d.code || ',' END, '',"
    f" CASE WHEN {_RUNNING} AND s.k = :k - 1 AND c.n % 10 = 7 THEN 'officer_' || (c.n % 50) END,"
    f" CASE WHEN {_RUNNING} AND s.k = :k - 1 THEN 'ready' ELSE 'completed' END,"
    " CASE WHEN c.n % 20 = 0 THEN 1 ELSE 0 END,"
    f" {_CASE_AT} + s.k * interval '1 day',"
    f" CASE WHEN {_RUNNING} AND s.k = :k - 1 THEN NULL ELSE {_CASE_AT} + (s.k + 1) * interval '1 day' END,"
    f" CASE WHEN {_RUNNING} AND s.k = :k - 1 THEN NULL ELSE 'officer' END,"
    f" CASE WHEN c.n % 3 = 0 THEN NULL ELSE {_CASE_AT} + (s.k + 5) * interval '1 day' END,"
    " CASE WHEN s.k = 0 THEN 'task' WHEN c.n % 10 = 3 AND s.k = :k - 1 THEN NULL ELSE 'promised' END, false"
    " FROM case_n c CROSS JOIN generate_series(0, :k - 1) AS s(k)"
    " CROSS JOIN LATERAL (SELECT 'd' || lpad((c.n % 30 + 1)::text, 2, '0') AS code) d",
    # the legal (20 working days ~ 28 days) and promised (10 ~ 14 days) clocks of every case
    "INSERT INTO case_clocks (case_id, task_id, kind, clock, due_at, warn_at, stopped_at)"
    " SELECT c.id, NULL, k.kind, json_build_object('kind', k.kind, 'started_at', "
    f" to_char({_CASE_AT} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00'), 'limit_days', k.days,"
    " 'limit_hours', NULL, 'warn_ratio', 0.8, 'pauses', json_build_array(), 'stopped_at',"
    f" CASE WHEN {_RUNNING} THEN NULL ELSE to_char(({_CASE_AT} + interval '12 days') AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00') END),"
    f" {_CASE_AT} + k.span, CASE WHEN {_RUNNING} THEN {_CASE_AT} + k.span * 0.8 END,"
    f" CASE WHEN {_RUNNING} THEN NULL ELSE {_CASE_AT} + interval '12 days' END"
    " FROM case_n c CROSS JOIN"
    " (VALUES ('legal', 20, interval '28 days'), ('promised', 10, interval '14 days'))"
    " AS k(kind, days, span)",
    # the window step's own clock (5 working days), stopped when it was done
    "INSERT INTO case_clocks (case_id, task_id, kind, clock, due_at, warn_at, stopped_at)"
    " SELECT c.id, 'T' || c.n || '-0', 'task', json_build_object('kind', 'task', 'started_at',"
    f" to_char({_CASE_AT} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00'), 'limit_days', 5,"
    " 'limit_hours', NULL, 'warn_ratio', 0.8, 'pauses', json_build_array(), 'stopped_at',"
    f" to_char(({_CASE_AT} + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')),"
    f" {_CASE_AT} + interval '7 days', NULL, {_CASE_AT} + interval '1 day' FROM case_n c",
]


# ------------------------------------------------------------------ the queries they replaced
def legacy_inbox(conn: Connection, actor: str, groups: list[str], limit: int = 20) -> None:
    """The inbox before migration 0130: LIKE over ``candidate_groups`` (first page and counts)."""
    conds = [tasks.c.candidate_groups.like(like_member(g), escape="\\") for g in sorted(groups)]
    conds += [
        tasks.c.assignee == actor,
        tasks.c.candidate_users.like(like_member(actor), escape="\\"),
    ]
    scope = and_(tasks.c.state == "ready", or_(*conds))
    order = [tasks.c.priority.desc(), NO_DUE, DUE, tasks.c.created_at, tasks.c.id]
    columns = list(_query(NOW, task_candidates).selected_columns)[4:]  # without the new keys
    conn.execute(select(*columns).select_from(_FROM).where(scope).order_by(*order).limit(limit + 1)).all()
    today = local_date(NOW)
    start, end = local_midnight(today), end_of_local_day(today)
    due_today = func.sum(case((and_(DUE > start, DUE <= end), 1), else_=0))
    overdue = func.sum(case((CLOCK_DUE <= NOW, 1), else_=0))
    conn.execute(select(func.count(), due_today, overdue).select_from(_FROM).where(scope)).one()


def legacy_my_cases(conn: Connection, holder: str) -> None:
    waiting = exists().where(
        tasks.c.business_key == cases.c.id,
        tasks.c.state == "ready",
        tasks.c.candidate_groups.like("%,applicant,%"),
    )
    query = (
        select(cases.c.id, cases.c.status, cases.c.submitted_at, waiting.label("waiting"))
        .where(cases.c.applicant_id == holder)
        .order_by(cases.c.submitted_at.desc(), cases.c.id.desc())
        .limit(21)
    )
    conn.execute(query).all()


# ------------------------------------------------------------------ measuring
@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def measure(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def explain(engine: Engine, fn: Callable[[], Any]) -> list[str]:
    with statements(engine) as seen:
        fn()
    out = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            out.append("\n".join(r[0] for r in cursor.fetchall()))
        raw.rollback()
    finally:
        raw.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--url", default=DEFAULT_URL, help=f"PostgreSQL URL (default {DEFAULT_URL})")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--fresh", action="store_true", help="make the schema and the data again")
    parser.add_argument("--no-plans", action="store_true", help="leave out the EXPLAIN ANALYZE plans")
    args = parser.parse_args(argv)
    if not args.url.startswith("postgresql"):
        parser.error("the benchmark needs PostgreSQL (--url postgresql+psycopg2://...)")
    own_database(args.url)
    engine = make_engine(args.url)
    if args.fresh:  # the benchmark's own database: its schema is made again from the migrations
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    per_case = max(1, args.tasks // args.cases)
    if args.fresh or _sizes(engine) != (per_case * args.cases, args.cases):
        print(f"making {per_case * args.cases:,} tasks of {args.cases:,} cases ...", flush=True)
        for phase, secs in generate(engine, args.tasks, args.cases).items():
            print(f"  {phase}: {secs:.1f} s")
    with engine.connect() as conn:
        ready = conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.state == "ready")
        ).scalar_one()
        mine = conn.execute(
            text(
                "SELECT count(DISTINCT task_id) FROM task_candidates"
                " WHERE state = 'ready' AND name IN ('d01', 'd02')"
            )
        ).scalar_one()
        holder, case_id = conn.execute(
            select(cases.c.applicant_id, cases.c.id).where(cases.c.status == "under_review").limit(1)
        ).one()
    tasks_n, cases_n = _sizes(engine)
    print(f"{tasks_n:,} tasks ({ready:,} ready), {cases_n:,} cases; the officer's inbox holds {mine:,} tasks")

    catalogue = load_catalogue()
    cal = WorkingCalendar()
    tracking = CaseTracking(engine, lambda: NOW, lambda: cal)

    def officer(**kw: Any) -> Callable[[], Any]:
        def run() -> Any:
            with engine.connect() as conn:
                return inbox(conn, actor=OFFICER, groups=OFFICER_GROUPS, now=NOW, catalogue=catalogue, **kw)

        return run

    cursor = None
    for _ in range(4):
        cursor = officer(cursor=cursor)()["next_cursor"]

    def alerts(departments: set[str] | None) -> Callable[[], Any]:
        def run() -> Any:
            with engine.connect() as conn:
                return clock_alerts(conn, cal, NOW, departments=departments)

        return run

    def legacy(fn: Callable[[Connection], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with engine.connect() as conn:
                return fn(conn)

        return run

    lists: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "inbox, 2 departments, page 1",
            officer(),
            legacy(lambda c: legacy_inbox(c, OFFICER, OFFICER_GROUPS)),
        ),
        ("inbox, 2 departments, page 5", officer(cursor=cursor), None),
        ("inbox, by due date, page 1", officer(sort="due"), None),
        ("inbox, red only, page 1", officer(filters=InboxFilter(clock="red")), None),
        (
            "my cases (applicant)",
            lambda: my_cases(engine, holder),
            legacy(lambda c: legacy_my_cases(c, holder)),
        ),
        ("yellow/red list, 2 departments", alerts({"d01", "d02"}), None),
        ("yellow/red list, all departments", alerts(None), None),
        ("tracking by case number", lambda: tracking.track(case_id), None),
    ]
    print(f"\n{'list':36} {'p50 ms':>8} {'p95 ms':>8}   {'LIKE p50':>8} {'LIKE p95':>8}")
    for name, fn, old in lists:
        p50, p95 = measure(fn, args.rounds)
        line = f"{name:36} {p50:8.2f} {p95:8.2f}"
        if old is not None:
            o50, o95 = measure(old, max(10, args.rounds // 10))
            line += f"   {o50:8.2f} {o95:8.2f}"
        print(line, flush=True)
    if not args.no_plans:
        for name, fn, old in lists:
            for label, target in ((name, fn), (f"{name} (LIKE, before 0130)", old)):
                if target is None:
                    continue
                print(f"\n=== {label}")
                for plan in explain(engine, target):
                    print(plan + "\n")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
