"""A small driver for the models: every step is followed by a dump and a restore (SpiffWorkflow habit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

from engine.assignment import resolve_candidate_groups
from engine.workflow import Definition, ReadyTask, Runtime, load_definitions
from processes.catalogue import PROCESS_DIR

SHANGHAI = timezone(timedelta(hours=8))


def shanghai(*args: int) -> datetime:
    """A Shanghai wall-clock moment as an aware UTC datetime (what the engine is given)."""
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


@cache
def definitions(filename: str) -> dict[str, Definition]:
    return load_definitions((PROCESS_DIR / filename).read_bytes(), filename)


def definition(process_id: str) -> Definition:
    return definitions(f"{process_id}.bpmn")[process_id]


class Case:
    def __init__(self, process_id: str, data: dict[str, Any], now: datetime) -> None:
        self.defn = definition(process_id)
        self.now = now
        self.rt = Runtime.start(self.defn, data, now)
        self.steps = 0
        self.observed: list[
            str
        ] = []  # case_status changes seen after each step, as the service layer sees them
        self._roundtrip()

    def _roundtrip(self) -> None:
        state = self.rt.dump()
        self.rt = Runtime.restore(self.defn, state, self.now)
        assert json.loads(self.rt.dump()) == json.loads(state), "dump -> restore -> dump changed the state"
        self.steps += 1
        status = self.rt.data.get("case_status")
        if status is not None and (not self.observed or self.observed[-1] != status):
            self.observed.append(status)

    def at(self, now: datetime) -> Case:
        assert now >= self.now, "the clock only moves forward"
        self.now = now
        return self

    # ------------------------------------------------------------ tasks
    def ready(self, element_id: str | None = None) -> list[ReadyTask]:
        tasks = self.rt.ready_tasks()
        return [t for t in tasks if element_id is None or t.element_id == element_id]

    def ready_ids(self) -> list[str]:
        return sorted(t.element_id for t in self.rt.ready_tasks())

    def task(self, element_id: str) -> ReadyTask:
        tasks = self.ready(element_id)
        assert len(tasks) == 1, f"expected one ready {element_id}, got {self.ready_ids()}"
        return tasks[0]

    def groups(self, task: ReadyTask) -> tuple[str, ...]:
        return resolve_candidate_groups(task.meta.candidate_groups, task.data)

    def complete(self, element_id: str, **data: Any) -> Case:
        return self.complete_task(self.task(element_id), **data)

    def complete_task(self, task: ReadyTask, **data: Any) -> Case:
        self.rt.complete(task.task_id, data, self.now)
        self._roundtrip()
        return self

    # ------------------------------------------------------------ events
    def fire_timers(self) -> list[str]:
        fired = self.rt.fire_due_timers(self.now)
        self._roundtrip()
        return fired

    def deliver(self, name: str, payload: dict[str, Any] | None = None) -> bool:
        caught = self.rt.deliver_message(name, payload or {}, self.now)
        self._roundtrip()
        return caught

    # ------------------------------------------------------------ state
    @property
    def data(self) -> dict[str, Any]:
        return self.rt.data

    @property
    def statuses(self) -> list[str]:
        return [entry["status"] for entry in self.data["status_history"]]

    @property
    def completed(self) -> bool:
        return self.rt.completed
