"""One command's budget over the library (engine/workflow/budget.py): what a model runs without waiting is
bounded as a whole, each refusal typed and naming the element, and a loop the library cannot reach the end of
is refused rather than left as an instance nothing can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import CommandBudgetExceeded
from engine.workflow import Runtime, StepLimits, load_definitions
from tests.unit.bpmn.models import document, flow, script_task, user_task

NOW = datetime(2025, 10, 9, 2, tzinfo=UTC)


def automatic_loop(rounds: int) -> bytes:
    """A script and a gateway that goes back to it ``rounds`` times, then a user task."""
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "count")
        + script_task("count", "n = n + 1")
        + flow("count", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_back"/>'
        + flow("gw", "count", None, "f_back")
        + flow("gw", "wait", f"n >= {rounds}", "f_out")
        + user_task("wait")
        + flow("wait", "end")
        + '<bpmn:endEvent id="end"/>'
    )


def doubling(stages: int) -> bytes:
    """Every script task has two plain flows to the next (an implicit split into an uncontrolled merge):
    the tokens double at each stage."""
    body = '<bpmn:startEvent id="start"/>' + flow("start", "t0")
    for i in range(stages):
        body += script_task(f"t{i}", "y = 1") + flow(f"t{i}", f"t{i + 1}", None, f"a{i}")
        body += flow(f"t{i}", f"t{i + 1}", None, f"b{i}")
    return document(body + user_task(f"t{stages}") + flow(f"t{stages}", "end") + '<bpmn:endEvent id="end"/>')


def start(xml: bytes, limits: StepLimits | None = None, **data: object) -> Runtime:
    [definition] = load_definitions(xml).values()
    return Runtime.start(definition, dict(data), NOW, step_limits=limits)


def refused(xml: bytes, limits: StepLimits | None = None, **data: object) -> CommandBudgetExceeded:
    with pytest.raises(CommandBudgetExceeded) as err:
        start(xml, limits, **data)
    return err.value


def test_a_loop_within_the_budget_runs_and_one_over_it_is_refused_naming_its_element() -> None:
    assert [t.element_id for t in start(automatic_loop(100), n=0).ready_tasks()] == ["wait"]
    over = refused(automatic_loop(100), StepLimits(max_tasks=50), n=0)
    assert (over.code, over.detail["budget"], over.detail["limit"]) == (
        "command_budget_exceeded",
        "tasks_run",
        50,
    )
    assert over.detail["setting"] == "ONEWINDOW_STEP_MAX_TASKS" and over.detail["element"] in {"count", "gw"}


def test_a_loop_deeper_than_the_library_looks_is_refused_not_stored_with_nothing_to_do() -> None:
    """About 500 rounds reach the library's search depth (1,000): it stopped there and the instance was
    stored running, with no task and no event to wait for."""
    deep = refused(automatic_loop(2_000), n=0)
    assert deep.code == "automatic_steps_too_deep" and deep.detail["element"] in {"count", "gw"}


def test_branches_that_double_without_a_join_are_stopped_by_the_tasks_held() -> None:
    assert len(start(doubling(4)).ready_tasks()) == 16
    grown = refused(doubling(9), StepLimits(max_held=300))
    assert grown.detail["budget"] == "tasks_held" and grown.detail["limit"] == 300


def test_the_cpu_time_of_a_command_is_bounded_whatever_each_expression_spends() -> None:
    slow = refused(automatic_loop(400), StepLimits(max_seconds=0.001), n=0)
    assert slow.detail["budget"] == "cpu_seconds" and slow.detail["setting"] == "ONEWINDOW_STEP_MAX_SECONDS"


def test_a_subprocess_timer_due_when_another_command_runs_fires_then_instead_of_refusing_it() -> None:
    """The library refreshes the timers after its last round: a sub-process's timer due by then was left
    ready, and the command (completing a task beside it) was refused as automatic_steps_too_deep."""
    stage = (
        '<bpmn:subProcess id="stage"><bpmn:startEvent id="s_start"/>'
        + flow("s_start", "wait")
        + '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("wait", "after")
        + user_task("after")
        + flow("after", "s_end")
        + '<bpmn:endEvent id="s_end"/></bpmn:subProcess>'
    )
    xml = document(
        '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
        + flow("start", "split")
        + flow("split", "other")
        + flow("split", "stage")
        + user_task("other")
        + flow("other", "end_1")
        + '<bpmn:endEvent id="end_1"/>'
        + stage
        + flow("stage", "end_2")
        + '<bpmn:endEvent id="end_2"/>'
    )
    runtime = start(xml)
    [other] = runtime.ready_tasks()
    runtime.complete(other.task_id, {}, NOW + timedelta(hours=2))  # before any worker fired the timer
    assert [t.element_id for t in runtime.ready_tasks()] == ["after"]
