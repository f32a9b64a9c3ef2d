"""Live workflows kept per process: the object a committed step left, reused while its version holds.

A process keeps the live workflow of the instances it last moved, tagged with the version it committed. A
command whose row still has that version takes the object instead of rebuilding it from the stored JSON
(the JSON stays the truth: any other version, or a rolled-back command, and the object is gone). Taking
removes it, so two threads never share one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from engine.workflow import ReadyTask, Runtime

LIVE_INSTANCES = 500  # live workflows kept per process


@dataclass(frozen=True)
class Live:
    """A live workflow as a committed step left it: its version, its ready tasks and pending timers."""

    instance_id: str
    business_key: str | None
    version: int
    runtime: Runtime
    ready: dict[str, ReadyTask]
    timers: dict[str, datetime]


class LiveWorkflows:
    """The bounded, thread-safe cache of live workflows of one process."""

    def __init__(self, capacity: int = LIVE_INSTANCES) -> None:
        self.capacity = capacity
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._of_task: dict[str, str] = {}  # ready task id -> instance id
        self._lock = threading.Lock()

    def take(self, instance_id: str, version: int) -> Live | None:
        """The kept workflow of ``instance_id`` if it has ``version``; any kept copy is dropped."""
        with self._lock:
            live = self._pop(instance_id)
        return live if live is not None and live.version == version else None

    def take_of_task(self, task_id: str) -> Live | None:
        """The live workflow in which ``task_id`` was ready when this process last committed it."""
        with self._lock:
            instance_id = self._of_task.get(task_id)
            return self._pop(instance_id) if instance_id is not None else None

    def keep(self, live: Live) -> None:
        with self._lock:
            kept = self._pop(live.instance_id)
            if kept is not None and kept.version > live.version:
                live = kept
            self._live[live.instance_id] = live
            self._of_task.update(dict.fromkeys(live.ready, live.instance_id))
            while len(self._live) > self.capacity:
                self._pop(next(iter(self._live)))

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._live

    def _pop(self, instance_id: str) -> Live | None:
        live = self._live.pop(instance_id, None)
        for task_id in live.ready if live is not None else ():
            self._of_task.pop(task_id, None)
        return live
