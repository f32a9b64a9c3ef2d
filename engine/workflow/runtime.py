"""One live workflow instance: start, restore, complete tasks, fire timers, deliver messages, dump.

Every engine call runs with the caller's ``now`` installed as the engine clock and with the sandboxed
script engine attached (also right after restore: SpiffWorkflow's serializer drops it). Errors:
``NotFound`` / ``Conflict`` for task ids, ``UnsafeExpression`` for a sandbox refusal, ``InvalidInput``
(``expression_failed`` / ``no_condition_satisfied`` / ``engine_error`` / ``too_deeply_nested``, with the
element and line, see ``.errors``) for any other failure of the model while the engine ran. After an error
the instance object is in an undefined state: discard it and restore from the stored state.

The stored state carries no finished history: ``dump`` and ``restore`` prune the COMPLETED and CANCELLED
tasks the library no longer reads (``.pruning``), so a case that loops (rework, supplement rounds) keeps a
tree, a state and a step cost of one round. The history is in the audit log.

Message correlation is by message name within one instance: ``deliver_message`` hands the payload to
every catch event / receive task of the instance currently waiting for that name (if the model
declares correlation properties they are computed from the payload and must match too). It returns
False when nothing waits; the service layer buffers such messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.errors import Conflict, NotFound, OneWindowError

from .api import PendingMessage, PendingTimer, ReadyTask, StartedEventSubprocess, TaskMeta
from .budget import CommandBudget, StepLimits
from .checks import recursion_room
from .clock import use_calendar, use_clock
from .definition import Definition
from .errors import step_failure, wrapped_error
from .event_subprocesses import (
    collect_started,
    scoped_events,
    starts_event_subprocess,
    without_event_subprocess_starts,
)
from .pruning import prune
from .sandbox import SandboxScriptEngine
from .scripting import collect_output
from .serializer import dump_instance, restore_instance
from .specs import branch_index, use_branch_limit
from .timers import due_at, recompute_date, task_due

T = TypeVar("T")

SCRIPT_ENGINE = SandboxScriptEngine()


def _element_id(task: Any) -> str:
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) or spec.name


def _instant(value: Any) -> datetime | None:
    """``value`` as an aware UTC instant when it is an ISO date-time string with a zone, else None."""
    if not isinstance(value, str) or len(value) < 19 or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _definitions(definition: Any) -> list[Any]:
    if isinstance(definition, MultipleEventDefinition):
        return [d for inner in definition.event_definitions for d in _definitions(inner)]
    return [definition] if definition is not None else []


class Runtime:
    """A SpiffWorkflow ``BpmnWorkflow`` behind onewindow's narrow interface."""

    def __init__(
        self,
        definition: Definition,
        workflow: BpmnWorkflow,
        calendar: Any = None,
        *,
        branch_limit: int | None = None,
        step_limits: StepLimits | None = None,
        pruning: bool = True,
    ) -> None:
        self.definition = definition
        self.workflow = workflow
        self.calendar = calendar  # working-day calendar for the expression helpers (None: package default)
        self.branch_limit = branch_limit  # most branches of one multi-instance task (None: unbounded)
        self.step_limits = step_limits or StepLimits()  # what one command may make the library do
        self.pruning = pruning  # drop finished history on dump and restore (see .pruning); off: comparisons
        self.output: list[tuple[str | None, str]] = []  # what scripts printed: (element id, line)
        self.started: list[StartedEventSubprocess] = []  # event sub-processes whose event came
        self.workflow.script_engine = SCRIPT_ENGINE
        scoped_events(self.workflow)  # a thrown error or escalation is caught scope by scope

    # ------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        definition: Definition,
        data: dict[str, Any],
        now: datetime,
        calendar: Any = None,
        *,
        branch_limit: int | None = None,
        step_limits: StepLimits | None = None,
        pruning: bool = True,
    ) -> Runtime:
        with recursion_room(definition.size):  # a long chain of tasks is predicted recursively
            workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs, script_engine=SCRIPT_ENGINE)
        runtime = cls(
            definition,
            workflow,
            calendar,
            branch_limit=branch_limit,
            step_limits=step_limits,
            pruning=pruning,
        )
        initial = copy.deepcopy(dict(data or {}))
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(copy.deepcopy(initial))
        runtime._engine(now, runtime._steps)
        return runtime

    @classmethod
    def restore(
        cls,
        definition: Definition,
        state: str,
        now: datetime,
        calendar: Any = None,
        *,
        branch_limit: int | None = None,
        step_limits: StepLimits | None = None,
        pruning: bool = True,
    ) -> Runtime:
        """The instance ``state`` holds, its finished history pruned: a state stored before pruning existed
        (or too deep for the library) becomes compact here, before any step runs on it."""
        with recursion_room(definition.size):
            workflow = restore_instance(state, definition.spec, definition.subprocess_specs)
        runtime = cls(
            definition,
            workflow,
            calendar,
            branch_limit=branch_limit,
            step_limits=step_limits,
            pruning=pruning,
        )
        runtime.prune()
        return runtime

    def prune(self) -> int:
        """Drop the finished tasks execution no longer reads (``.pruning``); returns how many went. Ids of
        tasks that finished in this step may go too: ask ``task_state`` about them before."""
        return prune(self.workflow) if self.pruning else 0

    def dump(self) -> str:
        """The state to store: the workflow is pruned first, so the live object equals its restored copy."""
        self.prune()
        return dump_instance(self.workflow)

    def take_output(self) -> list[tuple[str | None, str]]:
        """What scripts printed since the last call (``print`` in a script task): ``(element id, line)``."""
        out, self.output = self.output, []
        return out

    def take_started(self) -> list[StartedEventSubprocess]:
        """The event sub-processes whose event came since the last call (``.event_subprocesses``)."""
        out, self.started = self.started, []
        return out

    def cancel(self) -> None:
        self.workflow.cancel()

    @property
    def completed(self) -> bool:
        return bool(self.workflow.completed)

    @property
    def data(self) -> dict[str, Any]:
        if self.workflow.completed:
            source = self.workflow.data
        elif self.workflow.last_task is not None:
            source = self.workflow.last_task.data
        else:
            source = self.workflow.task_tree.data
        return copy.deepcopy({k: v for k, v in source.items() if k != "data_objects"})

    # ------------------------------------------------------------ engine calls
    def _steps(self) -> None:
        """The library's engine steps under this command's budget (``.budget``). The library refreshes the
        waiting timers after its last round: a timer of a sub-process (an event sub-process's included) due
        by then is left ready, not run (a timer of the top workflow was refreshed in the rounds already), so
        the steps run again while that makes progress."""
        budget = CommandBudget(self.workflow, self.step_limits)
        self.workflow.do_engine_steps(will_complete_task=budget.tick)
        while budget.ready_left() is not None:
            runs = budget.runs
            self.workflow.do_engine_steps(will_complete_task=budget.tick)
            if budget.runs == runs:  # out of the library's reach: ``finish`` says so
                break
        budget.finish()

    def _engine(self, now: datetime, call: Callable[[], T]) -> T:
        with (
            use_clock(now),
            use_calendar(self.calendar),
            use_branch_limit(self.branch_limit),
            recursion_room(self.definition.size),
            collect_output() as printed,
            collect_started() as started,
        ):
            try:
                result = call()
                self.output.extend(printed)
                self.started.extend(started)
                return result
            except OneWindowError:
                raise
            except Exception as err:  # what the library (or our code inside it) raised: see .errors
                inner = wrapped_error(err)
                if inner is not None:
                    raise inner from None
                typed = step_failure(err)
                if typed is None:
                    raise  # a bug, not the model failing on its data: Internal in engine.error_mapping
                raise typed from err

    def _task(self, task_id: str) -> Any:
        try:
            uuid = UUID(str(task_id))
        except ValueError:
            raise NotFound(f"任务不存在：{task_id}", code="task_not_found", task_id=task_id) from None
        try:
            return self.workflow.get_task_from_id(uuid)
        except Exception:
            raise NotFound(f"任务不存在：{task_id}", code="task_not_found", task_id=task_id) from None

    def task_state(self, task_id: str) -> str | None:
        try:
            task = self._task(task_id)
        except NotFound:
            return None
        return TaskState.get_name(task.state)

    # ------------------------------------------------------------ user tasks
    def _meta(self, task: Any) -> TaskMeta:
        element_id = _element_id(task)
        meta = self.definition.task_meta.get(element_id)
        if meta is None:
            meta = TaskMeta(element_id=element_id, name=task.task_spec.bpmn_name or element_id)
        return meta

    def ready_tasks(self) -> list[ReadyTask]:
        result = []
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            parent = task.parent
            index = None
            if parent is not None and isinstance(parent.task_spec, MultiInstanceTask):
                raw = branch_index(task)
                index = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
            meta = self._meta(task)
            result.append(
                ReadyTask(
                    task_id=str(task.id),
                    element_id=meta.element_id,
                    name=meta.name,
                    meta=meta,
                    data=copy.deepcopy(task.data),
                    multi_instance_index=index,
                )
            )
        return result

    def task_due(self, task_id: str, now: datetime) -> datetime | None:
        """The due date the model gives a ready task through ``camunda:dueDate``, or None."""
        task = self._task(task_id)
        meta = self._meta(task)
        expression = meta.due_source or meta.due_expression
        if not expression:
            return None
        return self._engine(now, lambda: task_due(task, expression, now))

    def complete(self, task_id: str, data: dict[str, Any], now: datetime) -> None:
        task = self._task(task_id)
        if task.state != TaskState.READY or not task.task_spec.manual:
            raise Conflict(
                f"任务当前不可办理（状态 {TaskState.get_name(task.state)}）",
                code="task_not_ready",
                task_id=str(task_id),
                state=TaskState.get_name(task.state),
            )
        task.data.update(copy.deepcopy(dict(data or {})))

        def run() -> None:
            task.run()
            self._steps()

        self._engine(now, run)

    # ------------------------------------------------------------ timers
    def _waiting(self) -> list[Any]:
        return [t for t in self.workflow.event_manager.tasks.values() if t.state == TaskState.WAITING]

    def pending_timers(self) -> list[PendingTimer]:
        result = []
        for task in self._waiting():
            for definition in _definitions(task.task_spec.event_definition):
                if isinstance(definition, TimerEventDefinition):
                    when = due_at(definition, task.internal_data)
                    if when is not None:
                        result.append(PendingTimer(str(task.id), _element_id(task), when))
        return sorted(result, key=lambda t: (t.due_at, t.element_id))

    def fire_due_timers(self, now: datetime) -> list[str]:
        due = [t for t in self.pending_timers() if t.due_at <= now]
        if not due:
            return []

        def run() -> None:
            self.workflow.refresh_timers()
            self._steps()

        self._engine(now, run)
        return [t.element_id for t in due]

    def recompute_timers(self, now: datetime) -> dict[str, datetime]:
        """After the working-day calendar changed: evaluate the date expressions of the waiting timers again
        with this runtime's calendar (``timers.recompute_date`` says which are left alone) and return those
        whose due moved (task id -> new due, UTC). A top-level value in the data of an unfinished task (or
        of the last task, which ``data`` shows) that holds the old due instant, such as the
        ``supplement_deadline`` a model computed with the same helper, follows too."""
        moved: dict[str, datetime] = {}
        changes: dict[datetime, str] = {}

        def run() -> None:
            for task in self._waiting():
                for definition in _definitions(task.task_spec.event_definition):
                    change = recompute_date(task, definition)
                    new = due_at(definition, task.internal_data) if change is not None else None
                    if change is not None and new is not None:
                        moved[str(task.id)] = new
                        changes[change[0]] = change[1]

        self._engine(now, run)
        if changes:
            tasks = list(self.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK))
            if self.workflow.last_task is not None:
                tasks.append(self.workflow.last_task)
            for task in tasks:
                for key, value in list(task.data.items()):
                    when = _instant(value)
                    if when is not None and when in changes:
                        task.data[key] = changes[when]
        return moved

    # ------------------------------------------------------------ messages
    def pending_messages(self) -> list[PendingMessage]:
        result = []
        for task in self._waiting():
            for definition in _definitions(task.task_spec.event_definition):
                if isinstance(definition, MessageEventDefinition):
                    result.append(PendingMessage(str(task.id), _element_id(task), definition.name))
        return result

    def deliver_message(
        self, name: str, payload: dict[str, Any], now: datetime, *, starts: bool = True
    ) -> bool:
        """Hand the message to what waits for it now. ``starts=False`` for a message that found nothing
        waiting when it came (buffered): it reaches catch events and receive tasks only, never the start
        event of an event sub-process, which waits only while its scope is active
        (``.event_subprocesses``)."""
        waiting = [
            definition
            for task in self._waiting()
            if starts or not starts_event_subprocess(task)
            for definition in _definitions(task.task_spec.event_definition)
            if isinstance(definition, MessageEventDefinition) and definition.name == name
        ]
        if not waiting:
            return False
        body = copy.deepcopy(dict(payload or {}))

        def run() -> bool:
            correlations: dict[str, Any] = {}
            props = waiting[0].correlation_properties
            if props:
                correlations = waiting[0].calculate_correlations(SCRIPT_ENGINE, props, body)
            event = BpmnEvent(MessageEventDefinition(name), payload=body, correlations=correlations)
            if starts:
                caught = self.workflow.event_manager.catch(event, internal=False)
            else:
                with without_event_subprocess_starts():
                    caught = self.workflow.event_manager.catch(event, internal=False)
            if caught:
                self._steps()
            return bool(caught)

        return self._engine(now, run)
