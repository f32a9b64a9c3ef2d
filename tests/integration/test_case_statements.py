"""The SQL statements a full case of each flow sends through the case service, pinned per database.

A regression in the case path (a row read twice, a write per clock or audit event again) shows here as a
count over its bound; the bound is what the case path costs today (issue 12: at most 2 statements per step
beyond the engine's own is the target). Counted as ``bench/case_flows.py`` counts them: a
``before_cursor_execute`` listener around the case's commands, the demo scenario of each flow driven as
the benchmark drives it. Nothing is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

from bench.case_flows import FLOWS, Ready, _drive, per_step
from engine.bootstrap import bootstrap, deploy_bundled_processes
from engine.demo import DemoClock, load_scenarios
from engine.persistence.database import unit_of_work
from engine.settings import Settings

# flow -> statements of one full case (submit and every step), per database; measured before issue 12:
# single window 74, joint approval 96, tolerant acceptance 95 (PostgreSQL)
BOUNDS = {
    "postgresql": {"single_window": 17, "joint_approval": 21, "tolerant_acceptance": 28},
    "sqlite": {"single_window": 59, "joint_approval": 73, "tolerant_acceptance": 74},
}


class _Counter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements += per_step(statement)

    def __enter__(self) -> _Counter:
        self.statements = 0
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


@pytest.fixture
def driven(db: Engine) -> Iterator[tuple[Engine, Any]]:
    clock = DemoClock()
    svc = bootstrap(Settings(database_url="sqlite://"), clock=clock, migrate=False, engine=db)
    deploy_bundled_processes(svc)
    with unit_of_work(db) as conn:
        by_label = {label: (app, when, steps) for label, app, when, steps in load_scenarios(conn)}
    ready = Ready()
    svc.workflow.observers.append(ready)

    def drive(flow: str) -> tuple[int, int]:
        application, when, steps = by_label[FLOWS[flow]]
        with _Counter(db) as counter:
            commands = _drive(svc, clock, ready, application, when, steps)
        return commands, counter.statements

    yield db, drive


@pytest.mark.parametrize("flow", list(FLOWS))
def test_a_full_case_sends_no_more_statements_than_pinned(driven, flow: str) -> None:
    engine, drive = driven
    drive(flow)  # the first case of a run warms the caches (definitions, prepared statements)
    commands, statements = drive(flow)
    bound = BOUNDS[engine.dialect.name][flow]
    assert statements <= bound, f"{flow}: {statements} statements in {commands} commands (bound {bound})"
