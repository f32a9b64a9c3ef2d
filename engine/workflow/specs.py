"""Our task-spec classes: multi-instance tasks whose branches never overwrite each other, parallel and
inclusive joins that merge what each branch changed, and an abstract task (``bpmn:task``, no type) that
passes through.

An abstract task is a pass-through in BPMN 2.0 ("a Task which is not further specified", 10.3.3: it does
no work) and in Camunda 7 ("behaves like a pass-through" in the engine). The library's ``NoneTask`` makes it
a manual task (``manual=True``), i.e. a wait for a person the model never named: ``OwNoneTask`` runs it as
an engine step instead.

SpiffWorkflow merges every finished branch's data into the parent with a deep merge unless the model
names an output collection and output item, so two officers' decisions on the same key overwrite each
other; with an output collection it keeps each branch's output item only, appended in the order the
branches finish, and drops whatever else a branch wrote. Our multi-instance specs:

* **Results.** With or without an output collection, each branch's *changes* (keys it added or changed,
  minus the input and output items) are collected into ``<element id>_results`` (or
  ``ow:resultsVariable``): a list indexed like the input list / cardinality, or a dict keyed like the
  input dict, made anew each time the activity runs (absent when no branch ran). Nothing a branch writes
  becomes a case variable by itself, so no branch overwrites another's (in Camunda it goes to the process
  scope, where the last write wins): a step after the activity reads the results
  (``any(r.get("hearing") for r in review_results)``).
* **Output collection** (``loopDataOutputRef`` + ``outputDataItem``): each branch's output item at the
  branch's place in the loop, as BPMN and Camunda 8 collect it (the order of the input collection or of
  the cardinality, not of completion; a list holds None for a branch that did not complete, e.g. when the
  completion condition ended the loop). A list output starts empty each time the activity runs, as
  Camunda 8 makes it anew (the library refused a non-empty one, and failed with a ``NameError`` on any
  existing one with a cardinality), so a loop can run the activity again; a dict output is updated (the
  library's rule), an input collection updated in place stays so.

Two bounds keep a multi-instance task affordable:

* **Branch limit.** The number of branches a collection or a cardinality opens is checked before the
  first branch exists (``use_branch_limit``, installed by ``Runtime`` from ``ONEWINDOW_MI_MAX_BRANCHES``):
  over it, ``InvalidInput(code="too_many_branches")`` naming the element and the limit.
* **No collection per branch.** SpiffWorkflow gives every branch a copy of the multi-instance task's data
  (a subprocess branch a deep copy), so a collection of N items cost N copies of N items. A branch sees
  the case data and its own item; the collection it iterates, the output collection and the collected
  results stay with the multi-instance task, which is where the merge writes them.

Joins (``OwParallelGateway``, ``OwInclusiveGateway``). Each branch of a fork works on its own copy of the
data, and the library's join deep-merges the copies of every arrived branch in arrival order, so a branch
that never touched a variable put its old copy back over what another branch wrote (``x = 1`` before the
fork, ``x = 2`` in one branch, ``x`` was 1 again when the other branch arrived last). In Camunda and
Flowable variables live in the process scope and a write is never reverted by a branch that did not make
it. Our joins merge, over the data at the fork (the branches' nearest common task, which pruning keeps),
only what each branch changed since the fork, in the order the branches arrived: a variable added or given
another value; a dict the fork held too is merged key by key by the same rule, any other value (a list
too) replaces the old one whole. Where two branches changed the same variable the later arrival wins
(Camunda: the later write). A variable a branch deleted is not deleted for the case: the library's merge
never removes one either, and the bundled tolerant acceptance drops its branch's copies with ``del``.

In a loop back through the fork, a join counts (to fire) and merges only the arrivals of its round: the
library keeps every task it ran and its joins count every instance of their spec, so in the second round
one branch's arrival plus the first round's made the join fire, and a first-round copy was merged over the
second round's. A firing consumes every arrival before it (``_counted``), the rule pruning applies at every
dump (``.pruning``), so a loop of script tasks that runs several rounds in one command joins as a stored
instance does.

The end of a scope (``OwMergingEndJoin``: the process's, an embedded sub-process's, a called process's,
whose data is the scope's result and so the output to the parent) merges the branches that ended at their
own end events by the same rule; the library's end join deep-merged every ended branch's copy, so a branch
that never wrote ``x`` and ended last put its copy from the split back. Each branch that ends is folded in
as it ends: over the data of the branches ended before it, what it changed since it parted from the last of
them (their nearest common task), kept in the arrival's internal data (``END_ARRIVAL``), so the join reads
only its last arrival and pruning keeps that one. Where two branches parted at different splits (nested),
the one that ends is compared with the split it shares with the branch that ended just before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import (
    CallActivity,
    InclusiveGateway,
    NoneTask,
    ParallelGateway,
    ParallelMultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.task import TaskState

from engine.errors import InvalidInput

from .event_subprocesses import OwEndJoin

_BRANCH_LIMIT: ContextVar[int | None] = ContextVar("onewindow_mi_branch_limit", default=None)


@contextmanager
def use_branch_limit(limit: int | None) -> Iterator[None]:
    """Bound the branches of every multi-instance task inside the ``with`` block (None: unbounded)."""
    token = _BRANCH_LIMIT.set(limit)
    try:
        yield
    finally:
        _BRANCH_LIMIT.reset(token)


def _not_a_collection(value: Any) -> str:
    return f"必须是列表或字典，而不是 {type(value).__name__}"


def branch_index(child: Any) -> Any:
    """The key/index a multi-instance branch works on (None when not a branch)."""
    key = child.internal_data.get("key_or_index")
    return key if key is not None else child.internal_data.get("item")


class _CollectingMixin:
    """Replacement for ``MultiInstanceTask.merge_child`` when no output item is modelled."""

    bpmn_id: str
    data_input: Any
    data_output: Any
    output_item: Any
    input_item: Any
    cardinality: Any

    # ---------------------------------------------------------------- branch limit
    def _check_branches(self, my_task: Any, count: Any) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidInput(
                "多实例的实例数必须是非负整数",
                code="bad_cardinality",
                element_id=self.bpmn_id,
                task_id=str(my_task.id),
                value=repr(count)[:80],
            )
        limit = _BRANCH_LIMIT.get()
        if limit is not None and count > limit:
            raise InvalidInput(
                f"多实例任务要开启 {count} 个分支，超过上限 {limit}",
                code="too_many_branches",
                element_id=self.bpmn_id,
                task_id=str(my_task.id),
                count=count,
                limit="mi_max_branches",
                setting="ONEWINDOW_MI_MAX_BRANCHES",
                max=limit,
            )

    def _check_input(self, my_task: Any) -> None:
        """The input collection exists and can be iterated, or a typed error naming it (not the library's
        ``TypeError: 'NoneType' object is not iterable``)."""
        name = getattr(self.data_input, "bpmn_id", None) or "?"
        try:
            value = self.data_input.get(my_task) if self.data_input.exists(my_task) else None
        except Exception:  # a data object the library cannot read: the same answer as a missing one
            value = None
        if value is None:
            raise self._collection_error(
                my_task, "输入", name, "missing_collection", "没有值：请在启动数据或前面的环节中提供这个列表"
            )
        if not isinstance(value, Iterable):
            raise self._collection_error(my_task, "输入", name, "bad_collection", _not_a_collection(value))

    def _collection_error(self, my_task: Any, side: str, name: str, code: str, what: str) -> InvalidInput:
        """A typed error of this activity's input or output (``side``) collection ``name``."""
        return InvalidInput(
            f"多实例的{side}集合 {name} {what}",
            code=code,
            element_id=self.bpmn_id,
            task_id=str(my_task.id),
            collection=name,
        )

    def _check_collection(self, my_task: Any) -> None:
        self._check_input(my_task)
        collection = self.data_input.get(my_task)
        if isinstance(collection, Sized):
            self._check_branches(my_task, len(collection))

    # ---------------------------------------------------------------- no collection per branch
    def _withheld(self, my_task: Any) -> set[str]:
        """Top-level task-data names a branch does not inherit (they stay with ``my_task``)."""
        names = {self.results_variable}
        for ref in (self.data_input, self.data_output):
            if isinstance(ref, TaskDataReference):
                names.add(ref.bpmn_id)
        return {name for name in names if name in my_task.data}

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        withheld = self._withheld(my_task)
        if not withheld:
            super().create_child(my_task, item, key_or_index)  # type: ignore[misc]
            return
        full = my_task.data
        my_task.data = {key: value for key, value in full.items() if key not in withheld}
        try:
            super().create_child(my_task, item, key_or_index)  # type: ignore[misc]
        finally:
            view, my_task.data = my_task.data, full
            for key, value in view.items():  # whatever the branch's start wrote into my_task stays
                if full.get(key, _MISSING) is not value:
                    full[key] = value

    @property
    def results_variable(self) -> str:
        extensions = getattr(self, "extensions", None) or {}
        return extensions.get("ow_results") or f"{self.bpmn_id}_results"

    def _standard_output(self) -> bool:
        return self.data_output is not None and self.output_item is not None

    # ---------------------------------------------------------------- output collection
    def init_data_output_with_input_data(self, my_task: Any, input_data: Any) -> None:
        if self.data_output.exists(my_task):
            output = self.data_output.get(my_task)
            if isinstance(output, list) and output is not input_data:
                self.data_output.set(my_task, [])  # this activation's list (see the module doc)
        super().init_data_output_with_input_data(my_task, input_data)  # type: ignore[misc]

    def init_data_output_with_cardinality(self, my_task: Any) -> None:
        """The library's, without its ``NameError`` on an existing output (``data_ouput``)."""
        output = self.data_output.get(my_task) if self.data_output.exists(my_task) else None
        if output is None or isinstance(output, list):
            self.data_output.set(my_task, [])
        elif not isinstance(output, MutableMapping):
            name = getattr(self.data_output, "bpmn_id", None) or "?"
            raise self._collection_error(my_task, "输出", name, "bad_collection", _not_a_collection(output))

    def _place_output(self, child: Any) -> None:
        """The output collection with the branch's output item at its place in the loop (the library's
        ``merge_child`` appends it). A list of this run is made again from every finished branch, so a
        state stored while the library appended comes out in loop order too."""
        if not self.output_item.exists(child):
            self.raise_data_exception("Expected an output item", child)  # type: ignore[attr-defined]
        my_task = child.parent
        output = self.data_output.get(my_task)
        collection = self.data_input.get(my_task) if self.data_input is not None else None
        if isinstance(output, MutableMapping) or output is collection:  # updated, as the library does
            index = child.internal_data.get("key_or_index")
            if index is not None:
                output[index] = self.output_item.get(child)
            else:
                output.append(self.output_item.get(child))
            return
        finished = {*self._merged_children(my_task), str(child.id)}  # type: ignore[attr-defined]
        placed: list[Any] = []
        for branch in my_task.children:  # in the order the branches were opened
            if str(branch.id) not in finished:
                continue
            item = self.output_item.get(branch) if self.output_item.exists(branch) else None
            index = branch_index(branch)
            if isinstance(index, int) and not isinstance(index, bool):
                placed.extend([None] * (index + 1 - len(placed)))
                placed[index] = item
            else:
                placed.append(item)
        output[:] = placed

    # ---------------------------------------------------------------- results
    def _on_complete_hook(self, my_task: Any) -> None:
        if not my_task.internal_data.get("merged"):  # no branch ran: no results of an earlier activation
            my_task.data.pop(self.results_variable, None)
        if self._standard_output():
            output = self.data_output.get(my_task)
            collection = self.data_input.get(my_task) if self.data_input is not None else None
            size = self._loop_size(my_task)
            if isinstance(output, list) and size is not None:  # a place for every branch, completed or not
                output.extend([None] * (size - len(output)))
            elif (
                isinstance(output, MutableMapping)
                and isinstance(collection, Mapping)
                and output is not collection
            ):
                keys = [key for key in collection if key in output]  # the input's order, not completion's
                values = dict(output)
                output.clear()
                output.update((key, value) for key, value in values.items() if key not in collection)
                output.update((key, values[key]) for key in keys)
        super()._on_complete_hook(my_task)  # type: ignore[misc]

    def _loop_size(self, my_task: Any) -> int | None:
        if self.data_input is not None:
            collection = self.data_input.get(my_task)
            return len(collection) if isinstance(collection, Sized) else None
        size = my_task.internal_data.get("cardinality")  # kept by a sequential one
        if isinstance(size, int):
            return size
        opened = self._instances(my_task)  # type: ignore[attr-defined]  # a parallel one opens them all at once
        return len(list(opened))

    def _collect(self, child: Any) -> None:
        parent = child.parent
        skip = {item.bpmn_id for item in (self.input_item, self.output_item) if item is not None}
        skip.add(self.results_variable)
        changes = {
            key: value
            for key, value in child.data.items()
            if key not in skip and (key not in parent.data or parent.data[key] != value)
        }
        index = branch_index(child)
        name = self.results_variable
        first = not parent.internal_data["merged"]  # the first branch of this activation to finish
        if isinstance(index, int) and not isinstance(index, bool):
            results = None if first else parent.data.get(name)
            if not isinstance(results, list):
                results = []
            while len(results) <= index:
                results.append(None)
            results[index] = changes
        else:
            results = None if first else parent.data.get(name)
            if not isinstance(results, Mapping):
                results = {}
            results = dict(results)
            results[str(index)] = changes
        parent.data[name] = results
        parent.internal_data["merged"].append(str(child.id))


_MISSING = object()


class OwParallelMultiInstanceTask(_CollectingMixin, ParallelMultiInstanceTask):
    def create_children(self, my_task: Any) -> None:
        if self.data_input is not None:
            self._check_collection(my_task)
        else:
            self._check_branches(my_task, my_task.workflow.script_engine.evaluate(my_task, self.cardinality))
        super().create_children(my_task)

    def merge_child(self, workflow: Any, child: Any) -> None:
        if self._standard_output():
            self._place_output(child)
        self._collect(child)
        my_task = child.parent
        if self.check_completion_condition(my_task):
            for other in self._instances(my_task):
                other.cancel()
            my_task._set_state(TaskState.READY)
        elif self.children_complete(my_task):
            my_task._set_state(TaskState.READY)


class OwSequentialMultiInstanceTask(_CollectingMixin, SequentialMultiInstanceTask):
    def init_remaining_items(self, my_task: Any) -> list[Any]:
        self._check_input(my_task)
        remaining: list[Any] = super().init_remaining_items(my_task)
        self._check_branches(my_task, len(remaining))
        return remaining

    def get_next_index(self, my_task: Any) -> tuple[Any, Any]:
        if my_task.internal_data.get("current") == 0:
            self._check_branches(my_task, my_task.internal_data.get("cardinality"))
        return super().get_next_index(my_task)  # type: ignore[no-any-return]

    def merge_child(self, workflow: Any, child: Any) -> None:
        if self._standard_output():
            self._place_output(child)
        self._collect(child)
        my_task = child.parent
        if self.children_complete(my_task) or self.check_completion_condition(my_task):
            my_task._set_state(TaskState.READY)
        else:
            self.add_next_child(my_task)


def _same(old: Any, new: Any) -> bool:
    return type(old) is type(new) and bool(old == new)


def _merge_changes(target: dict[str, Any], fork: Mapping[str, Any], branch: Mapping[str, Any]) -> None:
    """Write into ``target`` what ``branch`` changed relative to ``fork`` (see the module doc)."""
    for key, value in branch.items():
        if key in fork:
            old = fork[key]
            if _same(old, value):
                continue  # this branch did not write it: its copy says nothing
            current = target.get(key)
            if isinstance(old, dict) and isinstance(value, dict) and isinstance(current, dict):
                _merge_changes(current, old, value)
                continue
        target[key] = deepcopy(value)


def _common_ancestor(tasks: list[Any]) -> Any:
    """The nearest task that is, or is an ancestor of, every one of ``tasks`` (found without recursion)."""
    chain: list[Any] = []
    node = tasks[0]
    while node is not None:
        chain.append(node)
        node = node.parent
    position = {task.id: index for index, task in enumerate(chain)}
    highest = 0
    for task in tasks[1:]:
        node = task
        while node is not None and node.id not in position:
            node = node.parent
        if node is None:
            return None
        highest = max(highest, position[node.id])
    return chain[highest]


class _BranchMergingJoin:
    """Mixed into a join: merges what each arrived branch changed since the fork, in arrival order; the
    arrivals a firing consumed no longer count (see the module doc)."""

    def _counted(self, workflow: Any) -> Iterator[Any]:
        """This join's instances in ``workflow`` but those a firing consumed: a COMPLETED instance (a firing)
        and every instance that finished before the latest firing, the rule ``pruning._arrivals`` applies
        at every dump, so a loop run within one command counts what a stored instance counts."""
        instances = [task for task in workflow.tasks.values() if task.task_spec == self]
        fired = [task.last_state_change for task in instances if task.state == TaskState.COMPLETED]
        latest = max(fired, default=None)
        for task in instances:
            finished = task.has_state(TaskState.FINISHED_MASK)
            if not (finished and latest is not None and task.last_state_change <= latest):
                yield task

    def _merge_branches(self, my_task: Any) -> None:
        arrived = sorted(  # the library's arrivals (UnstructuredJoin._run_hook), in the order it merges them
            (
                task
                for task in self._counted(my_task.workflow)
                if task.has_state(TaskState.FINISHED_MASK) and not my_task.is_descendant_of(task)
            ),
            key=lambda task: task.last_state_change,
        )
        fork = _common_ancestor([task.parent for task in [*arrived, my_task]]) if arrived else None
        if fork is None:
            UnstructuredJoin._run_hook(self, my_task)
            return
        data = deepcopy(fork.data)
        for task in arrived:
            _merge_changes(data, fork.data, task.parent.data)  # a firing (COMPLETED) is never counted
        _merge_changes(data, fork.data, my_task.parent.data)
        my_task.data = _ordered_like(data, my_task.parent.data)


def _ordered_like(value: Any, model: Any) -> Any:
    """``value`` with the keys it shares with ``model`` first, in ``model``'s order, at every depth: the
    order a restore gives it (the serializer stores a task's data as its changes from the parent's)."""
    if not (isinstance(value, dict) and isinstance(model, dict)):
        return value
    ordered = {key: _ordered_like(value[key], model[key]) for key in model if key in value}
    ordered.update((key, item) for key, item in value.items() if key not in ordered)
    return ordered


class OwParallelGateway(_BranchMergingJoin, ParallelGateway):
    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        """``ParallelGateway``'s check over the instances that still count (``_counted``)."""
        waiting_inputs = set(self.inputs)
        for task in self._counted(my_task.workflow):
            if task.is_descendant_of(my_task):  # a predicted instance after this one: the first iteration
                node = task
                while node is not None and node.task_spec not in waiting_inputs:
                    node = node.parent
                if node is not None:
                    waiting_inputs.remove(node.task_spec)
            elif my_task.is_descendant_of(task):
                continue
            elif task.parent.state == TaskState.COMPLETED and task.parent.task_spec in waiting_inputs:
                waiting_inputs.remove(task.parent.task_spec)
        return not waiting_inputs

    def _run_hook(self, my_task: Any) -> bool:
        self._merge_branches(my_task)
        return True


_HOLDS_TOKEN = TaskState.READY | TaskState.STARTED | TaskState.WAITING
"""Where a branch's token is for an inclusive join: a task to do, one that runs (a sub-process), one that
waits (an event; the library counted READY and WAITING only, so a running sub-process never held the join)."""


class OwInclusiveGateway(_BranchMergingJoin, InclusiveGateway):
    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        """``InclusiveGateway``'s check over the instances that still count (``_counted``); the walk for
        the tasks that may still reach the join passes through a consumed firing (the library's stops at
        every instance, so below the first round's firing it saw nothing), as it does once that is pruned."""
        counted = {task.id for task in self._counted(my_task.workflow)}
        tasks, sources = [], []
        stack = [my_task.workflow.task_tree]
        while stack:  # the library's get_tasks(end_at_spec=self.name), depth first, without recursion
            task = stack.pop()
            if task.task_spec == self and task.id in counted:
                tasks.append(task)
                continue
            if task.task_spec != self and task.has_state(_HOLDS_TOKEN):
                sources.append(task.task_spec)
            stack.extend(reversed(task.children))
        completed = {task.parent.task_spec for task in tasks if task.parent.state == TaskState.COMPLETED}
        if any(
            t.parent.has_state(TaskState.DEFINITE_MASK) and t.parent.task_spec not in completed for t in tasks
        ):
            return False
        return self._unreachable(completed, sources)

    def _unreachable(self, completed: set[Any], sources: list[Any]) -> bool:
        """BPMN 2.0 (13.4.3): no task holding a token (``sources``) can reach an input that has not arrived
        without being able to reach one that has (``completed``), along flows that do not pass this join.
        The library walked back from each input along the first flow into each element only, and through
        this join itself: in a loop, the walk from an arrived input went round through the join to a task
        waiting in another branch (behind an exclusive merge) and so did not wait for it."""
        for source in dict.fromkeys(sources):
            reached = self._inputs_reached(source)
            if reached - completed and not reached & completed:
                return False
        return True

    def _inputs_reached(self, source: Any) -> set[Any]:
        """The inputs of this join that a token at ``source`` can reach without passing the join."""
        inputs = set(self.inputs)
        found: set[Any] = set()
        seen = {source}
        stack = [source]
        while stack:
            spec = stack.pop()
            if spec in inputs:
                found.add(spec)
            for output in spec.outputs:
                if output is not self and output not in seen:
                    seen.add(output)
                    stack.append(output)
        return found

    def _run_hook(self, my_task: Any) -> bool:
        """``InclusiveGateway._run_hook`` with our merge in place of ``UnstructuredJoin._run_hook``."""
        self._merge_branches(my_task)
        matches, defaults = self._get_matching_outputs(my_task)
        if len(matches + defaults) == 0:
            raise WorkflowTaskException("No conditions satisfied on gateway", task=my_task)
        my_task._sync_children(matches or defaults, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.FUTURE | TaskState.PREDICTED_MASK)
        return True


END_ARRIVAL = "ow_end_arrival"
"""The internal data of an arrival at a scope's end join (``OwMergingEndJoin``): ``{"seq": n, "data": ...}``,
the data of the branches ended so far, merged."""


class OwMergingEndJoin(OwEndJoin):
    """The end join of a process or sub-process (``OwEndJoin``: an idle event sub-process does not hold it)
    merging the branches that ended at their own end events by the joins' rule (see the module doc)."""

    def _update_hook(self, my_task: Any) -> bool:
        may_fire = bool(super()._update_hook(my_task))
        parent = my_task.parent
        if not may_fire and END_ARRIVAL not in my_task.internal_data and parent.state == TaskState.COMPLETED:
            previous = latest_end_arrival(my_task.workflow.tasks.values(), self, but=my_task)
            seq = previous.internal_data[END_ARRIVAL]["seq"] + 1 if previous is not None else 1
            my_task.internal_data[END_ARRIVAL] = {"seq": seq, "data": self._ended(my_task, previous)}
        return may_fire

    def _ended(self, my_task: Any, previous: Any) -> dict[str, Any]:
        """The data of the branches ended before ``my_task``'s (``previous`` holds it) with what ``my_task``'s
        branch changed since it parted from ``previous``'s, over it."""
        if previous is None:
            return deepcopy(my_task.parent.data)
        data: dict[str, Any] = deepcopy(previous.internal_data[END_ARRIVAL]["data"])
        fork = _common_ancestor([previous.parent, my_task.parent])
        _merge_changes(data, fork.data if fork is not None else {}, my_task.parent.data)
        return data

    def _run_hook(self, my_task: Any) -> bool:
        own = my_task.internal_data.get(END_ARRIVAL)
        if own is not None:  # an arrival that waited and fires now (what it waited for was cancelled)
            data = deepcopy(own["data"])
        else:
            data = self._ended(
                my_task, latest_end_arrival(my_task.workflow.tasks.values(), self, but=my_task)
            )
        my_task.data = _ordered_like(data, my_task.parent.data)
        my_task.workflow.data.update(my_task.data)  # the library's _EndJoin: the process's result
        return True


def latest_end_arrival(tasks: Iterable[Any], spec: Any, but: Any = None) -> Any:
    """The last arrival at the end join ``spec`` among ``tasks`` (but ``but``), which holds the data of every
    branch ended so far: the only one the join reads (``.pruning`` keeps it, not the others)."""
    arrivals = [t for t in tasks if t.task_spec == spec and t is not but and END_ARRIVAL in t.internal_data]
    return max(arrivals, key=lambda t: t.internal_data[END_ARRIVAL]["seq"], default=None)


class OwBoundaryEventJoin(BoundaryEventJoin):
    """The join after a task with boundary events. When the task ends, the library cancels every boundary
    event still waiting, and with it everything under it; a non-interrupting cycle timer's event waits for its
    next firing until then, with the branches its earlier firings started under it, so a reminder task one of
    them opened (催办, still to do) went without a trace as the main task ended. BPMN has each firing of a
    non-interrupting event start a token of its own: here such an event stops (cancelled, no more firings)
    and drops only its copies of this join; the branches its firings started go on, the scope ends after
    them."""

    def _check_threshold_structured(self, my_task: Any) -> tuple[bool, list[Any]]:
        finished, cancel = super()._check_threshold_structured(my_task)
        stays = []
        for task in cancel:
            event = getattr(task.task_spec, "event_definition", None)
            if isinstance(event, CycleTimerEventDefinition) and not task.task_spec.cancel_activity:
                _stop_firing(task, self)
            else:
                stays.append(task)
        return finished, stays


def _stop_firing(task: Any, join: Any) -> None:
    """Cancel a cycle timer's waiting event ``task`` but not the branches its firings started: of its
    children only those not started (its copies of ``join``, predicted ones) go."""
    task._set_state(TaskState.CANCELLED)
    for child in list(task.children):
        if child.task_spec is join or child.has_state(TaskState.PREDICTED_MASK):
            task.workflow._remove_task(child.id)
    task.task_spec._on_cancel(task)


class OwNoneTask(NoneTask):
    """``bpmn:task`` without a type: completed by the engine as soon as it is reached (see the module doc)."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        kwargs.pop("manual", None)  # a spec restored from its dict names it: it is never a wait
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


CALL_KEY = "ow_call"  # the call activity's variable mappings in ``extensions`` (``camunda.call_mappings``)


def _mapped(call: Any, data: dict[str, Any], mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """The variables ``mappings`` take from ``data`` (an expression evaluated over it); an error is the
    call activity's (task ``call``), whichever side's data it read."""
    values: dict[str, Any] = {}
    for mapping in mappings:
        if mapping.get("all"):
            values.update(deepcopy({k: v for k, v in data.items() if k != "data_objects"}))
        elif "expr" in mapping:
            value = call.workflow.script_engine.evaluate_in(call, mapping["expr"], data)
            values[mapping["target"]] = deepcopy(value)
        else:
            values[mapping["target"]] = deepcopy(data.get(mapping["source"]))
    return values


class OwCallActivity(CallActivity):
    """A call activity that passes only what its ``camunda:in`` name and takes back only what its
    ``camunda:out`` name, as Camunda 7 does; without mappings, the library's rule (everything both ways)."""

    def _mappings(self) -> dict[str, Any] | None:
        extensions = getattr(self, "extensions", None) or {}
        found: dict[str, Any] | None = extensions.get(CALL_KEY)
        return found

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        mappings = self._mappings()
        if mappings is None:
            super().copy_data(my_task, subworkflow)
            return
        start = subworkflow.get_next_task(subworkflow.task_tree, skip_subprocesses=True, spec_name="Start")
        start.set_data(**_mapped(my_task, my_task.data, mappings["in"]))

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        mappings = self._mappings()
        if mappings is None:
            super().update_data(my_task, subworkflow)
            return
        my_task.data.update(_mapped(my_task, subworkflow.last_task.data, mappings["out"]))
