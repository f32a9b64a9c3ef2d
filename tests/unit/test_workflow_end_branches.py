"""Branches that end at their own end events reach the end of their scope as branches reach a join.

A parallel split whose branches each end at an end event of their own has no join: SpiffWorkflow merges the
branches when the scope ends (its end join, ``_EndJoin``), deep-merging each ended branch's copy of the data
in the order they ended, so a branch that never wrote a variable put its copy from the split back over
another branch's write (``x = 1`` before the split, ``x = 2`` in one branch, ``x`` was 1 again when the
other branch ended last): in the case's result, in an embedded sub-process's output to the step after it,
in a called process's output to its caller. The rule is the joins' (``test_workflow_branch_data``): what
each branch changed since it parted from the branches that ended before it, in the order they ended.

Every case runs kept in memory ("live"), with a dump and restore after every command ("restored") and
with pruning off ("full", SpiffWorkflow's whole tree).
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.workflow import Definition, Runtime, load_definitions
from engine.workflow.definition import READING
from tests.unit.bpmn.driven import MODES, NOW, Driven
from tests.unit.bpmn.models import document, flow, script_task, user_task

ORDERS = [("a", "b"), ("b", "a")]
SCOPES = ["process", "subprocess", "call", "call_mapped"]
INIT = 'x = 1\nboth = "fork"\nshared = {"k": 0, "n": 0}'


def _split(a: str, b: str) -> str:
    """start -> split -> (a -> end_a | b -> end_b): the branches end at end events of their own."""
    return (
        '<bpmn:startEvent id="s_start"/>'
        + flow("s_start", "split")
        + '<bpmn:parallelGateway id="split"/>'
        + flow("split", "a")
        + flow("split", "b")
        + a
        + b
        + flow("a", "end_a")
        + flow("b", "end_b")
        + '<bpmn:endEvent id="end_a"/><bpmn:endEvent id="end_b"/>'
    )


def _model(scope: str, a: str, b: str) -> bytes:
    """The split as the process itself (after ``init``), or inside an embedded sub-process or a called
    process (``init`` before it in the caller, the user task ``after`` after it)."""
    if scope == "process":
        body = _split(a, b).replace('<bpmn:startEvent id="s_start"/>', script_task("s_start", INIT))
        return document('<bpmn:startEvent id="start"/>' + flow("start", "s_start") + body)
    if scope == "subprocess":
        inner, extra = f'<bpmn:subProcess id="scope">{_split(a, b)}</bpmn:subProcess>', ""
    else:
        mapped = '<camunda:in variables="all"/><camunda:out variables="all"/>'
        mappings = (
            f"<bpmn:extensionElements>{mapped}</bpmn:extensionElements>" if scope == "call_mapped" else ""
        )
        inner = f'<bpmn:callActivity id="scope" calledElement="called">{mappings}</bpmn:callActivity>'
        extra = f'<bpmn:process id="called" isExecutable="true">{_split(a, b)}</bpmn:process>'
    body = (
        '<bpmn:startEvent id="start"/>'
        + flow("start", "init")
        + script_task("init", INIT)
        + flow("init", "scope")
        + inner
        + flow("scope", "after")
        + user_task("after")
        + flow("after", "end")
        + '<bpmn:endEvent id="end"/>'
    )
    return document(body, extra=extra)


class Case(Driven):
    def result(self, scope: str) -> dict[str, Any]:
        """The data after the scope: the process's result, or what the step after the scope is given (the
        same again once that step completes)."""
        if scope == "process":
            assert self.rt.completed
            return self.rt.data
        [after] = [t for t in self.rt.ready_tasks() if t.element_id == "after"]
        self.complete("after")
        assert self.rt.completed and self.rt.data == after.data
        return after.data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ORDERS, ids=["a_ends_first", "b_ends_first"])
@pytest.mark.parametrize("scope", SCOPES)
def test_a_branch_that_did_not_write_a_variable_never_reverts_it_at_the_end(
    scope: str, order: tuple[str, str], mode: str
) -> None:
    case = Case(_model(scope, user_task("a"), user_task("b")), mode)
    writes = {
        "a": {"x": 2, "from_a": "甲", "both": "a", "shared": {"k": "a", "n": 0}},
        "b": {"from_b": "乙", "both": "b", "shared": {"k": 0, "n": "b"}},
    }
    for element in order:
        case.complete(element, **writes[element])
    data = case.result(scope)
    assert data["x"] == 2  # set before the split, changed by a, untouched by b
    assert (data["from_a"], data["from_b"]) == ("甲", "乙")  # what each branch set survives
    assert data["both"] == order[-1]  # both wrote it: the branch that ended later wins
    assert data["shared"] == {"k": "a", "n": "b"}  # a dict both changed keeps each branch's keys


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scope", SCOPES)
def test_script_branches_ending_in_one_command(scope: str, mode: str) -> None:
    """Both branches are scripts: they end in the command that starts the case (a first)."""
    a = script_task("a", "x = x + 1\nshared['k'] = 'a'")
    b = script_task("b", "seen_b = True")
    data = Case(_model(scope, a, b), mode).result(scope)
    assert data["x"] == 2 and data["shared"] == {"k": "a", "n": 0} and data["seen_b"] is True


def _nested() -> bytes:
    """split -> a -> end_a | b_pre (z = 5) -> b_split -> (b1 -> end_b1 | b2 -> end_b2), in the process."""
    return document(
        '<bpmn:startEvent id="start"/>'
        + flow("start", "init")
        + script_task("init", INIT)
        + flow("init", "split")
        + '<bpmn:parallelGateway id="split"/>'
        + flow("split", "a")
        + flow("split", "b_pre")
        + user_task("a")
        + flow("a", "end_a")
        + script_task("b_pre", "z = 5")
        + flow("b_pre", "b_split")
        + '<bpmn:parallelGateway id="b_split"/>'
        + "".join(flow("b_split", b) + user_task(b) + flow(b, f"end_{b}") for b in ("b1", "b2"))
        + "".join(f'<bpmn:endEvent id="end_{e}"/>' for e in ("a", "b1", "b2"))
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ["a b1 b2", "a b2 b1", "b1 a b2", "b1 b2 a", "b2 a b1", "b2 b1 a"])
def test_nested_splits_whose_branches_all_end_on_their_own(order: str, mode: str) -> None:
    """Three branches end at three end events, in every order; the state between them is pruned."""
    case = Case(_nested(), mode)
    writes = {"a": {"x": 2}, "b1": {"y": 1, "shared": {"k": 0, "n": "b1"}}, "b2": {}}
    for element in order.split():
        case.complete(element, **writes[element])
    data = case.result("process")
    assert (data["x"], data["y"], data["z"], data["shared"]) == (2, 1, 5, {"k": 0, "n": "b1"})


def test_a_spec_stored_before_reading_5_keeps_the_end_it_was_read_with() -> None:
    """A version deployed by an earlier release (its end join ``OwEndJoin``) runs its instances as it
    always did (SpiffWorkflow's merge: here the stale ``x`` of the branch that ended last); deploying the
    document again reads it with this rule (``Definition.read_as_now``)."""
    defn = load_definitions(_model("process", user_task("a"), user_task("b")))["p"]
    stored = defn.spec_json()
    assert Definition.read_as_now(stored) and '"OwMergingEndJoin"' in stored
    old = stored.replace('"OwMergingEndJoin"', '"OwEndJoin"').replace(f'"reading":{READING}', '"reading":4')
    assert not Definition.read_as_now(old)
    earlier = Definition.from_spec_json(old)
    rt = Runtime.start(earlier, {}, NOW)
    for element, data in (("a", {"x": 2}), ("b", {})):
        [task] = [t for t in rt.ready_tasks() if t.element_id == element]
        rt.complete(task.task_id, data, NOW)
        rt = Runtime.restore(earlier, rt.dump(), NOW)
    assert rt.completed and rt.data["x"] == 1
