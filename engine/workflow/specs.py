"""Our task-spec classes: multi-instance tasks whose branches never overwrite each other.

SpiffWorkflow merges every finished branch's data into the parent with a deep merge unless the model
names an output collection and output item, so two officers' decisions on the same key overwrite
each other. Our multi-instance specs keep the standard behaviour when both ``loopDataOutputRef`` and
``outputDataItem`` are modelled; otherwise each branch's *changes* (keys it added or changed, minus
the input item) are collected into ``<element id>_results`` (or ``ow:resultsVariable``): a list
indexed like the input list / cardinality, or a dict keyed like the input dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import ParallelMultiInstanceTask, SequentialMultiInstanceTask
from SpiffWorkflow.util.task import TaskState


def branch_index(child: Any) -> Any:
    """The key/index a multi-instance branch works on (None when not a branch)."""
    key = child.internal_data.get("key_or_index")
    return key if key is not None else child.internal_data.get("item")


class _CollectingMixin:
    """Replacement for ``MultiInstanceTask.merge_child`` when no output item is modelled."""

    bpmn_id: str
    data_output: Any
    output_item: Any
    input_item: Any

    @property
    def results_variable(self) -> str:
        extensions = getattr(self, "extensions", None) or {}
        return extensions.get("ow_results") or f"{self.bpmn_id}_results"

    def _standard_output(self) -> bool:
        return self.data_output is not None and self.output_item is not None

    def _collect(self, child: Any) -> None:
        parent = child.parent
        skip = {self.input_item.bpmn_id} if self.input_item is not None else set()
        skip.add(self.results_variable)
        changes = {
            key: value
            for key, value in child.data.items()
            if key not in skip and (key not in parent.data or parent.data[key] != value)
        }
        index = branch_index(child)
        name = self.results_variable
        if isinstance(index, int) and not isinstance(index, bool):
            results = parent.data.get(name)
            if not isinstance(results, list):
                results = []
            while len(results) <= index:
                results.append(None)
            results[index] = changes
        else:
            results = parent.data.get(name)
            if not isinstance(results, Mapping):
                results = {}
            results = dict(results)
            results[str(index)] = changes
        parent.data[name] = results
        parent.internal_data["merged"].append(str(child.id))


class OwParallelMultiInstanceTask(_CollectingMixin, ParallelMultiInstanceTask):
    def merge_child(self, workflow: Any, child: Any) -> None:
        if self._standard_output():
            super().merge_child(workflow, child)
            return
        self._collect(child)
        my_task = child.parent
        if self.check_completion_condition(my_task):
            for other in self._instances(my_task):
                other.cancel()
            my_task._set_state(TaskState.READY)
        elif self.children_complete(my_task):
            my_task._set_state(TaskState.READY)


class OwSequentialMultiInstanceTask(_CollectingMixin, SequentialMultiInstanceTask):
    def merge_child(self, workflow: Any, child: Any) -> None:
        if self._standard_output():
            super().merge_child(workflow, child)
            return
        self._collect(child)
        my_task = child.parent
        if self.children_complete(my_task) or self.check_completion_condition(my_task):
            my_task._set_state(TaskState.READY)
        else:
            self.add_next_child(my_task)
