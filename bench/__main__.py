"""Benchmark: the same models three ways in one process, then the three flows through the case service.

    python -m bench [--cases N] [--pg-url URL] [--flow-cases N] [--flows-only]      (or: onewindow bench)

The database is one of its own, never the test suite's: ``onewindow_bench`` on the local PostgreSQL
(made when missing; each run works in a schema of its own and drops it). ``--pg-url`` takes the forms
``ONEWINDOW_DATABASE_URL`` takes (``postgresql://``, ``postgres://``, ``postgresql+psycopg2://``).

1. raw SpiffWorkflow in memory;
2. raw SpiffWorkflow with a full JSON save+load after every step (the baseline);
3. onewindow's service layer, every step one transaction, on SQLite and on PostgreSQL
   (start the case, then read the instance's ready tasks and complete them until the case ends).

The last line is ``ratio <persisted_pg/raw_json>`` for the single-window model (target >= 0.5): cases per
second through the service layer on PostgreSQL with ``--clients`` client threads in this one process, over
the better of the baseline run with one thread and with as many threads. The baseline spends one core and
never waits; our Python also stays on one core (one process, one GIL) while its waits on the database
overlap, as a server's requests do. The line before it gives the one-client ratio and splits a case into
our CPU and its waits on PostgreSQL (four commits in a row, which one client cannot overlap).

Then one row per flow (single window, joint approval, tolerant acceptance; bench/case_flows.py): a full
case through the case service, milliseconds and SQL statements per case, beside the workflow service
driving the same model with the same data (the baseline), their ratio and the statements per step the
case layer adds (targets: ratio <= 1.5, at most 2 statements per step beyond the engine's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select, text

from bench.case_flows import measure_flows, print_flows
from bench.databases import own_database
from engine.persistence.database import make_engine
from engine.persistence.schema import upgrade
from engine.persistence.tables import instances
from engine.service import WorkflowService
from engine.workflow.baseline import raw_cases, raw_state_size

MODELS = Path(__file__).resolve().parent / "models"
BENCH_MODELS = [
    ("single_window_3.bpmn", "bench_single_window"),
    ("joint_parallel_3.bpmn", "bench_joint_parallel"),
]
DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/onewindow_bench"


def rate(cases: int, fn: Callable[[], None]) -> float:
    return timed(cases, fn)[0]


def timed(cases: int, fn: Callable[[], None]) -> tuple[float, float]:
    """Cases per second, and milliseconds of this process's CPU per case."""
    started, cpu = time.perf_counter(), time.process_time()
    fn()
    return cases / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / cases


def persisted_cases(
    engine: Engine, bpmn: bytes, process_id: str, cases: int, clients: int = 1
) -> tuple[float, float]:
    """Through the service layer, ``clients`` threads running cases side by side: cases per second, and
    milliseconds of this process's CPU per case."""
    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    service = WorkflowService(engine, clock=lambda: now)
    service.deploy(bpmn, "bench.bpmn", "bench")

    def one_case(_: int) -> None:
        result = service.start(process_id, {"applicant": "张三"}, "bench")
        ready = list(result.opened_tasks)
        while ready:  # every command returns the tasks it opened, as the API does
            result = service.complete_task(ready.pop(0), {"ok": True}, "officer")
            ready.extend(result.opened_tasks)
        assert result.status == "completed"

    def run() -> None:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one_case, range(cases)))

    return timed(cases, run)


def raw_json_threads(bpmn: bytes, process_id: str, cases: int, clients: int) -> float:
    """The baseline with ``clients`` threads sharing the cases (the GIL: about the one-thread figure)."""
    per_thread = max(1, cases // clients)

    def run() -> None:
        with ThreadPoolExecutor(clients) as pool:
            work = [(bpmn, process_id, per_thread)] * clients
            list(pool.map(lambda w: raw_cases(*w, json_round_trip=True), work))

    return rate(per_thread * clients, run)


def commit_ms(engine: Engine, rounds: int = 200) -> float:
    """Milliseconds per transaction of one small UPDATE and its durable commit: a command's least I/O."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_floor (n integer)"))
        conn.execute(text("INSERT INTO bench_floor VALUES (0)"))
    started = time.perf_counter()
    for _ in range(rounds):
        with engine.begin() as conn:
            conn.execute(text("UPDATE bench_floor SET n = n + 1"))
    return (time.perf_counter() - started) * 1000 / rounds


def our_state_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(text("max(length(state))")).select_from(instances)).scalar() or 0)


def pg_engine(url: str) -> tuple[Engine, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    engine = make_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    upgrade(engine)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
        parser.add_argument("--cases", type=int, default=300)
        parser.add_argument(
            "--pg-url", default=DEFAULT_PG, help=f"PostgreSQL database (default {DEFAULT_PG})"
        )
        parser.add_argument("--clients", type=int, default=4)
        parser.add_argument("--rounds", type=int, default=3, help="each figure is the median of the rounds")
        parser.add_argument("--flow-cases", type=int, default=10, help="cases per flow and round")
        parser.add_argument("--flows-only", action="store_true", help="only the case flows")
        args = parser.parse_args()
    pg_url = own_database(getattr(args, "pg_url", None) or DEFAULT_PG)
    flow_cases = getattr(args, "flow_cases", 10)
    if getattr(args, "flows_only", False):
        print_flows(measure_flows(pg_url, pg_engine, flow_cases, args.rounds), "postgresql")
        return 0
    n, clients = args.cases, args.clients
    many = f"{clients}cl"
    header = (
        f"{'model':<22}{'raw mem/s':>10}{'raw json/s':>11}{f'json {many}/s':>11}{'sqlite/s':>10}"
        f"{'pg/s':>8}{f'pg {many}/s':>10}{'state B ours/raw':>18}"
    )
    print(
        f"cases per model: {n}; each figure the median of {args.rounds} rounds; one process; every persisted "
        f"step is one transaction; '{many}': {clients} client threads (the GIL keeps Python on one core)"
    )
    print(header)
    print("-" * len(header))
    ratio = ratio_one = single_window_js = one_cpu_ms = one_wall_ms = floor_ms = 0.0
    for filename, process_id in BENCH_MODELS:
        bpmn = (MODELS / filename).read_bytes()
        samples: dict[str, list[float]] = defaultdict(list)
        with tempfile.TemporaryDirectory() as tmp:
            lite = make_engine(f"sqlite:///{tmp}/bench.db")
            upgrade(lite)
            pg, drop = pg_engine(pg_url)
            try:
                for _ in range(args.rounds):  # the variants take turns, so a noisy minute hits them all
                    samples["mem"].append(
                        rate(n, lambda b=bpmn, p=process_id: raw_cases(b, p, n, json_round_trip=False))
                    )
                    samples["js"].append(
                        rate(n, lambda b=bpmn, p=process_id: raw_cases(b, p, n, json_round_trip=True))
                    )
                    samples["js_many"].append(raw_json_threads(bpmn, process_id, n, clients))
                    samples["lite"].append(persisted_cases(lite, bpmn, process_id, n)[0])
                    pg_rate, pg_cpu_ms = persisted_cases(pg, bpmn, process_id, n)
                    samples["pg"].append(pg_rate)
                    samples["pg_cpu_ms"].append(pg_cpu_ms)
                    samples["pg_many"].append(persisted_cases(pg, bpmn, process_id, n, clients)[0])
                size = our_state_size(pg)
                floor_ms = floor_ms or commit_ms(pg)
            finally:
                drop()
                lite.dispose()
        m = {name: statistics.median(values) for name, values in samples.items()}
        raw_size = raw_state_size(bpmn, process_id)
        print(
            f"{process_id:<22}{m['mem']:>10.0f}{m['js']:>11.0f}{m['js_many']:>11.0f}{m['lite']:>10.0f}"
            f"{m['pg']:>8.0f}{m['pg_many']:>10.0f}{f'{size}/{raw_size}':>18}"
        )
        if not ratio:  # the single-window model
            single_window_js = m["js"]
            ratio, ratio_one = m["pg_many"] / max(m["js"], m["js_many"]), m["pg"] / m["js"]
            one_cpu_ms, one_wall_ms = m["pg_cpu_ms"], 1000 / m["pg"]
    print(
        "baseline (shared/PERFORMANCE.md, this machine kind): single window ~1,800/s in memory, ~330/s JSON"
    )
    print(
        f"one client: persisted_pg/raw_json = {ratio_one:.2f}; a case takes {one_cpu_ms:.1f} ms of our CPU "
        f"(raw json: {1000 / single_window_js:.1f} ms) plus {one_wall_ms - one_cpu_ms:.1f} ms waiting on "
        f"PostgreSQL for its 4 transactions (a bare commit takes {floor_ms:.2f} ms here)"
    )
    print(
        f"with {clients} client threads (the waits overlap; Python stays on one core), over the better "
        "of the two baselines:"
    )
    print(f"ratio {ratio:.2f}")
    print(
        f"\nfull cases, {flow_cases} per flow and round, the median of {args.rounds} rounds; the baseline: "
        "the workflow service driving the same model with the same data"
    )
    print_flows(measure_flows(pg_url, pg_engine, flow_cases, args.rounds), "postgresql")
    return 0


if __name__ == "__main__":
    sys.exit(main())
