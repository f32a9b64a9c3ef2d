"""Event sub-processes (``bpmn:subProcess triggeredByEvent="true"``) as BPMN 2.0 (10.3.5, "Event
Sub-Process") and Camunda 7 run them.

The library starts an event sub-process with a timer start event as a branch of its scope (the process or
the embedded sub-process it is drawn in) when the scope starts: the branch waits at the start event. What
the library leaves out is added here, through its seams (the parser's process spec and node parsers,
task-spec classes):

* **It is one.** The library's sub-process parser looks for ``bpmn:triggeredByEvent`` (a namespaced
  attribute no modeler writes) and so built every event sub-process as a plain sub-process;
  ``parser._EventSubprocessParser`` gives it the library's ``EventSubprocess`` spec.

* **It waits while its scope runs, and only then.** The library starts one with a message or signal start
  event only from the top-level process's own start task, when such an event reaches the top workflow (a
  sub-process's own one never), and on the way connects that start task to it in the shared, deployed
  spec. ``arm_with_scope`` connects every event sub-process to its scope's start, as the library does for
  a timer one: it waits at its start event while the scope runs (a message reaches it through
  ``Runtime.deliver_message`` as any waiting catch event, a signal thrown anywhere in the instance
  reaches it), and its wait ends with the scope.
* **An interrupting one interrupts.** The library reads no ``isInterrupting``: every event sub-process ran
  beside the main flow, which went on and ended the scope as if nothing had happened. When the start
  event of an interrupting one (BPMN's default) fires, ``OwStartEvent`` cancels everything else of its
  scope (the main flow's tasks, whatever other event sub-process waits or runs there, with their
  sub-processes); the event sub-process runs, and its end ends the scope (the instance completes when the
  scope is the process), as Camunda 7 does.
* **A non-interrupting one runs beside, as often as its event comes.** The main flow goes on; a message,
  signal or escalation start event waits again as soon as it fired (``OwStartEvent`` arms a new instance
  of the event sub-process in its scope), so each such event runs one more instance, as in Camunda 7. A
  timer fires as its definition says: a date or a duration once, a cycle at each repetition.
* **The scope ends without it.** An event sub-process whose event has not come (nothing of it runs) does
  not keep its scope open: when the rest of the scope has ended, ``OwEndJoin`` (the scope's end join)
  cancels it and the scope ends, as Camunda deletes the event subscription of a scope that completes. One
  that runs (its start event fired) is waited for.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import StartEvent as LibraryStartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.util.task import TaskIterator, TaskState

from .xml import BPMN_MODEL_NS

__all__ = [
    "INTERRUPTING",
    "OwEndJoin",
    "OwStartEvent",
    "arm_with_scope",
    "idle",
    "in_event_subprocess",
    "interrupting",
    "with_scope_end",
]

INTERRUPTING = "ow_interrupting"
"""The key in a start event's ``extensions`` that says whether its event sub-process interrupts its scope
(set on the start events of event sub-processes only)."""
_RUNNING = TaskState.READY | TaskState.STARTED | TaskState.ERROR


def _under(task: Any, ancestors: set[Any]) -> bool:
    """Whether ``task`` or one of its ancestors has an id in ``ancestors`` (without recursion)."""
    current = task
    while current is not None:
        if current.id in ancestors:
            return True
        current = current.parent
    return False


def idle(task: Any) -> bool:
    """Whether ``task`` is an event sub-process of its scope in which nothing runs: its start event still
    waits for its event (a cycle timer between two firings included), and no task of it is ready, started
    or waiting on anything else."""
    if not isinstance(task.task_spec, EventSubprocess) or task.state != TaskState.STARTED:
        return False
    subprocess = task.workflow.top_workflow.subprocesses.get(task.id)
    if subprocess is None:
        return False
    for inner in subprocess.tasks.values():
        if inner.state & _RUNNING:
            return False
        if inner.state == TaskState.WAITING and not isinstance(inner.task_spec, StartEvent | _EndJoin):
            return False
    return True


def in_event_subprocess(node: etree._Element) -> bool:
    """Whether the start event ``node`` starts an event sub-process."""
    parent = node.getparent()
    return (
        parent is not None
        and parent.tag == f"{{{BPMN_MODEL_NS}}}subProcess"
        and (parent.get("triggeredByEvent") or "").strip() == "true"
    )


def interrupting(node: etree._Element) -> bool:
    """``isInterrupting`` of a start event (BPMN's default: true)."""
    return (node.get("isInterrupting") or "true").strip().lower() != "false"


def _event_subprocess_of(start_task: Any) -> Any:
    """The task (in its scope) of the event sub-process that ``start_task`` starts, or None."""
    workflow = start_task.workflow
    if workflow.parent_task_id is None:
        return None
    task = workflow.top_workflow.get_task_from_id(workflow.parent_task_id)
    return task if task is not None and isinstance(task.task_spec, EventSubprocess) else None


def _interrupt(esp_task: Any) -> None:
    """Cancel every unfinished task of ``esp_task``'s scope but ``esp_task`` and what follows it."""
    scope = esp_task.workflow
    own = {esp_task.id}
    for task in list(scope.tasks.values()):
        if task.id in scope.tasks and not task.has_state(TaskState.FINISHED_MASK) and not _under(task, own):
            task.cancel()


def _arm_again(esp_task: Any) -> None:
    """A new instance of ``esp_task``'s event sub-process in its scope, waiting at its start event."""
    child = esp_task.parent._add_child(esp_task.task_spec, TaskState.FUTURE)
    child.triggered = True  # added by the engine, not predicted: the library's prediction keeps it
    child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
    child.task_spec._update(child)


class OwStartEvent(LibraryStartEvent):
    """A start event. The one of an event sub-process, when it fires: interrupting, it interrupts its
    scope; non-interrupting (and not a timer), it arms the event sub-process again for the next event."""

    def _run_hook(self, my_task: Any) -> Any:
        esp_task = _event_subprocess_of(my_task)
        extensions = getattr(self, "extensions", None) or {}
        if esp_task is not None and extensions.get(INTERRUPTING, True):
            _interrupt(esp_task)
        elif esp_task is not None and not isinstance(self.event_definition, TimerEventDefinition):
            _arm_again(esp_task)
        return super()._run_hook(my_task)


class OwEndJoin(_EndJoin):
    """The end join of a process or sub-process: it waits for every branch of its scope but an idle event
    sub-process (:func:`idle`), which it cancels when it fires."""

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        workflow = my_task.workflow
        waiting = [task for task in workflow.tasks.values() if idle(task)]
        skipped = {task.id for task in waiting}
        for task in TaskIterator(
            workflow.task_tree, state=TaskState.NOT_FINISHED_MASK, end_at_spec=self.name
        ):
            if task == my_task or _under(task, skipped):
                continue
            return False
        for task in waiting:
            task.cancel()
        return True


def with_scope_end(spec: Any) -> Any:
    """``spec`` (a new process spec, before its tasks are added) with ``OwEndJoin`` as its end join."""
    old = spec.end
    del spec.task_specs[old.name]
    end = OwEndJoin(spec, old.name)
    end._outputs = list(old._outputs)
    spec.end = end
    return spec


def arm_with_scope(spec: Any) -> None:
    """Connect every event sub-process of ``spec`` (a process or sub-process spec, its tasks added) that the
    library left to be started by an event (its start's ``trigger_specs``) to the scope's start and end, as
    the library connects one with a timer start event."""
    start = spec.start
    for name in start.trigger_specs:
        task_spec = spec.task_specs[name]
        start.connect(task_spec)
        task_spec.connect(spec.end)
    start.trigger_specs = []
