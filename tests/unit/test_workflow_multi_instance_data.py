"""What the branches of a multi-instance activity write, with an output collection or without one.

BPMN (and Camunda 8, which implements output collections) gathers each instance's output item into the
output collection in loop order, whatever order the instances complete in, and makes the collection anew
each time the activity runs. SpiffWorkflow appended the items in completion order, dropped whatever else an
instance wrote, and refused (or, with a cardinality, failed with a ``NameError`` on) an output list left by
an earlier run of the activity in a loop. Here the output collection is in loop order, a list output starts
empty each run, and everything else an instance wrote is kept per instance in ``<element id>_results``,
never written over another instance's (``engine/workflow/specs.py``). Every case runs live and with a dump
and restore after each step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.workflow import Definition, Runtime, load_definitions
from tests.unit.bpmn.models import document, flow, user_task

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)

OUTPUT = (
    '<bpmn:loopDataOutputRef>results</bpmn:loopDataOutputRef><bpmn:outputDataItem id="result" name="result"/>'
)
OVER_ITEMS = '<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef><bpmn:inputDataItem id="item" name="item"/>'
THREE_TIMES = "<bpmn:loopCardinality>3</bpmn:loopCardinality>"


def _model(loop: str, sequential: bool, condition: str = "") -> bytes:
    """start -> review (multi-instance) -> decide -> again? review : end."""
    seq = ' isSequential="true"' if sequential else ""
    if condition:
        loop += f"<bpmn:completionCondition>{condition}</bpmn:completionCondition>"
    review = user_task(
        "review",
        'ow:candidateGroups="dept"',
        f"<bpmn:multiInstanceLoopCharacteristics{seq}>{loop}</bpmn:multiInstanceLoopCharacteristics>",
    )
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "review")
        + review
        + flow("review", "decide")
        + user_task("decide")
        + flow("decide", "gw")
        + '<bpmn:exclusiveGateway id="gw" default="f_out"/>'
        + flow("gw", "review", "again == True", "f_again")
        + flow("gw", "end", None, "f_out")
        + '<bpmn:endEvent id="end"/>'
    )


class Case:
    def __init__(self, model: bytes, data: dict[str, Any], restore: bool) -> None:
        self.defn = load_definitions(model)["p"]
        self.restore = restore
        self.rt = self._again(Runtime.start(self.defn, data, NOW))

    def _again(self, rt: Runtime) -> Runtime:
        if not self.restore:
            return rt
        return Runtime.restore(Definition.from_spec_json(self.defn.spec_json()), rt.dump(), NOW)

    def branches(self) -> list[Any]:
        return [t for t in self.rt.ready_tasks() if t.element_id == "review"]

    def review(self, order: list[int], write: Any) -> None:
        """Complete the branches in ``order`` (by loop index); ``write(index)`` is what each one writes."""
        for index in order:
            [task] = [t for t in self.branches() if t.multi_instance_index == index]
            self.rt.complete(task.task_id, write(index), NOW)
            self.rt = self._again(self.rt)

    def decide(self, **data: Any) -> dict[str, Any]:
        """The data after the activity (what ``decide`` sees), then complete ``decide`` with ``data``."""
        [task] = [t for t in self.rt.ready_tasks() if t.element_id == "decide"]
        seen = task.data
        self.rt.complete(task.task_id, data, NOW)
        self.rt = self._again(self.rt)
        return seen


RESTORE = pytest.mark.parametrize("restore", [False, True], ids=["live", "restored"])
KINDS = pytest.mark.parametrize("sequential", [False, True], ids=["parallel", "sequential"])


def _order(sequential: bool) -> list[int]:
    return [0, 1, 2] if sequential else [2, 0, 1]


@RESTORE
@KINDS
@pytest.mark.parametrize("loop", [OVER_ITEMS, THREE_TIMES], ids=["collection", "cardinality"])
def test_the_output_collection_is_in_loop_order_and_the_rest_is_kept_per_instance(
    loop: str, sequential: bool, restore: bool
) -> None:
    case = Case(_model(loop + OUTPUT, sequential), {"items": ["规划", "消防", "环保"]}, restore)
    case.review(_order(sequential), lambda i: {"result": f"结论{i}", "note": f"意见{i}"})
    data = case.decide(again=False)
    assert data["results"] == ["结论0", "结论1", "结论2"]
    assert data["review_results"] == [{"note": "意见0"}, {"note": "意见1"}, {"note": "意见2"}]
    assert "note" not in data and "result" not in data
    assert case.rt.completed


@RESTORE
def test_a_dict_output_is_keyed_and_ordered_like_the_input(restore: bool) -> None:
    items = {"MR-001": "market", "HE-001": "health", "PS-002": "police"}
    case = Case(_model(OVER_ITEMS + OUTPUT, False), {"items": items, "results": {}}, restore)
    for index in [2, 0, 1]:
        [task] = [t for t in case.branches() if t.data["item"] == list(items.values())[index]]
        case.rt.complete(task.task_id, {"result": task.data["item"], "note": index}, NOW)
        case.rt = case._again(case.rt)
    data = case.decide(again=False)
    assert list(data["results"].items()) == [(code, dept) for code, dept in items.items()]
    assert data["review_results"] == {"MR-001": {"note": 0}, "HE-001": {"note": 1}, "PS-002": {"note": 2}}


@RESTORE
@KINDS
@pytest.mark.parametrize("loop", [OVER_ITEMS + OUTPUT, THREE_TIMES + OUTPUT, OVER_ITEMS])
def test_each_run_of_the_activity_in_a_loop_collects_anew(loop: str, sequential: bool, restore: bool) -> None:
    case = Case(_model(loop, sequential), {"items": ["a", "b", "c"]}, restore)
    case.review(_order(sequential), lambda i: {"result": f"第1轮{i}", "note": i})
    first = case.decide(again=True, items=["a", "b"])
    size = 2 if "items" in loop else 3
    case.review(
        list(range(size))[::-1] if not sequential else list(range(size)), lambda i: {"result": f"第2轮{i}"}
    )
    second = case.decide(again=True, items=[])
    if "results" in loop:
        assert first["results"] == [f"第1轮{i}" for i in range(3)]
        assert second["results"] == [f"第2轮{i}" for i in range(size)]
        assert second["review_results"] == [{}] * size  # the second run wrote no note
    else:
        assert second["review_results"] == [{"result": f"第2轮{i}"} for i in range(size)]
    if "items" in loop:  # a run over no item has no results, not the last run's
        third = case.decide(again=False)
        assert "review_results" not in third
        assert third.get("results", []) == []


@RESTORE
def test_a_completion_condition_leaves_none_for_the_instances_that_did_not_complete(restore: bool) -> None:
    case = Case(_model(OVER_ITEMS + OUTPUT, False, "result == 'deny'"), {"items": ["a", "b", "c"]}, restore)
    case.review([1], lambda i: {"result": "deny", "note": "不予许可"})
    data = case.decide(again=False)
    assert data["results"] == [None, "deny", None]
    assert data["review_results"][1] == {"note": "不予许可"}


def test_a_state_stored_while_the_library_appended_the_outputs_comes_out_in_loop_order() -> None:
    case = Case(_model(OVER_ITEMS + OUTPUT, False), {"items": ["a", "b", "c"]}, restore=True)
    case.review([2], lambda i: {"result": f"结论{i}"})
    [mi] = [t for t in case.rt.workflow.get_tasks() if "merged" in t.internal_data]
    mi.data["results"] = ["结论2"]  # what the library stored: the items in the order the branches finished
    case.rt = case._again(case.rt)
    case.review([0, 1], lambda i: {"result": f"结论{i}"})
    assert case.decide(again=False)["results"] == ["结论0", "结论1", "结论2"]
