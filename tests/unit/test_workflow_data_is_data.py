"""Task data is data: marker-like dicts round-trip exactly; multi-instance branches are bounded and cheap.

SpiffWorkflow's serializer revives any dict with a ``typename`` key as an object; the adapter escapes user
dicts so that a dump and a restore give back exactly what went in, at any depth and inside lists, in the
start data, task data, message payloads and multi-instance items.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.errors import InvalidInput, InvalidModel
from engine.workflow import Definition, Runtime, load_definitions
from tests.unit.bpmn.models import document, linear, mi_model, user_task

NOW = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)

# Each of these looks like something SpiffWorkflow's registry would revive (or choke on) on restore.
MARKERS: dict[str, Any] = {
    "unknown": {"typename": "nope"},
    "uuid": {"typename": "UUID", "value": "12345678123456781234567812345678"},
    "datetime": {"typename": "datetime", "value": "2020-01-01T00:00:00"},
    "ours": {"typename": "ow_data", "value": {"typename": "timedelta", "days": 1, "seconds": 0}},
    "odd_values": [{"typename": 3}, {"typename": None}, {"typename": ["a"], "x": {"typename": {}}}],
    "deep": {"a": [[{"b": {"typename": "BpmnWorkflow", "spec": {"typename": "x"}}}]]},
    "text": "typename",
}
TOP_LEVEL = {"typename": "datetime", "value": "2020-01-01"}  # the whole data dict looks like a marker


def definition(model: bytes) -> Definition:
    return load_definitions(model)["p"]


def restored(runtime: Runtime) -> Runtime:
    """A dump restored against a definition rebuilt from its stored JSON (a fresh process)."""
    stored = Definition.from_spec_json(runtime.definition.spec_json())
    return Runtime.restore(stored, runtime.dump(), NOW)


def two_tasks() -> Definition:
    inner = user_task("first") + '<bpmn:sequenceFlow id="f" sourceRef="first" targetRef="second"/>'
    return definition(document(linear(inner + user_task("second"), "first", "second")))


@pytest.mark.parametrize("data", [MARKERS, TOP_LEVEL], ids=["nested", "top_level"])
def test_marker_like_start_data_restores_as_plain_data(data: dict[str, Any]) -> None:
    runtime = restored(Runtime.start(two_tasks(), copy.deepcopy(data), NOW))
    (first,) = runtime.ready_tasks()
    assert first.data == data
    runtime.complete(first.task_id, {}, NOW)  # the next command works on the restored instance
    (second,) = restored(runtime).ready_tasks()
    assert second.data == data


@pytest.mark.parametrize("data", [MARKERS, TOP_LEVEL], ids=["nested", "top_level"])
def test_marker_like_task_data_restores_as_plain_data(data: dict[str, Any]) -> None:
    runtime = Runtime.start(two_tasks(), {}, NOW)
    (first,) = runtime.ready_tasks()
    runtime.complete(first.task_id, copy.deepcopy(data), NOW)
    runtime = restored(runtime)
    (second,) = runtime.ready_tasks()
    assert second.data == data
    runtime.complete(second.task_id, {"more": {"typename": "UUID"}}, NOW)
    runtime = restored(runtime)
    assert runtime.completed and runtime.data == {**data, "more": {"typename": "UUID"}}


def test_marker_like_message_payload_restores_as_plain_data() -> None:
    model = document(
        linear(
            '<bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="m"/>'
            '</bpmn:intermediateCatchEvent><bpmn:sequenceFlow id="f" sourceRef="paid" targetRef="issue"/>'
            + user_task("issue"),
            "paid",
            "issue",
        ),
        extra='<bpmn:message id="m" name="fee_paid"/>',
    )
    runtime = restored(Runtime.start(definition(model), {}, NOW))
    assert runtime.deliver_message("fee_paid", copy.deepcopy(MARKERS), NOW)
    runtime = restored(runtime)
    (issue,) = runtime.ready_tasks()
    assert issue.data == MARKERS


def test_marker_like_multi_instance_items_restore_as_plain_data() -> None:
    loop = "<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef><bpmn:inputDataItem id='item' name='item'/>"
    items = [{"typename": "UUID", "value": "0" * 32}, {"typename": "nope", "department": "x"}]
    runtime = restored(Runtime.start(definition(mi_model(loop)), {"items": copy.deepcopy(items)}, NOW))
    branches = sorted(runtime.ready_tasks(), key=lambda t: t.multi_instance_index or 0)
    assert [b.data["item"] for b in branches] == items
    for branch in branches:
        runtime.complete(branch.task_id, {"seen": branch.data["item"]}, NOW)
        runtime = restored(runtime)
    assert runtime.completed
    assert [r["seen"] for r in runtime.data["review_results"]] == items


def test_the_dumped_state_is_plain_json_with_the_data_as_given() -> None:
    runtime = Runtime.start(two_tasks(), copy.deepcopy(MARKERS), NOW)
    state = json.loads(runtime.dump())
    assert "ow_data" in json.dumps(state)  # the user dicts are wrapped in the state...
    assert restored(runtime).ready_tasks()[0].data == MARKERS  # ...and unwrapped on restore


# ---------------------------------------------------------------- multi-instance branches


LOOP = "<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef><bpmn:inputDataItem id='item' name='item'/>"


@pytest.mark.parametrize("sequential", [False, True], ids=["parallel", "sequential"])
def test_a_collection_over_the_branch_limit_is_refused_before_any_branch(sequential: bool) -> None:
    model = definition(mi_model(LOOP, sequential=sequential))
    items = [{"n": i} for i in range(6)]
    with pytest.raises(InvalidInput) as info:
        Runtime.start(model, {"items": items}, NOW, branch_limit=5)
    err = info.value
    assert err.code == "too_many_branches"
    assert err.detail["element_id"] == "review"
    assert (err.detail["limit"], err.detail["max"], err.detail["count"]) == ("mi_max_branches", 5, 6)
    assert err.detail["setting"] == "ONEWINDOW_MI_MAX_BRANCHES"
    ok = Runtime.start(model, {"items": items[:5]}, NOW, branch_limit=5)
    assert len(ok.ready_tasks()) == (1 if sequential else 5)


@pytest.mark.parametrize("sequential", [False, True], ids=["parallel", "sequential"])
@pytest.mark.parametrize("count", [10**9, -1, 2.5, "3"])
def test_a_cardinality_over_the_limit_or_not_a_count_is_refused(sequential: bool, count: Any) -> None:
    model = definition(mi_model("<bpmn:loopCardinality>count</bpmn:loopCardinality>", sequential=sequential))
    with pytest.raises(InvalidInput) as info:  # 10**9 would otherwise create a billion tasks
        Runtime.start(model, {"count": count}, NOW, branch_limit=200)
    assert info.value.code == ("too_many_branches" if count == 10**9 else "bad_cardinality")
    assert info.value.detail["element_id"] == "review"


@pytest.mark.parametrize("sequential", [False, True], ids=["parallel", "sequential"])
@pytest.mark.parametrize("cardinality", ["-1", "2.5"])
def test_a_literal_cardinality_that_is_not_a_count_is_refused_at_deploy(
    sequential: bool, cardinality: str
) -> None:
    with pytest.raises(InvalidModel) as info:
        definition(
            mi_model(f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>", sequential=sequential)
        )
    assert [(p["code"], p["element_id"]) for p in info.value.problems] == [("bad_cardinality", "review")]


@pytest.mark.parametrize("sequential", [False, True], ids=["parallel", "sequential"])
def test_a_branch_sees_its_item_and_the_case_data_but_not_the_collection(sequential: bool) -> None:
    items = [{"department": f"d{i}"} for i in range(3)]
    model = definition(mi_model(LOOP, sequential=sequential))
    runtime = Runtime.start(model, {"items": copy.deepcopy(items), "applicant": "张三"}, NOW)
    for _ in items:
        runtime = restored(runtime)
        branch = runtime.ready_tasks()[0]
        assert branch.data == {"applicant": "张三", "item": items[branch.multi_instance_index or 0]}
        runtime.complete(branch.task_id, {"ok": True}, NOW)
    assert runtime.completed
    assert runtime.data["items"] == items  # the collection stayed with the multi-instance task
    assert runtime.data["review_results"] == [{"ok": True}] * 3
