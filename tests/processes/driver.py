"""A small driver for the models: every step is followed by a dump and a restore (SpiffWorkflow habit).

Each case also runs a shadow: the same model with pruning off (SpiffWorkflow's full tree, see
``engine.workflow.pruning``), given the same commands. After every step the pruned case must show what the
shadow shows: the ready tasks (in order, with their data), the case data, the timers and messages waiting.
Cases driven through hundreds of rounds switch the shadow off (``shadow=False``): the full tree is what
does not scale.
"""

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


def _view(rt: Runtime) -> dict[str, Any]:
    """What a case shows the service layer, without task ids (the shadow's ids are its own)."""
    return {
        "ready": [(t.element_id, t.multi_instance_index, t.data) for t in rt.ready_tasks()],
        "data": rt.data,
        "timers": [(t.element_id, t.due_at) for t in rt.pending_timers()],
        "messages": sorted((m.element_id, m.message_name) for m in rt.pending_messages()),
        "completed": rt.completed,
    }


class Case:
    def __init__(self, process_id: str, data: dict[str, Any], now: datetime, *, shadow: bool = True) -> None:
        self.defn = definition(process_id)
        self.now = now
        self.rt = Runtime.start(self.defn, data, now)
        self.shadow = Runtime.start(self.defn, data, now, pruning=False) if shadow else None
        self.steps = 0
        self.observed: list[
            str
        ] = []  # case_status changes seen after each step, as the service layer sees them
        self.history: list[dict[str, Any]] = []  # every status_history entry, the model keeps the last ones
        self._roundtrip()

    def _roundtrip(self) -> None:
        state = self.rt.dump()
        self.rt = Runtime.restore(self.defn, state, self.now)
        assert json.loads(self.rt.dump()) == json.loads(state), "dump -> restore -> dump changed the state"
        if self.shadow is not None:
            self.shadow = Runtime.restore(self.defn, self.shadow.dump(), self.now, pruning=False)
            assert _view(self.rt) == _view(self.shadow), "the pruned case differs from the full tree"
        self.steps += 1
        entries = self.rt.data.get("status_history") or []
        seen = self.history[-1]["n"] if self.history else 0
        self.history += [e for e in entries if e["n"] > seen]
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
        if self.shadow is not None:  # the same task of the shadow: same place in the same ordered list
            position = [t.task_id for t in self.rt.ready_tasks()].index(task.task_id)
            self.shadow.complete(self.shadow.ready_tasks()[position].task_id, data, self.now)
        self.rt.complete(task.task_id, data, self.now)
        self._roundtrip()
        return self

    # ------------------------------------------------------------ events
    def fire_timers(self) -> list[str]:
        fired = self.rt.fire_due_timers(self.now)
        if self.shadow is not None:
            assert self.shadow.fire_due_timers(self.now) == fired
        self._roundtrip()
        return fired

    def deliver(self, name: str, payload: dict[str, Any] | None = None) -> bool:
        caught = self.rt.deliver_message(name, payload or {}, self.now)
        if self.shadow is not None:
            assert self.shadow.deliver_message(name, payload or {}, self.now) == caught
        self._roundtrip()
        return caught

    # ------------------------------------------------------------ state
    @property
    def data(self) -> dict[str, Any]:
        return self.rt.data

    @property
    def statuses(self) -> list[str]:
        return [entry["status"] for entry in self.history]

    @property
    def completed(self) -> bool:
        return self.rt.completed
