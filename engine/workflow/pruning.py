"""Pruning: a workflow keeps what execution needs, not every task it ever finished (DESIGN rule 5).

SpiffWorkflow never removes a finished task from the tree. A model with a loop (a case returned for rework,
a supplement round) therefore grows one chain of tasks per round: the stored state, each step's work and the
depth of the tree grow with the rounds, and at a depth of about a thousand the library's recursive ancestor
checks raise ``RecursionError`` and its task iterator (``max_depth=1000``) silently stops finding tasks. The
history is in the audit log; the tree only needs what the library reads while it runs.

``prune(workflow)`` removes every COMPLETED or CANCELLED task the library can no longer read and re-parents
the tasks it keeps onto their nearest kept ancestor, so the order of ancestors (and of a depth-first walk)
among kept tasks is unchanged. It keeps, in the top workflow and in every subprocess:

* the root, every unfinished task (ERROR counts as unfinished: nothing of a failed task is dropped), its
  parent (a predicted task inherits its parent's data when it is reached) and its children (the branches
  of a multi-instance task, the parts of an event split), but the spare copies of a boundary join that a
  cycle timer adds at every firing (``_spare``);
* the workflow's ``last_task`` and its parent (``Runtime.data`` and a subprocess's result read it);
* for an unfinished join with a split (a boundary event's join), the split it looks up by name and the
  split's children, whose states the join checks;
* the arrivals a parallel / inclusive join has not consumed yet (``_arrivals``), and the real parent of
  every kept instance of such a join: they read ``parent.state``, ``parent.data`` and ``parent.task_spec``
  of their own instances. The process's end join counts no arrivals, it only merges the data of the
  branches that ended before it. Ours (``specs.OwMergingEndJoin``) folds each ended branch into its last
  arrival: that one is kept, not the others. The library's (``_EndJoin``, in specs read before reading 5)
  merges them all when it fires: of those it keeps the ones whose data no later ended branch covers
  (``_covered``). Either way a branch that ends every round of a loop (an escalation) keeps one arrival,
  not one a round;
* the fork of kept branches (``_forks``: a task under which kept tasks sit in two or more of its children's
  subtrees): a join merges what each branch changed since the data of their nearest common task
  (``specs.OwParallelGateway``), which must be the fork's, not an older ancestor's.

A kept task that loses its parent is always finished, so it never inherits data again; its data is unchanged
in memory and the serializer stores it as a delta from the new parent. Subprocesses whose task was removed go
with it. Arrivals a join consumed in an earlier round of a loop go; our joins do not count them either while
they are still in the tree (``specs._BranchMergingJoin._counted``, the same rule: a firing consumes every
arrival before it), so a loop that runs several rounds in one command joins as a stored instance does.

Pruning is idempotent, iterative (it never recurses into the tree, so it can rescue a state too deep for the
library) and costs one pass over the tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin, _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .specs import OwMergingEndJoin, latest_end_arrival

PRUNABLE = TaskState.COMPLETED | TaskState.CANCELLED


def _ancestor(task: Any, spec_name: str) -> Any:
    """``task.find_ancestor(spec_name)`` without recursion."""
    current = task.parent
    while current is not None:
        if current.task_spec.name == spec_name:
            return current
        current = current.parent
    return None


def _keep(workflow: Any) -> set[UUID]:
    tasks: dict[UUID, Any] = workflow.tasks
    keep: set[UUID] = {workflow.task_tree.id}

    def with_parent(task: Any) -> None:
        keep.add(task.id)
        if task._parent is not None:
            keep.add(task._parent)

    spare = _spare(tasks)
    for task in tasks.values():
        if task.state & PRUNABLE or task.id in spare:
            continue
        with_parent(task)
        keep.update(child for child in task._children if child not in spare)
        split = getattr(task.task_spec, "split_task", None)
        if split:
            found = _ancestor(task, split)
            if found is not None:
                keep.add(found.id)
                keep.update(found._children)
    last = workflow.last_task
    if last is not None and last.id in tasks:
        with_parent(last)
    keep.update(_arrivals(tasks.values()))
    keep.update(_forks(workflow, keep))
    for task_id in list(keep):
        task = tasks.get(task_id)
        if task is not None and isinstance(task.task_spec, UnstructuredJoin) and task._parent is not None:
            keep.add(task._parent)
    return keep


def _spare(tasks: Mapping[UUID, Any]) -> set[UUID]:
    """The children of cycle timers' events that nothing reads. Such an event waits for its next firing and
    adds a child per output at every one: its branch, and for a boundary event a copy of the boundary join,
    which waits until the main task ends and is then cancelled. The branches that finished go (the event
    reads none of them), and of the waiting copies of the join all but the last: else a reminder every hour
    on a task that waits a month would keep some 1,400 tasks for good."""
    spare: set[UUID] = set()
    for task in tasks.values():
        event = getattr(task.task_spec, "event_definition", None)
        if task.state & PRUNABLE or not isinstance(event, CycleTimerEventDefinition):
            continue
        children = [tasks[child] for child in task._children if child in tasks]
        joins = sorted(
            (
                c
                for c in children
                if isinstance(c.task_spec, BoundaryEventJoin) and c.state == TaskState.WAITING
            ),
            key=lambda join: join.last_state_change,
        )
        spare.update(c.id for c in children if c.state & PRUNABLE)
        spare.update(join.id for join in joins[:-1])
    return spare


def _forks(workflow: Any, keep: set[UUID]) -> set[UUID]:
    """The tasks under which tasks of ``keep`` sit in two or more children's subtrees: the nearest common
    task of any kept tasks is one of them (or one of the kept tasks), so it stays the same once pruned. At
    most one per kept task: the tree stays the size of a round."""
    tasks: dict[UUID, Any] = workflow.tasks
    order: list[UUID] = []
    stack = [workflow.task_tree.id]
    while stack:  # pre-order, without recursion
        task_id = stack.pop()
        order.append(task_id)
        stack.extend(child for child in tasks[task_id]._children if child in tasks)
    holds: set[UUID] = set()  # tasks whose subtree holds a kept task
    forks: set[UUID] = set()
    for task_id in reversed(order):  # every child before its parent
        below = sum(1 for child in tasks[task_id]._children if child in holds)
        if below >= 2:
            forks.add(task_id)
        if below or task_id in keep:
            holds.add(task_id)
    return forks


def _arrivals(tasks: Iterable[Any]) -> set[UUID]:
    """The CANCELLED instances of parallel / inclusive joins that record a branch's arrival the join has not
    consumed yet: when a branch reaches a join that still waits for others, the library cancels the join's
    earlier waiting instance, and that instance (with its COMPLETED parent) is the only record that its branch
    arrived. A firing (a COMPLETED instance of the join) consumes every arrival before it. Of a scope's end
    join (``specs.OwMergingEndJoin``), the last arrival, which holds the data of every branch ended so far,
    and the last finished one, which holds it when a cancel drops the last, still waiting, from the tree."""
    cancelled: dict[Any, list[Any]] = {}
    fired: dict[Any, float] = {}
    kept: set[UUID] = set()
    merging: dict[Any, list[Any]] = {}  # instances of OwMergingEndJoin: the last arrival holds the rest
    for task in tasks:
        spec = task.task_spec
        if isinstance(spec, OwMergingEndJoin):
            merging.setdefault(spec, []).append(task)
            continue
        if not isinstance(spec, UnstructuredJoin):
            continue
        if task.state == TaskState.CANCELLED:
            cancelled.setdefault(spec, []).append(task)
        elif task.state == TaskState.COMPLETED:
            fired[spec] = max(fired.get(spec, task.last_state_change), task.last_state_change)
    for spec, instances in merging.items():
        latest = latest_end_arrival(instances, spec)
        finished = latest_end_arrival([t for t in instances if t.state & PRUNABLE], spec)
        kept.update(t.id for t in (latest, finished) if t is not None)
    for spec, instances in cancelled.items():
        waiting = sorted(
            (task for task in instances if spec not in fired or task.last_state_change > fired[spec]),
            key=lambda task: task.last_state_change,  # the order the join merges their data in
        )
        if isinstance(spec, _EndJoin):  # it counts no arrivals: only their data matters, merged in order
            pairs = zip(waiting, waiting[1:], strict=False)
            waiting = [t for t, then in pairs if not _covered(t.parent.data, then.parent.data)] + waiting[-1:]
        kept.update(task.id for task in waiting)
    return kept


def _covered(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether merging ``old`` and then ``new`` into any data (``DeepMerge.merge``, as the end join merges
    the data of the branches that reached it) gives what merging ``new`` alone gives: every key of ``old``
    is in ``new``, with a value that replaces whatever was there (neither a dict nor a list), a dict that
    covers ``old``'s in turn, or a list equal to ``old``'s (merging a list twice changes nothing more).
    An escalation that ends every round of a rework loop thus keeps one arrival, not one per round."""
    for key, value in old.items():
        if key not in new:
            return False
        then = new[key]
        if isinstance(then, dict):
            if not (isinstance(value, dict) and _covered(value, then)):
                return False
        elif isinstance(then, list) and value != then:
            return False
    return True


def _prune_tree(workflow: Any) -> list[UUID]:
    """Prune one workflow's own tree (top or subprocess); returns the ids removed."""
    tasks: dict[UUID, Any] = workflow.tasks
    keep = _keep(workflow)
    if len(keep) >= len(tasks):
        return []
    root = workflow.task_tree
    children: dict[UUID, list[UUID]] = {root.id: []}
    stack: list[tuple[UUID, UUID]] = [(child, root.id) for child in reversed(root._children)]
    while stack:  # pre-order: every kept task is appended to its new parent in depth-first order
        task_id, kept_above = stack.pop()
        task = tasks[task_id]
        if task_id in keep:
            children[kept_above].append(task_id)
            task._parent = kept_above
            children[task_id] = []
            kept_above = task_id
        stack.extend((child, kept_above) for child in reversed(task._children))
    removed = [task_id for task_id in tasks if task_id not in children]
    for task_id, kept_children in children.items():
        tasks[task_id]._children = kept_children
    events = workflow.top_workflow.event_manager
    for task_id in removed:
        events.remove_task(tasks.pop(task_id))
    return removed


def prune(workflow: BpmnWorkflow) -> int:
    """Remove the finished tasks ``workflow`` (and its subprocesses) can no longer read; returns how many."""
    removed = len(_prune_tree(workflow))
    for subprocess in list(workflow.subprocesses.values()):
        if not subprocess.completed:
            removed += len(_prune_tree(subprocess))
    present: set[UUID] = set(workflow.tasks)
    for subprocess in workflow.subprocesses.values():
        present.update(subprocess.tasks)
    while True:  # a subprocess whose task went goes too, and the subprocesses of its tasks after it
        gone = [key for key, sp in workflow.subprocesses.items() if sp.parent_task_id not in present]
        if not gone:
            return removed
        for key in gone:
            subprocess = workflow.subprocesses.pop(key)
            present.difference_update(subprocess.tasks)
            removed += len(subprocess.tasks)
