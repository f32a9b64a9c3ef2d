"""What one command does to one instance: its context for observers, its result, task due dates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from engine.persistence.steps import CaseWrite
from engine.time.calendar import WorkingCalendar
from engine.time.clocks import Clock as DeadlineClock
from engine.workflow import ReadyTask, Runtime
from engine.workflow.api import TaskMeta

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deployed:
    definition_id: int
    key: str
    version: int
    checksum: str
    created: bool  # False when the same BPMN was already the latest version


@dataclass
class StepContext:
    """What one command did to one instance; handed to observers inside the transaction, before the
    instance's new state is written (its version check refuses a lost race after them: the transaction
    rolls back whatever they did)."""

    conn: Connection
    instance_id: str
    business_key: str | None
    runtime: Runtime
    now: datetime
    actor: str
    action: str
    completed: ReadyTask | None = None  # the task a person completed in this step, and what they entered
    entered: dict[str, Any] = field(default_factory=dict)
    opened: list[ReadyTask] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # every task that left the ready state
    ready_after: list[ReadyTask] = field(default_factory=list)
    due: dict[str, datetime] = field(default_factory=dict)  # opened task -> due date from camunda:dueDate
    observed: bool = False  # the engine's part of the step ran: the observers run now, or ran
    state_written: bool = False  # the new state passed its version check (observers run before that)
    notes: dict[str, Any] = field(default_factory=dict)  # what observers tell the caller (StepResult.notes)
    case_write: CaseWrite | None = None  # what an observer writes to the case, in the step's statement
    _data: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def data(self) -> dict[str, Any]:
        """The workflow data after the step: copied once per step and shared by the engine and its
        observers, so read it, never change it."""
        if self._data is None:
            self._data = self.runtime.data
        return self._data

    @property
    def suspending_open(self) -> bool:
        """Whether a task that suspends the case clock (waiting on the applicant) is open after the step."""
        return any(t.meta.suspends_case_clock for t in self.ready_after)


StepObserver = Callable[[StepContext], None]


@dataclass(frozen=True)
class OpenedTask:
    """A task a command opened, as its row was written."""

    id: str
    element_id: str
    name: str | None
    candidate_groups: tuple[str, ...]


@dataclass(frozen=True)
class StepResult:
    """What a command left behind: the instance, the tasks it opened, the instance status, and what the
    step's observers noted (the case lifecycle: ``case_status``)."""

    instance_id: str
    status: str
    opened: tuple[OpenedTask, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def opened_tasks(self) -> tuple[str, ...]:
        """The ids of the tasks the command opened, in the order it opened them."""
        return tuple(t.id for t in self.opened)


def default_due(meta: TaskMeta, created: datetime, calendar: WorkingCalendar) -> datetime | None:
    """Task deadline from the model: working days on the Chinese calendar (0: the day it opens, 即办), or
    plain hours."""
    if meta.deadline_hours:
        return created + timedelta(hours=float(meta.deadline_hours))
    if meta.deadline_days is not None:
        return DeadlineClock(kind="task", started_at=created, limit_days=int(meta.deadline_days)).due_at(
            calendar
        )
    return None
