"""The workflow adapter's public surface: plain data types the rest of onewindow uses.

Nothing in this module imports SpiffWorkflow; the implementation modules of ``engine.workflow``
are the only ones that do. Service layer, persistence, API and tests talk to the engine through
``engine.workflow`` (``load_definitions``, ``validate_document``, ``Runtime``) and these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engine.errors import Problem

OW_NS = "http://onewindow.org/schema/bpmn"
"""Our BPMN extension namespace (prefix ``ow``)."""

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"

ClockKind = Literal["legal", "promised", "task", "none"]


@dataclass(frozen=True)
class TaskMeta:
    """What the model says about a user task: assignment, form and deadline."""

    element_id: str
    name: str
    candidate_groups: tuple[str, ...] = ()
    candidate_users: tuple[str, ...] = ()
    assignee: str | None = None
    form_key: str | None = None
    deadline_days: float | None = None  # working days
    deadline_hours: float | None = None  # calendar hours
    due_expression: str | None = None  # camunda:dueDate (sandboxed expression or ISO date), as written
    due_source: str | None = None  # what the sandbox evaluates for it when it was JUEL (translated once)
    warn_ratio: float | None = None  # yellow when this share of the limit is used (0..1)
    clock: ClockKind = "task"
    suspends_case_clock: bool = False
    lane: str | None = None


@dataclass(frozen=True)
class ProcessReport:
    """The validator's verdict on one process of one document."""

    process_id: str
    name: str | None
    executable: bool
    problems: tuple[Problem, ...] = ()
    notes: tuple[Problem, ...] = ()
    """What the validator changed or read differently from the drawing, without refusing it (an implicit
    split run as a parallel split, a message correlated by the event's name): same shape as a problem."""
    groups: tuple[tuple[str, str, int | None], ...] = ()
    """The candidate groups its user tasks name outright (lanes included): (element id, group, line).
    A placeholder is not listed: it names a group only at run time. Which groups exist is the
    installation's (its departments), not the document's: :func:`engine.modelling.with_group_notes`."""


@dataclass(frozen=True)
class DocumentReport:
    filename: str
    processes: tuple[ProcessReport, ...]
    document_problems: tuple[Problem, ...] = ()

    @property
    def executable(self) -> bool:
        return (
            bool(self.processes) and all(p.executable for p in self.processes) and not self.document_problems
        )


@dataclass(frozen=True)
class ReadyTask:
    """A user task waiting for a person (the row the inbox projection is made from)."""

    task_id: str  # SpiffWorkflow task uuid, as str
    element_id: str
    name: str
    meta: TaskMeta
    data: dict[str, Any] = field(default_factory=dict)
    multi_instance_index: int | None = None  # which branch of a multi-instance, if any


@dataclass(frozen=True)
class PendingTimer:
    task_id: str
    element_id: str
    due_at: datetime  # aware, UTC


@dataclass(frozen=True)
class StartedEventSubprocess:
    """An event sub-process whose event came in one engine call (what the audit log records of it)."""

    element_id: str  # the event sub-process
    start_event_id: str  # its start event, whose event came
    interrupting: bool
    cancelled: tuple[tuple[str, str], ...] = ()  # the person's tasks it cancelled: (task id, element id)


@dataclass(frozen=True)
class PendingMessage:
    """A catch event / receive task waiting for a named message."""

    task_id: str
    element_id: str
    message_name: str
