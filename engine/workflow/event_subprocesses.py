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
* **An error or escalation starts the one of its scope.** The library's start-event parser reads no error
  or escalation definition (such an event sub-process started with its scope, as a none start), and hands
  an error or escalation that the thrower's own scopes do not catch to any task of the instance waiting
  for it. ``parser._EventStartParser`` reads them; ``OwEventManager`` (installed by ``Runtime``) looks
  for a catcher scope by scope, from the thrower's outwards: the library's own (the boundary events
  there), then the event sub-processes drawn in that scope. A thrown error or escalation that no scope
  catches never starts an event sub-process of another scope (of a sibling sub-process).
* **It starts with the scope's data of the moment.** The library gives an event sub-process the data its
  scope had when it started (when it was armed); Camunda 7's event sub-process reads the scope's variables
  as they are when the event comes. When its start event fires, ``OwStartEvent`` takes the data of its
  scope's active tasks and of the scope's last finished task over it (the event's payload on top), so
  what it does (and, interrupting, what the scope ends with) starts from what the scope had then.
* **A message that found its scope inactive never starts it later.** The engine keeps a message that
  nothing waited for and hands it to a catch event that waits for it later (``Runtime``); an event
  sub-process's start event waits only while its scope is active, and a message that came before the
  scope started or after it ended must not start it when the scope runs (again): such a message is
  delivered ``without_event_subprocess_starts``.
* **It is on the record.** Each event sub-process whose event comes in an engine call is collected
  (``collect_started``: which one, interrupting or not, the person's tasks it cancelled); the service
  layer writes an ``event_subprocess`` audit event for it.
* **The scope ends without it.** An event sub-process whose event has not come (nothing of it runs) does
  not keep its scope open: when the rest of the scope has ended, ``OwEndJoin`` (the scope's end join)
  cancels it and the scope ends, as Camunda deletes the event subscription of a scope that completes. One
  that runs (its start event fired) is waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import StartEvent as LibraryStartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    EscalationEventDefinition,
    SignalEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.bpmn.util.event import EventManager
from SpiffWorkflow.util.task import TaskIterator, TaskState

from .api import StartedEventSubprocess
from .xml import BPMN_MODEL_NS

__all__ = [
    "AGAIN",
    "INTERRUPTING",
    "OwEndJoin",
    "OwEventManager",
    "OwStartEvent",
    "arm_with_scope",
    "collect_started",
    "idle",
    "in_event_subprocess",
    "interrupting",
    "scoped_events",
    "starts_event_subprocess",
    "with_scope_end",
    "without_event_subprocess_starts",
]

INTERRUPTING = "ow_interrupting"
"""The key in a start event's ``extensions`` that says whether its event sub-process interrupts its scope
(set on the start events of event sub-processes only)."""
AGAIN = (MessageEventDefinition, SignalEventDefinition, EscalationEventDefinition)
"""The events after which a non-interrupting event sub-process waits again (a timer fires as its definition
says; a start event without a definition is refused by the validator: it would fire again at once)."""
_NO_STARTS: ContextVar[bool] = ContextVar("onewindow_no_event_subprocess_starts", default=False)
_STARTED: ContextVar[list[StartedEventSubprocess] | None] = ContextVar(
    "onewindow_started_event_subprocesses", default=None
)
_ACTIVE = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
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


@contextmanager
def collect_started() -> Iterator[list[StartedEventSubprocess]]:
    """Collect the event sub-processes whose event comes inside the block."""
    started: list[StartedEventSubprocess] = []
    token = _STARTED.set(started)
    try:
        yield started
    finally:
        _STARTED.reset(token)


def starts_event_subprocess(task: Any) -> bool:
    """Whether ``task`` is the start event of an event sub-process."""
    return isinstance(task.task_spec, StartEvent) and _event_subprocess_of(task) is not None


@contextmanager
def without_event_subprocess_starts() -> Iterator[None]:
    """Inside the block no event sub-process's start event catches anything (a buffered message)."""
    token = _NO_STARTS.set(True)
    try:
        yield
    finally:
        _NO_STARTS.reset(token)


def _inside(inner: Any, outer: Any) -> bool:
    """Whether the workflow ``inner`` is ``outer`` or one of the sub-processes under it."""
    current = inner
    while current is not None and current is not outer:
        current = current.parent_workflow
    return current is outer


def _manual_tasks(workflow: Any) -> dict[Any, Any]:
    """The ready user and manual tasks of ``workflow`` and of the sub-processes under it."""
    workflows = [sp for sp in workflow.top_workflow.subprocesses.values() if _inside(sp, workflow)]
    return {
        t.id: t
        for wf in [workflow, *workflows]
        for t in wf.tasks.values()
        if t.task_spec.manual and t.state == TaskState.READY
    }


def _interrupt(esp_task: Any) -> list[Any]:
    """Cancel every unfinished task of ``esp_task``'s scope but ``esp_task`` and what follows it; returns
    the person's tasks that went."""
    scope = esp_task.workflow
    before = _manual_tasks(scope)
    own = {esp_task.id}
    for task in list(scope.tasks.values()):
        if task.id in scope.tasks and not task.has_state(TaskState.FINISHED_MASK) and not _under(task, own):
            task.cancel()
    gone = [task for task in before.values() if task.state == TaskState.CANCELLED]
    return sorted(gone, key=lambda t: (t.task_spec.bpmn_id or t.task_spec.name, str(t.id)))


def _scope_data(esp_task: Any) -> dict[str, Any]:
    """The data of ``esp_task``'s scope now: what it was armed with, the data of the scope's active tasks
    outside event sub-processes (oldest first), then its last finished task's data."""
    scope = esp_task.workflow
    data = dict(esp_task.data)
    esp_ids = {t.id for t in scope.tasks.values() if isinstance(t.task_spec, EventSubprocess)}
    active = [t for t in scope.tasks.values() if t.state & _ACTIVE and not _under(t, esp_ids)]
    for task in sorted(active, key=lambda t: t.last_state_change):
        data.update(task.data)
    last = scope.last_task
    if last is not None and last.id in scope.tasks and not _under(last, esp_ids):
        data.update(last.data)
    return deepcopy(data)


def _arm_again(esp_task: Any) -> None:
    """A new instance of ``esp_task``'s event sub-process in its scope, waiting at its start event."""
    child = esp_task.parent._add_child(esp_task.task_spec, TaskState.FUTURE)
    child.triggered = True  # added by the engine, not predicted: the library's prediction keeps it
    child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
    child.task_spec._update(child)


class OwStartEvent(LibraryStartEvent):
    """A start event. The one of an event sub-process, when it fires, takes its scope's data of the moment
    (:func:`_scope_data`); interrupting, it interrupts its scope; non-interrupting, after a message, signal
    or escalation (:data:`AGAIN`), it arms the event sub-process again for the next one."""

    def catches(self, my_task: Any, event: Any) -> bool:
        if _NO_STARTS.get() and _event_subprocess_of(my_task) is not None:
            return False
        return bool(super().catches(my_task, event))

    def _run_hook(self, my_task: Any) -> Any:
        esp_task = _event_subprocess_of(my_task)
        extensions = getattr(self, "extensions", None) or {}
        if esp_task is None:
            return super()._run_hook(my_task)
        my_task.data.update(_scope_data(esp_task))
        cancelled: list[Any] = []
        if extensions.get(INTERRUPTING, True):
            cancelled = _interrupt(esp_task)
        elif isinstance(self.event_definition, AGAIN):
            _arm_again(esp_task)
        started = _STARTED.get()
        if started is not None:
            started.append(
                StartedEventSubprocess(
                    element_id=esp_task.task_spec.bpmn_id or esp_task.task_spec.name,
                    start_event_id=self.bpmn_id or self.name,
                    interrupting=bool(extensions.get(INTERRUPTING, True)),
                    cancelled=tuple((str(t.id), t.task_spec.bpmn_id or t.task_spec.name) for t in cancelled),
                )
            )
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


def with_scope_end(spec: Any, end_class: type[OwEndJoin] = OwEndJoin) -> Any:
    """``spec`` (a new process spec, before its tasks are added) with ``end_class`` (``OwEndJoin`` or a
    subclass) as its end join."""
    old = spec.end
    del spec.task_specs[old.name]
    end = end_class(spec, old.name)
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


class OwEventManager(EventManager):
    """The library's event manager, with an event sub-process's start event catching a thrown error or
    escalation for the scope it is drawn in (see the module doc)."""

    def catch(self, event: Any, internal: bool = True) -> int:
        if event.target is None:  # a message or signal: every waiting catch event, as the library does
            return int(super().catch(event, internal))
        scope = event.target
        while scope is not None:
            event.target = scope
            tasks = [
                t
                for t in self.tasks.values()
                if t.workflow == scope and t.task_spec.event_definition.catches(t, event)
            ]
            if not tasks:
                tasks = self._starts_in(scope, event)
            if tasks:
                return self._deliver(tasks, event)
            scope = scope.parent_workflow
        event.target = None  # no scope of the thrower catches it: the library's last resort, without
        self.update_collaboration(event)  # the event sub-processes of other scopes
        tasks = [
            t for t in self.tasks.values() if not starts_event_subprocess(t) and t.task_spec.catches(t, event)
        ]
        if not tasks and internal:
            self.workflow.bpmn_events.append(event)
        return self._deliver(tasks, event)

    def _starts_in(self, scope: Any, event: Any) -> list[Any]:
        """The waiting start events of the event sub-processes of ``scope`` that catch ``event``; one that
        names the thrown code before one that catches any."""
        found = []
        for task in self.tasks.values():
            esp_task = _event_subprocess_of(task) if starts_event_subprocess(task) else None
            if esp_task is not None and esp_task.workflow == scope and task.task_spec.catches(task, event):
                found.append(task)
        named = [t for t in found if getattr(t.task_spec.event_definition, "code", None) is not None]
        return named or found

    def _deliver(self, tasks: list[Any], event: Any) -> int:
        for task in tasks:
            task.task_spec.catch(task, event)
            task.task_spec._update(task)
        return len(tasks)


def scoped_events(workflow: Any) -> None:
    """Give ``workflow`` (a top workflow, new or restored) an ``OwEventManager`` holding what its event
    manager holds."""
    if not isinstance(workflow.event_manager, OwEventManager):
        manager = OwEventManager(workflow)
        manager.tasks = workflow.event_manager.tasks
        workflow.event_manager = manager
