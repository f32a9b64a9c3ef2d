"""One instance of a test model driven command by command: kept in memory (``live``), restored from the
stored spec after every command (``restored``), or unpruned (``full``, SpiffWorkflow's whole tree)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.workflow import Definition, Runtime, load_definitions

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
MODES = ("live", "restored", "full")


class Driven:
    def __init__(self, model: bytes, mode: str) -> None:
        self.defn = load_definitions(model)["p"]
        self.mode = mode
        self.rt = self._again(Runtime.start(self.defn, {}, NOW, pruning=mode != "full"))

    def _again(self, rt: Runtime) -> Runtime:
        if self.mode != "restored":
            return rt
        return Runtime.restore(Definition.from_spec_json(self.defn.spec_json()), rt.dump(), NOW)

    def ready(self) -> list[str]:
        return sorted(t.element_id for t in self.rt.ready_tasks())

    def complete(self, element_id: str, **data: Any) -> dict[str, Any]:
        """Complete the one ready task of ``element_id`` with ``data``; the instance's data after it."""
        [task] = [t for t in self.rt.ready_tasks() if t.element_id == element_id]
        self.rt.complete(task.task_id, data, NOW)
        self.rt = self._again(self.rt)
        return self.rt.data
