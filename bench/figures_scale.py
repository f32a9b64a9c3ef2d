"""Benchmark: the supervisor's figures of a period at scale, the scan (baseline) beside the summary rows.

    python -m bench.figures_scale [--cases 200000] [--tasks 1000000] [--rounds 15] [--url URL]

1. A database of its own (default ``onewindow_bench_figures`` on the local PostgreSQL, made anew each
   run; any URL ``ONEWINDOW_DATABASE_URL`` accepts, SQLite too), migrated to the head.
2. ``--cases`` cases over two years (2025-2026, Beijing time) in 30 departments (the catalogue's seven and
   23 more), 70% online, 0-3 visits, 90% accepted, 95% closed 0-40 days after receipt, 60% of the closed
   rated; the legal and promised clocks of every accepted case (the promised one stopped at the decision,
   about 8% late); ``--tasks`` task rows (5% ready) on one instance per case. Loaded with COPY (PostgreSQL)
   or ``executemany`` (SQLite), then the summary rows built by ``engine.cases.figure_counts.rebuild``
   (what the 0140 migration's backfill does; the commands keep them from then on).
3. For a month, a quarter and a year (2026), for the whole centre and for one department: the figures by
   the scan (``scan_figures``, the computation before the summary) and by the summary (``figures``), the
   two checked equal, then timed in alternating rounds: p50 / p95 in ms. PostgreSQL: the EXPLAIN ANALYZE
   of the year's summary query, and the cost of one summary write (the upsert a command adds).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, text

from bench.databases import own_database
from engine.cases import figure_counts
from engine.cases.figures import figures, scan_figures
from engine.persistence.database import make_engine
from engine.persistence.schema import upgrade
from engine.persistence.tables import figure_counts as counts_table
from engine.time.calendar import SHANGHAI, WorkingCalendar
from engine.time.clocks import Clock
from processes.catalogue import Catalogue, load_catalogue

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/onewindow_bench_figures"
EXTRA_DEPARTMENTS = [f"dept{n:02d}" for n in range(1, 24)]
START = datetime(2025, 1, 1, tzinfo=SHANGHAI)
SPAN_DAYS = 730
PERIODS = [
    ("month", date(2026, 6, 1), date(2026, 6, 30)),
    ("quarter", date(2026, 4, 1), date(2026, 6, 30)),
    ("year", date(2026, 1, 1), date(2026, 12, 31)),
]


# ------------------------------------------------------------------ data


def _stamp(at: datetime | None, sqlite: bool) -> str | None:
    if at is None:
        return None
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at.isoformat()


class Generator:
    """Rows of cases, clocks, instances and tasks, reproducible from a seed."""

    def __init__(self, catalogue: Catalogue, seed: int = 12) -> None:
        self.rnd = random.Random(seed)
        self.catalogue = catalogue
        codes = [i.code for i in catalogue.items]
        self.item_sets: dict[str, list[list[str]]] = {}
        for dept in [*catalogue.departments, *EXTRA_DEPARTMENTS]:
            own = [i.code for i in catalogue.by_department(dept)] or self.rnd.sample(codes, 2)
            self.item_sets[dept] = [[c] for c in own] + [sorted(self.rnd.sample(codes, 3))]
        self.departments = list(self.item_sets)
        self.weights = [self.rnd.uniform(0.3, 3.0) for _ in self.departments]
        self.clock_json = json.dumps(Clock(kind="promised", started_at=START, limit_days=10).to_dict())

    def cases(self, n: int) -> Iterator[dict[str, Any]]:
        rnd = self.rnd
        for k in range(n):
            dept = rnd.choices(self.departments, self.weights)[0]
            sets = self.item_sets[dept]
            items = sets[-1] if rnd.random() < 0.05 else rnd.choice(sets[:-1] or sets)
            submitted = START + timedelta(seconds=rnd.uniform(0, SPAN_DAYS * 86400))
            channel = "online" if rnd.random() < 0.7 else "counter"
            visits = (0 if channel == "online" else 1) + rnd.choices([0, 1, 2], [0.8, 0.15, 0.05])[0]
            accepted = submitted + timedelta(hours=rnd.uniform(0, 72)) if rnd.random() < 0.9 else None
            closed = None
            if rnd.random() < 0.95:
                closed = (accepted or submitted) + timedelta(days=rnd.uniform(0, 40))
            rating = rated = None
            if closed is not None and rnd.random() < 0.6:
                rating = rnd.choices([5, 4, 3, 2, 1], [0.6, 0.25, 0.1, 0.03, 0.02])[0]
                rated = closed + timedelta(days=rnd.uniform(0, 10))
            due = accepted + timedelta(days=rnd.uniform(12, 20)) if accepted else None
            stopped = None
            if accepted is not None and closed is not None:
                stopped = closed if rnd.random() < 0.92 else due + timedelta(days=rnd.uniform(0, 5))  # type: ignore[operator]
                stopped = min(stopped, closed)
            yield {
                "id": f"B{k:09d}",
                "instance_id": str(uuid.UUID(int=rnd.getrandbits(128))),
                "items": items,
                "department": dept,
                "channel": channel,
                "visits": visits,
                "status": ("delivered" if accepted else "refused") if closed else "under_review",
                "submitted_at": submitted,
                "accepted_at": accepted,
                "decided_at": stopped,
                "closed_at": closed,
                "rating": rating,
                "rated_at": rated,
                "due_at": due,
                "stopped_at": stopped,
            }


def _copy(conn: Any, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    """COPY rows into a PostgreSQL table (``None`` as NULL); returns how many."""
    buffer, count = io.StringIO(), 0
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if v is None else v for v in row])
        count += 1
    buffer.seek(0)
    cursor = conn.cursor()
    cursor.copy_expert(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
    )
    return count


def _insert(conn: Any, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    marks = ", ".join("?" for _ in columns)
    batch: list[Sequence[Any]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) == 10000:
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
            count, batch = count + len(batch), []
    if batch:
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
    return count + len(batch)


def load(db: Engine, catalogue: Catalogue, n_cases: int, n_tasks: int) -> dict[str, float]:
    """Generate and load the rows; returns seconds per phase."""
    sqlite = db.dialect.name == "sqlite"
    gen = Generator(catalogue)
    cases = list(gen.cases(n_cases))
    per_case = max(n_tasks // max(n_cases, 1), 1)
    spent: dict[str, float] = {}
    started = time.perf_counter()
    raw = db.raw_connection()
    try:
        put = _insert if sqlite else _copy
        target = raw if sqlite else raw.driver_connection
        ts = lambda at: _stamp(at, sqlite)  # noqa: E731
        epoch = ts(START)
        put(
            target,
            "definitions",
            ["id", "key", "version", "bpmn", "checksum", "spec_json", "deployed_by", "deployed_at"],
            iter([(1, "bench_figures", 1, "<definitions/>", "0" * 64, "{}", "bench", epoch)]),
        )
        put(
            target,
            "instances",
            ["id", "definition_id", "business_key", "status", "state", "version", "created_at", "updated_at"],
            (
                (
                    c["instance_id"],
                    1,
                    c["id"],
                    "completed" if c["closed_at"] else "running",
                    "{}",
                    1,
                    ts(c["submitted_at"]),
                    ts(c["closed_at"] or c["submitted_at"]),
                )
                for c in cases
            ),
        )
        put(
            target,
            "cases",
            [
                "id",
                "flow",
                "items",
                "department",
                "applicant_kind",
                "applicant_id",
                "applicant_name",
                "channel",
                "visits",
                "priority",
                "status",
                "status_seq",
                "instance_id",
                "licence_ids",
                "submitted_at",
                "accepted_at",
                "decided_at",
                "closed_at",
                "rating",
                "rated_at",
            ],
            (
                (
                    c["id"],
                    "single_window",
                    json.dumps(c["items"]),
                    c["department"],
                    "organisation",
                    "91350100M000100Y43",
                    "某公司",
                    c["channel"],
                    c["visits"],
                    "normal",
                    c["status"],
                    0,
                    c["instance_id"],
                    "[]",
                    ts(c["submitted_at"]),
                    ts(c["accepted_at"]),
                    ts(c["decided_at"]),
                    ts(c["closed_at"]),
                    c["rating"],
                    ts(c["rated_at"]),
                )
                for c in cases
            ),
        )
        put(
            target,
            "case_clocks",
            ["case_id", "kind", "clock", "due_at", "stopped_at"],
            (
                (c["id"], kind, gen.clock_json, ts(c["due_at"]), ts(c["stopped_at"]))
                for c in cases
                if c["accepted_at"] is not None
                for kind in ("legal", "promised")
            ),
        )
        spent["cases"] = time.perf_counter() - started
        started = time.perf_counter()
        rnd = random.Random(7)

        def task_rows() -> Iterator[Sequence[Any]]:
            made = 0
            for c in cases:
                for step in range(per_case):
                    if made >= n_tasks:
                        return
                    made += 1
                    ready = c["closed_at"] is None and step == per_case - 1 or rnd.random() < 0.01
                    created = c["submitted_at"] + timedelta(hours=step * 8)
                    yield (
                        str(uuid.UUID(int=rnd.getrandbits(128))),
                        c["instance_id"],
                        c["id"],
                        f"step{step}",
                        f",{c['department']},",
                        "",
                        "ready" if ready else "completed",
                        0,
                        ts(created),
                        None if ready else ts(created + timedelta(hours=4)),
                        ts(created + timedelta(days=5)),
                        False if not sqlite else 0,
                    )

        put(
            target,
            "tasks",
            [
                "id",
                "instance_id",
                "business_key",
                "element_id",
                "candidate_groups",
                "candidate_users",
                "state",
                "priority",
                "created_at",
                "completed_at",
                "due_at",
                "suspends_case_clock",
            ],
            task_rows(),
        )
        raw.commit()
    finally:
        raw.close()
    spent["tasks"] = time.perf_counter() - started
    started = time.perf_counter()
    with db.begin() as conn:
        figure_counts.rebuild(conn)
    spent["summary"] = time.perf_counter() - started
    with db.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return spent


# ------------------------------------------------------------------ timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_rounds(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Each function once per round, alternating; milliseconds."""
    spent: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm the caches once
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            spent[name].append((time.perf_counter() - started) * 1000)
    return spent


def explain_summary(db: Engine, first: date, last: date) -> list[str]:
    """EXPLAIN ANALYZE of the summary read :func:`figures` makes for the period (centre)."""
    from engine.cases.figures import _buckets

    _, spans = _buckets(first, last)
    bounds = [end + timedelta(days=1) for _, end, _ in spans[:-1]]
    compiled = figure_counts.summary_query(first, last, None, bounds, weekly=False).compile(
        db, compile_kwargs={"literal_binds": True}
    )
    with db.connect() as conn:
        return [r[0] for r in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))]


def write_cost(db: Engine, samples: int = 500) -> float:
    """Milliseconds per summary upsert (a received case), in a transaction rolled back."""
    spent: list[float] = []
    with db.connect() as conn:
        with conn.begin() as tx:
            for k in range(samples):
                at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC) + timedelta(minutes=k)
                started = time.perf_counter()
                figure_counts.count_received(
                    conn, submitted_at=at, department="market", items=["MR-001"], channel="online", visits=0
                )
                spent.append((time.perf_counter() - started) * 1000)
            tx.rollback()
    return statistics.median(spent)


def _cases_in(db: Engine) -> int | None:
    try:
        with db.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM cases")).scalar_one())
    except Exception:  # noqa: BLE001 - no database or no table yet
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.figures_scale", description=__doc__)
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per figure (alternating)")
    parser.add_argument("--url", default=DEFAULT_URL, help="database URL (made anew; default: %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run of this size")
    args = parser.parse_args(argv)
    catalogue = load_catalogue()
    db = make_engine(args.url)
    if args.reuse and _cases_in(db) == args.cases:
        spent = {"cases": 0.0, "tasks": 0.0, "summary": 0.0}
    else:
        db.dispose()
        db = make_engine(own_database(args.url, fresh=True))
        upgrade(db)
        spent = load(db, catalogue, args.cases, args.tasks)
    try:
        with db.connect() as conn:
            n_rows = conn.execute(select(func.count()).select_from(counts_table)).scalar_one()
        print(
            f"figures at scale on {db.dialect.name}: {args.cases} cases, {args.tasks} tasks, "
            f"30 departments, 2025-2026; loaded in {spent['cases'] + spent['tasks']:.1f} s; summary "
            f"rebuilt from the cases in {spent['summary']:.1f} s ({n_rows} rows)"
        )
        calendar = WorkingCalendar()
        header = (
            f"{'period':<9}{'scope':<8}{'cases':>8}{'scan p50':>10}{'p95':>8}{'summary p50':>13}{'p95':>8}"
            f"{'x':>7}"
        )
        print(header)
        print("-" * len(header))
        for label, first, last in PERIODS:
            for scope in (None, "market"):

                def run(
                    fn: Callable[..., Any], scope: str | None = scope, first: date = first, last: date = last
                ) -> Any:
                    with db.connect() as conn:
                        return fn(
                            conn, catalogue, calendar, period_start=first, period_end=last, department=scope
                        )

                new, old = run(figures), run(scan_figures)
                if new.to_dict() != old.to_dict():
                    print(f"MISMATCH {label} {scope}: the summary differs from the scan", file=sys.stderr)
                    return 1
                spent_ms = timed_rounds(
                    {"scan": lambda: run(scan_figures), "summary": lambda: run(figures)}, args.rounds
                )
                scan, summary = spent_ms["scan"], spent_ms["summary"]
                print(
                    f"{label:<9}{scope or 'centre':<8}{new.centre.received:>8}"
                    f"{statistics.median(scan):>10.1f}{percentile(scan, 0.95):>8.1f}"
                    f"{statistics.median(summary):>13.1f}{percentile(summary, 0.95):>8.1f}"
                    f"{statistics.median(scan) / statistics.median(summary):>7.1f}"
                )
        print("(ms; figures identical on both paths for every row above)")
        print(f"one summary write (upsert of a received case): {write_cost(db):.3f} ms (median)")
        if db.dialect.name == "postgresql":
            print("EXPLAIN ANALYZE of the year's summary read (centre):")
            for line in explain_summary(db, PERIODS[2][1], PERIODS[2][2]):
                print("  " + line)
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
