"""Benchmark: a single-window case returned for rework N times (issue 12, DESIGN rule 5).

    python -m bench.rework [--returns 1,200,1000] [--samples 10] [--full-returns 1,150,200] [--db URL]

Drives the bundled ``processes/single_window.bpmn`` through the workflow service (every step one
transaction, SQLite in a temporary file unless ``--db`` names a database) to each number of returns,
reads the stored state's size and times the next ``--samples`` returns (a review step and a decision
step each). Each figure is printed beside the first row's, as a ratio (targets at 200 returns: step and
state at most 2x).

The rows marked ``full`` run with the adapter's pruning switched off: SpiffWorkflow's full tree, what the
engine stored before pruning existed. Past about 163 returns that tree fails every step with
``RecursionError`` (reported as ``too_deeply_nested``), which the table shows as the row's result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

import engine.workflow.runtime as runtime_module
from engine.errors import OneWindowError
from engine.persistence.database import make_engine
from engine.persistence.schema import upgrade
from engine.persistence.tables import instances, tasks
from engine.service import WorkflowService
from processes.catalogue import PROCESS_DIR, load_catalogue


@contextmanager
def pruning(enabled: bool) -> Iterator[None]:
    """The adapter's pruning on (the engine as it runs) or off (the full tree, for the 'before' figures)."""
    original = runtime_module.prune
    if not enabled:
        runtime_module.prune = lambda workflow: 0
    try:
        yield
    finally:
        runtime_module.prune = original


class ReworkCase:
    """One single-window case on its own workflow service, moved one return at a time."""

    def __init__(self, db: Engine, business_key: str) -> None:
        self.db = db
        self.now = datetime(2025, 9, 29, 1, 0, tzinfo=UTC)
        self.service = WorkflowService(db, clock=lambda: self.now)
        self.service.deploy((PROCESS_DIR / "single_window.bpmn").read_bytes(), "single_window.bpmn", "bench")
        data = load_catalogue().get("HC-001").start_data()
        started = self.service.start("single_window", data, "bench", business_key=business_key)
        self.instance_id = started.instance_id
        self.returns = 0
        self.complete("intake", decision="accept", opinion="")

    def complete(self, element: str, **data: Any) -> float:
        """Complete the one ready ``element`` task; the seconds the command took."""
        with self.db.connect() as conn:
            task_id = conn.execute(
                select(tasks.c.id).where(
                    tasks.c.instance_id == self.instance_id,
                    tasks.c.state == "ready",
                    tasks.c.element_id == element,
                )
            ).scalar_one()
        self.now += timedelta(seconds=30)
        started = time.perf_counter()
        self.service.complete_task(task_id, data, "bench")
        return time.perf_counter() - started

    def rework(self) -> float:
        """One return (review, then decision: rework); the mean seconds per step."""
        review = self.complete(
            "review", result="pass", opinion=str(self.returns), needs_special_procedure=False
        )
        decision = self.complete("decision", decision="rework", opinion="")
        self.returns += 1
        return (review + decision) / 2

    def state(self) -> tuple[int, int]:
        """The stored state's size in bytes and the number of tasks in its tree."""
        with self.db.connect() as conn:
            state = conn.execute(
                select(instances.c.state).where(instances.c.id == self.instance_id)
            ).scalar_one()
        return len(state.encode()), len(json.loads(state)["tasks"])


def run(db: Engine, label: str, targets: list[int], samples: int, enabled: bool) -> list[tuple[Any, ...]]:
    """Rows (label, returns, ms per step, (state bytes, tasks), result) for each target number of returns:
    the state as stored after that many returns, the median step of the ``samples`` returns after it."""
    rows: list[tuple[Any, ...]] = []
    with pruning(enabled):
        warm = ReworkCase(db, f"warm-{label}")  # caches (definition, statements) filled before the first row
        for _ in range(samples):
            warm.rework()
        case = ReworkCase(db, f"bench-{label}")
        for target in targets:
            size: tuple[int, int] | None = None
            try:
                while case.returns < target:
                    case.rework()
                size = case.state()
                step_ms = statistics.median(case.rework() for _ in range(samples)) * 1000
            except OneWindowError as exc:
                failed = f"fails at return {case.returns + 1}: {exc.code}"
                rows.append((label, target, None, size or case.state(), failed))
                break
            rows.append((label, target, step_ms, size, "ok"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rework", description=__doc__)
    parser.add_argument("--returns", default="1,200,1000", help="numbers of returns to measure at (pruned)")
    parser.add_argument("--full-returns", default="1,150,200", help="the same for the full tree ('' skips)")
    parser.add_argument("--samples", type=int, default=10, help="returns timed after each point (median)")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in a temporary file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(args.db or f"sqlite:///{tmp}/rework.db")
        upgrade(db)
        try:
            rows = run(db, "pruned", [int(n) for n in args.returns.split(",")], args.samples, True)
            if args.full_returns:
                full = [int(n) for n in args.full_returns.split(",")]
                rows += run(db, "full", full, args.samples, False)
        finally:
            db.dispose()
    print(
        f"single_window.bpmn through the workflow service on {db.dialect.name}; "
        f"ms/step: the median of the {args.samples} returns after the point"
    )
    header = (
        f"{'tree':<8}{'returns':>8}{'ms/step':>9}{'x first':>9}{'state B':>10}{'x first':>9}{'tasks':>7}"
        "  result"
    )
    print(header)
    print("-" * len(header))
    first: dict[str, tuple[float, int]] = {}
    for label, returns, step_ms, (size, tree), result in rows:
        base_ms, base_size = first.setdefault(label, (step_ms or 0.0, size))
        ms = f"{step_ms:.2f}" if step_ms is not None else "-"
        ms_ratio = f"{step_ms / base_ms:.1f}" if step_ms is not None and base_ms else "-"
        print(
            f"{label:<8}{returns:>8}{ms:>9}{ms_ratio:>9}{size:>10}{size / base_size:>9.1f}{tree:>7}  {result}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
