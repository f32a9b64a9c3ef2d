"""The three flows through the case service, each beside the workflow service driving the same model.

A full case of each flow is driven as the demo drives it (``engine.demo.scenarios``: the officer's and
the applicant's steps, the clock moved between them): submit, then every step through
``CaseService.complete_task`` (and ``supply_materials`` for the tolerant case). What the case service
handed the workflow service (the start data, each completed task with its data, each message) is recorded
and replayed through a bare ``WorkflowService`` on the same database and models: the baseline, the
engine's own cost of the same case. Both are timed per case and their SQL statements counted (a
``before_cursor_execute`` listener).

Every case of a flow starts from the same licence library: the licences a case issued are removed after
it, untimed. The demo clock goes back to the scenario's day for every case, so they would pile up not
yet in force at the next submission, which would read (and report as skipped) every one of them: a
holder with hundreds of licences issued in its future, which no real applicant is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, event, select

from engine.bootstrap import Services, bootstrap, deploy_bundled_processes
from engine.demo import TODAY, DemoClock, Step, load_scenarios
from engine.persistence.database import unit_of_work
from engine.service import WorkflowService
from engine.settings import Settings
from engine.step import StepContext
from engine.time.calendar import local_date
from engine.workflow import ReadyTask
from licence.tables import licence_status_events, licences

__all__ = ["FLOWS", "FlowFigures", "measure_flows", "per_step"]

FLOWS = {
    "single_window": "一窗受理→审查→准予→出证（国庆前受理）",
    "joint_approval": "点餐式并联审批：三部门同意",
    "tolerant_acceptance": "容缺受理：春节前受理，按期补正后发证",
}
"""Flow -> the demo scenario driven for it (the happy path of each flow)."""


@dataclass
class Call:
    """One thing the case service asked of the workflow service, and the clock's time then."""

    at: datetime
    kind: str  # start | complete | message
    key: str = ""  # start: the process key
    data: dict[str, Any] = field(default_factory=dict)
    element_id: str = ""  # complete: the task's element and multi-instance index
    mi_index: int | None = None
    message: str = ""


@dataclass
class FlowFigures:
    flow: str
    steps: int
    case_ms: float
    case_statements: int
    workflow_ms: float
    workflow_statements: int

    @property
    def ratio(self) -> float:
        return self.case_ms / self.workflow_ms if self.workflow_ms else 0.0

    @property
    def beyond_per_step(self) -> float:
        """Statements per step the case service ran beyond the engine's own."""
        return (self.case_statements - self.workflow_statements) / max(self.steps, 1)


def per_step(statement: str) -> bool:
    """Whether a statement counts as the work of the step that sent it: not a ``PREPARE``, which a session
    runs once per statement shape (``engine.persistence.steps``) whatever step first needs it."""
    return not statement.startswith("PREPARE ")


class Counter:
    """SQL statements (:func:`per_step`) sent to the database while ``counting`` is on."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements += per_step(statement)

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.statements = 0
        yield


class Ready:
    """The ready tasks of every instance after its last step, as the workflow service's observers see
    them (no statement of its own)."""

    def __init__(self) -> None:
        self.of: dict[str, list[ReadyTask]] = {}  # business key or instance id -> ready tasks
        self.by_id: dict[str, ReadyTask] = {}

    def __call__(self, ctx: StepContext) -> None:
        self.of[ctx.business_key or ctx.instance_id] = list(ctx.ready_after)
        self.by_id.update({t.task_id: t for t in ctx.ready_after})

    def task(self, key: str, element_id: str, mi_index: int | None = None) -> ReadyTask:
        found = [t for t in self.of.get(key, []) if t.element_id == element_id]
        if mi_index is not None:
            found = [t for t in found if t.multi_instance_index == mi_index] or found
        if not found:
            raise RuntimeError(f"no ready task {element_id} in {key}")
        return sorted(found, key=lambda t: (t.multi_instance_index or 0, t.task_id))[0]


def _record(workflow: WorkflowService, ready: Ready, clock: DemoClock, calls: list[Call]) -> None:
    """Wrap the commands the case service uses on this ``workflow`` instance to record each call."""
    start_in, complete_in, message_in = (
        workflow.start_in,
        workflow.complete_task_in,
        workflow.correlate_message_in,
    )

    def start(conn: Any, key: str, data: dict[str, Any], actor: str, **kw: Any) -> Any:
        calls.append(Call(clock.now, "start", key=key, data=dict(data)))
        return start_in(conn, key, data, actor, **kw)

    def complete(conn: Any, task_id: str, data: dict[str, Any], actor: str, **kw: Any) -> Any:
        task = ready.by_id[task_id]
        calls.append(
            Call(
                clock.now,
                "complete",
                data=dict(data),
                element_id=task.element_id,
                mi_index=task.multi_instance_index,
            )
        )
        return complete_in(conn, task_id, data, actor, **kw)

    def message(conn: Any, name: str, payload: dict[str, Any], actor: str, **kw: Any) -> Any:
        calls.append(Call(clock.now, "message", data=dict(payload), message=name))
        return message_in(conn, name, payload, actor, **kw)

    workflow.start_in = start  # type: ignore[method-assign]
    workflow.complete_task_in = complete  # type: ignore[method-assign]
    workflow.correlate_message_in = message  # type: ignore[method-assign]


def _drive(
    svc: Services, clock: DemoClock, ready: Ready, application: Any, when: Any, steps: list[Step]
) -> int:
    """One case as the demo scenario goes; returns the number of commands (submit and steps)."""
    if isinstance(when, tuple):
        clock.at(*when)
    case_id = svc.cases.submit(application, "applicant")
    commands = 1
    for step in steps:
        if step.kind == "at":
            clock.at(*step.args)
            continue
        commands += 1
        if step.kind == "supply":
            svc.cases.supply_materials(case_id, list(step.args), "applicant")
        elif step.kind == "joint":
            branches = sorted(
                (t for t in ready.of[case_id] if t.element_id == "joint_review"),
                key=lambda t: (t.multi_instance_index or 0, t.task_id),
            )
            commands += len(branches) - 1
            for task, verdict in zip(branches, step.args, strict=True):
                svc.cases.complete_task(task.task_id, {"decision": verdict, "opinion": "审查意见"}, "officer")
        elif step.kind == "do":
            element, actor = step.args
            today = local_date(clock.now).isoformat()
            data = {k: today if v == TODAY else v for k, v in (step.data or {}).items()}
            svc.cases.complete_task(ready.task(case_id, element).task_id, data, actor)
        else:
            raise ValueError(f"bench: a scenario step {step.kind} has no counterpart here")
    return commands


def _remove_issued_licences(engine: Engine) -> None:
    """The licences the cases issued (and their status events): the library as the demo data left it."""
    issued = select(licences.c.id).where(licences.c.source_case.is_not(None))
    with unit_of_work(engine) as conn:
        conn.execute(delete(licence_status_events).where(licence_status_events.c.licence_id.in_(issued)))
        conn.execute(delete(licences).where(licences.c.source_case.is_not(None)))


def _replay(workflow: WorkflowService, clock: DemoClock, ready: Ready, calls: list[Call]) -> None:
    """The same case through the workflow service alone."""
    instance_id = ""
    for call in calls:
        clock.now = call.at
        if call.kind == "start":
            instance_id = workflow.start(call.key, call.data, "applicant").instance_id
        elif call.kind == "complete":
            task = ready.task(instance_id, call.element_id, call.mi_index)
            workflow.complete_task(task.task_id, call.data, "officer")
        else:
            workflow.correlate_message(call.message, call.data, "applicant", instance_id=instance_id)


def measure_flows(
    url: str, engine_factory: Callable[[str], tuple[Engine, Callable[[], None]]], cases: int, rounds: int
) -> list[FlowFigures]:
    """Each flow: ``cases`` cases through the case service and as many replays through the workflow
    service, taking turns for ``rounds`` rounds; per case the median time and the statements."""
    engine, drop = engine_factory(url)
    try:
        clock = DemoClock()
        svc = bootstrap(Settings(database_url=url), clock=clock, engine=engine)
        deploy_bundled_processes(svc)
        with unit_of_work(engine) as conn:
            by_label = {label: (app, when, steps) for label, app, when, steps in load_scenarios(conn)}
        ready, calls = Ready(), list[Call]()
        svc.workflow.observers.append(ready)
        _record(svc.workflow, ready, clock, calls)
        baseline_ready = Ready()
        baseline = WorkflowService(
            engine, clock=clock, observers=[baseline_ready], calendar=svc.calendar, limits=svc.workflow.limits
        )
        counter = Counter(engine)
        out: list[FlowFigures] = []
        for flow, label in FLOWS.items():
            application, when, steps = by_label[label]
            case_ms: list[float] = []
            flow_ms: list[float] = []
            case_statements = flow_statements = commands = 0
            for _ in range(rounds):
                for _ in range(cases):
                    calls.clear()
                    with counter.counting():
                        started = time.perf_counter()
                        commands = _drive(svc, clock, ready, application, when, steps)
                        case_ms.append((time.perf_counter() - started) * 1000)
                    case_statements = counter.statements
                    _remove_issued_licences(engine)
                    recorded = list(calls)
                    with counter.counting():
                        started = time.perf_counter()
                        _replay(baseline, clock, baseline_ready, recorded)
                        flow_ms.append((time.perf_counter() - started) * 1000)
                    flow_statements = counter.statements
            out.append(
                FlowFigures(
                    flow,
                    commands,
                    statistics.median(case_ms),
                    case_statements,
                    statistics.median(flow_ms),
                    flow_statements,
                )
            )
        return out
    finally:
        drop()


def print_flows(figures: list[FlowFigures], dialect: str) -> None:
    header = (
        f"{'flow (' + dialect + ')':<26}{'steps':>6}{'case ms':>9}{'stmts':>7}{'workflow ms':>13}{'stmts':>7}"
        f"{'ratio':>7}{'beyond/step':>13}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        print(
            f"{f.flow:<26}{f.steps:>6}{f.case_ms:>9.1f}{f.case_statements:>7}{f.workflow_ms:>13.1f}"
            f"{f.workflow_statements:>7}{f.ratio:>7.2f}{f.beyond_per_step:>13.1f}"
        )
