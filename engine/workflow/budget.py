"""What one command may make the library do between two waits: every expression has its own budget
(``.guards``), a command as a whole has this one.

A model that runs without waiting (script tasks, gateways, events) is run by the library in one go, inside
the command's transaction. Nothing in it bounds the whole: branches that double at every implicit split, a
multi-instance task inside a multi-instance subprocess, a script that stays just inside its own budget run
by a 200-branch multi-instance, a call activity that calls its own process. Each keeps one server process
(and, on SQLite, every writer) busy for minutes, or holds more tasks than memory has room for. The budget
counts the engine tasks the command runs, the tasks the workflow holds, and the CPU time of the command's
thread; over any of them the command fails with ``CommandBudgetExceeded`` naming the element it was about to
run, and nothing of it is kept (one transaction; a live workflow that failed is dropped).

The library also stops looking for tasks at a depth of 1,000 (its task iterator's ``max_depth``): an
automatic loop of about 500 rounds left a running instance with no task to do and no event to wait for,
which nothing could move again. A command that ends with an engine task still ready fails the same way
(``automatic_steps_too_deep``) instead of being stored so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine.errors import CommandBudgetExceeded

__all__ = ["CommandBudget", "StepLimits", "held"]

_HELD_EVERY = 32  # engine tasks run between two counts of the tasks held (a count walks every workflow)


@dataclass(frozen=True)
class StepLimits:
    """The bounds of one command (``ONEWINDOW_STEP_MAX_TASKS`` / ``_HELD`` / ``_SECONDS``)."""

    max_tasks: int = 5_000
    max_held: int = 20_000
    max_seconds: float = 10.0


_TEXT = {
    "tasks_run": ("step_max_tasks", "一次操作自动执行的环节数"),
    "tasks_held": ("step_max_held", "流程实例同时持有的任务数"),
    "cpu_seconds": ("step_max_seconds", "一次操作的计算时间（秒）"),
}


def _element(task: Any) -> str:
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def held(workflow: Any) -> int:
    """The tasks ``workflow`` and its subprocesses hold."""
    return len(workflow.tasks) + sum(len(sp.tasks) for sp in workflow.subprocesses.values())


class CommandBudget:
    """One command's budget over ``workflow``: :meth:`tick` before each engine task the library runs (its
    ``will_complete_task`` callback), :meth:`finish` once it stops."""

    def __init__(self, workflow: Any, limits: StepLimits) -> None:
        self.workflow = workflow
        self.limits = limits
        self.runs = 0
        self.started = time.thread_time()

    def _exceeded(self, budget: str, limit: float, task: Any) -> CommandBudgetExceeded:
        setting, what = _TEXT[budget]
        element = _element(task)
        return CommandBudgetExceeded(
            f"环节 {element} 处超出{what}上限（{limit}），操作已中止，未保存任何变化；"
            "请检查模型中不经等待的循环、分支或调用",
            budget=budget,
            limit=limit,
            setting=f"ONEWINDOW_{setting.upper()}",
            element=element,
        )

    def tick(self, task: Any) -> None:
        self.runs += 1
        limits = self.limits
        if self.runs > limits.max_tasks:
            raise self._exceeded("tasks_run", limits.max_tasks, task)
        if time.thread_time() - self.started > limits.max_seconds:
            raise self._exceeded("cpu_seconds", limits.max_seconds, task)
        if not self.runs % _HELD_EVERY and held(self.workflow) > limits.max_held:
            raise self._exceeded("tasks_held", limits.max_held, task)

    def ready_left(self) -> Any:
        """An engine task (not a person's) left ready in the workflow or its sub-processes, or None."""
        for workflow in [self.workflow, *self.workflow.subprocesses.values()]:
            for task in workflow.tasks.values():
                if task.state == TaskState.READY and not task.task_spec.manual:
                    return task
        return None

    def finish(self) -> None:
        """After the library stopped: the tasks held, and no engine task left ready (one the library's
        depth-bounded search did not reach)."""
        if held(self.workflow) > self.limits.max_held:
            raise self._exceeded("tasks_held", self.limits.max_held, self.workflow.task_tree)
        task = self.ready_left()
        if task is not None:
            element = _element(task)
            raise CommandBudgetExceeded(
                f"环节 {element} 处的自动执行层级过深（不经等待的循环超过约 500 轮），操作已中止，"
                "未保存任何变化；请在循环中加入人工任务或事件",
                code="automatic_steps_too_deep",
                element=element,
            )
